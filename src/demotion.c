/*-------------------------------------------------------------------------
 *
 * demotion.c
 *		demote(): handing over a partition this node is primary of.
 *
 * A demotion hands a partition over cleanly: the write fence stops letting
 * new transactions write the partition (they fail at once), the
 * transactions already writing it are waited for, and so is the shipper,
 * until Kafka acknowledged all of them.  Then the node writes an END_GEN
 * record carrying the last SCN of its generation, and becomes a replica
 * whose consumer checkpoint is the END_GEN record: its apply worker goes
 * on with whatever the next primary writes.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/demotion.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "demotion.h"
#include "ended.h"
#include "kafka.h"
#include "logscan.h"
#include "mastership.h"
#include "message.h"
#include "roles.h"
#include "settings.h"
#include "shmem.h"

/* Where a demotion leaves this node: a replica from this record on. */
typedef struct DemoteEnd
{
	uint32		seq;			/* the last transaction of the generation */
	int64		offset;			/* the record the replica resumes after */
	bool		ended;			/* offset is our END_GEN, nothing between */
} DemoteEnd;

static void demotion_exit(int code, Datum arg);
static void demotion_register_exit(void);
static void demote_read_log(rd_kafka_t *consumer, int partition,
							const char *topic, uint32 generation,
							LogScan *scan, int64 *high,
							TimestampTz deadline);
static void demote_end_generation(rd_kafka_t *consumer, int partition,
								  const char *topic, uint32 generation,
								  XLogRecPtr lsn, int64 from, DemoteEnd *end,
								  TimestampTz deadline);
static void demote_in_kafka(int partition, const char *topic,
							uint32 generation, XLogRecPtr lsn,
							DemoteEnd *end, TimestampTz deadline);
static void demote_steps(int partition, const char *topic,
						 TimestampTz deadline);
static XLogRecPtr demote_wal_end(void);
static void demote_wait_for_writers(ReplkafkaPartition *part, int partition,
									TimestampTz deadline);
static void demote_wait_for_kafka(ReplkafkaPartition *part, int partition,
								  XLogRecPtr lsn, TimestampTz deadline);

/*
 * A session that ends (FATAL, or terminated) while it demotes a partition
 * goes without PG_CATCH and without a role change to undo: give the
 * partition back, as an error would.  The fence stays closed if END_GEN
 * may be in Kafka (ended_generation); the shipper takes it from there.
 */
static void
demotion_exit(int code, Datum arg)
{
	if (replkafka_shared == NULL || !replkafka_shared->loaded)
		return;
	/* a FATAL error may have left it held: exit runs before the abort */
	LWLockReleaseAll();
	if (replkafka_shmem_forget_handovers(MyProcPid))
		replkafka_wake_shipper();
}

/*
 * Make sure demotion_exit() runs when this session ends.
 */
static void
demotion_register_exit(void)
{
	static bool registered = false;

	if (!registered)
		before_shmem_exit(demotion_exit, (Datum) 0);
	registered = true;
}

/*
 * Hand over a partition this node is primary of, within timeout_ms: stop
 * writes, ship everything, write END_GEN and become a replica.  Must run
 * outside a transaction block; the caller has checked the node's
 * configuration and the partition number.
 */
void
replkafka_demote(int partition, int timeout_ms)
{
	TimestampTz deadline;
	ReplkafkaCluster cluster;
	ReplkafkaRole role;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	demotion_register_exit();
	role = replkafka_mastership_lock(partition, &cluster);
	if (role != REPLKAFKA_ROLE_PRIMARY)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" is not primary of partition %d",
					   replkafka_node_name, partition),
				errdetail("This node's role in partition %d is %s.",
						  partition, replkafka_role_name(role)),
				role == REPLKAFKA_ROLE_ERROR ?
				errhint("See the last_error column of replkafka.partitions.") : 0);

	/* From here on the fence lets no new transaction write the partition. */
	replkafka_partition_begin_handover(partition);

	PG_TRY();
	{
		demote_steps(partition, cluster.topic, deadline);
	}
	PG_CATCH();
	{
		/* the fence stays closed if END_GEN may be in Kafka */
		replkafka_partition_end_handover(partition);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * The flag stays until the role change is published at commit, or undone
	 * at abort; then, if the END_GEN may be in Kafka, the shipper finishes
	 * the handover (shipper_finish_handover()).
	 */
}

