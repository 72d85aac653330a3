/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		replkafka's shared memory: this node's role in every partition,
 *		the shipper's progress, and what synchronous commits wait for.
 *
 * The catalog table replkafka.partition_roles is the durable truth about
 * this node's roles; shared memory mirrors it so that the write fence can
 * check a role without a catalog lookup per row.  The mirror is loaded from
 * the catalog by the first process that needs it after the server starts,
 * and afterwards changed only by the transactions that change the catalog,
 * when they commit.
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
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "replkafka.h"
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

/* A role change to publish in shared memory when its transaction commits. */
typedef struct PendingRole
{
	int			partition;
	ReplkafkaRole role;
	uint32		generation;
	SubTransactionId subid;		/* the subtransaction that made it */
} PendingRole;

static void shmem_request(void);
static void shmem_startup(void);
static Size shmem_size(void);
static void shmem_xact_callback(XactEvent event, void *arg);
static void shmem_subxact_callback(SubXactEvent event,
								   SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);
static void shmem_register_callbacks(void);
static int	prepared_slot(const char *gid);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Pointer to shared memory state. */
ReplkafkaShared *replkafka_shared = NULL;

/* max_prepared_xacts slots, under replkafka_shared->lock. */
static ReplkafkaPrepared *prepared = NULL;

/* Role changes of the current transaction, in TopTransactionContext. */
static List *pending_roles = NIL;

/* The current transaction created the cluster: reload the roles. */
static bool pending_reload = false;
static bool xact_callback_registered = false;

static const char *const role_names[] = {
	[REPLKAFKA_ROLE_OFFLINE] = "offline",
	[REPLKAFKA_ROLE_REPLICA] = "replica",
	[REPLKAFKA_ROLE_PRIMARY] = "primary",
	[REPLKAFKA_ROLE_ERROR] = "error",
};

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
			pg_atomic_init_u32(&replkafka_shared->partitions[p].writers, 0);
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
 * Name of a role, as stored in the catalog and shown in views.
 */
const char *
replkafka_role_name(ReplkafkaRole role)
{
	Assert(role >= REPLKAFKA_ROLE_OFFLINE && role <= REPLKAFKA_ROLE_ERROR);
	return role_names[role];
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
		"writing END_GEN"
	};

	StaticAssertStmt(lengthof(names) == REPLKAFKA_PHASE_WRITING_END_GEN + 1,
					 "a name for each phase");
	return names[phase];
}

/*
 * The backend changing the role of partition moves on to phase, one that
 * reads no range of the log (promote() sets up its catch-up itself).
 */
void
replkafka_set_phase(int partition, ReplkafkaPhase phase)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	part->phase = phase;
	part->phase_from = 0;
	part->phase_to = 0;
	LWLockRelease(replkafka_shared->lock);
}

/*
 * Parse a role name; false if it is not one.
 */
bool
replkafka_role_from_name(const char *name, ReplkafkaRole *role)
{
	for (int i = 0; i < lengthof(role_names); i++)
	{
		if (strcmp(name, role_names[i]) == 0)
		{
			*role = (ReplkafkaRole) i;
			return true;
		}
	}
	return false;
}

/*
 * Load the roles from the catalog into shared memory, once per server
 * start.  Must be called inside a transaction in replkafka's database;
 * reads the catalog with a fresh snapshot.
 */
void
replkafka_shmem_ensure_loaded(void)
{
	List	   *roles;
	ListCell   *lc;
	int			partitions;

	replkafka_check_preloaded();
	if (replkafka_shared->loaded)
		return;

	/* Read first, so that no catalog access happens under the LWLock. */
	partitions = replkafka_catalog_get_roles(&roles);

	LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
	if (!replkafka_shared->loaded && partitions > 0 &&
		partitions <= replkafka_max_partitions)
	{
		replkafka_shared->npartitions = partitions;
		foreach(lc, roles)
		{
			ReplkafkaRoleRow *row = lfirst(lc);
			ReplkafkaPartition *part = &replkafka_shared->partitions[row->partition];

			part->role = row->role;
			part->generation = row->generation;
			strlcpy(part->last_error, row->last_error ? row->last_error : "",
					REPLKAFKA_ERROR_LEN);
		}
		replkafka_shared->loaded = true;
		pg_atomic_fetch_add_u64(&replkafka_shared->roles_version, 1);
	}
	LWLockRelease(replkafka_shared->lock);

	if (partitions > replkafka_max_partitions)
		ereport(ERROR,
				errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				errmsg("cluster has %d partitions, more than \"replkafka.max_partitions\" (%d)",
					   partitions, replkafka_max_partitions),
				errhint("Raise \"replkafka.max_partitions\" and restart the server."));
}

