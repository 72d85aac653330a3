/*-------------------------------------------------------------------------
 *
 * fuzz_rules.c
 *		libFuzzer target for the apply rules of src/rules.c, fed sequences
 *		of records.
 *
 * Each input is a sequence of steps, three bytes each: a record of a
 * partition's log (type, generation, sequence, origin among three nodes,
 * chunk index, last flag, transaction id, now and then the wrong
 * partition), or a restart of the worker from what its checkpoint keeps.
 * The target judges every record as the apply worker does, checks the
 * verdict against the rules, accepts it, and checks what a replica must
 * never do whatever the log holds:
 *
 * - apply a transaction twice, or out of order: the transactions applied
 *	 in a generation are 1, 2, 3, ... with no gap;
 * - apply a transaction of another node than the one whose NEW_GEN
 *	 started the generation, of an older generation, or after its END_GEN;
 * - apply a chunked transaction other than whole: chunks 0..n of one
 *	 transaction, in order, none discarded on the way;
 * - go back to an older generation;
 * - stop without saying why.
 *
 * Built with -DFRONTEND against libpgcommon and libpgport by test/fuzz/run.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		test/fuzz/fuzz_rules.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "rules.h"

#define PARTITION		3
#define MAX_STEPS		512

static const char *const nodes[] = {"node_a", "node_b", "node_c"};

/* What the target saw applied, to check the guarantees. */
typedef struct Model
{
	uint64		applied[MAX_STEPS]; /* SCNs applied, in order */
	int			napplied;
	uint32		ended_generation;	/* highest generation ended, 0 if none */
	/* the collection the verdicts built, chunk by chunk */
	int			chunks;
	uint64		chunk_scn;
	uint32		chunk_xid;
	char		chunk_origin[RKM_MAX_ORIGIN + 1];
} Model;

extern int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool condition, const char *what);
static void check_verdict(const RulesState *state, const RkmHeader *hdr,
						  const RulesResult *res, const Model *model);
static void follow_model(Model *model, const RulesState *state,
						 const RkmHeader *hdr, const RulesResult *res);

static void
check(bool condition, const char *what)
{
	if (!condition)
	{
		fprintf(stderr, "fuzz_rules: invariant violated: %s\n", what);
		abort();
	}
}

/*
 * The verdict agrees with the rules, given the state before the record.
 */
static void
check_verdict(const RulesState *state, const RkmHeader *hdr,
			  const RulesResult *res, const Model *model)
{
	uint32		gen = RKM_SCN_GENERATION(hdr->scn);
	uint32		seq = RKM_SCN_SEQUENCE(hdr->scn);
	bool		leader = gen == state->generation &&
	strcmp(hdr->origin, state->gen_origin) == 0;

	check(!res->discard || state->collecting, "discards only what it collects");
	check((res->verdict == RULES_ERROR) == (res->error[0] != '\0'),
		  "an error, and only an error, says why");
	if (hdr->partition != PARTITION)
		check(res->verdict == RULES_ERROR, "a record of another partition stops it");

	switch (res->verdict)
	{
		case RULES_APPLY:
			check(hdr->type == RKM_TXN && hdr->last, "applies whole transactions");
			check(leader && !state->gen_ended, "applies the leader's transactions only");
			check(seq == RKM_SCN_SEQUENCE(state->last_scn) + 1,
				  "applies the next transaction only");
			check(gen > model->ended_generation, "applies nothing after END_GEN");
			if (res->collected)
			{
				check(hdr->chunk > 0 && model->chunks == (int) hdr->chunk &&
					  model->chunk_scn == hdr->scn && model->chunk_xid == hdr->xid &&
					  strcmp(model->chunk_origin, hdr->origin) == 0,
					  "applies a chunked transaction with all its chunks, in order");
			}
			else
				check(hdr->chunk == 0, "applies a lone record only if it is chunk 0");
			for (int i = 0; i < model->napplied; i++)
				check(model->applied[i] != hdr->scn, "applies a transaction once");
			break;
		case RULES_COLLECT:
			check(hdr->type == RKM_TXN && !hdr->last, "collects chunks only");
			check(gen > state->generation || leader, "collects the leader's chunks only");
			check(!res->first_chunk || hdr->chunk == 0, "a collection starts at chunk 0");
			check(res->first_chunk ||
				  (state->collecting && hdr->chunk == state->coll_next),
				  "a collection goes on with the next chunk");
			break;
		case RULES_NEW_GENERATION:
			check(hdr->type == RKM_NEW_GEN && gen > state->generation,
				  "a generation starts at a NEW_GEN of a higher generation");
			break;
		case RULES_LOST_ELECTION:
			check(hdr->type == RKM_NEW_GEN && gen <= state->generation,
				  "a NEW_GEN loses only to a generation as high");
			break;
		case RULES_END_GENERATION:
			check(hdr->type == RKM_END_GEN && leader && !state->gen_ended &&
				  seq == RKM_SCN_SEQUENCE(state->last_scn),
				  "the leader ends its generation after the last transaction applied");
			break;
		case RULES_ZOMBIE:
			check(gen < state->generation ||
				  (gen == state->generation &&
				   (!leader || (hdr->type == RKM_TXN && state->gen_ended))),
				  "a zombie is of an older generation, another node, or after END_GEN");
			break;
		case RULES_REPLAY:
			check(hdr->type == RKM_TXN && leader && hdr->scn <= state->last_scn,
				  "a replay was applied before");
			break;
		case RULES_SKIP_CHUNK:
			check(hdr->type == RKM_TXN && !(hdr->chunk == 0 && hdr->last),
				  "skips chunks only");
			break;
		case RULES_NOTHING:
			check((hdr->type == RKM_HEARTBEAT || hdr->type == RKM_END_GEN) && leader,
				  "only the leader's HEARTBEAT or repeated END_GEN change nothing");
			break;
		case RULES_ERROR:
			break;
	}
}

