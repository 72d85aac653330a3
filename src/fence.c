/*-------------------------------------------------------------------------
 *
 * fence.c
 *		The write fence on replicated tables, and what happens at commit of
 *		a transaction that wrote to one.
 *
 * add_table() installs two triggers on a replicated table: a BEFORE ROW
 * trigger for INSERT, UPDATE and DELETE, and a BEFORE TRUNCATE statement
 * trigger, both running replkafka.fence().  The row trigger computes the
 * row's partition and lets the write through only if this node is the
 * partition's primary, the transaction has written no other partition,
 * and an UPDATE keeps the partition key.  TRUNCATE is refused: it cannot
 * be expressed per partition.
 *
 * The triggers are ordinary (ENABLE) triggers, so they do not fire with
 * session_replication_role = replica, which is how the apply worker writes
 * rows that come from Kafka.
 *
 * At commit of a transaction that passed the fence, the shipper is woken
 * so that it ships the transaction at once, and with
 * replkafka.synchronous_commit = on the backend then waits until Kafka has
 * acknowledged the transaction.  The wait follows PostgreSQL's synchronous
 * replication (SyncRepWaitForLSN): the transaction is already committed
 * locally, so a cancel or a shutdown ends the wait with a WARNING saying
 * so, never with an error.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/fence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/twophase.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/wait_event.h"

#include "fence.h"
#include "partition.h"
#include "roles.h"
#include "settings.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(replkafka_fence);

static void fence_check_partition(Relation rel, int partition);
static void fence_check_key_unchanged(const ReplkafkaTableKey *key,
									  Relation rel, HeapTuple oldtup,
									  HeapTuple newtup);
static void fence_end_write(void);
static void fence_xact_callback(XactEvent event, void *arg);
static void fence_wait_for_kafka(XLogRecPtr lsn, int partition,
								 uint32 generation);
static int	fence_verdict(XLogRecPtr lsn, XLogRecPtr acked, int partition,
						  uint32 generation);

/* The partition the current transaction writes, or -1, and its generation. */
static int	xact_partition = -1;
static uint32 xact_generation = 0;

/* The GID of the transaction being prepared, and whether it is remembered. */
static char prepare_gid[GIDSIZE];
static bool prepare_remembered = false;

/*
 * Install the transaction callback that follows every transaction,
 * prepared ones included; called from _PG_init while preloading.
 */
void
replkafka_fence_init(void)
{
	RegisterXactCallback(fence_xact_callback, NULL);
}

/*
 * replkafka.fence(): the trigger function of the write fence.
 */
Datum
replkafka_fence(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	ReplkafkaTableKey *key;
	TupleDesc	desc;
	HeapTuple	tuple;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("replkafka.fence() must be called as a trigger"));

	rel = trigdata->tg_relation;

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("cannot truncate replicated table \"%s\"",
					   RelationGetRelationName(rel)),
				errdetail("TRUNCATE cannot be replicated per partition."),
				errhint("Use DELETE, or stop replicating the table with replkafka.remove_table() first."));

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("replkafka.fence() must be fired BEFORE ROW or BEFORE TRUNCATE"));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		tuple = trigdata->tg_newtuple;
	else
		tuple = trigdata->tg_trigtuple;

	/* A table that is no longer replicated but kept its trigger. */
	key = replkafka_table_key(rel);
	if (key == NULL)
		return PointerGetDatum(tuple);

	desc = RelationGetDescr(rel);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		fence_check_key_unchanged(key, rel, trigdata->tg_trigtuple, tuple);
	fence_check_partition(rel, replkafka_partition_of_tuple(key, desc, tuple));

	return PointerGetDatum(tuple);
}

/*
 * Refuse an UPDATE that changes the partition key of a row.
 */
static void
fence_check_key_unchanged(const ReplkafkaTableKey *key, Relation rel,
						  HeapTuple oldtup, HeapTuple newtup)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < key->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, key->attnums[i] - 1);
		bool		oldnull;
		bool		newnull;
		Datum		oldval = heap_getattr(oldtup, key->attnums[i], desc, &oldnull);
		Datum		newval = heap_getattr(newtup, key->attnums[i], desc, &newnull);

		if (oldnull != newnull ||
			(!oldnull && !datum_image_eq(oldval, newval, att->attbyval,
										 att->attlen)))
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("cannot change partition key column \"%s\" of replicated table \"%s\"",
						   NameStr(att->attname), RelationGetRelationName(rel)),
					errdetail("The partition key of a row decides its partition and never changes."),
					errhint("Delete the row and insert it with the new key, in separate transactions if the partition changes."));
	}
}

/*
 * Let a write to partition through, or refuse it.
 */
