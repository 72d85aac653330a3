/*-------------------------------------------------------------------------
 *
 * message.c
 *		replkafka's wire format: encoder and decoder.
 *
 * See message.h for the layout and doc/protocol.md for its description.
 * Each kind of record has a writer, rkm_write_X, and next to it a reader,
 * rkm_read_X, that mirrors it: the record header (with the control
 * records, which are a header alone), and the body records: relation
 * definitions, inserts, updates and deletes.  Writers append to a
 * StringInfo in network byte order.  Readers trust nothing: every length
 * is checked against the bytes that are there, so a truncated or corrupted
 * record yields an error message, never a read past the buffer, and
 * allocations never exceed a bound derived from the input's own size.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/message.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRONTEND
#include "postgres.h"
#else
#include "postgres_fe.h"
#endif

#include "message.h"

#ifndef FRONTEND
#define rkm_alloc(sz)			palloc(sz)
#define rkm_realloc(p, sz)		repalloc((p), (sz))
#define rkm_free(p)				pfree(p)
#else
#define rkm_alloc(sz)			pg_malloc(sz)
#define rkm_realloc(p, sz)		pg_realloc((p), (sz))
#define rkm_free(p)				pg_free(p)
#endif

/* Bounds-checked cursor over a byte range. */
typedef struct RkmCursor
{
	const unsigned char *p;
	const unsigned char *end;
} RkmCursor;

static void put_u16(char *dst, uint16 v);
static void put_u32(char *dst, uint32 v);
static void put_u64(char *dst, uint64 v);
static uint32 get_u32(const unsigned char *src);
static uint64 get_u64(const unsigned char *src);
static void write_u8(StringInfo out, uint8 v);
static void write_u16(StringInfo out, uint16 v);
static void write_str(StringInfo out, const char *s, int len);
static bool cursor_u8(RkmCursor *c, uint8 *v);
static bool cursor_u16(RkmCursor *c, uint16 *v);
static bool cursor_u32(RkmCursor *c, uint32 *v);
static bool cursor_str(RkmCursor *c, const char **s, int *len);
static void reserve(void **array, int *cap, int need, size_t elem);
static int	begin_record(StringInfo out, char kind, uint16 relation);
static void end_record(StringInfo out, int start);
static void write_tuple(StringInfo out, uint16 natts, const RkmValue *values);
static bool read_tuple(RkmCursor *c, RkmReader *reader, uint16 *natts,
					   RkmValue **values, int *cap);
static bool read_new_tuple(RkmCursor *c, RkmReader *reader, RkmRecord *rec);
static void write_old_tuple(StringInfo out, char old_kind, uint16 old_natts,
							const RkmValue *old_values);
static bool read_old_tuple(RkmCursor *c, RkmReader *reader, RkmRecord *rec);
static bool message_read_relation(RkmCursor *c, RkmReader *reader,
								  RkmRecord *rec);
static bool message_read_insert(RkmCursor *c, RkmReader *reader, RkmRecord *rec);
static bool message_read_update(RkmCursor *c, RkmReader *reader, RkmRecord *rec);
static bool message_read_delete(RkmCursor *c, RkmReader *reader, RkmRecord *rec);


/* ----------------------------------------------------------------
 * Integers and strings
 * ----------------------------------------------------------------
 */

/*
 * Store v at dst in network byte order.
 */
static void
put_u16(char *dst, uint16 v)
{
	dst[0] = (char) (v >> 8);
	dst[1] = (char) v;
}

static void
put_u32(char *dst, uint32 v)
{
	dst[0] = (char) (v >> 24);
	dst[1] = (char) (v >> 16);
	dst[2] = (char) (v >> 8);
	dst[3] = (char) v;
}

static void
put_u64(char *dst, uint64 v)
{
	put_u32(dst, (uint32) (v >> 32));
	put_u32(dst + 4, (uint32) v);
}

/*
 * Load an integer stored in network byte order at src.
 */
static uint32
get_u32(const unsigned char *src)
{
	return ((uint32) src[0] << 24) | ((uint32) src[1] << 16) |
		((uint32) src[2] << 8) | (uint32) src[3];
}

