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

#include "shmem.h"

extern void replkafka_worker_register(const char *type, const char *function,
									  int index);
extern void replkafka_worker_connect(const char *appname, int slot);
extern void replkafka_worker_write_as_replica(void);
extern void replkafka_worker_wait_for_cluster(char **topic, int *npartitions);
extern void replkafka_worker_running(void);
extern const char *replkafka_worker_state_name(ReplkafkaWorkerState state);
extern char *replkafka_worker_describe(int slot,
									   const ReplkafkaWorkerStatus *w);
extern void replkafka_worker_check_kafka(rd_kafka_t *rk, const char *topic,
										 const char *stall);
extern void replkafka_worker_wakeup_init(rd_kafka_t *rk, rd_kafka_queue_t *queue);
extern void replkafka_worker_wait(long timeout_ms);
extern void replkafka_worker_reload_config(rd_kafka_t *rk);
extern void replkafka_worker_restart(const char *why) pg_attribute_noreturn();
extern void replkafka_worker_emit_handled_error(void);
extern bool replkafka_worker_error_is_transient(int sqlerrcode);

#endif							/* REPLKAFKA_WORKER_H */
