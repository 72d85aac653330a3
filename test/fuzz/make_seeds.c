/*-------------------------------------------------------------------------
 *
 * make_seeds.c
 *		Writes the seed corpus of fuzz_message: valid records of every kind.
 *
 * Usage: make_seeds DIRECTORY
 *
 * The records are built with src/message.c's writers, so the seeds follow
 * the format as the code writes it: control records, a whole transaction
 * with every kind of change, old tuple and value, the pieces of a chunked
 * transaction, and bare body streams.  The output is the same on every
 * run.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		test/fuzz/make_seeds.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "message.h"

/* A column of a seed relation. */
typedef struct SeedColumn
{
	const char *name;
	const char *type;
	uint8		flags;
} SeedColumn;

static const char *seed_dir;
static int	seed_count = 0;

static void write_seed(const char *data, size_t len);
static void write_record(uint8 type, bool last, uint32 chunk, uint64 scn,
						 const char *origin, const char *body,
						 uint32 body_len);
static void write_control(uint8 type, uint32 partition, uint64 scn,
						  const char *origin);
static void add_relation(StringInfo body, uint16 relno, const char *schema,
						 const char *table, int natts,
						 const SeedColumn *columns);
static RkmValue *seed_values(int natts, const char *const *values);
static void add_insert(StringInfo body, uint16 relno, int natts,
					   const char *const *values);
static void add_update(StringInfo body, uint16 relno, char old_kind,
					   int natts, const char *const *old_values,
					   const char *const *new_values);
static void add_delete(StringInfo body, uint16 relno, char old_kind,
					   int natts, const char *const *old_values);
static void add_text(StringInfo body, const char *text);

/*
 * Write one seed file, named by its number.
 */
static void
write_seed(const char *data, size_t len)
{
	char		path[MAXPGPATH];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/seed_%02d", seed_dir, seed_count++);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		fprintf(stderr, "make_seeds: could not write \"%s\": %s\n", path,
				strerror(errno));
		exit(1);
	}
}

/*
 * Write a whole record with the given header fields and body.
 */
static void
write_record(uint8 type, bool last, uint32 chunk, uint64 scn,
			 const char *origin, const char *body, uint32 body_len)
{
	RkmHeader	hdr;
	StringInfoData buf;

	memset(&hdr, 0, sizeof(hdr));
	hdr.version = RKM_VERSION;
	hdr.type = type;
	hdr.last = last;
	hdr.partition = 3;
	hdr.chunk = chunk;
	hdr.scn = scn;
	hdr.commit_lsn = UINT64CONST(0x16B3748);
	hdr.commit_time = INT64CONST(1767225600123456);
	hdr.xid = 751;
	hdr.body_len = body_len;
	strlcpy(hdr.origin, origin, sizeof(hdr.origin));

	initStringInfo(&buf);
	replkafka_message_write_header(&buf, &hdr);
	appendBinaryStringInfo(&buf, body, (int) body_len);
	write_seed(buf.data, buf.len);
	pfree(buf.data);
}

/*
 * Write a control record as replkafka_message_write_control() writes it.
 */
static void
write_control(uint8 type, uint32 partition, uint64 scn, const char *origin)
{
	StringInfoData buf;

	initStringInfo(&buf);
	replkafka_message_write_control(&buf, type, partition, scn, UINT64CONST(0x16B3748),
									INT64CONST(1767225600123456), origin);
	write_seed(buf.data, buf.len);
	pfree(buf.data);
}

/*
 * Append a relation record.
 */
static void
add_relation(StringInfo body, uint16 relno, const char *schema,
			 const char *table, int natts, const SeedColumn *columns)
{
	RkmColumn  *cols = pg_malloc0(sizeof(RkmColumn) * Max(natts, 1));

	for (int i = 0; i < natts; i++)
	{
		cols[i].name = columns[i].name;
		cols[i].name_len = strlen(columns[i].name);
		cols[i].type = columns[i].type;
		cols[i].type_len = strlen(columns[i].type);
		cols[i].flags = columns[i].flags;
	}
	replkafka_message_write_relation(body, relno, schema, strlen(schema), table,
									 strlen(table), (uint16) natts, cols);
	pg_free(cols);
}

/*
 * The values of a tuple.  A value is text, or "\n" for NULL, "\u" for an
 * unchanged TOASTed value and "\x" for an absent one.  The caller frees
 * the array.
 */
static RkmValue *
seed_values(int natts, const char *const *values)
{
	RkmValue   *vals = pg_malloc0(sizeof(RkmValue) * Max(natts, 1));

	for (int i = 0; i < natts; i++)
	{
		const char *v = values[i];

		if (strcmp(v, "\\n") == 0)
			vals[i].kind = RKM_VAL_NULL;
		else if (strcmp(v, "\\u") == 0)
			vals[i].kind = RKM_VAL_UNCHANGED;
		else if (strcmp(v, "\\x") == 0)
			vals[i].kind = RKM_VAL_ABSENT;
		else
		{
			vals[i].kind = RKM_VAL_TEXT;
			vals[i].data = v;
			vals[i].len = strlen(v);
		}
	}
	return vals;
}

/*
 * Append an insert record.
 */
static void
add_insert(StringInfo body, uint16 relno, int natts,
		   const char *const *values)
{
	RkmValue   *vals = seed_values(natts, values);

	replkafka_message_write_insert(body, relno, (uint16) natts, vals);
	pg_free(vals);
}

