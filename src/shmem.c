/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		replkafka's shared memory, and every change made to it.
 *
 * The catalog table replkafka.partition_roles is the durable truth about
 * this node's roles; shared memory mirrors it so that the write fence can
 * check a role without a catalog lookup per row (roles.c loads it, and
 * publishes the changes transactions commit).  Beside the roles it holds
 * what the workers and role changes report as they go, what synchronous
 * commits and role changes wait for, and the transactions prepared for
 * two-phase commit.  shmem.h says which lock protects what.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"

#include "message.h"
#include "settings.h"
#include "shmem.h"

/*
 * A transaction prepared for two-phase commit since the server started,
 * with the partition it wrote: it still counts as a writer of the
 * partition until COMMIT PREPARED or ROLLBACK PREPARED.
 */
typedef struct ReplkafkaPrepared
{
	Oid			dbid;			/* InvalidOid: a free slot */
	int			partition;		/* the partition it wrote, or -1 */
	uint32		generation;		/* the partition's generation then */
	uint64		number;			/* order of remembering */
	char		gid[GIDSIZE];
} ReplkafkaPrepared;

static void shmem_request(void);
static void shmem_startup(void);
static Size shmem_size(void);
static int	prepared_slot(const char *gid);
static void partition_set_generation(ReplkafkaPartition *part,
									 uint32 generation);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Pointer to shared memory state. */
ReplkafkaShared *replkafka_shared = NULL;

/* max_prepared_xacts slots, under replkafka_shared->lock. */
static ReplkafkaPrepared *prepared = NULL;

/*
 * Install the shared memory hooks; called from _PG_init while preloading.
 */
void
replkafka_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}

/*
 * Size of the shared state, for replkafka.max_partitions partitions.
 */
static Size
shmem_size(void)
{
	return add_size(offsetof(ReplkafkaShared, partitions),
					mul_size(replkafka_max_partitions,
							 sizeof(ReplkafkaPartition)));
}

static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(shmem_size());
	RequestAddinShmemSpace(mul_size(max_prepared_xacts, sizeof(ReplkafkaPrepared)));
	RequestNamedLWLockTranche(REPLKAFKA_EXTENSION_NAME, 1);
}

static void
shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	replkafka_shared = ShmemInitStruct("replkafka shared state",
									   shmem_size(), &found);
	if (!found)
	{
		memset(replkafka_shared, 0, shmem_size());
		replkafka_shared->lock =
			&(GetNamedLWLockTranche(REPLKAFKA_EXTENSION_NAME))->lock;
		pg_atomic_init_u64(&replkafka_shared->acked_lsn, 0);
		pg_atomic_init_u64(&replkafka_shared->roles_version, 0);
		ConditionVariableInit(&replkafka_shared->ack_cv);
		ConditionVariableInit(&replkafka_shared->promote_cv);
		for (int p = 0; p < replkafka_max_partitions; p++)
		{
			pg_atomic_init_u32(&replkafka_shared->partitions[p].writers, 0);
			SpinLockInit(&replkafka_shared->partitions[p].mutex);
		}
		for (int i = 0; i < REPLKAFKA_WORKER_SLOTS; i++)
			SpinLockInit(&replkafka_shared->workers[i].mutex);
	}
	prepared = ShmemInitStruct("replkafka prepared transactions",
							   mul_size(max_prepared_xacts, sizeof(ReplkafkaPrepared)),
							   &found);
	if (!found)
		memset(prepared, 0, mul_size(max_prepared_xacts, sizeof(ReplkafkaPrepared)));
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Shared state of a partition.  The roles must be loaded.
 */
ReplkafkaPartition *
replkafka_partition_state(int partition)
{
	Assert(replkafka_shared->loaded);
	if (partition < 0 || partition >= replkafka_shared->npartitions)
		elog(ERROR, "partition %d is out of range (the cluster has %d)",
			 partition, replkafka_shared->npartitions);
	return &replkafka_shared->partitions[partition];
}

/*
 * The roles of a cluster of npartitions partitions, read from the catalog
 * (a list of ReplkafkaRoleRow), and the generation of each partition that
 * this node ended (ended.c): the first process to load them since the
 * server started publishes them.
 */
