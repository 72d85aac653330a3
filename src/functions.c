/*-------------------------------------------------------------------------
 *
 * functions.c
 *		SQL-callable functions of schema replkafka.
 *
 * Each function checks its arguments and this node's configuration first,
 * then works through catalog.c and kafka.c.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/functions.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/catalog.h"
#include "catalog/objectaddress.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/pg_lsn.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "apply.h"
#include "bootstrap.h"
#include "catalog.h"
#include "directory.h"
#include "kafka.h"
#include "demotion.h"
#include "ended.h"
#include "mastership.h"
#include "promotion.h"
#include "partition.h"
#include "partition_rows.h"
#include "roles.h"
#include "settings.h"
#include "shmem.h"
#include "table.h"
#include "worker.h"

/* Kafka stores the replication factor in 16 bits. */
#define REPLKAFKA_MAX_REPLICATION_FACTOR	32767

PG_FUNCTION_INFO_V1(replkafka_create_cluster);
PG_FUNCTION_INFO_V1(replkafka_add_table);
PG_FUNCTION_INFO_V1(replkafka_remove_table);
PG_FUNCTION_INFO_V1(replkafka_partition_of);
PG_FUNCTION_INFO_V1(replkafka_partition_status);
PG_FUNCTION_INFO_V1(replkafka_worker_status);
PG_FUNCTION_INFO_V1(replkafka_promote_partition);
PG_FUNCTION_INFO_V1(replkafka_demote_partition);
PG_FUNCTION_INFO_V1(replkafka_follow);
PG_FUNCTION_INFO_V1(replkafka_unfollow);
PG_FUNCTION_INFO_V1(replkafka_rebuild);
PG_FUNCTION_INFO_V1(replkafka_drop_partition);
PG_FUNCTION_INFO_V1(replkafka_peer_state);
PG_FUNCTION_INFO_V1(replkafka_key_partition);

static void check_node_configured(void);
static int	check_cluster_exists(void);
static void run_sql(const char *sql);
static Datum coerce_key_value(Datum value, Oid fromtype, Oid totype,
							  int32 totypmod);
static void check_partition_number(int partition, int partitions);
static void partition_progress(const ReplkafkaPartition *part,
							   const ReplkafkaProgress *pr, Datum *value,
							   bool *null, Datum *values2, bool *nulls2);
static char *partition_error(int p, const ReplkafkaPartition *part,
							 const ReplkafkaProgress *pr,
							 const char **sqlstate);
static double interval_ms(const Interval *interval);
static int	interval_to_ms(Interval *interval);
static void set_replica_role(int32 partition, ReplkafkaRole to);

/*
 * Fail unless this node has a name and runs in replkafka's database.
 */
static void
check_node_configured(void)
{
	char	   *dbname;

	replkafka_check_preloaded();

	if (replkafka_node_name[0] == '\0')
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("this node has no name"),
				errhint("Set \"replkafka.node_name\" to a name unique within the cluster and restart the server."));

	dbname = get_database_name(MyDatabaseId);
	if (strcmp(dbname, replkafka_database) != 0)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("replkafka is configured for database \"%s\", not \"%s\"",
					   replkafka_database, dbname),
				errhint("Connect to database \"%s\", or set \"replkafka.database\" and restart the server.",
						replkafka_database));
}

/*
 * An interval in milliseconds, a month counting DAYS_PER_MONTH days.
 */
static double
interval_ms(const Interval *interval)
{
	return (interval->time / 1000.0) +
		((double) interval->day * SECS_PER_DAY +
		 (double) interval->month * DAYS_PER_MONTH * SECS_PER_DAY) * 1000.0;
}

/*
 * The retention argument of create_cluster(), an interval or its text
 * ("infinity" too, which PostgreSQL 15's interval lacks), in milliseconds;
 * -1 for infinity.
 */
static int64
retention_to_ms(FunctionCallInfo fcinfo, int argno)
{
	Interval   *interval;
	double		ms;

	if (get_fn_expr_argtype(fcinfo->flinfo, argno) == TEXTOID)
	{
		char	   *str = text_to_cstring(PG_GETARG_TEXT_PP(argno));

		if (pg_strcasecmp(str, "infinity") == 0)
			return -1;
		interval = DatumGetIntervalP(DirectFunctionCall3(interval_in,
														 CStringGetDatum(str),
														 ObjectIdGetDatum(InvalidOid),
														 Int32GetDatum(-1)));
	}
	else
		interval = PG_GETARG_INTERVAL_P(argno);

	ms = interval_ms(interval);
	if (ms < 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("retention must be positive, or \"infinity\""));
	return (int64) Min(ms, (double) PG_INT64_MAX / 2);
}

/*
 * replkafka.create_cluster(partitions int, replication_factor int default 3,
 *							retention interval default '7 days')
 *
 * One-time set-up of this node: records the partition count P and makes
 * sure the cluster's topic exists with P partitions, creating it if
 * missing, with the retention given ('infinity' keeps every record), and
 * the directory of nodes beside it.  Every node of a cluster calls it with
 * the same P; a call with the P already recorded only checks the topic
 * again, leaving its retention as it is.
 */
