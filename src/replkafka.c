/*-------------------------------------------------------------------------
 *
 * replkafka.c
 *		Module entry point.
 *
 * replkafka replicates a partitioned data set between PostgreSQL nodes
 * through Apache Kafka.  Its workers and shared state need the library to
 * be loaded through shared_preload_libraries.  Loaded any other way (for
 * example by CREATE EXTENSION alone) it defines nothing, so that SQL
 * functions needing the workers can report the missing preload clearly
 * instead of the server refusing to start or misbehaving.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/replkafka.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "apply.h"
#include "bootstrap.h"
#include "fence.h"
#include "kafka.h"
#include "settings.h"
#include "shipper.h"
#include "shmem.h"
#include "utility.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Module load callback.
 */
void
_PG_init(void)
{
	/*
	 * Without shared_preload_libraries there are no workers and no shared
	 * state; define nothing and leave the prefix unreserved, as
	 * pg_stat_statements does.  Functions that need more say so.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	replkafka_settings_define();
	replkafka_kafka_define_settings();
	MarkGUCPrefixReserved(REPLKAFKA_EXTENSION_NAME);

	replkafka_shmem_init();
	replkafka_fence_init();
	replkafka_utility_init();
	replkafka_shipper_register();
	replkafka_apply_register();
	replkafka_bootstrap_register();
}