void
replkafka_shmem_load_roles(int npartitions, List *rows,
						   const ReplkafkaEnded *ended)
{
	ListCell   *lc;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (!replkafka_shared->loaded)
	{
		replkafka_shared->npartitions = npartitions;
		for (int p = 0; p < npartitions; p++)
		{
			replkafka_shared->partitions[p].ended_generation = ended[p].generation;
			replkafka_shared->partitions[p].ended_seq = ended[p].seq;
			replkafka_shared->partitions[p].ended_offset = ended[p].offset;
			replkafka_shared->partitions[p].exhausted_generation = 0;
		}
		foreach(lc, rows)
		{
			ReplkafkaRoleRow *row = lfirst(lc);
			ReplkafkaPartition *part = &replkafka_shared->partitions[row->partition];

			part->role = row->role;
			SpinLockAcquire(&part->mutex);
			partition_set_generation(part, row->generation);
			SpinLockRelease(&part->mutex);
			strlcpy(part->last_error, row->last_error ? row->last_error : "",
					REPLKAFKA_ERROR_LEN);
			strlcpy(part->error_sqlstate,
					row->error_sqlstate ? row->error_sqlstate : "",
					sizeof(part->error_sqlstate));
		}
		replkafka_shared->loaded = true;
		pg_atomic_fetch_add_u64(&replkafka_shared->roles_version, 1);
	}
	LWLockRelease(replkafka_shared->lock);
}

/*
 * Whether the roles were loaded since the server started (or the cluster
 * was created).
 */
bool
replkafka_shmem_roles_loaded(void)
{
	return replkafka_shared->loaded;
}

/*
 * The cluster was created: the roles are to be loaded again.
 */
