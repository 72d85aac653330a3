/*-------------------------------------------------------------------------
 *
 * demotion.h
 *		demote(): handing over a partition this node is primary of.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/demotion.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_DEMOTION_H
#define REPLKAFKA_DEMOTION_H

extern void replkafka_demote(int partition, int timeout_ms);

#endif							/* REPLKAFKA_DEMOTION_H */
