/*-------------------------------------------------------------------------
 *
 * promotion.c
 *		promote(): the promotion protocol, in the promoting backend and in
 *		the apply worker that reads the log for it.
 *
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
 * STATES
 * ------
 * The state of a promotion (ReplkafkaPromotion in shared memory) is
 * changed here only, under replkafka_shared->lock:
 *
 *	NONE ---promote()---> CATCHUP ---log end reached, NEW_GEN written---> NEWGEN
 *	CATCHUP ---our NEW_GEN read (written before we were told where)---> WON
 *	CATCHUP ---a generation unknown at the start, after the log end, or the
 *			   last one before it without a transaction---> LOST
 *	NEWGEN ---our NEW_GEN read first---> WON
 *	NEWGEN ---another node's NEW_GEN of the generation, or a newer one---> LOST
 *	WON ---role change committed or rolled back (roles.c)---> NONE
 *	any ---error, or the session ends---> NONE
 *
 * The backend moves NONE to CATCHUP to NEWGEN, and back to NONE on
 * failure; the worker moves CATCHUP and NEWGEN to WON or LOST, and wakes
 * the backend through promote_cv.  The worker applies the partition while
 * the promotion is not WON (an offline one too), and stops at WON: from
 * there on the partition's records are this node's own.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/promotion.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "common/string.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "kafka.h"
#include "mastership.h"
#include "message.h"
#include "promotion.h"
#include "roles.h"
#include "settings.h"
#include "shmem.h"
#include "worker.h"

static void promotion_exit(int code, Datum arg);
static void promotion_register_exit(void);
static void promote_wait_for_shipper(int partition, TimestampTz deadline);
static void promote_report_lost(int partition, const char *winner,
								uint32 generation, ReplkafkaRole role) pg_attribute_noreturn();
static uint32 promote_partition(int partition, ReplkafkaRole role,
								const char *topic, TimestampTz deadline);
static uint32 promote_steps(int partition, ReplkafkaRole role,
							const char *topic, TimestampTz deadline);
static void promote_wait(ReplkafkaPartition *part, int partition,
						 ReplkafkaPromoteState until, int64 offset,
						 TimestampTz deadline);

/*
 * A session that ends (FATAL, or terminated) while it promotes a partition
 * goes without PG_CATCH and without a role change to undo: give the
 * partition back to its apply worker, as an error would.
 */
static void
promotion_exit(int code, Datum arg)
{
	bool		found = false;

	if (replkafka_shared == NULL || !replkafka_shared->loaded)
		return;
	/* a FATAL error may have left it held: exit runs before the abort */
	LWLockReleaseAll();
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	for (int p = 0; p < replkafka_shared->npartitions; p++)
	{
		ReplkafkaPartition *part = &replkafka_shared->partitions[p];

		if (part->promotion.state != REPLKAFKA_PROMOTE_NONE &&
			part->promotion.pid == MyProcPid)
		{
			part->promotion.state = REPLKAFKA_PROMOTE_NONE;
			found = true;
		}
	}
	LWLockRelease(replkafka_shared->lock);
	if (found)
		replkafka_wake_apply_workers();
}

/*
 * Make sure promotion_exit() runs when this session ends.
 */
