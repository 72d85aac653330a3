/*-------------------------------------------------------------------------
 *
 * mastership.h
 *		What promote() and demote() share.
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

#include "access/xlogdefs.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "message.h"

extern ReplkafkaRole replkafka_mastership_lock(int partition,
											   ReplkafkaCluster *cluster);
extern void replkafka_mastership_notice_progress(int partition,
												 const char *change);
extern int64 replkafka_mastership_write_control(RkmType type, int partition,
												const char *topic, uint64 scn,
												XLogRecPtr lsn,
												TimestampTz deadline);
extern void replkafka_check_not_stale(int partition);

#endif							/* REPLKAFKA_MASTERSHIP_H */
