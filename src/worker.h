/*-------------------------------------------------------------------------
 *
 * worker.h
 *		What replkafka's background workers have in common.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_WORKER_H
#define REPLKAFKA_WORKER_H

#include <librdkafka/rdkafka.h>

extern void replkafka_worker_register(const char *type, const char *function,
									  int index);
extern void replkafka_worker_connect(const char *appname);
extern void replkafka_worker_wait_for_cluster(char **topic, int *npartitions);
extern void replkafka_worker_wakeup_init(rd_kafka_t *rk, rd_kafka_queue_t *queue);
extern void replkafka_worker_wait(long timeout_ms);
extern void replkafka_worker_reload_config(rd_kafka_t *rk);

#endif							/* REPLKAFKA_WORKER_H */
