/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		replkafka's shared memory: this node's role in every partition,
 *		the progress of its workers, and what synchronous commits and
 *		role changes wait for.
 *
 * shmem.c owns the shared state: every write goes through one of its
 * functions, named for what the caller means ("the shipper found the
 * partition stale", "a transaction was applied"), except a partition's
 * promotion, whose state promotion.c alone changes (under the lock, as
 * below).  Other modules read.
 *
 * LOCKING
 * -------
 * replkafka_shared->lock (an LWLock) protects the roles and what goes with
 * them: role, generation, handover, ended_generation, exhausted_generation,
 * the stale primary's history, last_error, and the promotion.  A reader of
 * several of those takes it shared, so that it sees them as one change
 * left them.  A reader of one of them may go without it, and read a value
 * that is about to change (an aligned 4-byte field is read whole): the
 * write fence, for each row after a transaction's first (the role changes
 * that matter to it wait for its transaction to end: demote() waits for
 * writers, and what the shipper finds after the fact it reports at
 * commit), and the apply worker, checking that a partition just became
 * primary or that a promotion catches up (a promotion waits for the
 * worker's answer under the lock).
 *
 * The progress of a partition (ReplkafkaProgress: positions, lag, counters,
 * the step of a role change) is written often and read only for the views
 * and progress notices: it has a spinlock of its own, mutex, as
 * LogicalRepWorker's relmutex in PostgreSQL, and is copied out whole
 * under it.  A spinlock is taken with the LWLock held or not, never the
 * other way round.
 *
 * The write fence counts the transactions writing a partition in an
 * atomic (writers); synchronous commits wait for acked_lsn, an atomic too.
 * Each background worker's status has a spinlock of its own, since an
 * error can be recorded anywhere, even with the LWLock held.
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

#include "catalog.h"
#include "settings.h"

#define REPLKAFKA_ERROR_LEN		512

/*
 * A generation this node ended (demote() may have written its END_GEN):
 * the generation, and the last transaction of ours before the END_GEN, its
 * sequence number and its Kafka offset, as demote() read them back.
 * ended.c keeps it on disk.
 */
typedef struct ReplkafkaEnded
{
	uint32		generation;		/* 0: none */
	uint32		seq;
	int64		offset;
} ReplkafkaEnded;

/* Where a promotion of a partition stands (promotion.c has the diagram). */
typedef enum ReplkafkaPromoteState
{
	REPLKAFKA_PROMOTE_NONE = 0,
	REPLKAFKA_PROMOTE_CATCHUP,	/* apply up to offset */
	REPLKAFKA_PROMOTE_NEWGEN,	/* apply up to our NEW_GEN */
	REPLKAFKA_PROMOTE_WON,		/* our NEW_GEN came first */
	REPLKAFKA_PROMOTE_LOST,		/* another node's NEW_GEN came first */
} ReplkafkaPromoteState;

/*
 * A promotion in progress, between the promoting backend and the apply
 * worker; written by promotion.c only, under the lock.
 */
typedef struct ReplkafkaPromotion
{
	ReplkafkaPromoteState state;
	int			pid;			/* the backend running promote() */
	uint32		base;			/* the generation when the promotion began */
	uint32		generation;		/* the generation our NEW_GEN starts */
	bool		pending;		/* CATCHUP: a generation unknown at the start
								 * began before the log end we catch up to,
								 * and has no transaction yet: another
								 * promotion of the moment */
	uint32		pending_generation;
	int64		offset;			/* CATCHUP: the log end to read up to */
	int64		won_offset;		/* WON: the offset of our NEW_GEN the worker
								 * read first */
	char		winner[64];		/* LOST (or pending): the node that won */
} ReplkafkaPromotion;

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
	REPLKAFKA_PHASE_CONNECTING, /* a bootstrap: to its source */
	REPLKAFKA_PHASE_TAKING_SNAPSHOT,
	REPLKAFKA_PHASE_DROPPING_ROWS,
	REPLKAFKA_PHASE_COPYING,
	REPLKAFKA_PHASE_FINDING_POSITION,
} ReplkafkaPhase;

