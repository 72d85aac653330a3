/*-------------------------------------------------------------------------
 *
 * decoder.c
 *		The logical decoding output plugin "replkafka": committed changes
 *		of replicated tables, in the wire format of message.h.
 *
 * Every decoded transaction becomes, for each partition it wrote, one TXN
 * record, or several chunks of one when its body exceeds the chunk size
 * (option chunk_size, default replkafka.chunk_size).  The body is built
 * per partition and cut into chunks as it grows, so memory stays bounded
 * by the chunk size whatever the transaction's size (the reorder buffer
 * itself spills large transactions to disk).  A transaction that writes a
 * single partition, which the write fence guarantees for every transaction
 * that went through it, becomes a single record stream.
 *
 * The plugin leaves the SCN at zero: the shipper stamps it, since only the
 * shipper knows the partition's sequence.  Other consumers
 * (pg_recvlogical, pg_logical_slot_get_binary_changes) see unsequenced
 * records that decode all the same.
 *
 * Transactions that carry a replication origin whose name starts with
 * "replkafka" were applied by an apply worker from Kafka; they are skipped
 * so that applied transactions are never shipped again.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/decoder.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/output_plugin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "decoder.h"
#include "message.h"
#include "partition.h"
#include "settings.h"
#include "table.h"

/* How a relation is encoded; cached per relation for the session. */
typedef struct DecoderRelation
{
	Oid			relid;			/* hash key */
	bool		valid;
	uint32		version;		/* counts rebuilds: definitions differ */
	char	   *schema;
	char	   *table;
	int			natts;			/* columns sent */
	AttrNumber *attnums;		/* their attribute numbers */
	RkmColumn  *columns;		/* their definitions, as sent; the types are
								 * format_type_with_typemod's */
	FmgrInfo   *outfuncs;
} DecoderRelation;

/* The body being built for one partition in the current transaction. */
typedef struct PartitionStream
{
	int			partition;
	StringInfoData body;
	uint32		chunk;			/* index of the next chunk */
	List	   *relids;			/* relations defined, by relation number */
	List	   *versions;		/* the DecoderRelation version of each */
} PartitionStream;

/* Plugin state of a decoding session. */
typedef struct DecoderData
{
	MemoryContext context;		/* per-transaction data, reset at commit */
	MemoryContext changecxt;	/* per-change data, reset after each change */
	MemoryContext cachecxt;		/* the relation cache */
	HTAB	   *relations;
	int			chunk_size;
	char		origin[RKM_MAX_ORIGIN + 1];
	List	   *streams;		/* PartitionStreams of the transaction */
	bool		skip;			/* the transaction came from Kafka */
} DecoderData;

extern void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static void decoder_startup(LogicalDecodingContext *ctx,
							OutputPluginOptions *opt, bool is_init);
static void decoder_shutdown(LogicalDecodingContext *ctx);
static void decoder_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void decoder_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						   XLogRecPtr commit_lsn);
static void decoder_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						   Relation relation, ReorderBufferChange *change);
static void decoder_truncate(LogicalDecodingContext *ctx,
							 ReorderBufferTXN *txn, int nrelations,
							 Relation relations[], ReorderBufferChange *change);
static bool decoder_applied_origin(RepOriginId origin_id);
static bool decoder_filter_origin(LogicalDecodingContext *ctx,
								  RepOriginId origin_id);
static void decoder_invalidate(Datum arg, Oid relid);
static void decoder_cache_reset(void *arg);
static DecoderRelation *decoder_relation(DecoderData *data, Relation rel);
static bool decoder_same_types(int natts, const RkmColumn *columns,
							   const DecoderRelation *drel);
static PartitionStream *decoder_stream(DecoderData *data, int partition);
static uint16 decoder_relation_number(DecoderData *data,
									  PartitionStream *stream,
									  DecoderRelation *drel);
static RkmValue *decoder_tuple_values(DecoderRelation *drel, TupleDesc desc,
									  HeapTuple tuple, bool key_only);