static uint64
get_u64(const unsigned char *src)
{
	return ((uint64) get_u32(src) << 32) | (uint64) get_u32(src + 4);
}

/*
 * Append an integer in network byte order.
 */
static void
write_u8(StringInfo out, uint8 v)
{
	appendStringInfoCharMacro(out, (char) v);
}

static void
write_u16(StringInfo out, uint16 v)
{
	char		b[2];

	put_u16(b, v);
	appendBinaryStringInfo(out, b, 2);
}

/*
 * Append a string: 2-byte length and the bytes.  Names are at most
 * NAMEDATALEN bytes and type names far below 64kB, so len always fits.
 */
static void
write_str(StringInfo out, const char *s, int len)
{
	Assert(len >= 0 && len <= PG_UINT16_MAX);
	write_u16(out, (uint16) len);
	appendBinaryStringInfo(out, s, len);
}

/*
 * Read an integer in network byte order, or a string, at the cursor and
 * move past it; false if the bytes end first.
 */
static bool
cursor_u8(RkmCursor *c, uint8 *v)
{
	if (c->end - c->p < 1)
		return false;
	*v = *c->p++;
	return true;
}

static bool
cursor_u16(RkmCursor *c, uint16 *v)
{
	if (c->end - c->p < 2)
		return false;
	*v = (uint16) ((c->p[0] << 8) | c->p[1]);
	c->p += 2;
	return true;
}

static bool
cursor_u32(RkmCursor *c, uint32 *v)
{
	if (c->end - c->p < 4)
		return false;
	*v = get_u32(c->p);
	c->p += 4;
	return true;
}

static bool
cursor_str(RkmCursor *c, const char **s, int *len)
{
	uint16		l;

	if (!cursor_u16(c, &l) || c->end - c->p < l)
		return false;
	*s = (const char *) c->p;
	*len = l;
	c->p += l;
	return true;
}

/*
 * Make *array hold at least need elements of size elem.
 */
static void
reserve(void **array, int *cap, int need, size_t elem)
{
	if (need <= *cap)
		return;
	if (*array == NULL)
		*array = rkm_alloc(need * elem);
	else
		*array = rkm_realloc(*array, need * elem);
	*cap = need;
}


/* ----------------------------------------------------------------
 * The record header, and control records
 * ----------------------------------------------------------------
 */

/*
 * Append the header of a record: the fixed part and the origin name.  The
 * body length is hdr->body_len; writers that do not know it yet patch it
 * with replkafka_message_set_body_length() once the body is written.
 */
void
replkafka_message_write_header(StringInfo out, const RkmHeader *hdr)
{
	char		fixed[RKM_HEADER_SIZE];
	size_t		origin_len = strlen(hdr->origin);

	StaticAssertStmt(RKM_OFF_BODY_LEN + 4 == RKM_HEADER_SIZE,
					 "the body length is the header's last field");
	Assert(origin_len >= 1 && origin_len <= RKM_MAX_ORIGIN);

	fixed[RKM_OFF_MAGIC] = RKM_MAGIC_0;
	fixed[RKM_OFF_MAGIC + 1] = RKM_MAGIC_1;
	fixed[RKM_OFF_VERSION] = RKM_VERSION;
	fixed[RKM_OFF_TYPE] = (char) hdr->type;
	fixed[RKM_OFF_FLAGS] = hdr->last ? RKM_FLAG_LAST : 0;
	fixed[RKM_OFF_ORIGIN_LEN] = (char) origin_len;
	fixed[RKM_OFF_RESERVED] = 0;
	fixed[RKM_OFF_RESERVED + 1] = 0;
	put_u32(fixed + RKM_OFF_PARTITION, hdr->partition);
	put_u32(fixed + RKM_OFF_CHUNK, hdr->chunk);
	put_u64(fixed + RKM_OFF_SCN, hdr->scn);
	put_u64(fixed + RKM_OFF_COMMIT_LSN, hdr->commit_lsn);
	put_u64(fixed + RKM_OFF_COMMIT_TIME, (uint64) hdr->commit_time);
	put_u32(fixed + RKM_OFF_XID, hdr->xid);
	put_u32(fixed + RKM_OFF_BODY_LEN, hdr->body_len);
	appendBinaryStringInfo(out, fixed, RKM_HEADER_SIZE);
	appendBinaryStringInfo(out, hdr->origin, (int) origin_len);
}

