/*-------------------------------------------------------------------------
 *
 * apply.h
 *		The apply workers.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/apply.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_APPLY_H
#define REPLKAFKA_APPLY_H

extern void replkafka_apply_register(void);

#endif							/* REPLKAFKA_APPLY_H */