static void decoder_flush(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						  PartitionStream *stream, bool last);
static void decoder_emit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						 PartitionStream *stream, const char *body,
						 uint32 len, bool last);

replkafka_txn_end_hook_type replkafka_txn_end_hook = NULL;

/* The relation cache of the current session, for the invalidation callback. */
static HTAB *decoder_relations = NULL;
static bool invalidation_registered = false;

/*
 * Output plugin entry point.
 */
void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	AssertVariableIsOfType(&_PG_output_plugin_init, LogicalOutputPluginInit);

	cb->startup_cb = decoder_startup;
	cb->begin_cb = decoder_begin;
	cb->change_cb = decoder_change;
	cb->truncate_cb = decoder_truncate;
	cb->commit_cb = decoder_commit;
	cb->shutdown_cb = decoder_shutdown;
	cb->filter_by_origin_cb = decoder_filter_origin;
}

/*
 * Startup: parse options and set up the session's memory.
 *
 * Options: chunk_size (bytes), origin (the node name written in records;
 * default replkafka.node_name).
 */
static void
decoder_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
				bool is_init)
{
	DecoderData *data = palloc0(sizeof(DecoderData));
	const char *origin;
	ListCell   *lc;
	bool		chunk_given = false;
	bool		origin_given = false;
	MemoryContextCallback *mcb;

	data->context = AllocSetContextCreate(ctx->context, "replkafka decoder",
										  ALLOCSET_DEFAULT_SIZES);
	data->changecxt = AllocSetContextCreate(ctx->context, "replkafka decoder change",
											ALLOCSET_DEFAULT_SIZES);
	data->cachecxt = AllocSetContextCreate(ctx->context, "replkafka decoder cache",
										   ALLOCSET_DEFAULT_SIZES);
	data->chunk_size = replkafka_chunk_size;
	origin = replkafka_node_name;

	opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	opt->receive_rewrites = false;
	ctx->output_plugin_private = data;

	foreach(lc, ctx->output_plugin_options)
	{
		DefElem    *elem = lfirst(lc);

		Assert(elem->arg == NULL || IsA(elem->arg, String));
		if (strcmp(elem->defname, "chunk_size") == 0)
		{
			int			v;

			if (chunk_given)
				ereport(ERROR,
						errcode(ERRCODE_SYNTAX_ERROR),
						errmsg("conflicting or redundant options"));
			chunk_given = true;
			v = elem->arg ? pg_strtoint32(strVal(elem->arg)) : 0;
			if (v < REPLKAFKA_MIN_CHUNK_SIZE || v > REPLKAFKA_MAX_CHUNK_SIZE)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("chunk_size must be between %d and %d bytes",
							   REPLKAFKA_MIN_CHUNK_SIZE, REPLKAFKA_MAX_CHUNK_SIZE));
			data->chunk_size = v;
		}
		else if (strcmp(elem->defname, "origin") == 0)
		{
			if (origin_given)
				ereport(ERROR,
						errcode(ERRCODE_SYNTAX_ERROR),
						errmsg("conflicting or redundant options"));
			origin_given = true;
			origin = elem->arg ? strVal(elem->arg) : "";
		}
		else
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("option \"%s\" is not recognized by output plugin \"replkafka\"",
						   elem->defname));
	}

	if (origin == NULL || origin[0] == '\0' || strlen(origin) > RKM_MAX_ORIGIN)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("output plugin \"replkafka\" needs a node name of 1 to %d bytes",
					   RKM_MAX_ORIGIN),
				errhint("Set \"replkafka.node_name\", or pass option \"origin\"."));
	strlcpy(data->origin, origin, sizeof(data->origin));

	if (!invalidation_registered)
	{
		CacheRegisterRelcacheCallback(decoder_invalidate, (Datum) 0);
		invalidation_registered = true;
	}

	/* Forget the session's cache with its memory, even after an error. */
	mcb = palloc0(sizeof(MemoryContextCallback));
	mcb->func = decoder_cache_reset;
	MemoryContextRegisterResetCallback(data->cachecxt, mcb);
}

