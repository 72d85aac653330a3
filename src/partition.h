/*-------------------------------------------------------------------------
 *
 * partition.h
 *		Which partition a row belongs to: the partition key of replicated
 *		tables and its hash.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/partition.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_PARTITION_H
#define REPLKAFKA_PARTITION_H

#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/rel.h"

/*
 * Seed of the extended hash functions.  Part of the cluster's contract:
 * every node must compute the same partition for a key.
 */
#define REPLKAFKA_HASH_SEED		UINT64CONST(0x5265706c4b61666b)

/* The partition key of a replicated table, cached per backend. */
typedef struct ReplkafkaTableKey
{
	Oid			relid;			/* hash key */
	bool		valid;			/* false after an invalidation */
	bool		registered;		/* false: not a replicated table */
	int			partitions;		/* P of the cluster */
	int			nkeys;
	AttrNumber	attnums[INDEX_MAX_KEYS];
	Oid			collations[INDEX_MAX_KEYS];
	FmgrInfo   *hashfns[INDEX_MAX_KEYS];	/* in the type cache */
} ReplkafkaTableKey;

extern ReplkafkaTableKey *replkafka_table_key(Relation rel);
extern int	replkafka_partition_of_values(const ReplkafkaTableKey *key,
										  const Datum *values,
										  const bool *isnull);
extern int	replkafka_partition_of_tuple(const ReplkafkaTableKey *key,
										 TupleDesc desc, HeapTuple tuple);
extern int	replkafka_partition_of_slot(const ReplkafkaTableKey *key,
										TupleTableSlot *slot);
extern bool replkafka_table_registered(Oid relid);
extern FmgrInfo *replkafka_key_hash_function(Oid typid);
extern const char *replkafka_key_type_problem(Oid typid, Oid collid);

#endif							/* REPLKAFKA_PARTITION_H */
