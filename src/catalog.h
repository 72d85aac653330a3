/*-------------------------------------------------------------------------
 *
 * catalog.h
 *		Access to replkafka's catalog tables.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_H
#define CATALOG_H

/* The row of replkafka.cluster. */
typedef struct ReplkafkaCluster
{
	char	   *topic;
	int			partitions;
	int			replication_factor;
	char	   *node_name;
} ReplkafkaCluster;

extern void replkafka_catalog_lock_cluster(void);
extern bool replkafka_catalog_get_cluster(ReplkafkaCluster *cluster);
extern void replkafka_catalog_insert_cluster(const ReplkafkaCluster *cluster);

#endif							/* CATALOG_H */
