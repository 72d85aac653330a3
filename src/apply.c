/*-------------------------------------------------------------------------
 *
 * apply.c
 *		The apply workers: apply each replica partition's log from Kafka,
 *		exactly once, through the executor.
 *
 * Each node runs replkafka.apply_workers apply workers; worker i applies
 * the partitions p this node is replica of with p % apply_workers = i.
 * Partitions are independent, so the workers apply in parallel, and a
 * partition in error stops alone.
 *
 * OFFSETS AND DURABILITY
 * ----------------------
 * A worker consumes by manual assignment, starting each partition right
 * after the Kafka offset of its consumer checkpoint (from the start of the
 * log for a partition never applied), with auto.offset.reset=error: if
 * Kafka no longer holds that offset the partition goes to error, never
 * skipping records silently.  Nothing is committed to Kafka.
 *
 * Every transaction from Kafka is applied in a local transaction, which
 * also updates the partition's row in replkafka.consumer_checkpoints
 * (generation, SCN, Kafka offset).  Rows and checkpoint are kept or lost
 * together, so the local transaction may commit asynchronously: after a
 * crash the worker starts again from the checkpoint that survived.
 *
 * GROUPS
 * ------
 * When more records are queued already (a worker catching up), up to
 * APPLY_GROUP_TXNS transactions, of any of its partitions, are applied in
 * one local transaction, a group, which writes the checkpoint of each
 * partition once and commits once.  Nothing about them is published (what
 * was applied, a promotion's progress) before the group commits.  The
 * group commits once nothing more is queued, when it is full, and before
 * anything that takes a transaction of its own or changes a checkpoint
 * otherwise (a generation's start or end, an error).  A group that fails
 * is rolled back whole, and its partitions are applied again from their
 * checkpoints a transaction at a time, so that a transaction that fails
 * alone is reported, stopped or retried as itself.
 *
 * THE RULES
 * ---------
 * What a worker does with each record is decided by the apply rules of
 * rules.c (replays skipped, sequence gaps and records of generations no
 * NEW_GEN started stop the partition, zombie writes skipped and counted, a
 * chunked transaction applied once all its chunks arrived); the worker
 * acts and tells rules.c what took effect.  Rule 5 is the worker's: only
 * replicated tables are written, and only rows of the record's partition;
 * anything else puts the partition in error.
 *
 * The chunks of a transaction are collected in a temporary file and the
 * transaction is applied from it record by record, so that a worker's
 * memory does not grow with the size of a transaction.
 *
 * Once this node's own NEW_GEN wins a promotion, the worker applies
 * nothing more of the partition, records fetched already included: from
 * there on they are the node's own.
 *
 * ORIGINS
 * -------
 * The worker's session carries the replication origin
 * "replkafka_apply_<i>", so the changes it applies are marked with it and
 * the node's own shipper never ships them again.  It writes with
 * session_replication_role = replica, so the write fence does not fire.
 * Each change is applied as the owner of its table, so that what the
 * owner's code does on the table (triggers that fire ALWAYS or on
 * REPLICA, defaults, constraints) runs with the owner's privileges.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "rewrite/rewriteHandler.h"
#include "storage/buffile.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "apply.h"
#include "catalog.h"
#include "kafka.h"
#include "message.h"
#include "partition.h"
#include "promotion.h"
#include "roles.h"
#include "rules.h"
#include "settings.h"
#include "shmem.h"
#include "table.h"
#include "worker.h"

/* Longest sleep when nothing arrives (1s). */
#define APPLY_NAPTIME_MS		1000

/* Records handled before looking at interrupts and role changes. */
#define APPLY_BATCH				1000

/*
 * Most transactions from Kafka, and most bytes of their bodies, applied
 * together in one local transaction (a group) when they are queued already.
 */
#define APPLY_GROUP_TXNS		100
#define APPLY_GROUP_BYTES		(1024 * 1024)

/* How often a worker busy applying publishes its lag (100 ms). */
#define APPLY_LAG_PUBLISH_MS	100

/*
 * After an error that passes by itself, a partition is applied again after
 * a pause that doubles from one failure to the next, within these bounds.
 */
#define APPLY_RETRY_MIN_MS		100
#define APPLY_RETRY_MAX_MS		10000

/* Longest wait for the consumer to move to the offset a retry starts at. */
#define APPLY_SEEK_TIMEOUT_MS	10000

/*
 * Least time between two changes of the consumer's assignment (200 ms).
 * Each change stops the fetchers of the partitions it replaces, and
 * librdkafka 2.0 fails an assertion (aborting the server process) if the
 * next change stops a partition again before the first stop completed,
 * which takes the consumer's threads a moment: role changes in quick
 * succession (follow() of one partition after another) are gathered into
 * one change instead.
 */
#define APPLY_ASSIGN_INTERVAL_MS	200

/* What a worker knows of one partition. */
typedef struct ApplyPartition
{
	bool		assigned;		/* this worker applies it */
	bool		positioned;		/* ...and the consumer reads it from
								 * next_offset */
	bool		stopped;		/* in error: no longer consumed */
	bool		retrying;		/* waits to be tried again: its records are
								 * ignored until then */
	TimestampTz seek_after;		/* retrying: the consumer could not move back
								 * yet; not before this */
	RulesState	rules;			/* what the apply rules know of it */
	int64		next_offset;	/* next record to read */
	int64		ckpt_offset;	/* Kafka offset in the checkpoint row */
	TimestampTz lag_published;	/* when its lag was last published */
	uint64		lag_wait;		/* ...after how many waits of the worker */
	bool		catchup_noted;	/* the log end at take-up is published */

	/* the chunks of the transaction being collected (rules.collecting) */
	BufFile    *coll_file;
	uint64		coll_len;
} ApplyPartition;

/*
 * The last transaction of a partition in the group being applied: its
 * checkpoint is written, and what was applied published, when the group
 * commits.
 */
typedef struct ApplyGrouped
{
	bool		member;			/* the group holds a transaction of it */
	uint64		scn;
	int64		offset;
	TimestampTz commit_time;
} ApplyGrouped;

/*
 * The body of a transaction: in memory (a record that holds it whole), or
 * in the temporary file its chunks were collected in.
 */
typedef struct ApplyBody
{
	const char *data;
	uint64		len;
	BufFile    *file;			/* if not NULL, holds the len bytes */
} ApplyBody;

/* Reads the body records of an ApplyBody one by one. */
typedef struct ApplyBodyReader
{
	RkmReader	reader;
	const ApplyBody *body;
	uint64		pos;			/* in the file: start of the next record */
	StringInfoData record;		/* in the file: the record read */
} ApplyBodyReader;

/*
 * How the columns of a relation definition map to a local table: kept
 * from one transaction to the next while the definition and the table stay
 * the same.
 */
typedef struct ApplyRelMap
{
	MemoryContext cxt;			/* holds the map */
	char	   *schema;
	char	   *table;
	Oid			relid;
	bool		valid;			/* false after an invalidation */
	int			nremote;		/* columns sent */
	char	  **names;			/* their names and types, as sent */
	char	  **types;
	uint8	   *flags;
	AttrNumber *attnum;			/* local attribute number of each */
	FmgrInfo   *infunc;
	Oid		   *ioparam;
	int32	   *typmod;
	bool	   *key;			/* remote column is a primary key column */
	bool	   *sent;			/* by local attribute number - 1 */
} ApplyRelMap;

/* A relation defined in the transaction being applied. */
typedef struct ApplyRelation
{
	MemoryContext cxt;			/* holds all of it, deleted at close */
	char	   *name;			/* schema.table, for error context */
	Relation	rel;
	Oid			pkindex;
	ApplyRelMap *map;			/* how its columns map to the table */
	ReplkafkaTableWriter w;		/* writes it */
	TupleTableSlot *localslot;
	TupleTableSlot *newslot;
	TupleTableSlot *keyslot;
	ExprState **defaults;		/* by attribute number - 1, once needed */
} ApplyRelation;

/* Context of an error while applying, for errcontext. */
typedef struct ApplyErrorContext
{
	int			partition;
	int64		offset;
	uint64		scn;
	char		origin[RKM_MAX_ORIGIN + 1]; /* a copy: a group commits after
											 * the record is gone */
	const char *relation;
} ApplyErrorContext;

PGDLLEXPORT void replkafka_apply_main(Datum main_arg);

static void apply_exit(int code, Datum arg);
static void apply_setup_origin(void);
static void apply_refresh_assignment(bool force);
static bool apply_load_partition(int p);
static void apply_consume(rd_kafka_message_t *msg);
static void apply_handle_message(rd_kafka_message_t *msg);
static void apply_record(int p, int64 offset, const char *data, size_t len);
static bool apply_verdict(int p, int64 offset, const RkmHeader *hdr,
						  const RulesResult *res, const ApplyBody *body);
static void apply_collect(int p, int64 offset, const RkmHeader *hdr,
						  const char *body);
static void apply_discard_collected(ApplyPartition *ap);
static void apply_exit_for_temp_files(void) pg_attribute_noreturn();
static void apply_count_zombie(int p);
static void apply_end_generation(int p, int64 offset, const RkmHeader *hdr);
static void apply_new_generation(int p, int64 offset, const RkmHeader *hdr);
static bool apply_joins_group(int p, int64 offset, const RulesResult *res,
							  uint64 body_len);
static bool apply_flush_group(void);
static bool apply_flush_group_before(int p);
static void apply_group_failed(ErrorData *edata, int p, int64 offset);
static bool apply_transaction(int p, int64 offset, const RkmHeader *hdr,
							  const ApplyBody *body);
static void apply_body(const ApplyBody *body);
static RkmReadResult apply_next_record(ApplyBodyReader *br, RkmRecord *rec);
static void apply_read_file(BufFile *file, char *buf, size_t len);
static ApplyRelation *apply_open_relation(const RkmRecord *rec);
static Oid	apply_lock_table(const char *schema, const char *table);
static void apply_not_replicated(const char *schema, const char *table) pg_attribute_noreturn();
static void apply_check_name(const char *name, const char *what);
static ApplyRelMap *apply_relmap(const RkmRecord *rec, Oid relid);
static void apply_relmap_invalidate(Datum arg, Oid relid);
static void apply_relmap_prune(void);
static void apply_close_relation(ApplyRelation *ar);
static void apply_fill_slot(ApplyRelation *ar, TupleTableSlot *slot,
							const RkmValue *values, bool key_only);
