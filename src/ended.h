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

extern void replkafka_ended_save(int partition, uint32 generation,
								 const char *topic);
extern bool replkafka_ended_load(int partition, const char *topic,
								 uint32 *generation);
extern void replkafka_ended_forget_all(void);

#endif							/* REPLKAFKA_ENDED_H */
