/*-------------------------------------------------------------------------
 *
 * fence.h
 *		The write fence on replicated tables, and what happens at commit of
 *		a transaction that wrote to one.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/fence.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_FENCE_H
#define REPLKAFKA_FENCE_H

extern void replkafka_fence_init(void);
extern void replkafka_fence_preparing(const char *gid);
extern void replkafka_fence_finish_prepared(const char *gid, bool commit);

#endif							/* REPLKAFKA_FENCE_H */