/*
 * Decode and check the header of a record of len bytes.  On success, the
 * body starts at data + RKM_HEADER_SIZE + strlen(hdr->origin) and is
 * hdr->body_len bytes long, exactly up to the end of the record.  This is
 * also the reader of control records, which are a header alone.
 */
bool
replkafka_message_read_header(const char *data, size_t len, RkmHeader *hdr,
							  const char **error)
{
	const unsigned char *p = (const unsigned char *) data;
	uint8		origin_len;

	if (len < RKM_HEADER_SIZE)
	{
		*error = "record is shorter than the header";
		return false;
	}
	if (p[RKM_OFF_MAGIC] != RKM_MAGIC_0 || p[RKM_OFF_MAGIC + 1] != RKM_MAGIC_1)
	{
		*error = "record does not start with the replkafka magic bytes";
		return false;
	}
	hdr->version = p[RKM_OFF_VERSION];
	if (hdr->version != RKM_VERSION)
	{
		*error = "unsupported format version";
		return false;
	}
	hdr->type = p[RKM_OFF_TYPE];
	if (replkafka_message_type_name(hdr->type) == NULL)
	{
		*error = "invalid record type";
		return false;
	}
	if ((p[RKM_OFF_FLAGS] & ~RKM_FLAG_LAST) != 0 ||
		p[RKM_OFF_RESERVED] != 0 || p[RKM_OFF_RESERVED + 1] != 0)
	{
		*error = "invalid flags or reserved bytes";
		return false;
	}
	hdr->last = (p[RKM_OFF_FLAGS] & RKM_FLAG_LAST) != 0;
	origin_len = p[RKM_OFF_ORIGIN_LEN];
	if (origin_len < 1 || origin_len > RKM_MAX_ORIGIN)
	{
		*error = "invalid origin name length";
		return false;
	}
	hdr->partition = get_u32(p + RKM_OFF_PARTITION);
	hdr->chunk = get_u32(p + RKM_OFF_CHUNK);
	hdr->scn = get_u64(p + RKM_OFF_SCN);
	hdr->commit_lsn = get_u64(p + RKM_OFF_COMMIT_LSN);
	hdr->commit_time = (int64) get_u64(p + RKM_OFF_COMMIT_TIME);
	hdr->xid = get_u32(p + RKM_OFF_XID);
	hdr->body_len = get_u32(p + RKM_OFF_BODY_LEN);

	if (len - RKM_HEADER_SIZE < origin_len)
	{
		*error = "record is shorter than its origin name";
		return false;
	}
	memcpy(hdr->origin, p + RKM_HEADER_SIZE, origin_len);
	hdr->origin[origin_len] = '\0';
	for (int i = 0; i < origin_len; i++)
	{
		if (!replkafka_message_is_name_char(hdr->origin[i]))
		{
			*error = "origin name has a character other than letters, digits, \"_\", \".\" and \"-\"";
			return false;
		}
	}
	if ((uint64) hdr->body_len != (uint64) (len - RKM_HEADER_SIZE - origin_len))
	{
		*error = "body length does not match the record's length";
		return false;
	}
	if (hdr->type != RKM_TXN && hdr->body_len != 0)
	{
		*error = "control record has a body";
		return false;
	}
	if (hdr->type != RKM_TXN && (hdr->chunk != 0 || !hdr->last))
	{
		*error = "control record is marked as a chunk";
		return false;
	}
	return true;
}

/*
 * Append a control record (NEW_GEN, END_GEN or HEARTBEAT) of origin: a
 * header alone, of a single last chunk with no body and no transaction id.
 * replkafka_message_read_header() reads it.
 */
