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
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/directory.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "directory.h"
#include "settings.h"

/* How long a failed publication waits before the next try (30s). */
#define DIRECTORY_RETRY_MS		30000

/* What this process published last, and when it last tried. */
static char *published = NULL;
static TimestampTz tried = 0;

static bool directory_callback(void *arg, int64 offset, const void *data,
							   size_t len);

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