void
replkafka_shmem_forget_roles(void)
{
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	replkafka_shared->loaded = false;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * Move part to generation, holding the lock and part's mutex.  What was
 * shipped in another generation is not shown in this one.  The apply
 * worker moves a replica's generation as it reads the log, so a
 * promotion's role change may find its generation there already.
 */
static void
partition_set_generation(ReplkafkaPartition *part, uint32 generation)
{
	if (part->generation != generation)
	{
		part->progress.shipped_scn = 0;
		part->progress.shipped_offset = -1;
	}
	part->generation = generation;
}

/*
 * Publish the role changes a transaction committed, all at once: changes
 * is a list of ReplkafkaRoleChange.  Called at commit, so it allocates
 * nothing and cannot fail.  A new
 * generation resets the shipped position; a new role the positions and
 * counters, until a worker publishes its own.  A won promotion ends with
 * its role change, and a demotion's handover too.
 */
void
replkafka_shmem_publish_roles(List *changes)
{
	ListCell   *lc;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	foreach(lc, changes)
	{
		const ReplkafkaRoleChange *change = lfirst(lc);
		ReplkafkaPartition *part = &replkafka_shared->partitions[change->partition];

		SpinLockAcquire(&part->mutex);
		partition_set_generation(part, change->generation);
		if (part->role != change->role)
		{
			part->progress.zombies_skipped = 0;
			part->progress.orphaned = 0;
			part->progress.applied_scn = 0;
			part->progress.applied_offset = -1;
			part->progress.apply_retrying = false;
			/* no lag and no catch-up until a worker takes it up */
			part->progress.next_offset = 0;
			part->progress.log_end = 0;
			part->progress.catchup_to = 0;
		}
		part->progress.phase = REPLKAFKA_PHASE_NONE;
		SpinLockRelease(&part->mutex);
		if (change->role != part->role)
		{
			/*
			 * A bootstrap asked for anew begins at once, and one in progress
			 * is not this one: its worker stops (still_bootstrapping()).
			 */
			part->bootstrap_pid = 0;
			part->bootstrap_failures = 0;
			part->bootstrap_not_before = 0;
			part->bootstrap_alone = false;
		}
		part->role = change->role;
		part->handover = false;
		part->handover_pid = 0;
		part->ended_generation = 0;
		part->promotion.state = REPLKAFKA_PROMOTE_NONE;
		if (change->role != REPLKAFKA_ROLE_ERROR)
		{
			part->last_error[0] = '\0';
			part->error_sqlstate[0] = '\0';
		}
	}
	pg_atomic_fetch_add_u64(&replkafka_shared->roles_version, 1);
	LWLockRelease(replkafka_shared->lock);
}

/*
 * A role change of partition did not commit: a demotion's partition takes
 * writes again, unless its END_GEN may be in Kafka (ended_generation stays
 * set); a promotion's is applied again.
 */
void
replkafka_shmem_role_change_undone(int partition)
{
	ReplkafkaPartition *part = &replkafka_shared->partitions[partition];

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->handover = false;
	part->promotion.state = REPLKAFKA_PROMOTE_NONE;
	LWLockRelease(replkafka_shared->lock);
	SpinLockAcquire(&part->mutex);
	part->progress.phase = REPLKAFKA_PHASE_NONE;
	SpinLockRelease(&part->mutex);
}

/*
 * The shipper's latch (NULL: the shipper whose latch it was exits).
 */
void
replkafka_shmem_set_shipper_latch(Latch *latch)
{
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (latch != NULL || replkafka_shared->shipper_latch == MyLatch)
		replkafka_shared->shipper_latch = latch;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * The latch of apply worker index (NULL: the worker whose latch it was
 * exits).
 */
void
replkafka_shmem_set_apply_latch(int index, Latch *latch)
{
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (latch != NULL || replkafka_shared->apply_latches[index] == MyLatch)
		replkafka_shared->apply_latches[index] = latch;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * The latch of bootstrap worker index (NULL: the worker whose latch it was
 * exits).
 */
void
replkafka_shmem_set_bootstrap_latch(int index, Latch *latch)
{
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (latch != NULL || replkafka_shared->bootstrap_latches[index] == MyLatch)
		replkafka_shared->bootstrap_latches[index] = latch;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * Wake the bootstrap workers: a partition may have a bootstrap to begin.
 */
void
replkafka_wake_bootstrap_workers(void)
{
	for (int i = 0; i < REPLKAFKA_MAX_BOOTSTRAPS; i++)
	{
		Latch	   *latch = replkafka_shared->bootstrap_latches[i];

		if (latch)
			SetLatch(latch);
	}
}

/*
 * Does partition wait for a bootstrap worker to take it up now (once its
 * apply worker let go of it)?  Under the LWLock.
 */
static bool
partition_bootstrap_waiting(ReplkafkaPartition *part, TimestampTz now)
{
	return part->role == REPLKAFKA_ROLE_BOOTSTRAPPING &&
		part->bootstrap_pid == 0 && part->bootstrap_not_before <= now;
}

/*
 * Make partition the calling bootstrap worker's, and its progress that of
 * a bootstrap beginning.  Under the LWLock, exclusive.
 */
static void
partition_begin_bootstrap(ReplkafkaPartition *part, TimestampTz now)
{
	part->bootstrap_pid = MyProcPid;
	SpinLockAcquire(&part->mutex);
	part->progress.copied_rows = 0;
	part->progress.copied_bytes = 0;
	part->progress.estimated_rows = 0;
	part->progress.estimated_bytes = 0;
	part->progress.phase = REPLKAFKA_PHASE_CONNECTING;
	part->progress.phase_started = now;
	part->progress.phase_from = 0;
	part->progress.phase_to = 0;
	SpinLockRelease(&part->mutex);
}

/*
 * A bootstrap worker takes up the due partition of lowest number, and
 * returns it; -1 if none is due.  *alone: it failed in a group last, and
 * is to be copied on its own.  The partition is the calling process's
 * until it releases it.
 */
int
replkafka_partition_claim_bootstrap(bool *alone)
{
	TimestampTz now = GetCurrentTimestamp();
	int			claimed = -1;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	for (int p = 0; p < replkafka_shared->npartitions && claimed < 0; p++)
	{
		ReplkafkaPartition *part = &replkafka_shared->partitions[p];

		if (!partition_bootstrap_waiting(part, now) || part->applying_pid != 0)
			continue;
		partition_begin_bootstrap(part, now);
		*alone = part->bootstrap_alone;
		claimed = p;
	}
	LWLockRelease(replkafka_shared->lock);
	return claimed;
}

/*
 * A bootstrap worker takes up partition too, to copy it with the one it
 * claimed, if it is due and may be copied in a group: CLAIMED, or BUSY if
 * it will be once its apply worker lets go of it, or else NOT_DUE.
 */
ReplkafkaBootstrapClaim
replkafka_partition_claim_bootstrap_of(int partition)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	TimestampTz now = GetCurrentTimestamp();
	ReplkafkaBootstrapClaim claim;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->bootstrap_alone || !partition_bootstrap_waiting(part, now))
		claim = REPLKAFKA_CLAIM_NOT_DUE;
	else if (part->applying_pid != 0)
		claim = REPLKAFKA_CLAIM_BUSY;
	else
	{
		partition_begin_bootstrap(part, now);
		claim = REPLKAFKA_CLAIM_CLAIMED;
	}
	LWLockRelease(replkafka_shared->lock);
	return claim;
}

/*
 * The bootstrap worker is done with partition (outcome).  If the attempt
 * failed, the partition shows why (message, sqlstate) and waits a while
 * before the next, twice as long after each failure in a row, up to a
 * minute.
 */
void
replkafka_partition_release_bootstrap(int partition,
									  ReplkafkaBootstrapOutcome outcome,
									  const char *sqlstate,
									  const char *message)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->bootstrap_pid == MyProcPid)
	{
		part->bootstrap_pid = 0;
		if (outcome == REPLKAFKA_BOOTSTRAP_FAILED ||
			outcome == REPLKAFKA_BOOTSTRAP_FAILED_ALONE)
		{
			int			delay_ms = 1000 << Min(part->bootstrap_failures, 6);

			part->bootstrap_failures++;
			part->bootstrap_not_before =
				TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											Min(delay_ms, 60000));
			if (outcome == REPLKAFKA_BOOTSTRAP_FAILED_ALONE)
				part->bootstrap_alone = true;
			if (part->role == REPLKAFKA_ROLE_BOOTSTRAPPING)
			{
				strlcpy(part->last_error, message, REPLKAFKA_ERROR_LEN);
				strlcpy(part->error_sqlstate, sqlstate, sizeof(part->error_sqlstate));
			}
		}
		else if (outcome == REPLKAFKA_BOOTSTRAP_DONE)
		{
			part->bootstrap_failures = 0;
			part->bootstrap_not_before = 0;
			part->bootstrap_alone = false;
		}
	}
	LWLockRelease(replkafka_shared->lock);
	SpinLockAcquire(&part->mutex);
	part->progress.phase = REPLKAFKA_PHASE_NONE;
	SpinLockRelease(&part->mutex);
}

