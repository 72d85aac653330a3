/*-------------------------------------------------------------------------
 *
 * roles.c
 *		This node's roles: loaded from the catalog into shared memory,
 *		and changed there when the transactions that change the catalog
 *		commit.
 *
 * The catalog table replkafka.partition_roles is the durable truth about
 * this node's roles; shared memory mirrors it (shmem.c) so that the write
 * fence can check a role without a catalog lookup per row.  The mirror is
 * loaded from the catalog by the first process that needs it after the
 * server starts, and afterwards changed only by the transactions that
 * change the catalog, when they commit: a role change is made in the
 * catalog and handed to replkafka_roles_set_at_commit() in the same
 * transaction.  The one exception is the shipper finding a stale primary,
 * which puts the partition in error in shared memory at once, before the
 * catalog.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/roles.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "ended.h"
#include "roles.h"
#include "settings.h"
#include "shmem.h"

/*
 * A role change to publish when its transaction commits.  The change comes
 * first, so that a list of them is one of ReplkafkaRoleChange for
 * replkafka_shmem_publish_roles().
 */
typedef struct PendingRole
{
	ReplkafkaRoleChange change;
	SubTransactionId subid;		/* the subtransaction that made it */
} PendingRole;

static void roles_register_callbacks(void);
static void roles_xact_callback(XactEvent event, void *arg);
static void roles_subxact_callback(SubXactEvent event,
								   SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);
static void roles_undo_pending(void);
static void roles_check_stale(int partition, ReplkafkaRole *role);

/* Role changes of the current transaction, in TopTransactionContext. */
static List *pending_roles = NIL;

/* The current transaction created the cluster: reload the roles. */
static bool pending_reload = false;
static bool xact_callback_registered = false;

/*
 * Load the roles from the catalog into shared memory, once per server
 * start.  Must be called inside a transaction in replkafka's database;
 * reads the catalog with a fresh snapshot.
 */
void
replkafka_roles_ensure_loaded(void)
{
	List	   *roles;
	int			partitions;
	ReplkafkaCluster cluster;
	ReplkafkaEnded *ended;

	replkafka_check_preloaded();
	if (replkafka_shmem_roles_loaded())
		return;

	/* Read first, so that no catalog access happens under the LWLock. */
	partitions = replkafka_catalog_get_roles(&roles);
	if (partitions > replkafka_max_partitions)
		ereport(ERROR,
				errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				errmsg("cluster has %d partitions, more than \"replkafka.max_partitions\" (%d)",
					   partitions, replkafka_max_partitions),
				errhint("Raise \"replkafka.max_partitions\" and restart the server."));
	if (partitions <= 0 || !replkafka_catalog_get_cluster(&cluster))
		return;

	/* the generations whose END_GEN this node may have written */
	ended = palloc(partitions * sizeof(ReplkafkaEnded));
	for (int p = 0; p < partitions; p++)
		replkafka_ended_load(p, cluster.topic, &ended[p]);
	replkafka_shmem_load_roles(partitions, roles, ended);
}

/*
 * Make the next replkafka_roles_ensure_loaded() read the catalog again
 * once the current transaction commits (it created the cluster).
 */
void
replkafka_roles_reload_at_commit(void)
{
	roles_register_callbacks();
	pending_reload = true;
}

/*
 * Publish a role change in shared memory when the current transaction
 * commits; the caller changes the catalog in the same transaction.
 */
void
replkafka_roles_set_at_commit(int partition, ReplkafkaRole role,
							  uint32 generation)
{
	MemoryContext oldcxt;
	PendingRole *pending;

	roles_register_callbacks();
	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	pending = palloc(sizeof(PendingRole));
	pending->change.partition = partition;
	pending->change.role = role;
	pending->change.generation = generation;
	pending->subid = GetCurrentSubTransactionId();
	pending_roles = lappend(pending_roles, pending);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Lock the catalog row of partition until the end of the transaction,
 * serializing role changes of the partition, and return this node's role
 * and generation in it.
 */
void
replkafka_roles_lock(int partition, ReplkafkaRole *role, uint32 *generation)
{
	replkafka_catalog_lock_partition(partition, role, generation);
	roles_check_stale(partition, role);
}

/*
 * replkafka_roles_lock() without waiting: false if another transaction
 * holds the row.
 */
bool
replkafka_roles_try_lock(int partition, ReplkafkaRole *role,
						 uint32 *generation)
{
	if (!replkafka_catalog_try_lock_partition(partition, role, generation))
		return false;
	roles_check_stale(partition, role);
	return true;
}

/*
 * A primary the shipper found stale is in error, whatever the catalog says
 * yet: it writes so soon.
 */
static void
roles_check_stale(int partition, ReplkafkaRole *role)
{
	if (*role == REPLKAFKA_ROLE_PRIMARY && replkafka_shmem_roles_loaded() &&
		partition < replkafka_shared->npartitions &&
		replkafka_partition_state(partition)->role == REPLKAFKA_ROLE_ERROR)
		*role = REPLKAFKA_ROLE_ERROR;
}

/*
 * Register the transaction callbacks of role changes, once per process.
 */
static void
roles_register_callbacks(void)
{
	if (xact_callback_registered)
		return;
	RegisterXactCallback(roles_xact_callback, NULL);
	RegisterSubXactCallback(roles_subxact_callback, NULL);
	xact_callback_registered = true;
}

/*
 * A subtransaction that rolls back takes its role changes with it (its
 * catalog changes are gone); one that commits hands them to its parent.
 */
static void
roles_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
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
			replkafka_shmem_role_change_undone(pending->change.partition);
			pending_roles = foreach_delete_current(pending_roles, lc);
		}
	}
}

/*
 * Publish the pending role changes at commit, undo them at abort.
 */
static void
roles_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (pending_reload)
			{
				replkafka_shmem_forget_roles();
				pending_reload = false;
				replkafka_wake_shipper();
				replkafka_wake_apply_workers();
				replkafka_wake_bootstrap_workers();
			}
			if (pending_roles != NIL)
			{
				/* nothing may fail here: the transaction committed */
				replkafka_shmem_publish_roles(pending_roles);
				pending_roles = NIL;
				replkafka_wake_shipper();
				replkafka_wake_apply_workers();
				replkafka_wake_bootstrap_workers();
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			/* published at COMMIT PREPARED, perhaps by another session: no */
			if (pending_roles != NIL || pending_reload)
				ereport(ERROR,
						errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("cannot prepare a transaction that changed replkafka's roles"),
						errdetail("Role changes take effect when their transaction commits in the session that made them."));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			roles_undo_pending();
			pending_reload = false;
			break;
		default:
			break;
	}
}

/*
 * The transaction that made role changes aborts: a demotion that did not
 * commit takes writes again, unless its END_GEN may be in Kafka; a
 * promotion that did not commit is applied again.
 */
static void
roles_undo_pending(void)
{
	ListCell   *lc;

	if (pending_roles == NIL)
		return;
	foreach(lc, pending_roles)
		replkafka_shmem_role_change_undone(((PendingRole *) lfirst(lc))->change.partition);
	pending_roles = NIL;
	replkafka_wake_shipper();
	replkafka_wake_apply_workers();
	replkafka_wake_bootstrap_workers();
}
