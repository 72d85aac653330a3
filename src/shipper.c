/*-------------------------------------------------------------------------
 *
 * shipper.c
 *		The shipper: a background worker that decodes this node's WAL with
 *		the replkafka output plugin and ships the transactions of the
 *		partitions this node is primary of to Kafka, exactly once.
 *
 * DECODING
 * --------
 * The shipper decodes in its own process, on the logical replication slot
 * "replkafka" (created on first start), the way
 * pg_logical_slot_get_changes() does, but without end: when it reaches
 * the end of the flushed WAL, its page reader waits on the latch, and does
 * the shipper's periodic work meanwhile.  Backends set the latch when they
 * commit a transaction that wrote a replicated table.
 *
 * SEQUENCING
 * ----------
 * Each record the plugin writes belongs to one partition.  The first chunk
 * of a transaction in a partition gets the partition's next sequence
 * number in the current generation, and every chunk of it carries SCN =
 * generation << 32 | sequence, stamped into the header.  Records of
 * partitions this node is not primary of are not shipped.
 *
 * ACKNOWLEDGEMENTS AND THE SLOT
 * ----------------------------
 * Records go to the idempotent producer with the partition set
 * explicitly.  Every transaction shipped is tracked, in decoding order
 * (which is commit order), with the number of its records Kafka has not
 * acknowledged yet.  Once a transaction and all before it are
 * acknowledged, the slot's confirmed position moves to the end of its
 * commit record, synchronous commits waiting for it are released, and the
 * producer checkpoint of its partition is updated (written to
 * replkafka.producer_checkpoints at most once a second, outside decoding).
 * When nothing is in flight and the decoder waits for WAL, the confirmed
 * position moves to the end of what was decoded, so that WAL written only
 * by other tables never stays pinned.
 *
 * RECOVERY
 * --------
 * Kafka is the truth about what was shipped.  Before shipping a partition
 * in a generation, the shipper reads the partition back from its producer
 * checkpoint (a record of ours Kafka holds: the generation's NEW_GEN, or a
 * transaction acknowledged and checked) to the end of the log, however
 * far that is (logscan.c).  The last transaction of ours there gives the
 * last sequence number used, and its commit LSN tells which transactions
 * Kafka already has: those committed at or before it are not shipped
 * again when the slot replays them.  Only our own NEW_GEN starts the
 * count: another node's NEW_GEN of our generation lost its election, and
 * its commit LSN is another node's.  A transaction whose chunks reached
 * Kafka only in part is shipped again whole, with the same SCN; replicas
 * discard the incomplete copy.  When the shipper starts, records its
 * earlier run produced may be appended by the leader but not yet readable
 * (above the high watermark): for the partitions it was primary of, the
 * read-back goes on up to a HEARTBEAT it writes and Kafka acknowledges,
 * before which they are readable (doc/design.md, section 9, says what this
 * leaves out).
 *
 * Any fatal producer error (librdkafka 2.0 can raise spurious fatal
 * idempotence errors after disconnects, and a record that fails for good
 * is made fatal with enable.gapless.guarantee), and any other error, ends
 * the worker; the postmaster starts it again after a second and recovery
 * runs again from the slot and the log.  Nothing is lost, because the slot
 * is confirmed only past acknowledged transactions, and nothing is shipped
 * twice, because of the read-back.  Should Kafka hold a transaction of
 * ours without the one before it, no replica can get past the hole: the
 * partition stops rather than take the later one for the last.
 *
 * FOREIGN RECORDS
 * ---------------
 * A record in a partition that this node did not write in its generation,
 * or a record of a newer generation, means another node is (or was made)
 * primary: the partition goes to "error" at once and is no longer shipped.
 * Our transactions Kafka holds before that record are part of the
 * cluster's history; those after it are not.  At run time, such records
 * show up as a gap between the offsets of two of our acknowledged
 * records; the gap is read back before the transactions after it are
 * released, so that a synchronous commit Kafka acknowledged after another
 * node's NEW_GEN is never taken for a success (fence.c reads the role
 * first, and history_end, which the shipper publishes before the role).
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/shipper.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "commands/extension.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "decoder.h"
#include "kafka.h"
#include "logscan.h"
#include "message.h"
#include "partition.h"
#include "roles.h"
#include "settings.h"
#include "shipper.h"
#include "shmem.h"
#include "worker.h"

/* Longest sleep while waiting for WAL or for the cluster (1s). */
#define SHIPPER_NAPTIME_MS		1000

/* Producer checkpoints are written at most this often (1s). */
#define SHIPPER_CHECKPOINT_MS	1000

/*
 * Sequence numbers kept for transactions that committed before the fence
 * closed: once the next one is above this, the partition takes no new
 * transactions in the generation.  A sequence number never wraps.
 */
#define SHIPPER_SEQUENCE_LIMIT	(PG_UINT32_MAX - (1U << 20))

/*
 * Reading a partition back gives up only when Kafka sends nothing for this
 * long (at least 30s): a long read that makes progress goes on.
 */
#define SHIPPER_READ_STALL_MS	Max(replkafka_request_timeout, 30000)

/* How often an idle primary partition's log is looked at (2s). */
#define SHIPPER_CHECK_MS		2000

/* Records unacknowledged this long (5s) make the shipper show as retrying. */
#define SHIPPER_STALL_MS		5000

/* A transaction shipped to one partition, until Kafka acknowledged it. */
typedef struct Shipment
{
	dlist_node	node;
	int			partition;
	uint64		scn;
	XLogRecPtr	commit_lsn;
	XLogRecPtr	end_lsn;		/* end of its commit record, once decoded */
	bool		complete;		/* all its records were produced */
	int			pending;		/* records not acknowledged yet */
	int64		last_offset;	/* Kafka offset of its last record */
} Shipment;

/* What the shipper knows of one partition. */
typedef struct ShipperPartition
{
	uint32		generation;		/* generation recovered for, 0 if none */
	uint32		next_seq;		/* next sequence number to use */
	XLogRecPtr	skip_lsn;		/* transactions committed up to here are in
								 * Kafka */
	bool		stale;			/* a foreign record was found: do not ship */
	uint32		earlier_generation; /* primary in it when the shipper started:
									 * earlier runs may have shipped in it */

	/*
	 * A HEARTBEAT the recovery of generation beat_generation waits for (0:
	 * none): once Kafka acknowledged it, at beat_offset (-1 until then), the
	 * read-back goes on from beat_from up to it, with beat_scan.
	 */
	uint32		beat_generation;
	int64		beat_offset;
	int64		beat_from;
	TimestampTz beat_sent;
	LogScan		beat_scan;
	int64		orphans_from;	/* stale: our records acknowledged at or after
								 * this offset are orphans */
	XLogRecPtr	history_lsn;	/* stale: our transactions committed up to
								 * here are part of the cluster's history */

	/* the transaction being decoded */
	Shipment   *cur;
	bool		cur_skip;
	bool		cur_history;	/* stale, but part of the history */

	/*
	 * Last acknowledged transaction that is part of the cluster's history:
	 * the producer checkpoint, where the next recovery starts reading.
	 */
	uint64		acked_scn;
	XLogRecPtr	acked_lsn;
	int64		acked_offset;
	bool		dirty;

	/*
	 * Where this node's next record should land; -1 if unknown.  A record
	 * acknowledged at another offset, or a log that grew without us, means
	 * others wrote in between: [check_from, check_to) is read back to see
	 * whether it is foreign.
	 */
	int64		expect_offset;
	int64		check_from;
	int64		check_to;
	TimestampTz last_check;
} ShipperPartition;

