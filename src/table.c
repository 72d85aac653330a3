/*-------------------------------------------------------------------------
 *
 * table.c
 *		Replicated tables: what makes a table replicable, and keeping it
 *		so under ALTER TABLE.
 *
 * A replicated table needs a primary key that its replica identity logs
 * (so that the decoder finds every change's key, hence its partition, in
 * the WAL), and partition key columns that are part of the primary key,
 * whose type every node hashes alike, and whose values stay in the row
 * (an out-of-line TOASTed key of an UPDATE is not in the WAL).  add_table()
 * checks all of it and keeps the key columns' values in the row (storage
 * MAIN); ALTER TABLE of a replicated table is checked again once it ran,
 * and undone with an error if it broke any of it: a change the decoder
 * cannot ship would stop the shipping of every partition on the node.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/table.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "catalog.h"
#include "partition.h"
#include "settings.h"
#include "table.h"

/* What a utility statement is checked against: the tables before it. */
struct TableGuard
{
	List	   *registered;		/* OIDs of the replicated tables */
	List	   *tables;			/* their partition keys, TableKeyColumns */
};

/* The partition key of a replicated table as it was before ALTER TABLE. */
typedef struct TableKeyColumns
{
	Oid			relid;
	int			nkeys;
	AttrNumber *attnums;
	char	   *names[INDEX_MAX_KEYS];
	Oid			types[INDEX_MAX_KEYS];
	int32		typmods[INDEX_MAX_KEYS];
	Oid			collations[INDEX_MAX_KEYS];
} TableKeyColumns;

static bool table_in_primary_key(Relation rel, AttrNumber attnum);
static void table_check_key_column(Relation rel, AttrNumber attnum);
static TableKeyColumns *table_key_columns(const ReplkafkaTableRow *row);
static bool table_changed_by_me(Oid relid);
static void table_check_fence(Relation rel);
static void table_check_deferrable(Relation rel);
static void table_check_alter_type(AlterTableStmt *stmt, List *tables);
static void table_check_after_alter(const TableKeyColumns *cols);

/*
 * Fail unless rel is a table replkafka can replicate: a permanent, plain,
 * user table with a primary key that is its replica identity.
 */
void
replkafka_check_replicable_table(Relation rel)
{
	const char *name = RelationGetRelationName(rel);

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("cannot replicate partitioned table \"%s\"", name),
				errhint("Replicate its partitions instead."));
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				errcode(ERRCODE_WRONG_OBJECT_TYPE),
				errmsg("\"%s\" is not a table", name));
	if (rel->rd_rel->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("cannot replicate temporary or unlogged table \"%s\"", name),
				errdetail("Changes of such tables are not written to the WAL."));
	if (IsCatalogRelation(rel) ||
		RelationGetNamespace(rel) == get_namespace_oid(REPLKAFKA_EXTENSION_NAME, false))
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("cannot replicate system table \"%s\"", name));
	if (!OidIsValid(RelationGetPrimaryKeyIndex(rel)))
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("table \"%s\" has no primary key", name),
				errdetail("Replicas find the rows to update and delete by primary key."),
				errhint("Add a primary key with ALTER TABLE ... ADD PRIMARY KEY."));
	if (rel->rd_rel->relreplident != REPLICA_IDENTITY_DEFAULT &&
		rel->rd_rel->relreplident != REPLICA_IDENTITY_FULL)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("table \"%s\" does not log its primary key", name),
				errdetail("Its replica identity must be DEFAULT or FULL."),
				errhint("Use ALTER TABLE ... REPLICA IDENTITY DEFAULT."));
}

/*
 * The columns of rel's primary key, as attribute numbers offset by
 * FirstLowInvalidHeapAttributeNumber (as RelationGetIndexAttrBitmap()
 * returns them), read from the primary key's pg_index row alone, without
 * looking at the table's other indexes.
 */
Bitmapset *
replkafka_primary_key_attrs(Relation rel)
{
	Oid			pkoid = RelationGetPrimaryKeyIndex(rel);
	HeapTuple	indtup;
	Form_pg_index index;
	Bitmapset  *attrs = NULL;

	if (!OidIsValid(pkoid))
		return NULL;
	indtup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pkoid));
	if (!HeapTupleIsValid(indtup))
		elog(ERROR, "cache lookup failed for index %u", pkoid);
	index = (Form_pg_index) GETSTRUCT(indtup);
	for (int i = 0; i < index->indnkeyatts; i++)
		attrs = bms_add_member(attrs, index->indkey.values[i] -
							   FirstLowInvalidHeapAttributeNumber);
	ReleaseSysCache(indtup);
	return attrs;
}

