/*-------------------------------------------------------------------------
 *
 * fuzz_message.c
 *		libFuzzer target for the wire format decoder of src/message.c.
 *
 * Every input is decoded twice: as a whole record (replkafka_message_read_header, then
 * the body records when the header is valid) and as a bare stream of body
 * records.  Beyond "no crash, no sanitizer report", it checks what the
 * decoder promises:
 *
 * - a header it accepts is consistent (type, flags, origin, lengths) and
 *	 is exactly what replkafka_message_write_header() writes for the values it returned,
 *	 and a control record what replkafka_message_write_control() writes (but for the
 *	 transaction id, which is zero when written and not checked when read);
 * - the reader's position only moves forward, never past the end, and
 *	 ends exactly at the end when the reader says so;
 * - every pointer it returns lies inside the input, with its length;
 * - every body record it accepts is exactly what the writer of its kind
 *	 (replkafka_message_write_relation, _insert, _update, _delete) writes for the values
 *	 it returned, byte for byte;
 * - an incomplete record really is one, and an error comes with a message.
 *
 * Built with -DFRONTEND against libpgcommon and libpgport by test/fuzz/run.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		test/fuzz/fuzz_message.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "message.h"

/* The input being decoded, for the bounds checks. */
static const char *input_start;
static const char *input_end;

extern int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool condition, const char *what);
static void check_inside(const char *p, size_t len, const char *what);
static void check_header(const char *data, size_t size, const RkmHeader *hdr);
static void check_body(const char *body, size_t len);
static void check_record(const RkmRecord *rec, const char *start,
						 size_t len);
static void check_tuple(uint16 natts, const RkmValue *values);

/*
 * Abort with a message if an invariant does not hold; libFuzzer reports
 * the abort as a crash and saves the input.
 */
static void
check(bool condition, const char *what)
{
	if (!condition)
	{
		fprintf(stderr, "fuzz_message: invariant violated: %s\n", what);
		abort();
	}
}

/*
 * Check that len bytes at p lie inside the input.
 */
static void
check_inside(const char *p, size_t len, const char *what)
{
	check(p != NULL, what);
	check(p >= input_start && p <= input_end, what);
	check(len <= (size_t) (input_end - p), what);
}

/*
 * Check a header replkafka_message_read_header() accepted: its fields are consistent and
 * writing it back gives the bytes it was read from.
 */
static void
check_header(const char *data, size_t size, const RkmHeader *hdr)
{
	size_t		origin_len = strlen(hdr->origin);
	StringInfoData buf;

	check(hdr->version == RKM_VERSION, "header version");
	check(replkafka_message_type_name(hdr->type) != NULL, "header type");
	check(origin_len >= 1 && origin_len <= RKM_MAX_ORIGIN, "origin length");
	check(size == RKM_HEADER_SIZE + origin_len + hdr->body_len,
		  "record length");
	check(hdr->type == RKM_TXN ||
		  (hdr->body_len == 0 && hdr->chunk == 0 && hdr->last),
		  "control record shape");

	initStringInfo(&buf);
	replkafka_message_write_header(&buf, hdr);
	check((size_t) buf.len == RKM_HEADER_SIZE + origin_len,
		  "re-encoded header length");
	check(memcmp(buf.data, data, buf.len) == 0, "re-encoded header bytes");

	if (hdr->type != RKM_TXN)
	{
		resetStringInfo(&buf);
		replkafka_message_write_control(&buf, hdr->type, hdr->partition, hdr->scn,
										hdr->commit_lsn, hdr->commit_time, hdr->origin);
		check((size_t) buf.len == size, "re-encoded control record length");
		check(memcmp(buf.data, data, RKM_OFF_XID) == 0 &&
			  memcmp(buf.data + RKM_OFF_XID + 4, data + RKM_OFF_XID + 4,
					 buf.len - RKM_OFF_XID - 4) == 0,
			  "re-encoded control record bytes");
	}
	pfree(buf.data);
}

/*
 * Iterate over the body records in body[0..len) and check every result.
 */
