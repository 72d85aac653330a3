/*
 * model/replkafka.pml: a model of replkafka's mastership protocol and apply
 * rules, checked by SPIN (model/run runs every configuration).
 *
 * One partition, three nodes (A, B, C), its Kafka log, and what each node
 * runs for it.  Node A starts as the primary of generation 1 (its NEW_GEN
 * is the first record of the log); B and C are replicas that applied it.
 * The operator (init, at the end) then moves mastership as the
 * configuration says: demote and promote (a handoff), promote while the
 * primary is stopped (a failover), two promotions at once (a race),
 * starting up to two more generations.  Clients commit transactions on
 * whichever node lets them write, and wait for Kafka (synchronous commit).
 *
 * MODEL                      CODE
 * ------------------------   -----------------------------------------------
 * log[], loglen              the Kafka partition: an append-only array; the
 *                            offset of a record is its index
 * Rec                        a record's header (doc/protocol.md): type, SCN
 *                            (gen, seq), origin, commit LSN, chunk, last;
 *                            tx is a ghost: which client transaction it is
 * Node.wal, Node.walen       a node's WAL, reduced to its own commits of the
 *                            partition; a commit's LSN is its index there
 * Node (durable part)        replkafka.partition_roles, producer_checkpoints,
 *                            consumer_checkpoints (with ended),
 *                            replkafka.generations, the slot's confirmed LSN
 * Node (shared memory part)  ReplkafkaPartition (shmem.c): role, generation,
 *                            acked_lsn, stale_generation, history_end,
 *                            handover, ended_generation, and the promotion
 *                            (ReplkafkaPromotion, promotion.c)
 * Shipper(n), Ship           the shipper (shipper.c), its ShipperPartition,
 *                            its Shipment list, its producer's queue
 * Scan                       LogScan (logscan.c)
 * Applier(n), Apply          an apply worker (apply.c) and its RulesState
 *                            (rules.c)
 * Client(n)                  backends committing with
 *                            replkafka.synchronous_commit = on (fence.c)
 * Promote(n)                 promote() (promotion.c: replkafka_promote(),
 *                            promote_partition(), promote_steps())
 * Demote(n)                  demote() (demotion.c: replkafka_demote(),
 *                            demote_steps())
 * Broker                     Kafka: lands, fails or delays what producers
 *                            sent
 * Chaos                      a node crash: shared memory and every worker's
 *                            state lost, restart from the catalog, the WAL
 *                            and the slot
 *
 * Each atomic step is one thing the code does that another process can
 * see.  The interleaving of steps is arbitrary (SPIN explores all of them),
 * so any process may stall for as long as it likes: a stopped primary
 * keeps its commits and its records in flight, and wakes up late.  Faults:
 * node crashes (Chaos), shipper records that fail for good (Broker),
 * control records whose produce fails but that land now or later, control
 * records written twice by a retry (produce_control()), records of a
 * producer abandoned at a restart that land late or never, promote() and
 * demote() giving up, demote() failing after its END_GEN; each has a
 * budget (below).
 *
 * Abstracted away (doc/testing.md, "The model", says why each is safe to
 * leave out): other partitions, HEARTBEAT records (written only before a
 * restarted shipper's first transaction), records not yet readable (above
 * Kafka's high watermark), row contents, the write fence's writer counting (a client's fence check
 * and commit are one step), prepared transactions, apply retries, the
 * sequence number limit, record deletion by retention, the slot's
 * position going back at a crash, timers (every timed check may happen at
 * any moment).  Three shortcuts keep the search small without losing a
 * behaviour: the producer checkpoint is written as soon as it may be
 * (save_producer_checkpoint()), a waiting commit learns its verdict in the
 * step that decides it (settle_sessions()), and a replica nobody promotes
 * applies lazily (Applier).
 *
 * INVARIANTS (asserts; SPIN prints the name of the one violated)
 *  I1 at most one leader per generation: no two nodes become primary of
 *     the same generation.
 *  I2 no acknowledged write lost: once everything has settled, every
 *     transaction whose synchronous commit returned success is in the
 *     database of every node that is a replica caught up with the log, or
 *     a primary that has not found itself stale.
 *  I3 replicas apply the same sequence: no two nodes apply different
 *     transactions at the same SCN, and no node's database holds a
 *     transaction twice (exactly once).
 *  I4 no zombie write applied: a replica applies only a transaction of the
 *     node whose NEW_GEN started its generation, landed before any newer
 *     NEW_GEN and before that node's END_GEN.
 *  I5 the log the protocol writes always passes the rules: no replica
 *     stops on a rule error (a gap, an END_GEN that does not match).  The
 *     rules stop only on a log that lost records.
 *
 * BUG SWITCHES (-DBUG_...) put back the behaviour of the code before the
 * fixes of its correctness review; model/run requires a violation from
 * each (or documents why it finds none): see the #ifdef blocks below and
 * doc/testing.md.
 */

/* ------------------------------------------------------------------ */
/* Configuration (model/run sets these with -D)                        */
/* ------------------------------------------------------------------ */

/* Operator scenarios. */
#define HANDOFF		1	/* demote(A), promote(B), demote(B), promote(C) */
#define FAILOVER	2	/* promote(B) while A is stopped, then promote(C) */
#define RACE		3	/* promote(B) and promote(C) at once, A stopped */
#define RACE_AGAIN	4	/* RACE, then the loser promotes again */
#define MOVE_BACK	5	/* demote(A), promote(B), then A and C promote at once */
#define OVERLAP		6	/* demote(A) and promote(B) at once, then promote(C) */

#ifndef SCENARIO
#define SCENARIO	HANDOFF
#endif
#ifndef NTXN				/* client transactions, in all */
#define NTXN		2
#endif
#ifndef CHUNKS				/* records per transaction: 1, or 2 (chunked) */
#define CHUNKS		1
#endif
#ifndef CRASHES				/* node crashes */
#define CRASHES		0
#endif
#ifndef CRASH_NODES			/* which nodes may crash: 1 A, 2 B, 4 C */
#define CRASH_NODES	7
#endif
#ifndef LOSSES				/* shipper records that fail for good */
#define LOSSES		0
#endif
#ifndef LATE				/* control records whose produce fails, yet */
#define LATE		0		/* may land (now or later) */
#endif
#ifndef DUPS				/* control records written twice by a retry */
#define DUPS		0
#endif
#ifndef GIVEUPS				/* promote()/demote() timeouts while waiting */
#define GIVEUPS		0
#endif
#ifndef ABORTS				/* demote() statements failing after END_GEN */
#define ABORTS		0
#endif
#ifndef SESSIONS			/* client sessions per node */
#define SESSIONS	1
#endif
#ifndef TAIL_WINDOW			/* BUG_TAIL_WINDOW: records read back */
#define TAIL_WINDOW	1
#endif

/* ------------------------------------------------------------------ */
/* Constants                                                            */
/* ------------------------------------------------------------------ */

#define NODES		3
#ifndef LOGMAX				/* records the log may hold */
#define LOGMAX		16
#endif

#define NA			0
#define NB			1
#define NC			2
#define NOBODY		3		/* no node: an unknown origin */
#define MAXGEN		5		/* generations a configuration may reach */
#define QMAX		(NTXN * CHUNKS)
#define NONE		31		/* an offset of -1, a sequence above all */

/* record types (message.h: RkmType) */
#define TXN			1
#define NEW_GEN		2
#define END_GEN		3

/* roles (catalog.h: ReplkafkaRole) */
#define OFFLINE		0
#define REPLICA		1
#define PRIMARY		2
#define ERROR		3

/* promotion states (shmem.h: ReplkafkaPromoteState) */
#define PR_NONE		0
#define PR_CATCHUP	1
#define PR_NEWGEN	2
#define PR_WON		3
#define PR_LOST		4

/* verdicts (rules.h: RulesVerdict) */
#define V_SKIP_CHUNK	1
#define V_NOTHING		2
#define V_COLLECT		3
#define V_APPLY			4
#define V_REPLAY		5
#define V_ZOMBIE		6
#define V_NEW_GEN		7
#define V_LOST_ELECTION	8
#define V_END_GEN		9
#define V_ERROR			10

/* outcomes of a control record's produce */
#define SENT_OK		1
#define SENT_FAILED	2
#define SENT_RETRY	3		/* first copy landed, its acknowledgement lost */

/* ------------------------------------------------------------------ */
/* State                                                                */
/* ------------------------------------------------------------------ */

typedef Rec {
	unsigned type : 2;
	unsigned gen : 3;
	unsigned seq : 3;
	unsigned origin : 2;
	unsigned lsn : 3;
	unsigned tx : 3;		/* ghost: the client transaction (0: control) */
	unsigned chunk : 1;
	unsigned last : 1;
};

/* The Kafka partition. */
Rec log[LOGMAX];
byte loglen;

/* Client transactions (ghost identities; the WAL holds them per node). */
byte ntx;
byte tx_lsn[NTXN + 1];
byte tx_gen[NTXN + 1];		/* fence.c: xact_generation */
bit tx_acked[NTXN + 1];		/* its synchronous commit returned success */

typedef Node {
	/* durable: WAL, slot, catalog */
	unsigned walen : 3;
	unsigned slot : 3;				/* confirmed LSN of slot replkafka_shipper */
	unsigned role : 2;				/* partition_roles */
	unsigned gen : 3;
	unsigned pck_gen : 3;			/* producer_checkpoints (gen 0: none) */
	unsigned pck_seq : 3;
	unsigned pck_lsn : 3;
	unsigned pck_off : 5;
	unsigned cck_valid : 1;			/* consumer_checkpoints */
	unsigned cck_gen : 3;
	unsigned cck_seq : 3;
	unsigned cck_off : 5;
	unsigned cck_ended : 1;

	/* shared memory (ReplkafkaPartition) */
	unsigned s_role : 2;
	unsigned s_gen : 3;
	unsigned acked_lsn : 3;			/* replkafka_shared->acked_lsn */
	unsigned stale_gen : 3;
	unsigned history_end : 3;
	unsigned handover : 1;
	unsigned ended_gen : 3;
	unsigned rowlock : 1;			/* a role change holds the catalog row */
	unsigned pr_state : 3;			/* ReplkafkaPromotion */
	unsigned pr_base : 3;
	unsigned pr_offset : 5;
	unsigned pr_gen : 3;
	unsigned pr_pending : 1;
	unsigned pr_pending_gen : 3;
	unsigned pr_winner : 2;
	unsigned pr_won_off : 5;		/* WON: the offset it won at */
	unsigned epoch : 2;				/* crashes so far: ends its backends */

	/* arrays after the bit fields, which pack together */
	byte wal[NTXN + 1];		/* LSN -> transaction */
	byte gtab[MAXGEN + 1];	/* replkafka.generations: who started each */
};
Node nd[NODES];

