/*-------------------------------------------------------------------------
 *
 * message.h
 *		replkafka's wire format: the Kafka records that carry a partition's
 *		log.  Encoder and decoder, shared by the output plugin, the
 *		shipper, the apply worker, replkafka.decode() and the fuzzer.
 *
 * The module is pure: no catalog access, no ereport.  Decoding functions
 * report malformed input by returning false with a message; the caller
 * turns that into an error of its own.  It compiles in the backend and in
 * frontend programs (with FRONTEND defined), so the decoder can be fuzzed
 * outside the server.  doc/protocol.md describes the format for
 * third-party consumers.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/message.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_MESSAGE_H
#define REPLKAFKA_MESSAGE_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/*
 * Every record starts with a fixed header of RKM_HEADER_SIZE bytes, then the
 * origin node's name (as many bytes as the byte at RKM_OFF_ORIGIN_LEN says,
 * 1 to RKM_MAX_ORIGIN, not NUL-terminated; ASCII letters, digits, "_", "."
 * and "-"), then the body.  Integers are big-endian.  The header's fields,
 * by offset, with their size in bytes:
 */
#define RKM_OFF_MAGIC		0	/* 2: "RK" */
#define RKM_OFF_VERSION		2	/* 1: format version (RKM_VERSION) */
#define RKM_OFF_TYPE		3	/* 1: type (RkmType) */
#define RKM_OFF_FLAGS		4	/* 1: flags (RKM_FLAG_*) */
#define RKM_OFF_ORIGIN_LEN	5	/* 1: length of the origin name */
#define RKM_OFF_RESERVED	6	/* 2: reserved, zero */
#define RKM_OFF_PARTITION	8	/* 4: partition */
#define RKM_OFF_CHUNK		12	/* 4: chunk index in the transaction, from 0 */
#define RKM_OFF_SCN			16	/* 8: SCN: generation << 32 | sequence */
#define RKM_OFF_COMMIT_LSN	24	/* 8: source commit LSN */
#define RKM_OFF_COMMIT_TIME	32	/* 8: source commit time, microseconds since
								 * 1970-01-01 UTC */
#define RKM_OFF_XID			40	/* 4: source transaction id */
#define RKM_OFF_BODY_LEN	44	/* 4: body length in bytes */
#define RKM_HEADER_SIZE		48	/* the origin name starts here */

#define RKM_MAGIC_0			'R'
#define RKM_MAGIC_1			'K'
#define RKM_VERSION			1
#define RKM_MAX_ORIGIN		63

/*
 * Bounds of the chunk size, in bytes.  A Kafka message holding a record of
 * a chunk is at most REPLKAFKA_RECORD_OVERHEAD bytes more than the chunk
 * (the 48-byte header, an origin name of up to 63 bytes, and at most 64
 * bytes librdkafka counts for the message itself): the largest chunk fits
 * librdkafka's default "message.max.bytes" (1,000,000).
 */
#define REPLKAFKA_RECORD_OVERHEAD	(RKM_HEADER_SIZE + RKM_MAX_ORIGIN + 64)
#define REPLKAFKA_MIN_CHUNK_SIZE	1024
#define REPLKAFKA_MAX_CHUNK_SIZE	(1000 * 1000 - REPLKAFKA_RECORD_OVERHEAD)

/* Header flags. */
#define RKM_FLAG_LAST		0x01	/* last chunk of the transaction */

/* Record types. */
typedef enum RkmType
{
	RKM_TXN = 1,				/* a transaction, or one chunk of one */
	RKM_NEW_GEN = 2,			/* a node starts a generation */
	RKM_END_GEN = 3,			/* a primary hands over cleanly */
	RKM_HEARTBEAT = 4,			/* liveness and position of a primary */
} RkmType;

#define RKM_TYPE_MIN		RKM_TXN
#define RKM_TYPE_MAX		RKM_HEARTBEAT