/*
 * Is attnum a column of rel's primary key?
 */
static bool
table_in_primary_key(Relation rel, AttrNumber attnum)
{
	return bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber,
						 replkafka_primary_key_attrs(rel));
}

/*
 * Fail unless column attnum of rel can be (or stay) a partition key
 * column: part of the primary key, of a type every node hashes alike.
 */
static void
table_check_key_column(Relation rel, AttrNumber attnum)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	const char *colname = NameStr(att->attname);
	const char *problem;

	if (att->attisdropped)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("cannot drop partition key column %d of replicated table \"%s\"",
					   attnum, RelationGetRelationName(rel)),
				errhint("Stop replicating the table with replkafka.remove_table() first."));
	if (att->attgenerated)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("generated column \"%s\" cannot be a partition key",
					   colname),
				errdetail("Replicas write the key values the log carries, and a generated column cannot be written."));
	if (!table_in_primary_key(rel, attnum))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("column \"%s\" is not part of the primary key of table \"%s\"",
					   colname, RelationGetRelationName(rel)),
				errdetail("The partition key must be part of the primary key, so that a key is unique within its partition."));
	if (replkafka_key_hash_function(att->atttypid) == NULL)
		problem = "The type has no extended hash function.";
	else
		problem = replkafka_key_type_problem(att->atttypid, att->attcollation);
	if (problem)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("column \"%s\" of type %s cannot be a partition key",
					   colname, format_type_be(att->atttypid)),
				errdetail("%s", problem),
				errhint("Every node must compute the same partition for a key."));
}

/*
 * Parse the column list of a partition key ("a" or "a, b", identifiers as
 * in SQL) into attnums; every column must be part of the primary key and
 * hashable.  Returns the number of columns.
 */
int
replkafka_parse_partition_key(Relation rel, const char *partition_key,
							  AttrNumber *attnums)
{
	char	   *raw = pstrdup(partition_key);
	List	   *names;
	ListCell   *lc;
	int			nkeys = 0;

	if (!SplitIdentifierString(raw, ',', &names) || names == NIL)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid partition key \"%s\"", partition_key),
				errhint("Name the key columns, separated by commas."));

	foreach(lc, names)
	{
		char	   *colname = lfirst(lc);
		AttrNumber	attnum = get_attnum(RelationGetRelid(rel), colname);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					errcode(ERRCODE_UNDEFINED_COLUMN),
					errmsg("column \"%s\" of relation \"%s\" does not exist",
						   colname, RelationGetRelationName(rel)));
		if (list_length(names) > INDEX_MAX_KEYS)
			ereport(ERROR,
					errcode(ERRCODE_TOO_MANY_COLUMNS),
					errmsg("a partition key has at most %d columns", INDEX_MAX_KEYS));
		for (int i = 0; i < nkeys; i++)
			if (attnums[i] == attnum)
				ereport(ERROR,
						errcode(ERRCODE_DUPLICATE_COLUMN),
						errmsg("column \"%s\" appears twice in the partition key",
							   colname));
		table_check_key_column(rel, attnum);
		attnums[nkeys++] = attnum;
	}
	return nkeys;
}

/*
 * The partition key columns of a replicated table, as the catalog caches
 * say they are now (no lock taken); NULL if the table is gone.
 */
static TableKeyColumns *
table_key_columns(const ReplkafkaTableRow *row)
{
	TableKeyColumns *cols = palloc0(sizeof(TableKeyColumns));

	cols->relid = row->relid;
	cols->nkeys = row->nkeys;
	cols->attnums = row->attnums;
	for (int i = 0; i < row->nkeys; i++)
	{
		cols->names[i] = get_attname(row->relid, row->attnums[i], true);
		if (cols->names[i] == NULL)
			return NULL;
		get_atttypetypmodcoll(row->relid, row->attnums[i], &cols->types[i],
							  &cols->typmods[i], &cols->collations[i]);
	}
	return cols;
}

/*
 * Refuse ALTER TABLE ... ALTER COLUMN ... TYPE of a partition key column
 * of a replicated table among tables, before it runs: even to the same
 * type (USING an expression), it rewrites key values locally, and a table
 * rewrite is not shipped.
 */