/* The progress of one partition, under its mutex. */
typedef struct ReplkafkaProgress
{
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
	 * Applying failed for a reason that passes (a deadlock, a lock
	 * timeout...): how often since the server started, and, while the worker
	 * retries, the last error.
	 */
	int64		apply_retries;
	bool		apply_retrying;
	TimestampTz retry_time;
	int			retry_delay_ms; /* tried again this long after retry_time */
	char		retry_sqlstate[6];
	char		retry_error[REPLKAFKA_ERROR_LEN];

	/*
	 * Primary found stale: its local transactions that are not part of the
	 * cluster's history, counted since the server started.
	 */
	int64		orphaned;

	/*
	 * The step promote() or demote() is at, written by its backend, shown
	 * while the change runs: when it began, and while it catches up, the
	 * offsets it reads from and up to.
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

	/*
	 * A bootstrap, written by its worker: rows and bytes copied so far, and
	 * how many the source estimated it holds (0: unknown).
	 */
	int64		copied_rows;
	int64		copied_bytes;
	int64		estimated_rows;
	int64		estimated_bytes;
} ReplkafkaProgress;

/* How a bootstrap worker lets go of a partition it claimed. */
typedef enum ReplkafkaBootstrapOutcome
{
	REPLKAFKA_BOOTSTRAP_DONE,	/* it is a replica now */
	REPLKAFKA_BOOTSTRAP_LEFT,	/* not copied with the others: at once again */
	REPLKAFKA_BOOTSTRAP_FAILED, /* again after a pause */
	REPLKAFKA_BOOTSTRAP_FAILED_ALONE,	/* ...not in a group, which it failed */
} ReplkafkaBootstrapOutcome;

/* Whether a bootstrap worker could add a partition to its group. */
typedef enum ReplkafkaBootstrapClaim
{
	REPLKAFKA_CLAIM_NOT_DUE,
	REPLKAFKA_CLAIM_BUSY,		/* its apply worker has yet to let go of it */
	REPLKAFKA_CLAIM_CLAIMED,
} ReplkafkaBootstrapClaim;

/* Shared state of one partition. */
typedef struct ReplkafkaPartition
{
	/*
	 * Under the LWLock: role and generation, as in partition_roles.  The
	 * generation is moved under the mutex too, with the progress shown of it.
	 */
	ReplkafkaRole role;
	uint32		generation;

	/*
	 * demote() is handing the partition over: the fence lets no new
	 * transaction in.
	 */
	bool		handover;
	int			handover_pid;	/* the backend running demote() */

	/*
	 * demote() writes (or may have written) END_GEN of this generation: it
	 * takes no more writes, whatever becomes of the demoting session or the
	 * server.  Set before END_GEN is produced (and recorded on disk first, by
	 * ended.c, which restores it at startup), cleared when a role change is
	 * published; if the session ends without one, the shipper finishes the
	 * handover.
	 */
	uint32		ended_generation;
	uint32		ended_seq;		/* its last transaction, and that one's */
	int64		ended_offset;	/* offset (ReplkafkaEnded) */

	/*
	 * The generation whose sequence numbers are nearly used up (0: none): in
	 * it, the fence lets no new transaction in, so that those committed
	 * already still get one.  Set by the shipper.  It names its generation
	 * because the partition's may move on before the shipper looks: a new
	 * generation starts the count again at once.
	 */
	uint32		exhausted_generation;

	/*
	 * Primary found stale by the shipper: those of its transactions whose
	 * commit record ends at or before history_end are part of the history
	 * (Kafka holds them before the first foreign record); a synchronous
	 * commit of the partition after it is told that it is not.
	 */
	uint32		stale_generation;	/* the generation found stale, or 0 */
	XLogRecPtr	history_end;

	/* Under the LWLock, promotion.c's. */
	ReplkafkaPromotion promotion;

	/*
	 * Under the LWLock, while bootstrapping: the bootstrap worker copying the
	 * partition (its pid, 0 if none), and after a failed attempt, when the
	 * next may begin.
	 */
	int			bootstrap_pid;
	TimestampTz bootstrap_not_before;
	int			bootstrap_failures; /* in a row */
	bool		bootstrap_alone;	/* failed in a group: copy it on its own */

	/*
	 * Under the LWLock: the apply worker that applies the partition (its pid,
	 * 0 if none).  A bootstrap begins only once it let go, so that no
	 * transaction the worker applies lands in or after the copy.
	 */
	int			applying_pid;

	/* Why the partition is in error (or why shipping it failed last). */
	char		last_error[REPLKAFKA_ERROR_LEN];
	char		error_sqlstate[6];

	/* Transactions writing the partition now (the write fence's count). */
	pg_atomic_uint32 writers;

	/* Progress, under mutex. */
	slock_t		mutex;
	ReplkafkaProgress progress;
} ReplkafkaPartition;

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
 * Written for the worker only (its error hook included), under mutex.
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

