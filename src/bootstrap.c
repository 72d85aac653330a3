/*-------------------------------------------------------------------------
 *
 * bootstrap.c
 *		The bootstrap workers: copy a partition from a peer, from a
 *		snapshot whose place in the log is known exactly, and make this
 *		node its replica from there.
 *
 * follow(p, source) and rebuild(p) put partition p in role bootstrapping
 * and record where to copy it from (replkafka.bootstraps).  Each of the
 * replkafka.max_bootstraps workers takes up such a partition, with the
 * others due whose bootstrap names the same source (its share of them,
 * so that the workers copy in parallel up to that limit): a group, whose
 * rows are read together, each table once, in one snapshot of the source,
 * as a new node's copy of many partitions comes from few peers.  It copies
 * the group in one local transaction:
 *
 *	1. It connects to the source (a logical replication connection, which
 *	   can create a slot and run SQL) and checks it: a member of this
 *	   cluster, primary or replica of p and not in error, and holding the
 *	   same replicated tables with the same columns and keys.
 *	2. It takes a snapshot of the source, in a REPEATABLE READ transaction
 *	   there, and reads the source's catalog of each partition p in it.
 *	   - From a replica, the snapshot holds the rows and the consumer
 *		 checkpoint that goes with them, updated by the same transactions:
 *		 the copy starts right after that checkpoint's offset.
 *	   - From a primary, whose transactions reach Kafka only after they
 *		 commit, the transaction starts by creating a temporary logical
 *		 replication slot that hands its snapshot over (SNAPSHOT 'use'), as
 *		 PostgreSQL's table synchronization does: the snapshot holds exactly
 *		 the transactions whose commit record comes before the slot's
 *		 consistent point C.  Creating the slot waits for the transactions
 *		 running then to end, but stops no writer.  Once the rows are
 *		 copied, the worker waits until the source's shipper has had every
 *		 commit before C acknowledged, then reads the source's generation
 *		 of p in the log: the last of its transactions with a commit LSN
 *		 below C is where the snapshot stands.  None of them may come after
 *		 another node's record (the source was a stale primary, and some
 *		 of the copied rows are not part of the cluster's history), and the
 *		 source must not have left any of them out of Kafka for the same
 *		 reason.
 *	3. It copies each table's rows of the group's partitions with one
 *	   COPY (binary where every column's type is built in, whose binary
 *	   form names no OID; with no filter when the group is every
 *	   partition), into the local tables as their owners, marked not to be
 *	   replicated, and (for a rebuild) after dropping the local rows of
 *	   those partitions in the same transaction.
 *	4. It records the position as the consumer checkpoint, with the
 *	   generations the source knows, and makes p a replica; the apply
 *	   worker takes it up from the checkpoint.  Kafka must still hold the
 *	   record after it.
 *
 * A partition that cannot come from the source (step 1, or its catalog in
 * the snapshot) leaves the group before any row is copied.  A failure
 * anywhere later rolls the local transaction back, leaving nothing
 * half-copied, and the partitions are tried again after a pause that
 * grows with each failure, showing the last error meanwhile; unfollow()
 * stops that.  When the failure is one partition's (its place in the log
 * not found, or unfollow()), the others are tried again at once without
 * it, and it is copied on its own from then on; when writing the group's
 * rows here fails in a way that would recur, each of them is.  A crash of
 * this node does the same: the partitions are still bootstrapping when it
 * starts again.
 *
 * Worker 0 also publishes this node's replkafka.node_conninfo to the
 * cluster (directory.c), so that a bootstrap without a source finds one.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/bootstrap.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "replication/origin.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "bootstrap.h"
#include "catalog.h"
#include "directory.h"
#include "kafka.h"
#include "logscan.h"
#include "message.h"
#include "partition_rows.h"
#include "peer.h"
#include "roles.h"
#include "settings.h"
#include "shmem.h"
#include "table.h"
#include "worker.h"

/* Longest sleep with nothing to do (10s). */
#define BOOTSTRAP_NAPTIME_MS		10000

/* A source that sends nothing for this long (60s) is given up. */
#define BOOTSTRAP_STALL_MS			60000

/* A primary source's shipper that does not move for this long (5 min). */
#define BOOTSTRAP_SHIP_STALL_MS		300000

/* How often a primary source is asked how far it shipped (100ms). */
#define BOOTSTRAP_POLL_MS			100

/*
 * How long a group waits for the apply workers to let go of its
 * partitions (1s), and how often it looks (10ms).
 */
#define BOOTSTRAP_GATHER_MS			1000
#define BOOTSTRAP_GATHER_POLL_MS	10

/* How often the progress of a copy is published (250ms). */
#define BOOTSTRAP_PROGRESS_MS		250

/* What the source says of itself and of the partition (peer_state()). */
typedef struct SourceState
{
	char	   *node_name;
	char	   *topic;
	int			partitions;
	ReplkafkaRole role;
	uint32		generation;
	bool		stale;			/* a primary found stale in generation */
	XLogRecPtr	history_end;	/* ...whose history ends there */
	XLogRecPtr	shipped_lsn;	/* Kafka holds every commit before it */
	char	   *last_error;
	int64		applied_offset; /* a replica's last record applied, or -1 */
} SourceState;

/* A column of a replicated table of the source, and its type. */
typedef struct SourceColumn
{
	char	   *name;
	char	   *type;			/* as format_type() shows it there */
	char	   *typnsp;			/* the type's schema and name */
	char	   *typname;
	int32		typmod;
} SourceColumn;

/* A replicated table of the source, and the local table it matches. */
typedef struct SourceTable
{
	char	   *schema;
	char	   *name;
	Oid			relid;			/* the local table */
	List	   *sourcecols;		/* of SourceColumn: the source's */
	List	   *columns;		/* of String: the columns copied */
	List	   *keys;			/* of String: the partition key, in order */
	bool		binary;			/* COPY in binary */
	double		reltuples;		/* the source's estimate of its size */
	int64		bytes;
} SourceTable;

/* A generation of the partition, as the source knows it. */
typedef struct SourceGeneration
{
	uint32		generation;
	char	   *node_name;
	int64		offset;
	TimestampTz started_at;
} SourceGeneration;

/* The source's catalog of the partition, in the snapshot. */
typedef struct SourceSnapshot
{
	ReplkafkaRole role;
	uint32		generation;
	bool		has_consumer;	/* its consumer checkpoint */
	ReplkafkaConsumerCheckpoint consumer;
	bool		has_producer;	/* its producer checkpoint */
	ReplkafkaProducerCheckpoint producer;
	List	   *generations;	/* of SourceGeneration */
} SourceSnapshot;

/* A partition being bootstrapped, and what its source says of it. */
typedef struct BootstrapPart
{
	int			partition;
	bool		rebuild;		/* drop this node's rows of it first */
	SourceState st;
	SourceSnapshot snap;
	bool		has_position;	/* where the copy stands in the log... */
	ReplkafkaConsumerCheckpoint pos;	/* ...(none: at its start) */
} BootstrapPart;

/* A check of a partition of a group against its source, before the copy. */
typedef void (*BootstrapCheck) (PGconn *conn, BootstrapPart *bp,
								const char *peer, bool found);

PGDLLEXPORT void replkafka_bootstrap_main(Datum main_arg);

static void bootstrap_exit(int code, Datum arg);
static void bootstrap_attempt(int first, bool alone);
static void bootstrap_release_all(ReplkafkaBootstrapOutcome outcome,
								  ReplkafkaBootstrapOutcome culprit_outcome,
								  const char *sqlstate, const char *message);
static bool bootstrap_same_source(const ReplkafkaBootstrapRequest *r,
								  const char *source);
static BootstrapPart *bootstrap_new_part(int partition, bool rebuild);
static int	bootstrap_part_cmp(const ListCell *a, const ListCell *b);
static List *bootstrap_recheck_group(List *parts, const char *source);
static void bootstrap_unclaim(int partition,
							  ReplkafkaBootstrapOutcome outcome,
							  const char *sqlstate, const char *message);
