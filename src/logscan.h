/*-------------------------------------------------------------------------
 *
 * logscan.h
 *		Reading back what this node wrote in its generation of a
 *		partition: where it stands, and whether anybody else wrote.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/logscan.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_LOGSCAN_H
#define REPLKAFKA_LOGSCAN_H

#include "access/xlogdefs.h"

#include "kafka.h"
#include "message.h"

/*
 * The state of a scan of this node's generation of a partition.  Before
 * the scan, the caller sets generation and the last transaction it knows
 * to be in Kafka (seq, commit_lsn, offset: from the producer checkpoint,
 * whose record Kafka holds); the scan moves them on over every later
 * record of ours.
 */
typedef struct LogScan
{
	uint32		generation;		/* this node's generation */

	/*
	 * The node whose generation it is (this node, unless a bootstrap reads
	 * its source's), and if valid, the commit LSN from which its transactions
	 * are not counted: a snapshot of it holds those before.
	 */
	char		origin[RKM_MAX_ORIGIN + 1];
	XLogRecPtr	before_lsn;
	bool		past_before_lsn;	/* a transaction at or after it came */

	/* this node's last complete transaction of the generation */
	uint32		seq;
	XLogRecPtr	commit_lsn;
	int64		offset;

	/* a transaction of ours is missing: its successor came without it */
	bool		hole;
	uint32		hole_seq;		/* the missing sequence number */
	int64		hole_offset;	/* where its successor is */

	/*
	 * The first record another node wrote in or after the generation, and
	 * where the history of our generation ends (at it, at a missing
	 * transaction, or at our END_GEN, whichever comes first).
	 */
	bool		foreign;
	int64		foreign_offset;
	char		foreign_detail[256];
	uint32		history_seq;	/* our last transaction before it */
	XLogRecPtr	history_lsn;
	int64		history_offset;

	/* transactions of ours after the history's end */
	int64		orphans;

	/* this node wrote END_GEN of the generation */
	bool		ended;
	int64		ended_offset;
} LogScan;

extern void replkafka_logscan_init(LogScan *scan, uint32 generation,
								   uint32 seq, XLogRecPtr commit_lsn,
								   int64 offset);
extern void replkafka_logscan_set_writer(LogScan *scan, const char *node,
										 XLogRecPtr before_lsn);
extern void replkafka_logscan_record(LogScan *scan, int64 offset,
									 const RkmHeader *hdr);
extern bool replkafka_logscan_ended_cleanly(const LogScan *scan);
extern bool replkafka_logscan_handed_over(const LogScan *scan,
										  uint32 ended_generation,
										  uint32 ended_seq);
extern void replkafka_logscan_read(LogScan *scan, rd_kafka_t *consumer,
								   const char *topic, int partition,
								   int64 from, int64 to,
								   TimestampTz deadline);
extern void replkafka_logscan_read_all(LogScan *scan, rd_kafka_t *consumer,
									   const char *topic, int partition,
									   int64 from, int64 to, int stall_ms);

#endif							/* REPLKAFKA_LOGSCAN_H */
