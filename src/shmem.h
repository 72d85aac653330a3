/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		replkafka's shared memory: this node's role in every partition,
 *		the shipper's progress, and what synchronous commits wait for.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_SHMEM_H
#define REPLKAFKA_SHMEM_H

#include "access/xlogdefs.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "replkafka.h"

/* This node's role in a partition (catalog: replkafka.partition_roles). */
typedef enum ReplkafkaRole
{
	REPLKAFKA_ROLE_OFFLINE = 0,
	REPLKAFKA_ROLE_REPLICA,
	REPLKAFKA_ROLE_PRIMARY,
	REPLKAFKA_ROLE_ERROR,
} ReplkafkaRole;

#define REPLKAFKA_ERROR_LEN		512

/* Where a promotion of a replica partition stands (see mastership.c). */
typedef enum ReplkafkaPromoteState
{
	REPLKAFKA_PROMOTE_NONE = 0,
	REPLKAFKA_PROMOTE_CATCHUP,	/* apply up to promote_offset */
	REPLKAFKA_PROMOTE_NEWGEN,	/* apply up to our NEW_GEN */
	REPLKAFKA_PROMOTE_WON,		/* our NEW_GEN came first */
	REPLKAFKA_PROMOTE_LOST,		/* another node's NEW_GEN came first */
} ReplkafkaPromoteState;

/* The step a role change or a catch-up is at, for replkafka.partitions. */
typedef enum ReplkafkaPhase
{
	REPLKAFKA_PHASE_NONE = 0,
	REPLKAFKA_PHASE_CATCHING_UP,	/* promote(), a replica: reading the log */
	REPLKAFKA_PHASE_WRITING_NEW_GEN,
	REPLKAFKA_PHASE_READING_NEW_GEN,
	REPLKAFKA_PHASE_WAITING_FOR_WRITERS,	/* demote() */
	REPLKAFKA_PHASE_WAITING_FOR_KAFKA,
	REPLKAFKA_PHASE_READING_LOG,
	REPLKAFKA_PHASE_WRITING_END_GEN,
} ReplkafkaPhase;

/* Shared state of one partition. */
typedef struct ReplkafkaPartition
{
	/* Role and generation, mirrored from replkafka.partition_roles. */
	ReplkafkaRole role;
	uint32		generation;

	/* Primary: last transaction Kafka acknowledged, and its offset. */
	uint64		shipped_scn;
	int64		shipped_offset;

	/* Replica: last transaction applied, where it is, and how far behind. */
	uint64		applied_scn;
	int64		applied_offset;
	TimestampTz applied_commit_time;
	int64		next_offset;	/* next record to read */
	int64		log_end;		/* Kafka's high watermark, as last seen */
	int64		zombies_skipped;

	/*
	 * Transactions writing the partition now (counted by the write fence
	 * from their first row to their end), and whether demote() is handing
	 * the partition over: then the fence lets no new transaction in.
	 */
	pg_atomic_uint32 writers;
	bool		handover;
	int			handover_pid;	/* the backend running demote() */

	/*
	 * demote() writes (or may have written) END_GEN of this generation: it
	 * takes no more writes, whatever becomes of the demoting session.  Set
	 * before END_GEN is produced, cleared when a role change is published;
	 * if the session ends without one, the shipper finishes the handover.
	 */
	uint32		ended_generation;

	/*
	 * The generation's sequence numbers are nearly used up: the fence lets
	 * no new transaction in, so that those committed already still get one.
	 * Set by the shipper; a new generation starts the count again.
	 */
	bool		sequence_exhausted;

	/*
	 * Primary found stale: its local transactions that are not part of the
	 * cluster's history (in Kafka after another node's record, or never
	 * shipped), counted since the server started.  Those of its
	 * transactions whose commit record ends at or before history_end are
	 * part of the history (Kafka holds them before the first foreign
	 * record); a synchronous commit of the partition after it is told that
	 * it is not.  Written by the shipper before it sets the role to error.
	 */
	int64		orphaned;
	uint32		stale_generation;	/* the generation found stale, or 0 */
	XLogRecPtr	history_end;

	/* A promotion in progress, between the promoting backend and the worker. */
	ReplkafkaPromoteState promote_state;
	int			promote_pid;	/* the backend running promote() */
	uint32		promote_base;	/* the generation when the promotion began */
	uint32		promote_generation; /* the generation our NEW_GEN starts */
	bool		promote_pending;	/* CATCHUP: a generation unknown at the
									 * start began before the log end we
									 * catch up to, and has no transaction
									 * yet: another promotion of the moment */
	uint32		promote_pending_generation;
	int64		promote_offset; /* CATCHUP: the log end to read up to */
	char		promote_winner[64]; /* LOST (or pending): the node that won */

	/*
	 * The step promote() or demote() is at, written by its backend, shown
	 * while the change runs (promote_state, handover): when it began, and
	 * while it catches up, the offsets it reads from and up to.
	 */
	ReplkafkaPhase phase;
	TimestampTz phase_started;
	int64		phase_from;
	int64		phase_to;

	/*
	 * A replica catching up, written by its apply worker when it takes the
	 * partition up (after follow(), or when the worker starts): from where,
	 * up to the log end it then knew, since when.
	 */
	TimestampTz catchup_started;
	int64		catchup_from;
	int64		catchup_to;

	/* Why the partition is in error, or why shipping it failed last. */
	char		last_error[REPLKAFKA_ERROR_LEN];
} ReplkafkaPartition;