static List *bootstrap_claim_group(int first, bool alone, char **source);
static void bootstrap_group(int first, bool alone);
static bool bootstrap_try(BootstrapCheck check, PGconn *conn, BootstrapPart *bp,
						  const char *peer, bool found, bool explicit);
static void bootstrap_check_source_of(PGconn *conn, BootstrapPart *bp,
									  const char *peer, bool found);
static void bootstrap_check_snapshot_of(PGconn *conn, BootstrapPart *bp,
										const char *peer, bool found);
static void bootstrap_set_phase(List *parts, ReplkafkaPhase phase);
static void bootstrap_report_copy(void);
static char *bootstrap_find_source(int partition);
static List *bootstrap_check_peer(PGconn *conn, int partition,
								  const char *peer, const char *topic,
								  int partitions, SourceState *st);
static void bootstrap_source_state(PGconn *conn, int partition,
								   SourceState *st);
static void bootstrap_check_state(const SourceState *st, int partition,
								  const char *peer, const char *topic,
								  int partitions);
static List *bootstrap_source_tables(PGconn *conn);
static SourceTable *bootstrap_find_table(List *tables, const char *schema,
										 const char *name);
static void bootstrap_match_tables(List *tables, const char *peer);
static void bootstrap_match_table(SourceTable *t, const char *peer);
static XLogRecPtr bootstrap_begin_snapshot(PGconn *conn, int partition,
										   bool slot);
static void bootstrap_read_snapshot(PGconn *conn, int partition,
									SourceSnapshot *snap);
static void bootstrap_copy_table(PGconn *conn, const SourceTable *t,
								 List *parts);
static int	bootstrap_copy_read(void *outbuf, int minread, int maxread);
static void bootstrap_check_wanted(void);
static void bootstrap_cancelled(int partition, ReplkafkaRole role);
static void bootstrap_primary_position(PGconn *conn, BootstrapPart *bp,
									   XLogRecPtr consistent);
static void bootstrap_finish(const BootstrapPart *bp);
static void bootstrap_check_retention(int partition, int64 next);
static XLogRecPtr bootstrap_lsn(const char *text);
static char *bootstrap_value(PGresult *res, int row, int col);

static int	worker_index = -1;
static uint32 attempts = 0;		/* bootstraps this process began */
static char *topic_name = NULL;
static int	npartitions = 0;
static rd_kafka_t *consumer = NULL;

/*
 * The partitions this process claimed, copied together from one source
 * (in TopMemoryContext, so that a failure can still let go of them).
 */
static int *claimed = NULL;
static int	nclaimed = 0;

/*
 * The partition of the group a failure is its own (-1: the whole group's),
 * and whether that failure was its cancellation.
 */
static int	culprit = -1;
static bool cancelled = false;

/*
 * Whether a failure now is one of writing the copied rows here (not of
 * reading them from the source): set while COPY FROM writes.
 */
static bool local_write_failed = false;

/* The connection to the source, and the COPY being read from it. */
static PGconn *source_conn = NULL;
static char *copy_buf = NULL;	/* what PQgetCopyData() gave, not yet used */
static int	copy_len = 0;
static int	copy_pos = 0;
static bool copy_done = false;
static int64 copy_rows = 0;		/* rows copied of the group so far */
static int64 copy_bytes = 0;
static TimestampTz copy_published = 0;

/*
 * Register the bootstrap workers; called from _PG_init while preloading.
 */
void
replkafka_bootstrap_register(void)
{
	if (IsBinaryUpgrade)
		return;
	for (int i = 0; i < replkafka_max_bootstraps; i++)
		replkafka_worker_register("replkafka bootstrap worker",
								  "replkafka_bootstrap_main", i);
}

/*
 * Entry point of bootstrap worker main_arg.
 */
void
replkafka_bootstrap_main(Datum main_arg)
{
	worker_index = DatumGetInt32(main_arg);
	replkafka_worker_connect("replkafka bootstrap worker",
							 REPLKAFKA_BOOTSTRAP_SLOT(worker_index));
	before_shmem_exit(bootstrap_exit, (Datum) 0);

	replkafka_worker_write_as_replica();
	/* what it copies and drops is no change of the cluster's data */
	replkafka_do_not_replicate(true);

	replkafka_shmem_set_bootstrap_latch(worker_index, MyLatch);
	replkafka_worker_wait_for_cluster(&topic_name, &npartitions);
	claimed = MemoryContextAlloc(TopMemoryContext, npartitions * sizeof(int));
	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_READER, NULL);
	replkafka_worker_running();

	for (;;)
	{
		int			partition;
		bool		alone;

		if (worker_index == 0)
			replkafka_directory_publish(topic_name);
		while ((partition = replkafka_partition_claim_bootstrap(&alone)) >= 0)
		{
			bootstrap_attempt(partition, alone);
			CHECK_FOR_INTERRUPTS();
			replkafka_worker_reload_config(consumer);
		}
		pgstat_report_stat(true);
		replkafka_worker_reload_config(consumer);
		/* a failed partition is due again within the naptime's second */
		replkafka_worker_wait(worker_index == 0 ? 1000 : BOOTSTRAP_NAPTIME_MS);
	}
}

/*
 * On exit: the source's session ends (its slot goes with it), and the
 * partitions being copied wait for another worker.
 */
static void
bootstrap_exit(int code, Datum arg)
{
	LWLockReleaseAll();
	replkafka_peer_close(source_conn);
	source_conn = NULL;
	if (replkafka_shared)
	{
		replkafka_shmem_set_bootstrap_latch(worker_index, NULL);
		replkafka_shmem_release_bootstraps(MyProcPid);
	}
	if (consumer)
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	consumer = NULL;
}

/*
 * Bootstrap partition first, with the others due that come from the same
 * source, once; on failure, roll back, show why, and let them be tried
 * again later.  alone: first failed in a group, and is copied on its own.
 */