static void
check_body(const char *body, size_t len)
{
	RkmReader	reader;
	RkmRecord	rec;

	replkafka_message_reader_init(&reader, body, len);
	for (;;)
	{
		size_t		before = reader.pos;
		RkmReadResult res = replkafka_message_next_record(&reader, &rec);

		check(reader.pos <= reader.len, "reader position past the end");
		if (res == RKM_READ_OK)
		{
			check(reader.pos > before, "reader position did not advance");
			check(reader.pos - before >= RKM_REC_HEADER_SIZE,
				  "record shorter than its header");
			check_record(&rec, body + before, reader.pos - before);
			continue;
		}

		check(reader.pos == before, "reader moved on a failure");
		if (res == RKM_READ_END)
			check(before == len, "end before the end");
		else if (res == RKM_READ_INCOMPLETE)
		{
			size_t		avail = len - before;

			/* really incomplete: no header, or not the whole payload */
			check(avail > 0, "incomplete without bytes");
			if (avail >= RKM_REC_HEADER_SIZE)
			{
				const unsigned char *p = (const unsigned char *) body +
				before + RKM_REC_OFF_LENGTH;
				uint32		payload = ((uint32) p[0] << 24) |
				((uint32) p[1] << 16) | ((uint32) p[2] << 8) |
				(uint32) p[3];

				check(payload > avail - RKM_REC_HEADER_SIZE,
					  "incomplete record that is whole");
			}
		}
		else
		{
			check(res == RKM_READ_ERROR, "unknown read result");
			check(reader.error != NULL && reader.error[0] != '\0',
				  "error without a message");
		}
		break;
	}
	replkafka_message_reader_free(&reader);
}

/*
 * Check one body record that replkafka_message_next_record() accepted from the len bytes
 * at start: everything it points to is inside the input, and the writer of
 * its kind gives the same bytes for it.
 */
static void
check_record(const RkmRecord *rec, const char *start, size_t len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	switch (rec->kind)
	{
		case RKM_REC_RELATION:
			check(rec->natts <= RKM_MAX_ATTS, "too many columns");
			check(rec->schema_len > 0 && rec->table_len > 0, "empty name");
			check_inside(rec->schema, rec->schema_len, "schema name");
			check_inside(rec->table, rec->table_len, "table name");
			for (int i = 0; i < rec->natts; i++)
			{
				const RkmColumn *col = &rec->columns[i];

				check(col->name_len > 0 && col->type_len > 0,
					  "empty column name or type");
				check((col->flags & ~RKM_COL_KEY) == 0, "column flags");
				check_inside(col->name, col->name_len, "column name");
				check_inside(col->type, col->type_len, "column type");
			}
			replkafka_message_write_relation(&buf, rec->relation,
											 rec->schema, rec->schema_len,
											 rec->table, rec->table_len,
											 rec->natts, rec->columns);
			break;

		case RKM_REC_INSERT:
			check_tuple(rec->new_natts, rec->new_values);
			replkafka_message_write_insert(&buf, rec->relation,
										   rec->new_natts, rec->new_values);
			break;

		case RKM_REC_UPDATE:
			check(rec->old_kind == RKM_OLD_NONE ||
				  rec->old_kind == RKM_OLD_KEY ||
				  rec->old_kind == RKM_OLD_FULL, "old tuple kind");
			if (rec->old_kind != RKM_OLD_NONE)
				check_tuple(rec->old_natts, rec->old_values);
			check_tuple(rec->new_natts, rec->new_values);
			replkafka_message_write_update(&buf, rec->relation, rec->old_kind,
										   rec->old_natts, rec->old_values,
										   rec->new_natts, rec->new_values);
			break;

		case RKM_REC_DELETE:
			check(rec->old_kind == RKM_OLD_KEY ||
				  rec->old_kind == RKM_OLD_FULL, "old tuple kind");
			check_tuple(rec->old_natts, rec->old_values);
			replkafka_message_write_delete(&buf, rec->relation, rec->old_kind,
										   rec->old_natts, rec->old_values);
			break;

		default:
			check(false, "body record kind");
	}

	check((size_t) buf.len == len, "re-encoded record length");
	check(memcmp(buf.data, start, len) == 0, "re-encoded record bytes");
	pfree(buf.data);
}

/*
 * Check the values of a decoded tuple.
 */
static void
check_tuple(uint16 natts, const RkmValue *values)
{
	check(natts <= RKM_MAX_ATTS, "too many values");
	for (int i = 0; i < natts; i++)
	{
		const RkmValue *v = &values[i];

		if (v->kind == RKM_VAL_TEXT)
			check_inside(v->data, v->len, "value");
		else
			check(v->kind == RKM_VAL_NULL || v->kind == RKM_VAL_UNCHANGED ||
				  v->kind == RKM_VAL_ABSENT, "value kind");
	}
}

/*
 * libFuzzer's entry point: one input.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bytes = (const char *) data;
	RkmHeader	hdr;
	const char *error = NULL;

	input_start = bytes;
	input_end = bytes + size;

	if (replkafka_message_read_header(bytes, size, &hdr, &error))
	{
		check_header(bytes, size, &hdr);
		check_body(bytes + RKM_HEADER_SIZE + strlen(hdr.origin),
				   hdr.body_len);
	}
	else
		check(error != NULL && error[0] != '\0',
			  "header error without a message");

	check_body(bytes, size);
	return 0;
}