Datum
replkafka_create_cluster(PG_FUNCTION_ARGS)
{
	int32		partitions = PG_GETARG_INT32(0);
	int32		replication_factor = PG_GETARG_INT32(1);
	int64		retention_ms = retention_to_ms(fcinfo, 2);
	ReplkafkaCluster existing;
	ReplkafkaCluster cluster;
	ReplkafkaTopicSpec spec;
	bool		exists;

	check_node_configured();

	if (partitions < 1 || partitions > replkafka_max_partitions)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("number of partitions must be between 1 and %d",
					   replkafka_max_partitions),
				partitions > replkafka_max_partitions ?
				errhint("Raise \"replkafka.max_partitions\" and restart the server.") : 0);
	if (replication_factor < 1 ||
		replication_factor > REPLKAFKA_MAX_REPLICATION_FACTOR)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("replication factor must be between 1 and %d",
					   REPLKAFKA_MAX_REPLICATION_FACTOR));

	replkafka_catalog_lock_cluster();
	exists = replkafka_catalog_get_cluster(&existing);
	if (exists)
	{
		if (existing.partitions != partitions)
			ereport(ERROR,
					errcode(ERRCODE_DUPLICATE_OBJECT),
					errmsg("cluster already exists with %d partitions",
						   existing.partitions),
					errdetail("The number of partitions of a cluster cannot change."));
		if (strcmp(existing.topic, replkafka_topic) != 0)
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("cluster was created with topic \"%s\", but \"replkafka.topic\" is \"%s\"",
						   existing.topic, replkafka_topic),
					errhint("Set \"replkafka.topic\" back to \"%s\" and restart the server.",
							existing.topic));
	}

	spec.name = replkafka_topic;
	spec.partitions = partitions;
	spec.replication_factor = replication_factor;
	spec.retention_ms = retention_ms;
	spec.compacted = false;
	replkafka_kafka_ensure_topic(&spec);
	replkafka_directory_ensure_topic(replkafka_topic, replication_factor);

	if (!exists)
	{
		cluster.topic = replkafka_topic;
		cluster.partitions = partitions;
		cluster.replication_factor = replication_factor;
		cluster.node_name = replkafka_node_name;
		replkafka_catalog_insert_cluster(&cluster);
		replkafka_ended_forget_all();
		replkafka_roles_reload_at_commit();
	}

	PG_RETURN_VOID();
}

/*
 * Fail unless the cluster was created on this node; returns P.
 */
static int
check_cluster_exists(void)
{
	int			partitions = replkafka_cluster_partitions();

	if (partitions <= 0)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("replkafka cluster does not exist on this node"),
				errhint("Call replkafka.create_cluster() first."));
	return partitions;
}

/*
 * Run a utility statement through SPI.
 */
static void
run_sql(const char *sql)
{
	SPI_connect();
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not run \"%s\"", sql);
	SPI_finish();
}

/*
 * Does rel have a row visible to this transaction?
 */
static bool
table_has_rows(Relation rel)
{
	TableScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	bool		found;

	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	found = table_scan_getnextslot(scan, ForwardScanDirection, slot);
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/*
 * Only a table's owner may start or stop replicating it, as only the owner
 * may add it to a publication: replicas apply its changes as that owner.
 * Checked before the table is locked.
 */
static void
check_table_owner(Oid relid)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind == '\0')
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("relation with OID %u does not exist", relid));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind),
					   get_rel_name(relid));
}

/*
 * replkafka.add_table(rel regclass, partition_key text)
 *
 * Register a table for replication: record its partition key and install
 * the write fence triggers.
 */