static void apply_fill_defaults(ApplyRelation *ar, TupleTableSlot *slot);
static void apply_find(ApplyRelation *ar, const RkmValue *key, const char *what);
static void apply_check_partition(ApplyRelation *ar, TupleTableSlot *slot);
static void apply_change(ApplyRelation *ar, const RkmRecord *rec);
static void apply_partition_error(int p, int sqlerrcode, const char *fmt,...) pg_attribute_printf(3, 4);
static void apply_partition_failed(int p, ErrorData *edata, const char *what);
static void apply_past_retention(int p);
static void apply_partition_retry(int p, int sqlerrcode, const char *msg);
static bool apply_retry_due(int p, long *wait_ms);
static void apply_retry_partitions(void);
static long apply_naptime(void);
static void apply_save_positions(void);
static void apply_publish_lag(int p, int64 next, bool received);
static void apply_trace_hops(int p, int64 offset, TimestampTz commit_time);
static void apply_update_lag(void);
static void apply_error_callback(void *arg);
static void apply_release_partition(int p);
static void apply_unassign(int p);

static int	worker_index;
static char *topic_name = NULL;
static int	npartitions = 0;
static ApplyPartition *parts = NULL;
static ReplkafkaRole *roles_seen = NULL;
static rd_kafka_t *consumer = NULL;

/* When the consumer's assignment last changed, and whether it is due to. */
static TimestampTz assigned_at = 0;
static bool assign_pending = false;

/*
 * The worker exits at once (to remove a temporary file it cannot close):
 * the consumer's assignment must not change right before it is destroyed,
 * which librdkafka 2.0 does not survive.
 */
static bool exiting = false;

/* The message being handled, destroyed on exit if a FATAL cut it short. */
static rd_kafka_message_t *current_msg = NULL;
static TimestampTz current_received;	/* when current_msg was polled */
static MemoryContext ApplyContext = NULL;
static MemoryContext ApplyMessageContext = NULL;
static ApplyErrorContext errctx;

/* Column maps of the relations seen, in ApplyContext. */
static List *relmaps = NIL;
static bool relmap_callback_registered = false;

/* The relations of the transaction being applied, by relation number. */
static ApplyRelation **relations = NULL;
static int	nrelations = 0;

/*
 * The group: transactions applied in the local transaction still open, and
 * by partition its last one.  A partition whose transactions failed
 * together is applied a transaction at a time up to the offset in
 * alone_until (kept apart: taking the partition up again clears parts[]).
 */
static int	group_txns = 0;
static uint64 group_bytes = 0;
static ApplyGrouped *grouped = NULL;
static int64 *alone_until = NULL;

/* How many times the worker waited for records: see apply_handle_message() */
static uint64 waits = 0;

/*
 * Register the apply workers; called from _PG_init while preloading.
 */
void
replkafka_apply_register(void)
{
	if (IsBinaryUpgrade)
		return;
	for (int i = 0; i < replkafka_apply_workers; i++)
		replkafka_worker_register("replkafka apply worker",
								  "replkafka_apply_main", i);
}

/*
 * The apply worker that applies partition: partitions are dealt to the
 * workers in turn.
 */
int
replkafka_apply_worker_of(int partition)
{
	return partition % replkafka_apply_workers;
}

/*
 * Entry point of apply worker main_arg.
 */
void
replkafka_apply_main(Datum main_arg)
{
	rd_kafka_queue_t *queue;

	worker_index = DatumGetInt32(main_arg);
	replkafka_worker_connect("replkafka apply worker",
							 REPLKAFKA_APPLY_SLOT(worker_index));
	before_shmem_exit(apply_exit, (Datum) 0);

	replkafka_worker_write_as_replica();

	ApplyContext = AllocSetContextCreate(TopMemoryContext, "replkafka apply",
										 ALLOCSET_DEFAULT_SIZES);
	ApplyMessageContext = AllocSetContextCreate(ApplyContext, "replkafka apply message",
												ALLOCSET_DEFAULT_SIZES);

	/* Role changes and the cluster's creation wake us. */
	replkafka_shmem_set_apply_latch(worker_index, MyLatch);

	replkafka_worker_wait_for_cluster(&topic_name, &npartitions);
	apply_setup_origin();

	parts = MemoryContextAllocZero(ApplyContext, npartitions * sizeof(ApplyPartition));
	roles_seen = MemoryContextAllocZero(ApplyContext, npartitions * sizeof(ReplkafkaRole));
	grouped = MemoryContextAllocZero(ApplyContext, npartitions * sizeof(ApplyGrouped));
	alone_until = MemoryContextAlloc(ApplyContext, npartitions * sizeof(int64));
	for (int p = 0; p < npartitions; p++)
		alone_until[p] = -1;
	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_CONSUMER, NULL);
	queue = rd_kafka_queue_get_consumer(consumer);
	replkafka_worker_wakeup_init(consumer, queue);
	rd_kafka_queue_destroy(queue);

	ereport(LOG,
			errmsg("replkafka apply worker %d started for topic \"%s\"",
				   worker_index, topic_name));

	apply_refresh_assignment(true);
	replkafka_worker_running();
	for (;;)
	{
		int			n = 0;
		rd_kafka_message_t *msg;

		while (n++ < APPLY_BATCH &&
			   (msg = rd_kafka_consumer_poll(consumer, 0)) != NULL)
		{
			apply_consume(msg);
			MemoryContextReset(ApplyMessageContext);
			CHECK_FOR_INTERRUPTS();
			/* a busy worker honours a new lock_timeout too */
			if (ConfigReloadPending)
			{
				(void) apply_flush_group();
				replkafka_worker_reload_config(consumer);
			}
		}

		/* nothing more queued, or time to look around: commit the group */
		(void) apply_flush_group();
		apply_refresh_assignment(false);
		apply_retry_partitions();
		apply_update_lag();
		replkafka_worker_check_kafka(consumer, topic_name, NULL);
		if (n <= APPLY_BATCH)
		{
			/* caught up */
			apply_save_positions();
			pgstat_report_stat(true);
			replkafka_worker_reload_config(consumer);
			replkafka_worker_wait(apply_naptime());
			waits++;
		}
	}
}

/*
 * Destroy the consumer on exit.  Nothing needs flushing: positions are in
 * the catalog, and the consumer is in no group, so it need not leave one.
 * A message a FATAL error cut short must be destroyed first, or
 * rd_kafka_destroy() would wait for it forever.
 */
static void
apply_exit(int code, Datum arg)
{
	/* an error may have left it held: nothing aborted the transaction yet */
	LWLockReleaseAll();
	if (replkafka_shared && worker_index >= 0)
	{
		replkafka_shmem_set_apply_latch(worker_index, NULL);
		replkafka_shmem_release_applying(MyProcPid);
	}
	if (current_msg)
		rd_kafka_message_destroy(current_msg);
	current_msg = NULL;
	if (consumer)
	{
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
		consumer = NULL;
	}
}

/*
 * Mark everything this worker applies with its replication origin.
 */
static void
apply_setup_origin(void)
{
	char		name[NAMEDATALEN];
	RepOriginId origin;

	snprintf(name, sizeof(name), "%s_apply_%d", REPLKAFKA_EXTENSION_NAME,
			 worker_index);
	StartTransactionCommand();
	origin = replorigin_by_name(name, true);
	if (origin == InvalidRepOriginId)
		origin = replorigin_create(name);
	CommitTransactionCommand();
	replorigin_session_setup(origin);
	replorigin_session_origin = origin;
}

/*
 * Read a partition's state from the catalog: checkpoint, and the node
 * that started its current generation.
 */
static bool
apply_load_partition(int p)
{
	ApplyPartition *ap = &parts[p];
	ReplkafkaConsumerCheckpoint ckpt;
	char	   *origin;

	/* a bootstrap that began since the role was read keeps it */
	if (!replkafka_partition_set_applying(p, true))
		return false;
	apply_discard_collected(ap);
	memset(ap, 0, sizeof(ApplyPartition));
	replkafka_rules_init(&ap->rules, p);
	/* never applied: from offset 0, which Kafka must still hold */
	ap->next_offset = 0;
	ap->ckpt_offset = -1;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (replkafka_catalog_get_consumer_checkpoint(p, &ckpt))
	{
		ap->rules.generation = ckpt.generation;
		ap->rules.gen_ended = ckpt.ended;
		ap->rules.last_scn = ckpt.scn;
		ap->next_offset = ckpt.kafka_offset + 1;
		ap->ckpt_offset = ckpt.kafka_offset;
		origin = ckpt.generation > 0 ?
			replkafka_catalog_generation_origin(p, ckpt.generation) : NULL;
		if (origin)
			strlcpy(ap->rules.gen_origin, origin, sizeof(ap->rules.gen_origin));
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	ap->assigned = true;
	ap->positioned = false;

	replkafka_partition_report_taken_up(p, ap->rules.generation,
										ap->next_offset, ap->rules.last_scn,
										ap->ckpt_offset);
	return true;
}

/*
 * Apply the partitions this node is replica of that belong to this
 * worker; assign them to the consumer when the set changed.
 */
static void
apply_refresh_assignment(bool force)
{
	bool		changed = force;
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t err;
	static ReplkafkaRole *roles = NULL;
	static ReplkafkaPromoteState *promoting = NULL;

	if (roles == NULL)
	{
		roles = MemoryContextAlloc(ApplyContext, npartitions * sizeof(ReplkafkaRole));
		promoting = MemoryContextAlloc(ApplyContext,
									   npartitions * sizeof(ReplkafkaPromoteState));
	}

	/* a role and a promotion's state change together: read them so */
	LWLockAcquire(replkafka_shared->lock, LW_SHARED);
	for (int p = 0; p < npartitions; p++)
	{
		roles[p] = replkafka_partition_state(p)->role;
		promoting[p] = replkafka_partition_state(p)->promotion.state;
	}
	LWLockRelease(replkafka_shared->lock);

	for (int p = 0; p < npartitions; p++)
	{
		ReplkafkaRole role = roles[p];
		bool		want;

		want = replkafka_promotion_applies(role, promoting[p]) &&
			replkafka_apply_worker_of(p) == worker_index &&
			(parts[p].assigned || apply_retry_due(p, NULL));

		if (role != roles_seen[p])
			changed = true;
		roles_seen[p] = role;
		if (want && !parts[p].assigned)
		{
			if (apply_load_partition(p))
				changed = true;
		}
		else if (!want && parts[p].assigned)
		{
			apply_unassign(p);
			apply_discard_collected(&parts[p]);
			changed = true;
		}
	}
	if (!changed && !assign_pending)
		return;
	if (!TimestampDifferenceExceeds(assigned_at, GetCurrentTimestamp(),
									APPLY_ASSIGN_INTERVAL_MS))
	{
		/* the records of a partition not positioned yet are ignored */
		assign_pending = true;
		return;
	}

	list = rd_kafka_topic_partition_list_new(npartitions);
	for (int p = 0; p < npartitions; p++)
	{
		ApplyPartition *ap = &parts[p];

		if (!ap->assigned || ap->stopped)
			continue;
		rd_kafka_topic_partition_list_add(list, topic_name, p)->offset = ap->next_offset;
		ap->positioned = true;
	}
	err = rd_kafka_assign(consumer, list);
	rd_kafka_topic_partition_list_destroy(list);
	assigned_at = GetCurrentTimestamp();
	assign_pending = false;
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(ERROR,
				errcode(ERRCODE_CONNECTION_FAILURE),
				errmsg("could not assign partitions of Kafka topic \"%s\": %s",
					   topic_name, rd_kafka_err2str(err)));
}

/*
 * Handle a message and destroy it, whatever happens.
 */
static void
apply_consume(rd_kafka_message_t *msg)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ApplyMessageContext);

	current_msg = msg;
	current_received = GetCurrentTimestamp();
	PG_TRY();
	{
		apply_handle_message(msg);
	}
	PG_CATCH();
	{
		current_msg = NULL;
		rd_kafka_message_destroy(msg);
		PG_RE_THROW();
	}
	PG_END_TRY();
	current_msg = NULL;
	rd_kafka_message_destroy(msg);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * One message from the consumer: a record, or an error about a partition.
 */