/*
 * Make the next replkafka_shmem_ensure_loaded() read the catalog again
 * once the current transaction commits (it created the cluster).
 */
void
replkafka_shmem_reload_at_commit(void)
{
	shmem_register_callbacks();
	pending_reload = true;
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
 * Publish a role change in shared memory when the current transaction
 * commits; the caller changes the catalog in the same transaction.  A new
 * generation resets the shipped position.
 */
void
replkafka_set_role_at_commit(int partition, ReplkafkaRole role,
							 uint32 generation)
{
	MemoryContext oldcxt;
	PendingRole *pending;

	shmem_register_callbacks();
	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	pending = palloc(sizeof(PendingRole));
	pending->partition = partition;
	pending->role = role;
	pending->generation = generation;
	pending->subid = GetCurrentSubTransactionId();
	pending_roles = lappend(pending_roles, pending);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Register the transaction callbacks of role changes, once per process.
 */
static void
shmem_register_callbacks(void)
{
	if (xact_callback_registered)
		return;
	RegisterXactCallback(shmem_xact_callback, NULL);
	RegisterSubXactCallback(shmem_subxact_callback, NULL);
	xact_callback_registered = true;
}

/*
 * A subtransaction that rolls back takes its role changes with it (its
 * catalog changes are gone); one that commits hands them to its parent.
 */
static void
shmem_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	foreach(lc, pending_roles)
	{
		PendingRole *pending = lfirst(lc);

		if (pending->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			pending->subid = parentSubid;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			ReplkafkaPartition *part = &replkafka_shared->partitions[pending->partition];

			LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
			part->handover = false;
			part->promote_state = REPLKAFKA_PROMOTE_NONE;
			LWLockRelease(replkafka_shared->lock);
			pending_roles = foreach_delete_current(pending_roles, lc);
		}
	}
}

/*
 * Apply the pending role changes at commit, forget them at abort.
 */
static void
shmem_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (pending_reload)
			{
				LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
				replkafka_shared->loaded = false;
				LWLockRelease(replkafka_shared->lock);
				pending_reload = false;
				replkafka_wake_shipper();
				replkafka_wake_apply_workers();
			}
			if (pending_roles == NIL)
				break;
			LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
			foreach(lc, pending_roles)
			{
				PendingRole *pending = lfirst(lc);
				ReplkafkaPartition *part = &replkafka_shared->partitions[pending->partition];

				if (part->generation != pending->generation)
				{
					part->shipped_scn = 0;
					part->shipped_offset = -1;
					part->sequence_exhausted = false;
				}
				if (pending->role != part->role)
				{
					/* until a worker publishes its own, the catalog's */
					part->zombies_skipped = 0;
					part->orphaned = 0;
					part->applied_scn = 0;
					part->applied_offset = -1;
				}
				part->role = pending->role;
				part->generation = pending->generation;
				part->handover = false;
				part->handover_pid = 0;
				part->ended_generation = 0;
				/* a won promotion ends with its role change */
				part->promote_state = REPLKAFKA_PROMOTE_NONE;
				if (pending->role != REPLKAFKA_ROLE_ERROR)
					part->last_error[0] = '\0';
			}
			pg_atomic_fetch_add_u64(&replkafka_shared->roles_version, 1);
			LWLockRelease(replkafka_shared->lock);
			pending_roles = NIL;
			replkafka_wake_shipper();
			replkafka_wake_apply_workers();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/*
			 * A demotion that did not commit: the partition takes writes
			 * again, unless its END_GEN may be in Kafka (ended_generation).
			 * A promotion that did not commit: the worker applies again.
			 */
			if (pending_roles != NIL)
			{
				LWLockAcquire(replkafka_shared->lock, LW_EXCLUSIVE);
				foreach(lc, pending_roles)
				{
					ReplkafkaPartition *part = &replkafka_shared->partitions[((PendingRole *) lfirst(lc))->partition];

					/* the fence stays closed if END_GEN may be in Kafka */
					part->handover = false;
					part->promote_state = REPLKAFKA_PROMOTE_NONE;
				}
				LWLockRelease(replkafka_shared->lock);
				replkafka_wake_shipper();
				replkafka_wake_apply_workers();
			}
			pending_roles = NIL;
			pending_reload = false;
			break;
		default:
			break;
	}
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
		 * A slot stays taken if its transaction ended without COMMIT
		 * PREPARED or ROLLBACK PREPARED through SQL (a subscription's apply
		 * worker finishes prepared transactions itself): when none is
		 * free, the oldest is reused.  Forgetting one only makes it
		 * unknown, which is handled as the worst case.
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