static void
bootstrap_attempt(int first, bool alone)
{
	MemoryContext cxt = CurrentMemoryContext;

	claimed[0] = first;
	nclaimed = 1;
	culprit = -1;
	cancelled = false;
	local_write_failed = false;
	replkafka_peer_wait_check = bootstrap_check_wanted;
	PG_TRY();
	{
		bootstrap_group(first, alone);
		bootstrap_release_all(REPLKAFKA_BOOTSTRAP_DONE, REPLKAFKA_BOOTSTRAP_DONE,
							  NULL, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char		msg[REPLKAFKA_ERROR_LEN];
		bool		group = nclaimed > 1;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		HOLD_INTERRUPTS();
		replkafka_worker_emit_handled_error();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		RESUME_INTERRUPTS();

		replkafka_peer_close(source_conn);
		source_conn = NULL;
		if (copy_buf)
			PQfreemem(copy_buf);
		copy_buf = NULL;
		snprintf(msg, sizeof(msg), "bootstrap failed: %s", edata->message);
		msg[pg_mbcliplen(msg, strlen(msg), strlen(msg))] = '\0';

		/*
		 * A failure of one partition of a group (cancelled, or its place in
		 * the log not found) lets the others be copied again at once, without
		 * it; it is copied on its own from then on, so that it fails alone.
		 * Writing the group's rows here failing in a way that would happen
		 * again (a row a constraint refuses, say) is some partition's, but
		 * which one is not known: each is copied on its own from then on. Any
		 * other failure (the source lost, Kafka unreachable) is the whole
		 * group's.
		 */
		if (culprit >= 0 && group)
			bootstrap_release_all(REPLKAFKA_BOOTSTRAP_LEFT,
								  cancelled ? REPLKAFKA_BOOTSTRAP_LEFT :
								  REPLKAFKA_BOOTSTRAP_FAILED_ALONE,
								  unpack_sql_state(edata->sqlerrcode), msg);
		else if (group && local_write_failed &&
				 !replkafka_worker_error_is_transient(edata->sqlerrcode))
			bootstrap_release_all(REPLKAFKA_BOOTSTRAP_FAILED_ALONE,
								  REPLKAFKA_BOOTSTRAP_FAILED_ALONE,
								  unpack_sql_state(edata->sqlerrcode), msg);
		else
			bootstrap_release_all(REPLKAFKA_BOOTSTRAP_FAILED,
								  REPLKAFKA_BOOTSTRAP_FAILED,
								  unpack_sql_state(edata->sqlerrcode), msg);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	replkafka_peer_wait_check = NULL;
	MemoryContextSwitchTo(cxt);
}

/*
 * Let go of the partitions claimed: the culprit of a failure with
 * culprit_outcome, the others with outcome.
 */
static void
bootstrap_release_all(ReplkafkaBootstrapOutcome outcome,
					  ReplkafkaBootstrapOutcome culprit_outcome,
					  const char *sqlstate, const char *message)
{
	for (int i = 0; i < nclaimed; i++)
		replkafka_partition_release_bootstrap(claimed[i],
											  claimed[i] == culprit ?
											  culprit_outcome : outcome,
											  sqlstate, message);
	nclaimed = 0;
	culprit = -1;
}

/*
 * Fail if a partition being bootstrapped no longer is (unfollow()): the
 * bootstrap stops wherever it waits.
 */
static void
bootstrap_check_wanted(void)
{
	for (int i = 0; i < nclaimed; i++)
	{
		if (!replkafka_partition_still_bootstrapping(claimed[i]))
			bootstrap_cancelled(claimed[i], REPLKAFKA_ROLE_BOOTSTRAPPING);
	}
}

/*
 * The bootstrap of partition was cancelled (role: what the node is now, if
 * known): fail, and let the others of its group be copied without it.
 */
static void
bootstrap_cancelled(int partition, ReplkafkaRole role)
{
	culprit = partition;
	cancelled = true;
	ereport(ERROR,
			errcode(ERRCODE_QUERY_CANCELED),
			errmsg("bootstrap of partition %d was cancelled", partition),
			role != REPLKAFKA_ROLE_BOOTSTRAPPING ?
			errdetail("This node is now %s of the partition.",
					  replkafka_role_name(role)) : 0);
}

/*
 * Is r's source the same as source (NULL: any peer)?
 */
static bool
bootstrap_same_source(const ReplkafkaBootstrapRequest *r, const char *source)
{
	if (r->source == NULL || source == NULL)
		return r->source == source;
	return strcmp(r->source, source) == 0;
}

/*
 * A BootstrapPart of partition, which rebuild or not.
 */
static BootstrapPart *
bootstrap_new_part(int partition, bool rebuild)
{
	BootstrapPart *bp = palloc0(sizeof(BootstrapPart));

	bp->partition = partition;
	bp->rebuild = rebuild;
	return bp;
}

/*
 * Claim the partitions to copy with first, from the same source: those
 * due whose bootstrap names the same source (or none, as first's may),
 * as many as it takes to share them out between the bootstrap workers.
 * Those whose apply worker has yet to let go of them (rebuild() of
 * replicas) are waited for a moment.  Returns them as BootstrapParts,
 * first first, and sets *source (NULL: any peer).
 */
static List *
bootstrap_claim_group(int first, bool alone, char **source)
{
	List	   *requests = replkafka_catalog_get_bootstraps();
	List	   *others = NIL;
	List	   *parts = NIL;
	ListCell   *lc;
	int			limit;
	TimestampTz deadline;

	*source = NULL;
	parts = list_make1(bootstrap_new_part(first, true));
	foreach(lc, requests)
	{
		ReplkafkaBootstrapRequest *r = lfirst(lc);

		if (r->partition == first)
		{
			*source = r->source;
			((BootstrapPart *) linitial(parts))->rebuild = r->rebuild;
		}
	}
	foreach(lc, requests)
	{
		ReplkafkaBootstrapRequest *r = lfirst(lc);

		if (r->partition != first && bootstrap_same_source(r, *source))
			others = lappend(others, r);
	}
	if (alone)
		return parts;

	limit = (list_length(others) + Max(replkafka_max_bootstraps, 1)) /
		Max(replkafka_max_bootstraps, 1);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), BOOTSTRAP_GATHER_MS);
	for (;;)
	{
		bool		busy = false;

		foreach(lc, others)
		{
			ReplkafkaBootstrapRequest *r = lfirst(lc);

			if (nclaimed >= limit)
				break;
			switch (replkafka_partition_claim_bootstrap_of(r->partition))
			{
				case REPLKAFKA_CLAIM_CLAIMED:
					claimed[nclaimed++] = r->partition;
					parts = lappend(parts, bootstrap_new_part(r->partition, r->rebuild));
					others = foreach_delete_current(others, lc);
					break;
				case REPLKAFKA_CLAIM_BUSY:
					busy = true;
					break;
				case REPLKAFKA_CLAIM_NOT_DUE:
					others = foreach_delete_current(others, lc);
					break;
			}
		}
		if (!busy || nclaimed >= limit || GetCurrentTimestamp() >= deadline)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 BOOTSTRAP_GATHER_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	if (nclaimed > 1)
		parts = bootstrap_recheck_group(parts, *source);
	/* their roles are locked in this order at the end */
	list_sort(parts, bootstrap_part_cmp);
	return parts;
}

/*
 * Read the requests of the group's partitions again, now that every one
 * is claimed, in a snapshot taken now (which the copy's deletes use too:
 * the apply workers let go of the partitions only as they were claimed):
 * a partition asked for anew from another source meanwhile (unfollow(),
 * then follow()) leaves the group, to be taken up at once on its own
 * terms.  Returns the group.
 */
static List *
bootstrap_recheck_group(List *parts, const char *source)
{
	List	   *requests;
	ListCell   *lc;

	PopActiveSnapshot();
	PushActiveSnapshot(GetTransactionSnapshot());
	requests = replkafka_catalog_get_bootstraps();
	foreach(lc, parts)
	{
		BootstrapPart *bp = lfirst(lc);
		ReplkafkaBootstrapRequest *now = NULL;
		ListCell   *rc;

		foreach(rc, requests)
		{
			if (((ReplkafkaBootstrapRequest *) lfirst(rc))->partition == bp->partition)
				now = lfirst(rc);
		}
		if (now && bootstrap_same_source(now, source) &&
			(foreach_current_index(lc) == 0 ||
			 replkafka_partition_still_bootstrapping(bp->partition)))
			bp->rebuild = now->rebuild;
		else if (foreach_current_index(lc) > 0)
		{
			bootstrap_unclaim(bp->partition, REPLKAFKA_BOOTSTRAP_LEFT, NULL, NULL);
			parts = foreach_delete_current(parts, lc);
		}
	}
	return parts;
}

/*
 * Let go of partition, claimed for the group, with outcome.
 */
static void
bootstrap_unclaim(int partition, ReplkafkaBootstrapOutcome outcome,
				  const char *sqlstate, const char *message)
{
	for (int i = 0; i < nclaimed; i++)
	{
		if (claimed[i] != partition)
			continue;
		claimed[i] = claimed[--nclaimed];
		replkafka_partition_release_bootstrap(partition, outcome, sqlstate,
											  message);
		return;
	}
}

/*
 * Order BootstrapParts by partition.
 */
static int
bootstrap_part_cmp(const ListCell *a, const ListCell *b)
{
	int			pa = ((BootstrapPart *) lfirst(a))->partition;
	int			pb = ((BootstrapPart *) lfirst(b))->partition;

	return (pa > pb) - (pa < pb);
}

/*
 * Copy partition first from its source, with the others of its group, and
 * make this node their replica: the steps of the file's header comment, in
 * one local transaction.
 */
static void
bootstrap_group(int first, bool alone)
{
	char	   *source;
	bool		explicit;
	char	   *peer;
	List	   *parts;
	List	   *tables;
	ListCell   *lc;
	XLogRecPtr	consistent = InvalidXLogRecPtr;
	bool		slot = false;
	Bitmapset  *dropped = NULL;
	int64		rows = 0;
	int64		bytes = 0;
	StringInfoData done;
	int			ndone;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	parts = bootstrap_claim_group(first, alone, &source);
	explicit = source != NULL;
	if (!explicit)
		source = bootstrap_find_source(first);
	peer = replkafka_peer_describe(source);
	foreach(lc, parts)
		ereport(LOG,
				errmsg("bootstrapping partition %d from peer %s",
					   ((BootstrapPart *) lfirst(lc))->partition, peer),
				list_length(parts) > 1 ?
				errdetail_plural("It is copied with %d other partition, in one snapshot.",
								 "It is copied with %d other partitions, in one snapshot.",
								 list_length(parts) - 1, list_length(parts) - 1) : 0);

	/* 1. the source, and what it holds */
	bootstrap_set_phase(parts, REPLKAFKA_PHASE_CONNECTING);
	source_conn = replkafka_peer_connect(source, true, "replkafka bootstrap");
	tables = bootstrap_source_tables(source_conn);
	bootstrap_match_tables(tables, peer);
	foreach(lc, parts)
	{
		BootstrapPart *bp = lfirst(lc);

		if (!bootstrap_try(bootstrap_check_source_of, source_conn, bp, peer,
						   !explicit && bp->partition != first, explicit))
			parts = foreach_delete_current(parts, lc);
		else if (bp->st.role == REPLKAFKA_ROLE_PRIMARY)
			slot = true;
	}

	/* the source's estimate of a partition's size: its tables' / P */
	foreach(lc, tables)
	{
		SourceTable *t = lfirst(lc);

		rows += (int64) (Max(t->reltuples, 0) / npartitions);
		bytes += t->bytes / npartitions;
	}

	/* 2. its snapshot, and its catalog of each partition in it */
	bootstrap_set_phase(parts, REPLKAFKA_PHASE_TAKING_SNAPSHOT);
	if (parts != NIL)
		consistent = bootstrap_begin_snapshot(source_conn, first, slot);
	foreach(lc, parts)
	{
		BootstrapPart *bp = lfirst(lc);

		if (!bootstrap_try(bootstrap_check_snapshot_of, source_conn, bp, peer,
						   !explicit && bp->partition != first, explicit))
			parts = foreach_delete_current(parts, lc);
		else
			replkafka_partition_set_copy_estimate(bp->partition, rows, bytes);
	}
	if (parts == NIL)
	{
		/* none of them can come from there: each has its error */
		replkafka_peer_close(source_conn);
		source_conn = NULL;
		PopActiveSnapshot();
		AbortCurrentTransaction();
		return;
	}

	/* 3. the rows, read once for the whole group */
	foreach(lc, parts)
	{
		BootstrapPart *bp = lfirst(lc);

		if (bp->rebuild)
			dropped = bms_add_member(dropped, bp->partition);
	}
	if (dropped)
	{
		bootstrap_set_phase(parts, REPLKAFKA_PHASE_DROPPING_ROWS);
		replkafka_partition_rows_check_references();
		replkafka_partition_drop_rows(dropped);
	}
	bootstrap_set_phase(parts, REPLKAFKA_PHASE_COPYING);
	copy_rows = copy_bytes = 0;
	foreach(lc, tables)
		bootstrap_copy_table(source_conn, lfirst(lc), parts);
	PQclear(replkafka_peer_query(source_conn, "COMMIT", PGRES_COMMAND_OK));

	/* 4. where the snapshot stands in the log, for each */
	bootstrap_set_phase(parts, REPLKAFKA_PHASE_FINDING_POSITION);
	foreach(lc, parts)
	{
		BootstrapPart *bp = lfirst(lc);

		if (bp->st.role == REPLKAFKA_ROLE_PRIMARY)
		{
			bootstrap_primary_position(source_conn, bp, consistent);
			bp->has_position = true;
		}
		else
		{
			bp->pos = bp->snap.consumer;
			bp->has_position = bp->snap.has_consumer;
		}
	}
	replkafka_peer_close(source_conn);
	source_conn = NULL;

	/* Kafka must still hold what comes after each, before a role is locked */
	foreach(lc, parts)
	{
		BootstrapPart *bp = lfirst(lc);

		bootstrap_check_retention(bp->partition,
								  bp->has_position ? bp->pos.kafka_offset + 1 : 0);
	}
	initStringInfo(&done);
	foreach(lc, parts)
	{
		BootstrapPart *bp = lfirst(lc);

		bootstrap_finish(bp);
		appendStringInfo(&done, "%s%d", done.len > 0 ? ", " : "", bp->partition);
	}
	/* the transaction's memory goes with its commit */
	ndone = list_length(parts);
	done.data = MemoryContextStrdup(TopMemoryContext, done.data);
	peer = MemoryContextStrdup(TopMemoryContext, peer);
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (ndone > 1)
		ereport(LOG,
				errmsg("partitions %s bootstrapped from peer %s: %lld rows",
					   done.data, peer, (long long) copy_rows),
				errdetail("Their rows were read together, in one snapshot."));
	else
		ereport(LOG,
				errmsg("partition %s bootstrapped from peer %s: %lld rows",
					   done.data, peer, (long long) copy_rows));
	pfree(done.data);
	pfree(peer);
}

/*
 * Run check of partition bp of a group against the source (found: a
 * source found for another partition, which must also be up to date).
 * On failure, let the partition go (explicit: the source was asked for,
 * so it is its failure; else to be tried again from another source) and
 * return false.  The checks only ask the source.
 */
static bool
bootstrap_try(BootstrapCheck check, PGconn *conn, BootstrapPart *bp,
			  const char *peer, bool found, bool explicit)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		check(conn, bp, peer, found);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char		msg[REPLKAFKA_ERROR_LEN];

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		culprit = -1;
		/* unless the bootstrap itself is what stopped */
		CHECK_FOR_INTERRUPTS();
		bootstrap_check_wanted();

		/*
		 * Nor is it this partition's failure if the worker was cancelled, or
		 * the source is lost or its transaction not usable: the whole
		 * group's.
		 */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			PQstatus(conn) != CONNECTION_OK ||
			(PQtransactionStatus(conn) != PQTRANS_IDLE &&
			 PQtransactionStatus(conn) != PQTRANS_INTRANS))
			ReThrowError(edata);
		snprintf(msg, sizeof(msg), "bootstrap failed: %s", edata->message);
		msg[pg_mbcliplen(msg, strlen(msg), strlen(msg))] = '\0';
		ereport(LOG,
				errmsg("partition %d cannot be bootstrapped from peer %s: %s",
					   bp->partition, peer, edata->message));
		bootstrap_unclaim(bp->partition,
						  explicit || !found ?
						  REPLKAFKA_BOOTSTRAP_FAILED : REPLKAFKA_BOOTSTRAP_LEFT,
						  unpack_sql_state(edata->sqlerrcode), msg);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Fail unless the source can be the source of partition bp: primary or
 * replica of it, not stale nor in error (and if found for another
 * partition, a replica that Kafka can still bring up to date).
 */