void
replkafka_message_write_control(StringInfo out, RkmType type, uint32 partition,
								uint64 scn, uint64 commit_lsn, int64 commit_time,
								const char *origin)
{
	RkmHeader	hdr;

	Assert(type == RKM_NEW_GEN || type == RKM_END_GEN ||
		   type == RKM_HEARTBEAT);

	/* chunk 0, transaction id 0, no body */
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.last = true;
	hdr.partition = partition;
	hdr.scn = scn;
	hdr.commit_lsn = commit_lsn;
	hdr.commit_time = commit_time;
	strlcpy(hdr.origin, origin, sizeof(hdr.origin));
	replkafka_message_write_header(out, &hdr);
}

/*
 * Overwrite the SCN of an encoded record (the shipper stamps it).
 */
void
replkafka_message_set_scn(char *record, uint64 scn)
{
	put_u64(record + RKM_OFF_SCN, scn);
}

/*
 * Overwrite the body length of an encoded record.
 */
void
replkafka_message_set_body_length(char *record, uint32 body_len)
{
	put_u32(record + RKM_OFF_BODY_LEN, body_len);
}


/* ----------------------------------------------------------------
 * Body records
 *
 * Every body record is framed by its kind and payload length, and its
 * payload starts with the relation number: begin_record() and
 * end_record() write that part, replkafka_message_next_record() reads it and hands the
 * rest to the reader of the kind.
 * ----------------------------------------------------------------
 */

/*
 * Start a body record of the given kind about relation; returns its start
 * offset, to be passed to end_record() once the payload is written.
 */
static int
begin_record(StringInfo out, char kind, uint16 relation)
{
	int			start = out->len;
	char	   *p;

	/* the record header, then the relation number, first of the payload */
	enlargeStringInfo(out, RKM_REC_HEADER_SIZE + 2);
	p = out->data + start;
	p[RKM_REC_OFF_KIND] = kind;
	put_u32(p + RKM_REC_OFF_LENGTH, 0); /* payload length, patched at the end */
	put_u16(p + RKM_REC_HEADER_SIZE, relation);
	out->len += RKM_REC_HEADER_SIZE + 2;
	out->data[out->len] = '\0';
	return start;
}

/*
 * Finish the body record started at offset start: store its payload length.
 */
static void
end_record(StringInfo out, int start)
{
	put_u32(out->data + start + RKM_REC_OFF_LENGTH,
			(uint32) (out->len - start - RKM_REC_HEADER_SIZE));
}

/*
 * Start reading the body records in data[0..len).
 */
void
replkafka_message_reader_init(RkmReader *reader, const char *data, size_t len)
{
	memset(reader, 0, sizeof(RkmReader));
	reader->data = data;
	reader->len = len;
}

/*
 * Point a reader at another buffer, keeping its arrays: for body records
 * read one at a time from elsewhere (a file).
 */
void
replkafka_message_reader_reset(RkmReader *reader, const char *data, size_t len)
{
	reader->data = data;
	reader->len = len;
	reader->pos = 0;
	reader->error = NULL;
}

/*
 * The size of the body record whose first RKM_REC_HEADER_SIZE bytes are at
 * data: header and payload.
 */
uint64
replkafka_message_record_size(const char *data)
{
	return RKM_REC_HEADER_SIZE +
		(uint64) get_u32((const unsigned char *) data + RKM_REC_OFF_LENGTH);
}

/*
 * Release the arrays a reader allocated.
 */
void
replkafka_message_reader_free(RkmReader *reader)
{
	if (reader->columns)
		rkm_free(reader->columns);
	if (reader->old_values)
		rkm_free(reader->old_values);
	if (reader->new_values)
		rkm_free(reader->new_values);
	reader->columns = NULL;
	reader->old_values = NULL;
	reader->new_values = NULL;
	reader->columns_cap = reader->old_cap = reader->new_cap = 0;
}

/*
 * Decode the next body record.  RKM_READ_INCOMPLETE means the bytes end
 * inside a record (a chunked transaction whose next chunk has not been
 * read); the position is left at that record's start.
 */
