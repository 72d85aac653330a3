/*-------------------------------------------------------------------------
 *
 * utility.h
 *		The ProcessUtility hook: utility statements replkafka follows.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/utility.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_UTILITY_H
#define REPLKAFKA_UTILITY_H

extern void replkafka_utility_init(void);

#endif							/* REPLKAFKA_UTILITY_H */
