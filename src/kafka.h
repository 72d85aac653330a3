/*-------------------------------------------------------------------------
 *
 * kafka.h
 *		Thin layer over librdkafka: configuration, logging, error
 *		reporting, and the administrative calls made by SQL functions.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/kafka.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_KAFKA_H
#define REPLKAFKA_KAFKA_H

/* What a Kafka client handle is for; decides its fixed settings. */
typedef enum ReplkafkaClientKind
{
	REPLKAFKA_CLIENT_ADMIN,		/* SQL functions: metadata, topic creation */
	REPLKAFKA_CLIENT_PRODUCER,	/* the shipper */
	REPLKAFKA_CLIENT_CONSUMER,	/* apply workers */
} ReplkafkaClientKind;

/* Topic-level settings of the replication topic (DESIGN: no data loss). */
typedef struct ReplkafkaTopicSpec
{
	const char *name;
	int			partitions;
	int			replication_factor;
} ReplkafkaTopicSpec;

extern bool replkafka_kafka_validate_options(const char *options,
											 char **detail);
extern void replkafka_kafka_ensure_topic(const ReplkafkaTopicSpec *spec);

#endif							/* REPLKAFKA_KAFKA_H */