Datum
replkafka_add_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *partition_key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Relation	rel;
	AttrNumber	attnums[INDEX_MAX_KEYS];
	AttrNumber *existing;
	int			nkeys;
	char	   *qualname;
	StringInfoData alter_storage;

	check_node_configured();
	check_cluster_exists();
	initStringInfo(&alter_storage);

	check_table_owner(relid);
	/* CREATE TRIGGER takes the same lock. */
	rel = table_open(relid, ShareRowExclusiveLock);
	replkafka_check_replicable_table(rel);
	qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										  RelationGetRelationName(rel));

	if (replkafka_catalog_table_key(relid, &existing) > 0)
		ereport(ERROR,
				errcode(ERRCODE_DUPLICATE_OBJECT),
				errmsg("table \"%s\" is already replicated",
					   RelationGetRelationName(rel)));
	nkeys = replkafka_parse_partition_key(rel, partition_key, attnums);

	/* Key values stay in the row, so that the WAL always has them. */
	for (int i = 0; i < nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnums[i] - 1);

		if (att->attstorage == TYPSTORAGE_EXTERNAL ||
			att->attstorage == TYPSTORAGE_EXTENDED)
		{
			if (alter_storage.len == 0)
				appendStringInfo(&alter_storage, "ALTER TABLE ONLY %s", qualname);
			else
				appendStringInfoChar(&alter_storage, ',');
			appendStringInfo(&alter_storage, " ALTER COLUMN %s SET STORAGE MAIN",
							 quote_identifier(NameStr(att->attname)));
		}
	}

	/* The fence first: DDL on a replicated table must leave it in place. */
	run_sql(psprintf("CREATE TRIGGER replkafka_fence"
					 " BEFORE INSERT OR UPDATE OR DELETE ON %s"
					 " FOR EACH ROW EXECUTE FUNCTION replkafka.fence()",
					 qualname));
	run_sql(psprintf("CREATE TRIGGER replkafka_fence_truncate"
					 " BEFORE TRUNCATE ON %s"
					 " FOR EACH STATEMENT EXECUTE FUNCTION replkafka.fence()",
					 qualname));
	replkafka_check_fence(relid);
	replkafka_catalog_add_table(relid, nkeys, attnums);

	/*
	 * Existing rows are this node's alone; say so.  Looked for with a plain
	 * scan: planning a query would evaluate the constant parts of the table's
	 * index expressions, the owner's functions, as the caller.
	 */
	if (table_has_rows(rel))
		ereport(WARNING,
				errmsg("table \"%s\" already has rows", RelationGetRelationName(rel)),
				errdetail("Rows written before the table was registered are not replicated."));

	CacheInvalidateRelcacheByRelid(relid);
	table_close(rel, NoLock);

	/* ALTER TABLE refuses a table this function has open: now. */
	if (alter_storage.len > 0)
		run_sql(alter_storage.data);
	PG_RETURN_VOID();
}

/*
 * replkafka.remove_table(rel regclass)
 *
 * Stop replicating a table: forget it and drop its fence triggers.
 */
Datum
replkafka_remove_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	char	   *qualname;

	replkafka_check_preloaded();
	check_table_owner(relid);
	rel = table_open(relid, ShareRowExclusiveLock);
	if (!replkafka_catalog_remove_table(relid))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_OBJECT),
				errmsg("table \"%s\" is not replicated",
					   RelationGetRelationName(rel)));
	qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										  RelationGetRelationName(rel));
	run_sql(psprintf("DROP TRIGGER IF EXISTS replkafka_fence ON %s", qualname));
	run_sql(psprintf("DROP TRIGGER IF EXISTS replkafka_fence_truncate ON %s", qualname));
	CacheInvalidateRelcacheByRelid(relid);
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

/*
 * Convert a key value to the key column's type through their text forms,
 * so that partition_of('t', 42) works for a bigint or numeric key.
 */
static Datum
coerce_key_value(Datum value, Oid fromtype, Oid totype, int32 totypmod)
{
	Oid			outfunc;
	Oid			infunc;
	Oid			ioparam;
	bool		isvarlena;
	char	   *text;

	if (fromtype == totype)
		return value;
	getTypeOutputInfo(fromtype, &outfunc, &isvarlena);
	text = OidOutputFunctionCall(outfunc, value);

	getTypeInputInfo(totype, &infunc, &ioparam);
	return OidInputFunctionCall(infunc, text, ioparam, totypmod);
}

/*
 * replkafka.partition_of(rel regclass, key anyelement) returns int
 *
 * The partition of a key value of a replicated table.  For a key of
 * several columns, pass a row: partition_of('t', row(1, 'x')).
 */
Datum
replkafka_partition_of(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 1);
	Relation	rel;
	ReplkafkaTableKey *key;
	TupleDesc	desc;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	int			partition;

	replkafka_check_preloaded();
	rel = table_open(relid, AccessShareLock);
	key = replkafka_table_key(rel);
	if (key == NULL)
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_OBJECT),
				errmsg("table \"%s\" is not replicated",
					   RelationGetRelationName(rel)));
	desc = RelationGetDescr(rel);

	if (key->nkeys == 1 && !type_is_rowtype(argtype))
	{
		Form_pg_attribute att = TupleDescAttr(desc, key->attnums[0] - 1);

		values[0] = coerce_key_value(PG_GETARG_DATUM(1), argtype,
									 att->atttypid, att->atttypmod);
		isnull[0] = false;
	}
	else if (type_is_rowtype(argtype))
	{
		HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(1);
		TupleDesc	rowdesc;
		HeapTupleData tuple;

		rowdesc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(row),
										 HeapTupleHeaderGetTypMod(row));
		if (rowdesc->natts != key->nkeys)
			ereport(ERROR,
					errcode(ERRCODE_DATATYPE_MISMATCH),
					errmsg("partition key of table \"%s\" has %d columns, but the row has %d",
						   RelationGetRelationName(rel), key->nkeys, rowdesc->natts));
		tuple.t_len = HeapTupleHeaderGetDatumLength(row);
		tuple.t_data = row;
		for (int i = 0; i < key->nkeys; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, key->attnums[i] - 1);
			Datum		v = heap_getattr(&tuple, i + 1, rowdesc, &isnull[i]);

			if (isnull[i])
				ereport(ERROR,
						errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("partition key column \"%s\" cannot be null",
							   NameStr(att->attname)));
			values[i] = coerce_key_value(v, TupleDescAttr(rowdesc, i)->atttypid,
										 att->atttypid, att->atttypmod);
		}
		ReleaseTupleDesc(rowdesc);
	}
	else
		ereport(ERROR,
				errcode(ERRCODE_DATATYPE_MISMATCH),
				errmsg("partition key of table \"%s\" has %d columns",
					   RelationGetRelationName(rel), key->nkeys),
				errhint("Pass the key as a row, for example row(1, 'x')."));

	partition = replkafka_partition_of_values(key, values, isnull);
	table_close(rel, AccessShareLock);
	PG_RETURN_INT32(partition);
}

