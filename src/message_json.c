/*-------------------------------------------------------------------------
 *
 * message_json.c
 *		replkafka.decode(): one Kafka record of the wire format as jsonb.
 *
 * The record is checked with message.c's decoder, then turned into a
 * JsonbValue tree with pushJsonbValue() and flattened into a jsonb datum
 * once, at the end.  Strings and names are not copied on the way: the
 * tree points into the record, and the jsonb conversion copies them.
 * Everything but the result is allocated in a memory context of the call,
 * deleted before returning.
 *
 * Values travel in their type's text representation.  The type name in
 * the relation record decides how a value appears in JSON: numbers for
 * the numeric types (when the text is a JSON number), true and false for
 * boolean, the embedded document for json and jsonb, strings for
 * everything else.  doc/protocol.md describes the result.  A JSON number,
 * a value or one inside an embedded document, becomes a numeric through
 * numeric's input function, as in a cast to jsonb: PostgreSQL decides what
 * a numeric can hold, and a number beyond that fails with its own error,
 * in the context of the column.
 *
 * Any malformed input raises "invalid replkafka record" with a detail that
 * says what is wrong; nothing in the record is trusted.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/message_json.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"

#include "access/xlogdefs.h"
#include "catalog/pg_type_d.h"
#include "common/int.h"
#include "common/jsonapi.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "message.h"

/* Relation numbers are 16 bits: a two-level table of 256 x 256 slots. */
#define DECODE_REL_FANOUT			256

/* How a column's values appear in JSON, decided by its type name. */
typedef enum DecodeTypeClass
{
	DECODE_TYPE_STRING,			/* a JSON string */
	DECODE_TYPE_NUMBER,			/* a JSON number if the text is one */
	DECODE_TYPE_BOOLEAN,		/* true or false from "t" or "f" */
	DECODE_TYPE_JSON,			/* the embedded JSON value */
} DecodeTypeClass;

/* A column of a relation defined in the body. */
typedef struct DecodeColumn
{
	const char *name;			/* points into the record */
	int			name_len;
	DecodeTypeClass tclass;
} DecodeColumn;

/* A relation defined in the body, by relation number. */
typedef struct DecodeRelation
{
	char	   *qualname;		/* quoted "schema.table" */
	int			natts;
	DecodeColumn *columns;
} DecodeRelation;

/* What a tuple of a change may contain, by its role in the change. */
typedef enum DecodeTupleRole
{
	DECODE_TUPLE_NEW,			/* new row: values, nulls, unchanged TOAST */
	DECODE_TUPLE_KEY,			/* old key: values and nulls, others absent */
	DECODE_TUPLE_OLD,			/* whole old row: values and nulls */
} DecodeTupleRole;

/* State of decoding one TXN body. */
typedef struct DecodeState
{
	JsonbParseState *pstate;
	DecodeRelation **relations[DECODE_REL_FANOUT];
	int			recno;			/* body record being decoded, from 1 */
	size_t		offset;			/* its offset in the body */
	FmgrInfo	numeric_input;	/* numeric's input function */
	Oid			numeric_ioparam;
	DecodeRelation *rel;		/* the value being converted: its relation */
	DecodeColumn *col;			/* and column */
} DecodeState;

PG_FUNCTION_INFO_V1(replkafka_decode);
PG_FUNCTION_INFO_V1(replkafka_decode_chunks);

static void chunks_error(const char *detail) pg_attribute_noreturn();
static void report_malformed(const char *decoder_message)
			pg_attribute_noreturn();
static void check_version(const char *data, size_t len);
static void decode_header(JsonbParseState **pstate, const RkmHeader *hdr);
static void decode_body(DecodeState *st, const char *body, size_t len);
static void body_error_callback(void *arg);
static void define_relation(DecodeState *st, const RkmRecord *rec);
static DecodeRelation *lookup_relation(DecodeState *st, uint16 relno);
static void decode_change(DecodeState *st, const RkmRecord *rec);
static void decode_tuple(DecodeState *st, DecodeRelation *rel,
						 const char *key, DecodeTupleRole role, uint16 natts,
						 const RkmValue *values);
static void push_value(DecodeState *st, DecodeRelation *rel,
					   DecodeColumn *col, const RkmValue *value);
static void push_embedded_json(DecodeState *st, const char *data, int len);
static Numeric json_number_to_numeric(DecodeState *st, const char *s,
									  int len);