/*
 * The calling apply worker begins (applying) or stops applying partition.
 * It may not begin while the partition is being bootstrapped, whatever
 * role it read before: false then.
 */
bool
replkafka_partition_set_applying(int partition, bool applying)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	bool		ok = true;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (!applying)
	{
		if (part->applying_pid == MyProcPid)
			part->applying_pid = 0;
	}
	else if (part->role == REPLKAFKA_ROLE_BOOTSTRAPPING || part->bootstrap_pid != 0)
		ok = false;
	else
		part->applying_pid = MyProcPid;
	LWLockRelease(replkafka_shared->lock);
	if (!applying)
		replkafka_wake_bootstrap_workers();
	return ok;
}

/*
 * Wait, until deadline, for the apply workers to let go of partition,
 * whose role the caller changed (the workers see it between two
 * transactions); false if one still applies it then.
 */
bool
replkafka_partition_wait_released(int partition, TimestampTz deadline)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	for (;;)
	{
		int			pid;

		LWLockAcquire(replkafka_shared->lock, LW_SHARED);
		pid = part->applying_pid;
		LWLockRelease(replkafka_shared->lock);
		if (pid == 0)
			return true;
		if (GetCurrentTimestamp() >= deadline)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * An apply worker exits: it applies nothing any more.
 */
void
replkafka_shmem_release_applying(int pid)
{
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	for (int p = 0; p < replkafka_shared->npartitions; p++)
	{
		if (replkafka_shared->partitions[p].applying_pid == pid)
			replkafka_shared->partitions[p].applying_pid = 0;
	}
	LWLockRelease(replkafka_shared->lock);
	replkafka_wake_bootstrap_workers();
}

/*
 * A bootstrap worker exits: the partitions it copied wait for another.
 */
void
replkafka_shmem_release_bootstraps(int pid)
{
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	for (int p = 0; p < replkafka_shared->npartitions; p++)
	{
		if (replkafka_shared->partitions[p].bootstrap_pid == pid)
			replkafka_shared->partitions[p].bootstrap_pid = 0;
	}
	LWLockRelease(replkafka_shared->lock);
}

/*
 * Is partition still to be bootstrapped by this process?  False once
 * unfollow() (or anything else) changed its role.
 */
bool
replkafka_partition_still_bootstrapping(int partition)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	bool		still;

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	still = part->role == REPLKAFKA_ROLE_BOOTSTRAPPING &&
		part->bootstrap_pid == MyProcPid;
	LWLockRelease(replkafka_shared->lock);
	return still;
}

/*
 * A bootstrap of partition copied rows rows and bytes bytes so far.
 */
