/*-------------------------------------------------------------------------
 *
 * worker.c
 *		What replkafka's background workers have in common: registration,
 *		start-up, waiting for the cluster, and waiting on the latch and on
 *		Kafka at once.
 *
 * A worker waits on one set of events, built once: its latch and a pipe
 * that librdkafka writes to when a queue of the worker's client becomes
 * non-empty (rd_kafka_queue_io_event_enable), so that it wakes at once for
 * a commit to ship, a role change, a delivery report or a fetched record.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "kafka.h"
#include "roles.h"
#include "settings.h"
#include "shmem.h"
#include "worker.h"

/* How long to sleep between looks at a cluster that is not ready (10s). */
#define WORKER_CLUSTER_NAPTIME_MS	10000

/* How often a worker in trouble with Kafka asks it again (5s), and how long. */
#define WORKER_PROBE_INTERVAL_MS	5000
#define WORKER_PROBE_TIMEOUT_MS		1000

/* This worker's slot in replkafka_shared->workers, -1 before it is known. */
static int	worker_slot = -1;
static emit_log_hook_type prev_emit_log_hook = NULL;

/* Set when the worker exits to start again with a new configuration. */
static bool worker_restarting = false;

/*
 * Kafka trouble: the errors of this process's clients seen so far, whether
 * one since makes the cluster suspect, when it was last asked, and whether
 * the worker shows as retrying.
 */
static uint64 kafka_errors_seen = 0;
static bool kafka_suspect = false;
static TimestampTz kafka_last_probe = 0;
static bool worker_retrying = false;

/* This incarnation reported an error; it was told to terminate. */
static bool worker_errored = false;
static bool worker_terminated = false;

/* This incarnation published its start. */
static bool worker_started = false;

/* The error being emitted is one the worker handles and goes on after. */
static bool worker_error_handled = false;

static void worker_set_state(ReplkafkaWorkerState state);
static void worker_set_error(ReplkafkaWorkerState state, int sqlerrcode,
							 const char *message, const char *detail);
static void worker_trouble(int sqlerrcode, const char *message);
static void worker_emit_log(ErrorData *edata);
static void worker_exit(int code, Datum arg);

/* The pipe librdkafka signals; -1 when not set up. */
static int	wakeup_pipe[2] = {-1, -1};

/* What replkafka_worker_wait() waits for, built once: the latch, the pipe */
static WaitEventSet *wait_set = NULL;

/*
 * Register a static background worker running function(index).
 */
void
replkafka_worker_register(const char *type, const char *function, int index)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	strlcpy(bgw.bgw_library_name, REPLKAFKA_EXTENSION_NAME, BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, function, BGW_MAXLEN);
	if (index >= 0)
		snprintf(bgw.bgw_name, BGW_MAXLEN, "%s %d", type, index);
	else
		strlcpy(bgw.bgw_name, type, BGW_MAXLEN);
	strlcpy(bgw.bgw_type, type, BGW_MAXLEN);
	bgw.bgw_main_arg = Int32GetDatum(index);
	RegisterBackgroundWorker(&bgw);
}

/*
 * First steps of a worker: signals, the database connection, and session
 * settings common to all workers.  SIGTERM ends the worker at the next
 * CHECK_FOR_INTERRUPTS(): a transaction in progress rolls back, and Kafka
 * positions live in the catalog, so nothing is lost.
 */
void
replkafka_worker_connect(const char *appname, int slot)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	worker_slot = slot;
	worker_set_state(REPLKAFKA_WORKER_STARTING);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = worker_emit_log;
	before_shmem_exit(worker_exit, (Datum) 0);

	BackgroundWorkerInitializeConnection(replkafka_database, NULL, 0);
	pgstat_report_appname(appname);

	/* Our own bookkeeping need not wait for a WAL flush. */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Session settings of a worker that writes replicated rows it did not
 * decide on (an apply worker, a bootstrap worker): like PostgreSQL's apply
 * workers, no write fence and no user search path; values in the forms the
 * shipper and a peer's COPY write them (doc/protocol.md); and each
 * statement sees what committed before it, whatever the database's
 * default isolation, as the workers' reasoning about their snapshots
 * assumes.
 */