static void
fence_check_partition(Relation rel, int partition)
{
	ReplkafkaPartition *part;
	ReplkafkaRole role;

	replkafka_roles_ensure_loaded();
	if (partition >= replkafka_shared->npartitions)
		elog(ERROR, "partition %d of relation \"%s\" is out of range",
			 partition, RelationGetRelationName(rel));

	if (xact_partition >= 0 && xact_partition != partition)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("transaction cannot write to more than one partition"),
				errdetail("The transaction wrote to partition %d; this row of table \"%s\" belongs to partition %d.",
						  xact_partition, RelationGetRelationName(rel),
						  partition),
				errhint("Write each partition's rows in a transaction of its own."));

	part = replkafka_partition_state(partition);

	/*
	 * The first row of a partition in the transaction counts the transaction
	 * as a writer of the partition before looking at the handover flag, and
	 * demote() sets the flag before counting writers (both with full
	 * barriers), so demote() never misses a writer that got in.
	 */
	if (xact_partition < 0)
	{
		bool		closed;

		replkafka_partition_writer_enter(partition);
		xact_partition = partition;

		/* the role and the generation it is of, read together */
		LWLockAcquire(replkafka_shared->lock, LW_SHARED);
		xact_generation = part->generation;
		closed = (part->handover || part->ended_generation == part->generation) &&
			part->role == REPLKAFKA_ROLE_PRIMARY;
		LWLockRelease(replkafka_shared->lock);
		if (closed)
		{
			fence_end_write();
			ereport(ERROR,
					errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					errmsg("cannot write to partition %d on node \"%s\"",
						   partition, replkafka_node_name),
					errdetail("Partition %d is being handed over to another node by replkafka.demote().",
							  partition),
					errhint("Write to the partition's new primary."));
		}
	}

	role = part->role;
	if (role == REPLKAFKA_ROLE_PRIMARY && xact_generation != 0 &&
		part->exhausted_generation == xact_generation)
	{
		fence_end_write();
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("cannot write to partition %d on node \"%s\"",
					   partition, replkafka_node_name),
				errdetail("Generation %u of partition %d has used up its transaction sequence numbers.",
						  part->generation, partition),
				errhint("Start a new generation: demote the partition, and promote this node or another one."));
	}
	if (role != REPLKAFKA_ROLE_PRIMARY)
	{
		fence_end_write();
		ereport(ERROR,
				errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				errmsg("cannot write to partition %d on node \"%s\"",
					   partition, replkafka_node_name),
				errdetail("This node's role in partition %d is %s; only its primary accepts writes.",
						  partition, replkafka_role_name(role)),
				role == REPLKAFKA_ROLE_ERROR && part->last_error[0] ?
				errhint("The partition is in error: %s", part->last_error) : 0);
	}
}

/*
 * The transaction no longer writes its partition: stop counting it as a
 * writer.
 */
static void
fence_end_write(void)
{
	if (xact_partition < 0)
		return;
	replkafka_partition_writer_leave(xact_partition);
	xact_partition = -1;
}

/*
 * At commit of a transaction that wrote a partition: wake the shipper, and
 * in synchronous mode wait for Kafka.
 */
static void
fence_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			{
				int			partition = xact_partition;

				prepare_gid[0] = '\0';
				if (partition < 0)
					break;
				fence_end_write();
				replkafka_wake_shipper();
				if (replkafka_synchronous_commit && XactLastCommitEnd != InvalidXLogRecPtr)
					fence_wait_for_kafka(XactLastCommitEnd, partition,
										 xact_generation);
			}
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * A prepared transaction goes on writing its partition until
			 * COMMIT PREPARED or ROLLBACK PREPARED: remember it before it is
			 * prepared, while it is still counted as a writer, so that
			 * demote() never misses it.  Every prepared transaction is
			 * remembered, so that the ones that are not predate the server
			 * start.
			 */
			if (replkafka_shared != NULL && prepare_gid[0] != '\0')
			{
				replkafka_prepared_remember(prepare_gid, xact_partition,
											xact_generation);
				prepare_remembered = true;
			}
			break;
		case XACT_EVENT_PREPARE:
			/* shipped when COMMIT PREPARED runs */
			fence_end_write();
			prepare_remembered = false;
			prepare_gid[0] = '\0';
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (prepare_remembered)
			{
				int			partition;
				uint32		generation;

				(void) replkafka_prepared_forget(prepare_gid, &partition,
												 &generation);
			}
			prepare_remembered = false;
			prepare_gid[0] = '\0';
			fence_end_write();
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
			fence_end_write();
			break;
		default:
			break;
	}
}

/*
 * PREPARE TRANSACTION gid is running: the transaction it prepares is gid.
 */
void
replkafka_fence_preparing(const char *gid)
{
	strlcpy(prepare_gid, gid, GIDSIZE);
}

