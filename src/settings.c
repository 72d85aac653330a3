/*-------------------------------------------------------------------------
 *
 * settings.c
 *		replkafka's configuration parameters, but those of the Kafka
 *		clients (kafka.c), and the check that the library was preloaded.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "message.h"
#include "settings.h"

static bool check_node_name(char **newval, void **extra, GucSource source);
static bool check_topic(char **newval, void **extra, GucSource source);

/* GUC variables */
char	   *replkafka_node_name = NULL;
char	   *replkafka_topic = NULL;
char	   *replkafka_database = NULL;
bool		replkafka_synchronous_commit = false;
int			replkafka_apply_workers = 2;
int			replkafka_max_partitions = 1024;
int			replkafka_chunk_size = 512 * 1024;
char	   *replkafka_node_conninfo = NULL;
bool		replkafka_auto_rebuild = false;
int			replkafka_max_bootstraps = 2;

bool		replkafka_preloaded = false;

/*
 * Define the parameters; called from _PG_init while preloading.
 */
void
replkafka_settings_define(void)
{
	replkafka_preloaded = true;

	DefineCustomStringVariable("replkafka.node_name",
							   gettext_noop("Sets this node's name, unique within the replkafka cluster."),
							   gettext_noop("Letters, digits, \"_\", \".\" and \"-\", at most 63 characters."),
							   &replkafka_node_name,
							   "",
							   PGC_POSTMASTER,
							   0,
							   check_node_name, NULL, NULL);

	DefineCustomStringVariable("replkafka.topic",
							   gettext_noop("Sets the Kafka topic that carries the cluster's replication log."),
							   NULL,
							   &replkafka_topic,
							   "replkafka",
							   PGC_POSTMASTER,
							   0,
							   check_topic, NULL, NULL);

	DefineCustomStringVariable("replkafka.database",
							   gettext_noop("Sets the database replkafka's workers connect to."),
							   NULL,
							   &replkafka_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("replkafka.synchronous_commit",
							 gettext_noop("Makes COMMIT wait until Kafka holds the transaction."),
							 NULL,
							 &replkafka_synchronous_commit,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("replkafka.apply_workers",
							gettext_noop("Sets the number of apply workers on this node."),
							NULL,
							&replkafka_apply_workers,
							2,
							1, REPLKAFKA_MAX_APPLY_WORKERS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("replkafka.max_partitions",
							gettext_noop("Sets the largest number of partitions a cluster can have."),
							gettext_noop("Sizes shared memory; create_cluster rejects a larger partition count."),
							&replkafka_max_partitions,
							1024,
							1, 65536,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("replkafka.chunk_size",
							gettext_noop("Sets the largest body of a Kafka record; larger transactions are cut into chunks."),
							gettext_noop("Must stay below the topic's \"max.message.bytes\"."),
							&replkafka_chunk_size,
							512 * 1024,
							REPLKAFKA_MIN_CHUNK_SIZE, REPLKAFKA_MAX_CHUNK_SIZE,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("replkafka.node_conninfo",
							   gettext_noop("Sets how peers reach this node to bootstrap a partition from it."),
							   gettext_noop("A libpq connection string, published to the cluster; keep passwords out of it."),
							   &replkafka_node_conninfo,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("replkafka.auto_rebuild",
							 gettext_noop("Makes a replica whose next record left Kafka's retention rebuild itself from a peer."),
							 NULL,
							 &replkafka_auto_rebuild,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("replkafka.max_bootstraps",
							gettext_noop("Sets how many partitions this node bootstraps from peers at once."),
							gettext_noop("Each runs in a bootstrap worker of its own."),
							&replkafka_max_bootstraps,
							2,
							0, REPLKAFKA_MAX_BOOTSTRAPS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

/*
 * Fail unless the library was loaded through shared_preload_libraries.
 */
void
replkafka_check_preloaded(void)
{
	if (!replkafka_preloaded)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("replkafka must be loaded via \"shared_preload_libraries\""),
				errhint("Add replkafka to \"shared_preload_libraries\" and restart the server."));
}

/*
 * Check that s consists of name characters only (replkafka_message_is_name_char():
 * Kafka's topic alphabet, which also keeps node names safe in record
 * headers, client ids and log lines); report the first bad one.
 */
static bool
check_name_chars(const char *s)
{
	const char *p;

	for (p = s; *p; p++)
	{
		if (!replkafka_message_is_name_char(*p))
		{
			GUC_check_errdetail("Character \"%c\" is not allowed; use letters, digits, \"_\", \".\" and \"-\".",
								*p);
			return false;
		}
	}
	return true;
}

/*
 * GUC check hook for replkafka.node_name.  Empty means "not configured".
 */
static bool
check_node_name(char **newval, void **extra, GucSource source)
{
	if (strlen(*newval) > REPLKAFKA_MAX_NODE_NAME)
	{
		GUC_check_errdetail("A node name can have at most %d characters.",
							REPLKAFKA_MAX_NODE_NAME);
		return false;
	}
	return check_name_chars(*newval);
}

/*
 * GUC check hook for replkafka.topic: Kafka's own rules for topic names.
 */
static bool
check_topic(char **newval, void **extra, GucSource source)
{
	if ((*newval)[0] == '\0' || strcmp(*newval, ".") == 0 ||
		strcmp(*newval, "..") == 0)
	{
		GUC_check_errdetail("A Kafka topic name cannot be empty, \".\" or \"..\".");
		return false;
	}
	if (strlen(*newval) > REPLKAFKA_MAX_TOPIC_NAME)
	{
		GUC_check_errdetail("A Kafka topic name can have at most %d characters.",
							REPLKAFKA_MAX_TOPIC_NAME);
		return false;
	}
	return check_name_chars(*newval);
}