static void
table_check_alter_type(AlterTableStmt *stmt, List *tables)
{
	Oid			relid;
	List	   *affected;
	ListCell   *lc;

	if (stmt->objtype != OBJECT_TABLE)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	affected = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);
		ListCell   *lt;

		if (cmd->subtype != AT_AlterColumnType)
			continue;
		foreach(lt, tables)
		{
			TableKeyColumns *cols = lfirst(lt);

			if (!list_member_oid(affected, cols->relid))
				continue;
			for (int i = 0; i < cols->nkeys; i++)
				if (strcmp(cols->names[i], cmd->name) == 0)
					ereport(ERROR,
							errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("cannot change the type of partition key column \"%s\" of replicated table \"%s\"",
								   cmd->name, get_rel_name(cols->relid)),
							errdetail("The partition of a key depends on its type and value."));
		}
	}
}

/*
 * Before a utility statement that can change or drop what replicated
 * tables depend on (ALTER TABLE, including ALTER TYPE of a composite type,
 * ALTER DOMAIN, DROP, DROP OWNED, CREATE TRIGGER and renames): note the
 * partition key columns of every replicated table, from the catalog
 * caches, and refuse a type change of one.  Returns what
 * replkafka_table_after_utility() wants; NULL for other statements.
 */
TableGuard *
replkafka_table_before_utility(Node *stmt)
{
	TableGuard *guard;
	ListCell   *lc;

	if (!IsA(stmt, AlterTableStmt) && !IsA(stmt, AlterDomainStmt) &&
		!IsA(stmt, DropStmt) && !IsA(stmt, DropOwnedStmt) &&
		!IsA(stmt, CreateTrigStmt) && !IsA(stmt, RenameStmt))
		return NULL;
	if (!IsTransactionState() ||
		!OidIsValid(get_extension_oid(REPLKAFKA_EXTENSION_NAME, true)))
		return NULL;

	guard = palloc0(sizeof(TableGuard));
	foreach(lc, replkafka_catalog_tables())
	{
		const ReplkafkaTableRow *row = lfirst(lc);
		TableKeyColumns *cols = table_key_columns(row);

		guard->registered = lappend_oid(guard->registered, row->relid);
		if (cols)
			guard->tables = lappend(guard->tables, cols);
	}
	if (IsA(stmt, AlterTableStmt))
		table_check_alter_type((AlterTableStmt *) stmt, guard->tables);
	return guard;
}

/*
 * Does this transaction hold a lock on relation relid that lets it change
 * the relation's definition?  A statement that changed a table (or dropped
 * one of its columns, constraints or triggers through a cascade) holds
 * one; the others it left alone are not looked at, nor locked.
 */
static bool
table_changed_by_me(Oid relid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	for (LOCKMODE mode = ShareUpdateExclusiveLock; mode <= AccessExclusiveLock; mode++)
		if (LockHeldByMe(&tag, mode))
			return true;
	return false;
}

/*
 * After the statement: every replicated table it changed must still be
 * replicable, its partition key columns keep their types, collations and
 * in-row storage, and its write fence stays in place; otherwise the
 * statement fails.  A table registered while the statement waited for its
 * lock (by add_table() in another session) was not seen before: what the
 * statement did to its key cannot be told, so the statement fails too.
 */
void
replkafka_table_after_utility(TableGuard *guard)
{
	ListCell   *lc;

	if (guard == NULL)
		return;
	CommandCounterIncrement();
	if (!OidIsValid(get_extension_oid(REPLKAFKA_EXTENSION_NAME, true)))
		return;
	foreach(lc, replkafka_catalog_tables())
	{
		Oid			relid = ((ReplkafkaTableRow *) lfirst(lc))->relid;
		ListCell   *lt;

		/* a table dropped is forgotten (replkafka_forget_dropped_tables) */
		if (!table_changed_by_me(relid))
			continue;
		if (!list_member_oid(guard->registered, relid))
			ereport(ERROR,
					errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					errmsg("table \"%s\" became replicated while the statement waited for it",
						   get_rel_name(relid)),
					errhint("Run the statement again."));
		foreach(lt, guard->tables)
		{
			TableKeyColumns *cols = lfirst(lt);

			if (cols->relid == relid)
				table_check_after_alter(cols);
		}
	}
}

/*
 * replkafka_table_after_utility() for one table.
 */