/*
 * replkafka.worker_status(): this node's background workers, from shared
 * memory, for the replkafka.workers view.
 */
Datum
replkafka_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	replkafka_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < 1 + replkafka_apply_workers + replkafka_max_bootstraps; i++)
	{
		ReplkafkaWorkerStatus w;
		Datum		values[10];
		bool		nulls[10];
		int			slot = i;

		/* the shipper, the apply workers, the bootstrap workers */
		if (i > replkafka_apply_workers)
			slot = REPLKAFKA_BOOTSTRAP_SLOT(i - 1 - replkafka_apply_workers);
		replkafka_worker_status_get(slot, &w);
		memset(nulls, 0, sizeof(nulls));
		if (slot == REPLKAFKA_SHIPPER_SLOT)
		{
			values[0] = CStringGetTextDatum("shipper");
			values[1] = Int32GetDatum(0);
		}
		else if (slot >= REPLKAFKA_BOOTSTRAP_SLOT(0))
		{
			values[0] = CStringGetTextDatum("bootstrap");
			values[1] = Int32GetDatum(REPLKAFKA_SLOT_BOOTSTRAP_INDEX(slot));
		}
		else
		{
			values[0] = CStringGetTextDatum("apply");
			values[1] = Int32GetDatum(REPLKAFKA_SLOT_APPLY_INDEX(slot));
		}
		values[2] = Int32GetDatum(w.pid);
		nulls[2] = w.pid == 0;
		values[3] = CStringGetTextDatum(replkafka_worker_state_name(w.state));
		values[4] = TimestampTzGetDatum(w.started);
		nulls[4] = w.starts == 0;
		values[5] = Int64GetDatum(w.starts > 0 ? w.starts - 1 : 0);
		values[6] = BoolGetDatum(w.failing);
		values[7] = TimestampTzGetDatum(w.error_time);
		nulls[7] = w.error_time == 0;
		values[8] = CStringGetTextDatum(w.error_sqlstate);
		nulls[8] = w.error_time == 0;
		values[9] = CStringGetTextDatum(w.last_error);
		nulls[9] = w.error_time == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * The progress columns of a partition: transition (values[0]), then
 * phase, transition_started, records_done and records_total (values2[0..3]).
 * A role change shows its backend's step; a replica catching up since its
 * apply worker took it up shows how far it read.  Called with
 * replkafka_shared->lock held.
 */
static void
partition_progress(const ReplkafkaPartition *part, const ReplkafkaProgress *pr,
				   Datum *value, bool *null, Datum *values2, bool *nulls2)
{
	const char *transition = NULL;
	ReplkafkaPhase phase = REPLKAFKA_PHASE_NONE;
	TimestampTz started = 0;
	int64		from = 0;
	int64		to = 0;

	if (part->role == REPLKAFKA_ROLE_BOOTSTRAPPING)
	{
		/* the copy's rows against the source's estimate */
		*null = false;
		*value = CStringGetTextDatum("bootstrapping");
		nulls2[0] = nulls2[1] = pr->phase == REPLKAFKA_PHASE_NONE;
		if (!nulls2[0])
		{
			values2[0] = CStringGetTextDatum(replkafka_phase_name(pr->phase));
			values2[1] = TimestampTzGetDatum(pr->phase_started);
		}
		nulls2[2] = nulls2[3] = pr->phase == REPLKAFKA_PHASE_NONE;
		values2[2] = Int64GetDatum(pr->copied_rows);
		values2[3] = Int64GetDatum(Max(pr->estimated_rows, pr->copied_rows));
		return;
	}
	if (part->promotion.state != REPLKAFKA_PROMOTE_NONE || part->handover)
	{
		transition = part->handover ? "demoting" : "promoting";
		phase = pr->phase;
		started = pr->phase_started;
		from = pr->phase_from;
		to = pr->phase_to;
	}
	else if (part->role == REPLKAFKA_ROLE_REPLICA &&
			 pr->catchup_to > pr->next_offset)
	{
		transition = "following";
		phase = REPLKAFKA_PHASE_CATCHING_UP;
		started = pr->catchup_started;
		from = pr->catchup_from;
		to = pr->catchup_to;
	}

	*null = transition == NULL;
	nulls2[0] = nulls2[1] = transition == NULL;
	if (transition != NULL)
	{
		*value = CStringGetTextDatum(transition);
		values2[0] = CStringGetTextDatum(replkafka_phase_name(phase));
		values2[1] = TimestampTzGetDatum(started);
	}
	/* records, while a catch-up knows where it reads up to */
	nulls2[2] = nulls2[3] = !(phase == REPLKAFKA_PHASE_CATCHING_UP && to > from);
	if (!nulls2[2])
	{
		values2[2] = Int64GetDatum(Min(Max(pr->next_offset - from, 0), to - from));
		values2[3] = Int64GetDatum(to - from);
	}
}

/*
 * The error shown for partition p: its own (the role's, or an apply retry's),
 * or why the worker serving it cannot work.  NULL if none.
 */
static char *
partition_error(int p, const ReplkafkaPartition *part,
				const ReplkafkaProgress *pr, const char **sqlstate)
{
	int			slot;
	ReplkafkaWorkerStatus w;

	*sqlstate = NULL;
	if (part->last_error[0] != '\0')
	{
		if (part->error_sqlstate[0] != '\0')
			*sqlstate = pstrdup(part->error_sqlstate);
		return pstrdup(part->last_error);
	}
	if (part->role != REPLKAFKA_ROLE_PRIMARY &&
		part->role != REPLKAFKA_ROLE_REPLICA)
		return NULL;
	if (pr->apply_retrying)
	{
		*sqlstate = pstrdup(pr->retry_sqlstate);
		return psprintf("%s; retrying since %s", pr->retry_error,
						timestamptz_to_str(pr->retry_time));
	}
	slot = part->role == REPLKAFKA_ROLE_PRIMARY ? REPLKAFKA_SHIPPER_SLOT :
		REPLKAFKA_APPLY_SLOT(replkafka_apply_worker_of(p));
	replkafka_worker_status_get(slot, &w);
	if (!w.failing)
		return NULL;
	*sqlstate = pstrdup(w.error_sqlstate);
	return replkafka_worker_describe(slot, &w);
}

/*
 * replkafka.partition_status(): this node's run-time state of every
 * partition, from shared memory, for the replkafka.partitions view.
 */
Datum
replkafka_partition_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	replkafka_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	replkafka_roles_ensure_loaded();

	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	for (int p = 0; p < replkafka_shared->npartitions; p++)
	{
		ReplkafkaPartition *part = &replkafka_shared->partitions[p];
		ReplkafkaProgress pr;
		Datum		values[23];
		bool		nulls[23];
		bool		replica = part->role == REPLKAFKA_ROLE_REPLICA;
		int64		lag;
		char	   *error;
		const char *sqlstate;

		replkafka_partition_get_progress(p, &pr);
		lag = Max(pr.log_end - pr.next_offset, 0);
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(p);
		values[1] = CStringGetTextDatum(replkafka_role_name(part->role));
		values[2] = Int64GetDatum((int64) part->generation);
		values[3] = Int64GetDatum((int64) pr.shipped_scn);
		nulls[3] = pr.shipped_scn == 0;
		values[4] = Int64GetDatum(pr.shipped_offset);
		nulls[4] = pr.shipped_scn == 0;
		values[5] = Int64GetDatum((int64) pr.applied_scn);
		nulls[5] = pr.applied_scn == 0;
		values[6] = Int64GetDatum(pr.applied_offset);
		nulls[6] = pr.applied_scn == 0;
		values[7] = Int64GetDatum(lag);
		nulls[7] = !replica || pr.log_end == 0;
		values[8] = Float8GetDatum(lag > 0 && pr.applied_commit_time != 0 ?
								   (double) (GetCurrentTimestamp() - pr.applied_commit_time) / USECS_PER_SEC :
								   0.0);
		nulls[8] = nulls[7];
		values[9] = Int64GetDatum(pr.zombies_skipped);

		error = partition_error(p, part, &pr, &sqlstate);
		nulls[10] = error == NULL;
		if (error)
			values[10] = CStringGetTextDatum(error);

		values[12] = Int64GetDatum(pr.orphaned);

		/* a role change in progress, or a replica catching up */
		partition_progress(part, &pr, &values[11], &nulls[11], &values[13],
						   &nulls[13]);

		values[17] = Int64GetDatum(pr.apply_retries);
		nulls[18] = sqlstate == NULL;
		if (sqlstate)
			values[18] = CStringGetTextDatum(sqlstate);

		/* a bootstrap: bytes copied, and the source's estimate of its size */
		nulls[19] = nulls[20] = part->role != REPLKAFKA_ROLE_BOOTSTRAPPING ||
			pr.phase == REPLKAFKA_PHASE_NONE;
		values[19] = Int64GetDatum(pr.copied_bytes);
		values[20] = Int64GetDatum(Max(pr.estimated_bytes, pr.copied_bytes));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(replkafka_shared->lock);
	return (Datum) 0;
}

/*
 * Fail unless partition is one of the cluster's.
 */
static void
check_partition_number(int partition, int partitions)
{
	if (partition < 0 || partition >= partitions)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("partition %d does not exist", partition),
				errdetail("The cluster's partitions are numbered 0 to %d.",
						  partitions - 1));
}

