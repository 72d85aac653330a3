/*-------------------------------------------------------------------------
 *
 * mastership.c
 *		Changing this node's role in a partition: promotion and demotion.
 *
 * PROMOTION
 * ---------
 * A promotion starts a new generation of a partition: the node writes a
 * NEW_GEN record of generation g+1 to the partition and reads the log
 * back up to it.  The first NEW_GEN of a generation wins; if another
 * node's NEW_GEN of that generation or a newer one comes first, the
 * promotion is lost and the role stays as it was.
 *
 * The partition's apply worker does the reading, and goes on applying
 * the partition meanwhile (it applies an offline partition too while it
 * is being promoted): the backend notes the end of the log, waits until
 * the worker has read up to it (catching up), writes NEW_GEN of the
 * generation after the one this node knew when the promotion began, and
 * waits until the worker reads a NEW_GEN of that generation.  The worker
 * applies everything before it; if the first such NEW_GEN is ours, the
 * promotion is won.
 *
 * A generation this node did not know when the promotion began, found
 * while it catches up, means another node became primary meanwhile, or is
 * becoming primary right now: if it starts after the log end noted at the
 * beginning, or is the last generation before it and has no transaction
 * yet, the promotion is lost (calling it again promotes over that node).
 * A generation with transactions before that log end is history that a
 * lagging node applies on its way.  Two nodes that promote at the same
 * time thus never both win one after the other.
 *
 * The NEW_GEN record carries, as its commit LSN, this node's WAL insert
 * position at promotion: every transaction committed after it belongs to
 * the new generation, and the shipper uses it as the starting point of
 * the partition.
 *
 * DEMOTION
 * --------
 * A demotion hands a partition over cleanly: the write fence stops letting
 * new transactions write the partition (they fail at once), the
 * transactions already writing it are waited for, and so is the shipper,
 * until Kafka acknowledged all of them.  Then the node writes an END_GEN
 * record carrying the last SCN of its generation, and becomes a replica
 * whose consumer checkpoint is the END_GEN record: its apply worker goes
 * on with whatever the next primary writes.
 *
 * Both run outside a transaction block: the records they write to Kafka
 * cannot be rolled back.
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
#include "access/xlog_internal.h"
#include "common/string.h"
#include "utils/resowner.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "kafka.h"
#include "logscan.h"
#include "mastership.h"
#include "message.h"
#include "replkafka.h"
#include "shmem.h"
#include "worker.h"

/* How often a long promote() or demote() tells its client how it goes (5s). */
#define MASTERSHIP_NOTICE_MS	5000

/* When this session last did. */
static TimestampTz progress_noticed = 0;

/* Where a demotion leaves this node: a replica from this record on. */
typedef struct DemoteEnd
{
	uint32		seq;			/* the last transaction of the generation */
	int64		offset;			/* the record the replica resumes after */
	bool		ended;			/* offset is our END_GEN, nothing between */
} DemoteEnd;

static void promote_report_lost(int partition, const char *winner,
								uint32 generation, ReplkafkaRole role) pg_attribute_noreturn();
static uint32 promote_partition(int partition, ReplkafkaRole role,
								const char *topic, TimestampTz deadline);
static uint32 promote_steps(int partition, ReplkafkaRole role,
							const char *topic, TimestampTz deadline);
static void promote_wait(ReplkafkaPartition *part, int partition,
						 ReplkafkaPromoteState until, int64 offset,
						 TimestampTz deadline);
static int64 write_control_record(RkmType type, int partition,
								  const char *topic, uint64 scn,
								  XLogRecPtr lsn, TimestampTz deadline);
static void demote_read_log(rd_kafka_t *consumer, int partition,
							const char *topic, uint32 generation,
							LogScan *scan, int64 *high,
							TimestampTz deadline);
static void demote_end_generation(rd_kafka_t *consumer, int partition,
								  const char *topic, uint32 generation,
								  XLogRecPtr lsn, int64 from, DemoteEnd *end,
								  TimestampTz deadline);
static void demote_in_kafka(int partition, const char *topic,
							uint32 generation, XLogRecPtr lsn,
							DemoteEnd *end, TimestampTz deadline);
static void demote_steps(int partition, const char *topic,
						 TimestampTz deadline);
static void mastership_notice_progress(int partition, const char *change);
static void promote_wait_for_shipper(int partition, TimestampTz deadline);
static XLogRecPtr demote_wal_end(void);
static void demote_wait_for_writers(ReplkafkaPartition *part, int partition,
									TimestampTz deadline);