/* The shipper's volatile state: ShipperPartition, shipments, producer. */
typedef Ship {
	unsigned sg : 3;				/* generation recovered for */
	unsigned next_seq : 3;
	unsigned skip_lsn : 3;
	unsigned stale : 1;
	unsigned history_lsn : 3;
	unsigned orphans_from : 5;
	unsigned pending_error : 1;		/* role to write to the catalog */
	unsigned dec : 3;				/* WAL decoded up to this LSN */
	unsigned confirm : 3;			/* confirmed_lsn / confirm */
	unsigned acked_gen : 3;			/* last acknowledged history transaction */
	unsigned acked_seq : 3;
	unsigned acked_lsn : 3;
	unsigned acked_off : 5;
	unsigned expect : 5;			/* expect_offset */
	unsigned check_from : 5;
	unsigned check_to : 5;
	unsigned delivery_error : 1;
	unsigned nsh : 2;				/* shipments */
	unsigned nq : 3;				/* records in the producer's queue */
	unsigned noq : 3;				/* records of an abandoned producer */

	/* arrays after the bit fields, which pack together */
	/* Shipment list, in decoding order */
	byte sh_tx[NTXN];
	byte sh_gen[NTXN];
	byte sh_seq[NTXN];
	byte sh_pend[NTXN];
	byte sh_off[NTXN];
	/* the producer's queue, and an abandoned producer's (late) */
	byte q_tx[QMAX];
	byte q_gen[QMAX];
	byte q_seq[QMAX];
	byte q_chunk[QMAX];
	byte oq_tx[QMAX];
	byte oq_gen[QMAX];
	byte oq_seq[QMAX];
	byte oq_chunk[QMAX];
};
Ship sh[NODES];

/* A control record in flight after its produce gave up (it may land). */
bit cq_valid[NODES];
Rec cq[NODES];

/* The apply worker's volatile state: ApplyPartition and RulesState. */
typedef Apply {
	unsigned assigned : 1;
	unsigned stopped : 1;
	unsigned next : 5;				/* next offset */
	unsigned gen : 3;
	unsigned origin : 2;			/* gen_origin */
	unsigned ended : 1;				/* gen_ended */
	unsigned last : 3;				/* sequence of last_scn */
	unsigned coll_tx : 3;			/* collecting: the leader's chunk 0 */
	unsigned coll_gen : 3;
	unsigned coll_seq : 3;
};
Apply ap[NODES];

/* Client sessions waiting for Kafka: their transactions. */
typedef Sessions {
	byte tx[SESSIONS];
};
Sessions cl[NODES];

/* Ghosts for the invariants. */
typedef Db {
	byte n[NTXN + 1];		/* times each transaction is in the database */
};
Db db[NODES];
byte leader_of[MAXGEN + 1];
typedef ScnRow {
	byte seq[NTXN + 2];
};
ScnRow at_scn[MAXGEN + 1];	/* transaction first applied at (gen, seq) */

/* Fault budgets. */
byte crashes = CRASHES;
byte losses = LOSSES;
byte lates = LATE;
byte dups = DUPS;
byte giveups = GIVEUPS;
byte aborts = ABORTS;

/* Operator: backends done. */
bit promote_done[NODES];
bit demote_done[NODES];
byte promote_won[NODES];	/* generation won, 0 if lost */

/* Scratch of one atomic step (hidden: not part of the state). */
typedef Scan {
	byte gen;
	byte seq;
	byte lsn;
	byte off;
	bit hole;
	byte hole_off;
	bit foreign;
	byte foreign_off;
	byte history_seq;
	byte history_lsn;
	byte history_off;
	bit orphans;
	bit ended;
	byte ended_off;
};
hidden Scan scan;
hidden byte x, y, z, tt, he, bf, vv, prev_gen, prev_origin;
hidden byte b1, b2, discard, first_chunk, collected, won;

/* The invariants, named in SPIN's report, and the model's own bounds. */
hidden byte I1_one_leader_per_generation;
hidden byte I2_acknowledged_write_kept;
hidden byte I3_same_sequence_exactly_once;
hidden byte I4_no_zombie_write_applied;
hidden byte I5_log_passes_the_rules;
hidden byte bounds_large_enough;

/* ------------------------------------------------------------------ */
/* The log                                                              */
/* ------------------------------------------------------------------ */

/* What a trail shows (spin -t): pan itself prints nothing. */
inline print_record(r)
{
	if
	:: log[r].type == TXN ->
		printf("MODEL: log[%d] TXN gen %d seq %d from %c (transaction %d, chunk %d, last %d)\n",
			   r, log[r].gen, log[r].seq, 'A' + log[r].origin, log[r].tx, log[r].chunk, log[r].last)
	:: log[r].type == NEW_GEN ->
		printf("MODEL: log[%d] NEW_GEN gen %d from %c\n", r, log[r].gen, 'A' + log[r].origin)
	:: else ->
		printf("MODEL: log[%d] END_GEN gen %d seq %d from %c\n", r, log[r].gen, log[r].seq,
			   'A' + log[r].origin)
	fi
}

inline log_append(t_, g_, s_, o_, l_, x_, c_, la_)
{
	bounds_large_enough = (loglen < LOGMAX);
	assert(bounds_large_enough);
	log[loglen].type = t_;
	log[loglen].gen = g_;
	log[loglen].seq = s_;
	log[loglen].origin = o_;
	log[loglen].lsn = l_;
	log[loglen].tx = x_;
	log[loglen].chunk = c_;
	log[loglen].last = la_;
	loglen++;
	print_record(loglen - 1)
}

/*
 * message.c: replkafka_message_foreign_record(): a record of a newer
 * generation, or of gen by another node (but a NEW_GEN: a lost election).
 */
#define FOREIGN(r, g_, n_) \
	(log[r].gen > (g_) || (log[r].gen == (g_) && log[r].type != NEW_GEN && log[r].origin != (n_)))

/* ------------------------------------------------------------------ */
/* logscan.c: reading back a node's generation                          */
/* ------------------------------------------------------------------ */

/* replkafka_logscan_init() */
inline logscan_init(g_, s_, l_, o_)
{
	scan.gen = g_;
	scan.seq = s_;
	scan.lsn = l_;
	scan.off = o_;
	scan.hole = 0;
	scan.hole_off = 0;
	scan.foreign = 0;
	scan.foreign_off = 0;
	scan.history_seq = s_;
	scan.history_lsn = l_;
	scan.history_off = o_;
	scan.orphans = 0;
	scan.ended = 0;
	scan.ended_off = 0
}

/* logscan_history_ends() */
inline logscan_history_ends()
{
	scan.history_seq = scan.seq;
	scan.history_lsn = scan.lsn;
	scan.history_off = scan.off
}

/* replkafka_logscan_record(): judge the record at offset r, for node n_ */
inline logscan_record(n_, r)
{
	if
	:: FOREIGN(r, scan.gen, n_) ->
		if
		:: !scan.foreign ->
			if
			:: !scan.hole -> logscan_history_ends()
			:: else -> skip
			fi;
			scan.foreign = 1;
			scan.foreign_off = r
		:: else -> skip
		fi
#ifdef BUG_ANY_NEWGEN_COUNTS
	/* before: any NEW_GEN of our generation (a lost election too) restarts
	 * the count, at its commit LSN */
	:: !FOREIGN(r, scan.gen, n_) && log[r].type == NEW_GEN && log[r].gen == scan.gen ->
		scan.seq = 0;
		scan.lsn = log[r].lsn;
		scan.off = r
#endif
	:: else ->
		if
		:: log[r].gen != scan.gen || log[r].origin != n_ -> skip
		:: else ->
			if
			:: log[r].type == TXN ->
				if
				:: !log[r].last || log[r].seq <= scan.seq -> skip	/* a chunk, or written again */
				:: else ->
					if
#ifndef BUG_NO_HOLE_CHECK
					/* a transaction of ours missing before this one (before the
					 * fix: this one was taken for the last, without a word) */
					:: log[r].seq != scan.seq + 1 && !scan.hole ->
						if
						:: !scan.foreign -> logscan_history_ends()
						:: else -> skip
						fi;
						scan.hole = 1;
						scan.hole_off = r
#endif
					:: else -> skip
					fi;
					scan.seq = log[r].seq;
					scan.lsn = log[r].lsn;
					scan.off = r;
					if
					:: scan.foreign || scan.hole || scan.ended -> scan.orphans = 1
					:: else -> skip
					fi
				fi
			:: log[r].type == END_GEN ->
				if
				:: !scan.ended ->
					if
					:: !scan.foreign && !scan.hole -> logscan_history_ends()
					:: else -> skip
					fi;
					scan.ended = 1;
					scan.ended_off = r
				:: else -> skip
				fi
			:: else -> skip		/* our own NEW_GEN: nothing to count */
			fi
		fi
	fi
}

/* replkafka_logscan_read(): the records in [from_, to_) */
inline logscan_read(n_, from_, to_)
{
	y = from_;
	do
	:: y < to_ -> logscan_record(n_, y); y++
	:: else -> break
	od
}

/* replkafka_logscan_ended_cleanly() */
#define ENDED_CLEANLY \
	(scan.ended && !scan.orphans && !scan.hole && (!scan.foreign || scan.foreign_off > scan.ended_off))

/* ------------------------------------------------------------------ */
/* Shared memory and roles (shmem.c, roles.c)                           */
/* ------------------------------------------------------------------ */

/*
 * roles.c: a role change committed (catalog row and consumer/producer
 * checkpoints written before) and published by
 * replkafka_shmem_publish_roles().
 */
inline publish_role(n_, role_, gen_)
{
	printf("MODEL: %c becomes %d (1 replica, 2 primary) in generation %d\n", 'A' + n_, role_, gen_);
	nd[n_].role = role_;
	nd[n_].gen = gen_;
	nd[n_].s_role = role_;
	nd[n_].s_gen = gen_;
	nd[n_].handover = 0;
	nd[n_].ended_gen = 0;
	nd[n_].pr_state = PR_NONE;
	nd[n_].rowlock = 0
}