static void value_error_callback(void *arg);
static void embed_object_start(void *state);
static void embed_object_end(void *state);
static void embed_array_start(void *state);
static void embed_array_end(void *state);
static void embed_object_field_start(void *state, char *fname, bool isnull);
static void embed_scalar(void *state, char *token, JsonTokenType tokentype);
static DecodeTypeClass classify_type(const char *type, int len);
static bool name_equals(const char *s, int len, const char *name);
static int	column_name_cmp(const void *a, const void *b);
static bool text_is_valid(const char *s, size_t len);
static Numeric uint64_to_numeric(uint64 v);
static void push_key(JsonbParseState **pstate, const char *key, int len);
static void push_string(JsonbParseState **pstate, JsonbIteratorToken tok,
						const char *s, size_t len);
static void push_numeric(JsonbParseState **pstate, JsonbIteratorToken tok,
						 Numeric num);
static void push_bool(JsonbParseState **pstate, JsonbIteratorToken tok,
					  bool b);
static void push_null(JsonbParseState **pstate, JsonbIteratorToken tok);
static void push_in_container(JsonbParseState **pstate, JsonbValue *v);


/* ----------------------------------------------------------------
 * The SQL function
 * ----------------------------------------------------------------
 */

/*
 * replkafka.decode(record bytea) returns jsonb
 *
 * Decodes one Kafka record.  A TXN record that holds a whole transaction
 * (chunk 0, last chunk) comes with its changes; one chunk of a longer
 * transaction with "changes": null and the size of its body, since its
 * body records may be cut anywhere.
 */
