/*-------------------------------------------------------------------------
 *
 * ended.h
 *		The generations this node ended, kept across a crash.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/ended.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_ENDED_H
#define REPLKAFKA_ENDED_H

#include "shmem.h"

extern void replkafka_ended_save(int partition, const ReplkafkaEnded *ended,
								 const char *topic);
extern void replkafka_ended_load(int partition, const char *topic,
								 ReplkafkaEnded *ended);
extern void replkafka_ended_forget_all(void);

#endif							/* REPLKAFKA_ENDED_H */
