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

#endif							/* REPLKAFKA_DECODER_H */