static void
promotion_register_exit(void)
{
	static bool registered = false;

	if (!registered)
		before_shmem_exit(promotion_exit, (Datum) 0);
	registered = true;
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
	promotion_register_exit();
	promote_wait_for_shipper(partition, deadline);
	role = replkafka_mastership_lock(partition, &cluster);
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
	if (role == REPLKAFKA_ROLE_BOOTSTRAPPING)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is bootstrapping partition %d",
					   replkafka_node_name, partition),
				errhint("Promote it once it is replica of the partition."));
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
		 * Failing now: retrying, or an error since this call began.  An older
		 * error (a shipper that started before its database existed) gets the
		 * shipper's next start to clear it.
		 */
		replkafka_worker_status_get(REPLKAFKA_SHIPPER_SLOT, &shipper);
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
		ReplkafkaProgress progress;

		replkafka_partition_get_progress(partition, &progress);
		LWLockAcquire(replkafka_shared->lock, LW_SHARED);
		if (until == REPLKAFKA_PROMOTE_CATCHUP)
			done = progress.next_offset >= offset;
		else
			done = part->promotion.state == REPLKAFKA_PROMOTE_WON;
		done = done || part->promotion.state == REPLKAFKA_PROMOTE_LOST;
		done = done || part->role == REPLKAFKA_ROLE_ERROR;
		LWLockRelease(replkafka_shared->lock);
		if (done)
			break;

		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
			break;
		replkafka_mastership_notice_progress(partition, "promoting");
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
	if (part->promotion.state != REPLKAFKA_PROMOTE_NONE)
	{
		LWLockRelease(replkafka_shared->lock);
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_IN_USE),
				errmsg("partition %d is being promoted by another session",
					   partition));
	}
	part->promotion.state = REPLKAFKA_PROMOTE_CATCHUP;
	part->promotion.pid = MyProcPid;
	part->promotion.offset = PG_INT64_MAX;
	part->promotion.base = part->generation;
	part->promotion.generation = 0;
	part->promotion.pending = false;
	part->promotion.won_offset = -1;
	LWLockRelease(replkafka_shared->lock);
	replkafka_begin_phases(partition, REPLKAFKA_PHASE_CATCHING_UP);
	/* an offline partition: its apply worker starts applying it */
	replkafka_wake_apply_workers();

	/*
	 * A won promotion stays WON until its role change is published at commit
	 * (or undone at abort), so that the apply worker does not take the
	 * partition up again in between (roles.c).
	 */
	PG_TRY();
	{
		new_generation = promote_steps(partition, role, topic, deadline);
	}
	PG_CATCH();
	{
		LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
		part->promotion.state = REPLKAFKA_PROMOTE_NONE;
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
	int64		won_offset;
	XLogRecPtr	newgen_lsn;
	uint32		generation;
	uint32		lost_generation;
	ReplkafkaPromoteState state;
	char		winner[64];
	ReplkafkaProducerCheckpoint pckpt;
	ReplkafkaProgress progress;

	/* Catch up to the end of the log as it is now. */
	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_READER, NULL);
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

	replkafka_partition_get_progress(partition, &progress);
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->promotion.offset = high;
	LWLockRelease(replkafka_shared->lock);
	replkafka_set_phase_range(partition, REPLKAFKA_PHASE_CATCHING_UP,
							  progress.next_offset, high);
	replkafka_wake_apply_workers();
	for (;;)
	{
		promote_wait(part, partition, REPLKAFKA_PROMOTE_CATCHUP, high, deadline);
		replkafka_partition_get_progress(partition, &progress);

		/*
		 * A worker that must apply a transaction again goes back to its
		 * checkpoint, perhaps after the wait saw it past the log end: wait
		 * for it again, within the deadline.
		 */
		if (progress.next_offset >= high ||
			GetCurrentTimestamp() >= deadline ||
			part->role == REPLKAFKA_ROLE_ERROR ||
			part->promotion.state != REPLKAFKA_PROMOTE_CATCHUP)
			break;
	}
	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	generation = part->generation;
	state = part->promotion.state;
	strlcpy(winner, part->promotion.winner, sizeof(winner));
	lost_generation = part->promotion.generation;
	if (state == REPLKAFKA_PROMOTE_CATCHUP && part->promotion.pending &&
		progress.next_offset >= high)
	{
		/* the last generation before the log end is another promotion's */
		state = REPLKAFKA_PROMOTE_LOST;
		lost_generation = part->promotion.pending_generation;
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
	if (progress.next_offset < high)
		ereport(ERROR,
				errcode(ERRCODE_QUERY_CANCELED),
				errmsg("could not promote node \"%s\" for partition %d within the timeout",
					   replkafka_node_name, partition),
				errdetail("This node read the log up to offset %lld of %lld.",
						  (long long) progress.next_offset, (long long) high),
				errhint("Promote again with a longer timeout once the node caught up."));
	if (generation == PG_UINT32_MAX)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("partition %d has used up its generations", partition));

	/* Start the new generation, and wait for the worker to read it back. */
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->promotion.generation = generation + 1;
	LWLockRelease(replkafka_shared->lock);
	replkafka_set_phase(partition, REPLKAFKA_PHASE_WRITING_NEW_GEN);
	newgen_lsn = GetXLogInsertRecPtr();
	newgen_offset = replkafka_mastership_write_control(RKM_NEW_GEN, partition, topic,
													   RKM_SCN(generation + 1, 0),
													   newgen_lsn, deadline);
	replkafka_set_phase(partition, REPLKAFKA_PHASE_READING_NEW_GEN);
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->promotion.state == REPLKAFKA_PROMOTE_CATCHUP)
		part->promotion.state = REPLKAFKA_PROMOTE_NEWGEN;
	LWLockRelease(replkafka_shared->lock);
	replkafka_wake_apply_workers();
	promote_wait(part, partition, REPLKAFKA_PROMOTE_NEWGEN, 0, deadline);

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	state = part->promotion.state;
	strlcpy(winner, part->promotion.winner, sizeof(winner));
	lost_generation = part->promotion.generation;
	won_offset = part->promotion.won_offset;
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

	/*
	 * Won: the apply worker applied everything before our NEW_GEN.  The
	 * producer checkpoint is the copy of it the worker read first, which is
	 * not always the one Kafka acknowledged: the control producer writes a
	 * record again when an acknowledgement is lost, and another node's
	 * NEW_GEN may land between the copies.  The shipper reads the log from
	 * its checkpoint on, and must see that NEW_GEN.
	 */
	if (won_offset < 0)
		elog(ERROR, "promotion of partition %d won without an offset", partition);
	Assert(won_offset <= newgen_offset);
	if (won_offset != newgen_offset)
		ereport(LOG,
				errmsg("the NEW_GEN record of node \"%s\" for partition %d was written again",
					   replkafka_node_name, partition),
				errdetail("Its first copy, at Kafka offset %lld, started generation %u; Kafka acknowledged the copy at offset %lld.",
						  (long long) won_offset, generation + 1,
						  (long long) newgen_offset));
	replkafka_catalog_set_role(partition, REPLKAFKA_ROLE_PRIMARY,
							   generation + 1, NULL, NULL);
	pckpt.partition = partition;
	pckpt.scn = RKM_SCN(generation + 1, 0);
	pckpt.commit_lsn = newgen_lsn;
	pckpt.kafka_offset = won_offset;
	replkafka_catalog_save_producer_checkpoint(&pckpt);
	/* from now on this node's rows hold its own writes (see check_not_stale) */
	replkafka_catalog_delete_consumer_checkpoint(partition);
	replkafka_roles_set_at_commit(partition, REPLKAFKA_ROLE_PRIMARY,
								  generation + 1);
	ereport(LOG,
			errmsg("node \"%s\" is primary of partition %d in generation %u",
				   replkafka_node_name, partition, generation + 1),
			errdetail("Its NEW_GEN record is at Kafka offset %lld.",
					  (long long) won_offset));
	return generation + 1;
}