/* replkafka_partition_set_stale() */
inline set_stale(n_, g_, end_)
{
	printf("MODEL: %c finds itself stale in generation %d, history up to LSN %d\n", 'A' + n_, g_, end_);
	if
	:: nd[n_].stale_gen != g_ -> nd[n_].history_end = end_
	:: else ->
		if
		:: end_ > nd[n_].history_end -> nd[n_].history_end = end_
		:: else -> skip
		fi
	fi;
	nd[n_].stale_gen = g_;
	nd[n_].s_role = ERROR
}

/* replkafka_partition_extend_history() */
inline extend_history(n_, lsn_)
{
	if
	:: lsn_ > nd[n_].history_end -> nd[n_].history_end = lsn_
	:: else -> skip
	fi
}

/* ------------------------------------------------------------------ */
/* Synchronous commits (fence.c)                                        */
/* ------------------------------------------------------------------ */

/* fence_check_partition(): the write fence lets a transaction through */
#define FENCE_OPEN(n_) \
	(nd[n_].s_role == PRIMARY && !nd[n_].handover && nd[n_].ended_gen != nd[n_].s_gen)

/*
 * fence_verdict(): 1 (success) once the shipper released the commit and
 * the partition was not found stale in its generation, or the commit is
 * in the stale generation's history; -1 (WARNING) once released after the
 * history's end.
 */
#define STALE_FOR(n_, t_)	(nd[n_].stale_gen != 0 && nd[n_].stale_gen == tx_gen[t_])
#define VERDICT_OK(n_, t_) \
	(STALE_FOR(n_, t_) -> tx_lsn[t_] <= nd[n_].history_end : nd[n_].acked_lsn >= tx_lsn[t_])
#define VERDICT_WARN(n_, t_) \
	(STALE_FOR(n_, t_) && tx_lsn[t_] > nd[n_].history_end && nd[n_].acked_lsn >= tx_lsn[t_])

/*
 * fence_wait_for_kafka(): a waiting commit returns once its verdict is
 * known.  A verdict never changes once known (acked_lsn only grows, and
 * the history's end covers every commit released before the partition was
 * found stale), so the model settles waiting commits in the shipper's step
 * that decides them: a client that looks later would get the same answer.
 */
inline settle_sessions(n_)
{
	z = 0;
	do
	:: z < SESSIONS ->
		if
		:: cl[n_].tx[z] != 0 && VERDICT_OK(n_, cl[n_].tx[z]) ->
			printf("MODEL: %c acknowledges transaction %d\n", 'A' + n_, cl[n_].tx[z]);
			tx_acked[cl[n_].tx[z]] = 1;
			cl[n_].tx[z] = 0
		:: cl[n_].tx[z] != 0 && VERDICT_WARN(n_, cl[n_].tx[z]) ->
			printf("MODEL: %c warns transaction %d is not history\n", 'A' + n_, cl[n_].tx[z]);
			cl[n_].tx[z] = 0
		:: else -> skip
		fi;
		z++
	:: else -> break
	od;
	skip
}


/* ------------------------------------------------------------------ */
/* The shipper (shipper.c)                                              */
/* ------------------------------------------------------------------ */

/*
 * shipper_save_state() writes the producer checkpoint of a primary's
 * current generation at most once a second.  The model writes it at once:
 * a checkpoint that lags only makes the next read-back start earlier, over
 * records of ours and records read back already, which tells it nothing
 * new (its result is the same).
 */
inline save_producer_checkpoint(n_)
{
	if
	:: nd[n_].s_role == PRIMARY && sh[n_].acked_gen == nd[n_].s_gen ->
		nd[n_].pck_gen = sh[n_].acked_gen;
		nd[n_].pck_seq = sh[n_].acked_seq;
		nd[n_].pck_lsn = sh[n_].acked_lsn;
		nd[n_].pck_off = sh[n_].acked_off
	:: else -> skip
	fi
}

/*
 * shipper_partition_error(): stop shipping; our transactions Kafka holds
 * before offset before_ are the cluster's history (NONE: none).
 */
inline shipper_partition_error(n_, before_)
{
	he = sh[n_].confirm;
	z = 0;
	do
	:: z < sh[n_].nsh ->
		if
		:: sh[n_].sh_pend[z] == 0 && before_ != NONE && sh[n_].sh_off[z] < before_ &&
		   tx_lsn[sh[n_].sh_tx[z]] > he ->
			he = tx_lsn[sh[n_].sh_tx[z]]
		:: else -> skip
		fi;
		z++
	:: else -> break
	od;
	sh[n_].stale = 1;
	sh[n_].orphans_from = (before_ == NONE -> 0 : before_);
	set_stale(n_, sh[n_].sg, he);
	sh[n_].pending_error = 1
}

/* shipper_report_scan() */
inline shipper_report_scan(n_)
{
	if
	:: scan.foreign || scan.hole || scan.ended ->
		sh[n_].history_lsn = scan.history_lsn;
		/* the history ends at the foreign record, the hole, or our END_GEN */
		bf = (scan.foreign -> scan.foreign_off : (scan.hole -> scan.hole_off : scan.ended_off));
		shipper_partition_error(n_, bf);
		b1 = 1
	:: else -> b1 = 0
	fi
}

/*
 * shipper_recover(), with shipper_load_checkpoint(): learn from Kafka
 * where our generation stands, reading everything after the producer
 * checkpoint (BUG_TAIL_WINDOW: only the last records of the log).
 */
inline shipper_recover(n_)
{
	sh[n_].sg = nd[n_].s_gen;
	sh[n_].stale = 0;
	sh[n_].expect = NONE;
	sh[n_].check_from = 0;
	sh[n_].check_to = 0;
	if
	:: sh[n_].acked_gen == sh[n_].sg && sh[n_].acked_off != NONE -> b2 = 1
	:: else ->
		if
		:: nd[n_].pck_gen == sh[n_].sg ->
			sh[n_].acked_gen = nd[n_].pck_gen;
			sh[n_].acked_seq = nd[n_].pck_seq;
			sh[n_].acked_lsn = nd[n_].pck_lsn;
			sh[n_].acked_off = nd[n_].pck_off;
			b2 = 1
		:: else -> b2 = 0
		fi
	fi;
	if
	:: !b2 ->
		sh[n_].skip_lsn = 0;
		sh[n_].history_lsn = 0;
		shipper_partition_error(n_, NONE)	/* no producer checkpoint */
	:: else ->
		logscan_init(sh[n_].sg, sh[n_].acked_seq, sh[n_].acked_lsn, sh[n_].acked_off);
#ifdef BUG_TAIL_WINDOW
		/* before: a fixed window at the end of the log */
		x = (loglen > sh[n_].acked_off + 1 + TAIL_WINDOW -> loglen - TAIL_WINDOW : sh[n_].acked_off + 1);
		logscan_read(n_, x, loglen);
#else
		logscan_read(n_, sh[n_].acked_off + 1, loglen);
#endif
		sh[n_].skip_lsn = scan.lsn;
		if
		:: nd[n_].ended_gen == sh[n_].sg && !scan.hole && !scan.orphans ->
			/* a demotion ended the generation, its END_GEN in Kafka or
			 * on its way: everything of ours is history, whatever came
			 * after; shipper_finish_handover() goes on (the C also
			 * requires the last transaction ended.c recorded, which a
			 * read to the log's end always finds here) */
			sh[n_].acked_seq = scan.seq;
			sh[n_].acked_lsn = scan.lsn;
			sh[n_].acked_off = scan.off
		:: else ->
			shipper_report_scan(n_);
			if
			:: !b1 ->
				sh[n_].expect = loglen;
				sh[n_].next_seq = scan.seq + 1;
				if
				:: scan.off != NONE && scan.off > sh[n_].acked_off ->
					sh[n_].acked_seq = scan.seq;
					sh[n_].acked_lsn = scan.lsn;
					sh[n_].acked_off = scan.off;
					save_producer_checkpoint(n_)
				:: else -> skip
				fi
			:: else -> skip
			fi
		fi
	fi
}

/* shipper_recover_changed(): a generation this node became primary of */
#define RECOVER_PENDING(n_) \
	(nd[n_].s_role == PRIMARY && sh[n_].sg != nd[n_].s_gen)

/*
 * shipper_write() and shipper_txn_end() for the next commit decoded:
 * stamp the next SCN and produce it, chunk by chunk, if this node is
 * primary of the generation it recovered for.
 */
inline shipper_decode_one(n_)
{
	x = sh[n_].dec + 1;			/* its LSN */
	tt = nd[n_].wal[x];
	if
	:: nd[n_].s_role == PRIMARY && sh[n_].sg == nd[n_].s_gen &&
	   !sh[n_].stale && x > sh[n_].skip_lsn ->
		z = sh[n_].nsh;
		sh[n_].sh_tx[z] = tt;
		sh[n_].sh_gen[z] = sh[n_].sg;
		sh[n_].sh_seq[z] = sh[n_].next_seq;
		sh[n_].sh_pend[z] = CHUNKS;
		sh[n_].sh_off[z] = NONE;
		sh[n_].nsh++;
		/* shipper_produce(), each chunk */
		y = 0;
		do
		:: y < CHUNKS ->
			z = sh[n_].nq;
			sh[n_].q_tx[z] = tt;
			sh[n_].q_gen[z] = sh[n_].sg;
			sh[n_].q_seq[z] = sh[n_].next_seq;
			sh[n_].q_chunk[z] = y;
			sh[n_].nq++;
			y++
		:: else -> break
		od;
		sh[n_].next_seq++
	:: else -> skip		/* not shipped (stale, not primary, in Kafka already) */
	fi;
	/* shipper_txn_end(): a stale primary's commit in the history */
	if
	:: sh[n_].stale && x <= sh[n_].history_lsn -> extend_history(n_, x)
	:: else -> skip
	fi;
	sh[n_].dec = x
}

/*
 * shipper_service(): pop the acknowledged shipments in order, move the
 * confirmed position (slot and acked_lsn, which releases synchronous
 * commits).  Fixed: only once the ranges others wrote in between were read
 * back (RELEASABLE waits for shipper_check_range()).
 */