/*
 * Shutdown: release the session's memory.
 */
static void
decoder_shutdown(LogicalDecodingContext *ctx)
{
	DecoderData *data = ctx->output_plugin_private;

	MemoryContextDelete(data->context);
	MemoryContextDelete(data->changecxt);
	MemoryContextDelete(data->cachecxt);
}

/*
 * The relation cache goes away with its memory context.
 */
static void
decoder_cache_reset(void *arg)
{
	decoder_relations = NULL;
}

/*
 * Relcache invalidation callback: forget how relid (or every relation) is
 * encoded.
 */
static void
decoder_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	DecoderRelation *drel;

	if (decoder_relations == NULL)
		return;
	if (OidIsValid(relid))
	{
		drel = hash_search(decoder_relations, &relid, HASH_FIND, NULL);
		if (drel)
			drel->valid = false;
		return;
	}
	hash_seq_init(&status, decoder_relations);
	while ((drel = hash_seq_search(&status)) != NULL)
		drel->valid = false;
}

/*
 * Skip changes marked as not to be replicated at once, before the reorder
 * buffer keeps them: a partition's copy bootstrapped or dropped
 * (partition_rows.c), whose changes can be many.  Other origins need a
 * catalog lookup, which only the begin callback can make.
 */
static bool
decoder_filter_origin(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	return origin_id == DoNotReplicateId;
}

/*
 * Did replkafka's apply workers write a transaction of this origin?  Their
 * origins are named "replkafka_apply_<n>".  This looks the name up in the
 * catalog, so it runs where decoding has a transaction (the begin
 * callback), not in a filter_by_origin callback, which runs outside one.
 */
static bool
decoder_applied_origin(RepOriginId origin_id)
{
	char	   *name;

	if (origin_id == InvalidRepOriginId)
		return false;
	if (origin_id == DoNotReplicateId)
		return true;
	if (!replorigin_by_oid(origin_id, true, &name))
		return false;
	return strncmp(name, REPLKAFKA_EXTENSION_NAME,
				   strlen(REPLKAFKA_EXTENSION_NAME)) == 0;
}

/*
 * How rel is encoded: its name and the columns sent (not dropped, not
 * generated), with their types and output functions.
 */
static DecoderRelation *
decoder_relation(DecoderData *data, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	DecoderRelation *drel;
	bool		found;
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *pkattrs;
	int			old_natts;
	RkmColumn  *old_columns;
	MemoryContext oldcxt;
	int			n = 0;

	if (decoder_relations == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(DecoderRelation);
		ctl.hcxt = data->cachecxt;
		decoder_relations = hash_create("replkafka decoder relations", 64, &ctl,
										HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		data->relations = decoder_relations;
	}

	drel = hash_search(decoder_relations, &relid, HASH_ENTER, &found);
	if (found && drel->valid)
		return drel;

	/*
	 * (Re)build; the old arrays stay in cachecxt until the session ends, and
	 * tell whether the columns sent changed.
	 */
	old_natts = found ? drel->natts : -1;
	old_columns = found ? drel->columns : NULL;
	drel->valid = false;
	drel->natts = -1;			/* until the build completes */
	pkattrs = replkafka_primary_key_attrs(rel);
	oldcxt = MemoryContextSwitchTo(data->cachecxt);
	drel->schema = get_namespace_name(RelationGetNamespace(rel));
	drel->table = pstrdup(RelationGetRelationName(rel));
	drel->attnums = palloc(desc->natts * sizeof(AttrNumber));
	drel->columns = palloc(desc->natts * sizeof(RkmColumn));
	drel->outfuncs = palloc(desc->natts * sizeof(FmgrInfo));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		RkmColumn  *col = &drel->columns[n];
		char	   *name;
		char	   *type;
		Oid			outfunc;
		bool		isvarlena;

		if (att->attisdropped || att->attgenerated)
			continue;
		drel->attnums[n] = att->attnum;
		name = pstrdup(NameStr(att->attname));
		type = format_type_with_typemod(att->atttypid, att->atttypmod);
		col->name = name;
		col->name_len = strlen(name);
		col->type = type;
		col->type_len = strlen(type);
		col->flags = bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber,
								   pkattrs) ? RKM_COL_KEY : 0;
		getTypeOutputInfo(att->atttypid, &outfunc, &isvarlena);
		fmgr_info_cxt(outfunc, &drel->outfuncs[n], data->cachecxt);
		n++;
	}
	drel->natts = n;
	MemoryContextSwitchTo(oldcxt);

	/*
	 * A transaction defines the table again only if the columns sent (their
	 * number or types) changed: names may not, since a replica looks the
	 * table and its columns up by name and cannot have both the old and the
	 * new name (a rename goes in a transaction of its own), and an
	 * invalidation that changed nothing (ANALYZE, GRANT, a cache reset) needs
	 * no new definition.
	 */
	if (!found)
		drel->version = 0;
	else if (!decoder_same_types(old_natts, old_columns, drel))
		drel->version++;
	drel->valid = true;
	return drel;
}

