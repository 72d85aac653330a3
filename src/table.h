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
#include "nodes/execnodes.h"
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

/* A process's identity, saved while it acts as a table's owner. */
typedef struct ReplkafkaOwnerContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} ReplkafkaOwnerContext;

extern void replkafka_table_become_owner(Relation rel,
										 ReplkafkaOwnerContext *ctx);
extern void replkafka_table_restore_user(const ReplkafkaOwnerContext *ctx);

/*
 * An executor state for writing rows of one table with the executor's
 * simple-relation routines (ExecSimpleRelationInsert() and its siblings),
 * as a plain INSERT, UPDATE or DELETE of the table would: its indexes,
 * constraints and row triggers.
 */
typedef struct ReplkafkaTableWriter
{
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epq;
} ReplkafkaTableWriter;

extern void replkafka_table_writer_open(ReplkafkaTableWriter *writer, Relation rel);
extern void replkafka_table_writer_close(ReplkafkaTableWriter *writer);

#endif							/* REPLKAFKA_TABLE_H */