static void demote_wait_for_kafka(ReplkafkaPartition *part, int partition,
								  XLogRecPtr lsn, TimestampTz deadline);

/*
 * A session that ends (FATAL, or terminated) while it promotes or demotes
 * a partition goes without PG_CATCH and without a role change to undo:
 * give the partition back, as an error would.  The fence stays closed if
 * END_GEN may be in Kafka (ended_generation); the shipper takes it from
 * there.
 */
static void
mastership_exit(int code, Datum arg)
{
	bool		woke = false;

	if (replkafka_shared == NULL || !replkafka_shared->loaded)
		return;
	/* a FATAL error may have left it held: exit runs before the abort */
	LWLockReleaseAll();
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	for (int p = 0; p < replkafka_shared->npartitions; p++)
	{
		ReplkafkaPartition *part = &replkafka_shared->partitions[p];

		if (part->handover && part->handover_pid == MyProcPid)
		{
			part->handover = false;
			woke = true;
		}
		if (part->promote_state != REPLKAFKA_PROMOTE_NONE &&
			part->promote_pid == MyProcPid)
		{
			part->promote_state = REPLKAFKA_PROMOTE_NONE;
			woke = true;
		}
	}
	LWLockRelease(replkafka_shared->lock);
	if (woke)
	{
		replkafka_wake_apply_workers();
		replkafka_wake_shipper();
	}
}

/*
 * Every few seconds of a long promote() or demote(), tell the client where
 * it is (change: "promoting" or "demoting"), as the view shows it.
 */
static void
mastership_notice_progress(int partition, const char *change)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	ReplkafkaPhase phase;
	int64		done;
	int64		total;
	uint32		writers;

	if (!TimestampDifferenceExceeds(progress_noticed, GetCurrentTimestamp(),
									MASTERSHIP_NOTICE_MS))
		return;
	progress_noticed = GetCurrentTimestamp();

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	phase = part->phase;
	done = Max(part->next_offset - part->phase_from, 0);
	total = Max(part->phase_to - part->phase_from, 0);
	LWLockRelease(replkafka_shared->lock);
	writers = pg_atomic_read_u32(&part->writers);

	if (phase == REPLKAFKA_PHASE_CATCHING_UP && total > 0)
		ereport(NOTICE,
				errmsg("%s partition %d: %s, %lld of %lld records read",
					   change, partition, replkafka_phase_name(phase),
					   (long long) Min(done, total), (long long) total));
	else if (phase == REPLKAFKA_PHASE_WAITING_FOR_WRITERS && writers > 0)
		ereport(NOTICE,
				errmsg_plural("%s partition %d: %s, %u transaction still writes it",
							  "%s partition %d: %s, %u transactions still write it",
							  writers, change, partition,
							  replkafka_phase_name(phase), writers));
	else
		ereport(NOTICE,
				errmsg("%s partition %d: %s", change, partition,
					   replkafka_phase_name(phase)));
}

/*
 * Make sure mastership_exit() runs when this session ends.
 */