/*
 * Does drel send as many columns as before, of the same types?
 */
static bool
decoder_same_types(int natts, const RkmColumn *columns,
				   const DecoderRelation *drel)
{
	if (natts != drel->natts)
		return false;
	for (int i = 0; i < natts; i++)
		if (strcmp(columns[i].type, drel->columns[i].type) != 0)
			return false;
	return true;
}

/*
 * The stream of the current transaction for partition, created on first
 * use.
 */
static PartitionStream *
decoder_stream(DecoderData *data, int partition)
{
	ListCell   *lc;
	PartitionStream *stream;
	MemoryContext oldcxt;

	foreach(lc, data->streams)
	{
		stream = lfirst(lc);
		if (stream->partition == partition)
			return stream;
	}

	oldcxt = MemoryContextSwitchTo(data->context);
	stream = palloc0(sizeof(PartitionStream));
	stream->partition = partition;
	initStringInfo(&stream->body);
	data->streams = lappend(data->streams, stream);
	MemoryContextSwitchTo(oldcxt);
	return stream;
}

/*
 * The relation number of drel in stream, writing its definition into the
 * stream before its first change, and again, under the same number, before
 * the first change after the definition changed (DDL in the transaction).
 */
static uint16
decoder_relation_number(DecoderData *data, PartitionStream *stream,
						DecoderRelation *drel)
{
	ListCell   *lc;
	ListCell   *lv;
	uint16		number = 0;
	MemoryContext oldcxt;

	forboth(lc, stream->relids, lv, stream->versions)
	{
		if (lfirst_oid(lc) == drel->relid)
		{
			if ((uint32) lfirst_int(lv) == drel->version)
				return number;
			lfirst_int(lv) = (int) drel->version;
			break;
		}
		number++;
	}
	if (lc == NULL)
	{
		if (list_length(stream->relids) >= RKM_MAX_RELATIONS)
			ereport(ERROR,
					errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					errmsg("transaction writes more than %d replicated tables",
						   RKM_MAX_RELATIONS));
		oldcxt = MemoryContextSwitchTo(data->context);
		stream->relids = lappend_oid(stream->relids, drel->relid);
		stream->versions = lappend_int(stream->versions, (int) drel->version);
		MemoryContextSwitchTo(oldcxt);
	}

	replkafka_message_write_relation(&stream->body, number,
									 drel->schema, strlen(drel->schema),
									 drel->table, strlen(drel->table),
									 (uint16) drel->natts, drel->columns);
	return number;
}

/*
 * The values of a tuple of drel, as sent.  With key_only, columns outside
 * the primary key are absent (an old key tuple).  The array and the texts
 * are allocated in the current memory context.
 */
