/*-------------------------------------------------------------------------
 *
 * mastership.c
 *		Changing this node's role in a partition: promotion.
 *
 * A promotion starts a new generation of a partition: the node writes a
 * NEW_GEN record of generation g+1 to the partition and reads the log
 * back up to it.  The first NEW_GEN of a generation wins; if another
 * node's NEW_GEN of that generation or a newer one comes first, the
 * promotion is lost and the role stays as it was.
 *
 * The NEW_GEN record carries, as its commit LSN, this node's WAL insert
 * position at promotion: every transaction committed after it belongs to
 * the new generation, and the shipper uses it as the starting point of
 * the partition.
 *
 * A replica is promoted with the help of its apply worker, which goes on
 * applying the partition meanwhile: the backend notes the end of the log,
 * waits until the worker has read up to it (catching up), writes NEW_GEN
 * of the generation after the one this node knew when the promotion began,
 * and waits until the worker reads a NEW_GEN of that generation.  The
 * worker applies everything before it; if the first such NEW_GEN is ours,
 * the promotion is won.  A generation that starts while this node catches
 * up, however early in the log, means another node became primary since
 * this node last looked: the promotion is lost (calling it again promotes
 * over that node).  An offline node may promote a partition only
 * when it holds the whole log: the log is empty, or this node's consumer
 * checkpoint is at its last record.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/mastership.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "kafka.h"
#include "mastership.h"
#include "message.h"
#include "replkafka.h"
#include "shmem.h"

/* What reading the log back after our NEW_GEN found. */
typedef struct ReadBack
{
	uint32		generation;		/* the generation we started */
	int64		our_offset;
	bool		lost;			/* another node's NEW_GEN came first */
	char		winner[RKM_MAX_ORIGIN + 1];
	uint32		winner_generation;
	bool		moved;			/* the log moved on before our NEW_GEN */
	uint32		last_generation;	/* highest generation seen */
} ReadBack;

/* A promotion in progress. */
typedef struct Promotion
{
	int			partition;
	const char *topic;
	TimestampTz deadline;
	uint32		generation;		/* current generation, as known */
	uint32		new_generation;
	int64		log_end;		/* high watermark before our NEW_GEN */
	XLogRecPtr	promote_lsn;
	TimestampTz started_at;
	ReadBack	rb;
} Promotion;

static void promote_in_kafka(rd_kafka_t *consumer, Promotion *pr);
static void promote_report_lost(int partition, const char *winner,
								uint32 generation, ReplkafkaRole role) pg_attribute_noreturn();
static uint32 promote_replica(int partition, const char *topic,
							  TimestampTz deadline);
static uint32 promote_replica_steps(int partition, const char *topic,
									TimestampTz deadline);
static void promote_wait(ReplkafkaPartition *part, int partition,
						 ReplkafkaPromoteState until, int64 offset,
						 TimestampTz deadline);
static int64 promote_write_newgen(int partition, const char *topic,
								  uint32 generation, XLogRecPtr *lsn,
								  TimestampTz *started_at,
								  TimestampTz deadline);
static bool promote_read_back(void *arg, int64 offset, const void *data,
							  size_t len);
static bool promote_last_generation(void *arg, int64 offset,
									const void *data, size_t len);

/*
 * Note the generation of the last record of the log.
 */
static bool
promote_last_generation(void *arg, int64 offset, const void *data, size_t len)
{
	ReadBack   *rb = arg;
	RkmHeader	hdr;
	const char *err;

	if (rkm_read_header(data, len, &hdr, &err))
		rb->last_generation = Max(rb->last_generation,
								  RKM_SCN_GENERATION(hdr.scn));
	return true;
}

/*
 * Read one record between the log end we saw and our NEW_GEN.
 */
static bool
promote_read_back(void *arg, int64 offset, const void *data, size_t len)
{
	ReadBack   *rb = arg;
	RkmHeader	hdr;
	const char *err;

	if (offset >= rb->our_offset)
		return false;
	if (!rkm_read_header(data, len, &hdr, &err))
	{
		rb->moved = true;
		return true;
	}
	if (hdr.type == RKM_NEW_GEN &&
		RKM_SCN_GENERATION(hdr.scn) >= rb->generation && !rb->lost)
	{
		rb->lost = true;
		strlcpy(rb->winner, hdr.origin, sizeof(rb->winner));
		rb->winner_generation = RKM_SCN_GENERATION(hdr.scn);
	}
	else
		rb->moved = true;
	return true;
}

/*
 * Raise the error of a lost promotion: another node started the
 * generation first.
 */