Datum
replkafka_decode(PG_FUNCTION_ARGS)
{
	bytea	   *record = PG_GETARG_BYTEA_PP(0);
	const char *data = VARDATA_ANY(record);
	size_t		len = VARSIZE_ANY_EXHDR(record);
	MemoryContext callcxt;
	MemoryContext oldcxt;
	RkmHeader	hdr;
	const char *error;
	JsonbParseState *pstate = NULL;
	JsonbValue *root;
	Jsonb	   *result;

	check_version(data, len);
	if (!replkafka_message_read_header(data, len, &hdr, &error))
		report_malformed(error);

	callcxt = AllocSetContextCreate(CurrentMemoryContext,
									"replkafka decode",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(callcxt);

	pushJsonbValue(&pstate, WJB_BEGIN_OBJECT, NULL);
	decode_header(&pstate, &hdr);
	if (hdr.type == RKM_TXN)
	{
		push_key(&pstate, "changes", -1);
		if (hdr.chunk == 0 && hdr.last)
		{
			DecodeState *st = palloc0(sizeof(DecodeState));

			st->pstate = pstate;
			decode_body(st, data + RKM_HEADER_SIZE + strlen(hdr.origin),
						hdr.body_len);
			pstate = st->pstate;
		}
		else
		{
			push_null(&pstate, WJB_VALUE);
			push_key(&pstate, "body_bytes", -1);
			push_numeric(&pstate, WJB_VALUE, uint64_to_numeric(hdr.body_len));
		}
	}
	root = pushJsonbValue(&pstate, WJB_END_OBJECT, NULL);

	/* The result goes to the caller's context, the rest goes away. */
	MemoryContextSwitchTo(oldcxt);
	result = JsonbValueToJsonb(root);
	MemoryContextDelete(callcxt);

	PG_FREE_IF_COPY(record, 0);
	PG_RETURN_JSONB_P(result);
}

/*
 * replkafka.decode_chunks(records bytea[]) returns jsonb
 *
 * Decodes a whole transaction from its chunks, given in order: chunk 0
 * through the last chunk, all of one transaction.  The header keys are the
 * last chunk's, with "chunks", the number of chunks.
 */
Datum
replkafka_decode_chunks(PG_FUNCTION_ARGS)
{
	ArrayType  *records = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	MemoryContext callcxt;
	MemoryContext oldcxt;
	StringInfoData body;
	RkmHeader	first;
	RkmHeader	hdr;
	const char *error;
	JsonbParseState *pstate = NULL;
	JsonbValue *root;
	Jsonb	   *result;
	DecodeState *st;

	if (ARR_NDIM(records) > 1)
		ereport(ERROR,
				errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				errmsg("array of records must be one-dimensional"));
	deconstruct_array(records, BYTEAOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("array of records is empty"));

	callcxt = AllocSetContextCreate(CurrentMemoryContext,
									"replkafka decode",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(callcxt);
	initStringInfo(&body);

	for (int i = 0; i < n; i++)
	{
		bytea	   *record;
		const char *data;
		size_t		len;

		if (nulls[i])
			ereport(ERROR,
					errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					errmsg("record %d of the array is null", i + 1));
		record = DatumGetByteaPP(elems[i]);
		data = VARDATA_ANY(record);
		len = VARSIZE_ANY_EXHDR(record);
		check_version(data, len);
		if (!replkafka_message_read_header(data, len, &hdr, &error))
			report_malformed(error);
		if (i == 0)
			first = hdr;
		if (hdr.type != RKM_TXN)
			chunks_error(psprintf("Record %d is a %s record, not a TXN record.",
								  i + 1, replkafka_message_type_name(hdr.type)));
		if (hdr.partition != first.partition || hdr.scn != first.scn ||
			hdr.xid != first.xid || hdr.commit_lsn != first.commit_lsn ||
			strcmp(hdr.origin, first.origin) != 0)
			chunks_error(psprintf("Record %d belongs to another transaction than record 1.",
								  i + 1));
		if (hdr.chunk != (uint32) i)
			chunks_error(psprintf("Record %d is chunk %u; chunk %d was expected.",
								  i + 1, hdr.chunk, i));
		if (hdr.last && i < n - 1)
			chunks_error(psprintf("Record %d is the transaction's last chunk, but more records follow.",
								  i + 1));
		if (!hdr.last && i == n - 1)
			chunks_error(psprintf("Record %d is not the transaction's last chunk.",
								  i + 1));
		appendBinaryStringInfo(&body, data + RKM_HEADER_SIZE + strlen(hdr.origin),
							   hdr.body_len);
	}

	pushJsonbValue(&pstate, WJB_BEGIN_OBJECT, NULL);
	decode_header(&pstate, &hdr);
	push_key(&pstate, "chunks", -1);
	push_numeric(&pstate, WJB_VALUE, uint64_to_numeric((uint64) n));
	push_key(&pstate, "changes", -1);
	st = palloc0(sizeof(DecodeState));
	st->pstate = pstate;
	decode_body(st, body.data, body.len);
	pstate = st->pstate;
	root = pushJsonbValue(&pstate, WJB_END_OBJECT, NULL);

	MemoryContextSwitchTo(oldcxt);
	result = JsonbValueToJsonb(root);
	MemoryContextDelete(callcxt);
	PG_RETURN_JSONB_P(result);
}

/*
 * Raise the error for records that are not one whole transaction.
 */
static void
chunks_error(const char *detail)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("records do not form one whole transaction"),
			errdetail_internal("%s", detail));
}

/*
 * Raise the error for a malformed record, with a message of message.c's
 * decoder as its detail (turned into a sentence).
 */
static void
report_malformed(const char *decoder_message)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			errmsg("invalid replkafka record"),
			errdetail("%c%s.", pg_toupper((unsigned char) decoder_message[0]),
					  decoder_message + 1));
}

/*
 * Reject a record of a format version this server does not know.
 *
 * The magic bytes and the version byte are the only part of the header
 * that every version keeps; the rest, even the header's size, may differ.
 * So the version is checked before anything else is read.
 */
static void
check_version(const char *data, size_t len)
{
	if (len > RKM_OFF_VERSION &&
		data[RKM_OFF_MAGIC] == RKM_MAGIC_0 &&
		data[RKM_OFF_MAGIC + 1] == RKM_MAGIC_1 &&
		(uint8) data[RKM_OFF_VERSION] != RKM_VERSION)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("unsupported replkafka record format version %u",
					   (unsigned int) (uint8) data[RKM_OFF_VERSION]),
				errdetail("This server supports format version %d only.",
						  RKM_VERSION));
}

/*
 * Push the keys that describe the header.
 */