static void
mastership_register_exit(void)
{
	static bool registered = false;

	if (!registered)
		before_shmem_exit(mastership_exit, (Datum) 0);
	registered = true;
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
 * Lock the catalog row of partition and return this node's role in it,
 * after checking the cluster exists.
 */
static ReplkafkaRole
lock_partition(int partition, ReplkafkaCluster *cluster)
{
	int			role;
	uint32		generation;

	if (!replkafka_catalog_get_cluster(cluster))
		elog(ERROR, "replkafka cluster does not exist");
	replkafka_shmem_ensure_loaded();
	replkafka_catalog_lock_partition(partition, &role, &generation);
	return (ReplkafkaRole) role;
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
	ReplkafkaCluster cluster;
	ReplkafkaRole role;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	mastership_register_exit();
	promote_wait_for_shipper(partition, deadline);
	role = lock_partition(partition, &cluster);
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
	replkafka_check_not_stale(partition);
	return promote_partition(partition, role, cluster.topic, deadline);
}

/*
 * A generation started while nobody ships would take writes that are
 * never shipped.  Refuse while the shipper is failing; wait, within the
 * deadline, while it starts (again, after an error): once it runs, its slot exists and decodes
 * from a consistent point, so every transaction of the new generation is
 * shipped.  The shipper creates its slot after the transactions running
 * then end: a transaction that already wrote cannot wait for it.
 */
static void
promote_wait_for_shipper(int partition, TimestampTz deadline)
{
	TimestampTz began = GetCurrentTimestamp();

	for (;;)
	{
		ReplkafkaWorkerStatus shipper;

		/*
		 * Failing now: retrying, or an error since this call began.  An
		 * older error (a shipper that started before its database existed)
		 * gets the shipper's next start to clear it.
		 */
		replkafka_worker_get_status(REPLKAFKA_SHIPPER_SLOT, &shipper);
		if (shipper.failing &&
			(shipper.state == REPLKAFKA_WORKER_RETRYING || shipper.error_time >= began))
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("could not promote node \"%s\" for partition %d: its shipper is failing",
						   replkafka_node_name, partition),
					shipper.state == REPLKAFKA_WORKER_RETRYING ?
					errdetail("The shipper is retrying; its last error, at %s, has SQLSTATE %s: %s%s",
							  timestamptz_to_str(shipper.error_time),
							  shipper.error_sqlstate, shipper.last_error,
							  pg_str_endswith(shipper.last_error, ".") ? "" : ".") :
					errdetail("The shipper failed at %s with SQLSTATE %s: %s%s",
							  timestamptz_to_str(shipper.error_time),
							  shipper.error_sqlstate, shipper.last_error,
							  pg_str_endswith(shipper.last_error, ".") ? "" : "."),
					errhint("See replkafka.workers; promote once the shipper runs."));
		if (shipper.state == REPLKAFKA_WORKER_RUNNING)
			return;
		if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("could not promote node \"%s\" for partition %d: its shipper is not running",
						   replkafka_node_name, partition),
					errdetail("The shipper is %s, and this transaction already wrote: the shipper may be waiting for it to end.",
							  replkafka_worker_state_name(shipper.state)),
					errhint("Call replkafka.promote() in a transaction of its own."));
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					errcode(ERRCODE_QUERY_CANCELED),
					errmsg("could not promote node \"%s\" for partition %d within the timeout",
						   replkafka_node_name, partition),
					errdetail("Its shipper is %s.", replkafka_worker_state_name(shipper.state)),
					errhint("See replkafka.workers; promote once the shipper runs."));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Write a control record (NEW_GEN or END_GEN) of this node to the
 * partition; returns its offset.  Its commit LSN is lsn, its time now.
 */