static void
promote_report_lost(int partition, const char *winner, uint32 generation,
					ReplkafkaRole role)
{
	ereport(ERROR,
			errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			errmsg("could not promote node \"%s\" for partition %d: node \"%s\" started generation %u first",
				   replkafka_node_name, partition, winner, generation),
			errdetail("This node's role stays %s.", replkafka_role_name(role)));
}

/*
 * The Kafka side of a promotion: check that this node holds the whole log,
 * write our NEW_GEN record and read the log back up to it.
 */
static void
promote_in_kafka(rd_kafka_t *consumer, Promotion *pr)
{
	ReplkafkaConsumerCheckpoint cckpt;
	int64		low;
	int64		high;
	bool		have_ckpt;

	replkafka_kafka_watermarks(consumer, pr->topic, pr->partition,
							   &low, &high, pr->deadline);
	pr->log_end = high;

	/* This node must hold the whole log. */
	if (high > low)
	{
		have_ckpt = replkafka_catalog_get_consumer_checkpoint(pr->partition, &cckpt);
		if (!have_ckpt || cckpt.kafka_offset < high - 1)
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("node \"%s\" has not applied partition %d up to the end of its log",
						   replkafka_node_name, pr->partition),
					errdetail("The log ends at Kafka offset %lld; this node applied up to offset %lld.",
							  (long long) high - 1,
							  (long long) (have_ckpt ? cckpt.kafka_offset : -1)));
		replkafka_kafka_read(consumer, pr->topic, pr->partition,
							 high - 1, high, pr->deadline,
							 promote_last_generation, &pr->rb);
	}
	pr->generation = Max(pr->generation, pr->rb.last_generation);
	if (pr->generation == PG_UINT32_MAX)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("partition %d has used up its generations", pr->partition));
	pr->new_generation = pr->generation + 1;

	/* Start the generation. */
	pr->rb.generation = pr->new_generation;
	pr->rb.our_offset = promote_write_newgen(pr->partition, pr->topic,
											 pr->new_generation,
											 &pr->promote_lsn, &pr->started_at,
											 pr->deadline);

	/* Read back what came between the end we saw and our NEW_GEN. */
	replkafka_kafka_read(consumer, pr->topic, pr->partition, high,
						 pr->rb.our_offset, pr->deadline,
						 promote_read_back, &pr->rb);
}

/*
 * Promote this node to primary of partition, within timeout_ms; returns
 * the new generation.  Must run outside a transaction block; the caller
 * has checked the node's configuration and the partition number.
 */
uint32
replkafka_promote(int partition, int timeout_ms)
{
	TimestampTz deadline;
	int			role;
	uint32		generation;
	uint32		new_generation;
	ReplkafkaConsumerCheckpoint cckpt;
	ReplkafkaProducerCheckpoint pckpt;
	ReplkafkaCluster cluster;
	rd_kafka_t *consumer;
	Promotion	pr;
	ReadBack	rb;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	if (!replkafka_catalog_get_cluster(&cluster))
		elog(ERROR, "replkafka cluster does not exist");

	replkafka_shmem_ensure_loaded();
	replkafka_catalog_lock_partition(partition, &role, &generation);
	if (role == REPLKAFKA_ROLE_PRIMARY)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is already primary of partition %d",
					   replkafka_node_name, partition));
	if (role == REPLKAFKA_ROLE_ERROR)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("partition %d is in error on node \"%s\"",
					   partition, replkafka_node_name),
				errhint("See the last_error column of replkafka.partitions."));
	if (role == REPLKAFKA_ROLE_REPLICA)
		return promote_replica(partition, cluster.topic, deadline);

	memset(&pr, 0, sizeof(pr));
	pr.partition = partition;
	pr.topic = cluster.topic;
	pr.deadline = deadline;
	pr.generation = generation;
	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_CONSUMER, NULL);
	PG_TRY();
	{
		promote_in_kafka(consumer, &pr);
	}
	PG_FINALLY();
	{
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	PG_END_TRY();
	new_generation = pr.new_generation;
	rb = pr.rb;

	if (rb.lost)
		promote_report_lost(partition, rb.winner, rb.winner_generation,
							(ReplkafkaRole) role);
	if (rb.moved)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("could not promote node \"%s\" for partition %d: its log moved on during the promotion",
					   replkafka_node_name, partition),
				errdetail("Records arrived between offset %lld and this node's NEW_GEN record at offset %lld.",
						  (long long) pr.log_end, (long long) rb.our_offset));

	/* Won: record the new role, published at commit. */
	replkafka_catalog_set_role(partition, REPLKAFKA_ROLE_PRIMARY,
							   new_generation, NULL);
	replkafka_catalog_add_generation(partition, new_generation,
									 replkafka_node_name, rb.our_offset,
									 pr.started_at);
	pckpt.partition = partition;
	pckpt.scn = RKM_SCN(new_generation, 0);
	pckpt.commit_lsn = pr.promote_lsn;
	pckpt.kafka_offset = rb.our_offset;
	replkafka_catalog_save_producer_checkpoint(&pckpt);
	cckpt.partition = partition;
	cckpt.generation = new_generation;
	cckpt.scn = RKM_SCN(new_generation, 0);
	cckpt.kafka_offset = rb.our_offset;
	replkafka_catalog_save_consumer_checkpoint(&cckpt);
	replkafka_set_role_at_commit(partition, REPLKAFKA_ROLE_PRIMARY,
								 new_generation);

	ereport(LOG,
			errmsg("node \"%s\" is primary of partition %d in generation %u",
				   replkafka_node_name, partition, new_generation),
			errdetail("Its NEW_GEN record is at Kafka offset %lld.",
					  (long long) rb.our_offset));
	return new_generation;
}

