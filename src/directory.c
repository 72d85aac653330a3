/*-------------------------------------------------------------------------
 *
 * directory.c
 *		The cluster's directory of nodes: how to reach each one, in a
 *		compacted Kafka topic beside the replication log.
 *
 * A bootstrap without a source (rebuild(p), replkafka.auto_rebuild) needs a
 * peer that holds the partition.  Each node publishes its
 * replkafka.node_conninfo to the topic "<topic>-nodes" (one partition,
 * compacted, created by create_cluster()), keyed by its node name, so that
 * the topic keeps the last connection string of every node.  A record's
 * value is the node name, a NUL byte, and the connection string.  Bootstrap
 * worker 0 publishes when it starts and whenever the setting changes.
 *
 * The connection string travels through Kafka, readable by whoever can read
 * the topic: it should name a host, a port, a database and a user, and
 * leave passwords to the password file of the node that connects.
 *
 * replkafka.cluster_layout() asks every node of the directory for its roles,
 * for replkafka.plan_expansion() (in the extension's SQL script).
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/directory.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "directory.h"
#include "peer.h"
#include "settings.h"

/* How long a failed publication waits before the next try (30s). */
#define DIRECTORY_RETRY_MS		30000

/* What this process published last, and when it last tried. */
static char *published = NULL;
static TimestampTz tried = 0;

static bool directory_callback(void *arg, int64 offset, const void *data,
							   size_t len);
static void directory_ask_node(const ReplkafkaDirectoryEntry *e,
							   ReturnSetInfo *rsinfo);

/*
 * The directory's topic, beside the cluster's topic.
 */
char *
replkafka_directory_topic(const char *topic)
{
	return psprintf("%s-nodes", topic);
}

/*
 * Create the directory's topic if missing (create_cluster()).
 */
void
replkafka_directory_ensure_topic(const char *topic, int replication_factor)
{
	ReplkafkaTopicSpec spec;

	spec.name = replkafka_directory_topic(topic);
	spec.partitions = 1;
	spec.replication_factor = replication_factor;
	spec.retention_ms = -1;
	spec.compacted = true;
	replkafka_kafka_ensure_topic(&spec);
}

/*
 * Publish this node's connection string, if it is set and changed since
 * this process last published it.  A failure is logged and tried again
 * later: the node replicates all the same.
 */
void
replkafka_directory_publish(const char *topic)
{
	StringInfoData value;
	MemoryContext cxt = CurrentMemoryContext;

	if (replkafka_node_conninfo[0] == '\0' ||
		(published && strcmp(published, replkafka_node_conninfo) == 0) ||
		!TimestampDifferenceExceeds(tried, GetCurrentTimestamp(),
									DIRECTORY_RETRY_MS))
		return;
	tried = GetCurrentTimestamp();

	initStringInfo(&value);
	appendStringInfoString(&value, replkafka_node_name);
	appendStringInfoChar(&value, '\0');
	appendStringInfoString(&value, replkafka_node_conninfo);
	PG_TRY();
	{
		(void) replkafka_kafka_produce_sync(replkafka_directory_topic(topic), 0,
											replkafka_node_name,
											value.data, value.len,
											TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																		replkafka_request_timeout));
		if (published)
			pfree(published);
		published = MemoryContextStrdup(TopMemoryContext, replkafka_node_conninfo);
		tried = 0;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				errcode(edata->sqlerrcode),
				errmsg("could not publish \"replkafka.node_conninfo\" to the cluster: %s",
					   edata->message),
				errhint("Bootstraps without a source will not find this node until it is published.  It is tried again in %d s.",
						DIRECTORY_RETRY_MS / 1000));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pfree(value.data);
}

/*
 * Callback of replkafka_kafka_read(): keep the last entry of each node.
 */
static bool
directory_callback(void *arg, int64 offset, const void *data, size_t len)
{
	List	  **entries = arg;
	const char *nul = memchr(data, '\0', len);
	ReplkafkaDirectoryEntry *entry;
	ListCell   *lc;

	/* not ours: skip it */
	if (nul == NULL || nul == data || (size_t) (nul - (const char *) data) > REPLKAFKA_MAX_NODE_NAME)
		return true;
	entry = palloc(sizeof(ReplkafkaDirectoryEntry));
	entry->node_name = pnstrdup(data, nul - (const char *) data);
	entry->conninfo = pnstrdup(nul + 1, len - (nul + 1 - (const char *) data));
	foreach(lc, *entries)
	{
		ReplkafkaDirectoryEntry *e = lfirst(lc);

		if (strcmp(e->node_name, entry->node_name) == 0)
		{
			lfirst(lc) = entry;
			return true;
		}
	}
	*entries = lappend(*entries, entry);
	return true;
}

/*
 * Every node of the directory with its last connection string, read with
 * consumer; none if the topic is empty.
 */
List *
replkafka_directory_read(rd_kafka_t *consumer, const char *topic)
{
	char	   *dir = replkafka_directory_topic(topic);
	List	   *entries = NIL;
	int64		low;
	int64		high;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   replkafka_request_timeout);

	replkafka_kafka_watermarks(consumer, dir, 0, &low, &high, deadline);
	replkafka_kafka_read(consumer, dir, 0, low, high, deadline,
						 directory_callback, &entries);
	return entries;
}

PG_FUNCTION_INFO_V1(replkafka_cluster_layout);

/*
 * replkafka.cluster_layout(): every node of the directory, with its role in
 * each partition, as the node itself reports it.  Every node must answer:
 * a plan made from part of the cluster would be wrong.  Superusers only,
 * since it connects with the server's own credentials.
 */
Datum
replkafka_cluster_layout(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ReplkafkaCluster cluster;
	rd_kafka_t *consumer;
	List	   *volatile entries = NIL;
	ListCell   *lc;

	replkafka_check_preloaded();
	if (!superuser())
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("must be superuser to ask every node of the cluster"),
				errdetail("It connects to them with the server's own credentials."));
	if (!replkafka_catalog_get_cluster(&cluster))
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("replkafka cluster does not exist on this node"),
				errhint("Call replkafka.create_cluster() first."));
	InitMaterializedSRF(fcinfo, 0);

	consumer = replkafka_kafka_new(REPLKAFKA_CLIENT_READER, NULL);
	PG_TRY();
	{
		entries = replkafka_directory_read(consumer, cluster.topic);
	}
	PG_FINALLY();
	{
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	PG_END_TRY();

	foreach(lc, entries)
		directory_ask_node(lfirst(lc), rsinfo);
	return (Datum) 0;
}

/*
 * Add node e's role in each partition to rsinfo's result.
 */
static void
directory_ask_node(const ReplkafkaDirectoryEntry *e, ReturnSetInfo *rsinfo)
{
	PGconn	   *conn = replkafka_peer_connect(e->conninfo, false,
											  "replkafka layout");

	PG_TRY();
	{
		PGresult   *res;

		res = replkafka_peer_query(conn,
								   "SELECT partition, role FROM replkafka.partitions"
								   " ORDER BY partition", PGRES_TUPLES_OK);
		for (int i = 0; i < PQntuples(res); i++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			values[0] = CStringGetTextDatum(e->node_name);
			values[1] = CStringGetTextDatum(e->conninfo);
			values[2] = Int32GetDatum(pg_strtoint32(PQgetvalue(res, i, 0)));
			values[3] = CStringGetTextDatum(PQgetvalue(res, i, 1));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
								 values, nulls);
		}
		PQclear(res);
	}
	PG_FINALLY();
	{
		replkafka_peer_close(conn);
	}
	PG_END_TRY();
}