static void
decode_header(JsonbParseState **pstate, const RkmHeader *hdr)
{
	size_t		origin_len = strlen(hdr->origin);
	TimestampTz commit_time;
	int			utc = 0;
	char	   *buf = palloc(MAXDATELEN + 1);
	char	   *lsn;

	/* microseconds since 1970 to PostgreSQL's microseconds since 2000 */
	if (pg_sub_s64_overflow(hdr->commit_time,
							RKM_UNIX_EPOCH_OFFSET,
							&commit_time) ||
		!IS_VALID_TIMESTAMP(commit_time))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				errmsg("invalid replkafka record"),
				errdetail("Commit time " INT64_FORMAT " is out of range.",
						  hdr->commit_time));

	push_key(pstate, "type", -1);
	push_string(pstate, WJB_VALUE, replkafka_message_type_name(hdr->type),
				strlen(replkafka_message_type_name(hdr->type)));
	push_key(pstate, "version", -1);
	push_numeric(pstate, WJB_VALUE, uint64_to_numeric(hdr->version));
	push_key(pstate, "partition", -1);
	push_numeric(pstate, WJB_VALUE, uint64_to_numeric(hdr->partition));
	push_key(pstate, "generation", -1);
	push_numeric(pstate, WJB_VALUE,
				 uint64_to_numeric(RKM_SCN_GENERATION(hdr->scn)));
	push_key(pstate, "sequence", -1);
	push_numeric(pstate, WJB_VALUE,
				 uint64_to_numeric(RKM_SCN_SEQUENCE(hdr->scn)));
	push_key(pstate, "scn", -1);
	push_numeric(pstate, WJB_VALUE, uint64_to_numeric(hdr->scn));
	push_key(pstate, "origin", -1);
	push_string(pstate, WJB_VALUE, hdr->origin, origin_len);

	push_key(pstate, "commit_lsn", -1);
	lsn = psprintf("%X/%X", LSN_FORMAT_ARGS((XLogRecPtr) hdr->commit_lsn));
	push_string(pstate, WJB_VALUE, lsn, strlen(lsn));

	/* ISO 8601 in UTC whatever the session's settings: stays immutable */
	push_key(pstate, "commit_time", -1);
	JsonEncodeDateTime(buf, TimestampTzGetDatum(commit_time), TIMESTAMPTZOID,
					   &utc);
	push_string(pstate, WJB_VALUE, buf, strlen(buf));

	push_key(pstate, "xid", -1);
	push_numeric(pstate, WJB_VALUE, uint64_to_numeric(hdr->xid));
	push_key(pstate, "chunk", -1);
	push_numeric(pstate, WJB_VALUE, uint64_to_numeric(hdr->chunk));
	push_key(pstate, "last", -1);
	push_bool(pstate, WJB_VALUE, hdr->last);
}


/* ----------------------------------------------------------------
 * Body records
 * ----------------------------------------------------------------
 */

/*
 * Push the changes of a whole transaction's body as an array.
 */
static void
decode_body(DecodeState *st, const char *body, size_t len)
{
	RkmReader	reader;
	RkmRecord	rec;
	RkmReadResult res;
	ErrorContextCallback errcallback;
	Oid			typinput;

	errcallback.callback = body_error_callback;
	errcallback.arg = st;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	getTypeInputInfo(NUMERICOID, &typinput, &st->numeric_ioparam);
	fmgr_info(typinput, &st->numeric_input);

	pushJsonbValue(&st->pstate, WJB_BEGIN_ARRAY, NULL);
	replkafka_message_reader_init(&reader, body, len);
	for (;;)
	{
		st->recno++;
		st->offset = reader.pos;
		res = replkafka_message_next_record(&reader, &rec);
		if (res == RKM_READ_END)
			break;
		if (res == RKM_READ_INCOMPLETE)
			report_malformed("body ends inside a body record");
		if (res == RKM_READ_ERROR)
			report_malformed(reader.error);

		if (rec.kind == RKM_REC_RELATION)
			define_relation(st, &rec);
		else
			decode_change(st, &rec);
	}
	pushJsonbValue(&st->pstate, WJB_END_ARRAY, NULL);

	/* the reader's arrays go away with the call's memory context */
	error_context_stack = errcallback.previous;
}

/*
 * Error context: which body record was being decoded.
 */
static void
body_error_callback(void *arg)
{
	DecodeState *st = (DecodeState *) arg;

	errcontext("body record %d at body offset %zu", st->recno, st->offset);
}

/*
 * Remember the definition of a relation number for the changes that
 * follow.  A later definition of the same number replaces it.
 */