/*
 * Write our NEW_GEN record of generation to the partition; returns its
 * offset, and sets *lsn and *started_at to the commit LSN and time it
 * carries.  Its commit LSN is this node's WAL position now: transactions
 * committed here afterwards belong to the new generation.
 */
static int64
promote_write_newgen(int partition, const char *topic, uint32 generation,
					 XLogRecPtr *lsn, TimestampTz *started_at,
					 TimestampTz deadline)
{
	RkmHeader	hdr;
	StringInfoData record;

	*lsn = GetXLogInsertRecPtr();
	*started_at = GetCurrentTimestamp();
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = RKM_NEW_GEN;
	hdr.last = true;
	hdr.partition = partition;
	hdr.scn = RKM_SCN(generation, 0);
	hdr.commit_lsn = *lsn;
	hdr.commit_time = *started_at + RKM_UNIX_EPOCH_OFFSET;
	strlcpy(hdr.origin, replkafka_node_name, sizeof(hdr.origin));
	initStringInfo(&record);
	rkm_write_header(&record, &hdr);
	return replkafka_kafka_produce_sync(topic, partition, record.data,
										record.len, deadline);
}

/*
 * Wait until the apply worker of partition moved the promotion to state
 * until (for REPLKAFKA_PROMOTE_CATCHUP: until it read up to offset), the
 * partition went to error, or deadline.
 */
static void
promote_wait(ReplkafkaPartition *part, int partition,
			 ReplkafkaPromoteState until, int64 offset, TimestampTz deadline)
{
	ConditionVariablePrepareToSleep(&replkafka_shared->promote_cv);
	for (;;)
	{
		bool		done;
		long		remaining;

		LWLockAcquire(replkafka_shared->lock, LW_SHARED);
		if (until == REPLKAFKA_PROMOTE_CATCHUP)
			done = part->next_offset >= offset;
		else
			done = part->promote_state == REPLKAFKA_PROMOTE_WON;
		done = done || part->promote_state == REPLKAFKA_PROMOTE_LOST;
		done = done || part->role == REPLKAFKA_ROLE_ERROR;
		LWLockRelease(replkafka_shared->lock);
		if (done)
			break;

		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
			break;
		(void) ConditionVariableTimedSleep(&replkafka_shared->promote_cv,
										   Min(remaining, 1000),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * Promote a partition this node is replica of.
 */
static uint32
promote_replica(int partition, const char *topic, TimestampTz deadline)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	volatile uint32 new_generation = 0;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->promote_state != REPLKAFKA_PROMOTE_NONE)
	{
		LWLockRelease(replkafka_shared->lock);
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_IN_USE),
				errmsg("partition %d is being promoted by another session",
					   partition));
	}
	part->promote_state = REPLKAFKA_PROMOTE_CATCHUP;
	part->promote_offset = PG_INT64_MAX;
	part->promote_base = part->generation;
	part->promote_generation = 0;
	LWLockRelease(replkafka_shared->lock);

	PG_TRY();
	{
		new_generation = promote_replica_steps(partition, topic, deadline);
	}
	PG_FINALLY();
	{
		LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
		part->promote_state = REPLKAFKA_PROMOTE_NONE;
		LWLockRelease(replkafka_shared->lock);
	}
	PG_END_TRY();
	return new_generation;
}

