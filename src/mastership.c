/*-------------------------------------------------------------------------
 *
 * mastership.c
 *		What promote() and demote() share: locking a partition's role,
 *		writing a control record, telling the client how a long change
 *		goes, and the check for a stale primary.
 *
 * promotion.c and demotion.c change this node's role in a partition; both
 * run outside a transaction block, since the records they write to Kafka
 * cannot be rolled back.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/mastership.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "kafka.h"
#include "mastership.h"
#include "message.h"
#include "roles.h"
#include "settings.h"
#include "shmem.h"

/* How often a long promote() or demote() tells its client how it goes (5s). */
#define MASTERSHIP_NOTICE_MS	5000

/* When this session last did. */
static TimestampTz progress_noticed = 0;

/*
 * A role change of partition begins: lock the catalog row of partition and
 * return this node's role in it, after checking the cluster exists.  The
 * progress notices count from now.
 */
ReplkafkaRole
replkafka_mastership_lock(int partition, ReplkafkaCluster *cluster)
{
	ReplkafkaRole role;
	uint32		generation;

	if (!replkafka_catalog_get_cluster(cluster))
		elog(ERROR, "replkafka cluster does not exist");
	replkafka_roles_ensure_loaded();
	replkafka_roles_lock(partition, &role, &generation);
	progress_noticed = GetCurrentTimestamp();
	return role;
}

/*
 * Every few seconds of a long promote() or demote(), tell the client where
 * it is (change: "promoting" or "demoting"), as the view shows it.
 */
void
replkafka_mastership_notice_progress(int partition, const char *change)
{
	ReplkafkaPartition *part = replkafka_partition_state(partition);
	ReplkafkaProgress progress;
	ReplkafkaPhase phase;
	int64		done;
	int64		total;
	uint32		writers;

	if (!TimestampDifferenceExceeds(progress_noticed, GetCurrentTimestamp(),
									MASTERSHIP_NOTICE_MS))
		return;
	progress_noticed = GetCurrentTimestamp();

	replkafka_partition_get_progress(partition, &progress);
	phase = progress.phase;
	done = Max(progress.next_offset - progress.phase_from, 0);
	total = Max(progress.phase_to - progress.phase_from, 0);
	writers = pg_atomic_read_u32(&part->writers);

	if (phase == REPLKAFKA_PHASE_CATCHING_UP && total > 0)
		ereport(NOTICE,
				errmsg("%s partition %d: %s, %lld of %lld records read",
					   change, partition, replkafka_phase_name(phase),
					   (long long) Min(done, total), (long long) total));
	else if (phase == REPLKAFKA_PHASE_WAITING_FOR_WRITERS && writers > 0)
		ereport(NOTICE,
				errmsg_plural("%s partition %d: %s, %u transaction still writes it",
							  "%s partition %d: %s, %u transactions still write it",
							  writers, change, partition,
							  replkafka_phase_name(phase), writers));
	else
		ereport(NOTICE,
				errmsg("%s partition %d: %s", change, partition,
					   replkafka_phase_name(phase)));
}

/*
 * Write a control record (NEW_GEN or END_GEN) of this node to the
 * partition; returns its offset.  Its commit LSN is lsn, its time now.
 */
int64
replkafka_mastership_write_control(RkmType type, int partition,
								   const char *topic, uint64 scn,
								   XLogRecPtr lsn, TimestampTz deadline)
{
	StringInfoData record;

	initStringInfo(&record);
	replkafka_message_write_control(&record, type, partition, scn, lsn,
									GetCurrentTimestamp() + RKM_UNIX_EPOCH_OFFSET,
									replkafka_node_name);
	return replkafka_kafka_produce_sync(topic, partition, NULL, record.data,
										record.len, deadline);
}

/*
 * Fail if this node was primary of partition after the last transaction
 * it applied (a stale primary): its rows of the partition include its own
 * writes of that generation, some of which may not be part of the
 * cluster's history, so applying the log from its consumer checkpoint
 * would apply them a second time, or mix them with another node's.
 */
void
replkafka_check_not_stale(int partition)
{
	uint32		generation;

	if (replkafka_catalog_primary_since_applied(partition, &generation))
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("node \"%s\" was primary of partition %d in generation %u after the last transaction it applied",
					   replkafka_node_name, partition, generation),
				errdetail("Its rows of the partition include its own writes of generation %u; applying the log from its consumer checkpoint would apply them again.",
						  generation),
				errhint("Replace its rows of the partition with a peer's: SELECT replkafka.rebuild(%d);",
						partition));
}