/*
 * A prepared transaction was committed or rolled back: it no longer writes
 * its partition.  With replkafka.synchronous_commit = on, COMMIT PREPARED
 * waits for Kafka as COMMIT does, for the COMMIT PREPARED record.  For a
 * transaction prepared before the server started, the partition is not
 * known: any partition found stale since may be its own.
 */
void
replkafka_fence_finish_prepared(const char *gid, bool commit)
{
	int			partition = -1;
	uint32		generation = 0;
	bool		known;

	if (replkafka_shared == NULL)
		return;
	known = replkafka_prepared_forget(gid, &partition, &generation);
	if (commit && replkafka_synchronous_commit && (!known || partition >= 0) &&
		XactLastRecEnd != InvalidXLogRecPtr)
	{
		replkafka_wake_shipper();
		fence_wait_for_kafka(XactLastRecEnd, known ? partition : -1, generation);
	}
}

/*
 * Where a commit that ends at lsn, of partition's generation, stands, the
 * shipper having released everything up to acked: 1 it is part of the
 * cluster's history, -1 it is not, 0 not known yet.  Once the shipper
 * found the partition stale in that generation, only commits up to its
 * history_end are history; a role that changed since (a rebuild, a new
 * generation) does not change that.  With partition -1 (a transaction
 * prepared before the server started), any partition found stale is
 * taken for the transaction's own.
 */
static int
fence_verdict(XLogRecPtr lsn, XLogRecPtr acked, int partition,
			  uint32 generation)
{
	int			verdict = acked >= lsn ? 1 : 0;

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	for (int p = Max(partition, 0); p < replkafka_shared->npartitions; p++)
	{
		ReplkafkaPartition *part = &replkafka_shared->partitions[p];

		if (part->stale_generation != 0 &&
			(partition < 0 || part->stale_generation == generation))
		{
			if (lsn <= part->history_end)
				verdict = partition < 0 ? verdict : 1;
			else if (acked >= lsn)
				verdict = -1;
			else if (verdict == 1)
				verdict = 0;
		}
		if (partition >= 0)
			break;
	}
	LWLockRelease(replkafka_shared->lock);
	return verdict;
}

/*
 * Wait until the shipper reports that Kafka holds everything committed up
 * to lsn, or that partition went to error (another node is its primary).
 * Runs after the local commit, inside CommitTransaction(): like
 * SyncRepWaitForLSN(), it checks for cancel, shutdown and postmaster death
 * itself and never raises an error or exits (an exit would abort a
 * committed transaction).
 */
static void
fence_wait_for_kafka(XLogRecPtr lsn, int partition, uint32 generation)
{
	for (;;)
	{
		int			rc;
		XLogRecPtr	acked;
		int			verdict;

		/* a broadcast on ack_cv sets our latch; re-arm it every time */
		ConditionVariablePrepareToSleep(&replkafka_shared->ack_cv);

		/*
		 * The shipper marks a partition stale before it releases any commit
		 * that is not part of the cluster's history: read the released
		 * position first, then the partition's state.
		 */
		acked = pg_atomic_read_u64(&replkafka_shared->acked_lsn);
		pg_memory_barrier();
		verdict = fence_verdict(lsn, acked, partition, generation);
		if (verdict > 0)
			break;
		if (verdict < 0)
		{
			/* another node took the partition over: this commit is lost to it */
			if (partition >= 0)
				ereport(WARNING,
						errmsg("node \"%s\" is no longer primary of partition %d",
							   replkafka_node_name, partition),
						errdetail("The transaction has committed locally, but is not part of the cluster's history."),
						errhint("See the last_error and orphaned_transactions columns of replkafka.partitions."));
			else
				ereport(WARNING,
						errmsg("node \"%s\" is no longer primary of a partition this transaction may have written",
							   replkafka_node_name),
						errdetail("The transaction has committed locally, but might not be part of the cluster's history."),
						errhint("See the last_error and orphaned_transactions columns of replkafka.partitions."));
			break;
		}

		if (ProcDiePending)
		{
			ereport(WARNING,
					errcode(ERRCODE_ADMIN_SHUTDOWN),
					errmsg("canceling the wait for Kafka and terminating connection due to administrator command"),
					errdetail("The transaction has already committed locally, but might not have reached Kafka."));
			/* do not let the client take this for a clean commit */
			whereToSendOutput = DestNone;
			break;
		}
		if (QueryCancelPending)
		{
			QueryCancelPending = false;
			ereport(WARNING,
					errmsg("canceling the wait for Kafka due to user request"),
					errdetail("The transaction has already committed locally, but might not have reached Kafka."));
			break;
		}

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH,
					   1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);

		/* the postmaster died: end the wait, and the session after it */
		if (rc & WL_POSTMASTER_DEATH)
		{
			ProcDiePending = true;
			whereToSendOutput = DestNone;
			break;
		}
	}
	ConditionVariableCancelSleep();
}