void
replkafka_partition_report_copy(int partition, int64 rows, int64 bytes)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	SpinLockAcquire(&part->mutex);
	part->progress.copied_rows = rows;
	part->progress.copied_bytes = bytes;
	SpinLockRelease(&part->mutex);
}

/*
 * The source of a bootstrap of partition estimates it holds rows rows in
 * bytes bytes.
 */
void
replkafka_partition_set_copy_estimate(int partition, int64 rows, int64 bytes)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	SpinLockAcquire(&part->mutex);
	part->progress.estimated_rows = rows;
	part->progress.estimated_bytes = bytes;
	SpinLockRelease(&part->mutex);
}

/*
 * A copy of the progress of partition.
 */
void
replkafka_partition_get_progress(int partition, ReplkafkaProgress *progress)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	SpinLockAcquire(&part->mutex);
	*progress = part->progress;
	SpinLockRelease(&part->mutex);
}

/*
 * The name of a step of a role change, as replkafka.partitions shows it.
 */
const char *
replkafka_phase_name(ReplkafkaPhase phase)
{
	static const char *const names[] = {
		"", "catching up", "writing NEW_GEN", "reading NEW_GEN back",
		"waiting for writers", "waiting for Kafka", "reading the log back",
		"writing END_GEN", "connecting", "taking a snapshot",
		"dropping rows", "copying", "finding the position"
	};

	StaticAssertStmt(lengthof(names) == REPLKAFKA_PHASE_FINDING_POSITION + 1,
					 "a name for each phase");
	return names[phase];
}

/*
 * The backend changing the role of partition moves on to phase, one that
 * reads no range of the log.
 */
void
replkafka_set_phase(int partition, ReplkafkaPhase phase)
{
	replkafka_set_phase_range(partition, phase, 0, 0);
}

/*
 * The backend changing the role of partition starts with phase: the
 * change's clock starts.
 */
void
replkafka_begin_phases(int partition, ReplkafkaPhase phase)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&part->mutex);
	part->progress.phase_started = now;
	part->progress.phase = phase;
	part->progress.phase_from = 0;
	part->progress.phase_to = 0;
	SpinLockRelease(&part->mutex);
}

/*
 * The backend changing the role of partition moves on to phase, reading
 * the log from offset from up to offset to (0, 0: none).
 */
void
replkafka_set_phase_range(int partition, ReplkafkaPhase phase,
						  int64 from, int64 to)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	SpinLockAcquire(&part->mutex);
	part->progress.phase = phase;
	part->progress.phase_from = from;
	part->progress.phase_to = to;
	SpinLockRelease(&part->mutex);
}

/*
 * Kafka acknowledged every transaction committed before lsn that had to go
 * there: wake the synchronous commits waiting for it.
 */
void
replkafka_shmem_report_acked(XLogRecPtr lsn)
{
	pg_atomic_write_u64(&replkafka_shared->acked_lsn, lsn);
	ConditionVariableBroadcast(&replkafka_shared->ack_cv);
}

/*
 * Kafka holds transaction scn of partition, at offset.  Shown while the
 * generation it belongs to is the partition's.
 */
void
replkafka_partition_report_shipped(int partition, uint64 scn, int64 offset)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	if (part->generation == RKM_SCN_GENERATION(scn))
	{
		SpinLockAcquire(&part->mutex);
		part->progress.shipped_scn = scn;
		part->progress.shipped_offset = offset;
		SpinLockRelease(&part->mutex);
	}
	LWLockRelease(replkafka_shared->lock);
}

/*
 * Why the shipper cannot ship partition (whose role it changes in the
 * catalog), for the write fence's hint and the view.
 */
void
replkafka_partition_set_shipper_error(int partition, const char *message)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	strlcpy(part->last_error, message, REPLKAFKA_ERROR_LEN);
	part->error_sqlstate[0] = '\0';
	LWLockRelease(replkafka_shared->lock);
}

/*
 * The shipper found this node a stale primary of partition in generation:
 * the partition is in error at once (the catalog follows), and its
 * history ends at history_end, or later if the generation was found stale
 * before.  The synchronous commits waiting for it learn so.
 */