static RkmValue *
decoder_tuple_values(DecoderRelation *drel, TupleDesc desc, HeapTuple tuple,
					 bool key_only)
{
	RkmValue   *values = palloc(drel->natts * sizeof(RkmValue));
	Datum	   *datums = palloc(desc->natts * sizeof(Datum));
	bool	   *nulls = palloc(desc->natts * sizeof(bool));

	heap_deform_tuple(tuple, desc, datums, nulls);
	for (int i = 0; i < drel->natts; i++)
	{
		int			att = drel->attnums[i] - 1;
		RkmValue   *v = &values[i];
		Datum		value = datums[att];

		v->len = 0;
		v->data = NULL;
		if (key_only && !(drel->columns[i].flags & RKM_COL_KEY))
		{
			v->kind = RKM_VAL_ABSENT;
			continue;
		}
		if (nulls[att])
		{
			v->kind = RKM_VAL_NULL;
			continue;
		}

		/*
		 * An unchanged TOASTed value is not in the WAL: say so.  The output
		 * function takes any other form of a value (compressed, or in
		 * memory), like pgoutput's.
		 */
		if (TupleDescAttr(desc, att)->attlen == -1 &&
			VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(value)))
		{
			v->kind = RKM_VAL_UNCHANGED;
			continue;
		}
		v->kind = RKM_VAL_TEXT;
		v->data = OutputFunctionCall(&drel->outfuncs[i], value);
		v->len = strlen(v->data);
	}
	return values;
}

/*
 * Begin of a transaction: nothing is written until a change of a
 * replicated table arrives.
 */
static void
decoder_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderData *data = ctx->output_plugin_private;

	data->streams = NIL;
	data->skip = decoder_applied_origin(txn->origin_id);
}

/*
 * A change: encode it into its partition's stream, and send the chunks
 * that are full.
 */
static void
decoder_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   Relation relation, ReorderBufferChange *change)
{
	DecoderData *data = ctx->output_plugin_private;
	ReplkafkaTableKey *key;
	DecoderRelation *drel;
	PartitionStream *stream;
	TupleDesc	desc = RelationGetDescr(relation);
	HeapTuple	newtuple = NULL;
	HeapTuple	oldtuple = NULL;
	HeapTuple	keytuple;
	MemoryContext oldcxt;
	uint16		relnum;
	char		kind;
	char		old_kind;
	RkmValue   *old_values = NULL;
	RkmValue   *new_values = NULL;
	bool		full = relation->rd_rel->relreplident == REPLICA_IDENTITY_FULL;

	if (data->skip)
		return;
	key = replkafka_table_key(relation);
	if (key == NULL)
		return;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			kind = RKM_REC_INSERT;
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			kind = RKM_REC_UPDATE;
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			kind = RKM_REC_DELETE;
			break;
		default:
			return;
	}
	if (change->data.tp.newtuple)
		newtuple = &change->data.tp.newtuple->tuple;
	if (change->data.tp.oldtuple)
		oldtuple = &change->data.tp.oldtuple->tuple;

	keytuple = (kind == RKM_REC_DELETE) ? oldtuple : newtuple;
	if (keytuple == NULL)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("cannot ship a change of table \"%s\" without its key",
					   RelationGetRelationName(relation)),
				errdetail("The table's replica identity does not log the primary key."));
	for (int i = 0; i < key->nkeys; i++)
	{
		bool		isnull;
		Datum		value = heap_getattr(keytuple, key->attnums[i], desc, &isnull);

		if (!isnull && TupleDescAttr(desc, key->attnums[i] - 1)->attlen == -1 &&
			VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(value)))
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("cannot ship a change of table \"%s\" without its key",
						   RelationGetRelationName(relation)),
					errdetail("A partition key value is stored out of line (TOAST), and the WAL does not hold it."));
	}

	oldcxt = MemoryContextSwitchTo(data->changecxt);
	drel = decoder_relation(data, relation);
	stream = decoder_stream(data, replkafka_partition_of_tuple(key, desc, keytuple));
	relnum = decoder_relation_number(data, stream, drel);

	/* a delete has an old tuple: its key tuple, checked above */
	old_kind = RKM_OLD_NONE;
	if (kind != RKM_REC_INSERT && oldtuple != NULL)
	{
		old_kind = full ? RKM_OLD_FULL : RKM_OLD_KEY;
		old_values = decoder_tuple_values(drel, desc, oldtuple, !full);
	}
	if (kind != RKM_REC_DELETE)
		new_values = decoder_tuple_values(drel, desc, newtuple, false);

	switch (kind)
	{
		case RKM_REC_INSERT:
			replkafka_message_write_insert(&stream->body, relnum, (uint16) drel->natts,
										   new_values);
			break;
		case RKM_REC_UPDATE:
			replkafka_message_write_update(&stream->body, relnum, old_kind,
										   (uint16) drel->natts, old_values,
										   (uint16) drel->natts, new_values);
			break;
		case RKM_REC_DELETE:
			replkafka_message_write_delete(&stream->body, relnum, old_kind,
										   (uint16) drel->natts, old_values);
			break;
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(data->changecxt);

	if (stream->body.len >= data->chunk_size)
		decoder_flush(ctx, txn, stream, false);
}

