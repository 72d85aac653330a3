/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		Access to replkafka's catalog tables.
 *
 * Every read and write of the replkafka.* tables goes through this file, so
 * the tables' layout is known in one place.  Callers must be inside a
 * transaction.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "catalog.h"

static void catalog_spi_execute(const char *sql, int nargs, Oid *argtypes,
								Datum *values, bool read_only, int expected);

/*
 * Run one statement through SPI (the caller has connected) and fail unless
 * it returns the expected code.
 */
static void
catalog_spi_execute(const char *sql, int nargs, Oid *argtypes, Datum *values,
					bool read_only, int expected)
{
	int			ret;

	ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL,
								read_only, 0);
	if (ret != expected)
		elog(ERROR, "SPI_execute_with_args failed on \"%s\": %s",
			 sql, SPI_result_code_string(ret));
}

/*
 * Serialize create_cluster() calls on this node until the end of the
 * transaction.
 */
void
replkafka_catalog_lock_cluster(void)
{
	SPI_connect();
	catalog_spi_execute("LOCK TABLE replkafka.cluster IN SHARE ROW EXCLUSIVE MODE",
						0, NULL, NULL, false, SPI_OK_UTILITY);
	SPI_finish();
}

/*
 * Read replkafka.cluster.  Returns false if the cluster was not created on
 * this node yet.  The strings are allocated in the caller's context.
 */
bool
replkafka_catalog_get_cluster(ReplkafkaCluster *cluster)
{
	MemoryContext callercxt = CurrentMemoryContext;
	bool		found = false;

	SPI_connect();
	catalog_spi_execute("SELECT topic, partitions, replication_factor, node_name"
						" FROM replkafka.cluster",
						0, NULL, NULL, true, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spicxt = MemoryContextSwitchTo(callercxt);
		bool		isnull;

		cluster->topic = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		cluster->partitions = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		cluster->replication_factor = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		cluster->node_name = TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull));
		MemoryContextSwitchTo(spicxt);
		found = true;
	}
	SPI_finish();
	return found;
}

/*
 * Record the cluster, and every partition as offline in generation 0.
 */
void
replkafka_catalog_insert_cluster(const ReplkafkaCluster *cluster)
{
	Oid			types[4] = {TEXTOID, INT4OID, INT4OID, TEXTOID};
	Datum		values[4];

	values[0] = CStringGetTextDatum(cluster->topic);
	values[1] = Int32GetDatum(cluster->partitions);
	values[2] = Int32GetDatum(cluster->replication_factor);
	values[3] = CStringGetTextDatum(cluster->node_name);

	SPI_connect();
	catalog_spi_execute("INSERT INTO replkafka.cluster"
						" (topic, partitions, replication_factor, node_name)"
						" VALUES ($1, $2, $3, $4)",
						4, types, values, false, SPI_OK_INSERT);
	catalog_spi_execute("INSERT INTO replkafka.partition_roles (partition)"
						" SELECT pg_catalog.generate_series(0, $1 - 1)",
						1, &types[1], &values[1], false, SPI_OK_INSERT);
	SPI_finish();
}