/*
 * The end of the last WAL record inserted, as the shipper's decoding
 * reports record ends: GetXLogInsertRecPtr() points past the page header
 * when the last record ended exactly at a page boundary, a position the
 * shipper would only pass once more WAL is written.
 */
static XLogRecPtr
demote_wal_end(void)
{
	XLogRecPtr	lsn = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(lsn, wal_segment_size) == SizeOfXLogLongPHD)
		lsn -= SizeOfXLogLongPHD;
	else if (lsn % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		lsn -= SizeOfXLogShortPHD;
	return lsn;
}

/*
 * Transactions prepared for two-phase commit that may write partition:
 * those prepared since the server started that wrote it, and those
 * prepared before, whose partition is not known.
 */
static int
demote_prepared_writers(int partition)
{
	List	   *gids = replkafka_catalog_prepared_gids();
	ListCell   *lc;
	int			n = 0;

	foreach(lc, gids)
	{
		int			p;

		if (!replkafka_prepared_partition(lfirst(lc), &p) || p == partition)
			n++;
	}
	list_free_deep(gids);
	return n;
}

/*
 * Wait until no transaction writes partition, prepared ones included.  A
 * transaction counts as a writer from its first row of the partition, and
 * is remembered as prepared before it stops counting, so it is never
 * missed.
 */