static void
apply_handle_message(rd_kafka_message_t *msg)
{
	int			p = msg->partition;
	ApplyPartition *ap;

	if (msg->err)
	{
		/* what follows may take a transaction of its own */
		(void) apply_flush_group();
		if ((msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
			 msg->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) &&
			p >= 0 && p < npartitions && parts[p].assigned &&
			parts[p].positioned)
			apply_past_retention(p);
		else
		{
			/* the topic is gone, access was revoked...: see if Kafka answers */
			replkafka_kafka_note_error(msg->err, rd_kafka_message_errstr(msg));
			ereport(DEBUG1,
					errmsg_internal("Kafka consumer: %s", rd_kafka_message_errstr(msg)));
		}
		return;
	}
	if (p < 0 || p >= npartitions)
		return;
	ap = &parts[p];
	if (!ap->assigned || !ap->positioned || ap->stopped || ap->retrying ||
		msg->offset < ap->next_offset)
		return;
	/* fetched before this node became primary: its own records now */
	if (replkafka_partition_state(p)->role == REPLKAFKA_ROLE_PRIMARY)
		return;

	/*
	 * Publish the lag now and then before applying too, and always before the
	 * first record since the take-up and the first since the worker waited: a
	 * record that waits for a lock, or a long transaction, shows as lag
	 * meanwhile.  Not past a transaction of the group, which has not
	 * committed: the group publishes as it commits.
	 */
	if (!grouped[p].member &&
		(!ap->catchup_noted || ap->lag_wait != waits ||
		 TimestampDifferenceExceeds(ap->lag_published, GetCurrentTimestamp(),
									APPLY_LAG_PUBLISH_MS)))
	{
		ap->lag_wait = waits;
		apply_publish_lag(p, msg->offset, true);
	}
	ap->next_offset = msg->offset + 1;
	apply_record(p, msg->offset, msg->payload, msg->len);

	/*
	 * A promotion learns how far the worker read, unless it must read again,
	 * or a transaction of the partition waits for its group to commit (then
	 * the commit tells it).
	 */
	if (ap->assigned && !ap->retrying && !grouped[p].member)
		replkafka_promotion_progress(p, ap->next_offset);
}

/*
 * A record of partition p at offset: ask the rules what to do, do it, and
 * tell the rules what took effect.
 */
static void
apply_record(int p, int64 offset, const char *data, size_t len)
{
	ApplyPartition *ap = &parts[p];
	RkmHeader	hdr;
	const char *err;
	RulesResult res;
	ApplyBody	body;

	if (!replkafka_message_read_header(data, len, &hdr, &err))
	{
		if (!apply_flush_group_before(p))
			return;
		apply_partition_error(p, ERRCODE_PROTOCOL_VIOLATION,
							  "the record at Kafka offset %lld is malformed: %s",
							  (long long) offset, err);
		return;
	}
	replkafka_rules_judge(&ap->rules, offset, &hdr, &res);

	/*
	 * Anything but a transaction that may join the group, or a record that
	 * needs no transaction, is acted on once the group committed.  If the
	 * group failed instead, the partition may be read again from its
	 * checkpoint: so is this record.  (The rules judged it from a state that
	 * the commit does not change.)
	 */
	if (group_txns > 0 &&
		!apply_joins_group(p, offset, &res,
						   hdr.body_len + (res.collected ? ap->coll_len : 0)) &&
		!apply_flush_group_before(p))
		return;

	if (res.discard)
	{
		ereport(LOG,
				errmsg("partition %d: discarding incomplete transaction %X/%X (%u chunks) at Kafka offset %lld",
					   p, (uint32) (ap->rules.coll_scn >> 32),
					   (uint32) ap->rules.coll_scn, ap->rules.coll_next,
					   (long long) offset));
		apply_discard_collected(ap);
	}

	body.data = data + RKM_HEADER_SIZE + strlen(hdr.origin);
	body.len = hdr.body_len;
	body.file = NULL;
	if (res.verdict == RULES_COLLECT || res.collected)
	{
		apply_collect(p, offset, &hdr, body.data);
		body.data = NULL;
		body.len = ap->coll_len;
		body.file = ap->coll_file;
	}

	if (!apply_verdict(p, offset, &hdr, &res, &body))
		return;					/* the partition stopped */
	replkafka_rules_accept(&ap->rules, &hdr, &res);
	if (res.collected)
		apply_discard_collected(ap);
}

/*
 * Act on what the rules said of a record.  Returns false if the partition
 * stopped.
 */
static bool
apply_verdict(int p, int64 offset, const RkmHeader *hdr,
			  const RulesResult *res, const ApplyBody *body)
{
	ApplyPartition *ap = &parts[p];
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);

	/* a record of the log a promotion catches up to was read */
	if (hdr->type != RKM_NEW_GEN && res->verdict != RULES_SKIP_CHUNK &&
		res->verdict != RULES_COLLECT && res->verdict != RULES_ERROR)
		replkafka_promotion_record_read(p, hdr);

	switch (res->verdict)
	{
		case RULES_SKIP_CHUNK:
		case RULES_NOTHING:
		case RULES_COLLECT:
		case RULES_REPLAY:
			break;

		case RULES_ERROR:
			apply_partition_error(p, ERRCODE_PROTOCOL_VIOLATION, "%s", res->error);
			return false;

		case RULES_NEW_GENERATION:
		case RULES_LOST_ELECTION:
			{
				uint32		prev_generation = ap->rules.generation;
				char		prev_origin[RKM_MAX_ORIGIN + 1];

				/* the generation is recorded before a promotion learns it won */
				strlcpy(prev_origin, ap->rules.gen_origin, sizeof(prev_origin));
				if (res->verdict == RULES_NEW_GENERATION)
					apply_new_generation(p, offset, hdr);
				else
					ereport(DEBUG1,
							errmsg_internal("partition %d: NEW_GEN %u of node \"%s\" lost to generation %u",
											p, gen, hdr->origin, prev_generation));

				/*
				 * Won: the records after our NEW_GEN are ours, and those
				 * fetched already must not be applied.  If the promotion does
				 * not get to change the role after all, the partition is
				 * loaded again from its checkpoint.
				 */
				if (replkafka_promotion_new_generation(p, offset, hdr,
													   prev_generation,
													   prev_origin))
					apply_release_partition(p);
			}
			break;

		case RULES_END_GENERATION:
			apply_end_generation(p, offset, hdr);
			break;

		case RULES_ZOMBIE:
			apply_count_zombie(p);
			if (hdr->type == RKM_TXN)
				ereport(LOG,
						errmsg("partition %d: skipping a transaction of generation %u from node \"%s\" at Kafka offset %lld",
							   p, gen, hdr->origin, (long long) offset),
						errdetail("Generation %u of the partition was started by node \"%s\".",
								  ap->rules.generation, ap->rules.gen_origin));
			break;

		case RULES_APPLY:
			return apply_transaction(p, offset, hdr, body);
	}
	return true;
}

/*
 * Add a chunk's body to the transaction being collected.  The chunks go to
 * a temporary file, so that a worker's memory does not grow with the size
 * of a transaction: it holds a chunk, and one body record at a time when
 * the transaction is applied.
 *
 * A file that cannot take the chunk (the disk is full, temp_file_limit is
 * reached) stops the partition.  The file cannot be
 * closed then (closing writes what it buffers), so the worker exits after
 * recording the error, which removes its temporary files; it starts again
 * without the partition.
 */