RkmReadResult
replkafka_message_next_record(RkmReader *reader, RkmRecord *rec)
{
	const unsigned char *start = (const unsigned char *) reader->data + reader->pos;
	size_t		avail = reader->len - reader->pos;
	uint32		payload;
	RkmCursor	c;
	bool		ok = false;

	if (avail == 0)
		return RKM_READ_END;
	if (avail < RKM_REC_HEADER_SIZE)
		return RKM_READ_INCOMPLETE;
	payload = get_u32(start + RKM_REC_OFF_LENGTH);
	if (avail - RKM_REC_HEADER_SIZE < payload)
		return RKM_READ_INCOMPLETE;

	c.p = start + RKM_REC_HEADER_SIZE;
	c.end = c.p + payload;
	memset(rec, 0, sizeof(RkmRecord));
	rec->kind = (char) start[RKM_REC_OFF_KIND];

	if (rec->kind != RKM_REC_RELATION && rec->kind != RKM_REC_INSERT &&
		rec->kind != RKM_REC_UPDATE && rec->kind != RKM_REC_DELETE)
	{
		reader->error = "invalid body record kind";
		return RKM_READ_ERROR;
	}
	if (!cursor_u16(&c, &rec->relation))
	{
		reader->error = "truncated body record";
		return RKM_READ_ERROR;
	}

	switch (rec->kind)
	{
		case RKM_REC_RELATION:
			ok = message_read_relation(&c, reader, rec);
			break;
		case RKM_REC_INSERT:
			ok = message_read_insert(&c, reader, rec);
			break;
		case RKM_REC_UPDATE:
			ok = message_read_update(&c, reader, rec);
			break;
		case RKM_REC_DELETE:
			ok = message_read_delete(&c, reader, rec);
			break;
	}
	if (!ok)
		return RKM_READ_ERROR;

	if (c.p != c.end)
	{
		reader->error = "body record has trailing bytes";
		return RKM_READ_ERROR;
	}
	reader->pos += RKM_REC_HEADER_SIZE + payload;
	return RKM_READ_OK;
}

/*
 * Append a tuple: natts values, each a kind and, for RKM_VAL_TEXT, the
 * length and bytes.  The buffer is enlarged once, for the whole tuple.
 */
static void
write_tuple(StringInfo out, uint16 natts, const RkmValue *values)
{
	Size		size = 2;
	char	   *p;

	Assert(natts <= RKM_MAX_ATTS);
	for (int i = 0; i < natts; i++)
		size += 1 + (values[i].kind == RKM_VAL_TEXT ? 4 + (Size) values[i].len : 0);
	/* more than a buffer can hold: enlargeStringInfo() says so */
	enlargeStringInfo(out, (int) Min(size, (Size) PG_INT32_MAX));

	p = out->data + out->len;
	put_u16(p, natts);
	p += 2;
	for (int i = 0; i < natts; i++)
	{
		const RkmValue *v = &values[i];

		*p++ = v->kind;
		if (v->kind == RKM_VAL_TEXT)
		{
			put_u32(p, v->len);
			memcpy(p + 4, v->data, v->len);
			p += 4 + v->len;
		}
	}
	out->len += (int) size;
	out->data[out->len] = '\0';
}

/*
 * Read a tuple.  Each value takes at least one byte, which bounds the
 * array by the record's size.
 */
static bool
read_tuple(RkmCursor *c, RkmReader *reader, uint16 *natts, RkmValue **values,
		   int *cap)
{
	if (!cursor_u16(c, natts))
	{
		reader->error = "truncated tuple";
		return false;
	}
	if (*natts > RKM_MAX_ATTS || *natts > c->end - c->p)
	{
		reader->error = "tuple has more values than the record can hold";
		return false;
	}
	reserve((void **) values, cap, Max(*natts, 1), sizeof(RkmValue));
	for (int i = 0; i < *natts; i++)
	{
		RkmValue   *v = &(*values)[i];
		uint8		kind;

		if (!cursor_u8(c, &kind))
		{
			reader->error = "truncated tuple";
			return false;
		}
		v->kind = (char) kind;
		v->len = 0;
		v->data = NULL;
		switch (kind)
		{
			case RKM_VAL_NULL:
			case RKM_VAL_UNCHANGED:
			case RKM_VAL_ABSENT:
				break;
			case RKM_VAL_TEXT:
				if (!cursor_u32(c, &v->len) || (size_t) (c->end - c->p) < v->len)
				{
					reader->error = "truncated value";
					return false;
				}
				v->data = (const char *) c->p;
				c->p += v->len;
				break;
			default:
				reader->error = "invalid value kind";
				return false;
		}
	}
	return true;
}