void
replkafka_partition_set_stale(int partition, uint32 generation,
							  XLogRecPtr history_end, const char *message)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (part->stale_generation != generation)
		part->history_end = history_end;
	else
		part->history_end = Max(part->history_end, history_end);
	part->stale_generation = generation;
	part->role = REPLKAFKA_ROLE_ERROR;
	strlcpy(part->last_error, message, REPLKAFKA_ERROR_LEN);
	part->error_sqlstate[0] = '\0';
	LWLockRelease(replkafka_shared->lock);
	/* synchronous commits waiting for this partition learn their fate */
	ConditionVariableBroadcast(&replkafka_shared->ack_cv);
}

/*
 * A transaction of a stale primary's partition whose commit record ends at
 * end_lsn is part of the history.
 */
void
replkafka_partition_extend_history(int partition, XLogRecPtr end_lsn)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->history_end = Max(part->history_end, end_lsn);
	LWLockRelease(replkafka_shared->lock);
}

/*
 * n more transactions of a stale primary's partition are not part of the
 * history.
 */
void
replkafka_partition_count_orphans(int partition, int64 n)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	SpinLockAcquire(&part->mutex);
	part->progress.orphaned += n;
	SpinLockRelease(&part->mutex);
}

/*
 * Generation of partition has used up its sequence numbers (0: none has).
 */
void
replkafka_partition_set_exhausted_generation(int partition, uint32 generation)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->exhausted_generation = generation;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * An apply worker takes partition up, from its consumer checkpoint: in
 * generation (0: none yet), with applied_scn at applied_offset applied,
 * next_offset the next record to read.  The log end is not known yet.
 */
void
replkafka_partition_report_taken_up(int partition, uint32 generation,
									int64 next_offset, uint64 applied_scn,
									int64 applied_offset)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	/*
	 * The generation a replica is in lives in its checkpoint (the catalog's
	 * partition_roles row is the promoting backend's to lock).
	 */
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	SpinLockAcquire(&part->mutex);
	if (generation > 0)
		partition_set_generation(part, generation);
	part->progress.next_offset = next_offset;
	part->progress.catchup_to = 0;
	part->progress.applied_scn = applied_scn;
	part->progress.applied_offset = applied_offset;
	SpinLockRelease(&part->mutex);
	LWLockRelease(replkafka_shared->lock);
}

/*
 * How far an apply worker read partition: next_offset is the next record
 * to apply, log_end the log's end as last heard of (-1: unknown).  The
 * first log end known since the partition was taken up is where its
 * catch-up goes.
 */
void
replkafka_partition_report_position(int partition, int64 next_offset,
									int64 log_end, bool first)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	TimestampTz now = first ? GetCurrentTimestamp() : 0;

	SpinLockAcquire(&part->mutex);
	part->progress.next_offset = next_offset;
	if (log_end >= 0)
		part->progress.log_end = log_end;
	if (first)
	{
		part->progress.catchup_started = now;
		part->progress.catchup_from = next_offset;
		part->progress.catchup_to = log_end;
	}
	SpinLockRelease(&part->mutex);
}

/*
 * Transaction scn of partition, at offset, committed at commit_time on its
 * primary, is applied.  A retry in progress succeeded.
 */
void
replkafka_partition_report_applied(int partition, uint64 scn, int64 offset,
								   TimestampTz commit_time)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	SpinLockAcquire(&part->mutex);
	part->progress.applied_scn = scn;
	part->progress.applied_offset = offset;
	part->progress.applied_commit_time = commit_time;
	part->progress.apply_retrying = false;
	SpinLockRelease(&part->mutex);
}

/*
 * An apply worker read the NEW_GEN that started generation of partition,
 * at offset.
 */
void
replkafka_partition_report_new_generation(int partition, uint32 generation,
										  int64 offset)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	SpinLockAcquire(&part->mutex);
	partition_set_generation(part, generation);
	part->progress.applied_scn = RKM_SCN(generation, 0);
	part->progress.applied_offset = offset;
	SpinLockRelease(&part->mutex);
	LWLockRelease(replkafka_shared->lock);
}

/*
 * An apply worker skipped a zombie record of partition.
 */
void
replkafka_partition_count_zombie(int partition)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	SpinLockAcquire(&part->mutex);
	part->progress.zombies_skipped++;
	SpinLockRelease(&part->mutex);
}

/*
 * Applying partition failed for a reason that may pass (sqlstate,
 * message): the worker tries again after delay_ms.
 */
void
replkafka_partition_report_retry(int partition, const char *sqlstate,
								 const char *message, int delay_ms)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&part->mutex);
	part->progress.apply_retries++;
	part->progress.apply_retrying = true;
	part->progress.retry_time = now;
	part->progress.retry_delay_ms = delay_ms;
	strlcpy(part->progress.retry_sqlstate, sqlstate,
			sizeof(part->progress.retry_sqlstate));
	strlcpy(part->progress.retry_error, message, REPLKAFKA_ERROR_LEN);
	SpinLockRelease(&part->mutex);
}