static void
bootstrap_check_source_of(PGconn *conn, BootstrapPart *bp, const char *peer,
						  bool found)
{
	bootstrap_source_state(conn, bp->partition, &bp->st);
	bootstrap_check_state(&bp->st, bp->partition, peer, topic_name,
						  npartitions);
	if (found && bp->st.role == REPLKAFKA_ROLE_REPLICA)
		bootstrap_check_retention(bp->partition, bp->st.applied_offset + 1);
}

/*
 * Read the source's catalog of partition bp in the snapshot, and fail
 * unless the source's role in it is the same as before the snapshot and,
 * from a replica, Kafka still holds what comes after the copy.
 */
static void
bootstrap_check_snapshot_of(PGconn *conn, BootstrapPart *bp, const char *peer,
							bool found)
{
	bootstrap_read_snapshot(conn, bp->partition, &bp->snap);
	if (bp->snap.role != bp->st.role)
		ereport(ERROR,
				errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				errmsg("peer %s changed its role in partition %d while the bootstrap began",
					   peer, bp->partition));
	if (bp->snap.role == REPLKAFKA_ROLE_REPLICA)
		bootstrap_check_retention(bp->partition,
								  bp->snap.has_consumer ?
								  bp->snap.consumer.kafka_offset + 1 : 0);
}