/*
 * Follow the verdicts: what was applied, and the collection being built.
 */
static void
follow_model(Model *model, const RulesState *state, const RkmHeader *hdr,
			 const RulesResult *res)
{
	if (res->discard || res->collected)
		model->chunks = 0;
	switch (res->verdict)
	{
		case RULES_COLLECT:
			if (res->first_chunk)
			{
				model->chunks = 0;
				model->chunk_scn = hdr->scn;
				model->chunk_xid = hdr->xid;
				strlcpy(model->chunk_origin, hdr->origin, sizeof(model->chunk_origin));
			}
			model->chunks++;
			break;
		case RULES_APPLY:
			if (model->napplied < MAX_STEPS)
				model->applied[model->napplied++] = hdr->scn;
			break;
		case RULES_END_GENERATION:
			model->ended_generation = Max(model->ended_generation,
										  RKM_SCN_GENERATION(hdr->scn));
			break;
		default:
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RulesState	state;
	Model		model;
	int64		offset = 0;

	replkafka_rules_init(&state, PARTITION);
	memset(&model, 0, sizeof(model));

	for (size_t i = 0; i + 3 <= size && offset < MAX_STEPS; i += 3, offset++)
	{
		uint8		a = data[i],
					b = data[i + 1],
					c = data[i + 2];
		RkmHeader	hdr;
		RulesResult res;
		RulesState	before;
		uint32		gen;

		if (a == 0xff)
		{
			/* the worker restarts: the checkpoint keeps no collection */
			RulesState	ckpt = state;

			replkafka_rules_init(&state, PARTITION);
			state.generation = ckpt.generation;
			strlcpy(state.gen_origin, ckpt.gen_origin, sizeof(state.gen_origin));
			state.gen_ended = ckpt.gen_ended;
			state.last_scn = ckpt.last_scn;
			model.chunks = 0;
			continue;
		}

		memset(&hdr, 0, sizeof(hdr));
		hdr.version = RKM_VERSION;
		hdr.type = RKM_TYPE_MIN + (a & 3);
		gen = (a >> 2) & 3;
		hdr.scn = RKM_SCN(gen, b & 7);
		strlcpy(hdr.origin, nodes[(b >> 3) % 3], sizeof(hdr.origin));
		hdr.partition = (b >> 5) == 7 && (c & 1) ? PARTITION + 1 : PARTITION;
		if (hdr.type == RKM_TXN)
		{
			hdr.chunk = (c >> 1) & 3;
			hdr.last = (c >> 3) & 1;
			hdr.xid = (c >> 4) & 1;
		}
		else
		{
			hdr.last = true;
			if (hdr.type == RKM_NEW_GEN)
				hdr.scn = RKM_SCN(gen, 0);
		}

		before = state;
		replkafka_rules_judge(&state, offset, &hdr, &res);
		check(memcmp(&before, &state, sizeof(state)) == 0, "judging changes nothing");
		check_verdict(&state, &hdr, &res, &model);
		if (res.verdict == RULES_ERROR)
			break;				/* the partition stops */
		follow_model(&model, &state, &hdr, &res);
		replkafka_rules_accept(&state, &hdr, &res);

		check(state.generation >= before.generation, "never goes back a generation");
		check(state.generation != before.generation ||
			  state.last_scn >= before.last_scn, "never goes back a transaction");
		check(state.generation == 0 ||
			  RKM_SCN_GENERATION(state.last_scn) == state.generation,
			  "the last transaction is of the current generation");
		check(!state.collecting || state.coll_next == (uint32) model.chunks,
			  "the rules collect what the verdicts said");
	}
	return 0;
}