PGDLLEXPORT void replkafka_shipper_main(Datum main_arg);

static void shipper_exit(int code, Datum arg);
static void shipper_stop_for_lost_slot(void);
static void shipper_check_slot(void);
static void shipper_ensure_slot(void);
static void shipper_decode(void);
static void shipper_begin_decoding(void);
static void shipper_end_decoding(void);
static int	shipper_chunk_size(void);
static int	shipper_read_page(XLogReaderState *state, XLogRecPtr targetPagePtr,
							  int reqLen, XLogRecPtr targetRecPtr,
							  char *cur_page);
static void shipper_prepare_write(LogicalDecodingContext *ctx,
								  XLogRecPtr lsn, TransactionId xid,
								  bool last_write);
static void shipper_write(LogicalDecodingContext *ctx, XLogRecPtr lsn,
						  TransactionId xid, bool last_write);
static void shipper_update_progress(LogicalDecodingContext *ctx,
									XLogRecPtr lsn, TransactionId xid,
									bool skipped_xact);
static void shipper_txn_end(LogicalDecodingContext *ctx, XLogRecPtr end_lsn);
static void shipper_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
						  void *opaque);
static void shipper_allow_own_plugin(void);
static void shipper_service(bool idle);
static void shipper_produce(const char *data, size_t len, int partition,
							void *opaque);
static void shipper_check_sequence(int partition);
static void shipper_recover_changed(void);
static void shipper_recover(int partition);
static void shipper_send_heartbeat(int partition, const LogScan *scan,
								   int64 from);
static void shipper_heartbeat_acknowledged(const rd_kafka_message_t *msg);
static bool shipper_heartbeat_pending(int partition);
static void shipper_read_to_heartbeats(void);
static void shipper_recover_finish(int partition, const LogScan *scan,
								   int64 high);
static bool shipper_load_checkpoint(int partition);
static void shipper_partition_error(int partition, int64 history_before,
									const char *fmt,...) pg_attribute_printf(3, 4);
static void shipper_save_state(void);
static bool shipper_handover_left(int partition);
static void shipper_finish_handover(int partition);
static void shipper_check_foreign(bool idle);
static void shipper_check_range(int partition);
static bool shipper_report_scan(int partition, const LogScan *scan);
static TimestampTz shipper_read_deadline(void);

/* The producer, and a consumer to read partition tails. */
static rd_kafka_t *producer = NULL;

static rd_kafka_t *consumer = NULL;
static rd_kafka_topic_t *topic_handle = NULL;

/* The topic and the number of partitions of the cluster. */
static char *topic_name = NULL;
static int	npartitions = 0;

static ShipperPartition *partitions = NULL;

/* Shipments in decoding order. */
static dlist_head shipments = DLIST_STATIC_INIT(shipments);

/* The opaque of the HEARTBEAT records the shipper produces. */
static char heartbeat_opaque;

/* The decoding context, while decoding. */
static LogicalDecodingContext *decoding_ctx = NULL;

/*
 * Records are decoded in a transaction of their own, in which the reorder
 * buffer replays each decoded transaction in a subtransaction, as it does
 * in a call of pg_logical_slot_get_changes(): cheaper than the top-level
 * transaction it starts and aborts for each one otherwise.  It ends before
 * anything that needs a transaction of its own or must happen between
 * decoded transactions (confirming, recovering a partition).
 */
static bool decoding_xact = false;

/* Everything up to here is confirmed to the slot and to waiting commits. */
static XLogRecPtr confirmed_lsn = InvalidXLogRecPtr;

/* Everything up to here may be confirmed, once outside a transaction. */
static XLogRecPtr confirm = InvalidXLogRecPtr;

/* An error reported by a delivery report, acted on after the poll. */
static char delivery_error[512];

/* Partitions whose role must become "error" in the catalog. */
static List *pending_errors = NIL;

static TimestampTz last_checkpoint = 0;

/* The last acknowledgement, or when the oldest record in flight was sent. */
static TimestampTz last_ack = 0;

/* The shipper recovered its partitions once: it runs. */
static bool running = false;

/* replkafka_shared->roles_version when the shipper last looked at roles. */
static uint64 roles_seen = PG_UINT64_MAX;

/*
 * Register the shipper; called from _PG_init while preloading.
 */
void
replkafka_shipper_register(void)
{
	if (!IsBinaryUpgrade)
		replkafka_worker_register("replkafka shipper", "replkafka_shipper_main", -1);
}

/*
 * Servers with output_plugin_libraries (PostgreSQL 15.19 and later) let
 * logical decoding load only the output plugins it lists, so that a
 * replication user cannot load any library.  The shipper decodes with
 * replkafka's own plugin, a library the administrator already loaded with
 * shared_preload_libraries: it adds it to the list, for its own process
 * only.  Sessions that decode with the plugin themselves (pg_recvlogical,
 * pg_logical_slot_get_changes()) still need it listed.
 */