static void
apply_collect(int p, int64 offset, const RkmHeader *hdr, const char *body)
{
	ApplyPartition *ap = &parts[p];
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorData  *edata;

	PG_TRY();
	{
		if (ap->coll_file == NULL)
		{
			MemoryContextSwitchTo(ApplyContext);
			ap->coll_file = BufFileCreateTemp(true);
			ap->coll_len = 0;
			MemoryContextSwitchTo(oldcxt);
		}
		BufFileWrite(ap->coll_file, unconstify(char *, body), hdr->body_len);
		ap->coll_len += hdr->body_len;

		/*
		 * Write out what the file buffers, here, where a failure is handled:
		 * seeking away from the buffer flushes it.  Closing the file or
		 * reading it back then writes nothing.
		 */
		if (BufFileSeek(ap->coll_file, 0, 0, SEEK_SET) != 0 ||
			BufFileSeek(ap->coll_file, 0, (off_t) ap->coll_len, SEEK_SET) != 0)
			ereport(ERROR,
					errcode_for_file_access(),
					errmsg("could not seek in temporary file: %m"));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		ap->coll_file = NULL;	/* left to the worker's exit */
		exiting = true;
		edata = CopyErrorData();
		apply_partition_failed(p, edata,
							   psprintf("could not keep chunk %u of the transaction at Kafka offset %lld",
										hdr->chunk, (long long) offset));
		apply_exit_for_temp_files();
	}
	PG_END_TRY();
}

/*
 * Forget the transaction being collected, and its file.  Closing writes
 * nothing in general (apply_collect() flushed), but a file that cannot be
 * closed is left to the worker's exit, which removes it.
 */
static void
apply_discard_collected(ApplyPartition *ap)
{
	BufFile    *file = ap->coll_file;

	ap->coll_file = NULL;
	ap->coll_len = 0;
	ap->rules.collecting = false;
	if (file == NULL)
		return;
	PG_TRY();
	{
		BufFileClose(file);
	}
	PG_CATCH();
	{
		replkafka_worker_emit_handled_error();
		FlushErrorState();
		apply_exit_for_temp_files();
	}
	PG_END_TRY();
}

/*
 * Exit, so that the worker's temporary files, one of which it could not
 * write or close, are removed; it is started again.
 */
static void
apply_exit_for_temp_files(void)
{
	exiting = true;
	replkafka_worker_restart("to remove its temporary files");
}

/*
 * Count a zombie record skipped.
 */
static void
apply_count_zombie(int p)
{
	replkafka_partition_count_zombie(p);
}

/*
 * The leader of the current generation handed over after the last
 * transaction applied (rules.c checked): the generation has no more
 * transactions.  The end is kept in the checkpoint, so that a restarted
 * worker skips a transaction of the generation after it too.
 */
static void
apply_end_generation(int p, int64 offset, const RkmHeader *hdr)
{
	ApplyPartition *ap = &parts[p];
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);
	ReplkafkaConsumerCheckpoint ckpt;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	ckpt.partition = p;
	ckpt.generation = gen;
	ckpt.scn = ap->rules.last_scn;
	ckpt.kafka_offset = offset;
	ckpt.ended = true;
	replkafka_catalog_save_consumer_checkpoint(&ckpt);
	PopActiveSnapshot();
	CommitTransactionCommand();

	ap->ckpt_offset = offset;
	ereport(LOG,
			errmsg("partition %d: node \"%s\" ended generation %u after transaction %u at Kafka offset %lld",
				   p, hdr->origin, gen, RKM_SCN_SEQUENCE(hdr->scn),
				   (long long) offset));
}

/*
 * Start a generation: remember who started it, durably.
 */
static void
apply_new_generation(int p, int64 offset, const RkmHeader *hdr)
{
	ApplyPartition *ap = &parts[p];
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);
	ReplkafkaConsumerCheckpoint ckpt;
	TimestampTz started = hdr->commit_time - RKM_UNIX_EPOCH_OFFSET;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	replkafka_catalog_add_generation(p, gen, hdr->origin, offset, started);
	ckpt.partition = p;
	ckpt.generation = gen;
	ckpt.scn = RKM_SCN(gen, 0);
	ckpt.kafka_offset = offset;
	ckpt.ended = false;
	replkafka_catalog_save_consumer_checkpoint(&ckpt);
	PopActiveSnapshot();
	CommitTransactionCommand();

	ap->ckpt_offset = offset;

	replkafka_partition_report_new_generation(p, gen, offset);
	ereport(LOG,
			errmsg("partition %d: generation %u started by node \"%s\" at Kafka offset %lld",
				   p, gen, hdr->origin, (long long) offset));
}

/*
 * Where the time went between a transaction's commit on its primary and
 * its changes applied here (its group commits next): when the shipper
 * produced its last record (the record's timestamp, in milliseconds), when
 * this worker polled it, and now.
 */
static void
apply_trace_hops(int p, int64 offset, TimestampTz commit_time)
{
	rd_kafka_timestamp_type_t type;
	int64		produced_ms;
	TimestampTz produced;

	if (current_msg == NULL)
		return;
	produced_ms = rd_kafka_message_timestamp(current_msg, &type);
	if (type != RD_KAFKA_TIMESTAMP_CREATE_TIME)
		return;
	produced = produced_ms * 1000 - RKM_UNIX_EPOCH_OFFSET;
	elog(DEBUG2, "partition %d, Kafka offset %lld: produced %.3f ms, received %.3f ms, applied %.3f ms after its commit on the primary",
		 p, (long long) offset, (produced - commit_time) / 1000.0,
		 (current_received - commit_time) / 1000.0,
		 (GetCurrentTimestamp() - commit_time) / 1000.0);
}

/*
 * May a record of partition p at offset, which the rules judged res, be
 * acted on while the group is open?  Records that need no transaction may,
 * but for a chunk to collect (its temporary file may fail, which takes the
 * partition to error); a transaction to apply may join the group, unless a
 * promotion of p is under way (it must learn of each one as it commits), p
 * failed in a group at or after offset, or the group is full.  Anything
 * else (a generation's start or end, an error) takes a transaction of its
 * own, or changes what the partition's checkpoint would say, so the group
 * commits first.
 */
static bool
apply_joins_group(int p, int64 offset, const RulesResult *res, uint64 body_len)
{
	if (res->discard || res->collected)
		return false;			/* its last chunk goes to a temporary file */
	switch (res->verdict)
	{
		case RULES_SKIP_CHUNK:
		case RULES_NOTHING:
		case RULES_REPLAY:
		case RULES_ZOMBIE:
			return true;
		case RULES_APPLY:
			return replkafka_partition_state(p)->promotion.state == REPLKAFKA_PROMOTE_NONE &&
				offset > alone_until[p] &&
				group_txns < APPLY_GROUP_TXNS &&
				group_bytes + body_len <= APPLY_GROUP_BYTES;
		default:
			return false;
	}
}

/*
 * Commit the group: write the checkpoint of each partition it holds a
 * transaction of (its last one), commit, then publish what was applied.
 * Returns false if the group failed: a group of one transaction fails as
 * that transaction does; a larger one is applied again, a transaction at a
 * time (apply_group_failed()).
 */
