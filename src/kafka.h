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

#include <librdkafka/rdkafka.h>

#include "utils/timestamp.h"

/* What a Kafka client handle is for; decides its fixed settings. */
typedef enum ReplkafkaClientKind
{
	REPLKAFKA_CLIENT_ADMIN,		/* SQL functions: metadata, topic creation */
	REPLKAFKA_CLIENT_PRODUCER,	/* the shipper */
	REPLKAFKA_CLIENT_CONSUMER,	/* apply workers: follow partitions */
	REPLKAFKA_CLIENT_CONTROL,	/* promote() and demote(): one record each */
	REPLKAFKA_CLIENT_READER,	/* reads known ranges of partitions */
} ReplkafkaClientKind;

#define REPLKAFKA_CLIENT_IS_CONSUMER(kind) \
	((kind) == REPLKAFKA_CLIENT_CONSUMER || (kind) == REPLKAFKA_CLIENT_READER)

/* Topic-level settings of the replication topic (DESIGN: no data loss). */
typedef struct ReplkafkaTopicSpec
{
	const char *name;
	int			partitions;
	int			replication_factor;
	int64		retention_ms;	/* -1: keep every record */
	bool		compacted;		/* keep the last record of each key instead */
} ReplkafkaTopicSpec;

/* Delivery report callback of a producer. */
typedef void (*ReplkafkaDeliveryCallback) (rd_kafka_t *rk,
										   const rd_kafka_message_t *msg,
										   void *opaque);

/* Called for each record read; returns false to stop reading. */
typedef bool (*ReplkafkaRecordCallback) (void *arg, int64 offset,
										 const void *data, size_t len);

/* Configuration parameters of the Kafka clients. */
extern char *replkafka_brokers;
extern char *replkafka_kafka_options;
extern int	replkafka_request_timeout;

extern void replkafka_kafka_define_settings(void);
extern bool replkafka_kafka_validate_options(const char *options,
											 char **detail);
extern rd_kafka_t *replkafka_kafka_new(ReplkafkaClientKind kind,
									   ReplkafkaDeliveryCallback dr_cb);
extern void replkafka_kafka_note_error(int err, const char *reason);
extern uint64 replkafka_kafka_errors(void);
extern bool replkafka_kafka_probe(rd_kafka_t *rk, const char *topic,
								  int timeout_ms, char *reason, size_t size,
								  int *sqlerrcode);
extern bool replkafka_kafka_fatal(rd_kafka_t *rk, char *reason, size_t size);
extern void replkafka_kafka_ensure_topic(const ReplkafkaTopicSpec *spec);
extern void replkafka_kafka_watermarks(rd_kafka_t *rk, const char *topic,
									   int partition, int64 *low, int64 *high,
									   TimestampTz deadline);
extern void replkafka_kafka_read(rd_kafka_t *consumer, const char *topic,
								 int partition, int64 from, int64 to,
								 TimestampTz deadline,
								 ReplkafkaRecordCallback cb, void *arg);
extern void replkafka_kafka_read_all(rd_kafka_t *consumer, const char *topic,
									 int partition, int64 from, int64 to,
									 int stall_ms, ReplkafkaRecordCallback cb,
									 void *arg);
extern int64 replkafka_kafka_produce_sync(const char *topic, int partition,
										  const char *key,
										  const char *data, size_t len,
										  TimestampTz deadline);

#endif							/* REPLKAFKA_KAFKA_H */