static void
shipper_allow_own_plugin(void)
{
	const char *libraries = GetConfigOption("output_plugin_libraries", true, false);
	char	   *raw;
	List	   *names = NIL;
	ListCell   *lc;

	if (libraries == NULL)
		return;					/* a release without the parameter */
	/* parsed as the server does: names kept as written */
	raw = pstrdup(libraries);
	if (SplitGUCList(raw, ',', &names))
	{
		foreach(lc, names)
			if (strcmp(lfirst(lc), REPLKAFKA_EXTENSION_NAME) == 0)
			return;
	}
	SetConfigOption("output_plugin_libraries",
					names != NIL ? psprintf("%s, %s", libraries, REPLKAFKA_EXTENSION_NAME) :
					REPLKAFKA_EXTENSION_NAME,
					PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Entry point of the shipper.
 */
void
replkafka_shipper_main(Datum main_arg)
{
	rd_kafka_queue_t *mainq;

	replkafka_worker_connect("replkafka shipper", REPLKAFKA_SHIPPER_SLOT);
	before_shmem_exit(shipper_exit, (Datum) 0);
	replkafka_shmem_set_shipper_latch(MyLatch);

	/*
	 * Values are shipped in their text form, with fixed settings
	 * (doc/protocol.md), and types outside pg_catalog schema-qualified.
	 */
	SetConfigOption("DateStyle", "ISO", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("IntervalStyle", "postgres", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("extra_float_digits", "3", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("bytea_output", "hex", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("TimeZone", "UTC", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);
	shipper_allow_own_plugin();

	replkafka_worker_wait_for_cluster(&topic_name, &npartitions);
	/* before any Kafka client: a shipper without its slot restarts bare */
	shipper_ensure_slot();

	partitions = MemoryContextAllocZero(TopMemoryContext,
										npartitions * sizeof(ShipperPartition));
	for (int p = 0; p < npartitions; p++)
		partitions[p].expect_offset = -1;
	producer = replkafka_kafka_new(REPLKAFKA_CLIENT_PRODUCER, shipper_dr_cb);
	mainq = rd_kafka_queue_get_main(producer);
	replkafka_worker_wakeup_init(producer, mainq);
	rd_kafka_queue_destroy(mainq);
	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_READER, NULL);
	topic_handle = rd_kafka_topic_new(producer, topic_name, NULL);
	last_ack = GetCurrentTimestamp();

	ereport(LOG,
			errmsg("replkafka shipper started for topic \"%s\" with %d partitions",
				   topic_name, npartitions));
	shipper_decode();
}

/*
 * Release Kafka handles and the shared-memory registration on exit.
 * Unacknowledged records are dropped: the slot was not confirmed past
 * them, so the next start ships again those its read-back does not find in
 * Kafka.
 */
static void
shipper_exit(int code, Datum arg)
{
	/* an error may have left it held: nothing aborted the transaction yet */
	LWLockReleaseAll();
	if (topic_handle)
		rd_kafka_topic_destroy(topic_handle);
	topic_handle = NULL;
	if (producer)
	{
		rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(producer, 0);
		rd_kafka_destroy(producer);
		producer = NULL;
	}
	if (consumer)
	{
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
		consumer = NULL;
	}

	replkafka_shmem_set_shipper_latch(NULL);
}

/*
 * The slot is missing on a node that is primary of partitions: it was
 * dropped, or the node was restored from a file-level backup.  A new slot
 * starts at the end of the WAL, after transactions that may not be in
 * Kafka, and would never ship them.  Those partitions stop, as for a stale
 * primary (the write fence refuses their writes from now on); then the
 * shipper creates its slot and ships the others.
 */
static void
shipper_stop_for_lost_slot(void)
{
	List	   *roles;
	ListCell   *lc;
	List	   *stopped = NIL;
	StringInfoData names;
	char	   *msg;

	msg = psprintf("replication slot \"%s\" of the shipper was lost: the transactions committed before it was created again may not be in Kafka",
				   REPLKAFKA_SLOT_NAME);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	(void) replkafka_catalog_get_roles(&roles);
	foreach(lc, roles)
	{
		ReplkafkaRoleRow *row = lfirst(lc);
		ReplkafkaRole role;
		uint32		generation;

		if (row->role != REPLKAFKA_ROLE_PRIMARY)
			continue;

		/*
		 * Under the row's lock, as a role change does: a demote() holding it
		 * gives up at its timeout, since nothing ships its writes.
		 */
		replkafka_roles_lock(row->partition, &role, &generation);
		if (role != REPLKAFKA_ROLE_PRIMARY)
			continue;
		replkafka_catalog_set_role(row->partition, REPLKAFKA_ROLE_ERROR,
								   generation, msg, NULL);
		replkafka_roles_set_at_commit(row->partition, REPLKAFKA_ROLE_ERROR,
									  generation);
		stopped = lappend_int(stopped, row->partition);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (stopped == NIL)
		return;

	/* the reason, for the write fence's hint and the view */
	initStringInfo(&names);
	foreach(lc, stopped)
		replkafka_partition_set_shipper_error(lfirst_int(lc), msg);
	foreach(lc, stopped)
		appendStringInfo(&names, "%s%d", names.len > 0 ? ", " : "", lfirst_int(lc));
	ereport(WARNING,
			errmsg("replication slot \"%s\" of the shipper is missing", REPLKAFKA_SLOT_NAME),
			errdetail_plural("This node was primary of partition %s; the transactions it committed before the slot was lost may not be in Kafka, so the partition is now in error.",
							 "This node was primary of partitions %s; the transactions they committed before the slot was lost may not be in Kafka, so the partitions are now in error.",
							 list_length(stopped), names.data),
			errhint("Promote another node in those partitions, then rebuild them here as for a stale primary."));
}

/*
 * The slot exists: it must be the shipper's kind, decoded by replkafka's
 * plugin (one created by hand may not be).
 */
static void
shipper_check_slot(void)
{
	if (!SlotIsLogical(MyReplicationSlot) ||
		strcmp(NameStr(MyReplicationSlot->data.plugin), REPLKAFKA_EXTENSION_NAME) != 0)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("replication slot \"%s\" is not a logical slot of output plugin \"%s\"",
					   REPLKAFKA_SLOT_NAME, REPLKAFKA_EXTENSION_NAME),
				SlotIsLogical(MyReplicationSlot) ?
				errdetail("Its output plugin is \"%s\".", NameStr(MyReplicationSlot->data.plugin)) :
				errdetail("It is a physical slot."),
				errhint("Drop the slot: the shipper creates its own."));
}

/*
 * Create the slot on first start.  Like pg_create_logical_replication_slot:
 * it waits for transactions running now to finish.
 */
static void
shipper_ensure_slot(void)
{
	LogicalDecodingContext *ctx;

	if (SearchNamedReplicationSlot(REPLKAFKA_SLOT_NAME, true) != NULL)
		return;

	CheckLogicalDecodingRequirements();
	shipper_stop_for_lost_slot();
	StartTransactionCommand();
	ReplicationSlotCreate(REPLKAFKA_SLOT_NAME, true, RS_EPHEMERAL, false);
	ctx = CreateInitDecodingContext(REPLKAFKA_EXTENSION_NAME, NIL, false,
									InvalidXLogRecPtr,
									XL_ROUTINE(.page_read = read_local_xlog_page,
											   .segment_open = wal_segment_open,
											   .segment_close = wal_segment_close),
									NULL, NULL, NULL);
	DecodingContextFindStartpoint(ctx);
	FreeDecodingContext(ctx);
	ReplicationSlotPersist();
	ReplicationSlotRelease();
	CommitTransactionCommand();
	ereport(LOG,
			errmsg("replkafka shipper created replication slot \"%s\"",
				   REPLKAFKA_SLOT_NAME));
}

/*
 * The chunk size: replkafka.chunk_size, unless the producer's
 * "message.max.bytes" (replkafka.kafka_options may lower it) cannot hold
 * a record of that size.
 */
static int
shipper_chunk_size(void)
{
	char		value[64];
	size_t		size = sizeof(value);
	int			limit = REPLKAFKA_MAX_CHUNK_SIZE;

	if (rd_kafka_conf_get(rd_kafka_conf(producer), "message.max.bytes", value,
						  &size) == RD_KAFKA_CONF_OK)
		limit = atoi(value) - REPLKAFKA_RECORD_OVERHEAD;
	if (replkafka_chunk_size > limit)
	{
		ereport(LOG,
				errmsg("replkafka shipper cuts transactions into chunks of %d bytes, not %d",
					   Max(limit, REPLKAFKA_MIN_CHUNK_SIZE), replkafka_chunk_size),
				errdetail("The producer's \"message.max.bytes\" is %s.", value));
		return Max(limit, REPLKAFKA_MIN_CHUNK_SIZE);
	}
	return replkafka_chunk_size;
}

/*
 * Decode forever.  Errors end the worker.
 */
static void
shipper_decode(void)
{
	List	   *options;
	uint32		n = 0;

	options = list_make1(makeDefElem("chunk_size",
									 (Node *) makeString(psprintf("%d", shipper_chunk_size())),
									 -1));

	ReplicationSlotAcquire(REPLKAFKA_SLOT_NAME, true);
	shipper_check_slot();
	decoding_ctx = CreateDecodingContext(InvalidXLogRecPtr, options, false,
										 XL_ROUTINE(.page_read = shipper_read_page,
													.segment_open = wal_segment_open,
													.segment_close = wal_segment_close),
										 shipper_prepare_write,
										 shipper_write,
										 shipper_update_progress);
	replkafka_txn_end_hook = shipper_txn_end;
	confirmed_lsn = MyReplicationSlot->data.confirmed_flush;
	replkafka_shmem_report_acked(confirmed_lsn);

	XLogBeginRead(decoding_ctx->reader, MyReplicationSlot->data.restart_lsn);
	InvalidateSystemCaches();

	for (;;)
	{
		XLogRecord *record;
		char	   *errm = NULL;
		uint64		roles_version;

		/*
		 * The WAL reader keeps its buffers in the memory current as it reads:
		 * the decoding context's, never the transaction's, which ends every
		 * so often, in the middle of a record too (shipper_read_page()).
		 */
		MemoryContextSwitchTo(decoding_ctx->context);
		record = XLogReadRecord(decoding_ctx->reader, &errm);
		if (errm)
			elog(ERROR, "could not find record for logical decoding: %s", errm);

		/*
		 * A partition this node became primary of is recovered before any
		 * record after the role change is decoded: a transaction that passed
		 * the write fence under the new role committed after the change was
		 * published, so its records come after this point.
		 */
		roles_version = pg_atomic_read_u64(&replkafka_shared->roles_version);
		if (roles_version != roles_seen)
		{
			shipper_end_decoding();
			shipper_recover_changed();
		}
		if (record != NULL)
		{
			shipper_begin_decoding();
			LogicalDecodingProcessRecord(decoding_ctx, decoding_ctx->reader);
		}

		CHECK_FOR_INTERRUPTS();
		if (++n % 256 == 0)
		{
			shipper_end_decoding();
			shipper_service(false);
		}
	}
}

/*
 * Start the transaction records are decoded in, unless it is open.
 */
static void
shipper_begin_decoding(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	if (decoding_xact)
		return;
	Assert(!IsTransactionOrTransactionBlock());
	/* pg_stat_activity shows since when */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	MemoryContextSwitchTo(oldcxt);
	decoding_xact = true;
}

/*
 * End the transaction records are decoded in, if open.  Never called while
 * a decoded transaction is replayed: that is a subtransaction of it.
 */
static void
shipper_end_decoding(void)
{
	if (!decoding_xact)
		return;
	Assert(GetCurrentTransactionNestLevel() == 1);
	/* it wrote nothing, and assigned no transaction ID */
	CommitTransactionCommand();
	decoding_xact = false;
}

/*
 * Page reader: like read_local_xlog_page, but waits for WAL on the latch,
 * doing the shipper's periodic work meanwhile.
 */
static int
shipper_read_page(XLogReaderState *state, XLogRecPtr targetPagePtr,
				  int reqLen, XLogRecPtr targetRecPtr, char *cur_page)
{
	while (targetPagePtr + reqLen > GetFlushRecPtr(NULL))
	{
		/*
		 * Caught up.  No decoded transaction is replayed while the WAL is
		 * read, not even in the middle of a record, and what the reader keeps
		 * is not in the transaction's memory.
		 */
		shipper_end_decoding();
		shipper_service(true);
		replkafka_worker_wait(SHIPPER_NAPTIME_MS);
	}
	return read_local_xlog_page(state, targetPagePtr, reqLen, targetRecPtr,
								cur_page);
}

static void
shipper_prepare_write(LogicalDecodingContext *ctx, XLogRecPtr lsn,
					  TransactionId xid, bool last_write)
{
	resetStringInfo(ctx->out);
}

static void
shipper_update_progress(LogicalDecodingContext *ctx, XLogRecPtr lsn,
						TransactionId xid, bool skipped_xact)
{
	rd_kafka_poll(producer, 0);
}

/*
 * A record from the plugin: decide whether it is shipped, stamp its SCN
 * and produce it.
 */
static void
shipper_write(LogicalDecodingContext *ctx, XLogRecPtr lsn, TransactionId xid,
			  bool last_write)
{
	RkmHeader	hdr;
	const char *err;
	ShipperPartition *sp;
	ReplkafkaPartition *part;

	if (!replkafka_message_read_header(ctx->out->data, ctx->out->len, &hdr, &err))
		elog(ERROR, "output plugin wrote an invalid record: %s", err);
	if (hdr.partition >= npartitions)
		elog(ERROR, "output plugin wrote a record for partition %u of %d",
			 hdr.partition, npartitions);
	sp = &partitions[hdr.partition];

	if (hdr.chunk == 0)
	{
		/*
		 * The partition's recovery waits for a HEARTBEAT: the sequence number
		 * of its next transaction is not known before.
		 */
		while (shipper_heartbeat_pending(hdr.partition))
		{
			CHECK_FOR_INTERRUPTS();
			rd_kafka_poll(producer, 100);
			shipper_service(false);
		}

		part = replkafka_partition_state(hdr.partition);
		sp->cur = NULL;
		sp->cur_skip = true;
		sp->cur_history = sp->stale && hdr.commit_lsn <= sp->history_lsn;

		/*
		 * Shipped only in the generation the shipper recovered for: a
		 * transaction decoded when the role has just changed again committed
		 * before the change, so it is not of the new generation
		 * (shipper_recover_changed() recovers before the next record).
		 */
		if (part->role == REPLKAFKA_ROLE_PRIMARY &&
			sp->generation == part->generation)
		{
			if (!sp->stale && hdr.commit_lsn > sp->skip_lsn && sp->next_seq == 0)
				shipper_partition_error(hdr.partition, PG_INT64_MAX,
										"generation %u of the partition has used up its transaction sequence numbers",
										sp->generation);
			if (!sp->stale && hdr.commit_lsn > sp->skip_lsn)
			{
				Shipment   *s = MemoryContextAllocZero(TopMemoryContext,
													   sizeof(Shipment));

				s->partition = hdr.partition;
				s->scn = RKM_SCN(sp->generation, sp->next_seq);
				s->commit_lsn = hdr.commit_lsn;
				s->last_offset = -1;
				sp->next_seq++;
				shipper_check_sequence(hdr.partition);
				/* a stall counts from the oldest record in flight */
				if (dlist_is_empty(&shipments))
					last_ack = GetCurrentTimestamp();
				dlist_push_tail(&shipments, &s->node);
				sp->cur = s;
				sp->cur_skip = false;
			}
		}
		/* not shipped, and not in Kafka either */
		if (sp->cur_skip && hdr.commit_lsn > sp->skip_lsn &&
			(sp->stale || part->role != REPLKAFKA_ROLE_PRIMARY))
		{
			/* a stale primary's, not a rebuild's once the role moved on */
			if (sp->stale && part->role == REPLKAFKA_ROLE_ERROR)
				replkafka_partition_count_orphans(hdr.partition, 1);
			ereport(WARNING,
					errmsg("transaction %u wrote partition %u, of which node \"%s\" is %s; it is not shipped",
						   hdr.xid, hdr.partition, replkafka_node_name,
						   replkafka_role_name(part->role)));
		}
	}

	if (sp->cur_skip || sp->cur == NULL)
		return;

	replkafka_message_set_scn(ctx->out->data, sp->cur->scn);
	shipper_produce(ctx->out->data, ctx->out->len, hdr.partition, sp->cur);
	sp->cur->pending++;
}

/*
 * Hand a record to the producer, waiting while its queue is full.
 */
static void
shipper_produce(const char *data, size_t len, int partition, void *opaque)
{
	for (;;)
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_producev(producer,
								RD_KAFKA_V_RKT(topic_handle),
								RD_KAFKA_V_PARTITION(partition),
								RD_KAFKA_V_VALUE((void *) data, len),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_OPAQUE(opaque),
								RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("could not produce to partition %d of Kafka topic \"%s\": %s",
						   partition, topic_name, rd_kafka_err2str(err)));
		/* back-pressure: serve delivery reports until there is room */
		rd_kafka_poll(producer, 100);
		CHECK_FOR_INTERRUPTS();
		/* a HEARTBEAT is sent in the middle of recovery: no more than that */
		if (opaque != &heartbeat_opaque)
			shipper_service(false);
	}
}

/*
 * End of a decoded transaction: its shipments are complete.
 */
static void
shipper_txn_end(LogicalDecodingContext *ctx, XLogRecPtr end_lsn)
{
	for (int p = 0; p < npartitions; p++)
	{
		ShipperPartition *sp = &partitions[p];

		if (sp->cur)
		{
			sp->cur->end_lsn = end_lsn;
			sp->cur->complete = true;
		}
		if (sp->cur_history)
		{
			/* in Kafka before the foreign record: its commit may say so */
			replkafka_partition_extend_history(p, end_lsn);
		}
		sp->cur = NULL;
		sp->cur_skip = false;
		sp->cur_history = false;
	}
}

/*
 * Delivery report, served by rd_kafka_poll() on this thread.  Never raises
 * errors: it records them for shipper_service().
 */
static void
shipper_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	Shipment   *s = msg->_private;

	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
		message_level_is_interesting(DEBUG2) &&
		rd_kafka_message_latency(msg) >= 0)
	{
		/* no error may leave librdkafka's poll: no interrupt is served */
		HOLD_INTERRUPTS();
		elog(DEBUG2, "partition %d, Kafka offset %lld: acknowledged %.3f ms after it was produced",
			 (int) msg->partition, (long long) msg->offset,
			 rd_kafka_message_latency(msg) / 1000.0);
		RESUME_INTERRUPTS();
	}
	if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		if (delivery_error[0] == '\0')
			snprintf(delivery_error, sizeof(delivery_error),
					 "partition %d: %s", (int) msg->partition,
					 rd_kafka_err2str(msg->err));
		return;
	}
	if (msg->offset < 0)
	{
		/* a success without an offset: where it landed cannot be judged */
		if (delivery_error[0] == '\0')
			snprintf(delivery_error, sizeof(delivery_error),
					 "partition %d: Kafka acknowledged a record without its offset",
					 (int) msg->partition);
		return;
	}
	if (msg->_private == &heartbeat_opaque)
	{
		shipper_heartbeat_acknowledged(msg);
		return;
	}
	if (s == NULL)
		return;
	s->pending--;
	if (msg->offset > s->last_offset)
		s->last_offset = msg->offset;
	last_ack = GetCurrentTimestamp();

	/* Did anybody write between our last record and this one? */
	if (msg->partition >= 0 && msg->partition < npartitions)
	{
		ShipperPartition *sp = &partitions[msg->partition];

		if (sp->expect_offset >= 0 && msg->offset > sp->expect_offset)
		{
			if (sp->check_to <= sp->check_from)
				sp->check_from = sp->expect_offset;
			sp->check_to = msg->offset;
		}
		sp->expect_offset = msg->offset + 1;
	}
}

/*
 * Periodic work: serve delivery reports, advance the confirmed position,
 * write checkpoints and pending role changes, recover partitions that
 * became primary.  With idle, the decoder has caught up with the WAL.
 *
 * Acknowledged records that landed after records of others are read back
 * before their transactions are released: a commit that Kafka holds after
 * another node's NEW_GEN is not part of the cluster's history, and a
 * synchronous commit waiting for it must not take its acknowledgement for
 * a success.
 */
static void
shipper_service(bool idle)
{
	char		reason[512];
	char		stall[128];
	bool		stalled;
	bool		in_xact = IsTransactionOrTransactionBlock();

	rd_kafka_poll(producer, 0);
	if (replkafka_kafka_fatal(producer, reason, sizeof(reason)))
		ereport(ERROR,
				errcode(ERRCODE_CONNECTION_FAILURE),
				errmsg("Kafka producer failed: %s", reason),
				errdetail("The shipper restarts and resumes from what Kafka holds."));
	if (delivery_error[0] != '\0')
		ereport(ERROR,
				errcode(ERRCODE_CONNECTION_FAILURE),
				errmsg("Kafka did not accept a record: %s", delivery_error),
				errdetail("The shipper restarts and resumes from what Kafka holds."));

	/* Judge what others wrote between our records, before releasing. */
	for (int p = 0; p < npartitions; p++)
		if (partitions[p].check_to > partitions[p].check_from)
			shipper_check_range(p);

	/* Pop acknowledged transactions, in order. */
	while (!dlist_is_empty(&shipments))
	{
		Shipment   *s = dlist_head_element(Shipment, node, &shipments);
		ShipperPartition *sp = &partitions[s->partition];
		Shipment   *next;

		if (!s->complete || s->pending > 0)
			break;
		dlist_pop_head_node(&shipments);

		if (RKM_SCN_GENERATION(s->scn) != sp->generation)
		{
			/* of a generation the shipper left: judged when it left it */
		}
		else if (sp->stale && s->last_offset >= sp->orphans_from)
			replkafka_partition_count_orphans(s->partition, 1);
		else
		{
			sp->acked_scn = s->scn;
			sp->acked_lsn = s->commit_lsn;
			sp->acked_offset = s->last_offset;
			sp->dirty = true;
			if (sp->stale)
				replkafka_partition_extend_history(s->partition, s->end_lsn);
			replkafka_partition_report_shipped(s->partition, s->scn,
											   s->last_offset);
		}

		/* the commit is confirmed once all its partitions are */
		next = dlist_is_empty(&shipments) ? NULL :
			dlist_head_element(Shipment, node, &shipments);
		if (next == NULL || next->end_lsn != s->end_lsn)
			confirm = s->end_lsn;
		pfree(s);
	}

	/* Caught up and nothing in flight: everything decoded is done. */
	if (idle && dlist_is_empty(&shipments) && !in_xact)
		confirm = Max(confirm, decoding_ctx->reader->EndRecPtr);

	/* Like a walsender, confirm between transactions only. */
	if (confirm > confirmed_lsn && !in_xact)
	{
		confirmed_lsn = confirm;
		LogicalConfirmReceivedLocation(confirm);
		replkafka_shmem_report_acked(confirm);
	}

	shipper_read_to_heartbeats();

	/* Kafka trouble, or no acknowledgement for a while: show why. */
	stalled = !dlist_is_empty(&shipments) &&
		TimestampDifferenceExceeds(last_ack, GetCurrentTimestamp(), SHIPPER_STALL_MS);
	if (stalled)
		snprintf(stall, sizeof(stall),
				 "Kafka has acknowledged none of the records sent for %d s",
				 SHIPPER_STALL_MS / 1000);
	for (int p = 0; p < npartitions && !stalled; p++)
	{
		stalled = partitions[p].beat_generation != 0 &&
			TimestampDifferenceExceeds(partitions[p].beat_sent,
									   GetCurrentTimestamp(), SHIPPER_STALL_MS);
		if (stalled)
			snprintf(stall, sizeof(stall),
					 "Kafka has not acknowledged for %d s the HEARTBEAT record that partition %d waits for",
					 SHIPPER_STALL_MS / 1000, p);
	}
	replkafka_worker_check_kafka(producer, topic_name, stalled ? stall : NULL);

	/* The rest needs a transaction of our own. */
	if (in_xact)
		return;

	replkafka_worker_reload_config(producer);

	shipper_check_foreign(idle);
	shipper_recover_changed();

	if (pending_errors != NIL ||
		TimestampDifferenceExceeds(last_checkpoint, GetCurrentTimestamp(),
								   SHIPPER_CHECKPOINT_MS))
		shipper_save_state();
}

/*
 * Has a demotion of partition ended its generation and gone without
 * changing the role?  (An error or a cancel after END_GEN in the calling
 * statement, or the session's end.)
 */
static bool
shipper_handover_left(int partition)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	if (part->role != REPLKAFKA_ROLE_PRIMARY || part->ended_generation == 0 ||
		part->ended_generation != part->generation)
		return false;
	/* its last transaction in Kafka is known once the read-back is done */
	if (partitions[partition].beat_generation != 0)
		return false;
	return !part->handover || part->handover_pid == 0 ||
		BackendPidGetProc(part->handover_pid) == NULL;
}

