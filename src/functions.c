/*-------------------------------------------------------------------------
 *
 * functions.c
 *		SQL-callable functions of schema replkafka.
 *
 * Each function checks its arguments and this node's configuration first,
 * then works through catalog.c and kafka.c.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/functions.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"

#include "catalog.h"
#include "kafka.h"
#include "replkafka.h"

/* Kafka stores the replication factor in 16 bits. */
#define REPLKAFKA_MAX_REPLICATION_FACTOR	32767

PG_FUNCTION_INFO_V1(replkafka_create_cluster);

static void check_node_configured(void);

/*
 * Fail unless this node has a name and runs in replkafka's database.
 */
static void
check_node_configured(void)
{
	char	   *dbname;

	replkafka_check_preloaded();

	if (replkafka_node_name[0] == '\0')
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("this node has no name"),
				errhint("Set \"replkafka.node_name\" to a name unique within the cluster and restart the server."));

	dbname = get_database_name(MyDatabaseId);
	if (strcmp(dbname, replkafka_database) != 0)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("replkafka is configured for database \"%s\", not \"%s\"",
					   replkafka_database, dbname),
				errhint("Connect to database \"%s\", or set \"replkafka.database\" and restart the server.",
						replkafka_database));
}

/*
 * replkafka.create_cluster(partitions int, replication_factor int default 3)
 *
 * One-time set-up of this node: records the partition count P and makes
 * sure the cluster's topic exists with P partitions, creating it if
 * missing.  Every node of a cluster calls it with the same P; a call with
 * the P already recorded only checks the topic again.
 */
Datum
replkafka_create_cluster(PG_FUNCTION_ARGS)
{
	int32		partitions = PG_GETARG_INT32(0);
	int32		replication_factor = PG_GETARG_INT32(1);
	ReplkafkaCluster existing;
	ReplkafkaCluster cluster;
	ReplkafkaTopicSpec spec;
	bool		exists;

	check_node_configured();

	if (partitions < 1 || partitions > replkafka_max_partitions)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("number of partitions must be between 1 and %d",
					   replkafka_max_partitions),
				partitions > replkafka_max_partitions ?
				errhint("Raise \"replkafka.max_partitions\" and restart the server.") : 0);
	if (replication_factor < 1 ||
		replication_factor > REPLKAFKA_MAX_REPLICATION_FACTOR)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("replication factor must be between 1 and %d",
					   REPLKAFKA_MAX_REPLICATION_FACTOR));

	replkafka_catalog_lock_cluster();
	exists = replkafka_catalog_get_cluster(&existing);
	if (exists)
	{
		if (existing.partitions != partitions)
			ereport(ERROR,
					errcode(ERRCODE_DUPLICATE_OBJECT),
					errmsg("cluster already exists with %d partitions",
						   existing.partitions),
					errdetail("The number of partitions of a cluster cannot change."));
		if (strcmp(existing.topic, replkafka_topic) != 0)
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("cluster was created with topic \"%s\", but \"replkafka.topic\" is \"%s\"",
						   existing.topic, replkafka_topic),
					errhint("Set \"replkafka.topic\" back to \"%s\" and restart the server.",
							existing.topic));
	}

	spec.name = replkafka_topic;
	spec.partitions = partitions;
	spec.replication_factor = replication_factor;
	replkafka_kafka_ensure_topic(&spec);

	if (!exists)
	{
		cluster.topic = replkafka_topic;
		cluster.partitions = partitions;
		cluster.replication_factor = replication_factor;
		cluster.node_name = replkafka_node_name;
		replkafka_catalog_insert_cluster(&cluster);
	}

	PG_RETURN_VOID();
}