/*
 * Show the step the bootstrap of the partitions is at.
 */
static void
bootstrap_set_phase(List *parts, ReplkafkaPhase phase)
{
	ListCell   *lc;

	foreach(lc, parts)
		replkafka_set_phase(((BootstrapPart *) lfirst(lc))->partition, phase);
}

/*
 * Publish the progress of the copy: each partition of the group, whose
 * rows come mixed in one COPY, shows its share.
 */
static void
bootstrap_report_copy(void)
{
	for (int i = 0; i < nclaimed; i++)
		replkafka_partition_report_copy(claimed[i], copy_rows / nclaimed,
										copy_bytes / nclaimed);
}

/*
 * Check a source for follow() or rebuild() before the partition is
 * bootstrapped from it: a member of the cluster, primary or replica of
 * partition and not stale, with the same replicated tables.  The worker
 * checks all of it again.
 */
void
replkafka_bootstrap_check_source(const char *conninfo, int partition)
{
	char	   *peer = replkafka_peer_describe(conninfo);
	PGconn	   *conn;
	SourceState st;

	replkafka_peer_check_conninfo(conninfo);
	conn = replkafka_peer_connect(conninfo, true, "replkafka bootstrap");
	PG_TRY();
	{
		/* the server's credentials are for superusers only, as in dblink */
		if (!superuser() && !PQconnectionUsedPassword(conn))
			ereport(ERROR,
					errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
					errmsg("password is required"),
					errdetail("Non-superusers must give a password in the source's connection string."));
		(void) bootstrap_check_peer(conn, partition, peer, replkafka_topic,
									replkafka_cluster_partitions(), &st);
	}
	PG_FINALLY();
	{
		replkafka_peer_close(conn);
	}
	PG_END_TRY();
}

/*
 * A source for partition, from the cluster's directory: a replica, so
 * that the primary does no more work, or else the primary; any that is
 * stale, in error or unreachable is passed over.
 */
static char *
bootstrap_find_source(int partition)
{
	List	   *entries = replkafka_directory_read(consumer, topic_name);
	ListCell   *lc;
	char	   *primary = NULL;
	int			asked = 0;
	int64		low;
	int64		high;

	replkafka_kafka_watermarks(consumer, topic_name, partition, &low, &high,
							   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   BOOTSTRAP_STALL_MS));

	foreach(lc, entries)
	{
		ReplkafkaDirectoryEntry *e = lfirst(lc);
		MemoryContext cxt = CurrentMemoryContext;
		PGconn	   *volatile conn = NULL;
		SourceState st;

		if (strcmp(e->node_name, replkafka_node_name) == 0)
			continue;
		asked++;
		PG_TRY();
		{
			conn = replkafka_peer_connect(e->conninfo, true, "replkafka bootstrap");
			bootstrap_source_state(conn, partition, &st);
			bootstrap_check_state(&st, partition, e->node_name, topic_name,
								  npartitions);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			/* unless the bootstrap itself is what stopped */
			replkafka_peer_close(conn);
			conn = NULL;
			CHECK_FOR_INTERRUPTS();
			bootstrap_check_wanted();
			ereport(LOG,
					errmsg("node \"%s\" cannot be the source of partition %d: %s",
						   e->node_name, partition, edata->message));
			FreeErrorData(edata);
			st.role = REPLKAFKA_ROLE_OFFLINE;
		}
		PG_END_TRY();
		replkafka_peer_close(conn);
		/* a replica whose copy Kafka can no longer bring up to date: not it */
		if (st.role == REPLKAFKA_ROLE_REPLICA && st.applied_offset + 1 >= low)
			return e->conninfo;
		if (st.role == REPLKAFKA_ROLE_PRIMARY)
			primary = e->conninfo;
	}
	if (primary)
		return primary;
	ereport(ERROR,
			errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			errmsg("no node of the cluster can be the source of partition %d", partition),
			asked == 0 ?
			errdetail("No other node published its \"replkafka.node_conninfo\".") :
			errdetail("None of the %d other nodes that published their \"replkafka.node_conninfo\" is primary or replica of the partition and reachable.",
					  asked),
			errhint("Give the source: SELECT replkafka.rebuild(%d, source => '...').",
					partition));
	return NULL;				/* keep compiler quiet */
}

/*
 * Ask the peer on conn about itself and partition (*st), and fail unless
 * it can be a source of the partition for this cluster (topic, P) with
 * the same replicated tables; returns its tables, matched to this node's.
 */
static List *
bootstrap_check_peer(PGconn *conn, int partition, const char *peer,
					 const char *topic, int partitions, SourceState *st)
{
	List	   *tables;

	bootstrap_source_state(conn, partition, st);
	bootstrap_check_state(st, partition, peer, topic, partitions);
	tables = bootstrap_source_tables(conn);
	bootstrap_match_tables(tables, peer);
	return tables;
}

/*
 * Ask the source about itself and partition.
 */
static void
bootstrap_source_state(PGconn *conn, int partition, SourceState *st)
{
	PGresult   *res;
	char	   *sql;
	char	   *role;

	sql = psprintf("SELECT node_name, topic, partitions, role, generation,"
				   " stale, history_end, shipped_lsn, last_error, applied_offset"
				   " FROM replkafka.peer_state(%d)", partition);
	res = replkafka_peer_query(conn, sql, PGRES_TUPLES_OK);
	if (PQntuples(res) != 1 || PQnfields(res) != 10)
	{
		PQclear(res);
		ereport(ERROR,
				errcode(ERRCODE_PROTOCOL_VIOLATION),
				errmsg("peer gave a malformed answer about partition %d", partition));
	}
	st->node_name = bootstrap_value(res, 0, 0);
	st->topic = bootstrap_value(res, 0, 1);
	st->partitions = pg_strtoint32(PQgetvalue(res, 0, 2));
	role = bootstrap_value(res, 0, 3);
	if (!replkafka_role_from_name(role, &st->role))
		st->role = REPLKAFKA_ROLE_ERROR;
	st->generation = (uint32) pg_strtoint64(PQgetvalue(res, 0, 4));
	st->stale = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
	st->history_end = bootstrap_lsn(PQgetvalue(res, 0, 6));
	st->shipped_lsn = bootstrap_lsn(PQgetvalue(res, 0, 7));
	st->last_error = PQgetisnull(res, 0, 8) ? NULL : bootstrap_value(res, 0, 8);
	st->applied_offset = PQgetisnull(res, 0, 9) ? -1 : pg_strtoint64(PQgetvalue(res, 0, 9));
	PQclear(res);
}

/*
 * Fail unless the source can be bootstrapped from: another member of this
 * cluster, primary or replica of partition, not stale.
 */
static void
bootstrap_check_state(const SourceState *st, int partition, const char *peer,
					  const char *topic, int partitions)
{
	if (strcmp(st->node_name, replkafka_node_name) == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("peer %s is this node", peer),
				errhint("Give the connection string of another node of the cluster."));
	if (strcmp(st->topic, topic) != 0 || st->partitions != partitions)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("peer %s is not a member of this cluster", peer),
				errdetail("Node \"%s\" replicates through topic \"%s\" with %d partitions, this node through topic \"%s\" with %d.",
						  st->node_name, st->topic, st->partitions,
						  topic, partitions));
	if (st->stale)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("peer %s is a stale primary of partition %d", peer, partition),
				st->last_error ? errdetail("%s", st->last_error) : 0,
				errhint("Bootstrap from another node of the cluster."));
	if (st->role == REPLKAFKA_ROLE_ERROR)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("peer %s has partition %d in error", peer, partition),
				st->last_error ? errdetail("%s", st->last_error) : 0,
				errhint("Bootstrap from another node of the cluster."));
	if (st->role != REPLKAFKA_ROLE_PRIMARY && st->role != REPLKAFKA_ROLE_REPLICA)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("peer %s is neither primary nor replica of partition %d",
					   peer, partition),
				errdetail("Node \"%s\" is %s of partition %d.", st->node_name,
						  replkafka_role_name(st->role), partition));
}