#ifdef BUG_NO_HISTORY_CHECK
#define CHECKED(n_)		1
#else
#define CHECKED(n_)		(sh[n_].check_to <= sh[n_].check_from)
#endif
#define RELEASABLE(n_) \
	(CHECKED(n_) && \
	 ((sh[n_].nsh > 0 && sh[n_].sh_pend[0] == 0) || \
	  (sh[n_].nsh == 0 && sh[n_].dec == nd[n_].walen && sh[n_].confirm < sh[n_].dec)))

inline shipper_release(n_)
{
	do
	:: sh[n_].nsh > 0 && sh[n_].sh_pend[0] == 0 ->
		tt = sh[n_].sh_tx[0];
		if
		:: sh[n_].sh_gen[0] != sh[n_].sg -> skip	/* judged when it left it */
		:: sh[n_].sh_gen[0] == sh[n_].sg && sh[n_].stale &&
		   sh[n_].sh_off[0] >= sh[n_].orphans_from -> skip	/* an orphan */
		:: else ->
			sh[n_].acked_gen = sh[n_].sh_gen[0];
			sh[n_].acked_seq = sh[n_].sh_seq[0];
			sh[n_].acked_lsn = tx_lsn[tt];
			sh[n_].acked_off = sh[n_].sh_off[0];
			save_producer_checkpoint(n_);
			if
			:: sh[n_].stale -> extend_history(n_, tx_lsn[tt])
			:: else -> skip
			fi
		fi;
		sh[n_].confirm = tx_lsn[tt];
		/* dlist_pop_head_node() */
		z = 1;
		do
		:: z < sh[n_].nsh ->
			sh[n_].sh_tx[z - 1] = sh[n_].sh_tx[z];
			sh[n_].sh_gen[z - 1] = sh[n_].sh_gen[z];
			sh[n_].sh_seq[z - 1] = sh[n_].sh_seq[z];
			sh[n_].sh_pend[z - 1] = sh[n_].sh_pend[z];
			sh[n_].sh_off[z - 1] = sh[n_].sh_off[z];
			z++
		:: else -> break
		od;
		sh[n_].nsh--;
		sh[n_].sh_tx[sh[n_].nsh] = 0;
		sh[n_].sh_gen[sh[n_].nsh] = 0;
		sh[n_].sh_seq[sh[n_].nsh] = 0;
		sh[n_].sh_pend[sh[n_].nsh] = 0;
		sh[n_].sh_off[sh[n_].nsh] = 0
	:: else -> break
	od;
	/* caught up and nothing in flight: everything decoded is done */
	if
	:: sh[n_].nsh == 0 && sh[n_].dec == nd[n_].walen && sh[n_].dec > sh[n_].confirm ->
		sh[n_].confirm = sh[n_].dec
	:: else -> skip
	fi;
	if
	:: sh[n_].confirm > nd[n_].slot ->
		nd[n_].slot = sh[n_].confirm;	/* LogicalConfirmReceivedLocation() */
		nd[n_].acked_lsn = sh[n_].confirm	/* replkafka_shmem_report_acked() */
	:: else -> skip
	fi
}

/* shipper_check_range(): read back what others wrote between our records */
inline shipper_check_range(n_)
{
	x = sh[n_].check_from;
	tt = sh[n_].check_to;
	sh[n_].check_from = 0;
	sh[n_].check_to = 0;
	if
	:: nd[n_].s_role != PRIMARY || sh[n_].stale || sh[n_].sg != nd[n_].s_gen ||
	   nd[n_].ended_gen == sh[n_].sg -> skip
	:: else ->
		logscan_init(sh[n_].sg, NONE, 0, NONE);
		logscan_read(n_, x, tt);
		shipper_report_scan(n_)
	fi
}

/*
 * shipper_check_foreign(): an idle primary looks at the log's end now and
 * then (the timer is abstracted: any moment it is idle).
 */
#define IDLE_CHECK(n_) \
	(sh[n_].dec == nd[n_].walen && sh[n_].nsh == 0 && nd[n_].s_role == PRIMARY && \
	 !sh[n_].stale && sh[n_].sg == nd[n_].s_gen && sh[n_].expect != NONE && \
	 nd[n_].ended_gen != sh[n_].sg && loglen > sh[n_].expect)

inline shipper_check_foreign(n_)
{
	sh[n_].check_from = sh[n_].expect;
	sh[n_].check_to = loglen;
	sh[n_].expect = loglen
}

/* shipper_handover_left(): a demotion ended its generation and left */
#define HANDOVER_LEFT(n_) \
	(nd[n_].s_role == PRIMARY && nd[n_].ended_gen != 0 && \
	 nd[n_].ended_gen == nd[n_].s_gen && !nd[n_].handover && !nd[n_].rowlock)

#define SAVE_PENDING(n_) \
	(sh[n_].pending_error || HANDOVER_LEFT(n_))

/*
 * shipper_save_state(): the producer checkpoint (only a primary's, of its
 * current generation), the roles of stale partitions, and the handovers
 * left to finish (shipper_finish_handover()).
 */
