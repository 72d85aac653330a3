/*-------------------------------------------------------------------------
 *
 * directory.h
 *		The cluster's directory of nodes: how to reach each one, in a
 *		compacted Kafka topic beside the replication log.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/directory.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_DIRECTORY_H
#define REPLKAFKA_DIRECTORY_H

#include "kafka.h"
#include "nodes/pg_list.h"

/* A node of the directory. */
typedef struct ReplkafkaDirectoryEntry
{
	char	   *node_name;
	char	   *conninfo;
} ReplkafkaDirectoryEntry;

extern char *replkafka_directory_topic(const char *topic);
extern void replkafka_directory_ensure_topic(const char *topic,
											 int replication_factor);
extern void replkafka_directory_publish(const char *topic);
extern List *replkafka_directory_read(rd_kafka_t *consumer, const char *topic);

#endif							/* REPLKAFKA_DIRECTORY_H */