/*
 * The steps of promote_replica(): catch up, write NEW_GEN, wait for the
 * outcome, record the new role.
 */
static uint32
promote_replica_steps(int partition, const char *topic, TimestampTz deadline)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	rd_kafka_t *consumer;
	int64		low;
	int64		high;
	int64		newgen_offset;
	XLogRecPtr	newgen_lsn;
	TimestampTz started_at;
	uint32		generation;
	ReplkafkaPromoteState state;
	char		winner[64];
	ReplkafkaProducerCheckpoint pckpt;

	/* Catch up to the end of the log as it is now. */
	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_CONSUMER, NULL);
	PG_TRY();
	{
		replkafka_kafka_watermarks(consumer, topic, partition, &low, &high,
								   deadline);
	}
	PG_FINALLY();
	{
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	PG_END_TRY();

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->promote_offset = high;
	LWLockRelease(replkafka_shared->lock);
	replkafka_wake_apply_workers();
	promote_wait(part, partition, REPLKAFKA_PROMOTE_CATCHUP, high, deadline);
	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	generation = part->generation;
	state = part->promote_state;
	strlcpy(winner, part->promote_winner, sizeof(winner));
	LWLockRelease(replkafka_shared->lock);
	if (state == REPLKAFKA_PROMOTE_LOST)
		promote_report_lost(partition, winner, part->promote_generation,
							REPLKAFKA_ROLE_REPLICA);
	if (part->role == REPLKAFKA_ROLE_ERROR)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("could not promote node \"%s\" for partition %d: the partition went to error",
					   replkafka_node_name, partition),
				errdetail("%s", part->last_error));
	if (part->next_offset < high)
		ereport(ERROR,
				errcode(ERRCODE_QUERY_CANCELED),
				errmsg("could not promote node \"%s\" for partition %d within the timeout",
					   replkafka_node_name, partition),
				errdetail("The replica read the log up to offset %lld of %lld.",
						  (long long) part->next_offset, (long long) high),
				errhint("Promote again with a longer timeout once the replica caught up."));
	if (generation == PG_UINT32_MAX)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("partition %d has used up its generations", partition));

	/* Start the new generation, and wait for the worker to read it back. */
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->promote_generation = generation + 1;
	LWLockRelease(replkafka_shared->lock);
	newgen_offset = promote_write_newgen(partition, topic, generation + 1,
										 &newgen_lsn, &started_at, deadline);
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->promote_state == REPLKAFKA_PROMOTE_CATCHUP)
	{
		part->promote_offset = newgen_offset;
		part->promote_state = REPLKAFKA_PROMOTE_NEWGEN;
	}
	LWLockRelease(replkafka_shared->lock);
	replkafka_wake_apply_workers();
	promote_wait(part, partition, REPLKAFKA_PROMOTE_NEWGEN, 0, deadline);

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	state = part->promote_state;
	strlcpy(winner, part->promote_winner, sizeof(winner));
	LWLockRelease(replkafka_shared->lock);
	if (state == REPLKAFKA_PROMOTE_LOST)
		promote_report_lost(partition, winner, part->promote_generation,
							REPLKAFKA_ROLE_REPLICA);
	if (state != REPLKAFKA_PROMOTE_WON)
		ereport(ERROR,
				errcode(ERRCODE_QUERY_CANCELED),
				errmsg("could not promote node \"%s\" for partition %d within the timeout",
					   replkafka_node_name, partition),
				errdetail("Its NEW_GEN record of generation %u is at Kafka offset %lld, but the replica has not read it yet; the generation will have no primary.",
						  generation + 1, (long long) newgen_offset),
				errhint("Promote again with a longer timeout."));

	/* Won: the apply worker applied everything before our NEW_GEN. */
	replkafka_catalog_set_role(partition, REPLKAFKA_ROLE_PRIMARY,
							   generation + 1, NULL);
	pckpt.partition = partition;
	pckpt.scn = RKM_SCN(generation + 1, 0);
	pckpt.commit_lsn = newgen_lsn;
	pckpt.kafka_offset = newgen_offset;
	replkafka_catalog_save_producer_checkpoint(&pckpt);
	replkafka_set_role_at_commit(partition, REPLKAFKA_ROLE_PRIMARY,
								 generation + 1);
	ereport(LOG,
			errmsg("node \"%s\" is primary of partition %d in generation %u",
				   replkafka_node_name, partition, generation + 1),
			errdetail("Its NEW_GEN record is at Kafka offset %lld.",
					  (long long) newgen_offset));
	return generation + 1;
}