inline shipper_save_state(n_)
{
	if
	:: HANDOVER_LEFT(n_) ->
		if
		:: sh[n_].acked_gen != nd[n_].s_gen ->
			shipper_partition_error(n_, NONE)
		:: else ->
			nd[n_].cck_valid = 1;
			nd[n_].cck_gen = nd[n_].s_gen;
			nd[n_].cck_seq = sh[n_].acked_seq;
			nd[n_].cck_off = sh[n_].acked_off;
			nd[n_].cck_ended = 0;
			publish_role(n_, REPLICA, nd[n_].s_gen)
		fi
	:: else -> skip
	fi;
	if
	:: sh[n_].pending_error ->
		/* replkafka_catalog_set_primary_error() */
		sh[n_].pending_error = 0;
		if
		:: !nd[n_].rowlock && nd[n_].role == PRIMARY && nd[n_].gen == sh[n_].sg ->
			nd[n_].role = ERROR
		:: nd[n_].rowlock -> sh[n_].pending_error = 1	/* tried again later */
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/*
 * The shipper starts (again): after an error (a record that failed for
 * good) or a crash.  Its producer is gone, but what it sent may still
 * land: the queue becomes an abandoned producer's (an older abandoned one
 * is dropped: it may always fail to land).  Decoding starts again at the
 * slot's confirmed position.
 */
inline shipper_reset(n_)
{
	printf("MODEL: %c's shipper starts again from LSN %d\n", 'A' + n_, nd[n_].slot);
	z = 0;
	do
	:: z < QMAX ->
		sh[n_].oq_tx[z] = sh[n_].q_tx[z];
		sh[n_].oq_gen[z] = sh[n_].q_gen[z];
		sh[n_].oq_seq[z] = sh[n_].q_seq[z];
		sh[n_].oq_chunk[z] = sh[n_].q_chunk[z];
		sh[n_].q_tx[z] = 0;
		sh[n_].q_gen[z] = 0;
		sh[n_].q_seq[z] = 0;
		sh[n_].q_chunk[z] = 0;
		z++
	:: else -> break
	od;
	sh[n_].noq = sh[n_].nq;
	sh[n_].nq = 0;
	z = 0;
	do
	:: z < NTXN ->
		sh[n_].sh_tx[z] = 0;
		sh[n_].sh_gen[z] = 0;
		sh[n_].sh_seq[z] = 0;
		sh[n_].sh_pend[z] = 0;
		sh[n_].sh_off[z] = 0;
		z++
	:: else -> break
	od;
	sh[n_].nsh = 0;
	sh[n_].sg = 0;
	sh[n_].next_seq = 0;
	sh[n_].skip_lsn = 0;
	sh[n_].stale = 0;
	sh[n_].history_lsn = 0;
	sh[n_].orphans_from = 0;
	sh[n_].pending_error = 0;
	sh[n_].dec = nd[n_].slot;
	sh[n_].confirm = nd[n_].slot;
	sh[n_].acked_gen = 0;
	sh[n_].acked_seq = 0;
	sh[n_].acked_lsn = 0;
	sh[n_].acked_off = NONE;
	sh[n_].expect = NONE;
	sh[n_].check_from = 0;
	sh[n_].check_to = 0;
	sh[n_].delivery_error = 0;
	nd[n_].acked_lsn = nd[n_].slot	/* shipper_decode() */
}

proctype Shipper(byte n)
{
end:
	do
	:: d_step { RECOVER_PENDING(n) -> shipper_recover(n); settle_sessions(n) }
	:: d_step { !RECOVER_PENDING(n) && sh[n].dec < nd[n].walen && !sh[n].delivery_error ->
		shipper_decode_one(n); settle_sessions(n) }
	:: d_step { sh[n].delivery_error -> shipper_reset(n); settle_sessions(n) }
	:: d_step { (sh[n].check_to > sh[n].check_from || IDLE_CHECK(n)) && !sh[n].delivery_error ->
		if
		:: sh[n].check_to <= sh[n].check_from -> shipper_check_foreign(n)
		:: else -> skip
		fi;
		shipper_check_range(n);
		settle_sessions(n) }
	:: d_step { RELEASABLE(n) && !sh[n].delivery_error -> shipper_release(n); settle_sessions(n) }
	:: d_step { SAVE_PENDING(n) && !RECOVER_PENDING(n) && !sh[n].delivery_error ->
		shipper_save_state(n); settle_sessions(n) }
	od
}

/* ------------------------------------------------------------------ */
/* Kafka                                                                */
/* ------------------------------------------------------------------ */

/*
 * A shipper record lands; the delivery report (shipper_dr_cb()) counts it
 * for its shipment and notes a gap in our offsets as a range to read
 * back.
 */
inline land_shipped(n_)
{
	tt = sh[n_].q_tx[0];
	log_append(TXN, sh[n_].q_gen[0], sh[n_].q_seq[0], n_, tx_lsn[tt], tt,
			   sh[n_].q_chunk[0], sh[n_].q_chunk[0] == CHUNKS - 1);
	x = loglen - 1;
	/* shipper_dr_cb() */
	z = 0;
	do
	:: z < sh[n_].nsh && sh[n_].sh_tx[z] == tt -> break
	:: z < sh[n_].nsh && sh[n_].sh_tx[z] != tt -> z++
	:: z >= sh[n_].nsh -> break
	od;
	assert(z < sh[n_].nsh);
	sh[n_].sh_pend[z]--;
	if
	:: sh[n_].sh_off[z] == NONE || x > sh[n_].sh_off[z] -> sh[n_].sh_off[z] = x
	:: else -> skip
	fi;
	if
	:: sh[n_].expect != NONE && x > sh[n_].expect ->
		if
		:: sh[n_].check_to <= sh[n_].check_from -> sh[n_].check_from = sh[n_].expect
		:: else -> skip
		fi;
		sh[n_].check_to = x
	:: else -> skip
	fi;
	sh[n_].expect = x + 1;
	queue_pop(n_)
}

inline queue_pop(n_)
{
	z = 1;
	do
	:: z < sh[n_].nq ->
		sh[n_].q_tx[z - 1] = sh[n_].q_tx[z];
		sh[n_].q_gen[z - 1] = sh[n_].q_gen[z];
		sh[n_].q_seq[z - 1] = sh[n_].q_seq[z];
		sh[n_].q_chunk[z - 1] = sh[n_].q_chunk[z];
		z++
	:: else -> break
	od;
	sh[n_].nq--;
	sh[n_].q_tx[sh[n_].nq] = 0;
	sh[n_].q_gen[sh[n_].nq] = 0;
	sh[n_].q_seq[sh[n_].nq] = 0;
	sh[n_].q_chunk[sh[n_].nq] = 0
}

/*
 * A shipper record fails for good: the delivery report's error ends the
 * shipper (shipper_service()).  With enable.gapless.guarantee the
 * producer fails every later record too; BUG_NO_GAPLESS: they may still
 * land, after a hole.
 */
inline fail_shipped(n_)
{
	printf("MODEL: a record of %c's transaction %d fails for good\n", 'A' + n_, sh[n_].q_tx[0]);
	sh[n_].delivery_error = 1;
#ifdef BUG_NO_GAPLESS
	queue_pop(n_)
#else
	do
	:: sh[n_].nq > 0 -> queue_pop(n_)
	:: else -> break
	od;
	skip
#endif
}

/* An abandoned producer's record lands: nobody hears of it. */
inline land_abandoned(n_)
{
	tt = sh[n_].oq_tx[0];
	log_append(TXN, sh[n_].oq_gen[0], sh[n_].oq_seq[0], n_, tx_lsn[tt], tt,
			   sh[n_].oq_chunk[0], sh[n_].oq_chunk[0] == CHUNKS - 1);
	z = 1;
	do
	:: z < sh[n_].noq ->
		sh[n_].oq_tx[z - 1] = sh[n_].oq_tx[z];
		sh[n_].oq_gen[z - 1] = sh[n_].oq_gen[z];
		sh[n_].oq_seq[z - 1] = sh[n_].oq_seq[z];
		sh[n_].oq_chunk[z - 1] = sh[n_].oq_chunk[z];
		z++
	:: else -> break
	od;
	sh[n_].noq--;
	sh[n_].oq_tx[sh[n_].noq] = 0;
	sh[n_].oq_gen[sh[n_].noq] = 0;
	sh[n_].oq_seq[sh[n_].noq] = 0;
	sh[n_].oq_chunk[sh[n_].noq] = 0
}

inline drop_abandoned(n_)
{
	do
	:: sh[n_].noq > 0 ->
		sh[n_].noq--;
		sh[n_].oq_tx[sh[n_].noq] = 0;
		sh[n_].oq_gen[sh[n_].noq] = 0;
		sh[n_].oq_seq[sh[n_].noq] = 0;
		sh[n_].oq_chunk[sh[n_].noq] = 0
	:: else -> break
	od;
	skip
}

inline land_control(n_)
{
	log_append(cq[n_].type, cq[n_].gen, cq[n_].seq, n_, cq[n_].lsn, 0, 0, 1);
	drop_control(n_)
}

inline drop_control(n_)
{
	cq_valid[n_] = 0;
	cq[n_].type = 0;
	cq[n_].gen = 0;
	cq[n_].seq = 0;
	cq[n_].lsn = 0
}

/* Choose a node k whose producer has what COND_ says in flight. */
#define PICK(COND_) \
	if \
	:: COND_(NA) -> k = NA \
	:: COND_(NB) -> k = NB \
	:: COND_(NC) -> k = NC \
	fi

#define IN_FLIGHT(n_)		(sh[n_].nq > 0)
#define MAY_FAIL(n_)		(sh[n_].nq > 0 && losses > 0)
#define ABANDONED(n_)		(sh[n_].noq > 0)
#define CONTROL_LATE(n_)	(cq_valid[n_])

proctype Broker()
{
	byte k;		/* whose record */
end:
	do
	:: atomic { PICK(IN_FLIGHT); d_step { land_shipped(k); k = 0 } }
	:: atomic { PICK(MAY_FAIL); d_step { losses--; fail_shipped(k); k = 0 } }
	:: atomic { PICK(ABANDONED); d_step { land_abandoned(k); k = 0 } }
	:: atomic { PICK(ABANDONED); d_step { drop_abandoned(k); k = 0 } }
	:: atomic { PICK(CONTROL_LATE); d_step { land_control(k); k = 0 } }
	:: atomic { PICK(CONTROL_LATE); d_step { drop_control(k); k = 0 } }
	od
}

/*
 * kafka.c: replkafka_kafka_produce_sync() of a control record (NEW_GEN,
 * END_GEN) by a plain acks=all producer: it lands and is acknowledged; or
 * the call fails, the record not in Kafka, or (LATE) in Kafka already or
 * still on its way; or (DUPS) the first copy lands, its acknowledgement is
 * lost, and librdkafka sends it again (produce_retry()).
 */
inline produce_control(n_, type_, g_, s_, l_, res_, off_)
{
	if
	:: log_append(type_, g_, s_, n_, l_, 0, 0, 1); off_ = loglen - 1; res_ = SENT_OK
	:: res_ = SENT_FAILED
	:: lates > 0 -> lates--; log_append(type_, g_, s_, n_, l_, 0, 0, 1); res_ = SENT_FAILED;
		printf("MODEL: %c's control record landed, but its produce failed\n", 'A' + n_)
	:: lates > 0 && !cq_valid[n_] -> lates--;
		printf("MODEL: %c's control record times out, still on its way\n", 'A' + n_);
		cq_valid[n_] = 1; cq[n_].type = type_; cq[n_].gen = g_; cq[n_].seq = s_;
		cq[n_].origin = n_; cq[n_].lsn = l_; cq[n_].last = 1;
		res_ = SENT_FAILED
	:: dups > 0 -> dups--; log_append(type_, g_, s_, n_, l_, 0, 0, 1); res_ = SENT_RETRY;
		printf("MODEL: %c's control record landed, its acknowledgement lost: sent again\n", 'A' + n_)
	fi
}

/* The retried copy: it lands and its acknowledgement returns its offset. */
inline produce_retry(n_, type_, g_, s_, l_, res_, off_)
{
	if
	:: log_append(type_, g_, s_, n_, l_, 0, 0, 1); off_ = loglen - 1; res_ = SENT_OK
	:: res_ = SENT_FAILED
	fi
}

/* ------------------------------------------------------------------ */
/* The apply rules (rules.c)                                            */
/* ------------------------------------------------------------------ */

/* rules_from_leader(); BUG_FOREIGN_INTERRUPTS_CHUNKS: every record */
#ifdef BUG_FOREIGN_INTERRUPTS_CHUNKS
#define FROM_LEADER(n_, r)	1
#else
#define FROM_LEADER(n_, r) \
	(log[r].type == NEW_GEN -> log[r].gen > ap[n_].gen : \
	 (log[r].gen != ap[n_].gen -> log[r].gen > ap[n_].gen : log[r].origin == ap[n_].origin))
#endif

#define LEADER_REC(n_, r)	(log[r].gen == ap[n_].gen && log[r].origin == ap[n_].origin)

/* rules_whole() */
inline rules_whole(n_, r)
{
	if
	:: log[r].type == NEW_GEN ->
#ifdef BUG_LATER_NEWGEN_WINS
		/* before: a NEW_GEN of the current generation starts it again */
		vv = (log[r].gen >= ap[n_].gen -> V_NEW_GEN : V_LOST_ELECTION)
#else
		vv = (log[r].gen > ap[n_].gen -> V_NEW_GEN : V_LOST_ELECTION)
#endif
	:: log[r].type == END_GEN ->
		if
		:: log[r].gen > ap[n_].gen -> vv = V_ERROR
		:: log[r].gen <= ap[n_].gen && !LEADER_REC(n_, r) -> vv = V_ZOMBIE
		:: log[r].gen <= ap[n_].gen && LEADER_REC(n_, r) && ap[n_].ended -> vv = V_NOTHING
		:: log[r].gen <= ap[n_].gen && LEADER_REC(n_, r) && !ap[n_].ended ->
			vv = (log[r].seq == ap[n_].last -> V_END_GEN : V_ERROR)
		fi
	:: log[r].type == TXN ->
		if
#ifndef BUG_ZOMBIE_APPLIED
		/* rule 3 (BUG_ZOMBIE_APPLIED: a zombie is judged by rules 1 and 2 only) */
		:: log[r].gen < ap[n_].gen ||
		   (log[r].gen == ap[n_].gen && (!LEADER_REC(n_, r) || ap[n_].ended)) ->
			vv = V_ZOMBIE
#endif
		:: else ->
			if
			:: log[r].gen > ap[n_].gen -> vv = V_ERROR
			/* rule 1: an SCN not above the last applied */
			:: log[r].gen < ap[n_].gen -> vv = V_REPLAY
			:: log[r].gen == ap[n_].gen && log[r].seq <= ap[n_].last -> vv = V_REPLAY
			:: log[r].gen == ap[n_].gen && log[r].seq > ap[n_].last ->
				vv = (log[r].seq == ap[n_].last + 1 -> V_APPLY : V_ERROR)
			fi
		fi
	fi
}

/* replkafka_rules_judge(): vv, discard, first_chunk, collected */
inline rules_judge(n_, r)
{
	vv = 0;
	discard = 0;
	first_chunk = 0;
	collected = 0;
	if
	:: !FROM_LEADER(n_, r) ->
		if
		:: log[r].type == TXN && !log[r].last -> vv = V_SKIP_CHUNK
		:: else -> rules_whole(n_, r)
		fi
	:: else ->
		if
		:: log[r].type == TXN && !(log[r].chunk == 0 && log[r].last) ->
			/* same: the transaction being collected; continues: its next chunk */
			b1 = (ap[n_].coll_tx != 0 && ap[n_].coll_tx == log[r].tx &&
				  ap[n_].coll_gen == log[r].gen && ap[n_].coll_seq == log[r].seq);
			b2 = (b1 && log[r].chunk == 1);
			if
			:: log[r].chunk == 0 || !b2 ->
				discard = (ap[n_].coll_tx != 0);
				if
				:: log[r].chunk != 0 -> vv = V_SKIP_CHUNK
				:: else -> first_chunk = 1
				fi
			:: else -> skip
			fi;
			if
			:: vv == 0 && !log[r].last -> vv = V_COLLECT
			:: vv == 0 && log[r].last -> collected = 1; rules_whole(n_, r)
			:: else -> skip
			fi
		:: else ->
			discard = (ap[n_].coll_tx != 0);
			rules_whole(n_, r)
		fi
	fi
}

/* replkafka_rules_accept() */
inline rules_accept(n_, r)
{
	if
	:: discard || collected ->
		ap[n_].coll_tx = 0;
		ap[n_].coll_gen = 0;
		ap[n_].coll_seq = 0
	:: else -> skip
	fi;
	if
	:: vv == V_COLLECT && first_chunk ->
		ap[n_].coll_tx = log[r].tx;
		ap[n_].coll_gen = log[r].gen;
		ap[n_].coll_seq = log[r].seq
	:: vv == V_APPLY -> ap[n_].last = log[r].seq
	:: vv == V_NEW_GEN ->
		ap[n_].gen = log[r].gen;
		ap[n_].origin = log[r].origin;
		ap[n_].ended = 0;
		ap[n_].last = 0
	:: vv == V_END_GEN -> ap[n_].ended = 1
	:: else -> skip
	fi
}

/* ------------------------------------------------------------------ */
/* The promotion, worker side (promotion.c)                             */
/* ------------------------------------------------------------------ */

/* replkafka_promotion_new_generation(): won */
inline promotion_new_generation(n_, r)
{
	if
	:: nd[n_].pr_state == PR_CATCHUP && log[r].gen > nd[n_].pr_base && log[r].gen > prev_gen ->
		if
		:: log[r].gen == nd[n_].pr_gen && log[r].origin == n_ ->
			nd[n_].pr_state = PR_WON;
			nd[n_].pr_won_off = r
		:: !(log[r].gen == nd[n_].pr_gen && log[r].origin == n_) && r < nd[n_].pr_offset ->
			nd[n_].pr_pending = 1;
			nd[n_].pr_pending_gen = log[r].gen;
			nd[n_].pr_winner = log[r].origin
		:: !(log[r].gen == nd[n_].pr_gen && log[r].origin == n_) && r >= nd[n_].pr_offset ->
			nd[n_].pr_state = PR_LOST;
			nd[n_].pr_gen = log[r].gen
		fi
	:: nd[n_].pr_state == PR_NEWGEN && log[r].gen >= nd[n_].pr_gen ->
		if
		:: log[r].gen == nd[n_].pr_gen && log[r].origin == n_ && log[r].gen > prev_gen ->
			nd[n_].pr_state = PR_WON;
			nd[n_].pr_won_off = r
		:: else ->
			nd[n_].pr_state = PR_LOST;
			nd[n_].pr_gen = (log[r].gen > prev_gen -> log[r].gen : prev_gen)
		fi
	:: else -> skip
	fi;
	won = (nd[n_].pr_state == PR_WON)
}

/* replkafka_promotion_record_read() */
inline promotion_record_read(n_, r)
{
	if
	:: nd[n_].pr_pending && nd[n_].pr_state == PR_CATCHUP &&
	   log[r].gen == nd[n_].pr_pending_gen && log[r].origin == nd[n_].pr_winner ->
		nd[n_].pr_pending = 0
	:: else -> skip
	fi
}

/* replkafka_promotion_applies() */
#define APPLIES(n_) \
	((nd[n_].s_role == REPLICA || (nd[n_].s_role == OFFLINE && nd[n_].pr_state != PR_NONE)) && \
	 nd[n_].pr_state != PR_WON)

/* ------------------------------------------------------------------ */
/* The apply worker (apply.c)                                           */
/* ------------------------------------------------------------------ */

/* apply_load_partition(): from the consumer checkpoint */
inline apply_load_partition(n_)
{
	ap[n_].assigned = 1;
	ap[n_].stopped = 0;
	ap[n_].coll_tx = 0;
	ap[n_].coll_gen = 0;
	ap[n_].coll_seq = 0;
	if
	:: nd[n_].cck_valid ->
		ap[n_].gen = nd[n_].cck_gen;
#ifdef BUG_ENDED_NOT_DURABLE
		/* before: the checkpoint did not keep the generation's end */
		ap[n_].ended = 0;
#else
		ap[n_].ended = nd[n_].cck_ended;
#endif
		ap[n_].last = nd[n_].cck_seq;
		ap[n_].next = nd[n_].cck_off + 1;
		ap[n_].origin = nd[n_].gtab[nd[n_].cck_gen];
		/* replkafka_partition_report_taken_up() */
		if
		:: ap[n_].gen > 0 -> nd[n_].s_gen = ap[n_].gen
		:: else -> skip
		fi
	:: else ->
		ap[n_].gen = 0;
		ap[n_].ended = 0;
		ap[n_].last = 0;
		ap[n_].next = 0;
		ap[n_].origin = NOBODY
	fi
}

inline apply_unassign(n_)
{
	ap[n_].assigned = 0;
	ap[n_].coll_tx = 0;
	ap[n_].coll_gen = 0;
	ap[n_].coll_seq = 0
}

/*
 * Is the transaction at offset r part of the cluster's history, as the
 * contract defines it: of the node whose NEW_GEN first started its
 * generation, before any newer NEW_GEN and before that node's END_GEN?
 * (A ghost computation for I4; b2 is the answer.)
 */
inline is_history(r)
{
	b2 = 0;			/* the generation started */
	he = 0;			/* by */
	b1 = 1;			/* nothing ended it */
	z = 0;
	do
	:: z < r ->
		if
		:: log[z].type == NEW_GEN && log[z].gen > log[r].gen -> b1 = 0
		:: log[z].type == NEW_GEN && log[z].gen == log[r].gen && !b2 -> b2 = 1; he = log[z].origin
		:: log[z].type == END_GEN && log[z].gen == log[r].gen && b2 && log[z].origin == he -> b1 = 0
		:: else -> skip
		fi;
		z++
	:: else -> break
	od;
	b2 = (b2 && b1 && he == log[r].origin)
}

/*
 * apply_transaction(): the transaction and its checkpoint, in one local
 * transaction.
 */
inline apply_transaction(n_, r)
{
	tt = log[r].tx;
	I3_same_sequence_exactly_once = (db[n_].n[tt] == 0 &&
		(at_scn[log[r].gen].seq[log[r].seq] == 0 || at_scn[log[r].gen].seq[log[r].seq] == tt));
	assert(I3_same_sequence_exactly_once);
	is_history(r);
	I4_no_zombie_write_applied = b2;
	assert(I4_no_zombie_write_applied);
	at_scn[log[r].gen].seq[log[r].seq] = tt;
	db[n_].n[tt]++;
	nd[n_].cck_valid = 1;
	nd[n_].cck_gen = ap[n_].gen;
	nd[n_].cck_seq = log[r].seq;
	nd[n_].cck_off = r;
	nd[n_].cck_ended = 0
}

/*
 * apply_handle_message(), apply_record(), apply_verdict(): the next record
 * of the log, judged by the rules and acted on.
 */
inline apply_one(n_)
{
	x = ap[n_].next;
	ap[n_].next++;
	rules_judge(n_, x);
	if
	:: discard -> ap[n_].coll_tx = 0; ap[n_].coll_gen = 0; ap[n_].coll_seq = 0
	:: else -> skip
	fi;
	/* a record of the log a promotion catches up to was read */
	if
	:: log[x].type != NEW_GEN && vv != V_SKIP_CHUNK && vv != V_COLLECT && vv != V_ERROR ->
		promotion_record_read(n_, x)
	:: else -> skip
	fi;
	if
	:: vv == V_ERROR ->
		printf("MODEL: %c stops at log[%d]: a rule error\n", 'A' + n_, x);
		/* apply_partition_error() */
		ap[n_].stopped = 1;
		I5_log_passes_the_rules = 0;
		assert(I5_log_passes_the_rules)
	:: vv == V_NEW_GEN || vv == V_LOST_ELECTION ->
		prev_gen = ap[n_].gen;
		prev_origin = ap[n_].origin;
		if
		:: vv == V_NEW_GEN ->
			/* apply_new_generation() */
			nd[n_].gtab[log[x].gen] = log[x].origin;
			nd[n_].cck_valid = 1;
			nd[n_].cck_gen = log[x].gen;
			nd[n_].cck_seq = 0;
			nd[n_].cck_off = x;
			nd[n_].cck_ended = 0;
			nd[n_].s_gen = log[x].gen	/* replkafka_partition_report_new_generation() */
		:: else -> skip
		fi;
		promotion_new_generation(n_, x);
#ifndef BUG_APPLY_OWN_RECORDS
		if
		:: won -> apply_unassign(n_)	/* apply_release_partition() */
		:: else -> skip
		fi
#endif
	:: vv == V_END_GEN ->
		/* apply_end_generation() */
		nd[n_].cck_valid = 1;
		nd[n_].cck_gen = log[x].gen;
		nd[n_].cck_seq = ap[n_].last;
		nd[n_].cck_off = x;
		nd[n_].cck_ended = 1
	:: vv == V_APPLY ->
		printf("MODEL: %c applies log[%d]\n", 'A' + n_, x);
		apply_transaction(n_, x)
	:: else -> skip		/* skip a chunk, collect, replay, zombie, nothing */
	fi;
	if
	:: vv != V_ERROR -> rules_accept(n_, x)
	:: else -> skip
	fi
}

/*
 * apply_refresh_assignment() takes the partition up while this node is
 * its replica (or an offline one being promoted) and the promotion is not
 * won, and lets it go otherwise; apply_handle_message() applies nothing
 * on a primary, records fetched already included.  BUG_APPLY_OWN_RECORDS:
 * the worker does not stop at its own winning NEW_GEN, and learns of the
 * role change only when its assignment is refreshed.
 */
#ifdef BUG_APPLY_OWN_RECORDS
#define MAY_APPLY(n_)	1
#else
#define MAY_APPLY(n_)	(nd[n_].s_role != PRIMARY)
#endif

#define CAN_APPLY(n_) \
	(ap[n_].assigned && !ap[n_].stopped && ap[n_].next < loglen && MAY_APPLY(n_))

/*
 * When a replica applies a record matters only to a promotion of that
 * node (and to the worker of a node that just became primary): what it
 * applies depends on the log alone, which only grows, and on its
 * checkpoint, which a crash reloads.  So a replica that nobody promotes
 * applies lazily, once nothing else can happen (timeout), and Promote
 * starts by letting its worker apply any part of what it has not applied
 * yet: every lag the worker may have had when the promotion began is
 * explored, without interleaving each record with everything else.
 */
#define EAGER(n_)	(nd[n_].pr_state != PR_NONE || nd[n_].s_role != REPLICA)

proctype Applier(byte n)
{
end:
	do
	:: d_step { APPLIES(n) && !ap[n].assigned -> apply_load_partition(n) }
	:: d_step { !APPLIES(n) && ap[n].assigned -> apply_unassign(n) }
	:: d_step { CAN_APPLY(n) && (EAGER(n) || timeout) -> apply_one(n) }
	od
}

/* ------------------------------------------------------------------ */
/* Clients (fence.c)                                                    */
/* ------------------------------------------------------------------ */

/* A commit: the transaction is in the node's WAL and its database. */
inline client_commit(n_, i_)
{
	ntx++;
	nd[n_].walen++;
	nd[n_].wal[nd[n_].walen] = ntx;
	tx_lsn[ntx] = nd[n_].walen;
	tx_gen[ntx] = nd[n_].s_gen;
	db[n_].n[ntx]++;
	cl[n_].tx[i_] = ntx;
	printf("MODEL: %c commits transaction %d (LSN %d) in generation %d\n", 'A' + n_, ntx,
		   nd[n_].walen, nd[n_].s_gen)
}

#define SESSION_STEPS(n_, i_) \
	:: d_step { ntx < NTXN && cl[n_].tx[i_] == 0 && FENCE_OPEN(n_) -> client_commit(n_, i_) }

proctype Client(byte n)
{
end:
	do
	SESSION_STEPS(n, 0)
#if SESSIONS > 1
	SESSION_STEPS(n, 1)
#endif
	od
}

/* ------------------------------------------------------------------ */
/* promote() (promotion.c)                                              */
/* ------------------------------------------------------------------ */

/* replkafka_check_not_stale(): primary since the last transaction applied */
#define STALE_PRIMARY(n_) \
	(nd[n_].pck_gen != 0 && (!nd[n_].cck_valid || nd[n_].cck_gen < nd[n_].pck_gen))

/* replkafka_mastership_lock() with roles_check_stale() */
#define LOCKED_ROLE(n_) \
	((nd[n_].role == PRIMARY && nd[n_].s_role == ERROR) -> ERROR : nd[n_].role)

proctype Promote(byte n)
{
	byte e, g, high, nlsn, noff, res;

	e = nd[n].epoch;
	{
		/* replkafka_promote(), promote_partition() */
		atomic {
			/* the lag of its worker, lazy until now (see Applier) */
			do
			:: CAN_APPLY(n) -> d_step { apply_one(n) }
			:: true -> break
			od;
			if
			:: nd[n].rowlock || LOCKED_ROLE(n) == PRIMARY || LOCKED_ROLE(n) == ERROR ||
			   STALE_PRIMARY(n) || nd[n].pr_state != PR_NONE -> goto refused
			:: else -> skip
			fi;
			nd[n].rowlock = 1;
			nd[n].pr_state = PR_CATCHUP;
			nd[n].pr_offset = NONE;
			nd[n].pr_base = nd[n].s_gen;
			nd[n].pr_gen = 0;
			nd[n].pr_pending = 0
		};
		/* promote_steps(): the end of the log as it is now */
		atomic {
			high = loglen;
			nd[n].pr_offset = high
		};
		/* promote_wait() for the catch-up; then whether another won */
		atomic {
			((ap[n].assigned && ap[n].next >= high) || nd[n].pr_state == PR_LOST ||
			 nd[n].s_role == ERROR) ->
			if
			:: nd[n].pr_state == PR_CATCHUP && nd[n].pr_pending -> goto lost
			:: nd[n].pr_state == PR_LOST || nd[n].s_role == ERROR -> goto failed
			:: else -> skip
			fi;
			g = nd[n].s_gen;
			bounds_large_enough = (g < MAXGEN);
			assert(bounds_large_enough);
			nd[n].pr_gen = g + 1;
			nlsn = nd[n].walen
		};
		/* NEW_GEN of the next generation */
		atomic {
			produce_control(n, NEW_GEN, g + 1, 0, nlsn, res, noff);
			if
			:: res == SENT_FAILED -> goto failed
			:: else -> skip
			fi
		};
		if
		:: res == SENT_RETRY ->
			atomic {
				produce_retry(n, NEW_GEN, g + 1, 0, nlsn, res, noff);
				if
				:: res == SENT_FAILED -> goto failed
				:: else -> skip
				fi
			}
		:: else -> skip
		fi;
		atomic {
			if
			:: nd[n].pr_state == PR_CATCHUP -> nd[n].pr_state = PR_NEWGEN
			:: else -> skip
			fi
		};
#ifndef BUG_PROMOTE_NO_READBACK
		/* promote_wait() for our NEW_GEN to be read back
		 * (BUG_PROMOTE_NO_READBACK: written, hence won) */
		if
		:: atomic { nd[n].pr_state == PR_WON || nd[n].pr_state == PR_LOST || nd[n].s_role == ERROR ->
			if
			:: nd[n].pr_state != PR_WON -> goto failed
			:: else -> skip
			fi }
		:: atomic { nd[n].pr_state == PR_NEWGEN && giveups > 0 -> giveups--; goto failed }
		fi;
#endif
		/* won: the role change commits */
		atomic {
			I1_one_leader_per_generation = (leader_of[g + 1] == NOBODY || leader_of[g + 1] == n);
			assert(I1_one_leader_per_generation);
			leader_of[g + 1] = n;
			nd[n].pck_gen = g + 1;
			nd[n].pck_seq = 0;
			nd[n].pck_lsn = nlsn;
#ifdef BUG_NEWGEN_ACKED_COPY
			/* before: the offset Kafka acknowledged, a retried copy's
			 * perhaps, with another node's NEW_GEN before it */
			nd[n].pck_off = noff;
#else
			/* the copy of our NEW_GEN the worker won at (won_offset) */
			nd[n].pck_off = nd[n].pr_won_off;
#endif
			nd[n].cck_valid = 0;
			nd[n].cck_gen = 0;
			nd[n].cck_seq = 0;
			nd[n].cck_off = 0;
			nd[n].cck_ended = 0;
			publish_role(n, PRIMARY, g + 1);
			promote_won[n] = g + 1;
			goto done
		};
lost:
failed:
		atomic { nd[n].pr_state = PR_NONE; nd[n].rowlock = 0 };
refused:
done:
		skip
	} unless { nd[n].epoch != e };
	promote_done[n] = 1
}

/* ------------------------------------------------------------------ */
/* demote() (demotion.c)                                                */
/* ------------------------------------------------------------------ */

proctype Demote(byte n)
{
	byte e, g, lsn, high, res, eoff, end_seq, end_off, verdict;
	bit end_ended;

	e = nd[n].epoch;
	{
		/* replkafka_demote(): the fence closes */
		atomic {
			if
			:: nd[n].rowlock || LOCKED_ROLE(n) != PRIMARY -> goto refused
			:: else -> skip
			fi;
			nd[n].rowlock = 1;
			nd[n].handover = 1;		/* replkafka_partition_begin_handover() */
			g = nd[n].s_gen;
			/* demote_wait_for_writers(): a commit is one step; demote_wal_end() */
			lsn = nd[n].walen
		};
		/* demote_wait_for_kafka() */
		if
		:: atomic { nd[n].acked_lsn >= lsn || nd[n].s_role != PRIMARY ->
			if
			:: nd[n].s_role != PRIMARY -> goto failed
			:: else -> skip
			fi }
		:: atomic { nd[n].acked_lsn < lsn && giveups > 0 -> giveups--; goto failed }
		fi;
		/* demote_in_kafka(), demote_read_log() */
		atomic {
			if
			:: nd[n].pck_gen != g -> goto failed
			:: else -> skip
			fi;
			d_step {
				high = loglen;
				logscan_init(g, nd[n].pck_seq, nd[n].pck_lsn, nd[n].pck_off);
				logscan_read(n, nd[n].pck_off + 1, high);
				end_seq = scan.seq;
				if
				:: ENDED_CLEANLY ->
					/* a demotion whose session ended already handed over */
					end_off = scan.ended_off;
					end_ended = 1;
					verdict = 1
				:: !ENDED_CLEANLY && (scan.foreign || scan.hole || scan.ended) ->
					verdict = 2	/* its log is not this node's alone */
				:: else ->
					end_off = scan.off;
					end_ended = 0;
					verdict = 0
				fi
			};
			if
			:: verdict == 1 -> goto role_change
			:: verdict == 2 -> goto failed
			:: else -> skip
			fi
		};
		/* demote_end_generation(): END_GEN, then what came between */
		atomic {
			nd[n].ended_gen = g;	/* replkafka_partition_set_ended_generation() */
			produce_control(n, END_GEN, g, end_seq, lsn, res, eoff);
#ifdef BUG_DEMOTE_REOPENS
			/* before: an error after END_GEN gave the partition back */
			if
			:: res == SENT_FAILED -> nd[n].ended_gen = 0; goto failed
			:: else -> skip
			fi
#endif
		};
		if
		:: res == SENT_RETRY -> atomic { produce_retry(n, END_GEN, g, end_seq, lsn, res, eoff) }
		:: else -> skip
		fi;
		d_step {
			if
			:: res == SENT_OK ->
				logscan_init(g, end_seq, 0, end_off);
				logscan_read(n, high, eoff);
				if
				:: !scan.foreign -> end_off = eoff; end_ended = 1
				:: else -> skip		/* WARNING: ended after another node started one */
				fi
			:: else -> skip		/* WARNING: could not confirm the END_GEN */
			fi
		};
role_change:
		/* demote_steps(): a replica from the END_GEN (or our last record) */
		if
		:: atomic { aborts > 0 -> aborts--; goto failed }	/* the statement fails */
		:: atomic {
			nd[n].cck_valid = 1;
			nd[n].cck_gen = g;
			nd[n].cck_seq = end_seq;
			nd[n].cck_off = end_off;
			nd[n].cck_ended = end_ended;
			publish_role(n, REPLICA, g);
			goto done }
		fi;
failed:
		/* PG_CATCH: replkafka_partition_end_handover(); ended_generation stays */
		atomic { nd[n].handover = 0; nd[n].rowlock = 0 };
refused:
done:
		skip
	} unless { nd[n].epoch != e };
	demote_done[n] = 1
}

/* ------------------------------------------------------------------ */
/* Crashes                                                              */
/* ------------------------------------------------------------------ */

/*
 * The node crashes and restarts: shared memory is rebuilt from the
 * catalog (roles.c), every worker starts again, backends are gone (their
 * synchronous commits never return).  The catalog, the WAL and the slot
 * are durable (the apply worker's asynchronous commits are lost or kept
 * with their checkpoint, as if the crash had come earlier).
 */
inline crash(n_)
{
	printf("MODEL: %c crashes\n", 'A' + n_);
	nd[n_].epoch++;
	nd[n_].s_role = nd[n_].role;
	nd[n_].s_gen = nd[n_].gen;
	nd[n_].stale_gen = 0;
	nd[n_].history_end = 0;
	nd[n_].handover = 0;
#ifdef BUG_ENDED_IN_SHMEM
	/* before: ended_generation lived in shared memory only, and the fence
	 * opened again (now ended.c keeps it on disk) */
	nd[n_].ended_gen = 0;
#endif
	nd[n_].rowlock = 0;
	nd[n_].pr_state = PR_NONE;
	nd[n_].pr_base = 0;
	nd[n_].pr_offset = 0;
	nd[n_].pr_gen = 0;
	nd[n_].pr_pending = 0;
	nd[n_].pr_pending_gen = 0;
	nd[n_].pr_winner = 0;
	nd[n_].pr_won_off = 0;
	shipper_reset(n_);
	ap[n_].assigned = 0;
	ap[n_].stopped = 0;
	ap[n_].next = 0;
	ap[n_].gen = 0;
	ap[n_].origin = NOBODY;
	ap[n_].ended = 0;
	ap[n_].last = 0;
	ap[n_].coll_tx = 0;
	ap[n_].coll_gen = 0;
	ap[n_].coll_seq = 0;
	z = 0;
	do
	:: z < SESSIONS -> cl[n_].tx[z] = 0; z++
	:: else -> break
	od;
	skip
}

#define MAY_CRASH(n_)	(crashes > 0 && (CRASH_NODES & (1 << n_)))

proctype Chaos()
{
	byte k;		/* the node that crashes */
end:
	do
	:: atomic { PICK(MAY_CRASH); d_step { crashes--; crash(k); k = 0 } }
	:: break	/* no more crashes: lets the run settle (see Checker) */
	od
}

/* ------------------------------------------------------------------ */
/* I2, once everything settled                                          */
/* ------------------------------------------------------------------ */

/*
 * Nothing can move any more: every replica read the whole log.  Every
 * acknowledged transaction must be in the database of every node that is
 * a caught-up replica, or a primary that has not found itself stale.
 */
#define CURRENT(n_) \
	((nd[n_].s_role == REPLICA && ap[n_].assigned && !ap[n_].stopped) || \
	 (nd[n_].s_role == PRIMARY && !sh[n_].stale))

/*
 * What configurations are for: model/run checks that some run ends there
 * (see Checker), so that a configuration cannot pass by doing nothing.
 */
#define LAST_TX(n_)		nd[n_].wal[nd[n_].walen]
/* handoff: C leads generation 3, every transaction acknowledged */
#define HANDED_OVER		(promote_won[NC] == 3 && tx_acked[1] && tx_acked[NTXN])
/* failover: B then C took over; A, stopped, committed and was told its
 * commit is not part of the history */
#define ZOMBIE_FENCED \
	(promote_won[NB] == 2 && promote_won[NC] == 3 && nd[NA].stale_gen == 1 && \
	 nd[NA].walen > 0 && !tx_acked[LAST_TX(NA)])
/* race: exactly one of B and C won generation 2, and it took writes */
#define ONE_WINNER \
	((promote_won[NB] == 2) + (promote_won[NC] == 2) == 1 && tx_acked[1])
/* the third generation of race-again and move-back */
#define THIRD_GEN		(promote_won[NA] == 3 || promote_won[NB] == 3 || promote_won[NC] == 3)
/* a crash, or a lost record, and every transaction acknowledged all the same */
#define CRASHED			(crashes == 0 && tx_acked[1] && tx_acked[NTXN])
#define LOST_RECORD		(losses == 0 && tx_acked[1] && tx_acked[NTXN])
/* chunked transactions applied by both replicas of the last generation */
#define CHUNKED \
	(CHUNKS > 1 && tx_acked[NTXN] && db[NA].n[NTXN] + db[NB].n[NTXN] + db[NC].n[NTXN] >= 2)
/* a demotion that failed after its END_GEN, finished by the shipper */
#define HANDOVER_FINISHED	(aborts == 0 && promote_won[NC] == 3)

#define ALL_APPLIED \
	(!CAN_APPLY(NA) && !CAN_APPLY(NB) && !CAN_APPLY(NC))

active proctype Checker()
{
	timeout && ALL_APPLIED ->
	d_step {
		x = 1;
		do
		:: x <= ntx ->
			y = 0;
			do
			:: y < NODES ->
				I2_acknowledged_write_kept = (!tx_acked[x] || !CURRENT(y) || db[y].n[x] > 0);
				assert(I2_acknowledged_write_kept);
				y++
			:: else -> break
			od;
			x++
		:: else -> break
		od;
		skip
	};
	/*
	 * Goals: model/run checks that a configuration gets where it is meant
	 * to go (pan lists a statement no run executed as unreached).
	 */
	if :: HANDED_OVER -> printf("MODEL: goal HANDED_OVER\n") :: else -> skip fi;
	if :: ZOMBIE_FENCED -> printf("MODEL: goal ZOMBIE_FENCED\n") :: else -> skip fi;
	if :: ONE_WINNER -> printf("MODEL: goal ONE_WINNER\n") :: else -> skip fi;
	if :: THIRD_GEN -> printf("MODEL: goal THIRD_GEN\n") :: else -> skip fi;
	if :: CRASHED -> printf("MODEL: goal CRASHED\n") :: else -> skip fi;
	if :: LOST_RECORD -> printf("MODEL: goal LOST_RECORD\n") :: else -> skip fi;
	if :: CHUNKED -> printf("MODEL: goal CHUNKED\n") :: else -> skip fi;
	if :: HANDOVER_FINISHED -> printf("MODEL: goal HANDOVER_FINISHED\n") :: else -> skip fi
}

/* ------------------------------------------------------------------ */
/* The operator                                                         */
/* ------------------------------------------------------------------ */

inline promote_and_wait(n_)
{
	run Promote(n_);
	promote_done[n_] == 1;
	promote_done[n_] = 0
}

inline demote_and_wait(n_)
{
	run Demote(n_);
	demote_done[n_] == 1;
	demote_done[n_] = 0
}

init
{
	atomic {
		/* generation 1: A promoted, B and C followed it and caught up */
		log_append(NEW_GEN, 1, 0, NA, 0, 0, 0, 1);
		x = 0;
		do
		:: x <= MAXGEN ->
			leader_of[x] = NOBODY;
			nd[NA].gtab[x] = NOBODY;
			nd[NB].gtab[x] = NOBODY;
			nd[NC].gtab[x] = NOBODY;
			x++
		:: else -> break
		od;
		leader_of[1] = NA;
		nd[NA].role = PRIMARY;
		nd[NA].gen = 1;
		nd[NA].s_role = PRIMARY;
		nd[NA].s_gen = 1;
		nd[NA].pck_gen = 1;
		nd[NA].pck_off = 0;
		nd[NA].gtab[1] = NA;
		x = NB;
		do
		:: x <= NC ->
			nd[x].role = REPLICA;
			nd[x].gen = 1;
			nd[x].s_role = REPLICA;
			nd[x].s_gen = 1;
			nd[x].cck_valid = 1;
			nd[x].cck_gen = 1;
			nd[x].cck_off = 0;
			nd[x].gtab[1] = NA;
			x++
		:: else -> break
		od;
		x = NA;
		do
		:: x <= NC ->
			sh[x].acked_off = NONE;
			sh[x].expect = NONE;
			run Shipper(x);
			run Applier(x);
			run Client(x);
			x++
		:: else -> break
		od;
		run Broker();
#if CRASHES > 0
		run Chaos();
#endif
	}
#if SCENARIO == HANDOFF
	demote_and_wait(NA);
	if
	:: nd[NA].s_role == PRIMARY -> demote_and_wait(NA)	/* it failed: again */
	:: else -> skip
	fi;
	promote_and_wait(NB);
	demote_and_wait(NB);
	promote_and_wait(NC);
#elif SCENARIO == FAILOVER
	promote_and_wait(NB);
	promote_and_wait(NC);
#elif SCENARIO == RACE
	run Promote(NB);
	run Promote(NC);
	promote_done[NB] == 1 && promote_done[NC] == 1;
#elif SCENARIO == RACE_AGAIN
	run Promote(NB);
	run Promote(NC);
	promote_done[NB] == 1 && promote_done[NC] == 1;
	if
	:: promote_won[NB] == 0 -> promote_done[NB] = 0; promote_and_wait(NB)
	:: else -> promote_done[NC] = 0; promote_and_wait(NC)
	fi;
#elif SCENARIO == OVERLAP
	run Demote(NA);
	run Promote(NB);
	demote_done[NA] == 1 && promote_done[NB] == 1;
	promote_and_wait(NC);
#elif SCENARIO == MOVE_BACK
	demote_and_wait(NA);
	promote_and_wait(NB);
	run Promote(NA);
	run Promote(NC);
	promote_done[NA] == 1 && promote_done[NC] == 1;
#endif
}
