/*-------------------------------------------------------------------------
 *
 * table.h
 *		Replicated tables: what makes a table replicable, and keeping it
 *		so under ALTER TABLE.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/table.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_TABLE_H
#define REPLKAFKA_TABLE_H

#include "nodes/bitmapset.h"
#include "nodes/nodes.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

extern void replkafka_check_replicable_table(Relation rel);
extern Bitmapset *replkafka_primary_key_attrs(Relation rel);
extern int	replkafka_parse_partition_key(Relation rel, const char *partition_key,
										  AttrNumber *attnums);

/* The replicated tables as they were before a utility statement. */
typedef struct TableGuard TableGuard;

extern TableGuard *replkafka_table_before_utility(Node *stmt);
extern void replkafka_table_after_utility(TableGuard *guard);
extern void replkafka_check_fence(Oid relid);

#endif							/* REPLKAFKA_TABLE_H */