static int64
write_control_record(RkmType type, int partition, const char *topic,
					 uint64 scn, XLogRecPtr lsn, TimestampTz deadline)
{
	StringInfoData record;

	initStringInfo(&record);
	rkm_write_control(&record, type, partition, scn, lsn,
					  GetCurrentTimestamp() + RKM_UNIX_EPOCH_OFFSET,
					  replkafka_node_name);
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
		mastership_notice_progress(partition, "promoting");
		(void) ConditionVariableTimedSleep(&replkafka_shared->promote_cv,
										   Min(remaining, 1000),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * Promote a partition this node is replica of, or offline in.
 */
static uint32
promote_partition(int partition, ReplkafkaRole role, const char *topic,
				  TimestampTz deadline)
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
	part->promote_pid = MyProcPid;
	part->promote_offset = PG_INT64_MAX;
	part->promote_base = part->generation;
	part->promote_generation = 0;
	part->promote_pending = false;
	part->phase = REPLKAFKA_PHASE_CATCHING_UP;
	part->phase_started = GetCurrentTimestamp();
	part->phase_from = part->next_offset;
	part->phase_to = 0;
	LWLockRelease(replkafka_shared->lock);
	progress_noticed = GetCurrentTimestamp();
	/* an offline partition: its apply worker starts applying it */
	replkafka_wake_apply_workers();

	/*
	 * A won promotion stays WON until its role change is published at
	 * commit (or undone at abort), so that the apply worker does not take
	 * the partition up again in between (shmem.c).
	 */
	PG_TRY();
	{
		new_generation = promote_steps(partition, role, topic, deadline);
	}
	PG_CATCH();
	{
		LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
		part->promote_state = REPLKAFKA_PROMOTE_NONE;
		LWLockRelease(replkafka_shared->lock);
		replkafka_wake_apply_workers();
		PG_RE_THROW();
	}
	PG_END_TRY();
	return new_generation;
}

/*
 * The steps of promote_partition(): catch up, write NEW_GEN, wait for the
 * outcome, record the new role.
 */
static uint32
promote_steps(int partition, ReplkafkaRole role, const char *topic,
			  TimestampTz deadline)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	rd_kafka_t *consumer;
	int64		low;
	int64		high;
	int64		newgen_offset;
	XLogRecPtr	newgen_lsn;
	uint32		generation;
	uint32		lost_generation;
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
	part->phase_from = part->next_offset;
	part->phase_to = high;
	LWLockRelease(replkafka_shared->lock);
	replkafka_wake_apply_workers();
	promote_wait(part, partition, REPLKAFKA_PROMOTE_CATCHUP, high, deadline);
	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	generation = part->generation;
	state = part->promote_state;
	strlcpy(winner, part->promote_winner, sizeof(winner));
	lost_generation = part->promote_generation;
	if (state == REPLKAFKA_PROMOTE_CATCHUP && part->promote_pending &&
		part->next_offset >= high)
	{
		/* the last generation before the log end is another promotion's */
		state = REPLKAFKA_PROMOTE_LOST;
		lost_generation = part->promote_pending_generation;
	}
	LWLockRelease(replkafka_shared->lock);
	if (state == REPLKAFKA_PROMOTE_LOST)
		promote_report_lost(partition, winner, lost_generation, role);
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
				errdetail("This node read the log up to offset %lld of %lld.",
						  (long long) part->next_offset, (long long) high),
				errhint("Promote again with a longer timeout once the node caught up."));
	if (generation == PG_UINT32_MAX)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("partition %d has used up its generations", partition));

	/* Start the new generation, and wait for the worker to read it back. */
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->promote_generation = generation + 1;
	LWLockRelease(replkafka_shared->lock);
	replkafka_set_phase(partition, REPLKAFKA_PHASE_WRITING_NEW_GEN);
	newgen_lsn = GetXLogInsertRecPtr();
	newgen_offset = write_control_record(RKM_NEW_GEN, partition, topic,
										 RKM_SCN(generation + 1, 0),
										 newgen_lsn, deadline);
	replkafka_set_phase(partition, REPLKAFKA_PHASE_READING_NEW_GEN);
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->promote_state == REPLKAFKA_PROMOTE_CATCHUP)
		part->promote_state = REPLKAFKA_PROMOTE_NEWGEN;
	LWLockRelease(replkafka_shared->lock);
	replkafka_wake_apply_workers();
	promote_wait(part, partition, REPLKAFKA_PROMOTE_NEWGEN, 0, deadline);

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	state = part->promote_state;
	strlcpy(winner, part->promote_winner, sizeof(winner));
	lost_generation = part->promote_generation;
	LWLockRelease(replkafka_shared->lock);
	if (state == REPLKAFKA_PROMOTE_LOST)
		promote_report_lost(partition, winner, lost_generation, role);
	if (state != REPLKAFKA_PROMOTE_WON)
		ereport(ERROR,
				errcode(ERRCODE_QUERY_CANCELED),
				errmsg("could not promote node \"%s\" for partition %d within the timeout",
					   replkafka_node_name, partition),
				errdetail("Its NEW_GEN record of generation %u is at Kafka offset %lld, but this node has not read it yet; the generation will have no primary.",
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
	/* from now on this node's rows hold its own writes (see check_not_stale) */
	replkafka_catalog_delete_consumer_checkpoint(partition);
	replkafka_set_role_at_commit(partition, REPLKAFKA_ROLE_PRIMARY,
								 generation + 1);
	ereport(LOG,
			errmsg("node \"%s\" is primary of partition %d in generation %u",
				   replkafka_node_name, partition, generation + 1),
			errdetail("Its NEW_GEN record is at Kafka offset %lld.",
					  (long long) newgen_offset));
	return generation + 1;
}

/*
 * Hand over a partition this node is primary of, within timeout_ms: stop
 * writes, ship everything, write END_GEN and become a replica.  Must run
 * outside a transaction block; the caller has checked the node's
 * configuration and the partition number.
 */
void
replkafka_demote(int partition, int timeout_ms)
{
	TimestampTz deadline;
	ReplkafkaCluster cluster;
	ReplkafkaRole role;
	ReplkafkaPartition *part;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	mastership_register_exit();
	role = lock_partition(partition, &cluster);
	part = replkafka_partition_state(partition);
	if (role != REPLKAFKA_ROLE_PRIMARY)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is not primary of partition %d",
					   replkafka_node_name, partition),
				errdetail("This node's role in partition %d is %s.",
						  partition, replkafka_role_name(role)),
				role == REPLKAFKA_ROLE_ERROR ?
				errhint("See the last_error column of replkafka.partitions.") : 0);

	/* From here on the fence lets no new transaction write the partition. */
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->handover = true;
	part->handover_pid = MyProcPid;
	part->phase = REPLKAFKA_PHASE_WAITING_FOR_WRITERS;
	part->phase_started = GetCurrentTimestamp();
	part->phase_from = part->phase_to = 0;
	LWLockRelease(replkafka_shared->lock);
	progress_noticed = GetCurrentTimestamp();
	pg_memory_barrier();

	PG_TRY();
	{
		demote_steps(partition, cluster.topic, deadline);
	}
	PG_CATCH();
	{
		/* the fence stays closed if END_GEN may be in Kafka */
		LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
		part->handover = false;
		LWLockRelease(replkafka_shared->lock);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * The flag stays until the role change is published at commit, or
	 * undone at abort; then, if the END_GEN may be in Kafka, the shipper
	 * finishes the handover (shipper_finish_handover()).
	 */
}

