/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		Access to replkafka's catalog tables.
 *
 * Every read and write of the replkafka.* tables goes through this file, so
 * the tables' layout is known in one place.  Callers must be inside a
 * transaction.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"

#include "catalog.h"
#include "catalog_tables.h"
#include "message.h"
#include "settings.h"
#include "table.h"

static const char *const role_names[] = {
	[REPLKAFKA_ROLE_OFFLINE] = "offline",
	[REPLKAFKA_ROLE_REPLICA] = "replica",
	[REPLKAFKA_ROLE_PRIMARY] = "primary",
	[REPLKAFKA_ROLE_ERROR] = "error",
	[REPLKAFKA_ROLE_BOOTSTRAPPING] = "bootstrapping",
};

static List *catalog_scan_tables(Oid relid);
static bool catalog_partition_row(const char *sql, int partition,
								  bool read_only);
static bool catalog_lock_partition(int partition, bool skip_locked,
								   ReplkafkaRole *role,
								   uint32 *generation);
static void catalog_delete_partition_row(const char *sql, int partition);
static void catalog_spi_execute(const char *sql, int nargs, Oid *argtypes,
								Datum *values, bool read_only, int expected);

/*
 * Run one statement through SPI (the caller has connected) and fail unless
 * it returns the expected code.
 */
static void
catalog_spi_execute(const char *sql, int nargs, Oid *argtypes, Datum *values,
					bool read_only, int expected)
{
	int			ret;

	ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL,
								read_only, 0);
	if (ret != expected)
		elog(ERROR, "SPI_execute_with_args failed on \"%s\": %s",
			 sql, SPI_result_code_string(ret));
}

/*
 * Run a query whose $1 is a partition number, SPI connected; true if it
 * returned a row, which the caller reads from SPI_tuptable before
 * SPI_finish().
 */
