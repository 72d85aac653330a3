/*-------------------------------------------------------------------------
 *
 * partition.c
 *		Which partition a row belongs to: the partition key of replicated
 *		tables and its hash.
 *
 * partition = hash(partition key) mod P, where the hash of a key of several
 * columns combines the columns' hashes in key order, and each column is
 * hashed with the extended hash support function of its type's default
 * hash operator class, the column's collation and a fixed seed.  These
 * functions are the ones PostgreSQL's hash partitioning relies on, so they
 * are stable across servers, platforms and major versions: every node
 * computes the same partition.
 *
 * The write fence, the output plugin and replkafka.partition_of() all go
 * through replkafka_table_key() and replkafka_partition_of_values().  The
 * per-backend cache of keys is reset by relcache invalidations, which
 * add_table() and remove_table() send for the table they change; in the
 * output plugin, the same invalidations are replayed at the right point of
 * the WAL, so the decoder sees the registration as of each transaction.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/partition.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "common/hashfn.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "catalog.h"
#include "partition.h"
#include "settings.h"

static void partition_invalidate(Datum arg, Oid relid);
static void partition_build_key(ReplkafkaTableKey *entry, Relation rel);

/* Cache of ReplkafkaTableKey by relation OID. */
static HTAB *key_cache = NULL;

/*
 * Relcache invalidation callback: forget the key of relid, or of every
 * relation if relid is InvalidOid.
 */
static void
partition_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	ReplkafkaTableKey *entry;

	if (key_cache == NULL)
		return;
	if (OidIsValid(relid))
	{
		entry = hash_search(key_cache, &relid, HASH_FIND, NULL);
		if (entry)
			entry->valid = false;
		return;
	}
	hash_seq_init(&status, key_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}

/*
 * The extended hash function of a partition key column's type, or NULL if
 * the type has none.
 */
FmgrInfo *
replkafka_key_hash_function(Oid typid)
{
	TypeCacheEntry *tce;

	tce = lookup_type_cache(typid, TYPECACHE_HASH_EXTENDED_PROC_FINFO);
	if (!OidIsValid(tce->hash_extended_proc_finfo.fn_oid))
		return NULL;
	return &tce->hash_extended_proc_finfo;
}

/*
 * Why a column of type typid with collation collid cannot be a partition
 * key, or NULL if it can.  Every node must compute the same partition for
 * a key, so its type's hash must depend on the value alone: not on OIDs
 * (enums hash their OID, oid and reg* types are OIDs, and both differ per
 * node), nor on a locale (a nondeterministic collation hashes the ICU sort
 * key, citext the lowercased text, and both change with the library's
 * version).  Only built-in types known to hash their value are allowed,
 * domains over them, and arrays of them; collatable ones need a
 * deterministic collation.
 */
const char *
replkafka_key_type_problem(Oid typid, Oid collid)
{
	Oid			base = getBaseType(typid);
	Oid			elem = get_element_type(base);

	if (OidIsValid(elem))
		base = getBaseType(elem);
	switch (base)
	{
		case BOOLOID:
		case CHAROID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case BYTEAOID:
		case UUIDOID:
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case INETOID:
		case CIDROID:
		case MACADDROID:
		case MACADDR8OID:
		case JSONBOID:
			return NULL;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
				return "Its collation is nondeterministic: the hash of a value depends on the collation library's version.";
			return NULL;
		case OIDOID:
		case REGPROCOID:
		case REGPROCEDUREOID:
		case REGOPEROID:
		case REGOPERATOROID:
		case REGCLASSOID:
		case REGCOLLATIONOID:
		case REGTYPEOID:
		case REGROLEOID:
		case REGNAMESPACEOID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
			return "Its values are object identifiers, which differ from node to node.";
		default:
			if (type_is_enum(base))
				return "An enum value hashes as its OID, which differs from node to node.";
			return "Only built-in types whose hash depends on the value alone can be partition keys: integers, numeric, floating point, text types with a deterministic collation, bytea, uuid, date and time types, network addresses, jsonb, boolean, domains over them and arrays of them.";
	}
}

/*
 * Fill in a cache entry for rel from the catalog.
 */