/*
 * Finish the handover a demotion left: its END_GEN may be in Kafka and the
 * fence is closed, so every transaction of the generation is in Kafka;
 * the node becomes a replica after its last one, as demote() does when it
 * cannot confirm its END_GEN.  In the caller's transaction; does nothing
 * if the partition's row is locked (a demotion runs again) or the role
 * changed.
 */
static void
shipper_finish_handover(int partition)
{
	ShipperPartition *sp = &partitions[partition];
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	ReplkafkaConsumerCheckpoint ckpt;
	ReplkafkaRole role;
	uint32		generation;

	if (!replkafka_roles_try_lock(partition, &role, &generation) ||
		role != REPLKAFKA_ROLE_PRIMARY || generation != part->generation)
		return;
	if (RKM_SCN_GENERATION(sp->acked_scn) != generation)
	{
		shipper_partition_error(partition, -1,
								"a demotion ended generation %u and left, but the shipper does not know the generation's last transaction",
								generation);
		return;
	}
	replkafka_catalog_set_role(partition, REPLKAFKA_ROLE_REPLICA, generation, NULL, NULL);
	ckpt.partition = partition;
	ckpt.generation = generation;
	ckpt.scn = sp->acked_scn;
	ckpt.kafka_offset = sp->acked_offset;
	ckpt.ended = false;
	replkafka_catalog_save_consumer_checkpoint(&ckpt);
	replkafka_roles_set_at_commit(partition, REPLKAFKA_ROLE_REPLICA, generation);
	ereport(LOG,
			errmsg("node \"%s\" finishes the handover of partition %d that a demotion left after ending generation %u",
				   replkafka_node_name, partition, generation),
			errdetail("It resumes as a replica after Kafka offset %lld, its transaction %u.",
					  (long long) sp->acked_offset, RKM_SCN_SEQUENCE(sp->acked_scn)));
}