/*
 * An interval as a positive number of milliseconds, at most INT_MAX.
 */
static int
interval_to_ms(Interval *interval)
{
	double		ms = interval_ms(interval);

	if (ms <= 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("timeout must be greater than zero"));
	return (int) Min(ms, (double) INT_MAX);
}

/*
 * Check a call of promote() or demote(): they write a record to Kafka,
 * which cannot be rolled back, so they run outside a transaction block.
 */
static void
check_mastership_call(int32 partition, const char *function)
{
	check_node_configured();
	check_partition_number(partition, check_cluster_exists());
	if (IsTransactionBlock())
		ereport(ERROR,
				errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				errmsg("%s cannot run inside a transaction block", function),
				errdetail("The record it writes to Kafka cannot be rolled back."));
}

/*
 * replkafka.promote(partition int, timeout interval default '30s') returns bigint
 *
 * Make this node the primary of a partition in a new generation.  It runs
 * outside a transaction block: the NEW_GEN record it writes to Kafka cannot
 * be rolled back.
 */
Datum
replkafka_promote_partition(PG_FUNCTION_ARGS)
{
	int32		partition = PG_GETARG_INT32(0);
	int			timeout_ms = interval_to_ms(PG_GETARG_INTERVAL_P(1));

	check_mastership_call(partition, "replkafka.promote()");
	PG_RETURN_INT64((int64) replkafka_promote(partition, timeout_ms));
}

