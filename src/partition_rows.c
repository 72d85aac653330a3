/*-------------------------------------------------------------------------
 *
 * partition_rows.c
 *		This node's rows of a partition: whether it has any, and dropping
 *		them without shipping the deletes.
 *
 * A partition's rows live in the replicated tables beside the rows of the
 * other partitions, so both read every table whole and hash each row's
 * key.  Dropping a copy of a partition (drop_partition(), a rebuild) is not
 * a change of the cluster's data: the deletes are marked with the
 * replication origin DoNotReplicateId, which the output plugin skips, and
 * they fire no trigger, as TRUNCATE of a table would not fire row triggers.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/partition_rows.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "replication/origin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "partition.h"
#include "partition_rows.h"

static int64 partition_rows_scan(Oid relid, const Bitmapset *partitions,
								 bool drop);

/*
 * Read relid whole, counting its rows of the partitions (deleting them if
 * drop); without drop, stop at the first.
 */
static int64
partition_rows_scan(Oid relid, const Bitmapset *partitions, bool drop)
{
	Relation	rel;
	ReplkafkaTableKey *key;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot = GetActiveSnapshot();
	int64		n = 0;

	rel = table_open(relid, drop ? RowExclusiveLock : AccessShareLock);
	key = replkafka_table_key(rel);
	if (key == NULL)
	{
		table_close(rel, NoLock);
		return 0;
	}
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		if (!bms_is_member(replkafka_partition_of_slot(key, slot), partitions))
			continue;
		n++;
		if (!drop)
			break;
		simple_table_tuple_delete(rel, &slot->tts_tid, snapshot);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	return n;
}

/*
 * The first replicated table that has a row of partition on this node, as
 * a qualified name, or NULL if none has.  Needs an active snapshot.
 */
char *
replkafka_partition_rows_table(int partition)
{
	Bitmapset  *partitions = bms_make_singleton(partition);
	ListCell   *lc;

	foreach(lc, replkafka_catalog_tables())
	{
		ReplkafkaTableRow *row = lfirst(lc);

		if (partition_rows_scan(row->relid, partitions, false) > 0)
			return quote_qualified_identifier(get_namespace_name(get_rel_namespace(row->relid)),
											  get_rel_name(row->relid));
	}
	return NULL;
}

/*
 * Delete this node's rows of the partitions from every replicated table,
 * reading each once, in the current transaction, which must not be
 * shipped (replkafka_do_not_replicate); returns how many.  Needs an active
 * snapshot.
 */
int64
replkafka_partition_drop_rows(const Bitmapset *partitions)
{
	ListCell   *lc;
	int64		n = 0;

	Assert(replorigin_session_origin == DoNotReplicateId);
	foreach(lc, replkafka_catalog_tables())
		n += partition_rows_scan(((ReplkafkaTableRow *) lfirst(lc))->relid,
								 partitions, true);
	return n;
}

/*
 * Mark what this session writes from now on (on) or no longer (off) with
 * the replication origin DoNotReplicateId: the output plugin skips it, so
 * the shipper never ships it.  A session with a replication origin of its
 * own must not call this.
 */
void
replkafka_do_not_replicate(bool on)
{
	if (on && replorigin_session_origin != InvalidRepOriginId &&
		replorigin_session_origin != DoNotReplicateId)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("cannot drop a partition's rows in a session with a replication origin"),
				errhint("Reset it with pg_replication_origin_session_reset() first."));
	replorigin_session_origin = on ? DoNotReplicateId : InvalidRepOriginId;
}

/*
 * Fail if a table that is not replicated has a foreign key to a replicated
 * one: dropping a partition's rows would leave its references dangling
 * (the deletes fire no trigger).  A replicated table referencing another
 * keeps its rows of the partition only as long as the referenced ones, if
 * both are partitioned by the same key.
 */
void
replkafka_partition_rows_check_references(void)
{
	SPI_connect();
	if (SPI_execute("SELECT c.conrelid::pg_catalog.regclass::pg_catalog.text,"
					" c.confrelid::pg_catalog.regclass::pg_catalog.text, c.conname"
					" FROM pg_catalog.pg_constraint c"
					" JOIN replkafka.tables t ON t.relid OPERATOR(pg_catalog.=) c.confrelid"
					" WHERE c.contype OPERATOR(pg_catalog.=) 'f'"
					" AND NOT EXISTS (SELECT FROM replkafka.tables r"
					" WHERE r.relid OPERATOR(pg_catalog.=) c.conrelid)"
					" LIMIT 1", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look for foreign keys to replicated tables");
	if (SPI_processed > 0)
		ereport(ERROR,
				errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				errmsg("table %s references replicated table %s",
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
				errdetail("Its foreign key \"%s\" would be left with references to the rows dropped.",
						  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3)),
				errhint("Replicate that table too, or drop the foreign key."));
	SPI_finish();
}