void
replkafka_worker_write_as_replica(void)
{
	SetConfigOption("session_replication_role", "replica", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("search_path", "", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("DateStyle", "ISO", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("IntervalStyle", "postgres", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Publish what the worker does; a new incarnation counts as a start.
 * Running, or waiting for a cluster, puts earlier errors behind it.
 */
static void
worker_set_state(ReplkafkaWorkerState state)
{
	if (worker_slot < 0 || replkafka_shared == NULL)
		return;
	replkafka_worker_status_update(worker_slot, state,
								   state == REPLKAFKA_WORKER_STARTING &&
								   !worker_started);
	if (state == REPLKAFKA_WORKER_STARTING)
		worker_started = true;
}

/*
 * Record an error of this worker: failing from now on, in state (or in
 * the state it is in, if state is REPLKAFKA_WORKER_NOT_STARTED).
 */
static void
worker_set_error(ReplkafkaWorkerState state, int sqlerrcode,
				 const char *message, const char *detail)
{
	char		error[REPLKAFKA_ERROR_LEN];

	/* the detail of an error often says why: keep it */
	if (detail)
		snprintf(error, sizeof(error), "%s. %s", message, detail);
	else
		strlcpy(error, message, sizeof(error));
	replkafka_worker_status_error(worker_slot, state,
								  unpack_sql_state(sqlerrcode), error);
}

/*
 * The worker finished starting: it has what it needs (the shipper its
 * slot and decoding context, an apply worker its consumer).
 */
void
replkafka_worker_running(void)
{
	worker_set_state(REPLKAFKA_WORKER_RUNNING);
}

/*
 * The worker runs but cannot do its work: show it as retrying, with the
 * reason as its last error; log when it starts retrying.
 */
static void
worker_trouble(int sqlerrcode, const char *message)
{
	worker_set_error(REPLKAFKA_WORKER_RETRYING, sqlerrcode, message, NULL);
	if (!worker_retrying)
		ereport(WARNING,
				errcode(sqlerrcode),
				errmsg("%s is retrying: %s", MyBgworkerEntry->bgw_name, message));
	worker_retrying = true;
}

/*
 * Watch the worker's Kafka client rk: once it reported an error, or while
 * the worker is stalled (records sent and not acknowledged for a while),
 * ask the cluster every few seconds whether topic can be reached.  The
 * worker shows as retrying, with the reason, until it can and the stall
 * is over.  A stall leads the reason, followed by what the probe found:
 * the probe asks one broker, and a broker that hangs fails it while the
 * others serve the topic.  Called from the worker's main loop.
 */
void
replkafka_worker_check_kafka(rd_kafka_t *rk, const char *topic,
							 const char *stall)
{
	TimestampTz now;
	char		reason[REPLKAFKA_ERROR_LEN];
	char		message[REPLKAFKA_ERROR_LEN];
	int			sqlerrcode;

	if (replkafka_kafka_errors() != kafka_errors_seen)
		kafka_suspect = true;
	if (kafka_suspect || stall != NULL)
	{
		now = GetCurrentTimestamp();
		if (!TimestampDifferenceExceeds(kafka_last_probe, now, WORKER_PROBE_INTERVAL_MS))
			return;
		kafka_last_probe = now;
		/* errors the probe itself causes are judged by the probe */
		kafka_errors_seen = replkafka_kafka_errors();
		if (!replkafka_kafka_probe(rk, topic, WORKER_PROBE_TIMEOUT_MS,
								   reason, sizeof(reason), &sqlerrcode))
		{
			snprintf(message, sizeof(message), "%s%scannot reach Kafka topic \"%s\": %s",
					 stall ? stall : "", stall ? "; " : "", topic, reason);
			worker_trouble(sqlerrcode, message);
			return;
		}
		kafka_suspect = false;
		if (stall != NULL)
		{
			worker_trouble(ERRCODE_CONNECTION_FAILURE, stall);
			return;
		}
	}
	if (worker_retrying)
	{
		worker_retrying = false;
		worker_set_state(REPLKAFKA_WORKER_RUNNING);
		ereport(LOG,
				errmsg("%s reaches Kafka again", MyBgworkerEntry->bgw_name));
	}
}

/*
 * The name of a worker state, as replkafka.workers shows it.
 */
const char *
replkafka_worker_state_name(ReplkafkaWorkerState state)
{
	static const char *const names[] = {
		"not started", "starting", "waiting for cluster", "running",
		"retrying", "failed"
	};

	StaticAssertStmt(lengthof(names) == REPLKAFKA_WORKER_FAILED + 1,
					 "a name for each state");
	return names[state];
}

/*
 * What an operator reads of a failing worker: "shipper failed at ...",
 * "apply worker 1 retrying at ...".
 */
char *
replkafka_worker_describe(int slot, const ReplkafkaWorkerStatus *w)
{
	char	   *name;

	if (slot == REPLKAFKA_SHIPPER_SLOT)
		name = "shipper";
	else if (slot >= REPLKAFKA_BOOTSTRAP_SLOT(0))
		name = psprintf("bootstrap worker %d", REPLKAFKA_SLOT_BOOTSTRAP_INDEX(slot));
	else
		name = psprintf("apply worker %d", REPLKAFKA_SLOT_APPLY_INDEX(slot));
	return psprintf("%s %s at %s with SQLSTATE %s: %s", name,
					w->state == REPLKAFKA_WORKER_RETRYING ? "retrying" : "failed",
					timestamptz_to_str(w->error_time), w->error_sqlstate,
					w->last_error);
}

/*
 * Keep the last error the worker reports, with its SQLSTATE and time, for
 * replkafka.workers: an error ends a worker (none catches errors in its
 * main loop), so it is failing from then on.  The termination a shutdown
 * or pg_terminate_backend() asks for is no failure.
 */
static void
worker_emit_log(ErrorData *edata)
{
	/* die() ends a worker with this FATAL error, once it is pending no more */
	if (edata->elevel == FATAL && edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
		worker_terminated = true;
	else if (edata->elevel >= ERROR && edata->elevel < PANIC &&
			 !worker_error_handled && worker_slot >= 0 &&
			 replkafka_shared != NULL)
	{
		worker_set_error(REPLKAFKA_WORKER_NOT_STARTED, edata->sqlerrcode,
						 edata->message ? edata->message : "", edata->detail);
		worker_errored = true;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * The worker ends: failed, unless it exits cleanly, is terminated, or
 * starts again for a new configuration.  An exit with an error it did not
 * report (a log line, then exit) is an error too.
 */
static void
worker_exit(int code, Datum arg)
{
	bool		failed = code != 0 && !worker_restarting && !worker_terminated;

	if (worker_slot < 0 || replkafka_shared == NULL)
		return;
	if (failed && !worker_errored)
	{
		char		message[64];

		snprintf(message, sizeof(message), "exited with exit code %d", code);
		worker_set_error(REPLKAFKA_WORKER_NOT_STARTED, ERRCODE_INTERNAL_ERROR,
						 message, NULL);
	}
	replkafka_worker_status_exit(worker_slot, failed);
}

/*
 * Wait until the extension exists, the cluster was created, and this node
 * has a name and brokers; return the topic and partition count.
 */
void
replkafka_worker_wait_for_cluster(char **topic, int *npartitions)
{
	for (;;)
	{
		bool		ready = false;
		ReplkafkaCluster cluster;

		if (replkafka_node_name[0] != '\0' && replkafka_brokers[0] != '\0')
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			if (OidIsValid(get_extension_oid(REPLKAFKA_EXTENSION_NAME, true)) &&
				replkafka_catalog_get_cluster(&cluster))
			{
				replkafka_roles_ensure_loaded();
				*topic = MemoryContextStrdup(TopMemoryContext, cluster.topic);
				*npartitions = cluster.partitions;
				ready = true;
			}
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		if (ready)
		{
			worker_set_state(REPLKAFKA_WORKER_STARTING);
			return;
		}
		worker_set_state(REPLKAFKA_WORKER_WAITING);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 WORKER_CLUSTER_NAPTIME_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		replkafka_worker_reload_config(NULL);
	}
}

/*
 * Make queue (of client rk) signal the worker's wakeup pipe when it fills.
 */
void
replkafka_worker_wakeup_init(rd_kafka_t *rk, rd_kafka_queue_t *queue)
{
	if (pipe(wakeup_pipe) != 0 ||
		fcntl(wakeup_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(wakeup_pipe[1], F_SETFL, O_NONBLOCK) != 0)
		ereport(ERROR,
				errcode_for_socket_access(),
				errmsg("could not create pipe for Kafka events: %m"));
	ReserveExternalFD();
	ReserveExternalFD();
	rd_kafka_queue_io_event_enable(queue, wakeup_pipe[1], "k", 1);
	/* the next wait watches the pipe too */
	if (wait_set != NULL)
		FreeWaitEventSet(wait_set);
	wait_set = NULL;
}

/*
 * Sleep until the latch is set, Kafka has something for us, or timeout.
 * A worker waits once per batch of work, thousands of times a second when
 * busy: the set of events is built once, not at every wait (an epoll
 * descriptor made and closed each time).
 */
void
replkafka_worker_wait(long timeout_ms)
{
	WaitEvent	event;
	char		buf[64];

	Assert(timeout_ms >= 0);
	if (wait_set == NULL)
	{
		WaitEventSet *set = CreateWaitEventSet(TopMemoryContext, 3);

		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		if (wakeup_pipe[0] >= 0)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, wakeup_pipe[0], NULL, NULL);
		wait_set = set;
	}
	(void) WaitEventSetWait(wait_set, timeout_ms, &event, 1, PG_WAIT_EXTENSION);
	if (wakeup_pipe[0] >= 0)
		while (read(wakeup_pipe[0], buf, sizeof(buf)) > 0)
			;
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Re-read the configuration on SIGHUP.  A worker with a Kafka client (rk)
 * whose configuration changed exits, to be started again with new clients.
 */
void
replkafka_worker_reload_config(rd_kafka_t *rk)
{
	char	   *brokers;
	char	   *options;

	if (!ConfigReloadPending)
		return;
	ConfigReloadPending = false;
	brokers = pstrdup(replkafka_brokers);
	options = pstrdup(replkafka_kafka_options);
	ProcessConfigFile(PGC_SIGHUP);
	if (rk &&
		(strcmp(brokers, replkafka_brokers) != 0 ||
		 strcmp(options, replkafka_kafka_options) != 0))
		replkafka_worker_restart("because the Kafka configuration changed");
	pfree(brokers);
	pfree(options);
}

/*
 * Exit, to be started again at once, for a reason (why, for the log) that
 * is no failure of the worker.
 */
void
replkafka_worker_restart(const char *why)
{
	ereport(LOG,
			errmsg("%s restarting %s", MyBgworkerEntry->bgw_name, why));
	worker_restarting = true;
	proc_exit(1);
}

/*
 * Emit the error being handled, which the worker catches to go on: in
 * full, as any error, but it does not make the worker failing (what it
 * concerns shows elsewhere: a partition in error, or retrying).
 */
void
replkafka_worker_emit_handled_error(void)
{
	worker_error_handled = true;
	PG_TRY();
	{
		EmitErrorReport();
	}
	PG_FINALLY();
	{
		worker_error_handled = false;
	}
	PG_END_TRY();
}

/*
 * Whether an error writing a transaction (applying it, or copying rows
 * from a peer) may pass by itself, so that the same work succeeds later: a
 * serialization failure or a deadlock (class 40), a lock timeout, a
 * cancel, a lack of resources (class 53: out of memory, a full disk,
 * temp_file_limit), a connection lost (class 08, but for a protocol
 * violation).  Any other error (the data, a missing table or column, a
 * constraint, a trigger's, the log itself) would fail the same way each
 * time.
 */
bool
replkafka_worker_error_is_transient(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_TRANSACTION_ROLLBACK:
		case ERRCODE_INSUFFICIENT_RESOURCES:
			return true;
		case ERRCODE_CONNECTION_EXCEPTION:
			return sqlerrcode != ERRCODE_PROTOCOL_VIOLATION;
		default:
			return sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
				sqlerrcode == ERRCODE_QUERY_CANCELED;
	}
}