/*
 * Applying partition failed for good (sqlstate, message): it is in error
 * at once (the apply worker writes the catalog next), which a promotion
 * waiting for the worker learns.
 */
void
replkafka_partition_stop_applying(int partition, const char *sqlstate,
								  const char *message)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->role = REPLKAFKA_ROLE_ERROR;
	strlcpy(part->last_error, message, REPLKAFKA_ERROR_LEN);
	strlcpy(part->error_sqlstate, sqlstate, sizeof(part->error_sqlstate));
	LWLockRelease(replkafka_shared->lock);
	SpinLockAcquire(&part->mutex);
	part->progress.apply_retrying = false;
	SpinLockRelease(&part->mutex);
	ConditionVariableBroadcast(&replkafka_shared->promote_cv);
}

/*
 * A transaction starts writing partition (the write fence counts it, with a
 * full barrier, before it looks at the handover flag).
 */
void
replkafka_partition_writer_enter(int partition)
{
	pg_atomic_fetch_add_u32(&replkafka_shared->partitions[partition].writers, 1);
}

/*
 * A transaction no longer writes partition.
 */
void
replkafka_partition_writer_leave(int partition)
{
	pg_atomic_fetch_sub_u32(&replkafka_shared->partitions[partition].writers, 1);
}

/*
 * demote() hands partition over: the write fence lets no new transaction
 * in, until the role change is published or undone.
 */
void
replkafka_partition_begin_handover(int partition)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->handover = true;
	part->handover_pid = MyProcPid;
	LWLockRelease(replkafka_shared->lock);
	replkafka_begin_phases(partition, REPLKAFKA_PHASE_WAITING_FOR_WRITERS);
}

/*
 * demote() gives partition back before writing END_GEN.
 */
void
replkafka_partition_end_handover(int partition)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->handover = false;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * The generation of partition this node ended, if any (generation 0).
 */
void
replkafka_partition_get_ended(int partition, ReplkafkaEnded *ended)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	ended->generation = part->ended_generation;
	ended->seq = part->ended_seq;
	ended->offset = part->ended_offset;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * demote() is about to write END_GEN of a generation of partition.
 */
void
replkafka_partition_set_ended(int partition, const ReplkafkaEnded *ended)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->ended_generation = ended->generation;
	part->ended_seq = ended->seq;
	part->ended_offset = ended->offset;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * The backend pid ends: the partitions it was handing over take writes
 * again (but those whose END_GEN may be in Kafka).  Returns whether there
 * were any.
 */
bool
replkafka_shmem_forget_handovers(int pid)
{
	bool		found = false;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	for (int p = 0; p < replkafka_shared->npartitions; p++)
	{
		ReplkafkaPartition *part = &replkafka_shared->partitions[p];

		if (part->handover && part->handover_pid == pid)
		{
			part->handover = false;
			found = true;
		}
	}
	LWLockRelease(replkafka_shared->lock);
	return found;
}

/*
 * The worker in slot is in state; new_incarnation: it starts (again).
 * Running, or waiting for a cluster, puts earlier errors behind it.
 */
void
replkafka_worker_status_update(int slot, ReplkafkaWorkerState state,
							   bool new_incarnation)
{
	ReplkafkaWorkerStatus *w = &replkafka_shared->workers[slot];
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&w->mutex);
	if (new_incarnation)
	{
		w->pid = MyProcPid;
		w->started = now;
		w->starts++;
	}
	if (state == REPLKAFKA_WORKER_RUNNING || state == REPLKAFKA_WORKER_WAITING)
		w->failing = false;
	w->state = state;
	SpinLockRelease(&w->mutex);
}

/*
 * The worker in slot reports an error: failing from now on, in state (or
 * in the state it is in, if state is REPLKAFKA_WORKER_NOT_STARTED).
 */
void
replkafka_worker_status_error(int slot, ReplkafkaWorkerState state,
							  const char *sqlstate, const char *message)
{
	ReplkafkaWorkerStatus *w = &replkafka_shared->workers[slot];
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&w->mutex);
	if (state != REPLKAFKA_WORKER_NOT_STARTED)
		w->state = state;
	w->failing = true;
	w->error_time = now;
	strlcpy(w->error_sqlstate, sqlstate, sizeof(w->error_sqlstate));
	strlcpy(w->last_error, message, sizeof(w->last_error));
	SpinLockRelease(&w->mutex);
}