/*
 * Append an update record; old_values is not used for RKM_OLD_NONE.
 */
static void
add_update(StringInfo body, uint16 relno, char old_kind, int natts,
		   const char *const *old_values, const char *const *new_values)
{
	RkmValue   *old_vals = NULL;
	RkmValue   *new_vals = seed_values(natts, new_values);

	if (old_kind != RKM_OLD_NONE)
		old_vals = seed_values(natts, old_values);
	replkafka_message_write_update(body, relno, old_kind,
								   old_kind != RKM_OLD_NONE ? (uint16) natts : 0, old_vals,
								   (uint16) natts, new_vals);
	if (old_vals)
		pg_free(old_vals);
	pg_free(new_vals);
}

/*
 * Append a delete record.
 */
static void
add_delete(StringInfo body, uint16 relno, char old_kind, int natts,
		   const char *const *old_values)
{
	RkmValue   *old_vals = seed_values(natts, old_values);

	replkafka_message_write_delete(body, relno, old_kind, (uint16) natts, old_vals);
	pg_free(old_vals);
}

/*
 * Append raw text (for building bodies by hand).
 */
static void
add_text(StringInfo body, const char *text)
{
	appendBinaryStringInfo(body, text, strlen(text));
}

/*
 * Write the seeds into the directory named by the only argument.
 */
int
main(int argc, char **argv)
{
	static const SeedColumn docs[] = {
		{"id", "bigint", RKM_COL_KEY},
		{"title", "text", 0},
		{"body", "text", 0},
		{"doc", "jsonb", 0},
	};
	static const SeedColumn accounts[] = {
		{"id", "integer", RKM_COL_KEY},
		{"owner", "text", 0},
	};
	static const char *const ins[] = {
		"1", "First", "a long text", "{\"a\": [1, 2]}"
	};
	static const char *const upd_new[] = {"1", "First!", "\\u", "\\n"};
	static const char *const key[] = {"1", "\\x", "\\x", "\\x"};
	static const char *const upd_new2[] = {"2", "Second", "\\u", "null"};
	static const char *const full[] = {"2", "Second", "text", "\\n"};
	static const char *const acc[] = {"42", "ann"};
	StringInfoData body;
	int			half;

	if (argc != 2)
	{
		fprintf(stderr, "usage: make_seeds DIRECTORY\n");
		return 2;
	}
	seed_dir = argv[1];

	/* control records */
	write_record(RKM_NEW_GEN, true, 0, RKM_SCN(3, 0), "node_b", "", 0);
	write_record(RKM_END_GEN, true, 0, RKM_SCN(3, 41), "node_a", "", 0);
	write_record(RKM_HEARTBEAT, true, 0, RKM_SCN(3, 41), "node_a", "", 0);

	/* control records as their writer writes them, with a long origin */
	write_control(RKM_NEW_GEN, PG_UINT32_MAX, RKM_SCN(PG_UINT32_MAX, 0),
				  "node-with-the-longest-name-a-record-can-carry.0123456789_abcdef");
	write_control(RKM_HEARTBEAT, 0, RKM_SCN(1, 0), "n");

	/* an empty transaction */
	write_record(RKM_TXN, true, 0, RKM_SCN(2, 6), "node_a", "", 0);

	/* one insert: the worked example of doc/protocol.md */
	initStringInfo(&body);
	add_relation(&body, 1, "public", "accounts", 2, accounts);
	add_insert(&body, 1, 2, acc);
	write_record(RKM_TXN, true, 0, RKM_SCN(2, 7), "node_a", body.data,
				 body.len);
	write_seed(body.data, body.len);

	/* the same transaction cut into two chunks inside the insert */
	half = body.len - 7;
	write_record(RKM_TXN, false, 0, RKM_SCN(2, 7), "node_a", body.data, half);
	write_record(RKM_TXN, true, 1, RKM_SCN(2, 7), "node_a",
				 body.data + half, body.len - half);

	/* every kind of change, old tuple and value */
	resetStringInfo(&body);
	add_relation(&body, 7, "public", "docs", 4, docs);
	add_relation(&body, 65535, "My Schema", "Order", 2, accounts);

	add_insert(&body, 7, 4, ins);
	add_update(&body, 7, RKM_OLD_NONE, 4, NULL, upd_new);
	add_update(&body, 7, RKM_OLD_KEY, 4, key, upd_new2);
	add_update(&body, 7, RKM_OLD_FULL, 4, full, ins);
	add_delete(&body, 7, RKM_OLD_KEY, 4, key);
	add_delete(&body, 65535, RKM_OLD_FULL, 2, acc);

	write_record(RKM_TXN, true, 0, RKM_SCN(2, 8), "node_a", body.data,
				 body.len);
	write_seed(body.data, body.len);

	/* a relation without columns and a tuple without values */
	resetStringInfo(&body);
	add_relation(&body, 0, "s", "t", 0, NULL);
	add_insert(&body, 0, 0, NULL);
	write_record(RKM_TXN, true, 0, RKM_SCN(2, 9), "n", body.data, body.len);

	/* a few bytes that only look like the start of records */
	resetStringInfo(&body);
	add_text(&body, "RK");
	write_seed(body.data, body.len);

	pfree(body.data);
	return 0;
}