static void
define_relation(DecodeState *st, const RkmRecord *rec)
{
	DecodeRelation *rel;
	DecodeRelation **leaf;
	DecodeColumn **sorted;
	char	   *schema;
	char	   *table;

	if (!text_is_valid(rec->schema, rec->schema_len) ||
		!text_is_valid(rec->table, rec->table_len))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				errmsg("invalid replkafka record"),
				errdetail("The name of relation number %u is not valid in encoding \"%s\".",
						  (unsigned int) rec->relation,
						  GetDatabaseEncodingName()));

	schema = pnstrdup(rec->schema, rec->schema_len);
	table = pnstrdup(rec->table, rec->table_len);
	rel = palloc(sizeof(DecodeRelation));
	rel->qualname = quote_qualified_identifier(schema, table);
	rel->natts = rec->natts;
	rel->columns = palloc(sizeof(DecodeColumn) * Max(rec->natts, 1));
	sorted = palloc(sizeof(DecodeColumn *) * Max(rec->natts, 1));

	for (int i = 0; i < rec->natts; i++)
	{
		const RkmColumn *src = &rec->columns[i];
		DecodeColumn *col = &rel->columns[i];

		if (!text_is_valid(src->name, src->name_len) ||
			!text_is_valid(src->type, src->type_len))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					errmsg("invalid replkafka record"),
					errdetail("The name or type of column %d of relation %s is not valid in encoding \"%s\".",
							  i + 1, rel->qualname, GetDatabaseEncodingName()));
		col->name = src->name;
		col->name_len = src->name_len;
		col->tclass = classify_type(src->type, src->type_len);
		sorted[i] = col;
	}

	/* Column names are JSON keys: they must be unique. */
	qsort(sorted, rec->natts, sizeof(DecodeColumn *), column_name_cmp);
	for (int i = 1; i < rec->natts; i++)
	{
		if (column_name_cmp(&sorted[i - 1], &sorted[i]) == 0)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					errmsg("invalid replkafka record"),
					errdetail("Relation %s has two columns named \"%.*s\".",
							  rel->qualname, sorted[i]->name_len,
							  sorted[i]->name));
	}
	pfree(sorted);

	leaf = st->relations[rec->relation / DECODE_REL_FANOUT];
	if (leaf == NULL)
	{
		leaf = palloc0(sizeof(DecodeRelation *) * DECODE_REL_FANOUT);
		st->relations[rec->relation / DECODE_REL_FANOUT] = leaf;
	}
	leaf[rec->relation % DECODE_REL_FANOUT] = rel;
}

/*
 * The relation a change refers to; it must be defined earlier in the body.
 */
static DecodeRelation *
lookup_relation(DecodeState *st, uint16 relno)
{
	DecodeRelation **leaf = st->relations[relno / DECODE_REL_FANOUT];

	if (leaf == NULL || leaf[relno % DECODE_REL_FANOUT] == NULL)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				errmsg("invalid replkafka record"),
				errdetail("A change refers to relation number %u, which is not defined before it.",
						  (unsigned int) relno));
	return leaf[relno % DECODE_REL_FANOUT];
}

/*
 * Push one change as an element of the changes array.
 */
static void
decode_change(DecodeState *st, const RkmRecord *rec)
{
	DecodeRelation *rel = lookup_relation(st, rec->relation);
	const char *op;

	switch (rec->kind)
	{
		case RKM_REC_INSERT:
			op = "insert";
			break;
		case RKM_REC_UPDATE:
			op = "update";
			break;
		case RKM_REC_DELETE:
			op = "delete";
			break;
		default:
			elog(ERROR, "unexpected body record kind %d", rec->kind);
			op = NULL;			/* keep compiler quiet */
			break;
	}

	pushJsonbValue(&st->pstate, WJB_BEGIN_OBJECT, NULL);
	push_key(&st->pstate, "op", -1);
	push_string(&st->pstate, WJB_VALUE, op, strlen(op));
	push_key(&st->pstate, "table", -1);
	push_string(&st->pstate, WJB_VALUE, rel->qualname, strlen(rel->qualname));

	if (rec->kind != RKM_REC_INSERT)
	{
		if (rec->old_kind == RKM_OLD_KEY)
			decode_tuple(st, rel, "key", DECODE_TUPLE_KEY, rec->old_natts,
						 rec->old_values);
		else if (rec->old_kind == RKM_OLD_FULL)
			decode_tuple(st, rel, "old", DECODE_TUPLE_OLD, rec->old_natts,
						 rec->old_values);
	}
	if (rec->kind != RKM_REC_DELETE)
		decode_tuple(st, rel, "new", DECODE_TUPLE_NEW, rec->new_natts,
					 rec->new_values);

	pushJsonbValue(&st->pstate, WJB_END_OBJECT, NULL);
}