/*
 * Write the producer checkpoints that changed, the roles of partitions
 * found stale, and the handovers left to finish, in a transaction of our
 * own.  Only a primary's checkpoint of its current generation is written:
 * a late one of a generation left behind would overwrite the one
 * promote() wrote.
 */
static void
shipper_save_state(void)
{
	bool		any = pending_errors != NIL;
	List	   *retry = NIL;
	MemoryContext oldcxt;

	last_checkpoint = GetCurrentTimestamp();
	for (int p = 0; p < npartitions && !any; p++)
		any = partitions[p].dirty || shipper_handover_left(p);
	if (!any)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	for (int p = 0; p < npartitions; p++)
	{
		ShipperPartition *sp = &partitions[p];
		ReplkafkaPartition *part = replkafka_partition_state(p);
		ReplkafkaProducerCheckpoint ckpt;

		if (shipper_handover_left(p))
			shipper_finish_handover(p);
		if (!sp->dirty)
			continue;
		sp->dirty = false;
		if (part->role != REPLKAFKA_ROLE_PRIMARY ||
			RKM_SCN_GENERATION(sp->acked_scn) != part->generation)
			continue;
		ckpt.partition = p;
		ckpt.scn = sp->acked_scn;
		ckpt.commit_lsn = sp->acked_lsn;
		ckpt.kafka_offset = sp->acked_offset;
		replkafka_catalog_save_producer_checkpoint(&ckpt);
	}
	while (pending_errors != NIL)
	{
		int			p = linitial_int(pending_errors);

		/* a row another transaction holds is tried again next time */
		if (!replkafka_catalog_set_primary_error(p, partitions[p].generation,
												 replkafka_partition_state(p)->last_error))
		{
			oldcxt = MemoryContextSwitchTo(TopMemoryContext);
			retry = lappend_int(retry, p);
			MemoryContextSwitchTo(oldcxt);
		}
		pending_errors = list_delete_first(pending_errors);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pending_errors = retry;
}

/*
 * Stop shipping a partition: another node wrote to it, or its log cannot
 * go on.  Our transactions that Kafka holds before offset history_before
 * are part of the cluster's history; those after it are not.  The history
 * end is published before the role changes, so that a synchronous commit
 * that sees the role can tell which it is.  Shared memory changes at once,
 * so the write fence refuses writes from now on; the catalog follows
 * outside decoding.
 */
static void
shipper_partition_error(int partition, int64 history_before,
						const char *fmt,...)
{
	ShipperPartition *sp = &partitions[partition];
	char		msg[REPLKAFKA_ERROR_LEN];
	va_list		ap;
	MemoryContext oldcxt;
	XLogRecPtr	history_end = Max(confirmed_lsn, confirm);
	dlist_iter	iter;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* acknowledged, not yet released, and before the foreign record */
	dlist_foreach(iter, &shipments)
	{
		Shipment   *s = dlist_container(Shipment, node, iter.cur);

		if (s->partition == partition && s->complete && s->pending == 0 &&
			s->last_offset < history_before)
			history_end = Max(history_end, s->end_lsn);
	}

	sp->stale = true;
	sp->orphans_from = history_before;
	replkafka_partition_set_stale(partition, sp->generation, history_end, msg);

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	pending_errors = lappend_int(pending_errors, partition);
	MemoryContextSwitchTo(oldcxt);

	ereport(WARNING,
			errmsg("partition %d stops accepting writes on node \"%s\": %s",
				   partition, replkafka_node_name, msg));
}

/*
 * Deadline of asking Kafka about a partition: at least 30s, since the
 * shipper cannot go on without the answer.
 */
static TimestampTz
shipper_read_deadline(void)
{
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
									   SHIPPER_READ_STALL_MS);
}