static void
partition_build_key(ReplkafkaTableKey *entry, Relation rel)
{
	AttrNumber *attnums;
	int			nkeys;
	TupleDesc	desc = RelationGetDescr(rel);

	entry->registered = false;
	entry->nkeys = 0;
	nkeys = replkafka_catalog_table_key(RelationGetRelid(rel), &attnums);
	if (nkeys == 0)
		return;
	if (nkeys > INDEX_MAX_KEYS)
		elog(ERROR, "partition key of relation \"%s\" has too many columns",
			 RelationGetRelationName(rel));

	entry->partitions = replkafka_cluster_partitions();
	if (entry->partitions <= 0)
		return;

	for (int i = 0; i < nkeys; i++)
	{
		Form_pg_attribute att;

		if (attnums[i] < 1 || attnums[i] > desc->natts)
			elog(ERROR, "invalid partition key column %d of relation \"%s\"",
				 attnums[i], RelationGetRelationName(rel));
		att = TupleDescAttr(desc, attnums[i] - 1);
		if (att->attisdropped)
			elog(ERROR, "partition key column %d of relation \"%s\" was dropped",
				 attnums[i], RelationGetRelationName(rel));
		entry->attnums[i] = attnums[i];
		entry->collations[i] = att->attcollation;
		entry->hashfns[i] = replkafka_key_hash_function(att->atttypid);
		if (entry->hashfns[i] == NULL)
			elog(ERROR, "type %s of partition key column \"%s\" has no extended hash function",
				 format_type_be(att->atttypid), NameStr(att->attname));
	}
	entry->nkeys = nkeys;
	entry->registered = true;
}

/*
 * The partition key of rel, or NULL if rel is not a replicated table (or
 * the cluster does not exist).  The result stays valid until the next
 * invalidation is processed.
 */
ReplkafkaTableKey *
replkafka_table_key(Relation rel)
{
	ReplkafkaTableKey *entry;
	Oid			relid = RelationGetRelid(rel);
	bool		found;

	if (key_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ReplkafkaTableKey);
		ctl.hcxt = CacheMemoryContext;
		key_cache = hash_create("replkafka partition keys", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(partition_invalidate, (Datum) 0);
	}

	entry = hash_search(key_cache, &relid, HASH_ENTER, &found);
	if (!found)
		entry->valid = false;
	if (!entry->valid)
	{
		/* an error while building leaves the entry invalid */
		partition_build_key(entry, rel);
		entry->valid = true;
	}
	return entry->registered ? entry : NULL;
}

/*
 * Partition of the row whose key column values are values/isnull, in key
 * order.  Key columns are primary key columns, so never null; a null is
 * hashed as zero all the same.
 */
int
replkafka_partition_of_values(const ReplkafkaTableKey *key,
							  const Datum *values, const bool *isnull)
{
	uint64		hash = 0;

	for (int i = 0; i < key->nkeys; i++)
	{
		uint64		h = 0;

		if (!isnull[i])
			h = DatumGetUInt64(FunctionCall2Coll(key->hashfns[i],
												 key->collations[i],
												 values[i],
												 UInt64GetDatum(REPLKAFKA_HASH_SEED)));
		hash = hash_combine64(hash, h);
	}
	return (int) (hash % (uint64) key->partitions);
}

/*
 * Is relid a replicated table?  From the key cache when it holds a current
 * answer (invalidations keep it so), else from the catalog.  Takes no lock
 * on relid.
 */
bool
replkafka_table_registered(Oid relid)
{
	ReplkafkaTableKey *entry = NULL;
	AttrNumber *attnums;

	if (key_cache != NULL)
		entry = hash_search(key_cache, &relid, HASH_FIND, NULL);
	if (entry != NULL && entry->valid)
		return entry->registered;
	return replkafka_catalog_table_key(relid, &attnums) > 0;
}

/*
 * Partition of the row in slot, a tuple of the table whose values are all
 * in tts_values (a virtual slot).
 */
int
replkafka_partition_of_slot(const ReplkafkaTableKey *key, TupleTableSlot *slot)
{
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];

	for (int i = 0; i < key->nkeys; i++)
	{
		values[i] = slot->tts_values[key->attnums[i] - 1];
		isnull[i] = slot->tts_isnull[key->attnums[i] - 1];
	}
	return replkafka_partition_of_values(key, values, isnull);
}

/*
 * Partition of a heap tuple of the table.
 */
int
replkafka_partition_of_tuple(const ReplkafkaTableKey *key, TupleDesc desc,
							 HeapTuple tuple)
{
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];

	for (int i = 0; i < key->nkeys; i++)
		values[i] = heap_getattr(tuple, key->attnums[i], desc, &isnull[i]);
	return replkafka_partition_of_values(key, values, isnull);
}