/* The decoded header of a record. */
typedef struct RkmHeader
{
	uint8		version;
	uint8		type;			/* RkmType */
	bool		last;			/* RKM_FLAG_LAST */
	uint32		partition;
	uint32		chunk;
	uint64		scn;
	uint64		commit_lsn;
	int64		commit_time;	/* microseconds since the Unix epoch */
	uint32		xid;
	uint32		body_len;
	char		origin[RKM_MAX_ORIGIN + 1];
} RkmHeader;

/*
 * Record times are microseconds since 1970-01-01; PostgreSQL's timestamps
 * count from 2000-01-01.  Add this to a TimestampTz to get a record time.
 */
#define RKM_UNIX_EPOCH_OFFSET \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* SCN arithmetic. */
#define RKM_SCN(gen, seq)	(((uint64) (gen) << 32) | (uint64) (seq))
#define RKM_SCN_GENERATION(scn)	((uint32) ((scn) >> 32))
#define RKM_SCN_SEQUENCE(scn)	((uint32) ((scn) & 0xFFFFFFFF))

/*
 * The body of a TXN record is a stream of body records.  A transaction too
 * large for one Kafka record is cut into chunks at arbitrary byte
 * positions: the bodies of chunks 0..last, concatenated, form the stream.
 * Each body record is
 *
 *	kind (1 byte, at RKM_REC_OFF_KIND) |
 *	payload length (4 bytes, at RKM_REC_OFF_LENGTH) | payload
 *
 * and every payload starts with the relation number (2 bytes).
 *
 * RKM_REC_RELATION defines a relation for the rest of the transaction:
 *	relation number (2) | schema (str) | table (str) | natts (2) |
 *	natts x { name (str) | type (str) | flags (1) }
 * where str is a 2-byte length and the bytes, and type is the column's type
 * as format_type prints it.  Column flag RKM_COL_KEY marks primary key
 * columns.  A relation is defined before its first change in a
 * transaction, so every transaction can be decoded on its own, and again,
 * under the same number, after the columns it sends changed (in number or
 * type) in the transaction.
 *
 * RKM_REC_INSERT:	relation number (2) | tuple
 * RKM_REC_UPDATE:	relation number (2) | old kind (1) | [old tuple] | new tuple
 * RKM_REC_DELETE:	relation number (2) | old kind (1) | old tuple
 *
 * old kind is RKM_OLD_NONE (no old tuple: the key did not change),
 * RKM_OLD_KEY (old primary key values, other columns RKM_VAL_ABSENT) or
 * RKM_OLD_FULL (the whole old row).
 *
 * tuple: natts (2) | natts x { value kind (1) | [length (4) | bytes] }
 * Values are in the type's text representation; only RKM_VAL_TEXT has a
 * length and bytes.
 */
#define RKM_REC_RELATION	'R'
#define RKM_REC_INSERT		'I'
#define RKM_REC_UPDATE		'U'
#define RKM_REC_DELETE		'D'

#define RKM_REC_OFF_KIND	0
#define RKM_REC_OFF_LENGTH	1
#define RKM_REC_HEADER_SIZE	5

#define RKM_COL_KEY			0x01

#define RKM_OLD_NONE		'N'
#define RKM_OLD_KEY			'K'
#define RKM_OLD_FULL		'O'

#define RKM_VAL_NULL		'n'
#define RKM_VAL_UNCHANGED	'u' /* unchanged TOASTed value, not sent */
#define RKM_VAL_ABSENT		'x' /* not part of this key tuple */
#define RKM_VAL_TEXT		't'

/* Limits that keep a decoder's allocations bounded by its input. */
#define RKM_MAX_RELATIONS	65535
#define RKM_MAX_ATTS		1664	/* MaxTupleAttributeNumber */

/* A column of a relation, as sent. */
typedef struct RkmColumn
{
	const char *name;
	int			name_len;
	const char *type;
	int			type_len;
	uint8		flags;
} RkmColumn;

/* A value of a tuple: kind, and for RKM_VAL_TEXT the bytes. */
typedef struct RkmValue
{
	char		kind;
	uint32		len;
	const char *data;			/* when decoded, points into the buffer */
} RkmValue;