/*
 * TRUNCATE of a replicated table only happens with the write fence
 * bypassed (session_replication_role = replica); it cannot be shipped.
 */
static void
decoder_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				 int nrelations, Relation relations[],
				 ReorderBufferChange *change)
{
	for (int i = 0; i < nrelations; i++)
	{
		if (replkafka_table_key(relations[i]) != NULL)
			ereport(WARNING,
					errmsg("TRUNCATE of replicated table \"%s\" in transaction %u is not replicated",
						   RelationGetRelationName(relations[i]), txn->xid));
	}
}

/*
 * Send the full chunks of a stream; with last, send the rest too as the
 * transaction's last chunk.
 */
static void
decoder_flush(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  PartitionStream *stream, bool last)
{
	DecoderData *data = ctx->output_plugin_private;
	StringInfo	body = &stream->body;
	int			sent = 0;

	while (body->len - sent > data->chunk_size ||
		   (!last && body->len - sent == data->chunk_size))
	{
		decoder_emit(ctx, txn, stream, body->data + sent, data->chunk_size,
					 false);
		sent += data->chunk_size;
	}
	if (last)
	{
		decoder_emit(ctx, txn, stream, body->data + sent, body->len - sent,
					 true);
		sent = body->len;
	}

	/* keep the unsent tail */
	memmove(body->data, body->data + sent, body->len - sent);
	body->len -= sent;
	body->data[body->len] = '\0';
}

/*
 * Write one record: a chunk of stream's body.
 */
static void
decoder_emit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			 PartitionStream *stream, const char *body, uint32 len, bool last)
{
	DecoderData *data = ctx->output_plugin_private;
	RkmHeader	hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.type = RKM_TXN;
	hdr.last = last;
	hdr.partition = stream->partition;
	hdr.chunk = stream->chunk++;
	hdr.scn = 0;
	hdr.commit_lsn = txn->final_lsn;
	hdr.commit_time = txn->xact_time.commit_time + RKM_UNIX_EPOCH_OFFSET;
	hdr.xid = txn->xid;
	hdr.body_len = len;
	strlcpy(hdr.origin, data->origin, sizeof(hdr.origin));

	OutputPluginPrepareWrite(ctx, true);
	replkafka_message_write_header(ctx->out, &hdr);
	appendBinaryStringInfo(ctx->out, body, len);
	OutputPluginWrite(ctx, true);
}

/*
 * Commit: send the last chunk of every partition's stream, then tell the
 * shipper the transaction is complete.
 */
static void
decoder_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr commit_lsn)
{
	DecoderData *data = ctx->output_plugin_private;
	ListCell   *lc;
	bool		skipped = (data->streams == NIL);

	foreach(lc, data->streams)
		decoder_flush(ctx, txn, lfirst(lc), true);

	data->streams = NIL;
	MemoryContextReset(data->context);

	OutputPluginUpdateProgress(ctx, skipped);
	if (replkafka_txn_end_hook)
		(*replkafka_txn_end_hook) (ctx, txn->end_lsn);
}