static bool
apply_flush_group(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorContextCallback callback;

	if (group_txns == 0)
		return true;

	/* a group of one: its errors say which transaction, as always */
	callback.previous = error_context_stack;
	callback.callback = apply_error_callback;
	callback.arg = NULL;
	PG_TRY();
	{
		if (group_txns == 1)
			error_context_stack = &callback;
		MemoryContextSwitchTo(CurTransactionContext);
		PushActiveSnapshot(GetTransactionSnapshot());
		for (int p = 0; p < npartitions; p++)
		{
			ReplkafkaConsumerCheckpoint ckpt;

			if (!grouped[p].member)
				continue;
			ckpt.partition = p;
			ckpt.generation = parts[p].rules.generation;
			ckpt.scn = grouped[p].scn;
			ckpt.kafka_offset = grouped[p].offset;
			ckpt.ended = false;
			replkafka_catalog_save_consumer_checkpoint(&ckpt);
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		error_context_stack = callback.previous;
		MemoryContextSwitchTo(oldcxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		error_context_stack = callback.previous;
		/* not in the transaction's memory, which the abort frees */
		MemoryContextSwitchTo(ApplyMessageContext);
		edata = CopyErrorData();
		apply_group_failed(edata, -1, -1);
		MemoryContextSwitchTo(oldcxt);
		return false;
	}
	PG_END_TRY();

	replorigin_session_origin_lsn = InvalidXLogRecPtr;
	replorigin_session_origin_timestamp = 0;
	group_txns = 0;
	group_bytes = 0;
	/* so that autovacuum sees the tables written, and the checkpoints */
	pgstat_report_stat(false);
	for (int p = 0; p < npartitions; p++)
	{
		ApplyGrouped *g = &grouped[p];

		if (!g->member)
			continue;
		g->member = false;
		parts[p].ckpt_offset = g->offset;
		replkafka_partition_report_applied(p, g->scn, g->offset, g->commit_time);
	}

	/*
	 * A promotion learns how far the worker read once the record being
	 * handled, if any, was (apply_handle_message(), apply_update_lag()):
	 * next_offset is past it already.
	 */
	return true;
}

/*
 * Commit the group before a record of partition p is acted on.  False if
 * the group failed and took p with it: p is read again from its checkpoint
 * (or stopped), this record too.
 */
static bool
apply_flush_group_before(int p)
{
	ApplyPartition *ap = &parts[p];

	return apply_flush_group() || !(ap->retrying || ap->stopped || !ap->assigned);
}

/*
 * The group failed (edata), as the transaction of partition p at offset
 * was applied in it, or at commit if p is -1.  A group of one transaction
 * fails as that transaction: the partition stops, or is tried again later.
 * A larger one is rolled back and each partition it holds is read again
 * from its checkpoint, then applied a transaction at a time up to the last
 * one that was in the group, so that a transaction that fails alone
 * fails as itself; the others are not held up.
 */
static void
apply_group_failed(ErrorData *edata, int p, int64 offset)
{
	int			ntxns = group_txns + (p >= 0 ? 1 : 0);

	/* the relations go with the transaction's memory */
	relations = NULL;
	nrelations = 0;
	errctx.relation = NULL;
	replorigin_session_origin_lsn = InvalidXLogRecPtr;
	replorigin_session_origin_timestamp = 0;
	group_txns = 0;
	group_bytes = 0;

	if (ntxns == 1)
	{
		for (int q = 0; q < npartitions && p < 0; q++)
			if (grouped[q].member)
			{
				p = q;
				offset = grouped[q].offset;
			}
		grouped[p].member = false;
		/* tried again, it is not tried in a group first */
		alone_until[p] = Max(alone_until[p], offset);
		apply_partition_failed(p, edata,
							   psprintf("could not apply the transaction at Kafka offset %lld",
										(long long) offset));
		return;
	}

	/* no cancel may leave before the partitions are read again */
	HOLD_INTERRUPTS();
	AbortOutOfAnyTransaction();
	FlushErrorState();
	ereport(LOG,
			errmsg("could not apply %d transactions together: %s", ntxns,
				   edata->message),
			errdetail("Their partitions are applied again from their checkpoints, a transaction at a time."));
	/* the error whole (SQLSTATE, detail, context), for the record */
	edata->elevel = LOG;
	ThrowErrorData(edata);
	FreeErrorData(edata);

	if (p >= 0)
	{
		/* its transaction at offset is the group's last of p */
		grouped[p].member = true;
		grouped[p].offset = offset;
	}
	for (int q = 0; q < npartitions; q++)
	{
		ApplyPartition *ap = &parts[q];

		if (!grouped[q].member)
			continue;
		grouped[q].member = false;
		alone_until[q] = Max(alone_until[q], grouped[q].offset);
		/* apply_retry_partitions() moves the consumer back, at once */
		apply_discard_collected(ap);
		ap->retrying = true;
		ap->seek_after = 0;
		/* a promotion does not take what rolled back for read */
		replkafka_partition_report_position(q, ap->ckpt_offset + 1, -1, false);
	}
	RESUME_INTERRUPTS();
}

/*
 * Apply one transaction in the group's local transaction, which it opens
 * if it is the first.  A transaction that may not join the group (a
 * promotion of its partition is under way, or the partition failed in a
 * group) is committed at once, alone.  An error while applying it fails
 * the group (apply_group_failed()); then returns false.
 */
static bool
apply_transaction(int p, int64 offset, const RkmHeader *hdr,
				  const ApplyBody *body)
{
	ErrorContextCallback callback;
	MemoryContext oldcxt = CurrentMemoryContext;
	TimestampTz commit_time = hdr->commit_time - RKM_UNIX_EPOCH_OFFSET;
	RulesResult apply = {.verdict = RULES_APPLY};
	bool		alone;

	alone = group_txns == 0 && !apply_joins_group(p, offset, &apply, body->len);

	errctx.partition = p;
	errctx.offset = offset;
	errctx.scn = hdr->scn;
	strlcpy(errctx.origin, hdr->origin, sizeof(errctx.origin));
	errctx.relation = NULL;
	callback.callback = apply_error_callback;
	callback.arg = NULL;
	callback.previous = error_context_stack;

	PG_TRY();
	{
		error_context_stack = &callback;
		if (group_txns == 0)
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
		}
		PushActiveSnapshot(GetTransactionSnapshot());
		/* the commit record carries the last transaction's */
		replorigin_session_origin_lsn = hdr->commit_lsn;
		replorigin_session_origin_timestamp = commit_time;

		apply_body(body);

		PopActiveSnapshot();
		/* the next transaction of the group sees this one's changes */
		CommandCounterIncrement();
		error_context_stack = callback.previous;
	}
	PG_CATCH();
	{
		error_context_stack = callback.previous;
		MemoryContextSwitchTo(oldcxt);
		apply_group_failed(CopyErrorData(), p, offset);
		return false;
	}
	PG_END_TRY();

	group_txns++;
	group_bytes += body->len;
	grouped[p].member = true;
	grouped[p].scn = hdr->scn;
	grouped[p].offset = offset;
	grouped[p].commit_time = commit_time;
	if (message_level_is_interesting(DEBUG2))
		apply_trace_hops(p, offset, commit_time);
	MemoryContextSwitchTo(oldcxt);
	return !alone || apply_flush_group();
}

/*
 * Apply the body records of a transaction.  Runs in the local transaction.
 */
static void
apply_body(const ApplyBody *body)
{
	ApplyBodyReader br;
	RkmRecord	rec;
	RkmReadResult res;

	apply_relmap_prune();
	memset(&br, 0, sizeof(br));
	br.body = body;
	if (body->file)
	{
		initStringInfo(&br.record);
		if (BufFileSeek(body->file, 0, 0, SEEK_SET) != 0)
			ereport(ERROR,
					errcode_for_file_access(),
					errmsg("could not seek in temporary file: %m"));
	}
	else
		replkafka_message_reader_init(&br.reader, body->data, body->len);
	nrelations = 0;
	relations = palloc0(sizeof(ApplyRelation *) * 16);
	while ((res = apply_next_record(&br, &rec)) == RKM_READ_OK)
	{
		if (rec.kind == RKM_REC_RELATION)
		{
			if (rec.relation >= nrelations)
			{
				int			n = Max(rec.relation + 1, nrelations * 2);

				relations = repalloc(relations, sizeof(ApplyRelation *) * Max(n, 16));
				for (int i = nrelations; i < Max(n, 16); i++)
					relations[i] = NULL;
				nrelations = Max(n, 16);
			}
			if (relations[rec.relation])
				apply_close_relation(relations[rec.relation]);
			relations[rec.relation] = NULL;
			relations[rec.relation] = apply_open_relation(&rec);
			continue;
		}
		if (rec.relation >= nrelations || relations[rec.relation] == NULL)
			ereport(ERROR,
					errcode(ERRCODE_PROTOCOL_VIOLATION),
					errmsg("change of undefined relation number %u", rec.relation));
		apply_change(relations[rec.relation], &rec);
	}
	if (res != RKM_READ_END)
		ereport(ERROR,
				errcode(ERRCODE_PROTOCOL_VIOLATION),
				errmsg("malformed transaction body: %s",
					   res == RKM_READ_INCOMPLETE ? "it ends inside a record" : br.reader.error));
	for (int i = 0; i < nrelations; i++)
	{
		if (relations[i])
			apply_close_relation(relations[i]);
		relations[i] = NULL;
	}
	nrelations = 0;
}

/*
 * The next body record of a transaction.  From a file, the record is read
 * into memory first, alone.
 */
static RkmReadResult
apply_next_record(ApplyBodyReader *br, RkmRecord *rec)
{
	BufFile    *file = br->body->file;
	uint64		remaining;
	uint64		size;
	RkmReadResult res;

	if (file == NULL)
		return replkafka_message_next_record(&br->reader, rec);

	remaining = br->body->len - br->pos;
	if (remaining == 0)
		return RKM_READ_END;
	if (remaining < RKM_REC_HEADER_SIZE)
		return RKM_READ_INCOMPLETE;
	resetStringInfo(&br->record);
	enlargeStringInfo(&br->record, RKM_REC_HEADER_SIZE);
	apply_read_file(file, br->record.data, RKM_REC_HEADER_SIZE);
	size = replkafka_message_record_size(br->record.data);
	if (size > remaining)
		return RKM_READ_INCOMPLETE;
	if (size >= MaxAllocSize)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("a body record of %llu bytes exceeds the limit of %zu bytes",
					   (unsigned long long) size, (size_t) MaxAllocSize - 1));
	enlargeStringInfo(&br->record, (int) size);
	apply_read_file(file, br->record.data + RKM_REC_HEADER_SIZE,
					size - RKM_REC_HEADER_SIZE);
	br->record.len = (int) size;
	br->pos += size;

	replkafka_message_reader_reset(&br->reader, br->record.data, br->record.len);
	res = replkafka_message_next_record(&br->reader, rec);
	Assert(res != RKM_READ_END && res != RKM_READ_INCOMPLETE);
	return res;
}

/*
 * Read len bytes of a temporary file, which holds them.
 */
static void
apply_read_file(BufFile *file, char *buf, size_t len)
{
	size_t		n = BufFileRead(file, buf, len);

	if (n != len)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not read from temporary file: read only %zu of %zu bytes",
					   n, len));
}

/*
 * Relcache invalidation callback: column maps of relid (or of every
 * relation) must be built again.
 */
static void
apply_relmap_invalidate(Datum arg, Oid relid)
{
	ListCell   *lc;

	foreach(lc, relmaps)
	{
		ApplyRelMap *map = lfirst(lc);

		if (!OidIsValid(relid) || map->relid == relid)
			map->valid = false;
	}
}

/*
 * Forget the column maps an invalidation made stale.  Called between
 * transactions, when no ApplyRelation points to one.
 */
static void
apply_relmap_prune(void)
{
	ListCell   *lc;

	foreach(lc, relmaps)
	{
		ApplyRelMap *map = lfirst(lc);

		if (!map->valid)
		{
			relmaps = foreach_delete_current(relmaps, lc);
			MemoryContextDelete(map->cxt);
		}
	}
}

/*
 * Does a cached map describe this relation definition?
 */
static bool
apply_relmap_matches(const ApplyRelMap *map, const RkmRecord *rec)
{
	if (!map->valid || map->nremote != rec->natts ||
		strlen(map->schema) != rec->schema_len ||
		strncmp(map->schema, rec->schema, rec->schema_len) != 0 ||
		strlen(map->table) != rec->table_len ||
		strncmp(map->table, rec->table, rec->table_len) != 0)
		return false;
	for (int i = 0; i < rec->natts; i++)
	{
		const RkmColumn *col = &rec->columns[i];

		if (map->flags[i] != col->flags ||
			strlen(map->names[i]) != col->name_len ||
			strncmp(map->names[i], col->name, col->name_len) != 0 ||
			strlen(map->types[i]) != col->type_len ||
			strncmp(map->types[i], col->type, col->type_len) != 0)
			return false;
	}
	return true;
}

/*
 * The local table schema.table of a relation definition, locked for the
 * changes.  Rule 5: it must be replicated here, which is checked before
 * the lock, so that a record naming a table someone else holds locked
 * cannot stall the worker unless the table is replicated, and again under
 * the lock: taking it processes the invalidations of concurrent DDL.  The
 * name is looked up again under the lock too, in case the table was
 * renamed or dropped meanwhile.
 */
