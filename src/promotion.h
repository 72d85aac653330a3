/*-------------------------------------------------------------------------
 *
 * promotion.h
 *		promote(): the promotion protocol, in the promoting backend and in
 *		the apply worker that reads the log for it.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/promotion.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_PROMOTION_H
#define REPLKAFKA_PROMOTION_H

#include "message.h"
#include "shmem.h"

/* The promoting backend. */
extern uint32 replkafka_promote(int partition, int timeout_ms);

/* The apply worker. */
extern bool replkafka_promotion_applies(ReplkafkaRole role,
										ReplkafkaPromoteState state);
extern bool replkafka_promotion_new_generation(int p, int64 offset,
											   const RkmHeader *hdr,
											   uint32 prev_generation,
											   const char *prev_origin);
extern void replkafka_promotion_record_read(int p, const RkmHeader *hdr);
extern void replkafka_promotion_progress(int p, int64 next_offset);

#endif							/* REPLKAFKA_PROMOTION_H */