/*
 * A decoded body record.  Pointers refer to the buffer given to
 * replkafka_message_next_record() and are valid as long as it is; the arrays are
 * allocated by the reader (palloc, or malloc in FRONTEND builds) and reused
 * by the next call.
 */
typedef struct RkmRecord
{
	char		kind;			/* RKM_REC_* */
	uint16		relation;		/* relation number */

	/* RKM_REC_RELATION */
	const char *schema;
	int			schema_len;
	const char *table;
	int			table_len;
	uint16		natts;
	RkmColumn  *columns;

	/* changes */
	char		old_kind;		/* RKM_OLD_*, for UPDATE and DELETE */
	uint16		old_natts;
	RkmValue   *old_values;
	uint16		new_natts;
	RkmValue   *new_values;
} RkmRecord;

/* Result of replkafka_message_next_record(). */
typedef enum RkmReadResult
{
	RKM_READ_OK,				/* *rec holds the next record */
	RKM_READ_END,				/* no bytes left */
	RKM_READ_INCOMPLETE,		/* a record starts but is not whole */
	RKM_READ_ERROR,				/* malformed; see reader->error */
} RkmReadResult;

/* Iterates over the body records in a buffer. */
typedef struct RkmReader
{
	const char *data;
	size_t		len;
	size_t		pos;			/* start of the next record */
	const char *error;			/* set on RKM_READ_ERROR */
	/* arrays reused between records */
	RkmColumn  *columns;
	RkmValue   *old_values;
	RkmValue   *new_values;
	int			columns_cap;
	int			old_cap;
	int			new_cap;
} RkmReader;

/*
 * Writers and readers.  Each kind of record has a writer, rkm_write_X,
 * which appends it to a StringInfo, and a reader in message.c that mirrors
 * it: replkafka_message_read_header() reads headers, and so control records, whole;
 * replkafka_message_next_record() reads body records one at a time with the reader of
 * their kind.
 */
extern void replkafka_message_write_header(StringInfo out, const RkmHeader *hdr);
extern bool replkafka_message_read_header(const char *data, size_t len, RkmHeader *hdr,
										  const char **error);
extern void replkafka_message_write_control(StringInfo out, RkmType type, uint32 partition,
											uint64 scn, uint64 commit_lsn,
											int64 commit_time, const char *origin);
extern void replkafka_message_set_scn(char *record, uint64 scn);
extern void replkafka_message_set_body_length(char *record, uint32 body_len);

extern void replkafka_message_write_relation(StringInfo out, uint16 relation,
											 const char *schema, int schema_len,
											 const char *table, int table_len,
											 uint16 natts, const RkmColumn *columns);
extern void replkafka_message_write_insert(StringInfo out, uint16 relation,
										   uint16 new_natts, const RkmValue *new_values);
extern void replkafka_message_write_update(StringInfo out, uint16 relation, char old_kind,
										   uint16 old_natts, const RkmValue *old_values,
										   uint16 new_natts, const RkmValue *new_values);
extern void replkafka_message_write_delete(StringInfo out, uint16 relation, char old_kind,
										   uint16 old_natts, const RkmValue *old_values);

extern void replkafka_message_reader_init(RkmReader *reader, const char *data, size_t len);
extern void replkafka_message_reader_reset(RkmReader *reader, const char *data, size_t len);
extern uint64 replkafka_message_record_size(const char *data);
extern void replkafka_message_reader_free(RkmReader *reader);
extern RkmReadResult replkafka_message_next_record(RkmReader *reader, RkmRecord *rec);

/* Helpers. */
extern const char *replkafka_message_type_name(uint8 type);
extern bool replkafka_message_is_name_char(char c);
extern bool replkafka_message_foreign_record(const RkmHeader *hdr, uint32 generation,
											 const char *node);
extern void replkafka_message_describe_record(char *buf, size_t size, int64 offset,
											  const RkmHeader *hdr);

#endif							/* REPLKAFKA_MESSAGE_H */
