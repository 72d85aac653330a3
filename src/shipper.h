/*-------------------------------------------------------------------------
 *
 * shipper.h
 *		The shipper background worker.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/shipper.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_SHIPPER_H
#define REPLKAFKA_SHIPPER_H

/* Name of the logical replication slot the shipper decodes. */
#define REPLKAFKA_SLOT_NAME		"replkafka"

extern void replkafka_shipper_register(void);

#endif							/* REPLKAFKA_SHIPPER_H */