static void
demote_wait_for_writers(ReplkafkaPartition *part, int partition,
						TimestampTz deadline)
{
	for (;;)
	{
		uint32		writers = pg_atomic_read_u32(&part->writers);
		int			prepared = writers == 0 ? demote_prepared_writers(partition) : 0;

		if (writers == 0 && prepared == 0)
			break;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					errcode(ERRCODE_QUERY_CANCELED),
					errmsg("could not demote node \"%s\" in partition %d within the timeout",
						   replkafka_node_name, partition),
					writers > 0 ?
					errdetail_plural("%u transaction writing the partition did not end.",
									 "%u transactions writing the partition did not end.",
									 writers, writers) :
					errdetail_plural("%d prepared transaction may write the partition.",
									 "%d prepared transactions may write the partition.",
									 prepared, prepared),
					writers > 0 ?
					errhint("The partition takes writes again.  End the long transactions, or demote with a longer timeout.") :
					errhint("The partition takes writes again.  Finish them with COMMIT PREPARED or ROLLBACK PREPARED (see pg_prepared_xacts), or demote with a longer timeout."));
		replkafka_mastership_notice_progress(partition, "demoting");
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 writers > 0 ? 5 : 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Wait until the shipper has Kafka's acknowledgement for everything
 * committed before lsn.
 */
static void
demote_wait_for_kafka(ReplkafkaPartition *part, int partition,
					  XLogRecPtr lsn, TimestampTz deadline)
{
	ConditionVariablePrepareToSleep(&replkafka_shared->ack_cv);
	for (;;)
	{
		long		remaining;

		if (pg_atomic_read_u64(&replkafka_shared->acked_lsn) >= lsn)
			break;
		if (part->role != REPLKAFKA_ROLE_PRIMARY)
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("could not demote node \"%s\" in partition %d: the partition went to error",
						   replkafka_node_name, partition),
					errdetail("%s", part->last_error));
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
			ereport(ERROR,
					errcode(ERRCODE_QUERY_CANCELED),
					errmsg("could not demote node \"%s\" in partition %d within the timeout",
						   replkafka_node_name, partition),
					errdetail("Kafka has not acknowledged every transaction committed up to %X/%X.",
							  LSN_FORMAT_ARGS(lsn)),
					errhint("The partition takes writes again.  See the last_error column of replkafka.partitions for the shipper's trouble."));
		replkafka_wake_shipper();
		replkafka_mastership_notice_progress(partition, "demoting");
		(void) ConditionVariableTimedSleep(&replkafka_shared->ack_cv,
										   Min(remaining, 1000),
										   PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	ConditionVariableCancelSleep();
}

/*
 * Read this node's generation of partition back from its producer
 * checkpoint to the end of the log, *high.
 *
 * The end of the log Kafka reports can be behind a record it already
 * acknowledged: a broker that just became the partition's leader learns
 * the high watermark from its followers a little later.  So the read goes
 * at least past the last record Kafka acknowledged to the shipper, waiting
 * for it if need be: a transaction of ours missed here would come before
 * our END_GEN with a higher sequence number than it carries.
 */
static void
demote_read_log(rd_kafka_t *consumer, int partition, const char *topic,
				uint32 generation, LogScan *scan, int64 *high,
				TimestampTz deadline)
{
	ReplkafkaProducerCheckpoint ckpt;
	int64		low;
	int64		shipped_end;
	ReplkafkaProgress progress;

	if (!replkafka_catalog_get_producer_checkpoint(partition, &ckpt) ||
		RKM_SCN_GENERATION(ckpt.scn) != generation)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("could not demote node \"%s\" in partition %d: it has no producer checkpoint of generation %u",
					   replkafka_node_name, partition, generation));
	replkafka_kafka_watermarks(consumer, topic, partition, &low, high,
							   deadline);
	replkafka_partition_get_progress(partition, &progress);
	shipped_end = progress.shipped_offset + 1;
	*high = Max(*high, shipped_end);
	replkafka_logscan_init(scan, generation, RKM_SCN_SEQUENCE(ckpt.scn),
						   ckpt.commit_lsn, ckpt.kafka_offset);
	replkafka_logscan_read(scan, consumer, topic, partition,
						   Max(low, ckpt.kafka_offset + 1), *high, deadline);
}

/*
 * Write END_GEN, carrying the last sequence number of our generation, and
 * check that nothing but lost elections came between the end of the log
 * read before, from, and it.  Once END_GEN may have reached Kafka the generation
 * is over, whatever happens: any error here (a timeout, a cancel) only
 * means this node cannot tell whether its END_GEN is there, and it
 * becomes a replica all the same, from its last transaction, which every
 * replica agrees on.  So errors are caught, in a subtransaction, and
 * reported as a WARNING.
 */
static void
demote_end_generation(rd_kafka_t *consumer, int partition, const char *topic,
					  uint32 generation, XLogRecPtr lsn, int64 from,
					  DemoteEnd *end, TimestampTz deadline)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ReplkafkaEnded ended;

	/*
	 * Whatever happens now, the generation takes no more writes, even after a
	 * crash: the record may land later still.
	 */
	ended.generation = generation;
	ended.seq = end->seq;
	ended.offset = end->offset;
	replkafka_ended_save(partition, &ended, topic);
	replkafka_partition_set_ended(partition, &ended);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		int64		end_offset;
		LogScan		between;

		end_offset = replkafka_mastership_write_control(RKM_END_GEN, partition, topic,
														RKM_SCN(generation, end->seq), lsn,
														deadline);
		replkafka_logscan_init(&between, generation, end->seq,
							   InvalidXLogRecPtr, end->offset);
		replkafka_logscan_read(&between, consumer, topic, partition, from,
							   end_offset, deadline);
		if (between.foreign)
			ereport(WARNING,
					errmsg("node \"%s\" ended generation %u of partition %d after another node started a newer one",
						   replkafka_node_name, generation, partition),
					errdetail("%s, before this node's END_GEN record at offset %lld.  This node's transactions are all before it.",
							  between.foreign_detail, (long long) end_offset));
		else
		{
			end->offset = end_offset;
			end->ended = true;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ereport(WARNING,
				errmsg("could not confirm that Kafka holds the END_GEN record of generation %u of partition %d",
					   generation, partition),
				errdetail("%s.  Node \"%s\" becomes a replica of the partition all the same: every transaction of the generation is in Kafka, and the generation takes no more.",
						  edata->message, replkafka_node_name),
				errhint("Promote a node to start the next generation."));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * The Kafka side of a demotion: check that everything after the producer
 * checkpoint is ours, and end the generation.  A demotion interrupted
 * after its END_GEN reached Kafka (the session ended meanwhile) is
 * finished without writing another.  Sets *end.
 */
static void
demote_in_kafka(int partition, const char *topic, uint32 generation,
				XLogRecPtr lsn, DemoteEnd *end, TimestampTz deadline)
{
	rd_kafka_t *consumer;
	ReplkafkaEnded ended;

	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_READER, NULL);
	PG_TRY();
	{
		LogScan		scan;
		int64		high;

		demote_read_log(consumer, partition, topic, generation, &scan, &high,
						deadline);
		replkafka_partition_get_ended(partition, &ended);

		/*
		 * Our own END_GEN, from a demotion whose session ended, with nothing
		 * of ours after it: the handover happened, whoever wrote since.
		 */
		if (replkafka_logscan_ended_cleanly(&scan))
		{
			end->seq = scan.seq;
			end->offset = scan.ended_offset;
			end->ended = true;
		}
		else if (replkafka_logscan_handed_over(&scan, ended.generation,
											   ended.seq))
		{
			/*
			 * A demotion that was cut short ended the generation, and another
			 * node took the partition over after our last transaction: it is
			 * handed over already, as the shipper would find.
			 */
			end->seq = scan.seq;
			end->offset = scan.offset;
			end->ended = false;
		}
		else if (scan.foreign || scan.hole || scan.ended)
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("could not demote node \"%s\" in partition %d: its log is not this node's alone",
						   replkafka_node_name, partition),
					scan.foreign ? errdetail("%s.", scan.foreign_detail) :
					scan.hole ? errdetail("Kafka lacks transaction %u of generation %u.",
										  scan.hole_seq, generation) :
					errdetail("This node wrote transactions after its END_GEN record at offset %lld.",
							  (long long) scan.ended_offset));
		else
		{
			end->seq = scan.seq;
			end->offset = scan.offset;
			end->ended = false;
			replkafka_set_phase(partition, REPLKAFKA_PHASE_WRITING_END_GEN);
			demote_end_generation(consumer, partition, topic, generation,
								  lsn, high, end, deadline);
		}
	}
	PG_FINALLY();
	{
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	PG_END_TRY();
}

/*
 * The steps of replkafka_demote() once the fence is closed.
 */
static void
demote_steps(int partition, const char *topic, TimestampTz deadline)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	uint32		generation = part->generation;
	XLogRecPtr	lsn;
	DemoteEnd	end;
	ReplkafkaConsumerCheckpoint cckpt;

	/* Every transaction of the partition has committed below lsn. */
	demote_wait_for_writers(part, partition, deadline);
	lsn = demote_wal_end();
	XLogFlush(lsn);
	replkafka_set_phase(partition, REPLKAFKA_PHASE_WAITING_FOR_KAFKA);
	demote_wait_for_kafka(part, partition, lsn, deadline);

	/* End the generation. */
	replkafka_set_phase(partition, REPLKAFKA_PHASE_READING_LOG);
	demote_in_kafka(partition, topic, generation, lsn, &end, deadline);

	/* A replica from the END_GEN record on (or from our last record). */
	replkafka_catalog_set_role(partition, REPLKAFKA_ROLE_REPLICA, generation,
							   NULL, NULL);
	cckpt.partition = partition;
	cckpt.generation = generation;
	cckpt.scn = RKM_SCN(generation, end.seq);
	cckpt.kafka_offset = end.offset;
	cckpt.ended = end.ended;
	replkafka_catalog_save_consumer_checkpoint(&cckpt);
	replkafka_roles_set_at_commit(partition, REPLKAFKA_ROLE_REPLICA, generation);
	ereport(LOG,
			errmsg("node \"%s\" handed over partition %d at the end of generation %u",
				   replkafka_node_name, partition, generation),
			end.ended ?
			errdetail("Its END_GEN record is at Kafka offset %lld, after transaction %u.",
					  (long long) end.offset, end.seq) :
			errdetail("It resumes as a replica after Kafka offset %lld, its transaction %u.",
					  (long long) end.offset, end.seq));
}
