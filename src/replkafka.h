/*-------------------------------------------------------------------------
 *
 * replkafka.h
 *		Declarations shared by all of replkafka's modules: configuration
 *		parameters and common limits.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/replkafka.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_H
#define REPLKAFKA_H

/* Name of the extension, its schema and its LWLock tranche. */
#define REPLKAFKA_EXTENSION_NAME	"replkafka"

/* Longest node name; it travels in every Kafka record header. */
#define REPLKAFKA_MAX_NODE_NAME		63

/* Most apply workers a node can run. */
#define REPLKAFKA_MAX_APPLY_WORKERS	64

/* Kafka allows at most this many characters in a topic name. */
#define REPLKAFKA_MAX_TOPIC_NAME	249

/* Configuration parameters (replkafka.c). */
extern char *replkafka_node_name;
extern char *replkafka_brokers;
extern char *replkafka_topic;
extern char *replkafka_database;
extern char *replkafka_kafka_options;
extern bool replkafka_synchronous_commit;
extern int	replkafka_apply_workers;
extern int	replkafka_max_partitions;
extern int	replkafka_request_timeout;
extern int	replkafka_chunk_size;

/* True when the library was loaded through shared_preload_libraries. */
extern bool replkafka_preloaded;

extern void replkafka_check_preloaded(void);

#endif							/* REPLKAFKA_H */