static bool
catalog_partition_row(const char *sql, int partition, bool read_only)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(partition);
	catalog_spi_execute(sql, 1, types, values, read_only, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/*
 * Name of a role, as stored in the catalog and shown in views.
 */
const char *
replkafka_role_name(ReplkafkaRole role)
{
	Assert(role >= REPLKAFKA_ROLE_OFFLINE && role <= REPLKAFKA_ROLE_BOOTSTRAPPING);
	return role_names[role];
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
 * The OID of replkafka's catalog table (or index) relname, or InvalidOid if
 * the extension or the relation does not exist.
 */
Oid
replkafka_catalog_relid(const char *relname)
{
	Oid			nspid = get_namespace_oid(REPLKAFKA_EXTENSION_NAME, true);

	if (!OidIsValid(nspid))
		return InvalidOid;
	return get_relname_relid(relname, nspid);
}

/*
 * Number of partitions of the cluster, from replkafka.cluster, or 0 if the
 * cluster does not exist.  Reads the table with a system-table scan, so it
 * also works in the output plugin (replkafka.cluster is a user catalog
 * table).
 */
int
replkafka_cluster_partitions(void)
{
	Oid			relid = replkafka_catalog_relid("cluster");
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			partitions = 0;

	if (!OidIsValid(relid))
		return 0;

	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;

		/* column 3 of replkafka.cluster is partitions */
		partitions = DatumGetInt32(heap_getattr(tup, Anum_cluster_partitions,
												RelationGetDescr(rel),
												&isnull));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return partitions;
}

/*
 * Serialize create_cluster() calls on this node until the end of the
 * transaction.
 */
void
replkafka_catalog_lock_cluster(void)
{
	SPI_connect();
	catalog_spi_execute("LOCK TABLE replkafka.cluster IN SHARE ROW EXCLUSIVE MODE",
						0, NULL, NULL, false, SPI_OK_UTILITY);
	SPI_finish();
}

/*
 * Read replkafka.cluster.  Returns false if the cluster was not created on
 * this node yet.  The strings are allocated in the caller's context.
 */
bool
replkafka_catalog_get_cluster(ReplkafkaCluster *cluster)
{
	MemoryContext callercxt = CurrentMemoryContext;
	bool		found = false;

	SPI_connect();
	catalog_spi_execute("SELECT *"
						" FROM replkafka.cluster",
						0, NULL, NULL, true, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spicxt = MemoryContextSwitchTo(callercxt);
		bool		isnull;

		cluster->topic = TextDatumGetCString(SPI_getbinval(tup, desc, Anum_cluster_topic, &isnull));
		cluster->partitions = DatumGetInt32(SPI_getbinval(tup, desc, Anum_cluster_partitions, &isnull));
		cluster->replication_factor = DatumGetInt32(SPI_getbinval(tup, desc, Anum_cluster_replication_factor, &isnull));
		cluster->node_name = TextDatumGetCString(SPI_getbinval(tup, desc, Anum_cluster_node_name, &isnull));
		MemoryContextSwitchTo(spicxt);
		found = true;
	}
	SPI_finish();
	return found;
}

/*
 * Record the cluster, and every partition as offline in generation 0.
 */
void
replkafka_catalog_insert_cluster(const ReplkafkaCluster *cluster)
{
	Oid			types[4] = {TEXTOID, INT4OID, INT4OID, TEXTOID};
	Datum		values[4];

	values[0] = CStringGetTextDatum(cluster->topic);
	values[1] = Int32GetDatum(cluster->partitions);
	values[2] = Int32GetDatum(cluster->replication_factor);
	values[3] = CStringGetTextDatum(cluster->node_name);

	SPI_connect();
	catalog_spi_execute("INSERT INTO replkafka.cluster"
						" (topic, partitions, replication_factor, node_name)"
						" VALUES ($1, $2, $3, $4)",
						4, types, values, false, SPI_OK_INSERT);
	catalog_spi_execute("INSERT INTO replkafka.partition_roles (partition)"
						" SELECT pg_catalog.generate_series(0, $1 OPERATOR(pg_catalog.-) 1)",
						1, &types[1], &values[1], false, SPI_OK_INSERT);
	SPI_finish();
}

/*
 * Read replkafka.partition_roles into a list of ReplkafkaRoleRow, allocated
 * in the caller's context.  Returns the partition count P, or 0 if the
 * cluster was not created on this node (or the extension does not exist).
 *
 * Any backend writing to a replicated table may need this (the write fence
 * loads shared memory on first use), whatever its privileges, so the table
 * is read with a system-table scan, which checks none.
 */
int
replkafka_catalog_get_roles(List **roles)
{
	Oid			relid;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			partitions;

	*roles = NIL;
	partitions = replkafka_cluster_partitions();
	if (partitions <= 0)
		return 0;

	relid = replkafka_catalog_relid("partition_roles");
	if (!OidIsValid(relid))
		elog(ERROR, "replkafka.partition_roles does not exist");

	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		ReplkafkaRoleRow *row = palloc(sizeof(ReplkafkaRoleRow));
		bool		isnull;
		char	   *role;
		Datum		err;
		ReplkafkaRole r;

		row->partition = DatumGetInt32(heap_getattr(tup, Anum_partition_roles_partition,
													desc, &isnull));
		role = TextDatumGetCString(heap_getattr(tup, Anum_partition_roles_role,
												desc, &isnull));
		if (!replkafka_role_from_name(role, &r))
			elog(ERROR, "invalid role \"%s\" in replkafka.partition_roles", role);
		row->role = r;
		row->generation = (uint32) DatumGetInt64(heap_getattr(tup, Anum_partition_roles_generation,
															  desc, &isnull));
		err = heap_getattr(tup, Anum_partition_roles_last_error, desc, &isnull);
		row->last_error = isnull ? NULL : TextDatumGetCString(err);
		err = heap_getattr(tup, Anum_partition_roles_error_sqlstate, desc, &isnull);
		row->error_sqlstate = isnull ? NULL : TextDatumGetCString(err);
		if (row->partition < 0 || row->partition >= partitions)
			elog(ERROR, "partition %d in replkafka.partition_roles is out of range",
				 row->partition);
		*roles = lappend(*roles, row);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return partitions;
}

/*
 * Record this node's role and generation for a partition, with the error
 * that put it in error and its SQLSTATE (NULL if none).
 */
void
replkafka_catalog_set_role(int partition, ReplkafkaRole role, uint32 generation,
						   const char *last_error, const char *error_sqlstate)
{
	Oid			types[5] = {INT4OID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = Int32GetDatum(partition);
	values[1] = CStringGetTextDatum(replkafka_role_name(role));
	values[2] = Int64GetDatum((int64) generation);
	if (last_error)
		values[3] = CStringGetTextDatum(last_error);
	else
		nulls[3] = 'n';
	if (error_sqlstate)
		values[4] = CStringGetTextDatum(error_sqlstate);
	else
		nulls[4] = 'n';

	SPI_connect();
	if (SPI_execute_with_args("UPDATE replkafka.partition_roles"
							  " SET role = $2, generation = $3, last_error = $4,"
							  " error_sqlstate = $5, changed_at = pg_catalog.now()"
							  " WHERE partition OPERATOR(pg_catalog.=) $1",
							  5, types, values, nulls, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "could not update the role of partition %d", partition);
	SPI_finish();
}

/*
 * Put a partition this node is primary of in generation in error, unless
 * its role changed meanwhile (the shipper writes this after the fact: a
 * role change made since then stays).  Does not wait for a transaction
 * that holds the row (a demotion, a promotion): false then, to be tried
 * again later.
 */
bool
replkafka_catalog_set_primary_error(int partition, uint32 generation,
									const char *last_error)
{
	Oid			types[3] = {INT4OID, INT8OID, TEXTOID};
	Datum		values[3];
	ReplkafkaRole role;
	uint32		current;

	if (!replkafka_catalog_try_lock_partition(partition, &role, &current))
		return false;
	values[0] = Int32GetDatum(partition);
	values[1] = Int64GetDatum((int64) generation);
	values[2] = CStringGetTextDatum(last_error);

	SPI_connect();
	catalog_spi_execute("UPDATE replkafka.partition_roles"
						" SET role = 'error', last_error = $3,"
						" error_sqlstate = NULL, changed_at = pg_catalog.now()"
						" WHERE partition OPERATOR(pg_catalog.=) $1"
						" AND role OPERATOR(pg_catalog.=) 'primary'"
						" AND generation OPERATOR(pg_catalog.=) $2",
						3, types, values, false, SPI_OK_UPDATE);
	SPI_finish();
	return true;
}

/*
 * Record the start of a generation of a partition.
 */
void
replkafka_catalog_add_generation(int partition, uint32 generation,
								 const char *node_name, int64 kafka_offset,
								 TimestampTz started_at)
{
	Oid			types[5] = {INT4OID, INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[5];

	values[0] = Int32GetDatum(partition);
	values[1] = Int64GetDatum((int64) generation);
	values[2] = CStringGetTextDatum(node_name);
	values[3] = Int64GetDatum(kafka_offset);
	values[4] = TimestampTzGetDatum(started_at);

	SPI_connect();
	catalog_spi_execute("INSERT INTO replkafka.generations"
						" (partition, generation, node_name, kafka_offset, started_at)"
						" VALUES ($1, $2, $3, $4, $5)"
						" ON CONFLICT (partition, generation) DO UPDATE"
						" SET node_name = EXCLUDED.node_name,"
						" kafka_offset = EXCLUDED.kafka_offset,"
						" started_at = EXCLUDED.started_at",
						5, types, values, false, SPI_OK_INSERT);
	SPI_finish();
}

/*
 * Register a replicated table with the attribute numbers of its partition
 * key.
 */
void
replkafka_catalog_add_table(Oid relid, int nkeys, const AttrNumber *attnums)
{
	Oid			types[2] = {OIDOID, INT2ARRAYOID};
	Datum		values[2];
	Datum	   *elems = palloc(nkeys * sizeof(Datum));

	for (int i = 0; i < nkeys; i++)
		elems[i] = Int16GetDatum(attnums[i]);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = PointerGetDatum(construct_array(elems, nkeys, INT2OID,
												sizeof(int16), true,
												TYPALIGN_SHORT));

	SPI_connect();
	catalog_spi_execute("INSERT INTO replkafka.tables (relid, key_attnums)"
						" VALUES ($1, $2)",
						2, types, values, false, SPI_OK_INSERT);
	SPI_finish();
}

/*
 * Unregister a table; false if it was not registered.
 */
bool
replkafka_catalog_remove_table(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		found;

	values[0] = ObjectIdGetDatum(relid);
	SPI_connect();
	catalog_spi_execute("DELETE FROM replkafka.tables"
						" WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
						1, types, values, false, SPI_OK_DELETE);
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * The partition key of a registered table: sets *attnums (palloc'd) and
 * returns the number of key columns, or returns 0 if the table is not
 * registered.
 *
 * Uses a system-table scan on the primary key index, not SPI, because the
 * output plugin calls it while decoding, under a historic snapshot in which
 * replkafka.tables (a user catalog table) is readable only that way.
 */
int
replkafka_catalog_table_key(Oid relid, AttrNumber **attnums)
{
	List	   *tables = catalog_scan_tables(relid);
	ReplkafkaTableRow *row;

	if (tables == NIL)
		return 0;
	row = linitial(tables);
	*attnums = row->attnums;
	return row->nkeys;
}

/*
 * Every registered table with its partition key, as a List of
 * ReplkafkaTableRow.
 */
List *
replkafka_catalog_tables(void)
{
	return catalog_scan_tables(InvalidOid);
}

/*
 * The rows of replkafka.tables: of relid only, or all if it is invalid.
 */
static List *
catalog_scan_tables(Oid relid)
{
	Oid			tables_relid;
	Oid			index_relid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	List	   *tables = NIL;

	tables_relid = replkafka_catalog_relid("tables");
	index_relid = replkafka_catalog_relid("tables_pkey");
	if (!OidIsValid(tables_relid) || !OidIsValid(index_relid))
		return NIL;

	rel = table_open(tables_relid, AccessShareLock);
	ScanKeyInit(&key, Anum_tables_relid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, index_relid, OidIsValid(relid), NULL,
							  OidIsValid(relid) ? 1 : 0, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_tables_key_attnums,
									 RelationGetDescr(rel), &isnull);
		ArrayType  *arr = DatumGetArrayTypeP(d);
		int16	   *values = (int16 *) ARR_DATA_PTR(arr);
		ReplkafkaTableRow *row = palloc(sizeof(ReplkafkaTableRow));

		row->relid = DatumGetObjectId(heap_getattr(tup, Anum_tables_relid,
												   RelationGetDescr(rel),
												   &isnull));
		if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr) ||
			ARR_ELEMTYPE(arr) != INT2OID)
			elog(ERROR, "invalid key_attnums in replkafka.tables for relation %u",
				 row->relid);
		row->nkeys = ARR_DIMS(arr)[0];
		row->attnums = palloc(row->nkeys * sizeof(AttrNumber));
		for (int i = 0; i < row->nkeys; i++)
			row->attnums[i] = values[i];
		tables = lappend(tables, row);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return tables;
}

/*
 * Read the producer checkpoint of a partition; false if it has none.
 */
bool
replkafka_catalog_get_producer_checkpoint(int partition,
										  ReplkafkaProducerCheckpoint *ckpt)
{
	bool		found = false;

	SPI_connect();
	if (catalog_partition_row("SELECT *"
							  " FROM replkafka.producer_checkpoints"
							  " WHERE partition OPERATOR(pg_catalog.=) $1",
							  partition, true))
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		ckpt->partition = partition;
		ckpt->scn = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, Anum_producer_checkpoints_scn, &isnull));
		ckpt->commit_lsn = DatumGetLSN(SPI_getbinval(tup, desc, Anum_producer_checkpoints_commit_lsn, &isnull));
		ckpt->kafka_offset = DatumGetInt64(SPI_getbinval(tup, desc, Anum_producer_checkpoints_kafka_offset, &isnull));
		found = true;
	}
	SPI_finish();
	return found;
}

/*
 * Write the producer checkpoint of a partition.
 */
void
replkafka_catalog_save_producer_checkpoint(const ReplkafkaProducerCheckpoint *ckpt)
{
	Oid			types[4] = {INT4OID, INT8OID, LSNOID, INT8OID};
	Datum		values[4];

	values[0] = Int32GetDatum(ckpt->partition);
	values[1] = Int64GetDatum((int64) ckpt->scn);
	values[2] = LSNGetDatum(ckpt->commit_lsn);
	values[3] = Int64GetDatum(ckpt->kafka_offset);

	SPI_connect();
	catalog_spi_execute("INSERT INTO replkafka.producer_checkpoints"
						" (partition, scn, commit_lsn, kafka_offset)"
						" VALUES ($1, $2, $3, $4)"
						" ON CONFLICT (partition) DO UPDATE"
						" SET scn = EXCLUDED.scn, commit_lsn = EXCLUDED.commit_lsn,"
						" kafka_offset = EXCLUDED.kafka_offset",
						4, types, values, false, SPI_OK_INSERT);
	SPI_finish();
}

/*
 * Lock this node's row of partition in replkafka.partition_roles until the
 * end of the transaction, serializing role changes of the partition, and
 * return its role and generation.
 */
void
replkafka_catalog_lock_partition(int partition, ReplkafkaRole *role,
								 uint32 *generation)
{
	(void) catalog_lock_partition(partition, false, role, generation);
}

/*
 * replkafka_catalog_lock_partition() without waiting: false if another
 * transaction holds the row.
 */
bool
replkafka_catalog_try_lock_partition(int partition, ReplkafkaRole *role,
									 uint32 *generation)
{
	return catalog_lock_partition(partition, true, role, generation);
}

/*
 * The two above.
 */
static bool
catalog_lock_partition(int partition, bool skip_locked, ReplkafkaRole *role,
					   uint32 *generation)
{
	bool		isnull;
	char	   *name;

	SPI_connect();
	if (!catalog_partition_row(skip_locked ?
							   "SELECT * FROM replkafka.partition_roles"
							   " WHERE partition OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED" :
							   "SELECT * FROM replkafka.partition_roles"
							   " WHERE partition OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							   partition, false))
	{
		SPI_finish();
		if (skip_locked)
			return false;
		elog(ERROR, "partition %d is missing from replkafka.partition_roles",
			 partition);
	}
	name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
						Anum_partition_roles_role);
	if (!replkafka_role_from_name(name, role))
		elog(ERROR, "invalid role \"%s\" in replkafka.partition_roles", name);
	*generation = (uint32) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc,
													   Anum_partition_roles_generation,
													   &isnull));
	SPI_finish();
	return true;
}

/*
 * Read the consumer checkpoint of a partition; false if there is none.
 */
bool
replkafka_catalog_get_consumer_checkpoint(int partition,
										  ReplkafkaConsumerCheckpoint *ckpt)
{
	bool		found = false;

	SPI_connect();
	if (catalog_partition_row("SELECT *"
							  " FROM replkafka.consumer_checkpoints"
							  " WHERE partition OPERATOR(pg_catalog.=) $1",
							  partition, true))
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		ckpt->partition = partition;
		ckpt->generation = (uint32) DatumGetInt64(SPI_getbinval(tup, desc, Anum_consumer_checkpoints_generation, &isnull));
		ckpt->scn = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, Anum_consumer_checkpoints_scn, &isnull));
		ckpt->kafka_offset = DatumGetInt64(SPI_getbinval(tup, desc, Anum_consumer_checkpoints_kafka_offset, &isnull));
		ckpt->ended = DatumGetBool(SPI_getbinval(tup, desc, Anum_consumer_checkpoints_ended, &isnull));
		found = true;
	}
	SPI_finish();
	return found;
}

