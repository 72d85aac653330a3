/*-------------------------------------------------------------------------
 *
 * rules.c
 *		The apply rules of doc/design.md section 6, as a pure function of
 *		what a replica knows of a partition and the record it reads.
 *
 * Per partition, a replica knows the current generation, the node whose
 * NEW_GEN started it (the leader), whether the leader ended it, and the
 * last SCN applied.
 *	1. A TXN whose SCN is not above the last applied is a replay: skipped.
 *	2. Within a generation the sequence must be the last one + 1; a gap
 *	   stops the partition.
 *	3. A generation starts at a NEW_GEN of a higher generation (the first
 *	   one wins; a NEW_GEN of a generation not above the current one lost
 *	   its election and is skipped).  A TXN of an older generation, or of
 *	   the current generation from another node than the leader, or after
 *	   the leader's END_GEN, is a zombie write: skipped and counted.  A
 *	   record of a newer generation without its NEW_GEN stops the
 *	   partition.
 *	4. A chunked transaction is applied only when all its chunks arrived.
 *	   Records that are not the leader's leave it alone, and so do copies
 *	   of its chunks collected already; an incomplete one followed by
 *	   another record of the leader, or by a new generation, is discarded
 *	   (the leader writes it again whole).  The leader's END_GEN
 *	   carries the sequence of its last transaction, which must be the last
 *	   applied one.
 * (Rule 5, what a transaction may write, is the apply worker's.)
 *
 * replkafka_rules_judge() decides; the caller acts, and calls replkafka_rules_accept() for
 * what took effect.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/rules.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRONTEND
#include "postgres.h"
#else
#include "postgres_fe.h"
#endif

#include "rules.h"

static bool rules_from_leader(const RulesState *state, const RkmHeader *hdr);
static void rules_whole(const RulesState *state, int64 offset,
						const RkmHeader *hdr, RulesResult *result);
static void rules_error(RulesResult *result, const char *fmt,...) pg_attribute_printf(2, 3);

/*
 * A partition never applied: generation 0, nothing collected.
 */
void
replkafka_rules_init(RulesState *state, uint32 partition)
{
	memset(state, 0, sizeof(RulesState));
	state->partition = partition;
}

/*
 * Decide what to do with the record at offset whose header is hdr.
 */
void
replkafka_rules_judge(const RulesState *state, int64 offset, const RkmHeader *hdr,
					  RulesResult *result)
{
	memset(result, 0, sizeof(RulesResult));

	if (hdr->partition != state->partition)
	{
		rules_error(result, "the record at Kafka offset %lld says it belongs to partition %u",
					(long long) offset, hdr->partition);
		return;
	}

	/*
	 * Rule 4: a record that is not the leader's (a zombie's, a losing
	 * NEW_GEN) leaves the leader's transaction being collected alone.  A
	 * zombie's chunked transaction is judged once, at its last chunk.
	 */
	if (!rules_from_leader(state, hdr))
	{
		if (hdr->type == RKM_TXN && !hdr->last)
			result->verdict = RULES_SKIP_CHUNK;
		else
			rules_whole(state, offset, hdr, result);
		return;
	}

	if (hdr->type == RKM_TXN && !(hdr->chunk == 0 && hdr->last))
	{
		bool		same = state->collecting &&
		hdr->scn == state->coll_scn && hdr->xid == state->coll_xid &&
		strcmp(hdr->origin, state->coll_origin) == 0;
		bool		continues = same && hdr->chunk == state->coll_next;

		/*
		 * A chunk collected already, again: a copy (a mirror that copies at
		 * least once starts again from an earlier record), not the leader
		 * writing the transaction again, which starts at chunk 0.
		 */
		if (same && hdr->chunk > 0 && hdr->chunk < state->coll_next)
		{
			result->verdict = RULES_SKIP_CHUNK;
			return;
		}
		if (hdr->chunk == 0 || !continues)
		{
			/* an incomplete transaction is discarded */
			result->discard = state->collecting;
			if (hdr->chunk != 0)
			{
				/* the rest of a transaction we do not have */
				result->verdict = RULES_SKIP_CHUNK;
				return;
			}
			result->first_chunk = true;
		}
		if (!hdr->last)
		{
			result->verdict = RULES_COLLECT;
			return;
		}
		result->collected = true;
		rules_whole(state, offset, hdr, result);
		return;
	}

	result->discard = state->collecting;
	rules_whole(state, offset, hdr, result);
}

/*
 * Does a record come from the partition's leader, or start a new
 * generation?  Only those interrupt a chunked transaction being
 * collected: the leader writes a transaction again whole after a failure,
 * so an incomplete one followed by the leader's next record, or by a new
 * generation, will never be completed.  Anything else (a lost election, a
 * record of an older generation, another node's record of the current
 * one) is skipped by the rules without touching it.
 */
