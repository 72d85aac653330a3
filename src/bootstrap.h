/*-------------------------------------------------------------------------
 *
 * bootstrap.h
 *		The bootstrap workers: copy a partition from a peer, from a
 *		snapshot whose place in the log is known exactly, and make this
 *		node its replica from there.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/bootstrap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_BOOTSTRAP_H
#define REPLKAFKA_BOOTSTRAP_H

#include "fmgr.h"

extern void replkafka_bootstrap_register(void);
extern void replkafka_bootstrap_check_source(const char *conninfo,
											 int partition);

#endif							/* REPLKAFKA_BOOTSTRAP_H */