/* The slots of the workers in replkafka_shared->workers. */
#define REPLKAFKA_SHIPPER_SLOT			0
#define REPLKAFKA_APPLY_SLOT(i)			(1 + (i))
#define REPLKAFKA_SLOT_APPLY_INDEX(slot)	((slot) - 1)
#define REPLKAFKA_BOOTSTRAP_SLOT(i)		(1 + REPLKAFKA_MAX_APPLY_WORKERS + (i))
#define REPLKAFKA_SLOT_BOOTSTRAP_INDEX(slot) \
	((slot) - 1 - REPLKAFKA_MAX_APPLY_WORKERS)
#define REPLKAFKA_WORKER_SLOTS \
	(1 + REPLKAFKA_MAX_APPLY_WORKERS + REPLKAFKA_MAX_BOOTSTRAPS)

/* A role change published at commit (roles.c). */
typedef struct ReplkafkaRoleChange
{
	int			partition;
	ReplkafkaRole role;
	uint32		generation;
} ReplkafkaRoleChange;

/* The whole shared state. */
typedef struct ReplkafkaShared
{
	LWLock	   *lock;			/* see LOCKING above */

	/* Roles were loaded from the catalog since the server started. */
	bool		loaded;
	int			npartitions;	/* P, or 0 before create_cluster */

	/* The apply workers, woken when roles change. */
	Latch	   *apply_latches[REPLKAFKA_MAX_APPLY_WORKERS];

	/* The bootstrap workers, woken when roles change. */
	Latch	   *bootstrap_latches[REPLKAFKA_MAX_BOOTSTRAPS];

	/* The shipper, woken at commit of transactions it has to ship. */
	Latch	   *shipper_latch;

	/*
	 * Every transaction committed before this WAL position that had to go to
	 * Kafka is acknowledged by Kafka.  Synchronous commits wait on ack_cv
	 * until it passes their commit record.
	 */
	pg_atomic_uint64 acked_lsn;
	ConditionVariable ack_cv;

	/* Raised each time role changes are published: the shipper looks. */
	pg_atomic_uint64 roles_version;

	/* Prepared transactions remembered so far. */
	uint64		prepared_counter;

	/* Broadcast when an apply worker moves a promotion on. */
	ConditionVariable promote_cv;

	/* The background workers, for replkafka.workers. */
	ReplkafkaWorkerStatus workers[REPLKAFKA_WORKER_SLOTS];

	ReplkafkaPartition partitions[FLEXIBLE_ARRAY_MEMBER];
} ReplkafkaShared;

extern ReplkafkaShared *replkafka_shared;

/* Set-up, and the roles as loaded from the catalog and changed at commit. */
extern void replkafka_shmem_init(void);
extern ReplkafkaPartition *replkafka_partition_state(int partition);
extern void replkafka_shmem_load_roles(int npartitions, List *rows,
									   const ReplkafkaEnded *ended);
extern bool replkafka_shmem_roles_loaded(void);
extern void replkafka_shmem_forget_roles(void);
extern void replkafka_shmem_publish_roles(List *changes);
extern void replkafka_shmem_role_change_undone(int partition);

/* Waking the workers. */
extern void replkafka_shmem_set_shipper_latch(Latch *latch);
extern void replkafka_shmem_set_apply_latch(int index, Latch *latch);
extern void replkafka_wake_shipper(void);
extern void replkafka_wake_apply_workers(void);
extern void replkafka_shmem_set_bootstrap_latch(int index, Latch *latch);
extern void replkafka_wake_bootstrap_workers(void);