/*
 * The end of the last WAL record inserted, as the shipper's decoding
 * reports record ends: GetXLogInsertRecPtr() points past the page header
 * when the last record ended exactly at a page boundary, a position the
 * shipper would only pass once more WAL is written.
 */
static XLogRecPtr
demote_wal_end(void)
{
	XLogRecPtr	lsn = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(lsn, wal_segment_size) == SizeOfXLogLongPHD)
		lsn -= SizeOfXLogLongPHD;
	else if (lsn % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		lsn -= SizeOfXLogShortPHD;
	return lsn;
}

/*
 * Transactions prepared for two-phase commit that may write partition:
 * those prepared since the server started that wrote it, and those
 * prepared before, whose partition is not known.
 */
static int
demote_prepared_writers(int partition)
{
	List	   *gids = replkafka_catalog_prepared_gids();
	ListCell   *lc;
	int			n = 0;

	foreach(lc, gids)
	{
		int			p;

		if (!replkafka_prepared_partition(lfirst(lc), &p) || p == partition)
			n++;
	}
	list_free_deep(gids);
	return n;
}

/*
 * Wait until no transaction writes partition, prepared ones included.  A
 * transaction counts as a writer from its first row of the partition, and
 * is remembered as prepared before it stops counting, so it is never
 * missed.
 */
