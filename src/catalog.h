/*-------------------------------------------------------------------------
 *
 * catalog.h
 *		Access to replkafka's catalog tables.
 *
 * Copyright (c) 2026, replkafka authors
 *
 * IDENTIFICATION
 *		src/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLKAFKA_CATALOG_H
#define REPLKAFKA_CATALOG_H

#include "access/attnum.h"
#include "access/xlogdefs.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

/* The row of replkafka.cluster. */
/* This node's role in a partition (catalog: replkafka.partition_roles). */
typedef enum ReplkafkaRole
{
	REPLKAFKA_ROLE_OFFLINE = 0,
	REPLKAFKA_ROLE_REPLICA,
	REPLKAFKA_ROLE_PRIMARY,
	REPLKAFKA_ROLE_ERROR,
	REPLKAFKA_ROLE_BOOTSTRAPPING,	/* copying the partition from a peer */
} ReplkafkaRole;

typedef struct ReplkafkaCluster
{
	char	   *topic;
	int			partitions;
	int			replication_factor;
	char	   *node_name;
} ReplkafkaCluster;

/* A row of replkafka.partition_roles. */
typedef struct ReplkafkaRoleRow
{
	int			partition;
	ReplkafkaRole role;
	uint32		generation;
	char	   *last_error;		/* NULL if none */
	char	   *error_sqlstate; /* of the error, NULL if none */
} ReplkafkaRoleRow;

/* A row of replkafka.tables: a replicated table and its partition key. */
typedef struct ReplkafkaTableRow
{
	Oid			relid;
	int			nkeys;
	AttrNumber *attnums;
} ReplkafkaTableRow;

/* A producer checkpoint: the last transaction of a partition in Kafka. */
typedef struct ReplkafkaProducerCheckpoint
{
	int			partition;
	uint64		scn;
	XLogRecPtr	commit_lsn;
	int64		kafka_offset;
} ReplkafkaProducerCheckpoint;

/* A row of replkafka.bootstraps: a bootstrap asked for. */
typedef struct ReplkafkaBootstrapRequest
{
	int			partition;
	char	   *source;			/* its connection string, NULL: any peer */
	bool		rebuild;		/* drop the node's rows of it first */
} ReplkafkaBootstrapRequest;

/* A consumer checkpoint: the last transaction of a partition applied. */
typedef struct ReplkafkaConsumerCheckpoint
{
	int			partition;
	uint32		generation;
	uint64		scn;
	int64		kafka_offset;
	bool		ended;			/* the generation's END_GEN was read */
} ReplkafkaConsumerCheckpoint;

extern const char *replkafka_role_name(ReplkafkaRole role);
extern bool replkafka_role_from_name(const char *name, ReplkafkaRole *role);
extern Oid	replkafka_catalog_relid(const char *relname);
extern int	replkafka_cluster_partitions(void);
extern void replkafka_catalog_lock_cluster(void);
extern bool replkafka_catalog_get_cluster(ReplkafkaCluster *cluster);
extern void replkafka_catalog_insert_cluster(const ReplkafkaCluster *cluster);
extern int	replkafka_catalog_get_roles(List **roles);
extern void replkafka_catalog_set_role(int partition, ReplkafkaRole role,
									   uint32 generation,
									   const char *last_error,
									   const char *error_sqlstate);
extern bool replkafka_catalog_set_primary_error(int partition,
												uint32 generation,
												const char *last_error);
extern void replkafka_catalog_add_generation(int partition, uint32 generation,
											 const char *node_name,
											 int64 kafka_offset,
											 TimestampTz started_at);
extern void replkafka_catalog_add_table(Oid relid, int nkeys,
										const AttrNumber *attnums);
extern bool replkafka_catalog_remove_table(Oid relid);
extern int	replkafka_catalog_table_key(Oid relid, AttrNumber **attnums);
extern List *replkafka_catalog_tables(void);
extern bool replkafka_catalog_get_producer_checkpoint(int partition,
													  ReplkafkaProducerCheckpoint *ckpt);
extern void replkafka_catalog_save_producer_checkpoint(const ReplkafkaProducerCheckpoint *ckpt);
extern void replkafka_catalog_lock_partition(int partition, ReplkafkaRole *role,
											 uint32 *generation);
extern bool replkafka_catalog_try_lock_partition(int partition,
												 ReplkafkaRole *role,
												 uint32 *generation);
extern bool replkafka_catalog_get_consumer_checkpoint(int partition,
													  ReplkafkaConsumerCheckpoint *ckpt);
extern void replkafka_catalog_save_consumer_checkpoint(const ReplkafkaConsumerCheckpoint *ckpt);
extern void replkafka_catalog_delete_consumer_checkpoint(int partition);
extern void replkafka_catalog_delete_producer_checkpoint(int partition);
extern void replkafka_catalog_request_bootstrap(int partition,
												const char *source,
												bool rebuild);
extern List *replkafka_catalog_get_bootstraps(void);
extern void replkafka_catalog_end_bootstrap(int partition);
extern List *replkafka_catalog_prepared_gids(void);
extern bool replkafka_catalog_primary_since_applied(int partition,
													uint32 *generation);
extern char *replkafka_catalog_generation_origin(int partition,
												 uint32 generation);

#endif							/* REPLKAFKA_CATALOG_H */