/*
 * The source's replicated tables, each with the columns to copy and its
 * key, matched to this node's by schema and name.
 */
static List *
bootstrap_source_tables(PGconn *conn)
{
	PGresult   *res;
	List	   *tables = NIL;
	SourceTable *t = NULL;
	SourceColumn *col;

	res = replkafka_peer_query(conn,
							   "SELECT n.nspname, c.relname, a.attname,"
							   " pg_catalog.format_type(a.atttypid, a.atttypmod),"
							   " pg_catalog.array_position(t.key_attnums, a.attnum),"
							   " c.reltuples, pg_catalog.pg_table_size(c.oid),"
							   " tn.nspname, ty.typname, a.atttypmod"
							   " FROM replkafka.tables t"
							   " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid"
							   " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
							   " JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid"
							   " AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped"
							   " AND a.attgenerated OPERATOR(pg_catalog.=) ''"
							   " JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid"
							   " JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) ty.typnamespace"
							   " ORDER BY 1, 2, pg_catalog.array_position(t.key_attnums, a.attnum), a.attnum", PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(res); i++)
	{
		char	   *schema = PQgetvalue(res, i, 0);
		char	   *name = PQgetvalue(res, i, 1);

		if (t == NULL || strcmp(t->schema, schema) != 0 ||
			strcmp(t->name, name) != 0)
		{
			t = palloc0(sizeof(SourceTable));
			t->schema = pstrdup(schema);
			t->name = pstrdup(name);
			t->reltuples = strtod(PQgetvalue(res, i, 5), NULL);
			t->bytes = pg_strtoint64(PQgetvalue(res, i, 6));
			tables = lappend(tables, t);
		}
		/* key columns first, in key order, then the others */
		col = palloc(sizeof(SourceColumn));
		col->name = pstrdup(PQgetvalue(res, i, 2));
		col->type = pstrdup(PQgetvalue(res, i, 3));
		col->typnsp = pstrdup(PQgetvalue(res, i, 7));
		col->typname = pstrdup(PQgetvalue(res, i, 8));
		col->typmod = pg_strtoint32(PQgetvalue(res, i, 9));
		t->sourcecols = lappend(t->sourcecols, col);
		if (!PQgetisnull(res, i, 4))
			t->keys = lappend(t->keys, makeString(pstrdup(PQgetvalue(res, i, 2))));
	}
	PQclear(res);
	return tables;
}

/*
 * The table schema.name of tables, or NULL.
 */
static SourceTable *
bootstrap_find_table(List *tables, const char *schema, const char *name)
{
	ListCell   *lc;

	foreach(lc, tables)
	{
		SourceTable *t = lfirst(lc);

		if (strcmp(t->schema, schema) == 0 && strcmp(t->name, name) == 0)
			return t;
	}
	return NULL;
}

/*
 * Fail unless the source replicates the same tables as this node, with
 * the same columns (by name and type) and partition keys; set the local
 * table of each.
 */
static void
bootstrap_match_tables(List *tables, const char *peer)
{
	ListCell   *lc;

	foreach(lc, replkafka_catalog_tables())
	{
		ReplkafkaTableRow *row = lfirst(lc);
		char	   *schema = get_namespace_name(get_rel_namespace(row->relid));
		char	   *name = get_rel_name(row->relid);
		SourceTable *t;

		if (schema == NULL || name == NULL)
			continue;			/* dropped meanwhile */
		t = bootstrap_find_table(tables, schema, name);
		if (t == NULL)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					errmsg("table \"%s.%s\" is replicated on this node but not on peer %s",
						   schema, name, peer),
					errhint("Register the same tables on every node with replkafka.add_table()."));
		t->relid = row->relid;
	}
	foreach(lc, tables)
	{
		SourceTable *t = lfirst(lc);

		if (!OidIsValid(t->relid))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					errmsg("table \"%s.%s\" is replicated on peer %s but not on this node",
						   t->schema, t->name, peer),
					errhint("Register the same tables on every node with replkafka.add_table()."));
		bootstrap_match_table(t, peer);
	}
}

/*
 * Fail unless the local table of t has the same columns and partition key
 * as the source's; decide how it is copied, and which columns (t->columns).
 */
static void
bootstrap_match_table(SourceTable *t, const char *peer)
{
	Relation	rel = table_open(t->relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber *attnums;
	int			nkeys = replkafka_catalog_table_key(t->relid, &attnums);
	int			ncols = 0;
	List	   *names = NIL;
	ListCell   *lc;
	int			i = 0;

	t->binary = true;
	foreach(lc, t->sourcecols)
	{
		SourceColumn *col = lfirst(lc);
		AttrNumber	attnum = get_attnum(t->relid, col->name);
		Form_pg_attribute att;
		HeapTuple	typtup;
		Form_pg_type typ;
		bool		same;

		att = attnum > 0 ? TupleDescAttr(desc, attnum - 1) : NULL;
		if (att == NULL || att->attgenerated)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					errmsg("table \"%s.%s\" differs between this node and peer %s",
						   t->schema, t->name, peer),
					errdetail("Column \"%s\" exists on the peer only.", col->name));
		/* the same type: by schema and name, and the same modifier */
		typtup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(att->atttypid));
		if (!HeapTupleIsValid(typtup))
			elog(ERROR, "cache lookup failed for type %u", att->atttypid);
		typ = (Form_pg_type) GETSTRUCT(typtup);
		same = strcmp(NameStr(typ->typname), col->typname) == 0 &&
			strcmp(get_namespace_name(typ->typnamespace), col->typnsp) == 0 &&
			att->atttypmod == col->typmod;
		ReleaseSysCache(typtup);
		if (!same)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					errmsg("table \"%s.%s\" differs between this node and peer %s",
						   t->schema, t->name, peer),
					errdetail("Column \"%s\" is of type %s on the peer and %s here.",
							  col->name, col->type,
							  format_type_with_typemod(att->atttypid, att->atttypmod)));
		/* a user type's binary form may name its OID, which differs */
		if (att->atttypid >= FirstNormalObjectId)
			t->binary = false;
		names = lappend(names, makeString(col->name));
	}
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (!att->attisdropped && !att->attgenerated)
			ncols++;
	}
	if (ncols != list_length(names))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				errmsg("table \"%s.%s\" differs between this node and peer %s",
					   t->schema, t->name, peer),
				errdetail("It has %d columns here and %d on the peer.",
						  ncols, list_length(names)));
	foreach(lc, t->keys)
	{
		if (i >= nkeys ||
			strcmp(strVal(lfirst(lc)), NameStr(TupleDescAttr(desc, attnums[i] - 1)->attname)) != 0)
			break;
		i++;
	}
	if (i != nkeys || nkeys != list_length(t->keys))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				errmsg("table \"%s.%s\" differs between this node and peer %s",
					   t->schema, t->name, peer),
				errdetail("Its partition key is not the same."));
	t->columns = names;
	table_close(rel, AccessShareLock);
}

/*
 * Begin the source's snapshot transaction: if slot (the source is primary
 * of a partition copied), with a temporary slot whose snapshot it is,
 * returning the slot's consistent point; else InvalidXLogRecPtr.  A
 * replica's catalog read in that snapshot is as consistent with its rows
 * as in any other.
 */
