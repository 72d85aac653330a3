/*-------------------------------------------------------------------------
 *
 * roles.h
 *		This node's roles: loaded from the catalog into shared memory,
 *		and changed there when the transactions that change the catalog
 *		commit.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/roles.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_ROLES_H
#define REPLKAFKA_ROLES_H

#include "catalog.h"

extern void replkafka_roles_ensure_loaded(void);
extern void replkafka_roles_reload_at_commit(void);
extern void replkafka_roles_set_at_commit(int partition, ReplkafkaRole role,
										  uint32 generation);
extern void replkafka_roles_lock(int partition, ReplkafkaRole *role,
								 uint32 *generation);
extern bool replkafka_roles_try_lock(int partition, ReplkafkaRole *role,
									 uint32 *generation);

#endif							/* REPLKAFKA_ROLES_H */
