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
 * This node may promote a partition only when it holds the whole log of
 * the partition: the log is empty, or this node's consumer checkpoint is
 * at its last record.
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
 * The Kafka side of a promotion: check that this node holds the whole log,
 * write our NEW_GEN record and read the log back up to it.
 */
static void
promote_in_kafka(rd_kafka_t *consumer, Promotion *pr)
{
	ReplkafkaConsumerCheckpoint cckpt;
	int64		low;
	int64		high;
	RkmHeader	hdr;
	StringInfoData record;
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
	pr->promote_lsn = GetXLogInsertRecPtr();
	pr->started_at = GetCurrentTimestamp();
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = RKM_NEW_GEN;
	hdr.last = true;
	hdr.partition = pr->partition;
	hdr.scn = RKM_SCN(pr->new_generation, 0);
	hdr.commit_lsn = pr->promote_lsn;
	hdr.commit_time = pr->started_at +
		((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
	strlcpy(hdr.origin, replkafka_node_name, sizeof(hdr.origin));
	initStringInfo(&record);
	rkm_write_header(&record, &hdr);
	pr->rb.generation = pr->new_generation;
	pr->rb.our_offset = replkafka_kafka_produce_sync(pr->topic, pr->partition,
													 record.data, record.len,
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
		ereport(ERROR,
				errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				errmsg("could not promote node \"%s\" for partition %d: node \"%s\" started generation %u first",
					   replkafka_node_name, partition, rb.winner,
					   rb.winner_generation),
				errdetail("This node's role stays %s.",
						  replkafka_role_name((ReplkafkaRole) role)));
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
