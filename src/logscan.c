/*-------------------------------------------------------------------------
 *
 * logscan.c
 *		Reading back what this node wrote in its generation of a
 *		partition: where it stands, and whether anybody else wrote.
 *
 * The shipper does this when it starts shipping a partition (to learn the
 * last sequence number Kafka holds and which commits are there already),
 * when the offsets of its acknowledged records show that others wrote in
 * between, and demote() does it before writing END_GEN.  Each scan starts
 * at a record of ours that Kafka is known to hold, the producer
 * checkpoint, and reads every record after it, however many: a bounded
 * window from the end of the log would miss a foreign record further back
 * and take a zombie for a primary.
 *
 * Judging a record:
 *	- A record of a newer generation, or of ours written by another node
 *	  (but for a NEW_GEN of ours, which lost its election), is foreign:
 *	  another node is, or was made, primary.  Our transactions of the
 *	  generation that Kafka holds before the first foreign record are part
 *	  of the cluster's history; those after it are not.
 *	- Our transactions carry the sequence numbers 1, 2, 3...: a sequence
 *	  number that is not above the last one seen is a transaction written
 *	  again after a failure; one more than the next means a transaction is
 *	  missing from Kafka (a failed delivery followed by a successful one),
 *	  which no replica can get past.
 *	- Only our own NEW_GEN starts our generation's count: another node's
 *	  NEW_GEN of our generation is a lost election, whatever its commit
 *	  LSN says.
 *	- Our END_GEN of the generation means we handed the partition over:
 *	  what we wrote after it is not history either.
 *	- Records of older generations are zombies of earlier primaries, and
 *	  malformed records are for replicas to report: neither tells us
 *	  anything.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/logscan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "logscan.h"
#include "settings.h"

static void logscan_history_ends(LogScan *scan);
static bool logscan_callback(void *arg, int64 offset, const void *data,
							 size_t len);

/*
 * The history of our generation ends here: what we wrote from now on is
 * after a foreign record or a missing transaction.
 */
static void
logscan_history_ends(LogScan *scan)
{
	scan->history_seq = scan->seq;
	scan->history_lsn = scan->commit_lsn;
	scan->history_offset = scan->offset;
}

/*
 * Start a scan of generation, after the transaction seq of ours that Kafka
 * holds at offset (sequence 0 for the generation's NEW_GEN).
 */
void
replkafka_logscan_init(LogScan *scan, uint32 generation, uint32 seq,
					   XLogRecPtr commit_lsn, int64 offset)
{
	memset(scan, 0, sizeof(LogScan));
	scan->generation = generation;
	scan->seq = seq;
	scan->commit_lsn = commit_lsn;
	scan->offset = offset;
	scan->history_seq = seq;
	scan->history_lsn = commit_lsn;
	scan->history_offset = offset;
	strlcpy(scan->origin, replkafka_node_name, sizeof(scan->origin));
	scan->before_lsn = InvalidXLogRecPtr;
}

/*
 * Make the scan one of node's generation, counting only its transactions
 * that commit before before_lsn (if valid): a bootstrap finds where a
 * snapshot of its source, a primary, stands in the log.
 */
void
replkafka_logscan_set_writer(LogScan *scan, const char *node,
							 XLogRecPtr before_lsn)
{
	strlcpy(scan->origin, node, sizeof(scan->origin));
	scan->before_lsn = before_lsn;
}

/*
 * Judge one record, at offset, whose header is hdr.
 */
void
replkafka_logscan_record(LogScan *scan, int64 offset, const RkmHeader *hdr)
{
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);
	uint32		seq = RKM_SCN_SEQUENCE(hdr->scn);

	if (replkafka_message_foreign_record(hdr, scan->generation, scan->origin))
	{
		if (!scan->foreign)
		{
			if (!scan->hole)
				logscan_history_ends(scan);
			scan->foreign = true;
			scan->foreign_offset = offset;
			replkafka_message_describe_record(scan->foreign_detail,
											  sizeof(scan->foreign_detail), offset, hdr);
		}
		return;
	}
	if (gen != scan->generation || strcmp(hdr->origin, scan->origin) != 0)
		return;

	switch ((RkmType) hdr->type)
	{
		case RKM_TXN:
			if (!hdr->last || seq <= scan->seq || scan->past_before_lsn)
				return;			/* a chunk, a transaction written again, or
								 * one after before_lsn's */
			if (seq != scan->seq + 1 && !scan->hole)
			{
				if (!scan->foreign)
					logscan_history_ends(scan);
				scan->hole = true;
				scan->hole_seq = scan->seq + 1;
				scan->hole_offset = offset;
			}
			/* shipped in commit order: those after it all commit later */
			if (!XLogRecPtrIsInvalid(scan->before_lsn) &&
				hdr->commit_lsn >= scan->before_lsn)
			{
				scan->past_before_lsn = true;
				return;
			}
			scan->seq = seq;
			scan->commit_lsn = hdr->commit_lsn;
			scan->offset = offset;
			if (scan->foreign || scan->hole || scan->ended)
				scan->orphans++;
			break;
		case RKM_END_GEN:
			if (!scan->ended)
			{
				if (!scan->foreign && !scan->hole)
					logscan_history_ends(scan);
				scan->ended = true;
				scan->ended_offset = offset;
			}
			break;
		case RKM_NEW_GEN:
		case RKM_HEARTBEAT:
			break;
	}
}

/*
 * Did the scan end at our own END_GEN, with no transaction of ours missing
 * before it or written after it, and nothing foreign before it?  Then a
 * demotion handed the partition over, whoever wrote since.
 */
bool
replkafka_logscan_ended_cleanly(const LogScan *scan)
{
	return scan->ended && scan->orphans == 0 && !scan->hole &&
		(!scan->foreign || scan->foreign_offset > scan->ended_offset);
}

/*
 * Did the scan find every transaction of a generation this node ended
 * after transaction ended_seq (a demotion, perhaps one cut short, read
 * that one back as its last), and nothing of ours after a foreign record
 * or a hole?  Then each is history, whatever came after the last (our
 * END_GEN, another node's promotion), and the node becomes a replica
 * after it.
 */
bool
replkafka_logscan_handed_over(const LogScan *scan, uint32 ended_generation,
							  uint32 ended_seq)
{
	return ended_generation == scan->generation && !scan->hole &&
		scan->orphans == 0 && scan->seq == ended_seq;
}

/*
 * Callback of replkafka_kafka_read().
 */
static bool
logscan_callback(void *arg, int64 offset, const void *data, size_t len)
{
	LogScan    *scan = arg;
	RkmHeader	hdr;
	const char *err;

	if (replkafka_message_read_header(data, len, &hdr, &err))
		replkafka_logscan_record(scan, offset, &hdr);
	return true;
}

/*
 * Judge the records of partition in [from, to), by deadline.
 */
void
replkafka_logscan_read(LogScan *scan, rd_kafka_t *consumer, const char *topic,
					   int partition, int64 from, int64 to,
					   TimestampTz deadline)
{
	replkafka_kafka_read(consumer, topic, partition, from, to, deadline,
						 logscan_callback, scan);
}

/*
 * Judge the records of partition in [from, to), however many: fails only
 * if Kafka sends none for stall_ms.
 */
void
replkafka_logscan_read_all(LogScan *scan, rd_kafka_t *consumer,
						   const char *topic, int partition, int64 from,
						   int64 to, int stall_ms)
{
	replkafka_kafka_read_all(consumer, topic, partition, from, to, stall_ms,
							 logscan_callback, scan);
}