/*
 * Stop shipping partition if a read-back found where the history of our
 * generation ends: a record another node wrote (it is, or was made,
 * primary), a transaction of ours that Kafka lacks before a later one (no
 * replica can get past the hole), or our own END_GEN while the role is
 * still primary and the generation is not known to be ended (a data
 * directory restored from before the demotion; writes after END_GEN are
 * skipped by every replica).  The
 * scan counted the transactions of ours Kafka holds after that point;
 * those acknowledged later, and those decoded from now on, are counted as
 * they come.  Returns whether it stopped the partition.
 */
static bool
shipper_report_scan(int partition, const LogScan *scan)
{

	if (!scan->foreign && !scan->hole && !scan->ended)
		return false;

	partitions[partition].history_lsn = scan->history_lsn;
	replkafka_partition_count_orphans(partition, scan->orphans);
	if (scan->foreign)
		shipper_partition_error(partition, scan->foreign_offset,
								"another node wrote to the partition: %s; this node's transactions after it are not part of the cluster's history (see orphaned_transactions)",
								scan->foreign_detail);
	else if (scan->hole)
		shipper_partition_error(partition, scan->hole_offset,
								"Kafka lacks transaction %u of generation %u: the record at Kafka offset %lld holds a later one; the partition's log cannot go on in this generation",
								scan->hole_seq, scan->generation,
								(long long) scan->hole_offset);
	else
		shipper_partition_error(partition, scan->ended_offset,
								"this node ended generation %u with an END_GEN record at Kafka offset %lld, but its role was not changed to replica",
								scan->generation, (long long) scan->ended_offset);
	return true;
}

