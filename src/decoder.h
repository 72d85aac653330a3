/*-------------------------------------------------------------------------
 *
 * decoder.h
 *		The logical decoding output plugin "replkafka".
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/decoder.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_DECODER_H
#define REPLKAFKA_DECODER_H

#include "access/xlogdefs.h"
#include "replication/logical.h"

/*
 * Called by the plugin at the end of every decoded transaction, after its
 * last record was written, with the end of its commit record.  Set by the
 * shipper, which decodes in its own process; NULL otherwise.
 */
typedef void (*replkafka_txn_end_hook_type) (LogicalDecodingContext *ctx,
											 XLogRecPtr end_lsn);
extern replkafka_txn_end_hook_type replkafka_txn_end_hook;

/*
 * Bounds of the chunk size, in bytes.  A Kafka message holding a record of
 * a chunk is at most REPLKAFKA_RECORD_OVERHEAD bytes more than the chunk
 * (the 48-byte header, an origin name of up to 63 bytes, and at most 64
 * bytes librdkafka counts for the message itself): the largest chunk fits
 * librdkafka's default "message.max.bytes" (1,000,000).
 */
#define REPLKAFKA_RECORD_OVERHEAD	(48 + 63 + 64)
#define REPLKAFKA_MIN_CHUNK_SIZE	1024
#define REPLKAFKA_MAX_CHUNK_SIZE	(1000 * 1000 - REPLKAFKA_RECORD_OVERHEAD)

#endif							/* REPLKAFKA_DECODER_H */
