/*-------------------------------------------------------------------------
 *
 * partition_rows.h
 *		This node's rows of a partition: whether it has any, and dropping
 *		them without shipping the deletes.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/partition_rows.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_PARTITION_ROWS_H
#define REPLKAFKA_PARTITION_ROWS_H

#include "nodes/bitmapset.h"

extern char *replkafka_partition_rows_table(int partition);
extern int64 replkafka_partition_drop_rows(const Bitmapset *partitions);
extern void replkafka_do_not_replicate(bool on);
extern void replkafka_partition_rows_check_references(void);

#endif							/* REPLKAFKA_PARTITION_ROWS_H */