static Oid
apply_lock_table(const char *schema, const char *table)
{
	RangeVar   *rv = makeRangeVar(pstrdup(schema), pstrdup(table), -1);

	for (;;)
	{
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		if (!OidIsValid(relid))
			ereport(ERROR,
					errcode(ERRCODE_UNDEFINED_TABLE),
					errmsg("table \"%s.%s\" does not exist on this node",
						   schema, table));
		if (!replkafka_table_registered(relid))
			break;
		LockRelationOid(relid, RowExclusiveLock);
		if (RangeVarGetRelid(rv, NoLock, true) == relid)
		{
			if (!replkafka_table_registered(relid))
				break;
			return relid;
		}
		UnlockRelationOid(relid, RowExclusiveLock);
	}
	apply_not_replicated(schema, table);
	return InvalidOid;			/* keep compiler quiet */
}

/*
 * A name from a record is text of the database encoding, or the record is
 * refused before the name reaches a lookup or a message.
 */
static void
apply_check_name(const char *name, const char *what)
{
	if (!pg_verifymbstr(name, strlen(name), true))
		ereport(ERROR,
				errcode(ERRCODE_PROTOCOL_VIOLATION),
				errmsg("a %s name in the record is not valid in encoding \"%s\"",
					   what, GetDatabaseEncodingName()));
}

/*
 * Rule 5: schema.table, named by a record, is not replicated here.
 */
static void
apply_not_replicated(const char *schema, const char *table)
{
	ereport(ERROR,
			errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			errmsg("table \"%s.%s\" is not replicated on this node",
				   schema, table),
			errhint("Register it with replkafka.add_table() as on the other nodes."));
}

/*
 * The column map of a relation definition for the local table relid,
 * locked: from the cache, unless an invalidation (processed when the lock
 * was taken) made it stale, or built by looking the columns up.
 */
static ApplyRelMap *
apply_relmap(const RkmRecord *rec, Oid relid)
{
	ListCell   *lc;
	ApplyRelMap *map;
	MemoryContext cxt;
	MemoryContext oldcxt;
	Relation	rel;
	TupleDesc	desc;

	foreach(lc, relmaps)
	{
		map = lfirst(lc);
		if (map->relid == relid && apply_relmap_matches(map, rec))
			return map;
	}

	/*
	 * A table has one definition at a time: forget its other maps (no open
	 * relation uses them), so that the maps kept are bounded by the tables
	 * replicated here.
	 */
	foreach(lc, relmaps)
	{
		map = lfirst(lc);
		if (map->relid == relid)
		{
			relmaps = foreach_delete_current(relmaps, lc);
			MemoryContextDelete(map->cxt);
		}
	}

	if (!relmap_callback_registered)
	{
		CacheRegisterRelcacheCallback(apply_relmap_invalidate, (Datum) 0);
		relmap_callback_registered = true;
	}

	cxt = AllocSetContextCreate(ApplyContext, "replkafka apply column map",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	map = palloc0(sizeof(ApplyRelMap));
	map->cxt = cxt;
	map->schema = pnstrdup(rec->schema, rec->schema_len);
	map->table = pnstrdup(rec->table, rec->table_len);
	map->nremote = rec->natts;
	map->names = palloc(rec->natts * sizeof(char *));
	map->types = palloc(rec->natts * sizeof(char *));
	map->flags = palloc(rec->natts * sizeof(uint8));
	map->attnum = palloc(rec->natts * sizeof(AttrNumber));
	map->infunc = palloc(rec->natts * sizeof(FmgrInfo));
	map->ioparam = palloc(rec->natts * sizeof(Oid));
	map->typmod = palloc(rec->natts * sizeof(int32));
	map->key = palloc(rec->natts * sizeof(bool));
	MemoryContextSwitchTo(oldcxt);

	map->relid = relid;
	rel = table_open(map->relid, NoLock);
	desc = RelationGetDescr(rel);
	map->sent = MemoryContextAllocZero(cxt, desc->natts * sizeof(bool));
	for (int i = 0; i < rec->natts; i++)
	{
		char	   *name = pnstrdup(rec->columns[i].name, rec->columns[i].name_len);
		AttrNumber	attnum = get_attnum(map->relid, name);
		Form_pg_attribute att;
		Oid			infunc;

		if (attnum <= 0)
			ereport(ERROR,
					errcode(ERRCODE_UNDEFINED_COLUMN),
					errmsg("column \"%s\" of table \"%s.%s\" does not exist on this node",
						   name, map->schema, map->table));
		att = TupleDescAttr(desc, attnum - 1);
		if (att->attgenerated)
			ereport(ERROR,
					errcode(ERRCODE_GENERATED_ALWAYS),
					errmsg("column \"%s\" of table \"%s.%s\" is generated on this node",
						   name, map->schema, map->table));
		map->names[i] = MemoryContextStrdup(cxt, name);
		map->types[i] = MemoryContextStrdup(cxt,
											pnstrdup(rec->columns[i].type,
													 rec->columns[i].type_len));
		map->flags[i] = rec->columns[i].flags;
		map->attnum[i] = attnum;
		map->sent[attnum - 1] = true;
		map->key[i] = (rec->columns[i].flags & RKM_COL_KEY) != 0;
		getTypeInputInfo(att->atttypid, &infunc, &map->ioparam[i]);
		fmgr_info_cxt(infunc, &map->infunc[i], cxt);
		map->typmod[i] = att->atttypmod;
	}
	table_close(rel, NoLock);

	map->valid = true;
	oldcxt = MemoryContextSwitchTo(ApplyContext);
	relmaps = lappend(relmaps, map);
	MemoryContextSwitchTo(oldcxt);
	return map;
}

/*
 * Open the local table a relation record names, with its column map.
 * Rule 5: the table must be replicated here.
 */
static ApplyRelation *
apply_open_relation(const RkmRecord *rec)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	char	   *schema;
	char	   *table;
	ApplyRelMap *map;
	ApplyRelation *ar;
	TupleDesc	desc;
	Oid			relid;
	ReplkafkaOwnerContext uc;

	/*
	 * Everything the relation needs lives in a context of its own, deleted
	 * when it is closed: a transaction redefining a relation again and again
	 * does not grow the worker's memory.
	 */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "replkafka apply relation",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	ar = palloc0(sizeof(ApplyRelation));
	ar->cxt = cxt;
	schema = pnstrdup(rec->schema, rec->schema_len);
	table = pnstrdup(rec->table, rec->table_len);
	apply_check_name(schema, "schema");
	apply_check_name(table, "table");
	ar->name = psprintf("%s.%s", schema, table);
	errctx.relation = ar->name;
	relid = apply_lock_table(schema, table);

	/*
	 * One executor state per table: a writer defines a table once per
	 * transaction (again, under the same number, if its definition changes),
	 * so that the relations open are bounded by the tables replicated here,
	 * whatever the record says.
	 */
	for (int i = 0; i < nrelations; i++)
		if (relations[i] && RelationGetRelid(relations[i]->rel) == relid)
			ereport(ERROR,
					errcode(ERRCODE_PROTOCOL_VIOLATION),
					errmsg("table \"%s.%s\" is defined twice in the transaction, as relations %d and %u",
						   schema, table, i, rec->relation));
	map = apply_relmap(rec, relid);
	ar->rel = table_open(relid, NoLock);
	ar->pkindex = RelationGetPrimaryKeyIndex(ar->rel);
	desc = RelationGetDescr(ar->rel);
	ar->map = map;

	/*
	 * An executor state, as for a plain INSERT, UPDATE or DELETE, set up as
	 * the table's owner: opening the indexes evaluates the constant parts of
	 * their expressions and predicates, which call the owner's functions.
	 */
	replkafka_table_become_owner(ar->rel, &uc);
	replkafka_table_writer_open(&ar->w, ar->rel);
	ar->localslot = table_slot_create(ar->rel, &ar->w.estate->es_tupleTable);
	ar->newslot = ExecInitExtraTupleSlot(ar->w.estate, desc, &TTSOpsVirtual);
	ar->keyslot = ExecInitExtraTupleSlot(ar->w.estate, desc, &TTSOpsVirtual);
	replkafka_table_restore_user(&uc);
	MemoryContextSwitchTo(oldcxt);
	return ar;
}

/*
 * Finish the executor state of a relation.
 */
static void
apply_close_relation(ApplyRelation *ar)
{
	replkafka_table_writer_close(&ar->w);
	table_close(ar->rel, NoLock);
	if (errctx.relation == ar->name)
		errctx.relation = NULL;
	MemoryContextDelete(ar->cxt);
}

/*
 * Store sent values into a virtual slot whose other columns are already
 * set.  Unchanged TOASTed values and absent key columns leave the slot's
 * value as it is.  The values live in the per-tuple memory of the change.
 */
static void
apply_fill_slot(ApplyRelation *ar, TupleTableSlot *slot, const RkmValue *values,
				bool key_only)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(ar->w.estate));

	for (int i = 0; i < ar->map->nremote; i++)
	{
		int			att = ar->map->attnum[i] - 1;

		/* a search uses the primary key alone */
		if (key_only && !ar->map->key[i])
			continue;
		switch (values[i].kind)
		{
			case RKM_VAL_NULL:
				slot->tts_values[att] = (Datum) 0;
				slot->tts_isnull[att] = true;
				break;
			case RKM_VAL_TEXT:
				{
					char	   *text;

					/*
					 * A zero byte would cut the value short (a key 'admin\0x'
					 * would find 'admin'), and bad encoding would be stored.
					 */
					if (!pg_verifymbstr(values[i].data, (int) values[i].len, true))
						ereport(ERROR,
								errcode(ERRCODE_PROTOCOL_VIOLATION),
								errmsg("the value of column \"%s\" of table \"%s\" is not valid text in encoding \"%s\"",
									   ar->map->names[i], RelationGetRelationName(ar->rel),
									   GetDatabaseEncodingName()),
								errdetail("It contains a zero byte or an invalid byte sequence."));
					text = pnstrdup(values[i].data, values[i].len);

					slot->tts_values[att] = InputFunctionCall(&ar->map->infunc[i], text,
															  ar->map->ioparam[i],
															  ar->map->typmod[i]);
					slot->tts_isnull[att] = false;
				}
				break;
			case RKM_VAL_UNCHANGED:
				if (key_only)
					ereport(ERROR,
							errcode(ERRCODE_PROTOCOL_VIOLATION),
							errmsg("key value of column %d is marked unchanged", i + 1));
				break;
			case RKM_VAL_ABSENT:
				break;
		}
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Give the columns of a new row that were not sent their default values,
 * from expressions prepared at the first row of the relation.
 */
static void
apply_fill_defaults(ApplyRelation *ar, TupleTableSlot *slot)
{
	TupleDesc	desc = RelationGetDescr(ar->rel);
	ExprContext *econtext = GetPerTupleExprContext(ar->w.estate);

	if (ar->defaults == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(ar->w.estate->es_query_cxt);

		ar->defaults = palloc0(desc->natts * sizeof(ExprState *));
		for (int att = 0; att < desc->natts; att++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, att);
			Expr	   *defexpr;

			if (ar->map->sent[att] || a->attisdropped || a->attgenerated)
				continue;
			defexpr = (Expr *) build_column_default(ar->rel, att + 1);
			if (defexpr != NULL)
				ar->defaults[att] = ExecPrepareExpr(expression_planner(defexpr),
													ar->w.estate);
		}
		MemoryContextSwitchTo(oldcxt);
	}
	for (int att = 0; att < desc->natts; att++)
	{
		if (ar->defaults[att] != NULL)
			slot->tts_values[att] = ExecEvalExprSwitchContext(ar->defaults[att],
															  econtext,
															  &slot->tts_isnull[att]);
	}
}