/*
 * Read the new tuple of an insert or update.
 */
static bool
read_new_tuple(RkmCursor *c, RkmReader *reader, RkmRecord *rec)
{
	if (!read_tuple(c, reader, &rec->new_natts, &reader->new_values,
					&reader->new_cap))
		return false;
	rec->new_values = reader->new_values;
	return true;
}

/*
 * Append the old kind of an update or delete, and the old tuple unless the
 * kind is RKM_OLD_NONE.
 */
static void
write_old_tuple(StringInfo out, char old_kind, uint16 old_natts,
				const RkmValue *old_values)
{
	write_u8(out, (uint8) old_kind);
	if (old_kind != RKM_OLD_NONE)
		write_tuple(out, old_natts, old_values);
}

/*
 * Read the old kind of an update or delete, and the old tuple unless the
 * kind is RKM_OLD_NONE, which only an update may have.
 */
static bool
read_old_tuple(RkmCursor *c, RkmReader *reader, RkmRecord *rec)
{
	uint8		old_kind;

	if (!cursor_u8(c, &old_kind))
	{
		reader->error = "truncated change";
		return false;
	}
	rec->old_kind = (char) old_kind;
	if (old_kind != RKM_OLD_KEY && old_kind != RKM_OLD_FULL &&
		!(old_kind == RKM_OLD_NONE && rec->kind == RKM_REC_UPDATE))
	{
		reader->error = "invalid old tuple kind";
		return false;
	}
	if (old_kind == RKM_OLD_NONE)
		return true;
	if (!read_tuple(c, reader, &rec->old_natts, &reader->old_values,
					&reader->old_cap))
		return false;
	rec->old_values = reader->old_values;
	return true;
}

/*
 * Append the definition of a relation: its number, schema, name and
 * columns (name, type as format_type prints it, RKM_COL_* flags).
 */
void
replkafka_message_write_relation(StringInfo out, uint16 relation,
								 const char *schema, int schema_len,
								 const char *table, int table_len,
								 uint16 natts, const RkmColumn *columns)
{
	int			start;

	Assert(schema_len > 0 && table_len > 0 && natts <= RKM_MAX_ATTS);

	start = begin_record(out, RKM_REC_RELATION, relation);
	write_str(out, schema, schema_len);
	write_str(out, table, table_len);
	write_u16(out, natts);
	for (int i = 0; i < natts; i++)
	{
		write_str(out, columns[i].name, columns[i].name_len);
		write_str(out, columns[i].type, columns[i].type_len);
		write_u8(out, columns[i].flags);
	}
	end_record(out, start);
}

/*
 * Read the payload of a relation definition, after its number.
 */
static bool
message_read_relation(RkmCursor *c, RkmReader *reader, RkmRecord *rec)
{
	if (!cursor_str(c, &rec->schema, &rec->schema_len) ||
		!cursor_str(c, &rec->table, &rec->table_len) ||
		!cursor_u16(c, &rec->natts))
	{
		reader->error = "truncated relation";
		return false;
	}
	if (rec->schema_len == 0 || rec->table_len == 0)
	{
		reader->error = "relation has an empty name";
		return false;
	}
	/* each column takes at least 5 bytes */
	if (rec->natts > RKM_MAX_ATTS || rec->natts > (c->end - c->p) / 5)
	{
		reader->error = "relation has more columns than the record can hold";
		return false;
	}
	reserve((void **) &reader->columns, &reader->columns_cap,
			Max(rec->natts, 1), sizeof(RkmColumn));
	rec->columns = reader->columns;
	for (int i = 0; i < rec->natts; i++)
	{
		RkmColumn  *col = &rec->columns[i];

		if (!cursor_str(c, &col->name, &col->name_len) ||
			!cursor_str(c, &col->type, &col->type_len) ||
			!cursor_u8(c, &col->flags))
		{
			reader->error = "truncated column definition";
			return false;
		}
		if (col->name_len == 0 || col->type_len == 0 ||
			(col->flags & ~RKM_COL_KEY) != 0)
		{
			reader->error = "invalid column definition";
			return false;
		}
	}
	return true;
}