static void
table_check_after_alter(const TableKeyColumns *cols)
{
	Relation	rel;

	rel = table_open(cols->relid, AccessShareLock);
	for (int i = 0; i < cols->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel),
											  cols->attnums[i] - 1);

		if (att->attisdropped)
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("cannot drop partition key column \"%s\" of replicated table \"%s\"",
						   cols->names[i], RelationGetRelationName(rel)),
					errhint("Stop replicating the table with replkafka.remove_table() first."));
		if (att->atttypid != cols->types[i] ||
			att->atttypmod != cols->typmods[i] ||
			att->attcollation != cols->collations[i])
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("cannot change the type or collation of partition key column \"%s\" of replicated table \"%s\"",
						   NameStr(att->attname), RelationGetRelationName(rel)),
					errdetail("The partition of a key depends on them."));
		if (att->attstorage == TYPSTORAGE_EXTERNAL ||
			att->attstorage == TYPSTORAGE_EXTENDED)
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("partition key column \"%s\" of replicated table \"%s\" must keep its values in the row",
						   NameStr(att->attname), RelationGetRelationName(rel)),
					errdetail("A value stored out of line is not in the WAL when an UPDATE leaves it unchanged."),
					errhint("Use storage MAIN or PLAIN."));
	}
	replkafka_check_replicable_table(rel);
	for (int i = 0; i < cols->nkeys; i++)
		table_check_key_column(rel, cols->attnums[i]);
	table_check_fence(rel);
	table_close(rel, AccessShareLock);
}

/*
 * The write fence of a replicated table (add_table()'s two triggers) must
 * stay, enabled for ordinary sessions: without it, writes to a partition
 * this node is not primary of would commit here and never be shipped.
 */
static void
table_check_fence(Relation rel)
{
	TriggerDesc *trigdesc = rel->trigdesc;
	bool		row = false;
	bool		truncate = false;

	for (int i = 0; trigdesc && i < trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &trigdesc->triggers[i];
		char	   *func = get_func_name(trig->tgfoid);

		/* the fence fires for every row: no WHEN, no column list */
		if (trig->tgenabled != TRIGGER_FIRES_ON_ORIGIN || func == NULL ||
			trig->tgisinternal || trig->tgqual != NULL ||
			trig->tgnattr != 0 || trig->tgnargs != 0 ||
			trig->tgdeferrable ||
			strcmp(func, "fence") != 0 ||
			get_func_namespace(trig->tgfoid) != get_namespace_oid(REPLKAFKA_EXTENSION_NAME, false) ||
			!TRIGGER_FOR_BEFORE(trig->tgtype))
			continue;
		if (strcmp(trig->tgname, "replkafka_fence") == 0 &&
			TRIGGER_FOR_ROW(trig->tgtype) && TRIGGER_FOR_INSERT(trig->tgtype) &&
			TRIGGER_FOR_UPDATE(trig->tgtype) && TRIGGER_FOR_DELETE(trig->tgtype))
			row = true;
		if (strcmp(trig->tgname, "replkafka_fence_truncate") == 0 &&
			TRIGGER_FOR_TRUNCATE(trig->tgtype))
			truncate = true;
	}
	if (!row || !truncate)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("the write fence of replicated table \"%s\" must stay enabled",
					   RelationGetRelationName(rel)),
				errdetail("Without its triggers \"replkafka_fence\" and \"replkafka_fence_truncate\", writes to partitions this node is not primary of would never be shipped."),
				errhint("Stop replicating the table with replkafka.remove_table() first."));

	/*
	 * BEFORE ROW triggers fire in name order, and the fence checks the row as
	 * it is when the fence fires: a trigger after it could change the
	 * partition key unseen.
	 */
	for (int i = 0; trigdesc && i < trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &trigdesc->triggers[i];

		if (trig->tgenabled != TRIGGER_DISABLED &&
			TRIGGER_FOR_ROW(trig->tgtype) && TRIGGER_FOR_BEFORE(trig->tgtype) &&
			(TRIGGER_FOR_INSERT(trig->tgtype) || TRIGGER_FOR_UPDATE(trig->tgtype)) &&
			strcmp(trig->tgname, "replkafka_fence") > 0)
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("trigger \"%s\" of replicated table \"%s\" would fire after the write fence",
						   trig->tgname, RelationGetRelationName(rel)),
					errdetail("BEFORE ROW triggers fire in the order of their names; one after \"replkafka_fence\" could change the partition key of a row the fence let through."),
					errhint("Give the trigger a name that sorts before \"replkafka_fence\"."));
	}
	table_check_deferrable(rel);
}

/*
 * The apply worker runs a replicated table's triggers as the table's
 * owner, change by change; a deferred trigger would fire at commit,
 * outside of that.  Refuse the deferrable triggers that run code a table
 * owner chose: constraint triggers, and the recheck of a deferrable
 * exclusion constraint (its operators and index expressions).  Deferrable
 * unique and foreign key constraints run none.
 */