/*
 * Push a tuple as key: an object of column name and value.  Unchanged
 * TOASTed values of a new tuple are left out of it and listed in a
 * separate "unchanged_toast" array of the change; absent values of a key
 * tuple are left out.  Any other use of those kinds is malformed.
 */
static void
decode_tuple(DecodeState *st, DecodeRelation *rel, const char *key,
			 DecodeTupleRole role, uint16 natts, const RkmValue *values)
{
	int		   *unchanged;
	int			nunchanged = 0;

	if (natts != rel->natts)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				errmsg("invalid replkafka record"),
				errdetail("A tuple of relation %s has a number of values (%u) other than the number of its columns (%d).",
						  rel->qualname, (unsigned int) natts, rel->natts));

	unchanged = palloc(sizeof(int) * Max(natts, 1));
	push_key(&st->pstate, key, -1);
	pushJsonbValue(&st->pstate, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < natts; i++)
	{
		DecodeColumn *col = &rel->columns[i];
		const RkmValue *value = &values[i];

		if (value->kind == RKM_VAL_UNCHANGED)
		{
			if (role != DECODE_TUPLE_NEW)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("invalid replkafka record"),
						errdetail("Column \"%.*s\" of relation %s is marked as an unchanged TOASTed value in an old tuple.",
								  col->name_len, col->name, rel->qualname));
			unchanged[nunchanged++] = i;
			continue;
		}
		if (value->kind == RKM_VAL_ABSENT)
		{
			if (role != DECODE_TUPLE_KEY)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("invalid replkafka record"),
						errdetail("Column \"%.*s\" of relation %s is marked as absent outside a key tuple.",
								  col->name_len, col->name, rel->qualname));
			continue;
		}
		push_key(&st->pstate, col->name, col->name_len);
		push_value(st, rel, col, value);
	}
	pushJsonbValue(&st->pstate, WJB_END_OBJECT, NULL);

	if (nunchanged > 0)
	{
		push_key(&st->pstate, "unchanged_toast", -1);
		pushJsonbValue(&st->pstate, WJB_BEGIN_ARRAY, NULL);
		for (int i = 0; i < nunchanged; i++)
		{
			DecodeColumn *col = &rel->columns[unchanged[i]];

			push_string(&st->pstate, WJB_ELEM, col->name, col->name_len);
		}
		pushJsonbValue(&st->pstate, WJB_END_ARRAY, NULL);
	}
	pfree(unchanged);
}


/* ----------------------------------------------------------------
 * Values
 * ----------------------------------------------------------------
 */

/*
 * Push the value of a column, NULL or text, as the value of the key just
 * pushed, converted according to the column's type.
 */
static void
push_value(DecodeState *st, DecodeRelation *rel, DecodeColumn *col,
		   const RkmValue *value)
{
	if (value->kind == RKM_VAL_NULL)
	{
		push_null(&st->pstate, WJB_VALUE);
		return;
	}
	Assert(value->kind == RKM_VAL_TEXT);

	if (!text_is_valid(value->data, value->len))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				errmsg("invalid replkafka record"),
				errdetail("The value of column \"%.*s\" of relation %s is not valid in encoding \"%s\".",
						  col->name_len, col->name, rel->qualname,
						  GetDatabaseEncodingName()));

	st->rel = rel;
	st->col = col;
	switch (col->tclass)
	{
		case DECODE_TYPE_NUMBER:
			if (IsValidJsonNumber(value->data, (int) value->len))
			{
				push_numeric(&st->pstate, WJB_VALUE,
							 json_number_to_numeric(st, value->data,
													(int) value->len));
				return;
			}
			break;
		case DECODE_TYPE_BOOLEAN:
			if (value->len == 1 && (value->data[0] == 't' ||
									value->data[0] == 'f'))
			{
				push_bool(&st->pstate, WJB_VALUE, value->data[0] == 't');
				return;
			}
			break;
		case DECODE_TYPE_JSON:
			push_embedded_json(st, value->data, (int) value->len);
			return;
		case DECODE_TYPE_STRING:
			break;
	}
	push_string(&st->pstate, WJB_VALUE, value->data, value->len);
}