/*
 * Append an insert into relation: the new tuple.
 */
void
replkafka_message_write_insert(StringInfo out, uint16 relation, uint16 new_natts,
							   const RkmValue *new_values)
{
	int			start = begin_record(out, RKM_REC_INSERT, relation);

	write_tuple(out, new_natts, new_values);
	end_record(out, start);
}

/*
 * Read the payload of an insert, after its relation number.
 */
static bool
message_read_insert(RkmCursor *c, RkmReader *reader, RkmRecord *rec)
{
	return read_new_tuple(c, reader, rec);
}

/*
 * Append an update of relation: the old kind (RKM_OLD_*), the old tuple
 * unless the kind is RKM_OLD_NONE, and the new tuple.
 */
void
replkafka_message_write_update(StringInfo out, uint16 relation, char old_kind,
							   uint16 old_natts, const RkmValue *old_values,
							   uint16 new_natts, const RkmValue *new_values)
{
	int			start;

	Assert(old_kind == RKM_OLD_NONE || old_kind == RKM_OLD_KEY ||
		   old_kind == RKM_OLD_FULL);

	start = begin_record(out, RKM_REC_UPDATE, relation);
	write_old_tuple(out, old_kind, old_natts, old_values);
	write_tuple(out, new_natts, new_values);
	end_record(out, start);
}

/*
 * Read the payload of an update, after its relation number.
 */
static bool
message_read_update(RkmCursor *c, RkmReader *reader, RkmRecord *rec)
{
	return read_old_tuple(c, reader, rec) &&
		read_new_tuple(c, reader, rec);
}

/*
 * Append a delete from relation: the old kind (RKM_OLD_KEY or
 * RKM_OLD_FULL) and the old tuple.
 */
void
replkafka_message_write_delete(StringInfo out, uint16 relation, char old_kind,
							   uint16 old_natts, const RkmValue *old_values)
{
	int			start;

	Assert(old_kind == RKM_OLD_KEY || old_kind == RKM_OLD_FULL);

	start = begin_record(out, RKM_REC_DELETE, relation);
	write_old_tuple(out, old_kind, old_natts, old_values);
	end_record(out, start);
}

/*
 * Read the payload of a delete, after its relation number.
 */
static bool
message_read_delete(RkmCursor *c, RkmReader *reader, RkmRecord *rec)
{
	return read_old_tuple(c, reader, rec);
}


/* ----------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------
 */

/*
 * Name of a record type, or NULL if type is not one.
 */
const char *
replkafka_message_type_name(uint8 type)
{
	switch (type)
	{
		case RKM_TXN:
			return "TXN";
		case RKM_NEW_GEN:
			return "NEW_GEN";
		case RKM_END_GEN:
			return "END_GEN";
		case RKM_HEARTBEAT:
			return "HEARTBEAT";
	}
	return NULL;
}

/*
 * Is c a character of node names (ASCII letters, digits, "_", "." and
 * "-")?  An origin name is a node name; Kafka's topic names use the same.
 */
bool
replkafka_message_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/*
 * Does the record show that a node other than node writes the partition
 * that node is primary of in generation?  A record of a newer generation
 * does, and so does one of that generation from another node, except
 * another node's NEW_GEN: it lost its election to node's.
 */
bool
replkafka_message_foreign_record(const RkmHeader *hdr, uint32 generation, const char *node)
{
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);

	if (gen > generation)
		return true;
	return gen == generation && hdr->type != RKM_NEW_GEN &&
		strcmp(hdr->origin, node) != 0;
}

/*
 * Describe the record at offset in buf, for error messages.
 */
void
replkafka_message_describe_record(char *buf, size_t size, int64 offset, const RkmHeader *hdr)
{
	snprintf(buf, size, "Kafka offset %lld holds a %s record of generation %u from node \"%s\"",
			 (long long) offset, replkafka_message_type_name(hdr->type),
			 RKM_SCN_GENERATION(hdr->scn), hdr->origin);
}
