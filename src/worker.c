/*-------------------------------------------------------------------------
 *
 * worker.c
 *		What replkafka's background workers have in common: registration,
 *		start-up, waiting for the cluster, and waiting on the latch and on
 *		Kafka at once.
 *
 * A worker waits with WaitLatchOrSocket() on its latch and on a pipe that
 * librdkafka writes to when a queue of the worker's client becomes
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
#include "utils/wait_event.h"

#include "catalog.h"
#include "replkafka.h"
#include "shmem.h"
#include "worker.h"

/* How long to sleep between looks at a cluster that is not ready (10s). */
#define WORKER_CLUSTER_NAPTIME_MS	10000

/* The pipe librdkafka signals; -1 when not set up. */
static int	wakeup_pipe[2] = {-1, -1};

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
replkafka_worker_connect(const char *appname)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(replkafka_database, NULL, 0);
	pgstat_report_appname(appname);

	/* Our own bookkeeping need not wait for a WAL flush. */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
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
				replkafka_shmem_ensure_loaded();
				*topic = MemoryContextStrdup(TopMemoryContext, cluster.topic);
				*npartitions = cluster.partitions;
				ready = true;
			}
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		if (ready)
			return;

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
}

/*
 * Sleep until the latch is set, Kafka has something for us, or timeout.
 */
void
replkafka_worker_wait(long timeout_ms)
{
	char		buf[64];

	if (wakeup_pipe[0] < 0)
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms, PG_WAIT_EXTENSION);
	else
	{
		(void) WaitLatchOrSocket(MyLatch,
								 WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT |
								 WL_EXIT_ON_PM_DEATH,
								 wakeup_pipe[0], timeout_ms, PG_WAIT_EXTENSION);
		while (read(wakeup_pipe[0], buf, sizeof(buf)) > 0)
			;
	}
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
	{
		ereport(LOG,
				errmsg("%s restarting because the Kafka configuration changed",
					   MyBgworkerEntry->bgw_name));
		proc_exit(1);
	}
	pfree(brokers);
	pfree(options);
}