/*
 * Whether the apply worker applies a partition in role whose promotion is
 * in state: a replica, or an offline partition being promoted, until the
 * promotion is won.  From then on the partition's records are this node's
 * own, and applying them would write its rows twice.  The caller read
 * both under the lock.
 */
bool
replkafka_promotion_applies(ReplkafkaRole role, ReplkafkaPromoteState state)
{
	return (role == REPLKAFKA_ROLE_REPLICA ||
			(role == REPLKAFKA_ROLE_OFFLINE && state != REPLKAFKA_PROMOTE_NONE)) &&
		state != REPLKAFKA_PROMOTE_WON;
}

/*
 * A NEW_GEN record while this node promotes the partition: ours, of the
 * generation we asked for (the first copy, if a retry wrote it twice),
 * means we won; another node's of that generation or a newer one, before
 * ours, means we lost.  prev_generation and prev_origin are the
 * partition's generation before the record.  The promoting backend waits
 * on promote_cv.  Returns true if we won: the records after our NEW_GEN
 * are ours, and the worker must not apply those it fetched already.
 */
bool
replkafka_promotion_new_generation(int p, int64 offset, const RkmHeader *hdr,
								   uint32 prev_generation,
								   const char *prev_origin)
{
	ReplkafkaPartition *part = replkafka_partition_state(p);
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);
	bool		changed = false;
	bool		won;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->promotion.state == REPLKAFKA_PROMOTE_CATCHUP &&
		gen > part->promotion.base && gen > prev_generation)
	{
		/*
		 * A generation this node did not know when the promotion began. Ours,
		 * if the backend already wrote its NEW_GEN but has not told us where
		 * yet; otherwise another node became primary first.
		 */
		if (gen == part->promotion.generation &&
			strcmp(hdr->origin, replkafka_node_name) == 0)
		{
			part->promotion.state = REPLKAFKA_PROMOTE_WON;
			part->promotion.won_offset = offset;
			changed = true;
		}
		else if (offset < part->promotion.offset)
		{
			/*
			 * Before the log end the promotion catches up to: lost if it is
			 * the last generation there and has no transaction yet (see
			 * replkafka_promotion_record_read()).
			 */
			part->promotion.pending = true;
			part->promotion.pending_generation = gen;
			strlcpy(part->promotion.winner, hdr->origin, sizeof(part->promotion.winner));
		}
		else
		{
			part->promotion.state = REPLKAFKA_PROMOTE_LOST;
			part->promotion.generation = gen;
			strlcpy(part->promotion.winner, hdr->origin, sizeof(part->promotion.winner));
			changed = true;
		}
	}
	else if (part->promotion.state == REPLKAFKA_PROMOTE_NEWGEN &&
			 gen >= part->promotion.generation)
	{
		if (gen == part->promotion.generation &&
			strcmp(hdr->origin, replkafka_node_name) == 0 &&
			gen > prev_generation)
		{
			part->promotion.state = REPLKAFKA_PROMOTE_WON;
			part->promotion.won_offset = offset;
		}
		else
		{
			/* the generation we wanted, or a newer one, began elsewhere */
			bool		newer = gen > prev_generation;

			part->promotion.state = REPLKAFKA_PROMOTE_LOST;
			part->promotion.generation = newer ? gen : prev_generation;
			strlcpy(part->promotion.winner,
					newer ? hdr->origin : prev_origin,
					sizeof(part->promotion.winner));
		}
		changed = true;
	}
	won = part->promotion.state == REPLKAFKA_PROMOTE_WON;
	LWLockRelease(replkafka_shared->lock);

	if (changed)
		ConditionVariableBroadcast(&replkafka_shared->promote_cv);
	return won;
}