/*
 * replkafka.demote(partition int, timeout interval default '30s')
 *
 * Hand a partition this node is primary of over cleanly and become its
 * replica.  It runs outside a transaction block: the END_GEN record it
 * writes to Kafka cannot be rolled back.
 */
Datum
replkafka_demote_partition(PG_FUNCTION_ARGS)
{
	int32		partition = PG_GETARG_INT32(0);
	int			timeout_ms = interval_to_ms(PG_GETARG_INTERVAL_P(1));

	check_mastership_call(partition, "replkafka.demote()");
	replkafka_demote(partition, timeout_ms);
	PG_RETURN_VOID();
}

/*
 * Check a call that changes this node's role in partition between
 * offline, replica, error and bootstrapping, and lock the partition's role
 * until the transaction ends: returns the role, and the generation.
 */
static ReplkafkaRole
lock_partition_role(int32 partition, uint32 *generation)
{
	ReplkafkaRole role;

	check_node_configured();
	check_partition_number(partition, check_cluster_exists());
	replkafka_roles_ensure_loaded();
	replkafka_roles_lock(partition, &role, generation);
	if (role == REPLKAFKA_ROLE_PRIMARY)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is primary of partition %d",
					   replkafka_node_name, partition),
				errhint("Demote it first with replkafka.demote(%d).", partition));
	return role;
}

/*
 * Move this node's role in a partition between replica and offline (the
 * two roles an apply worker cares about), from any role but primary.
 * Going offline stops a bootstrap too.
 */
static void
set_replica_role(int32 partition, ReplkafkaRole to)
{
	ReplkafkaRole role;
	uint32		generation;

	role = lock_partition_role(partition, &generation);
	if (role == to)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				to == REPLKAFKA_ROLE_REPLICA ?
				errmsg("node \"%s\" is already replica of partition %d",
					   replkafka_node_name, partition) :
				errmsg("node \"%s\" does not apply partition %d",
					   replkafka_node_name, partition));
	if (role == REPLKAFKA_ROLE_BOOTSTRAPPING && to == REPLKAFKA_ROLE_REPLICA)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is bootstrapping partition %d",
					   replkafka_node_name, partition),
				errdetail("It becomes replica of the partition once the copy is done."),
				errhint("Watch its progress in replkafka.partitions, or stop it with replkafka.unfollow(%d).",
						partition));
	if (to == REPLKAFKA_ROLE_REPLICA)
		replkafka_check_not_stale(partition);
	if (role == REPLKAFKA_ROLE_BOOTSTRAPPING)
		replkafka_catalog_end_bootstrap(partition);
	replkafka_catalog_set_role(partition, to, generation, NULL, NULL);
	replkafka_roles_set_at_commit(partition, to, generation);
}

/*
 * Wait for the apply worker to let go of partition, which it may still
 * apply a batch of after unfollow() (it looks at roles between batches):
 * the caller is about to read or drop its rows.
 */
static void
wait_partition_released(int32 partition)
{
	if (!replkafka_partition_wait_released(partition,
										   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																	   replkafka_request_timeout)))
		ereport(ERROR,
				errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				errmsg("an apply worker still applies partition %d", partition),
				errdetail("It stops once it is done with the transactions it fetched."),
				errhint("Try again."));
}

