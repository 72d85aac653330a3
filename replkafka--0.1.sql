/* replkafka--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION replkafka" to load this file. \quit

--
-- Catalog tables.  They describe this node's view of the cluster; nothing
-- in them is replicated.  All are revoked from PUBLIC at the end.
--

-- The cluster this node belongs to: one row, written by create_cluster().
CREATE TABLE replkafka.cluster (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	topic text NOT NULL,
	partitions integer NOT NULL CHECK (partitions > 0),
	replication_factor integer NOT NULL
		CHECK (replication_factor BETWEEN 1 AND 32767),
	node_name text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE replkafka.cluster IS
	'The replkafka cluster this node belongs to: its topic and partition count';

-- Replicated tables with their partition key.  Read by the output plugin
-- during decoding, hence a user catalog table.
CREATE TABLE replkafka.tables (
	relid regclass PRIMARY KEY,
	key_attnums int2[] NOT NULL CHECK (pg_catalog.cardinality(key_attnums) > 0),
	added_at timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (user_catalog_table = true);
COMMENT ON TABLE replkafka.tables IS
	'Replicated tables and the columns of their partition key';

-- This node's role and generation for every partition.
CREATE TABLE replkafka.partition_roles (
	partition integer PRIMARY KEY CHECK (partition >= 0),
	role text NOT NULL DEFAULT 'offline'
		CHECK (role IN ('offline', 'replica', 'primary', 'error')),
	generation bigint NOT NULL DEFAULT 0
		CHECK (generation BETWEEN 0 AND 4294967295),
	last_error text,
	changed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE replkafka.partition_roles IS
	'This node''s role and generation for each partition';

-- Every generation of a partition this node has seen start: who became
-- primary, and the Kafka offset of the NEW_GEN record that started it.
CREATE TABLE replkafka.generations (
	partition integer NOT NULL REFERENCES replkafka.partition_roles,
	generation bigint NOT NULL CHECK (generation BETWEEN 1 AND 4294967295),
	node_name text NOT NULL,
	kafka_offset bigint NOT NULL CHECK (kafka_offset >= 0),
	started_at timestamptz NOT NULL,
	PRIMARY KEY (partition, generation)
);
COMMENT ON TABLE replkafka.generations IS
	'Generations of each partition: the primary that started each one';

-- Primary side: the last transaction of each partition known to be in
-- Kafka, written at transaction boundaries only.
CREATE TABLE replkafka.producer_checkpoints (
	partition integer PRIMARY KEY REFERENCES replkafka.partition_roles,
	scn bigint NOT NULL,
	commit_lsn pg_lsn NOT NULL,
	kafka_offset bigint NOT NULL
);
COMMENT ON TABLE replkafka.producer_checkpoints IS
	'Last shipped transaction of each partition this node is primary of';

-- Replica side: the last transaction applied from each partition, updated
-- in the same local transaction as the rows it applied.
CREATE TABLE replkafka.consumer_checkpoints (
	partition integer PRIMARY KEY REFERENCES replkafka.partition_roles,
	generation bigint NOT NULL,
	scn bigint NOT NULL,
	kafka_offset bigint NOT NULL
);
COMMENT ON TABLE replkafka.consumer_checkpoints IS
	'Last applied transaction of each partition this node is replica of';

--
-- Monitoring.
--
CREATE VIEW replkafka.partitions AS
	SELECT r.partition,
		   r.role,
		   r.generation,
		   CASE r.role WHEN 'primary' THEN pc.scn ELSE cc.scn END AS scn,
		   CASE r.role WHEN 'primary' THEN pc.kafka_offset
					   ELSE cc.kafka_offset END AS kafka_offset,
		   NULL::bigint AS lag_messages,
		   NULL::double precision AS lag_seconds,
		   0::bigint AS zombies_skipped,
		   r.last_error
	  FROM replkafka.partition_roles r
	  LEFT JOIN replkafka.producer_checkpoints pc
		ON pc.partition OPERATOR(pg_catalog.=) r.partition
	  LEFT JOIN replkafka.consumer_checkpoints cc
		ON cc.partition OPERATOR(pg_catalog.=) r.partition;
COMMENT ON VIEW replkafka.partitions IS
	'Every partition of the cluster with this node''s role, position and lag';

--
-- Administration.
--
CREATE FUNCTION replkafka.create_cluster(partitions integer,
										 replication_factor integer DEFAULT 3)
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_create_cluster'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.create_cluster(integer, integer) IS
	'Sets up this node''s membership: records the partition count and creates or checks the Kafka topic';

--
-- Nothing here is for PUBLIC.
--
REVOKE ALL ON ALL TABLES IN SCHEMA replkafka FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA replkafka FROM PUBLIC;
REVOKE ALL ON SCHEMA replkafka FROM PUBLIC;