/*
 * Find the local row with the primary key values in key, into localslot.
 */
static void
apply_find(ApplyRelation *ar, const RkmValue *key, const char *what)
{
	TupleTableSlot *slot = ar->keyslot;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, slot->tts_tupleDescriptor->natts * sizeof(bool));
	apply_fill_slot(ar, slot, key, true);
	ExecStoreVirtualTuple(slot);
	apply_check_partition(ar, slot);
	if (!RelationFindReplTupleByIndex(ar->rel, ar->pkindex, LockTupleExclusive,
									  slot, ar->localslot))
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errmsg("the row to %s is missing from table \"%s\"",
					   what, RelationGetRelationName(ar->rel)),
				errdetail("The replica no longer matches the partition's log."));
}

/*
 * Refuse a row that does not belong to the partition whose log it came
 * from: a writer that hashes keys differently (or a record from anyone
 * but a node of the cluster) must not write another partition's rows.
 */
static void
apply_check_partition(ApplyRelation *ar, TupleTableSlot *slot)
{
	ReplkafkaTableKey *key = replkafka_table_key(ar->rel);
	int			partition;
	MemoryContext oldcxt;

	/* registered, but without a cluster to hash for (it was dropped) */
	if (key == NULL)
		apply_not_replicated(ar->map->schema, ar->map->table);
	oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(ar->w.estate));
	partition = replkafka_partition_of_slot(key, slot);
	MemoryContextSwitchTo(oldcxt);
	if (partition != errctx.partition)
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errmsg("a row of table \"%s\" in the log of partition %d belongs to partition %d",
					   RelationGetRelationName(ar->rel), errctx.partition,
					   partition),
				errdetail("The writer of the record computes partitions differently from this node."));
}

/*
 * Apply one change through the executor, as the table's owner.  Each
 * change is a query of its own: its AFTER triggers fire before the owner's
 * identity is dropped.  As in the executor, the change runs in the
 * executor state's memory, and what belongs to the row alone in per-tuple
 * memory, freed after it: the worker's memory does not grow with the
 * number of changes of a transaction.
 */
static void
apply_change(ApplyRelation *ar, const RkmRecord *rec)
{
	TupleTableSlot *newslot = ar->newslot;
	int			natts = RelationGetDescr(ar->rel)->natts;
	ReplkafkaOwnerContext uc;
	MemoryContext oldcxt;

	if ((rec->new_values && rec->new_natts != ar->map->nremote) ||
		(rec->old_values && rec->old_natts != ar->map->nremote))
		ereport(ERROR,
				errcode(ERRCODE_PROTOCOL_VIOLATION),
				errmsg("tuple does not have the relation's %d columns", ar->map->nremote));

	errctx.relation = ar->name;
	replkafka_table_become_owner(ar->rel, &uc);
	oldcxt = MemoryContextSwitchTo(ar->w.estate->es_query_cxt);
	PushActiveSnapshot(GetLatestSnapshot());
	AfterTriggerBeginQuery();
	switch (rec->kind)
	{
		case RKM_REC_INSERT:
			ExecClearTuple(newslot);
			memset(newslot->tts_isnull, true, natts * sizeof(bool));
			apply_fill_slot(ar, newslot, rec->new_values, false);
			apply_fill_defaults(ar, newslot);
			ExecStoreVirtualTuple(newslot);
			apply_check_partition(ar, newslot);
			ExecSimpleRelationInsert(ar->w.rri, ar->w.estate, newslot);
			break;

		case RKM_REC_UPDATE:
			apply_find(ar, rec->old_kind == RKM_OLD_NONE ? rec->new_values : rec->old_values,
					   "update");
			ExecClearTuple(newslot);
			slot_getallattrs(ar->localslot);
			memcpy(newslot->tts_values, ar->localslot->tts_values, natts * sizeof(Datum));
			memcpy(newslot->tts_isnull, ar->localslot->tts_isnull, natts * sizeof(bool));
			apply_fill_slot(ar, newslot, rec->new_values, false);
			ExecStoreVirtualTuple(newslot);
			apply_check_partition(ar, newslot);
			EvalPlanQualSetSlot(&ar->w.epq, ar->localslot);
			ExecSimpleRelationUpdate(ar->w.rri, ar->w.estate, &ar->w.epq, ar->localslot,
									 newslot);
			break;

		case RKM_REC_DELETE:
			apply_find(ar, rec->old_values, "delete");
			EvalPlanQualSetSlot(&ar->w.epq, ar->localslot);
			ExecSimpleRelationDelete(ar->w.rri, ar->w.estate, &ar->w.epq, ar->localslot);
			break;
	}

	/*
	 * A deferred trigger the change queued (with session_replication_role =
	 * replica, only one enabled ALWAYS or REPLICA: deferrable ones are
	 * refused on replicated tables, but the owner's code may write other
	 * tables) would fire at commit, as the worker.  PostgreSQL refuses to
	 * defer one within a security-restricted operation, here, so the change
	 * fails instead; only a superuser owner's may be deferred.
	 */
	AfterTriggerEndQuery(ar->w.estate);
	PopActiveSnapshot();
	MemoryContextSwitchTo(oldcxt);
	ResetPerTupleExprContext(ar->w.estate);
	replkafka_table_restore_user(&uc);
	CommandCounterIncrement();
}

/*
 * Stop applying partition p (sqlerrcode, and the message): record why, in
 * shared memory at once and in the catalog; the other partitions go on.
 */
static void
apply_partition_error(int p, int sqlerrcode, const char *fmt,...)
{
	char		msg[REPLKAFKA_ERROR_LEN];
	const char *sqlstate = unpack_sql_state(sqlerrcode);
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* a message cut short must not end inside a character */
	msg[pg_mbcliplen(msg, strlen(msg), strlen(msg))] = '\0';

	parts[p].stopped = true;
	replkafka_partition_stop_applying(p, sqlstate, msg);
	roles_seen[p] = REPLKAFKA_ROLE_ERROR;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	replkafka_catalog_set_role(p, REPLKAFKA_ROLE_ERROR,
							   replkafka_partition_state(p)->generation, msg,
							   sqlstate);
	PopActiveSnapshot();
	CommitTransactionCommand();

	ereport(WARNING,
			errcode(sqlerrcode),
			errmsg("partition %d stops applying on node \"%s\": %s",
				   p, replkafka_node_name, msg));
	apply_discard_collected(&parts[p]);
	apply_unassign(p);
	if (!exiting)
		apply_refresh_assignment(true);
}

/*
 * Kafka no longer holds the next record of partition p: its retention
 * deleted it before this node applied it.  With replkafka.auto_rebuild,
 * the partition is bootstrapped again from a peer; otherwise it stops in
 * error, saying how to rebuild it.
 */
static void
apply_past_retention(int p)
{
	int64		next = parts[p].next_offset;
	int64		low;
	int64		high;
	ReplkafkaRole role;
	uint32		generation;

	/* before the log's start, or past its end (the topic is not the one) */
	replkafka_kafka_watermarks(consumer, topic_name, p, &low, &high,
							   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   replkafka_request_timeout));
	if (next >= low)
	{
		/* a new leader whose log ends short may catch up: try again */
		apply_partition_retry(p, ERRCODE_CONNECTION_FAILURE,
							  psprintf("Kafka has no offset %lld of the partition, which holds offsets %lld to %lld",
									   (long long) next, (long long) low,
									   (long long) high - 1));
		return;
	}
	if (!replkafka_auto_rebuild ||
		replkafka_partition_state(p)->role != REPLKAFKA_ROLE_REPLICA ||
		replkafka_partition_state(p)->promotion.state != REPLKAFKA_PROMOTE_NONE)
	{
		apply_partition_error(p, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
							  "Kafka no longer holds offset %lld of the partition; this replica must be rebuilt: SELECT replkafka.rebuild(%d);",
							  (long long) next, p);
		return;
	}

	ereport(LOG,
			errmsg("Kafka no longer holds offset %lld of partition %d: rebuilding the partition from a peer",
				   (long long) next, p));
	parts[p].stopped = true;
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());

	/*
	 * Unless unfollow() or promote() changed the role meanwhile; a role
	 * change under way (its row locked) is left to go on, and the partition
	 * is tried again after it.
	 */
	if (!replkafka_roles_try_lock(p, &role, &generation))
		role = REPLKAFKA_ROLE_OFFLINE;
	if (role == REPLKAFKA_ROLE_REPLICA)
	{
		replkafka_catalog_request_bootstrap(p, NULL, true);
		replkafka_catalog_set_role(p, REPLKAFKA_ROLE_BOOTSTRAPPING, generation,
								   NULL, NULL);
		replkafka_roles_set_at_commit(p, REPLKAFKA_ROLE_BOOTSTRAPPING,
									  generation);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	apply_discard_collected(&parts[p]);
	apply_unassign(p);
	apply_refresh_assignment(true);
}