/*
 * Fail if partition, whose role the caller locked, is being bootstrapped.
 */
static void
check_not_bootstrapping(int32 partition, ReplkafkaRole role)
{
	if (role == REPLKAFKA_ROLE_BOOTSTRAPPING)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is already bootstrapping partition %d",
					   replkafka_node_name, partition));
}

/*
 * Have partition bootstrapped from source (NULL: a peer the node finds),
 * its local rows replaced if rebuild: the partition becomes bootstrapping
 * when the transaction commits, and a bootstrap worker copies it.  The
 * caller locked its role (lock_partition_role()), in generation.
 */
static void
request_bootstrap(int32 partition, uint32 generation, const char *source,
				  bool rebuild)
{
	if (source)
		replkafka_bootstrap_check_source(source, partition);
	replkafka_catalog_request_bootstrap(partition, source, rebuild);
	replkafka_catalog_set_role(partition, REPLKAFKA_ROLE_BOOTSTRAPPING,
							   generation, NULL, NULL);
	replkafka_roles_set_at_commit(partition, REPLKAFKA_ROLE_BOOTSTRAPPING,
								  generation);
	if (replkafka_max_bootstraps == 0)
		ereport(WARNING,
				errmsg("this node runs no bootstrap worker"),
				errdetail("\"replkafka.max_bootstraps\" is 0, so partition %d waits until it is raised.",
						  partition));
}

/*
 * replkafka.follow(partition int, source text default null)
 *
 * Start applying a partition here: offline (or error, once its cause is
 * fixed) to replica.  Without a source, the apply worker starts from this
 * node's consumer checkpoint, or from the start of the log.  With one (a
 * libpq connection string of a peer that is primary or replica of the
 * partition), the node, which must have no rows of the partition, first
 * copies them from a snapshot of the peer (role bootstrapping), then
 * applies the log from where that snapshot stands.
 */
Datum
replkafka_follow(PG_FUNCTION_ARGS)
{
	int32		partition;
	ReplkafkaRole role;
	uint32		generation;
	char	   *table;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("partition cannot be null"));
	partition = PG_GETARG_INT32(0);
	if (PG_ARGISNULL(1))
	{
		set_replica_role(partition, REPLKAFKA_ROLE_REPLICA);
		PG_RETURN_VOID();
	}

	role = lock_partition_role(partition, &generation);
	if (role == REPLKAFKA_ROLE_REPLICA)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is already replica of partition %d",
					   replkafka_node_name, partition),
				errhint("To copy the partition again, call replkafka.rebuild(%d).", partition));
	check_not_bootstrapping(partition, role);
	wait_partition_released(partition);
	table = replkafka_partition_rows_table(partition);
	if (table)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" has rows of partition %d", replkafka_node_name,
					   partition),
				errdetail("Table %s has rows of the partition; a bootstrap copies the partition into a node that has none.",
						  table),
				errhint("To replace them with the source's, call replkafka.rebuild(%d, source => ...); to delete them, replkafka.drop_partition(%d).",
						partition, partition));
	request_bootstrap(partition, generation,
					  text_to_cstring(PG_GETARG_TEXT_PP(1)), false);
	PG_RETURN_VOID();
}

/*
 * replkafka.unfollow(partition int)
 *
 * Stop applying a partition here: replica (or error, or bootstrapping) to
 * offline.  The consumer checkpoint stays; follow() resumes from it.  A
 * bootstrap in progress stops, leaving nothing of its copy.
 */
Datum
replkafka_unfollow(PG_FUNCTION_ARGS)
{
	set_replica_role(PG_GETARG_INT32(0), REPLKAFKA_ROLE_OFFLINE);
	PG_RETURN_VOID();
}

/*
 * replkafka.rebuild(partition int, source text default null)
 *
 * Replace this node's copy of a partition: a replica (in error, past the
 * log's retention, or a stale primary's) drops its rows of the partition
 * and bootstraps it again, from source, or from a peer it finds in the
 * cluster's directory.  Other partitions go on meanwhile.
 */
Datum
replkafka_rebuild(PG_FUNCTION_ARGS)
{
	int32		partition;
	ReplkafkaRole role;
	uint32		generation;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("partition cannot be null"));
	partition = PG_GETARG_INT32(0);
	role = lock_partition_role(partition, &generation);
	check_not_bootstrapping(partition, role);
	request_bootstrap(partition, generation,
					  PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
					  true);
	PG_RETURN_VOID();
}

/*
 * replkafka.drop_partition(partition int) returns bigint
 *
 * Delete this node's rows of a partition it no longer holds (offline), the
 * last step of moving a copy away, and forget its checkpoints; returns how
 * many rows.  The deletes are not shipped: they change this node's copy,
 * not the cluster's data.
 */