static bool
rules_from_leader(const RulesState *state, const RkmHeader *hdr)
{
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);

	if (hdr->type == RKM_NEW_GEN)
		return gen > state->generation;
	if (gen != state->generation)
		return gen > state->generation; /* older: a zombie; newer: an error */
	return strcmp(hdr->origin, state->gen_origin) == 0;
}

/*
 * The rules for a whole record (for a chunked transaction, its last chunk
 * stands for it).
 */
static void
rules_whole(const RulesState *state, int64 offset, const RkmHeader *hdr,
			RulesResult *result)
{
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);
	uint32		seq = RKM_SCN_SEQUENCE(hdr->scn);
	uint32		last_seq = RKM_SCN_SEQUENCE(state->last_scn);
	bool		leader = gen == state->generation &&
	strcmp(hdr->origin, state->gen_origin) == 0;

	switch ((RkmType) hdr->type)
	{
		case RKM_NEW_GEN:
			result->verdict = gen > state->generation ?
				RULES_NEW_GENERATION : RULES_LOST_ELECTION;
			return;

		case RKM_END_GEN:
		case RKM_HEARTBEAT:
			if (gen > state->generation)
				rules_error(result, "the %s record at Kafka offset %lld is of generation %u, which no NEW_GEN record started",
							replkafka_message_type_name(hdr->type), (long long) offset, gen);
			else if (!leader)
				result->verdict = RULES_ZOMBIE;
			else if (hdr->type == RKM_HEARTBEAT || state->gen_ended)
				result->verdict = RULES_NOTHING;
			else if (seq > last_seq)
				rules_error(result, "node \"%s\" ended generation %u after transaction %u at Kafka offset %lld, but this node applied up to transaction %u; the transactions in between are missing from the log",
							hdr->origin, gen, seq, (long long) offset, last_seq);
			else if (seq < last_seq)
				rules_error(result, "node \"%s\" ended generation %u after transaction %u at Kafka offset %lld, but this node applied transaction %u of the generation",
							hdr->origin, gen, seq, (long long) offset, last_seq);
			else
				result->verdict = RULES_END_GENERATION;
			return;

		case RKM_TXN:
			break;
	}

	if (gen < state->generation || (gen == state->generation &&
									(!leader || state->gen_ended)))
		result->verdict = RULES_ZOMBIE; /* rule 3 */
	else if (gen > state->generation)
		rules_error(result, "the transaction at Kafka offset %lld is of generation %u, which no NEW_GEN record started",
					(long long) offset, gen);
	else if (hdr->scn <= state->last_scn)
		result->verdict = RULES_REPLAY; /* rule 1 */
	else if (seq != last_seq + 1)
		rules_error(result, "sequence gap at Kafka offset %lld: expected transaction %u of generation %u, found %u",
					(long long) offset, last_seq + 1, gen, seq);	/* rule 2 */
	else
		result->verdict = RULES_APPLY;
}

/*
 * What the caller did with a record, as replkafka_rules_judge() said, took effect:
 * update what is known of the partition.  (A partition stopped by an
 * error needs no update.)
 */
void
replkafka_rules_accept(RulesState *state, const RkmHeader *hdr, const RulesResult *result)
{
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);

	if (result->discard || result->collected)
		state->collecting = false;

	switch (result->verdict)
	{
		case RULES_COLLECT:
			if (result->first_chunk)
			{
				state->collecting = true;
				state->coll_scn = hdr->scn;
				state->coll_xid = hdr->xid;
				strlcpy(state->coll_origin, hdr->origin, sizeof(state->coll_origin));
				state->coll_next = 0;
			}
			state->coll_next++;
			break;
		case RULES_APPLY:
			state->last_scn = hdr->scn;
			break;
		case RULES_NEW_GENERATION:
			state->generation = gen;
			strlcpy(state->gen_origin, hdr->origin, sizeof(state->gen_origin));
			state->gen_ended = false;
			state->last_scn = RKM_SCN(gen, 0);
			break;
		case RULES_END_GENERATION:
			state->gen_ended = true;
			break;
		case RULES_SKIP_CHUNK:
		case RULES_NOTHING:
		case RULES_REPLAY:
		case RULES_ZOMBIE:
		case RULES_LOST_ELECTION:
		case RULES_ERROR:
			break;
	}
}

static void
rules_error(RulesResult *result, const char *fmt,...)
{
	va_list		args;

	result->verdict = RULES_ERROR;
	va_start(args, fmt);
	vsnprintf(result->error, sizeof(result->error), fmt, args);
	va_end(args);
}
