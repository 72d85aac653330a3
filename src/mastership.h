/*-------------------------------------------------------------------------
 *
 * mastership.h
 *		Changing this node's role in a partition.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/mastership.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_MASTERSHIP_H
#define REPLKAFKA_MASTERSHIP_H

extern uint32 replkafka_promote(int partition, int timeout_ms);
extern void replkafka_demote(int partition, int timeout_ms);
extern void replkafka_check_not_stale(int partition);

#endif							/* REPLKAFKA_MASTERSHIP_H */