Datum
replkafka_drop_partition(PG_FUNCTION_ARGS)
{
	int32		partition = PG_GETARG_INT32(0);
	ReplkafkaRole role;
	uint32		generation;
	volatile int64 n = 0;

	role = lock_partition_role(partition, &generation);
	if (role != REPLKAFKA_ROLE_OFFLINE)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is %s of partition %d",
					   replkafka_node_name, replkafka_role_name(role), partition),
				errdetail("Only the rows of a partition the node no longer holds can be dropped."),
				errhint("Stop applying it first with replkafka.unfollow(%d).", partition));

	wait_partition_released(partition);
	replkafka_partition_rows_check_references();
	replkafka_do_not_replicate(true);
	PG_TRY();
	{
		n = replkafka_partition_drop_rows(bms_make_singleton(partition));
	}
	PG_FINALLY();
	{
		replkafka_do_not_replicate(false);
	}
	PG_END_TRY();
	replkafka_catalog_delete_consumer_checkpoint(partition);
	replkafka_catalog_delete_producer_checkpoint(partition);
	PG_RETURN_INT64(n);
}

/*
 * replkafka.peer_state(partition int): what a node that bootstraps a
 * partition from this one asks first: this node's cluster, and its role
 * in the partition, whether it is a stale primary, how far Kafka holds its
 * commits, and, as a replica, the offset of the last record it applied.
 */
Datum
replkafka_peer_state(PG_FUNCTION_ARGS)
{
	int32		partition = PG_GETARG_INT32(0);
	TupleDesc	desc;
	Datum		values[10];
	bool		nulls[10];
	ReplkafkaCluster cluster;
	ReplkafkaPartition *part;
	ReplkafkaProgress pr;
	ReplkafkaRole role;

	check_node_configured();
	check_partition_number(partition, check_cluster_exists());
	replkafka_roles_ensure_loaded();
	if (!replkafka_catalog_get_cluster(&cluster))
		elog(ERROR, "cluster disappeared");
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(replkafka_node_name);
	values[1] = CStringGetTextDatum(cluster.topic);
	values[2] = Int32GetDatum(cluster.partitions);
	part = replkafka_partition_state(partition);
	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	role = part->role;
	values[3] = CStringGetTextDatum(replkafka_role_name(role));
	values[4] = Int64GetDatum((int64) part->generation);
	values[5] = BoolGetDatum(part->stale_generation != 0 &&
							 part->stale_generation == part->generation);
	values[6] = LSNGetDatum(part->history_end);
	nulls[6] = !DatumGetBool(values[5]);
	nulls[8] = part->last_error[0] == '\0';
	if (!nulls[8])
		values[8] = CStringGetTextDatum(part->last_error);
	LWLockRelease(replkafka_shared->lock);
	values[7] = LSNGetDatum(pg_atomic_read_u64(&replkafka_shared->acked_lsn));
	/* a replica: the last record it applied, which its copy holds */
	replkafka_partition_get_progress(partition, &pr);
	values[9] = Int64GetDatum(pr.applied_offset);
	nulls[9] = role != REPLKAFKA_ROLE_REPLICA || pr.applied_offset < 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * replkafka.key_partition(rel regclass, VARIADIC key "any") returns int
 *
 * The partition of the key values of a replicated table's row, given in
 * the order of its partition key and of its key columns' types: what a
 * bootstrap's source selects its rows of a partition with.  The key is
 * looked up once per query.
 */
Datum
replkafka_key_partition(PG_FUNCTION_ARGS)
{
	ReplkafkaTableKey *key = fcinfo->flinfo->fn_extra;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (key == NULL || key->relid != PG_GETARG_OID(0))
	{
		Relation	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
		ReplkafkaTableKey *found = replkafka_table_key(rel);

		if (found == NULL)
			ereport(ERROR,
					errcode(ERRCODE_UNDEFINED_OBJECT),
					errmsg("table \"%s\" is not replicated",
						   RelationGetRelationName(rel)));
		if (PG_NARGS() - 1 != found->nkeys)
			ereport(ERROR,
					errcode(ERRCODE_DATATYPE_MISMATCH),
					errmsg("partition key of table \"%s\" has %d columns, not %d",
						   RelationGetRelationName(rel), found->nkeys,
						   PG_NARGS() - 1));
		for (int i = 0; i < found->nkeys; i++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel),
												  found->attnums[i] - 1);

			if (get_fn_expr_argtype(fcinfo->flinfo, i + 1) != att->atttypid)
				ereport(ERROR,
						errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("partition key column \"%s\" of table \"%s\" is of type %s",
							   NameStr(att->attname), RelationGetRelationName(rel),
							   format_type_be(att->atttypid)));
		}
		key = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(ReplkafkaTableKey));
		memcpy(key, found, sizeof(ReplkafkaTableKey));
		fcinfo->flinfo->fn_extra = key;
		table_close(rel, AccessShareLock);
	}
	for (int i = 0; i < key->nkeys; i++)
	{
		values[i] = PG_GETARG_DATUM(i + 1);
		isnull[i] = PG_ARGISNULL(i + 1);
	}
	PG_RETURN_INT32(replkafka_partition_of_values(key, values, isnull));
}
