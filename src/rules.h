/*-------------------------------------------------------------------------
 *
 * rules.h
 *		The apply rules: what a replica does with each record of a
 *		partition's log, given what it knows of the partition.
 *
 * The module is pure, like message.c: it decides, and the apply worker
 * acts (writes the catalog, applies a transaction, stops the partition),
 * then tells the module what took effect.  It compiles in the backend
 * and in frontend programs (with FRONTEND defined), so that the fuzzer
 * can feed it sequences of records and check the guarantees of
 * doc/design.md section 6 on every step.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/rules.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_RULES_H
#define REPLKAFKA_RULES_H

#include "message.h"

/* What a replica knows of one partition's log. */
typedef struct RulesState
{
	uint32		partition;
	uint32		generation;		/* current generation, 0 before any */
	char		gen_origin[RKM_MAX_ORIGIN + 1]; /* whose NEW_GEN started it */
	bool		gen_ended;		/* its primary wrote END_GEN */
	uint64		last_scn;		/* last SCN applied */

	/* the leader's chunked transaction being collected */
	bool		collecting;
	uint64		coll_scn;
	uint32		coll_xid;
	char		coll_origin[RKM_MAX_ORIGIN + 1];
	uint32		coll_next;		/* next chunk expected */
} RulesState;

/* What to do with a record. */
typedef enum RulesVerdict
{
	RULES_SKIP_CHUNK,			/* a chunk of a transaction not to collect */
	RULES_NOTHING,				/* a record that changes nothing: the leader's
								 * HEARTBEAT, its END_GEN again */
	RULES_COLLECT,				/* a chunk of the leader's transaction: keep
								 * it */
	RULES_APPLY,				/* apply the transaction */
	RULES_REPLAY,				/* applied already: skip */
	RULES_ZOMBIE,				/* a stale writer's record: skip and count */
	RULES_NEW_GENERATION,		/* a generation starts */
	RULES_LOST_ELECTION,		/* a NEW_GEN that lost: skip */
	RULES_END_GENERATION,		/* the leader ended its generation */
	RULES_ERROR,				/* the partition cannot go on */
} RulesVerdict;

#define RULES_ERROR_LEN		256

typedef struct RulesResult
{
	RulesVerdict verdict;
	bool		discard;		/* drop the transaction being collected first */
	bool		first_chunk;	/* RULES_COLLECT: this chunk starts one */
	bool		collected;		/* RULES_APPLY, RULES_REPLAY, RULES_ZOMBIE:
								 * the chunks collected, this one the last */
	char		error[RULES_ERROR_LEN]; /* RULES_ERROR: why */
} RulesResult;

extern void replkafka_rules_init(RulesState *state, uint32 partition);
extern void replkafka_rules_judge(const RulesState *state, int64 offset,
								  const RkmHeader *hdr, RulesResult *result);
extern void replkafka_rules_accept(RulesState *state, const RkmHeader *hdr,
								   const RulesResult *result);

#endif							/* REPLKAFKA_RULES_H */