/*
 * The worker in slot exits, failed or not.
 */
void
replkafka_worker_status_exit(int slot, bool failed)
{
	ReplkafkaWorkerStatus *w = &replkafka_shared->workers[slot];

	SpinLockAcquire(&w->mutex);
	w->pid = 0;
	w->state = failed ? REPLKAFKA_WORKER_FAILED : REPLKAFKA_WORKER_NOT_STARTED;
	if (!failed)
		w->failing = false;
	SpinLockRelease(&w->mutex);
}

/*
 * A copy of the status of the worker in slot.
 */
void
replkafka_worker_status_get(int slot, ReplkafkaWorkerStatus *status)
{
	ReplkafkaWorkerStatus *w = &replkafka_shared->workers[slot];

	SpinLockAcquire(&w->mutex);
	*status = *w;
	SpinLockRelease(&w->mutex);
}

/*
 * Set the shipper's latch, if it runs.
 */
void
replkafka_wake_shipper(void)
{
	Latch	   *latch = replkafka_shared->shipper_latch;

	if (latch)
		SetLatch(latch);
}

/*
 * Set the latches of the apply workers that run.
 */
void
replkafka_wake_apply_workers(void)
{
	for (int i = 0; i < REPLKAFKA_MAX_APPLY_WORKERS; i++)
	{
		Latch	   *latch = replkafka_shared->apply_latches[i];

		if (latch)
			SetLatch(latch);
	}
}

/*
 * Remember that the current database's transaction being prepared as gid
 * wrote partition (-1: none) in generation.  Called before the PREPARE completes, so a
 * failure here aborts it.
 */
void
replkafka_prepared_remember(const char *gid, int partition, uint32 generation)
{
	int			slot = -1;

	if (max_prepared_xacts <= 0)
		return;
	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	/* a GID in use is unique: an older slot of it is a leftover */
	slot = prepared_slot(gid);
	if (slot >= 0)
		prepared[slot].dbid = InvalidOid;
	slot = -1;
	for (int i = 0; i < max_prepared_xacts; i++)
	{
		if (!OidIsValid(prepared[i].dbid))
		{
			slot = i;
			break;
		}

		/*
		 * A slot stays taken if its transaction ended without COMMIT PREPARED
		 * or ROLLBACK PREPARED through SQL (a subscription's apply worker
		 * finishes prepared transactions itself): when none is free, the
		 * oldest is reused.  Forgetting one only makes it unknown, which is
		 * handled as the worst case.
		 */
		if (slot < 0 || prepared[i].number < prepared[slot].number)
			slot = i;
	}
	prepared[slot].dbid = MyDatabaseId;
	prepared[slot].partition = partition;
	prepared[slot].generation = generation;
	prepared[slot].number = ++replkafka_shared->prepared_counter;
	strlcpy(prepared[slot].gid, gid, GIDSIZE);
	LWLockRelease(replkafka_shared->lock);
}

/*
 * The slot of the current database's prepared transaction gid, or -1.
 * The caller holds the lock.
 */
static int
prepared_slot(const char *gid)
{
	for (int i = 0; i < max_prepared_xacts; i++)
		if (prepared[i].dbid == MyDatabaseId && strcmp(prepared[i].gid, gid) == 0)
			return i;
	return -1;
}

/*
 * Forget the current database's prepared transaction gid; returns whether
 * it was remembered (prepared since the server started), and the
 * partition it wrote and its generation.
 */
bool
replkafka_prepared_forget(const char *gid, int *partition, uint32 *generation)
{
	int			slot;

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	slot = prepared_slot(gid);
	if (slot >= 0)
	{
		*partition = prepared[slot].partition;
		*generation = prepared[slot].generation;
		prepared[slot].dbid = InvalidOid;
	}
	LWLockRelease(replkafka_shared->lock);
	return slot >= 0;
}

/*
 * The partition the current database's prepared transaction gid wrote
 * (-1: none); false if it was not prepared since the server started.
 */
bool
replkafka_prepared_partition(const char *gid, int *partition)
{
	int			slot;

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	slot = prepared_slot(gid);
	if (slot >= 0)
		*partition = prepared[slot].partition;
	LWLockRelease(replkafka_shared->lock);
	return slot >= 0;
}