/* The progress of a partition. */
extern void replkafka_partition_get_progress(int partition,
											 ReplkafkaProgress *progress);
extern const char *replkafka_phase_name(ReplkafkaPhase phase);
extern void replkafka_begin_phases(int partition, ReplkafkaPhase phase);
extern void replkafka_set_phase(int partition, ReplkafkaPhase phase);
extern void replkafka_set_phase_range(int partition, ReplkafkaPhase phase,
									  int64 from, int64 to);

/* The shipper. */
extern void replkafka_shmem_report_acked(XLogRecPtr lsn);
extern void replkafka_partition_report_shipped(int partition, uint64 scn,
											   int64 offset);
extern void replkafka_partition_set_shipper_error(int partition,
												  const char *message);
extern void replkafka_partition_set_stale(int partition, uint32 generation,
										  XLogRecPtr history_end,
										  const char *message);
extern void replkafka_partition_extend_history(int partition,
											   XLogRecPtr end_lsn);
extern void replkafka_partition_count_orphans(int partition, int64 n);
extern void replkafka_partition_set_exhausted_generation(int partition,
														 uint32 generation);

/* The apply workers. */
extern void replkafka_partition_report_taken_up(int partition,
												uint32 generation,
												int64 next_offset,
												uint64 applied_scn,
												int64 applied_offset);
extern void replkafka_partition_report_position(int partition,
												int64 next_offset,
												int64 log_end,
												bool first);
extern void replkafka_partition_report_applied(int partition, uint64 scn,
											   int64 offset,
											   TimestampTz commit_time);
extern void replkafka_partition_report_new_generation(int partition,
													  uint32 generation,
													  int64 offset);
extern void replkafka_partition_count_zombie(int partition);
extern void replkafka_partition_report_retry(int partition,
											 const char *sqlstate,
											 const char *message,
											 int delay_ms);
extern bool replkafka_partition_set_applying(int partition, bool applying);
extern bool replkafka_partition_wait_released(int partition,
											  TimestampTz deadline);
extern void replkafka_shmem_release_applying(int pid);
extern void replkafka_partition_stop_applying(int partition,
											  const char *sqlstate,
											  const char *message);

/* The bootstrap workers. */
extern int	replkafka_partition_claim_bootstrap(bool *alone);
extern ReplkafkaBootstrapClaim replkafka_partition_claim_bootstrap_of(int partition);
extern void replkafka_partition_release_bootstrap(int partition,
												  ReplkafkaBootstrapOutcome outcome,
												  const char *sqlstate,
												  const char *message);
extern void replkafka_shmem_release_bootstraps(int pid);
extern bool replkafka_partition_still_bootstrapping(int partition);
extern void replkafka_partition_report_copy(int partition, int64 rows,
											int64 bytes);
extern void replkafka_partition_set_copy_estimate(int partition, int64 rows,
												  int64 bytes);

/* The write fence, and demote() */
extern void replkafka_partition_writer_enter(int partition);
extern void replkafka_partition_writer_leave(int partition);
extern void replkafka_partition_begin_handover(int partition);
extern void replkafka_partition_end_handover(int partition);
extern void replkafka_partition_get_ended(int partition,
										  ReplkafkaEnded *ended);
extern void replkafka_partition_set_ended(int partition,
										  const ReplkafkaEnded *ended);
extern bool replkafka_shmem_forget_handovers(int pid);

/* The background workers' status. */
extern void replkafka_worker_status_update(int slot, ReplkafkaWorkerState state,
										   bool new_incarnation);
extern void replkafka_worker_status_error(int slot, ReplkafkaWorkerState state,
										  const char *sqlstate,
										  const char *message);
extern void replkafka_worker_status_exit(int slot, bool failed);
extern void replkafka_worker_status_get(int slot, ReplkafkaWorkerStatus *status);

/* Transactions prepared for two-phase commit. */
extern void replkafka_prepared_remember(const char *gid, int partition,
										uint32 generation);
extern bool replkafka_prepared_forget(const char *gid, int *partition,
									  uint32 *generation);
extern bool replkafka_prepared_partition(const char *gid, int *partition);

#endif							/* REPLKAFKA_SHMEM_H */
