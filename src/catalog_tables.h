/*-------------------------------------------------------------------------
 *
 * catalog_tables.h
 *		The columns of replkafka's catalog tables, as
 *		replkafka--0.1.sql creates them.
 *
 * catalog.c reads rows by these numbers, from system-table scans and from
 * SPI queries that select whole rows; a change of a table's columns in the
 * extension script changes them here.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/catalog_tables.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_CATALOG_TABLES_H
#define REPLKAFKA_CATALOG_TABLES_H

/* replkafka.cluster */
#define Natts_cluster						6
#define Anum_cluster_singleton				1
#define Anum_cluster_topic					2
#define Anum_cluster_partitions				3
#define Anum_cluster_replication_factor		4
#define Anum_cluster_node_name				5
#define Anum_cluster_created_at				6

/* replkafka.tables */
#define Natts_tables						3
#define Anum_tables_relid					1
#define Anum_tables_key_attnums				2
#define Anum_tables_added_at				3

/* replkafka.partition_roles */
#define Natts_partition_roles				6
#define Anum_partition_roles_partition		1
#define Anum_partition_roles_role			2
#define Anum_partition_roles_generation		3
#define Anum_partition_roles_last_error		4
#define Anum_partition_roles_error_sqlstate	5
#define Anum_partition_roles_changed_at		6

/* replkafka.generations */
#define Natts_generations					5
#define Anum_generations_partition			1
#define Anum_generations_generation			2
#define Anum_generations_node_name			3
#define Anum_generations_kafka_offset		4
#define Anum_generations_started_at			5

/* replkafka.producer_checkpoints */
#define Natts_producer_checkpoints			4
#define Anum_producer_checkpoints_partition	1
#define Anum_producer_checkpoints_scn		2
#define Anum_producer_checkpoints_commit_lsn	3
#define Anum_producer_checkpoints_kafka_offset	4

/* replkafka.consumer_checkpoints */
#define Natts_consumer_checkpoints			5
#define Anum_consumer_checkpoints_partition	1
#define Anum_consumer_checkpoints_generation	2
#define Anum_consumer_checkpoints_scn		3
#define Anum_consumer_checkpoints_kafka_offset	4
#define Anum_consumer_checkpoints_ended		5

#endif							/* REPLKAFKA_CATALOG_TABLES_H */