static XLogRecPtr
bootstrap_begin_snapshot(PGconn *conn, int partition, bool slot)
{
	PGresult   *res;
	XLogRecPtr	consistent;
	char	   *sql;

	PQclear(replkafka_peer_query(conn, "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", PGRES_COMMAND_OK));
	if (!slot)
		return InvalidXLogRecPtr;

	/*
	 * Unique per node, worker and attempt: the slot of a cancelled attempt
	 * may outlive it a little.
	 */
	sql = psprintf("CREATE_REPLICATION_SLOT replkafka_bootstrap_%08x_%d_%d_%u"
				   " TEMPORARY LOGICAL pgoutput (SNAPSHOT 'use')",
				   hash_bytes((const unsigned char *) replkafka_node_name,
							  strlen(replkafka_node_name)),
				   partition, MyProcPid, ++attempts);
	res = replkafka_peer_query(conn, sql, PGRES_TUPLES_OK);
	if (PQntuples(res) != 1 || PQnfields(res) < 2)
	{
		PQclear(res);
		ereport(ERROR,
				errcode(ERRCODE_PROTOCOL_VIOLATION),
				errmsg("peer gave a malformed answer to CREATE_REPLICATION_SLOT"));
	}
	consistent = bootstrap_lsn(PQgetvalue(res, 0, 1));
	PQclear(res);
	return consistent;
}

/*
 * Read the source's catalog of partition, in its snapshot.
 */
static void
bootstrap_read_snapshot(PGconn *conn, int partition, SourceSnapshot *snap)
{
	PGresult   *res;
	char	   *role;

	memset(snap, 0, sizeof(SourceSnapshot));
	res = replkafka_peer_query(conn,
							   psprintf("SELECT r.role, r.generation,"
										" cc.generation, cc.scn, cc.kafka_offset, cc.ended,"
										" pc.scn, pc.commit_lsn, pc.kafka_offset"
										" FROM replkafka.partition_roles r"
										" LEFT JOIN replkafka.consumer_checkpoints cc"
										" ON cc.partition OPERATOR(pg_catalog.=) r.partition"
										" LEFT JOIN replkafka.producer_checkpoints pc"
										" ON pc.partition OPERATOR(pg_catalog.=) r.partition"
										" WHERE r.partition OPERATOR(pg_catalog.=) %d",
										partition), PGRES_TUPLES_OK);
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		ereport(ERROR,
				errcode(ERRCODE_PROTOCOL_VIOLATION),
				errmsg("peer has no role in partition %d", partition));
	}
	role = PQgetvalue(res, 0, 0);
	if (!replkafka_role_from_name(role, &snap->role))
		snap->role = REPLKAFKA_ROLE_ERROR;
	snap->generation = (uint32) pg_strtoint64(PQgetvalue(res, 0, 1));
	snap->has_consumer = !PQgetisnull(res, 0, 2);
	if (snap->has_consumer)
	{
		snap->consumer.partition = partition;
		snap->consumer.generation = (uint32) pg_strtoint64(PQgetvalue(res, 0, 2));
		snap->consumer.scn = (uint64) pg_strtoint64(PQgetvalue(res, 0, 3));
		snap->consumer.kafka_offset = pg_strtoint64(PQgetvalue(res, 0, 4));
		snap->consumer.ended = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
	}
	snap->has_producer = !PQgetisnull(res, 0, 6);
	if (snap->has_producer)
	{
		snap->producer.partition = partition;
		snap->producer.scn = (uint64) pg_strtoint64(PQgetvalue(res, 0, 6));
		snap->producer.commit_lsn = bootstrap_lsn(PQgetvalue(res, 0, 7));
		snap->producer.kafka_offset = pg_strtoint64(PQgetvalue(res, 0, 8));
	}
	PQclear(res);

	res = replkafka_peer_query(conn,
							   psprintf("SELECT generation, node_name, kafka_offset, started_at"
										" FROM replkafka.generations"
										" WHERE partition OPERATOR(pg_catalog.=) %d"
										" ORDER BY generation", partition), PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(res); i++)
	{
		SourceGeneration *g = palloc(sizeof(SourceGeneration));

		g->generation = (uint32) pg_strtoint64(PQgetvalue(res, i, 0));
		g->node_name = bootstrap_value(res, i, 1);
		g->offset = pg_strtoint64(PQgetvalue(res, i, 2));
		g->started_at = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																CStringGetDatum(PQgetvalue(res, i, 3)),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
		snap->generations = lappend(snap->generations, g);
	}
	PQclear(res);
}

/*
 * Copy table t's rows of the partitions parts from the source's snapshot
 * into the local table, as its owner, reading the table once.
 */
static void
bootstrap_copy_table(PGconn *conn, const SourceTable *t, List *parts)
{
	StringInfoData sql;
	StringInfoData cols;
	StringInfoData keys;
	ListCell   *lc;
	char	   *qualname = quote_qualified_identifier(t->schema, t->name);
	Relation	rel;
	ParseState *pstate;
	CopyFromState cstate;
	ReplkafkaOwnerContext owner;
	List	   *options;
	int64		before = copy_rows;
	uint64		processed;

	initStringInfo(&cols);
	foreach(lc, t->columns)
		appendStringInfo(&cols, "%s%s", cols.len > 0 ? ", " : "",
						 quote_identifier(strVal(lfirst(lc))));
	initStringInfo(&sql);
	appendStringInfo(&sql, "COPY (SELECT %s FROM ONLY %s", cols.data, qualname);
	/* all the partitions: all the rows */
	if (list_length(parts) < npartitions)
	{
		initStringInfo(&keys);
		foreach(lc, t->keys)
			appendStringInfo(&keys, ", %s", quote_identifier(strVal(lfirst(lc))));
		appendStringInfo(&sql,
						 " WHERE replkafka.key_partition(%s::pg_catalog.regclass%s)"
						 " OPERATOR(pg_catalog.=) ANY ('{",
						 quote_literal_cstr(qualname), keys.data);
		foreach(lc, parts)
			appendStringInfo(&sql, "%s%d", foreach_current_index(lc) > 0 ? "," : "",
							 ((BootstrapPart *) lfirst(lc))->partition);
		appendStringInfoString(&sql, "}'::pg_catalog.int4[])");
	}
	appendStringInfo(&sql, ") TO STDOUT (FORMAT %s)", t->binary ? "binary" : "text");
	replkafka_peer_copy_begin(conn, sql.data);

	copy_buf = NULL;
	copy_len = copy_pos = 0;
	copy_done = false;

	rel = table_open(t->relid, RowExclusiveLock);
	options = list_make1(makeDefElem("format",
									 (Node *) makeString(t->binary ? "binary" : "text"),
									 -1));
	pstate = make_parsestate(NULL);
	/* CopyFrom() finds the table in the range table */
	(void) addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL,
										 false, false);
	replkafka_table_become_owner(rel, &owner);
	cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, bootstrap_copy_read,
						   t->columns, options);
	local_write_failed = true;
	processed = CopyFrom(cstate);
	local_write_failed = false;
	EndCopyFrom(cstate);
	replkafka_table_restore_user(&owner);
	free_parsestate(pstate);
	table_close(rel, NoLock);

	/* the rows counted by messages, now exactly */
	copy_rows = before + (int64) processed;
	bootstrap_report_copy();
	if (copy_buf)
		PQfreemem(copy_buf);
	copy_buf = NULL;
}

/*
 * COPY FROM's data source: the COPY data the source sends, at least
 * minread bytes and at most maxread, 0 at the end.  Each message is one
 * row, which gives the progress.
 */
static int
bootstrap_copy_read(void *outbuf, int minread, int maxread)
{
	int			done = 0;

	while (done < minread && !copy_done)
	{
		int			n;

		if (copy_pos >= copy_len)
		{
			if (copy_buf)
				PQfreemem(copy_buf);
			copy_buf = NULL;
			local_write_failed = false;
			copy_len = replkafka_peer_copy_read(source_conn, &copy_buf,
												BOOTSTRAP_STALL_MS);
			local_write_failed = true;
			copy_pos = 0;
			if (copy_len < 0)
			{
				copy_len = 0;
				copy_done = true;
				break;
			}
			copy_rows++;
			copy_bytes += copy_len;
			if (TimestampDifferenceExceeds(copy_published, GetCurrentTimestamp(),
										   BOOTSTRAP_PROGRESS_MS))
			{
				copy_published = GetCurrentTimestamp();
				bootstrap_report_copy();
				bootstrap_check_wanted();
			}
		}
		n = Min(copy_len - copy_pos, maxread - done);
		memcpy((char *) outbuf + done, copy_buf + copy_pos, n);
		copy_pos += n;
		done += n;
	}
	return done;
}