/*
 * Close the fence of partition to new transactions once its generation's
 * sequence numbers are nearly used up (or take the mark away once the
 * generation has numbers left).
 */
static void
shipper_check_sequence(int partition)
{
	ShipperPartition *sp = &partitions[partition];
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	bool		exhausted = sp->next_seq > SHIPPER_SEQUENCE_LIMIT || sp->next_seq == 0;
	uint32		generation = exhausted ? sp->generation : 0;

	if (part->exhausted_generation == generation)
		return;
	replkafka_partition_set_exhausted_generation(partition, generation);
	if (exhausted)
		ereport(WARNING,
				errmsg("partition %d takes no more writes on node \"%s\": generation %u has used up its transaction sequence numbers",
					   partition, replkafka_node_name, sp->generation),
				errhint("Start a new generation: demote the partition, and promote this node or another one."));
}

/*
 * Recover the partitions this node became primary of (or whose generation
 * changed) since the shipper last looked.  Outside a transaction only.
 */
static void
shipper_recover_changed(void)
{
	uint64		version = pg_atomic_read_u64(&replkafka_shared->roles_version);

	if (version == roles_seen || IsTransactionOrTransactionBlock())
		return;

	/*
	 * The generations this node is primary in as the shipper starts: an
	 * earlier run of the shipper may have produced records in them.
	 */
	if (!running)
		for (int p = 0; p < npartitions; p++)
		{
			ReplkafkaPartition *part = replkafka_partition_state(p);

			if (part->role == REPLKAFKA_ROLE_PRIMARY &&
				partitions[p].generation == 0)
				partitions[p].earlier_generation = part->generation;
		}

	roles_seen = version;
	for (int p = 0; p < npartitions; p++)
	{
		ReplkafkaPartition *part = replkafka_partition_state(p);

		if (part->role == REPLKAFKA_ROLE_PRIMARY &&
			partitions[p].generation != part->generation)
			shipper_recover(p);
	}

	/* running once it read back what Kafka holds of its partitions */
	if (!running)
	{
		replkafka_worker_running();
		running = true;
	}
}

/*
 * Make the producer checkpoint of partition's current generation the
 * shipper's starting point, from the catalog unless the shipper has one
 * of that generation already.  False if there is none: promote() writes
 * one with the role, so the catalog does not match the role.
 */
static bool
shipper_load_checkpoint(int partition)
{
	ShipperPartition *sp = &partitions[partition];
	uint32		generation = replkafka_partition_state(partition)->generation;
	ReplkafkaProducerCheckpoint ckpt;
	bool		found;

	if (RKM_SCN_GENERATION(sp->acked_scn) == generation && sp->acked_offset >= 0)
		return true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	found = replkafka_catalog_get_producer_checkpoint(partition, &ckpt);
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (!found || RKM_SCN_GENERATION(ckpt.scn) != generation)
		return false;
	sp->acked_scn = ckpt.scn;
	sp->acked_lsn = ckpt.commit_lsn;
	sp->acked_offset = ckpt.kafka_offset;
	sp->dirty = false;
	return true;
}

/*
 * Learn from Kafka where partition stands in this node's generation: the
 * last sequence number used and the last commit shipped.  Reads every
 * record after the producer checkpoint, which Kafka holds.
 */
static void
shipper_recover(int partition)
{
	ShipperPartition *sp = &partitions[partition];
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	uint32		generation = part->generation;
	TimestampTz deadline;
	LogScan		scan;
	int64		low;
	int64		high;
	ReplkafkaEnded ended;
	bool		earlier = sp->earlier_generation == generation;

	sp->earlier_generation = 0;
	sp->beat_generation = 0;
	sp->generation = generation;
	sp->stale = false;
	sp->expect_offset = -1;
	sp->check_from = sp->check_to = 0;
	if (!shipper_load_checkpoint(partition))
	{
		sp->skip_lsn = InvalidXLogRecPtr;
		sp->history_lsn = InvalidXLogRecPtr;
		shipper_partition_error(partition, -1,
								"this node has no producer checkpoint of generation %u of the partition",
								generation);
		return;
	}

	deadline = shipper_read_deadline();
	replkafka_kafka_watermarks(consumer, topic_name, partition, &low, &high,
							   deadline);
	if (low > sp->acked_offset + 1)
	{
		/* what came after it may have been ours: it cannot be known now */
		sp->skip_lsn = InvalidXLogRecPtr;
		sp->history_lsn = sp->acked_lsn;
		shipper_partition_error(partition, sp->acked_offset + 1,
								"Kafka no longer holds the records after this node's producer checkpoint at offset %lld (the log starts at %lld), so the shipper cannot tell which sequence number comes next",
								(long long) sp->acked_offset, (long long) low);
		return;
	}

	/*
	 * A generation a demotion ended: read at least up to its last
	 * transaction, which the end of the log Kafka reports can be behind (see
	 * demote_read_log()).
	 */
	replkafka_partition_get_ended(partition, &ended);
	if (ended.generation == generation)
		high = Max(high, ended.offset + 1);
	replkafka_logscan_init(&scan, generation, RKM_SCN_SEQUENCE(sp->acked_scn),
						   sp->acked_lsn, sp->acked_offset);
	replkafka_logscan_read_all(&scan, consumer, topic_name, partition,
							   sp->acked_offset + 1, high, SHIPPER_READ_STALL_MS);

	/*
	 * An earlier run of the shipper may have left records of ours in the
	 * leader's log above the high watermark: appended, not yet replicated to
	 * every in-sync replica, so not yet readable, but part of the log once
	 * they are.  Shipping their transactions again would put them in the log
	 * twice.  A HEARTBEAT that Kafka acknowledges (acks=all) has everything
	 * before it in the log replicated: the read goes on up to it.  (A
	 * generation a demotion ended has nothing in flight: it waited for every
	 * acknowledgement.)
	 */
	if (earlier && ended.generation != generation &&
		!scan.foreign && !scan.hole && !scan.ended)
	{
		shipper_send_heartbeat(partition, &scan, Max(high, sp->acked_offset + 1));
		return;
	}
	shipper_recover_finish(partition, &scan, high);
}

/*
 * Write a HEARTBEAT to partition, whose recovery read the log up to from
 * with scan: shipper_read_to_heartbeats() goes on with it once Kafka
 * acknowledged the HEARTBEAT, and until then the partition's transactions
 * wait (shipper_write()).  Its SCN is the last transaction of ours the
 * scan found.
 */