/*
 * The worker read a record of partition p other than a NEW_GEN: one of the
 * generation a promotion found pending while catching up means that
 * generation's primary wrote, so it is history, not a promotion of the
 * moment.  (A HEARTBEAT too: only a shipper writes one, for a role that
 * its promotion committed.)
 */
void
replkafka_promotion_record_read(int p, const RkmHeader *hdr)
{
	ReplkafkaPartition *part = replkafka_partition_state(p);

	if (!part->promotion.pending)
		return;
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->promotion.pending &&
		part->promotion.state == REPLKAFKA_PROMOTE_CATCHUP &&
		RKM_SCN_GENERATION(hdr->scn) == part->promotion.pending_generation &&
		strcmp(hdr->origin, part->promotion.winner) == 0)
		part->promotion.pending = false;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * While this node catches a partition up for a promotion, tell the
 * promoting backend how far the worker read: next_offset is the next
 * record.  (The role is read without the lock: a promotion starts in
 * CATCHUP before it wakes the worker.)
 */
void
replkafka_promotion_progress(int p, int64 next_offset)
{
	ReplkafkaPartition *part = replkafka_partition_state(p);

	if (part->promotion.state != REPLKAFKA_PROMOTE_CATCHUP)
		return;
	replkafka_partition_report_position(p, next_offset, -1, false);
	ConditionVariableBroadcast(&replkafka_shared->promote_cv);
}