/*
 * Push the JSON document of the json or jsonb column being converted as a
 * value, parsed straight into the parse state.  Its text has been checked
 * to be valid in the database encoding.
 */
static void
push_embedded_json(DecodeState *st, const char *data, int len)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonParseErrorType result;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = st;
	sem.object_start = embed_object_start;
	sem.object_end = embed_object_end;
	sem.array_start = embed_array_start;
	sem.array_end = embed_array_end;
	sem.object_field_start = embed_object_field_start;
	sem.scalar = embed_scalar;

	/* the lexer reads its input only, and only up to len bytes */
	lex = makeJsonLexContextCstringLen(unconstify(char *, data), len,
									   GetDatabaseEncoding(), true);
	result = pg_parse_json(lex, &sem);
	if (result != JSON_SUCCESS)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				errmsg("invalid replkafka record"),
				errdetail("The value of column \"%.*s\" of relation %s is not valid JSON: %s",
						  st->col->name_len, st->col->name, st->rel->qualname,
						  json_errdetail(result, lex)));
}

/*
 * The numeric of the JSON number of len bytes at s: the value of the
 * column being converted, or a number in its embedded JSON.  numeric's
 * input function decides what a numeric can hold; a number beyond that
 * fails with its error, in the context of the column.
 */
static Numeric
json_number_to_numeric(DecodeState *st, const char *s, int len)
{
	ErrorContextCallback errcallback;
	char	   *str = pnstrdup(s, len);
	Datum		num;

	errcallback.callback = value_error_callback;
	errcallback.arg = st;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	num = InputFunctionCall(&st->numeric_input, str, st->numeric_ioparam, -1);

	error_context_stack = errcallback.previous;
	pfree(str);
	return DatumGetNumeric(num);
}

/*
 * Error context: the column whose value was being converted.
 */
static void
value_error_callback(void *arg)
{
	DecodeState *st = (DecodeState *) arg;

	errcontext("value of column \"%.*s\" of relation %s",
			   st->col->name_len, st->col->name, st->rel->qualname);
}

/*
 * Semantic actions of the embedded JSON parser: they push what they see.
 * The state is the DecodeState of the body.
 *
 * The start of an object.
 */
static void
embed_object_start(void *state)
{
	pushJsonbValue(&((DecodeState *) state)->pstate, WJB_BEGIN_OBJECT, NULL);
}

/*
 * The end of an object.
 */
static void
embed_object_end(void *state)
{
	pushJsonbValue(&((DecodeState *) state)->pstate, WJB_END_OBJECT, NULL);
}

/*
 * The start of an array.
 */
static void
embed_array_start(void *state)
{
	pushJsonbValue(&((DecodeState *) state)->pstate, WJB_BEGIN_ARRAY, NULL);
}

/*
 * The end of an array.
 */
static void
embed_array_end(void *state)
{
	pushJsonbValue(&((DecodeState *) state)->pstate, WJB_END_ARRAY, NULL);
}

/*
 * A key of an object; its value follows.
 */
static void
embed_object_field_start(void *state, char *fname, bool isnull)
{
	push_key(&((DecodeState *) state)->pstate, fname, -1);
}

/*
 * A scalar of embedded JSON, converted as the json-to-jsonb cast does.
 */
static void
embed_scalar(void *state, char *token, JsonTokenType tokentype)
{
	DecodeState *st = (DecodeState *) state;
	JsonbValue	v;
	size_t		len;

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			len = strlen(token);
			if (len > JENTRY_OFFLENMASK)
				ereport(ERROR,
						errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("string too long to represent as jsonb string"),
						errdetail("Due to an implementation restriction, jsonb strings cannot exceed %d bytes.",
								  JENTRY_OFFLENMASK));
			v.type = jbvString;
			v.val.string.val = token;
			v.val.string.len = (int) len;
			break;
		case JSON_TOKEN_NUMBER:
			v.type = jbvNumeric;
			v.val.numeric = json_number_to_numeric(st, token, strlen(token));
			break;
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = (tokentype == JSON_TOKEN_TRUE);
			break;
		case JSON_TOKEN_NULL:
			v.type = jbvNull;
			break;
		default:
			elog(ERROR, "unexpected json token type %d", (int) tokentype);
			break;
	}
	push_in_container(&st->pstate, &v);
}


/* ----------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------
 */

