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
extern int	replkafka_apply_worker_of(int partition);

#endif							/* REPLKAFKA_APPLY_H */