/*
 * Prepare query (with the consumer checkpoint's five parameters) once per
 * process.
 */
static SPIPlanPtr
catalog_checkpoint_plan(SPIPlanPtr *plan, const char *query)
{
	if (*plan == NULL)
	{
		Oid			types[5] = {INT4OID, INT8OID, INT8OID, INT8OID, BOOLOID};
		SPIPlanPtr	p;

		p = SPI_prepare(query, 5, types);
		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}

/*
 * Whether rel, replkafka.consumer_checkpoints, is as the extension created
 * it: the columns of catalog_tables.h with their types (others may follow),
 * keyed by partition alone.
 */
static bool
catalog_checkpoints_as_created(Relation rel)
{
	static const Oid types[Natts_consumer_checkpoints] = {INT4OID, INT8OID, INT8OID,
	INT8OID, BOOLOID};
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *key;
	bool		ok;

	if (desc->natts < Natts_consumer_checkpoints ||
		!OidIsValid(RelationGetPrimaryKeyIndex(rel)))
		return false;
	for (int i = 0; i < Natts_consumer_checkpoints; i++)
		if (TupleDescAttr(desc, i)->attisdropped ||
			TupleDescAttr(desc, i)->atttypid != types[i])
			return false;
	key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	ok = bms_num_members(key) == 1 &&
		bms_is_member(Anum_consumer_checkpoints_partition - FirstLowInvalidHeapAttributeNumber,
					  key);
	bms_free(key);
	return ok;
}

/*
 * Update in place the consumer checkpoint row of the partition values
 * names, to values; *found says whether there was one.  As the logical
 * replication worker applies an UPDATE: the row is found through the
 * primary key and locked (waiting for, and following, a concurrent
 * writer's change), then updated through the executor, with the table's
 * indexes, constraints and row triggers (a HOT update, the key unchanged).
 * Returns false if it did not look: under a snapshot that lasts the whole
 * transaction, or on a table that is no longer as created, SQL does the
 * work.
 */
static bool
catalog_update_checkpoint(Datum *values, bool *found)
{
	Oid			relid = replkafka_catalog_relid("consumer_checkpoints");
	Relation	rel;
	ReplkafkaTableWriter writer;
	TupleTableSlot *keyslot;
	TupleTableSlot *rowslot;
	TupleTableSlot *newslot;
	int			natts;

	*found = false;
	if (!OidIsValid(relid) || IsolationUsesXactSnapshot())
		return false;
	rel = table_open(relid, RowExclusiveLock);
	if (!catalog_checkpoints_as_created(rel))
	{
		table_close(rel, NoLock);
		return false;
	}
	natts = RelationGetDescr(rel)->natts;
	replkafka_table_writer_open(&writer, rel);
	keyslot = ExecInitExtraTupleSlot(writer.estate, RelationGetDescr(rel), &TTSOpsVirtual);
	newslot = ExecInitExtraTupleSlot(writer.estate, RelationGetDescr(rel), &TTSOpsVirtual);
	rowslot = table_slot_create(rel, &writer.estate->es_tupleTable);

	ExecClearTuple(keyslot);
	memset(keyslot->tts_isnull, true, natts * sizeof(bool));
	keyslot->tts_values[Anum_consumer_checkpoints_partition - 1] =
		values[Anum_consumer_checkpoints_partition - 1];
	keyslot->tts_isnull[Anum_consumer_checkpoints_partition - 1] = false;
	ExecStoreVirtualTuple(keyslot);

	if (RelationFindReplTupleByIndex(rel, RelationGetPrimaryKeyIndex(rel),
									 LockTupleNoKeyExclusive, keyslot, rowslot))
	{
		/* the row is locked: nobody else changes it before this commits */
		slot_getallattrs(rowslot);
		ExecClearTuple(newslot);
		memcpy(newslot->tts_values, rowslot->tts_values, natts * sizeof(Datum));
		memcpy(newslot->tts_isnull, rowslot->tts_isnull, natts * sizeof(bool));
		memcpy(newslot->tts_values, values, Natts_consumer_checkpoints * sizeof(Datum));
		memset(newslot->tts_isnull, false, Natts_consumer_checkpoints * sizeof(bool));
		ExecStoreVirtualTuple(newslot);
		EvalPlanQualSetSlot(&writer.epq, rowslot);
		/* its AFTER triggers (the foreign key's) queue and fire as a query's */
		AfterTriggerBeginQuery();
		ExecSimpleRelationUpdate(writer.rri, writer.estate, &writer.epq,
								 rowslot, newslot);
		AfterTriggerEndQuery(writer.estate);
		*found = true;
	}
	replkafka_table_writer_close(&writer);
	table_close(rel, NoLock);
	/* the next command of the transaction sees the new row, as after SQL */
	if (*found)
		CommandCounterIncrement();
	return true;
}

/*
 * Write the consumer checkpoint of a partition.  The apply workers call
 * this once per applied transaction, so the row is updated in place when
 * it can be (catalog_update_checkpoint()), through SQL otherwise; a row
 * that is not there (the partition's first checkpoint here, or one deleted
 * meanwhile) is written by an upsert.
 */
void
replkafka_catalog_save_consumer_checkpoint(const ReplkafkaConsumerCheckpoint *ckpt)
{
	static SPIPlanPtr update = NULL;
	static SPIPlanPtr upsert = NULL;
	Datum		values[Natts_consumer_checkpoints];
	bool		looked;
	bool		found;

	values[Anum_consumer_checkpoints_partition - 1] = Int32GetDatum(ckpt->partition);
	values[Anum_consumer_checkpoints_generation - 1] = Int64GetDatum((int64) ckpt->generation);
	values[Anum_consumer_checkpoints_scn - 1] = Int64GetDatum((int64) ckpt->scn);
	values[Anum_consumer_checkpoints_kafka_offset - 1] = Int64GetDatum(ckpt->kafka_offset);
	values[Anum_consumer_checkpoints_ended - 1] = BoolGetDatum(ckpt->ended);

	looked = catalog_update_checkpoint(values, &found);
	if (found)
		return;

	SPI_connect();
	if (!looked)
	{
		catalog_checkpoint_plan(&update,
								"UPDATE replkafka.consumer_checkpoints"
								" SET generation = $2, scn = $3, kafka_offset = $4, ended = $5"
								" WHERE partition OPERATOR(pg_catalog.=) $1");
		if (SPI_execute_plan(update, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not write the consumer checkpoint of partition %d",
				 ckpt->partition);
		found = SPI_processed > 0;
	}
	if (!found)
	{
		catalog_checkpoint_plan(&upsert,
								"INSERT INTO replkafka.consumer_checkpoints"
								" (partition, generation, scn, kafka_offset, ended)"
								" VALUES ($1, $2, $3, $4, $5)"
								" ON CONFLICT (partition) DO UPDATE"
								" SET generation = EXCLUDED.generation, scn = EXCLUDED.scn,"
								" kafka_offset = EXCLUDED.kafka_offset,"
								" ended = EXCLUDED.ended");
		if (SPI_execute_plan(upsert, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the consumer checkpoint of partition %d",
				 ckpt->partition);
	}
	SPI_finish();
}

/*
 * The node that started a generation of a partition, or NULL if this node
 * has not seen it start.
 */
char *
replkafka_catalog_generation_origin(int partition, uint32 generation)
{
	Oid			types[2] = {INT4OID, INT8OID};
	Datum		values[2];
	char	   *origin = NULL;
	MemoryContext callercxt = CurrentMemoryContext;

	values[0] = Int32GetDatum(partition);
	values[1] = Int64GetDatum((int64) generation);
	SPI_connect();
	catalog_spi_execute("SELECT node_name FROM replkafka.generations"
						" WHERE partition OPERATOR(pg_catalog.=) $1"
						" AND generation OPERATOR(pg_catalog.=) $2",
						2, types, values, true, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		origin = MemoryContextStrdup(callercxt, v);
	}
	SPI_finish();
	return origin;
}

/*
 * The GIDs of the transactions prepared in this database, as a List of
 * strings.
 */
List *
replkafka_catalog_prepared_gids(void)
{
	List	   *gids = NIL;
	MemoryContext callercxt = CurrentMemoryContext;

	SPI_connect();
	catalog_spi_execute("SELECT gid FROM pg_catalog.pg_prepared_xacts"
						" WHERE database OPERATOR(pg_catalog.=) pg_catalog.current_database()",
						0, NULL, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *gid = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		MemoryContext oldcxt = MemoryContextSwitchTo(callercxt);

		gids = lappend(gids, pstrdup(gid));
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return gids;
}

/*
 * Forget the consumer checkpoint of partition: this node became its
 * primary, and no longer applies it from there.
 */
void
replkafka_catalog_delete_consumer_checkpoint(int partition)
{
	catalog_delete_partition_row("DELETE FROM replkafka.consumer_checkpoints"
								 " WHERE partition OPERATOR(pg_catalog.=) $1",
								 partition);
}

/*
 * Run a DELETE whose $1 is a partition number.
 */
static void
catalog_delete_partition_row(const char *sql, int partition)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(partition);
	SPI_connect();
	catalog_spi_execute(sql, 1, types, values, false, SPI_OK_DELETE);
	SPI_finish();
}

/*
 * Was this node primary of partition after the last transaction it
 * applied?  A promotion forgets the consumer checkpoint, and a demotion
 * writes one of the generation it ends: true if the producer checkpoint is
 * of a newer generation than the consumer checkpoint, or there is only
 * the former; *generation is then the producer checkpoint's generation.
 */
bool
replkafka_catalog_primary_since_applied(int partition, uint32 *generation)
{
	ReplkafkaProducerCheckpoint pckpt;
	ReplkafkaConsumerCheckpoint cckpt;

	if (!replkafka_catalog_get_producer_checkpoint(partition, &pckpt))
		return false;
	*generation = RKM_SCN_GENERATION(pckpt.scn);
	if (!replkafka_catalog_get_consumer_checkpoint(partition, &cckpt))
		return true;
	return cckpt.generation < *generation;
}

/*
 * Ask for partition to be bootstrapped from source (a libpq connection
 * string; NULL: from a peer the node finds), its local rows dropped first
 * if rebuild.
 */
void
replkafka_catalog_request_bootstrap(int partition, const char *source,
									bool rebuild)
{
	Oid			types[3] = {INT4OID, TEXTOID, BOOLOID};
	Datum		values[3];
	char		nulls[3] = {' ', source ? ' ' : 'n', ' '};

	values[0] = Int32GetDatum(partition);
	values[1] = source ? CStringGetTextDatum(source) : (Datum) 0;
	values[2] = BoolGetDatum(rebuild);
	SPI_connect();
	if (SPI_execute_with_args("INSERT INTO replkafka.bootstraps"
							  " (partition, source, rebuild) VALUES ($1, $2, $3)"
							  " ON CONFLICT (partition) DO UPDATE"
							  " SET source = EXCLUDED.source,"
							  " rebuild = EXCLUDED.rebuild,"
							  " requested_at = pg_catalog.now()",
							  3, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the bootstrap of partition %d", partition);
	SPI_finish();
}

/*
 * The bootstraps asked for, by partition: a list of
 * ReplkafkaBootstrapRequest (source NULL: any peer), allocated in the
 * caller's memory context.
 */
List *
replkafka_catalog_get_bootstraps(void)
{
	MemoryContext callercxt = CurrentMemoryContext;
	List	   *requests = NIL;

	SPI_connect();
	catalog_spi_execute("SELECT partition, source, rebuild FROM replkafka.bootstraps"
						" ORDER BY partition", 0, NULL, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spicxt = MemoryContextSwitchTo(callercxt);
		ReplkafkaBootstrapRequest *r = palloc(sizeof(ReplkafkaBootstrapRequest));
		bool		isnull;
		Datum		d;

		r->partition = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		r->source = isnull ? NULL : TextDatumGetCString(d);
		r->rebuild = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		requests = lappend(requests, r);
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();
	return requests;
}

/*
 * Forget the bootstrap of partition: done, or no longer wanted.
 */
void
replkafka_catalog_end_bootstrap(int partition)
{
	catalog_delete_partition_row("DELETE FROM replkafka.bootstraps"
								 " WHERE partition OPERATOR(pg_catalog.=) $1",
								 partition);
}

/*
 * Forget the producer checkpoint of partition: the node's rows of it were
 * replaced by a peer's.
 */
void
replkafka_catalog_delete_producer_checkpoint(int partition)
{
	catalog_delete_partition_row("DELETE FROM replkafka.producer_checkpoints"
								 " WHERE partition OPERATOR(pg_catalog.=) $1",
								 partition);
}