static void
shipper_send_heartbeat(int partition, const LogScan *scan, int64 from)
{
	ShipperPartition *sp = &partitions[partition];
	StringInfoData record;

	sp->beat_generation = scan->generation;
	sp->beat_offset = -1;
	sp->beat_from = from;
	sp->beat_scan = *scan;
	sp->beat_sent = GetCurrentTimestamp();

	initStringInfo(&record);
	replkafka_message_write_control(&record, RKM_HEARTBEAT, partition,
									RKM_SCN(scan->generation, scan->seq),
									GetXLogInsertRecPtr(),
									sp->beat_sent + RKM_UNIX_EPOCH_OFFSET,
									replkafka_node_name);
	shipper_produce(record.data, record.len, partition, &heartbeat_opaque);
	pfree(record.data);
}

/*
 * Delivery report of a HEARTBEAT: note its offset if a recovery waits for
 * it (not one a later recovery of the partition gave up).
 */
static void
shipper_heartbeat_acknowledged(const rd_kafka_message_t *msg)
{
	RkmHeader	hdr;
	const char *err;
	ShipperPartition *sp;

	if (msg->partition < 0 || msg->partition >= npartitions ||
		!replkafka_message_read_header(msg->payload, msg->len, &hdr, &err))
		return;
	sp = &partitions[msg->partition];
	if (sp->beat_generation == RKM_SCN_GENERATION(hdr.scn))
		sp->beat_offset = msg->offset;
}

/*
 * Does the recovery of partition wait for a HEARTBEAT?  Not once the node
 * is no longer primary in that generation: nothing is shipped in it.
 */
static bool
shipper_heartbeat_pending(int partition)
{
	ShipperPartition *sp = &partitions[partition];
	ReplkafkaPartition *part = replkafka_partition_state(partition);

	if (sp->beat_generation != 0 &&
		(part->role != REPLKAFKA_ROLE_PRIMARY ||
		 part->generation != sp->beat_generation))
		sp->beat_generation = 0;
	return sp->beat_generation != 0;
}

/*
 * Finish the recoveries whose HEARTBEAT Kafka acknowledged: read on up to
 * it.
 */
static void
shipper_read_to_heartbeats(void)
{
	for (int p = 0; p < npartitions; p++)
	{
		ShipperPartition *sp = &partitions[p];
		LogScan		scan;
		int64		to;

		if (!shipper_heartbeat_pending(p) || sp->beat_offset < 0)
			continue;
		scan = sp->beat_scan;
		to = sp->beat_offset + 1;
		replkafka_logscan_read_all(&scan, consumer, topic_name, p,
								   sp->beat_from, to, SHIPPER_READ_STALL_MS);
		sp->beat_generation = 0;
		shipper_recover_finish(p, &scan, Max(sp->beat_from, to));
	}
}

/*
 * The end of the recovery of partition: scan read the log of its
 * generation from the producer checkpoint up to high.
 */
static void
shipper_recover_finish(int partition, const LogScan *scan, int64 high)
{
	ShipperPartition *sp = &partitions[partition];
	uint32		generation = sp->generation;
	ReplkafkaEnded ended;

	/* what Kafka holds of ours is not shipped again, history or not */
	sp->skip_lsn = scan->commit_lsn;
	replkafka_partition_get_ended(partition, &ended);
	if (replkafka_logscan_handed_over(scan, ended.generation, ended.seq))
	{
		/*
		 * Its END_GEN is in Kafka or may still land:
		 * shipper_finish_handover() makes this node a replica after its last
		 * transaction, as demote() would have, whatever came after it.
		 */
		sp->acked_scn = RKM_SCN(generation, scan->seq);
		sp->acked_lsn = scan->commit_lsn;
		sp->acked_offset = scan->offset;
		sp->next_seq = scan->seq + 1;
		return;
	}
	if (ended.generation == generation && !scan->hole && scan->orphans == 0)
	{
		shipper_partition_error(partition, -1,
								"a demotion ended generation %u after transaction %u, but Kafka holds transaction %u of this node last",
								generation, ended.seq, scan->seq);
		return;
	}
	if (shipper_report_scan(partition, scan))
		return;

	sp->expect_offset = high;
	sp->last_check = GetCurrentTimestamp();
	sp->next_seq = scan->seq + 1;
	shipper_check_sequence(partition);

	/* the last transaction of ours Kafka holds, checked: the new checkpoint */
	if (scan->offset > sp->acked_offset)
	{
		sp->acked_scn = RKM_SCN(generation, scan->seq);
		sp->acked_lsn = scan->commit_lsn;
		sp->acked_offset = scan->offset;
		sp->dirty = true;
	}
	replkafka_partition_report_shipped(partition, RKM_SCN(generation, scan->seq),
									   scan->offset);
	ereport(LOG,
			errmsg("replkafka shipper resumes partition %d of generation %u at sequence %u",
				   partition, generation, sp->next_seq),
			errdetail("Kafka holds the transactions committed up to %X/%X.",
					  LSN_FORMAT_ARGS(scan->commit_lsn)));
}

/*
 * Read back the records others wrote to partition between our own, and
 * stop shipping it if one is foreign.
 */
static void
shipper_check_range(int partition)
{
	ShipperPartition *sp = &partitions[partition];
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	LogScan		scan;
	int64		from = sp->check_from;
	int64		to = sp->check_to;

	sp->check_from = sp->check_to = 0;
	if (part->role != REPLKAFKA_ROLE_PRIMARY || sp->stale ||
		sp->generation != part->generation ||
		part->ended_generation == sp->generation)
		return;

	/*
	 * Our own records, if the range holds any, say nothing new (no sequence
	 * is above PG_UINT32_MAX); our END_GEN would be a demotion's, whose
	 * partitions are skipped above.  The history's end comes from the
	 * shipments (shipper_partition_error()).
	 */
	replkafka_logscan_init(&scan, sp->generation, PG_UINT32_MAX,
						   InvalidXLogRecPtr, -1);
	replkafka_logscan_read_all(&scan, consumer, topic_name, partition, from,
							   to, SHIPPER_READ_STALL_MS);
	(void) shipper_report_scan(partition, &scan);
}

/*
 * Stale-primary detection at run time.  Records that others wrote to a
 * partition this node is primary of show up as a gap in the offsets of our
 * acknowledged records (shipper_dr_cb() notes the range, which
 * shipper_service() reads back before releasing the commits after it),
 * or, while we write nothing, as a log that grows: looked at here every
 * SHIPPER_CHECK_MS when idle.
 */
static void
shipper_check_foreign(bool idle)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!idle)
		return;
	for (int p = 0; p < npartitions; p++)
	{
		ShipperPartition *sp = &partitions[p];
		ReplkafkaPartition *part = replkafka_partition_state(p);
		bool		in_flight = false;
		dlist_iter	iter;
		int64		low;
		int64		high;

		if (part->role != REPLKAFKA_ROLE_PRIMARY || sp->stale ||
			sp->generation != part->generation || sp->expect_offset < 0 ||
			part->ended_generation == sp->generation ||
			!TimestampDifferenceExceeds(sp->last_check, now, SHIPPER_CHECK_MS))
			continue;

		sp->last_check = now;
		dlist_foreach(iter, &shipments)
		{
			Shipment   *s = dlist_container(Shipment, node, iter.cur);

			if (s->partition == p)
				in_flight = true;
		}
		if (in_flight)
			continue;
		replkafka_kafka_watermarks(consumer, topic_name, p, &low, &high,
								   TimestampTzPlusMilliseconds(now, replkafka_request_timeout));
		if (high > sp->expect_offset)
		{
			sp->check_from = sp->expect_offset;
			sp->check_to = high;
			sp->expect_offset = high;
			shipper_check_range(p);
		}
	}
}