/*
 * Applying partition p failed with the error being handled, which edata
 * copies; what says what was being done.  As PostgreSQL's apply worker
 * does, the report goes to the log whole (detail, hint, context: the table
 * and the transaction), the transaction rolls back, and the partition
 * stops, keeping the error's SQLSTATE.  An error that passes by itself
 * (replkafka_worker_error_is_transient()) makes the worker try the
 * partition again later instead.
 */
static void
apply_partition_failed(int p, ErrorData *edata, const char *what)
{
	char		msg[REPLKAFKA_ERROR_LEN];

	HOLD_INTERRUPTS();
	replkafka_worker_emit_handled_error();
	AbortOutOfAnyTransaction();
	FlushErrorState();
	RESUME_INTERRUPTS();

	snprintf(msg, sizeof(msg), "%s: %s", what, edata->message);
	msg[pg_mbcliplen(msg, strlen(msg), strlen(msg))] = '\0';
	if (replkafka_worker_error_is_transient(edata->sqlerrcode))
		apply_partition_retry(p, edata->sqlerrcode, msg);
	else
		apply_partition_error(p, edata->sqlerrcode, "%s", msg);
	FreeErrorData(edata);
}

/*
 * Applying partition p failed with an error that may pass (sqlerrcode,
 * msg): ignore its records, and take it up again from its checkpoint after
 * a pause, twice as long as the last one if the last attempt failed too
 * (apply_retry_partitions()).  Until then the partition shows the position
 * of its checkpoint: a promotion does not take the transaction for read.
 * The consumer's assignment stays as it is (changing it twice in a row
 * could trip librdkafka 2.0, see apply_release_partition()).
 */
static void
apply_partition_retry(int p, int sqlerrcode, const char *msg)
{
	ApplyPartition *ap = &parts[p];
	ReplkafkaProgress progress;
	int			delay = APPLY_RETRY_MIN_MS;

	replkafka_partition_get_progress(p, &progress);
	if (progress.apply_retrying)
		delay = Min(Max(progress.retry_delay_ms * 2, APPLY_RETRY_MIN_MS),
					APPLY_RETRY_MAX_MS);
	replkafka_partition_report_retry(p, unpack_sql_state(sqlerrcode), msg,
									 delay);
	replkafka_partition_report_position(p, ap->ckpt_offset + 1, -1, false);
	ereport(LOG,
			errmsg("partition %d: applying again in %d ms", p, delay));
	apply_discard_collected(ap);
	ap->retrying = true;
}

/*
 * Take up again, from their checkpoints, the partitions whose pause after
 * an error is over: the consumer goes back to the record after the
 * checkpoint, and drops what it fetched beyond (a seek with a timeout
 * guarantees it).  A partition that the consumer is restarting (its
 * assignment just changed) cannot be moved yet: it is tried a little
 * later.
 */
static void
apply_retry_partitions(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int p = 0; p < npartitions; p++)
	{
		ApplyPartition *ap = &parts[p];
		rd_kafka_topic_partition_list_t *list;
		rd_kafka_error_t *error;
		rd_kafka_resp_err_t err;
		int64		offset = ap->ckpt_offset + 1;

		if (!ap->assigned || !ap->positioned || !ap->retrying ||
			now < ap->seek_after || !apply_retry_due(p, NULL))
			continue;
		list = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(list, topic_name, p)->offset = offset;
		error = rd_kafka_seek_partitions(consumer, list, APPLY_SEEK_TIMEOUT_MS);
		err = error ? rd_kafka_error_code(error) : list->elems[0].err;
		if (error)
			rd_kafka_error_destroy(error);
		rd_kafka_topic_partition_list_destroy(list);
		if (err == RD_KAFKA_RESP_ERR__STATE ||
			err == RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS)
		{
			ap->seek_after = TimestampTzPlusMilliseconds(now, APPLY_RETRY_MIN_MS);
			continue;
		}
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("could not move the consumer of partition %d of Kafka topic \"%s\" back to offset %lld: %s",
						   p, topic_name, (long long) offset,
						   rd_kafka_err2str(err)),
					errdetail("The worker restarts and applies its partitions from their checkpoints."));
		/* its checkpoint did not move while it waited */
		if (!apply_load_partition(p))
		{
			apply_unassign(p);
			continue;
		}
		Assert(ap->next_offset == offset);
		/* the seek put the consumer there */
		ap->positioned = true;
	}
}

/*
 * Whether partition p may be taken up: it is not waiting to be tried
 * again.  If it is, and wait_ms is not NULL, *wait_ms is lowered to the
 * time left.
 */
static bool
apply_retry_due(int p, long *wait_ms)
{
	ReplkafkaProgress progress;
	long		left;

	replkafka_partition_get_progress(p, &progress);
	if (!progress.apply_retrying)
		return true;
	left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
										   TimestampTzPlusMilliseconds(progress.retry_time,
																	   progress.retry_delay_ms));
	if (left <= 0)
		return true;
	if (wait_ms)
		*wait_ms = Min(*wait_ms, left);
	return false;
}

/*
 * How long a worker that caught up sleeps: until something comes, at most
 * APPLY_NAPTIME_MS, and no longer than a partition waits to be tried again.
 */
static long
apply_naptime(void)
{
	long		wait_ms = APPLY_NAPTIME_MS;
	TimestampTz now = GetCurrentTimestamp();

	if (assign_pending)
		wait_ms = Min(wait_ms,
					  TimestampDifferenceMilliseconds(now,
													  TimestampTzPlusMilliseconds(assigned_at,
																				  APPLY_ASSIGN_INTERVAL_MS)));

	for (int p = 0; p < npartitions; p++)
	{
		ApplyPartition *ap = &parts[p];

		if (ap->assigned && ap->retrying)
		{
			/* due: at once, or once the consumer can be moved */
			if (apply_retry_due(p, &wait_ms))
				wait_ms = Min(wait_ms,
							  TimestampDifferenceMilliseconds(now, ap->seek_after));
		}
		else if (!ap->assigned && replkafka_apply_worker_of(p) == worker_index)
			(void) apply_retry_due(p, &wait_ms);
	}
	return wait_ms;
}

/*
 * Move the checkpoint of partitions past records that were read but not
 * applied (replays, zombies, lost elections), so that the checkpoint says
 * how far the log was read.
 */
static void
apply_save_positions(void)
{
	bool		started = false;

	for (int p = 0; p < npartitions; p++)
	{
		ApplyPartition *ap = &parts[p];
		ReplkafkaConsumerCheckpoint ckpt;

		if (!ap->assigned || ap->stopped || ap->retrying ||
			ap->rules.collecting ||
			ap->next_offset - 1 <= ap->ckpt_offset || ap->rules.generation == 0)
			continue;
		if (!started)
		{
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			started = true;
		}
		ckpt.partition = p;
		ckpt.generation = ap->rules.generation;
		ckpt.scn = ap->rules.last_scn;
		ckpt.kafka_offset = ap->next_offset - 1;
		ckpt.ended = ap->rules.gen_ended;
		replkafka_catalog_save_consumer_checkpoint(&ckpt);
		ap->ckpt_offset = ckpt.kafka_offset;
	}
	if (started)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
}

/*
 * Publish how far behind the log partition p is: next is the next record
 * to apply (received already if received), the log's end the last one
 * the consumer heard of.  A partition's catch-up is noted at its first
 * record since it was taken up: librdkafka keeps a partition's last known
 * log end across assignments, so before a fetch answers, what it says may
 * be the end of an earlier assignment; the fetch that brought a record
 * told the current one.
 */
static void
apply_publish_lag(int p, int64 next, bool received)
{
	int64		low;
	int64		high;
	bool		first = received && !parts[p].catchup_noted;

	/* nothing is known before the first fetch answers */
	if (rd_kafka_get_watermark_offsets(consumer, topic_name, p, &low, &high) !=
		RD_KAFKA_RESP_ERR_NO_ERROR || high < 0)
		return;
	parts[p].lag_published = GetCurrentTimestamp();
	if (first)
		parts[p].catchup_noted = true;
	replkafka_partition_report_position(p, next,
										Max(high, received ? next + 1 : next),
										first);
}

/*
 * Publish how far behind the log each partition is.
 */
static void
apply_update_lag(void)
{
	for (int p = 0; p < npartitions; p++)
		if (parts[p].assigned && !parts[p].retrying)
			apply_publish_lag(p, parts[p].next_offset, false);

	/* a promotion that just began may find it caught up already */
	for (int p = 0; p < npartitions; p++)
		if (parts[p].assigned && !parts[p].retrying)
			replkafka_promotion_progress(p, parts[p].next_offset);
}

/*
 * errcontext of apply errors: where the transaction came from.
 */
static void
apply_error_callback(void *arg)
{
	if (errctx.relation)
		errcontext("applying transaction %u of generation %u from node \"%s\" (partition %d, Kafka offset %lld), table %s",
				   RKM_SCN_SEQUENCE(errctx.scn), RKM_SCN_GENERATION(errctx.scn),
				   errctx.origin, errctx.partition, (long long) errctx.offset,
				   errctx.relation);
	else
		errcontext("applying transaction %u of generation %u from node \"%s\" (partition %d, Kafka offset %lld)",
				   RKM_SCN_SEQUENCE(errctx.scn), RKM_SCN_GENERATION(errctx.scn),
				   errctx.origin, errctx.partition, (long long) errctx.offset);
}

/*
 * This worker no longer applies partition p: a bootstrap of it may begin
 * (replkafka_partition_claim_bootstrap() waits for that), since no
 * transaction of it is being applied any more.
 */
static void
apply_unassign(int p)
{
	parts[p].assigned = false;
	replkafka_partition_set_applying(p, false);
}

/*
 * Stop applying partition p now, records fetched already included.
 */
static void
apply_release_partition(int p)
{
	/*
	 * The consumer's assignment changes with the role, at commit: changing it
	 * twice in a row can trip an assertion of librdkafka 2.0 (a second stop
	 * of a partition whose first stop is pending).
	 */
	apply_unassign(p);
	apply_discard_collected(&parts[p]);
}