/*
 * How values of a type appear in JSON.  type is the type's name as
 * format_type prints it; numeric may carry a type modifier.
 */
static DecodeTypeClass
classify_type(const char *type, int len)
{
	if (name_equals(type, len, "integer") ||
		name_equals(type, len, "bigint") ||
		name_equals(type, len, "smallint") ||
		name_equals(type, len, "numeric") ||
		name_equals(type, len, "real") ||
		name_equals(type, len, "double precision") ||
		(len > 8 && memcmp(type, "numeric(", 8) == 0))
		return DECODE_TYPE_NUMBER;
	if (name_equals(type, len, "boolean"))
		return DECODE_TYPE_BOOLEAN;
	if (name_equals(type, len, "json") || name_equals(type, len, "jsonb"))
		return DECODE_TYPE_JSON;
	return DECODE_TYPE_STRING;
}

/*
 * Whether the len bytes at s are the NUL-terminated name.
 */
static bool
name_equals(const char *s, int len, const char *name)
{
	return strlen(name) == (size_t) len && memcmp(s, name, len) == 0;
}

/*
 * Order of column names, for finding duplicates: by length, then bytes.
 */
static int
column_name_cmp(const void *a, const void *b)
{
	const DecodeColumn *ca = *(DecodeColumn *const *) a;
	const DecodeColumn *cb = *(DecodeColumn *const *) b;

	if (ca->name_len != cb->name_len)
		return ca->name_len < cb->name_len ? -1 : 1;
	return memcmp(ca->name, cb->name, ca->name_len);
}

/*
 * Whether len bytes at s are valid text in the database encoding (which
 * excludes zero bytes), so they can become part of a jsonb value.
 */
static bool
text_is_valid(const char *s, size_t len)
{
	/* values are below 1GB: a record is a bytea */
	Assert(len <= MaxAllocSize);
	return pg_verifymbstr(s, (int) len, true);
}

/*
 * A numeric from an unsigned 64-bit integer.
 */
static Numeric
uint64_to_numeric(uint64 v)
{
	char		buf[32];

	if (v <= (uint64) PG_INT64_MAX)
		return int64_to_numeric((int64) v);
	snprintf(buf, sizeof(buf), UINT64_FORMAT, v);
	return DatumGetNumeric(DirectFunctionCall3(numeric_in,
											   CStringGetDatum(buf),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/*
 * Push an object key; len -1 means key is NUL-terminated.
 */
static void
push_key(JsonbParseState **pstate, const char *key, int len)
{
	push_string(pstate, WJB_KEY, key, len < 0 ? strlen(key) : (size_t) len);
}

/*
 * Push a string as a key, value or element.  The bytes are copied only
 * when the jsonb datum is built.
 */
static void
push_string(JsonbParseState **pstate, JsonbIteratorToken tok, const char *s,
			size_t len)
{
	JsonbValue	v;

	if (len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("string too long to represent as jsonb string"),
				errdetail("Due to an implementation restriction, jsonb strings cannot exceed %d bytes.",
						  JENTRY_OFFLENMASK));
	v.type = jbvString;
	v.val.string.val = unconstify(char *, s);
	v.val.string.len = (int) len;
	pushJsonbValue(pstate, tok, &v);
}

/*
 * Push a number as a value or element.
 */
static void
push_numeric(JsonbParseState **pstate, JsonbIteratorToken tok, Numeric num)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = num;
	pushJsonbValue(pstate, tok, &v);
}

/*
 * Push a boolean as a value or element.
 */
static void
push_bool(JsonbParseState **pstate, JsonbIteratorToken tok, bool b)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = b;
	pushJsonbValue(pstate, tok, &v);
}

/*
 * Push a JSON null as a value or element.
 */
static void
push_null(JsonbParseState **pstate, JsonbIteratorToken tok)
{
	JsonbValue	v;

	v.type = jbvNull;
	pushJsonbValue(pstate, tok, &v);
}

/*
 * Push a scalar as the next element of the open array, or as the value of
 * the key just pushed in the open object.
 */
static void
push_in_container(JsonbParseState **pstate, JsonbValue *v)
{
	Assert(*pstate != NULL);
	if ((*pstate)->contVal.type == jbvArray)
		pushJsonbValue(pstate, WJB_ELEM, v);
	else
		pushJsonbValue(pstate, WJB_VALUE, v);
}
