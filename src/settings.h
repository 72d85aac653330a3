/*-------------------------------------------------------------------------
 *
 * settings.h
 *		replkafka's configuration parameters and the limits every module
 *		shares.
 *
 * The parameters of the Kafka clients (replkafka.brokers,
 * replkafka.kafka_options, replkafka.request_timeout) are kafka.c's, which
 * checks them; the others are defined here.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_SETTINGS_H
#define REPLKAFKA_SETTINGS_H

/* Name of the extension, its schema and its LWLock tranche. */
#define REPLKAFKA_EXTENSION_NAME	"replkafka"

/* Longest node name; it travels in every Kafka record header. */
#define REPLKAFKA_MAX_NODE_NAME		63

/* Most apply workers a node can run. */
#define REPLKAFKA_MAX_APPLY_WORKERS	64

/* Most bootstrap workers a node can run. */
#define REPLKAFKA_MAX_BOOTSTRAPS	16

/* Kafka allows at most this many characters in a topic name. */
#define REPLKAFKA_MAX_TOPIC_NAME	249

/* Configuration parameters. */
extern char *replkafka_node_name;
extern char *replkafka_topic;
extern char *replkafka_database;
extern bool replkafka_synchronous_commit;
extern int	replkafka_apply_workers;
extern int	replkafka_max_partitions;
extern int	replkafka_chunk_size;
extern char *replkafka_node_conninfo;
extern bool replkafka_auto_rebuild;
extern int	replkafka_max_bootstraps;

/* True when the library was loaded through shared_preload_libraries. */
extern bool replkafka_preloaded;

extern void replkafka_settings_define(void);
extern void replkafka_check_preloaded(void);

#endif							/* REPLKAFKA_SETTINGS_H */