/* The whole shared state. */
/* What a worker is doing, for replkafka.workers. */
typedef enum ReplkafkaWorkerState
{
	REPLKAFKA_WORKER_NOT_STARTED = 0,
	REPLKAFKA_WORKER_STARTING,	/* connecting, reading its settings */
	REPLKAFKA_WORKER_WAITING,	/* for the cluster to be created */
	REPLKAFKA_WORKER_RUNNING,
	REPLKAFKA_WORKER_RETRYING,	/* runs, but Kafka does not answer */
	REPLKAFKA_WORKER_FAILED,	/* exited with an error; restarts soon */
} ReplkafkaWorkerState;

/*
 * One background worker: slot 0 the shipper, slot 1 + i apply worker i.
 * Written by the worker only (its error hook included), under mutex, a
 * spinlock so that an error raised anywhere can be recorded.
 */
typedef struct ReplkafkaWorkerStatus
{
	slock_t		mutex;
	pid_t		pid;			/* 0 when not running */
	ReplkafkaWorkerState state;
	TimestampTz started;		/* this incarnation */
	uint32		starts;			/* since the server started */

	/*
	 * Retrying, or it reported an error (or exited with one) since it last
	 * ran or waited for the cluster.
	 */
	bool		failing;
	TimestampTz error_time;		/* of the last error, 0 if none */
	char		error_sqlstate[6];
	char		last_error[REPLKAFKA_ERROR_LEN];
} ReplkafkaWorkerStatus;

#define REPLKAFKA_WORKER_SLOTS		(1 + REPLKAFKA_MAX_APPLY_WORKERS)

typedef struct ReplkafkaShared
{
	LWLock	   *lock;			/* protects everything below but acked_lsn */

	/* Roles were loaded from the catalog since the server started. */
	bool		loaded;
	int			npartitions;	/* P, or 0 before create_cluster */

	/* The apply workers, woken when roles change. */
	Latch	   *apply_latches[REPLKAFKA_MAX_APPLY_WORKERS];

	/* The shipper, woken at commit of transactions it has to ship. */
	Latch	   *shipper_latch;

	/*
	 * Every transaction committed before this WAL position that had to go
	 * to Kafka is acknowledged by Kafka.  Synchronous commits wait on ack_cv
	 * until it passes their commit record.
	 */
	pg_atomic_uint64 acked_lsn;
	ConditionVariable ack_cv;

	/* Raised each time role changes are published: the shipper looks. */
	pg_atomic_uint64 roles_version;

	/* Prepared transactions remembered so far (shmem.c). */
	uint64		prepared_counter;

	/* Broadcast when an apply worker moves a promotion on. */
	ConditionVariable promote_cv;

	/* The background workers, for replkafka.workers. */
	ReplkafkaWorkerStatus workers[REPLKAFKA_WORKER_SLOTS];

	ReplkafkaPartition partitions[FLEXIBLE_ARRAY_MEMBER];
} ReplkafkaShared;

extern ReplkafkaShared *replkafka_shared;

extern void replkafka_shmem_init(void);
extern void replkafka_shmem_ensure_loaded(void);
extern void replkafka_shmem_reload_at_commit(void);
extern ReplkafkaPartition *replkafka_partition_state(int partition);
extern const char *replkafka_role_name(ReplkafkaRole role);
extern const char *replkafka_phase_name(ReplkafkaPhase phase);
extern void replkafka_set_phase(int partition, ReplkafkaPhase phase);
extern bool replkafka_role_from_name(const char *name, ReplkafkaRole *role);
extern void replkafka_set_role_at_commit(int partition, ReplkafkaRole role,
										 uint32 generation);
extern void replkafka_wake_shipper(void);
extern void replkafka_wake_apply_workers(void);
extern void replkafka_prepared_remember(const char *gid, int partition,
										uint32 generation);
extern bool replkafka_prepared_forget(const char *gid, int *partition,
									  uint32 *generation);
extern bool replkafka_prepared_partition(const char *gid, int *partition);

#endif							/* REPLKAFKA_SHMEM_H */