static void
table_check_deferrable(Relation rel)
{
	TriggerDesc *trigdesc = rel->trigdesc;

	for (int i = 0; trigdesc && i < trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &trigdesc->triggers[i];
		HeapTuple	contup;
		char		contype;

		if (!trig->tgdeferrable)
			continue;
		if (!trig->tgisinternal)
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("deferrable trigger \"%s\" of replicated table \"%s\" is not supported",
						   trig->tgname, RelationGetRelationName(rel)),
					errdetail("Replicas apply changes as the table's owner, and a deferred trigger would fire outside of that, at commit."),
					errhint("Make the trigger NOT DEFERRABLE."));
		if (!OidIsValid(trig->tgconstraint))
			continue;
		contup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(trig->tgconstraint));
		if (!HeapTupleIsValid(contup))
			elog(ERROR, "cache lookup failed for constraint %u", trig->tgconstraint);
		contype = ((Form_pg_constraint) GETSTRUCT(contup))->contype;
		ReleaseSysCache(contup);
		if (contype == CONSTRAINT_EXCLUSION)
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("deferrable exclusion constraint \"%s\" of replicated table \"%s\" is not supported",
						   get_constraint_name(trig->tgconstraint),
						   RelationGetRelationName(rel)),
					errdetail("Replicas apply changes as the table's owner, and a deferred check would run its operators outside of that, at commit."),
					errhint("Make the constraint NOT DEFERRABLE."));
	}
}

/*
 * Fail if relid, a replicated table, has a BEFORE ROW trigger that fires
 * after its write fence (or no fence): add_table() calls this once it
 * installed the fence.
 */
void
replkafka_check_fence(Oid relid)
{
	Relation	rel;

	CommandCounterIncrement();
	rel = table_open(relid, AccessShareLock);
	table_check_fence(rel);
	table_close(rel, AccessShareLock);
}

/*
 * Act as the owner of rel while writing rows into it from the log (the
 * apply workers) or from a peer (a bootstrap), as PostgreSQL's own logical
 * replication does: the table's triggers, defaults, constraints, index
 * expressions and domain checks run with the owner's privileges, never the
 * worker's.  Unless the owner is a superuser, in a security-restricted
 * operation (no SET ROLE, no temporary objects, no deferred triggers), and
 * in any case at a new GUC nesting level, so that a setting the owner's
 * code changes (search_path, session_replication_role) is undone after.
 * An error restores all of it with the transaction's abort.
 */
void
replkafka_table_become_owner(Relation rel, ReplkafkaOwnerContext *ctx)
{
	Oid			owner = rel->rd_rel->relowner;

	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec_context);
	if (superuser_arg(owner))
		SetUserIdAndSecContext(owner, ctx->save_sec_context);
	else
		SetUserIdAndSecContext(owner,
							   ctx->save_sec_context | SECURITY_RESTRICTED_OPERATION);
	ctx->save_nestlevel = NewGUCNestLevel();
}

/*
 * Back to the process's own identity.
 */
void
replkafka_table_restore_user(const ReplkafkaOwnerContext *ctx)
{
	AtEOXact_GUC(false, ctx->save_nestlevel);
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec_context);
}

/*
 * Set up writer to write rows of rel, which the caller opened with
 * RowExclusiveLock, in the current command.
 */
void
replkafka_table_writer_open(ReplkafkaTableWriter *writer, Relation rel)
{
	RangeTblEntry *rte;

	writer->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(writer->estate, list_make1(rte));
	writer->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(writer->rri, rel, 1, NULL, 0);
	/* where AFTER triggers find it, rather than open the table again */
	writer->estate->es_opened_result_relations =
		lappend(writer->estate->es_opened_result_relations, writer->rri);
	writer->estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(writer->rri, false);
	EvalPlanQualInit(&writer->epq, writer->estate, NULL, NIL, -1);
}

/*
 * Finish writer: its indexes, the tables its AFTER triggers opened, its
 * slots.  The table stays open.
 */
void
replkafka_table_writer_close(ReplkafkaTableWriter *writer)
{
	EvalPlanQualEnd(&writer->epq);
	ExecCloseResultRelations(writer->estate);
	ExecResetTupleTable(writer->estate->es_tupleTable, false);
	FreeExecutorState(writer->estate);
	writer->estate = NULL;
}