/*
 * Where the snapshot of a primary source stands in the log of partition bp
 * (the header comment's step 2; bp->pos): wait for its shipper to have
 * Kafka acknowledge every commit before the slot's consistent point, then
 * read its generation for the last of those.
 */
static void
bootstrap_primary_position(PGconn *conn, BootstrapPart *bp,
						   XLogRecPtr consistent)
{
	int			partition = bp->partition;
	const SourceState *st = &bp->st;
	const SourceSnapshot *snap = &bp->snap;
	ReplkafkaConsumerCheckpoint *pos = &bp->pos;
	SourceState now;
	TimestampTz moved = GetCurrentTimestamp();
	XLogRecPtr	shipped = InvalidXLogRecPtr;
	const SourceGeneration *started = NULL;
	ListCell   *lc;
	LogScan		scan;
	int64		low;
	int64		high;
	int64		from;

	for (;;)
	{
		bootstrap_source_state(conn, partition, &now);
		if (now.shipped_lsn >= consistent)
			break;
		if (now.shipped_lsn != shipped)
			moved = GetCurrentTimestamp();
		shipped = now.shipped_lsn;
		if (TimestampDifferenceExceeds(moved, GetCurrentTimestamp(), BOOTSTRAP_SHIP_STALL_MS))
			ereport(ERROR,
					errcode(ERRCODE_CONNECTION_FAILURE),
					errmsg("the shipper of node \"%s\" has not shipped partition %d up to the snapshot for %d s",
						   st->node_name, partition, BOOTSTRAP_SHIP_STALL_MS / 1000),
					errdetail("Kafka acknowledged its commits up to %X/%X; the snapshot holds those before %X/%X.",
							  LSN_FORMAT_ARGS(now.shipped_lsn),
							  LSN_FORMAT_ARGS(consistent)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 BOOTSTRAP_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		bootstrap_check_wanted();
	}

	/*
	 * Still primary of the generation: a primary that lost its slot, or found
	 * itself stale, may have confirmed commits it never shipped.  (A source
	 * demoted meanwhile is tried again, from a replica then.)
	 */
	if (now.role != REPLKAFKA_ROLE_PRIMARY || now.generation != snap->generation)
	{
		culprit = partition;
		ereport(ERROR,
				errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				errmsg("peer node \"%s\" is no longer primary of partition %d in generation %u",
					   st->node_name, partition, snap->generation),
				errdetail("Its role in the partition is %s in generation %u.",
						  replkafka_role_name(now.role), now.generation));
	}

	/* commits it left out of Kafka, as a stale primary, are in the snapshot */
	if (now.stale && now.generation == snap->generation &&
		now.history_end < consistent)
	{
		culprit = partition;
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("peer node \"%s\" is stale in partition %d", st->node_name,
					   partition),
				errdetail("Its snapshot holds transactions of generation %u that are not part of the cluster's history.",
						  snap->generation),
				errhint("Bootstrap from another node of the cluster."));
	}

	foreach(lc, snap->generations)
	{
		const SourceGeneration *g = lfirst(lc);

		if (g->generation == snap->generation &&
			strcmp(g->node_name, st->node_name) == 0)
			started = g;
	}
	if (started == NULL)
	{
		culprit = partition;
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("peer node \"%s\" does not know where its generation %u of partition %d starts",
					   st->node_name, snap->generation, partition));
	}

	/* from its last transaction Kafka held at the snapshot, or its NEW_GEN */
	if (snap->has_producer &&
		RKM_SCN_GENERATION(snap->producer.scn) == snap->generation)
		replkafka_logscan_init(&scan, snap->generation,
							   RKM_SCN_SEQUENCE(snap->producer.scn),
							   snap->producer.commit_lsn,
							   snap->producer.kafka_offset);
	else
		replkafka_logscan_init(&scan, snap->generation, 0, InvalidXLogRecPtr,
							   started->offset);
	replkafka_logscan_set_writer(&scan, st->node_name, consistent);
	from = scan.offset + 1;
	replkafka_kafka_watermarks(consumer, topic_name, partition, &low, &high,
							   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   BOOTSTRAP_STALL_MS));
	if (from < high)
		replkafka_logscan_read_all(&scan, consumer, topic_name, partition,
								   from, high, BOOTSTRAP_STALL_MS);
	if (scan.hole || scan.orphans > 0)
	{
		culprit = partition;
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("peer node \"%s\" is stale in partition %d", st->node_name,
					   partition),
				scan.hole ?
				errdetail("Transaction %u of its generation %u is missing from Kafka.",
						  scan.hole_seq, snap->generation) :
				errdetail("Its snapshot holds transactions of generation %u that Kafka holds after another node's records: %s.",
						  snap->generation, scan.foreign_detail),
				errhint("Bootstrap from another node of the cluster."));
	}

	pos->partition = partition;
	pos->generation = snap->generation;
	pos->scn = RKM_SCN(snap->generation, scan.seq);
	pos->kafka_offset = scan.offset;
	pos->ended = false;
}

/*
 * Make this node replica of partition bp from the copied rows: the
 * position (none: from the start of the log) as the consumer checkpoint,
 * the generations the source knows, the bootstrap done.  The partition
 * must still be bootstrapping (unfollow() may have stopped it); Kafka was
 * found to hold the record after the position.
 */
static void
bootstrap_finish(const BootstrapPart *bp)
{
	int			partition = bp->partition;
	ReplkafkaRole role;
	uint32		generation;
	ListCell   *lc;

	replkafka_roles_lock(partition, &role, &generation);
	if (role != REPLKAFKA_ROLE_BOOTSTRAPPING ||
		!replkafka_partition_still_bootstrapping(partition))
		bootstrap_cancelled(partition, role);

	foreach(lc, bp->snap.generations)
	{
		const SourceGeneration *g = lfirst(lc);

		replkafka_catalog_add_generation(partition, g->generation, g->node_name,
										 g->offset, g->started_at);
	}
	if (bp->has_position)
	{
		replkafka_catalog_save_consumer_checkpoint(&bp->pos);
		generation = Max(generation, bp->pos.generation);
	}
	else
		replkafka_catalog_delete_consumer_checkpoint(partition);
	replkafka_catalog_delete_producer_checkpoint(partition);
	replkafka_catalog_end_bootstrap(partition);
	replkafka_catalog_set_role(partition, REPLKAFKA_ROLE_REPLICA, generation,
							   NULL, NULL);
	replkafka_roles_set_at_commit(partition, REPLKAFKA_ROLE_REPLICA, generation);
}

/*
 * Fail unless Kafka still holds the record at offset next of partition:
 * a copy that stands before it can never be applied past it.
 */
static void
bootstrap_check_retention(int partition, int64 next)
{
	int64		low;
	int64		high;

	replkafka_kafka_watermarks(consumer, topic_name, partition, &low, &high,
							   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   BOOTSTRAP_STALL_MS));
	if (next < low)
	{
		culprit = partition;
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("the source's copy of partition %d is older than Kafka's retention",
					   partition),
				errdetail("It stands before Kafka offset %lld, but the log begins at offset %lld.",
						  (long long) next, (long long) low),
				errhint("Bootstrap from the partition's primary, or from a replica that keeps up."));
	}
}

/*
 * An LSN in its text form ("16/B374D848"); empty or NULL text is
 * InvalidXLogRecPtr.
 */
static XLogRecPtr
bootstrap_lsn(const char *text)
{
	if (text == NULL || text[0] == '\0')
		return InvalidXLogRecPtr;
	return DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(text)));
}

/*
 * A copy of a value of a result, in the current memory context.
 */
static char *
bootstrap_value(PGresult *res, int row, int col)
{
	return pstrdup(PQgetvalue(res, row, col));
}