static void
demote_wait_for_writers(ReplkafkaPartition *part, int partition,
						TimestampTz deadline)
{
	for (;;)
	{
		uint32		writers = pg_atomic_read_u32(&part->writers);
		int			prepared = writers == 0 ? demote_prepared_writers(partition) : 0;

		if (writers == 0 && prepared == 0)
			break;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					errcode(ERRCODE_QUERY_CANCELED),
					errmsg("could not demote node \"%s\" in partition %d within the timeout",
						   replkafka_node_name, partition),
					writers > 0 ?
					errdetail_plural("%u transaction writing the partition did not end.",
									 "%u transactions writing the partition did not end.",
									 writers, writers) :
					errdetail_plural("%d prepared transaction may write the partition.",
									 "%d prepared transactions may write the partition.",
									 prepared, prepared),
					writers > 0 ?
					errhint("The partition takes writes again.  End the long transactions, or demote with a longer timeout.") :
					errhint("The partition takes writes again.  Finish them with COMMIT PREPARED or ROLLBACK PREPARED (see pg_prepared_xacts), or demote with a longer timeout."));
		mastership_notice_progress(partition, "demoting");
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 writers > 0 ? 5 : 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Wait until the shipper has Kafka's acknowledgement for everything
 * committed before lsn.
 */
static void
demote_wait_for_kafka(ReplkafkaPartition *part, int partition,
					  XLogRecPtr lsn, TimestampTz deadline)
{
	ConditionVariablePrepareToSleep(&replkafka_shared->ack_cv);
	for (;;)
	{
		long		remaining;

		if (pg_atomic_read_u64(&replkafka_shared->acked_lsn) >= lsn)
			break;
		if (part->role != REPLKAFKA_ROLE_PRIMARY)
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("could not demote node \"%s\" in partition %d: the partition went to error",
						   replkafka_node_name, partition),
					errdetail("%s", part->last_error));
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
			ereport(ERROR,
					errcode(ERRCODE_QUERY_CANCELED),
					errmsg("could not demote node \"%s\" in partition %d within the timeout",
						   replkafka_node_name, partition),
					errdetail("Kafka has not acknowledged every transaction committed up to %X/%X.",
							  LSN_FORMAT_ARGS(lsn)),
					errhint("The partition takes writes again.  See the last_error column of replkafka.partitions for the shipper's trouble."));
		replkafka_wake_shipper();
		mastership_notice_progress(partition, "demoting");
		(void) ConditionVariableTimedSleep(&replkafka_shared->ack_cv,
										   Min(remaining, 1000),
										   PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	ConditionVariableCancelSleep();
}

/*
 * Read this node's generation of partition back from its producer
 * checkpoint to the end of the log, *high.
 *
 * The end of the log Kafka reports can be behind a record it already
 * acknowledged: a broker that just became the partition's leader learns
 * the high watermark from its followers a little later.  So the read goes
 * at least past the last record Kafka acknowledged to the shipper, waiting
 * for it if need be: a transaction of ours missed here would come before
 * our END_GEN with a higher sequence number than it carries.
 */
static void
demote_read_log(rd_kafka_t *consumer, int partition, const char *topic,
				uint32 generation, LogScan *scan, int64 *high,
				TimestampTz deadline)
{
	ReplkafkaProducerCheckpoint ckpt;
	int64		low;
	int64		shipped_end;

	if (!replkafka_catalog_get_producer_checkpoint(partition, &ckpt) ||
		RKM_SCN_GENERATION(ckpt.scn) != generation)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("could not demote node \"%s\" in partition %d: it has no producer checkpoint of generation %u",
					   replkafka_node_name, partition, generation));
	replkafka_kafka_watermarks(consumer, topic, partition, &low, high,
							   deadline);
	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	shipped_end = replkafka_partition_state(partition)->shipped_offset + 1;
	LWLockRelease(replkafka_shared->lock);
	*high = Max(*high, shipped_end);
	replkafka_logscan_init(scan, generation, RKM_SCN_SEQUENCE(ckpt.scn),
						   ckpt.commit_lsn, ckpt.kafka_offset);
	replkafka_logscan_read(scan, consumer, topic, partition,
						   Max(low, ckpt.kafka_offset + 1), *high, deadline);
}

/*
 * Write END_GEN, carrying the last sequence number of our generation, and
 * check that nothing but lost elections came between the end of the log
 * read before, from, and it.  Once END_GEN may have reached Kafka the generation
 * is over, whatever happens: any error here (a timeout, a cancel) only
 * means this node cannot tell whether its END_GEN is there, and it
 * becomes a replica all the same, from its last transaction, which every
 * replica agrees on.  So errors are caught, in a subtransaction, and
 * reported as a WARNING.
 */
static void
demote_end_generation(rd_kafka_t *consumer, int partition, const char *topic,
					  uint32 generation, XLogRecPtr lsn, int64 from,
					  DemoteEnd *end, TimestampTz deadline)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	/* Whatever happens now, the generation takes no more writes. */
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	replkafka_partition_state(partition)->ended_generation = generation;
	LWLockRelease(replkafka_shared->lock);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		int64		end_offset;
		LogScan		between;

		end_offset = write_control_record(RKM_END_GEN, partition, topic,
										  RKM_SCN(generation, end->seq), lsn,
										  deadline);
		replkafka_logscan_init(&between, generation, end->seq,
							   InvalidXLogRecPtr, end->offset);
		replkafka_logscan_read(&between, consumer, topic, partition, from,
							   end_offset, deadline);
		if (between.foreign)
			ereport(WARNING,
					errmsg("node \"%s\" ended generation %u of partition %d after another node started a newer one",
						   replkafka_node_name, generation, partition),
					errdetail("%s, before this node's END_GEN record at offset %lld.  This node's transactions are all before it.",
							  between.foreign_detail, (long long) end_offset));
		else
		{
			end->offset = end_offset;
			end->ended = true;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ereport(WARNING,
				errmsg("could not confirm that Kafka holds the END_GEN record of generation %u of partition %d",
					   generation, partition),
				errdetail("%s.  Node \"%s\" becomes a replica of the partition all the same: every transaction of the generation is in Kafka, and the generation takes no more.",
						  edata->message, replkafka_node_name),
				errhint("Promote a node to start the next generation."));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * The Kafka side of a demotion: check that everything after the producer
 * checkpoint is ours, and end the generation.  A demotion interrupted
 * after its END_GEN reached Kafka (the session ended meanwhile) is
 * finished without writing another.  Sets *end.
 */
static void
demote_in_kafka(int partition, const char *topic, uint32 generation,
				XLogRecPtr lsn, DemoteEnd *end, TimestampTz deadline)
{
	rd_kafka_t *consumer;

	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_CONSUMER, NULL);
	PG_TRY();
	{
		LogScan		scan;
		int64		high;

		demote_read_log(consumer, partition, topic, generation, &scan, &high,
						deadline);

		/*
		 * Our own END_GEN, from a demotion whose session ended, with nothing
		 * of ours after it: the handover happened, whoever wrote since.
		 */
		if (replkafka_logscan_ended_cleanly(&scan))
		{
			end->seq = scan.seq;
			end->offset = scan.ended_offset;
			end->ended = true;
		}
		else if (scan.foreign || scan.hole || scan.ended)
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("could not demote node \"%s\" in partition %d: its log is not this node's alone",
						   replkafka_node_name, partition),
					scan.foreign ? errdetail("%s.", scan.foreign_detail) :
					scan.hole ? errdetail("Kafka lacks transaction %u of generation %u.",
										  scan.hole_seq, generation) :
					errdetail("This node wrote transactions after its END_GEN record at offset %lld.",
							  (long long) scan.ended_offset));
		else
		{
			end->seq = scan.seq;
			end->offset = scan.offset;
			end->ended = false;
			replkafka_set_phase(partition, REPLKAFKA_PHASE_WRITING_END_GEN);
			demote_end_generation(consumer, partition, topic, generation,
								  lsn, high, end, deadline);
		}
	}
	PG_FINALLY();
	{
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	PG_END_TRY();
}

/*
 * The steps of replkafka_demote() once the fence is closed.
 */
static void
demote_steps(int partition, const char *topic, TimestampTz deadline)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	uint32		generation = part->generation;
	XLogRecPtr	lsn;
	DemoteEnd	end;
	ReplkafkaConsumerCheckpoint cckpt;

	/* Every transaction of the partition has committed below lsn. */
	demote_wait_for_writers(part, partition, deadline);
	lsn = demote_wal_end();
	XLogFlush(lsn);
	replkafka_set_phase(partition, REPLKAFKA_PHASE_WAITING_FOR_KAFKA);
	demote_wait_for_kafka(part, partition, lsn, deadline);

	/* End the generation. */
	replkafka_set_phase(partition, REPLKAFKA_PHASE_READING_LOG);
	demote_in_kafka(partition, topic, generation, lsn, &end, deadline);

	/* A replica from the END_GEN record on (or from our last record). */
	replkafka_catalog_set_role(partition, REPLKAFKA_ROLE_REPLICA, generation,
							   NULL);
	cckpt.partition = partition;
	cckpt.generation = generation;
	cckpt.scn = RKM_SCN(generation, end.seq);
	cckpt.kafka_offset = end.offset;
	cckpt.ended = end.ended;
	replkafka_catalog_save_consumer_checkpoint(&cckpt);
	replkafka_set_role_at_commit(partition, REPLKAFKA_ROLE_REPLICA, generation);
	ereport(LOG,
			errmsg("node \"%s\" handed over partition %d at the end of generation %u",
				   replkafka_node_name, partition, generation),
			end.ended ?
			errdetail("Its END_GEN record is at Kafka offset %lld, after transaction %u.",
					  (long long) end.offset, end.seq) :
			errdetail("It resumes as a replica after Kafka offset %lld, its transaction %u.",
					  (long long) end.offset, end.seq));
}

/*
 * Fail if this node was primary of partition after the last transaction
 * it applied (a stale primary): its rows of the partition include its own
 * writes of that generation, some of which may not be part of the
 * cluster's history, so applying the log from its consumer checkpoint
 * would apply them a second time, or mix them with another node's.
 */
void
replkafka_check_not_stale(int partition)
{
	uint32		generation;

	if (replkafka_catalog_primary_since_applied(partition, &generation))
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" was primary of partition %d in generation %u after the last transaction it applied",
					   replkafka_node_name, partition, generation),
				errdetail("Its rows of the partition include its own writes of generation %u; applying the log from its consumer checkpoint would apply them again.",
						  generation),
				errhint("Rebuild the partition as doc/operations.md describes under \"A stale primary\"."));
}
