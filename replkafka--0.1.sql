/* replkafka--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION replkafka" to load this file. \quit

-- The schema holds the catalog and SECURITY DEFINER functions: one that
-- another role created beforehand (and so controls), or may create
-- objects in, is not used.
DO $$
DECLARE
	owner pg_catalog.name;
	creator pg_catalog.name;
BEGIN
	SELECT r.rolname INTO owner
	  FROM pg_catalog.pg_namespace n
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	 WHERE n.nspname OPERATOR(pg_catalog.=) 'replkafka';
	SELECT coalesce(r.rolname, 'PUBLIC') INTO creator
	  FROM pg_catalog.pg_namespace n,
		   pg_catalog.aclexplode(n.nspacl) a
	  LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
	 WHERE n.nspname OPERATOR(pg_catalog.=) 'replkafka'
	   AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
	   AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
	 LIMIT 1;
	IF creator IS NOT NULL THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = pg_catalog.format('role "%s" may create objects in schema "replkafka"',
										creator),
			DETAIL = 'The extension keeps its catalog and functions in that schema, so no other role may create objects in it.',
			HINT = 'Revoke CREATE on the schema, or drop it.';
	END IF;
	IF owner OPERATOR(pg_catalog.<>) CURRENT_USER THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = pg_catalog.format('schema "replkafka" is owned by role "%s", not by "%s"',
										owner, CURRENT_USER),
			DETAIL = 'The extension keeps its catalog and functions in that schema, so another role must not control it.',
			HINT = 'Drop or rename the schema, or create the extension as its owner.';
	END IF;
END
$$;

--
-- Catalog tables.  They describe this node's view of the cluster; nothing
-- in them is replicated.  All are revoked from PUBLIC at the end.
--

-- The cluster this node belongs to: one row, written by create_cluster().
-- Read by the output plugin during decoding, hence a user catalog table.
CREATE TABLE replkafka.cluster (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	topic text NOT NULL,
	partitions integer NOT NULL CHECK (partitions > 0),
	replication_factor integer NOT NULL
		CHECK (replication_factor BETWEEN 1 AND 32767),
	node_name text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (user_catalog_table = true);
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
		CHECK (role IN ('offline', 'replica', 'primary', 'error', 'bootstrapping')),
	generation bigint NOT NULL DEFAULT 0
		CHECK (generation BETWEEN 0 AND 4294967295),
	last_error text,
	error_sqlstate text CHECK (error_sqlstate ~ '^[0-9A-Z]{5}$'),
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
	kafka_offset bigint NOT NULL,
	-- the primary of the generation handed over (END_GEN was read)
	ended boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE replkafka.consumer_checkpoints IS
	'Last applied transaction of each partition this node is replica of';

-- Partitions to copy from a peer (role bootstrapping), and from which.
CREATE TABLE replkafka.bootstraps (
	partition integer PRIMARY KEY REFERENCES replkafka.partition_roles,
	-- libpq connection string of the peer; NULL: one the node finds
	source text,
	-- drop this node's rows of the partition first
	rebuild boolean NOT NULL,
	requested_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE replkafka.bootstraps IS
	'Partitions this node copies from a peer, and where from';

--
-- Monitoring.
--
CREATE FUNCTION replkafka.partition_status(
	OUT partition integer,
	OUT role text,
	OUT generation bigint,
	OUT shipped_scn bigint,
	OUT shipped_offset bigint,
	OUT applied_scn bigint,
	OUT applied_offset bigint,
	OUT lag_messages bigint,
	OUT lag_seconds double precision,
	OUT zombies_skipped bigint,
	OUT last_error text,
	OUT transition text,
	OUT orphaned_transactions bigint,
	OUT phase text,
	OUT transition_started timestamptz,
	OUT records_done bigint,
	OUT records_total bigint,
	OUT apply_retries bigint,
	OUT error_sqlstate text,
	OUT copied_bytes bigint,
	OUT estimated_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'replkafka_partition_status'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.partition_status() IS
	'Run-time state of every partition on this node, from shared memory';

CREATE FUNCTION replkafka.worker_status(
	OUT kind text,
	OUT index integer,
	OUT pid integer,
	OUT state text,
	OUT started timestamptz,
	OUT restarts bigint,
	OUT failing boolean,
	OUT error_time timestamptz,
	OUT error_sqlstate text,
	OUT last_error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'replkafka_worker_status'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.worker_status() IS
	'The background workers of this node, from shared memory';

CREATE VIEW replkafka.workers AS
	SELECT * FROM replkafka.worker_status();
COMMENT ON VIEW replkafka.workers IS
	'The shipper and apply workers of this node: state, restarts and last error';

CREATE VIEW replkafka.partitions AS
	SELECT r.partition,
		   coalesce(s.role, r.role) AS role,
		   coalesce(s.generation, r.generation) AS generation,
		   CASE coalesce(s.role, r.role)
			   WHEN 'primary' THEN coalesce(s.shipped_scn, pc.scn)
			   ELSE coalesce(s.applied_scn, cc.scn) END AS scn,
		   CASE coalesce(s.role, r.role)
			   WHEN 'primary' THEN coalesce(s.shipped_offset, pc.kafka_offset)
			   ELSE coalesce(s.applied_offset, cc.kafka_offset) END AS kafka_offset,
		   s.lag_messages,
		   s.lag_seconds,
		   coalesce(s.zombies_skipped, 0) AS zombies_skipped,
		   coalesce(s.orphaned_transactions, 0) AS orphaned_transactions,
		   coalesce(s.last_error, r.last_error) AS last_error,
		   CASE WHEN s.last_error IS NOT NULL THEN s.error_sqlstate
				ELSE r.error_sqlstate END AS error_sqlstate,
		   s.transition,
		   s.phase,
		   s.transition_started,
		   s.records_done,
		   s.records_total,
		   coalesce(s.apply_retries, 0) AS apply_retries,
		   s.copied_bytes,
		   s.estimated_bytes,
		   CASE WHEN s.copied_bytes OPERATOR(pg_catalog.>) 0
					 AND s.estimated_bytes OPERATOR(pg_catalog.>) s.copied_bytes
				THEN (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) s.transition_started)
					 OPERATOR(pg_catalog.*)
					 ((s.estimated_bytes OPERATOR(pg_catalog.-) s.copied_bytes)::pg_catalog.float8
					  OPERATOR(pg_catalog./) s.copied_bytes)
				WHEN s.copied_bytes IS NOT NULL THEN '0'::pg_catalog.interval
		   END AS time_remaining
	  FROM replkafka.partition_roles r
	  LEFT JOIN replkafka.partition_status() s
		ON s.partition OPERATOR(pg_catalog.=) r.partition
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
										 replication_factor integer DEFAULT 3,
										 retention text DEFAULT '7 days')
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_create_cluster'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.create_cluster(integer, integer, text) IS
	'Sets up this node''s membership: records the partition count and creates or checks the Kafka topic, keeping records for retention (an interval, or infinity)';

-- The same with an interval value (PostgreSQL 15's interval has no infinity).
CREATE FUNCTION replkafka.create_cluster(partitions integer,
										 replication_factor integer,
										 retention interval)
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_create_cluster'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.create_cluster(integer, integer, interval) IS
	'Sets up this node''s membership: records the partition count and creates or checks the Kafka topic, keeping records for retention';

CREATE FUNCTION replkafka.add_table(rel regclass, partition_key text)
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_add_table'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.add_table(regclass, text) IS
	'Replicates a table; partition_key names primary key columns, separated by commas';

CREATE FUNCTION replkafka.remove_table(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_remove_table'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.remove_table(regclass) IS
	'Stops replicating a table';

CREATE FUNCTION replkafka.partition_of(rel regclass, key anyelement)
RETURNS integer
AS 'MODULE_PATHNAME', 'replkafka_partition_of'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION replkafka.partition_of(regclass, anyelement) IS
	'The partition of a key of a replicated table; a key of several columns is passed as a row';

CREATE FUNCTION replkafka.promote(partition integer,
								  timeout interval DEFAULT '30s')
RETURNS bigint
AS 'MODULE_PATHNAME', 'replkafka_promote_partition'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.promote(integer, interval) IS
	'Makes this node the primary of a partition in a new generation, which it returns';

CREATE FUNCTION replkafka.demote(partition integer,
								 timeout interval DEFAULT '30s')
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_demote_partition'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.demote(integer, interval) IS
	'Hands a partition this node is primary of over cleanly: stops writes, ships them all, ends the generation and makes this node a replica';

CREATE FUNCTION replkafka.follow(partition integer, source text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_follow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION replkafka.follow(integer, text) IS
	'Starts applying a partition on this node: from its checkpoint or the start of the log, or, with a source, after copying the partition from that peer';

CREATE FUNCTION replkafka.rebuild(partition integer, source text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_rebuild'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION replkafka.rebuild(integer, text) IS
	'Replaces this node''s copy of a partition with one copied from a peer (the source, or one the node finds)';

CREATE FUNCTION replkafka.drop_partition(partition integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'replkafka_drop_partition'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.drop_partition(integer) IS
	'Deletes this node''s rows of a partition it no longer holds, without shipping the deletes';

CREATE FUNCTION replkafka.peer_state(partition integer,
	OUT node_name text,
	OUT topic text,
	OUT partitions integer,
	OUT role text,
	OUT generation bigint,
	OUT stale boolean,
	OUT history_end pg_lsn,
	OUT shipped_lsn pg_lsn,
	OUT last_error text,
	OUT applied_offset bigint)
AS 'MODULE_PATHNAME', 'replkafka_peer_state'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.peer_state(integer) IS
	'What a node bootstrapping a partition from this one asks first: the cluster, the role, and how far Kafka holds this node''s commits';

CREATE FUNCTION replkafka.key_partition(rel regclass, VARIADIC key "any")
RETURNS integer
AS 'MODULE_PATHNAME', 'replkafka_key_partition'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION replkafka.key_partition(regclass, "any") IS
	'The partition of the partition key values of a replicated table''s row, in key order and of the key columns'' types';

CREATE FUNCTION replkafka.unfollow(partition integer)
RETURNS void
AS 'MODULE_PATHNAME', 'replkafka_unfollow'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.unfollow(integer) IS
	'Stops applying a partition on this node';

--
-- Growing the cluster.
--
CREATE FUNCTION replkafka.cluster_layout(
	OUT node_name text,
	OUT conninfo text,
	OUT partition integer,
	OUT role text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'replkafka_cluster_layout'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION replkafka.cluster_layout() IS
	'Every node of the directory of nodes with its role in each partition, as the node reports it';

-- The moves that give new_node its share of the partitions: copies of
-- partitions (follow from a replica), a share of the primaries (demote on
-- the old primary, promote on new_node), and the surplus copies dropped
-- (unfollow, drop_partition), in the order to run them; "wait" steps are
-- queries to repeat on their node until they return true.  Every node,
-- new_node included, must have published its replkafka.node_conninfo.
CREATE FUNCTION replkafka.plan_expansion(new_node text)
RETURNS TABLE (step integer, node_name text, conninfo text, action text,
			   partition integer, command text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	npart integer;
	nnodes integer;
	ncopies integer;
	want_primaries integer;
	want_copies integer;
	new_conninfo text;
	victim text;
	p integer;
	src text;
	chosen integer[] := '{}';
	moves integer[] := '{}';
	n integer := 0;
BEGIN
	-- left by an earlier call in this transaction
	IF to_regclass('pg_temp.layout') IS NOT NULL THEN
		DROP TABLE pg_temp.layout, pg_temp.holds, pg_temp.drops;
	END IF;
	CREATE TEMP TABLE pg_temp.layout ON COMMIT DROP AS
		SELECT l.node_name, l.conninfo, l.partition, l.role
		  FROM replkafka.cluster_layout() l;
	CREATE TEMP TABLE pg_temp.drops (ord integer, node_name text, partition integer)
		ON COMMIT DROP;
	SELECT min(l.conninfo) INTO new_conninfo FROM pg_temp.layout l
	 WHERE l.node_name = new_node;
	IF new_conninfo IS NULL THEN
		RAISE EXCEPTION USING
			ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('node "%s" is not in the directory of nodes', new_node),
			HINT = 'Set "replkafka.node_conninfo" on that node and reload its configuration.';
	END IF;
	IF EXISTS (SELECT FROM pg_temp.layout l WHERE l.node_name = new_node
				AND l.role <> 'offline') THEN
		RAISE EXCEPTION USING
			ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('node "%s" already holds partitions', new_node);
	END IF;
	SELECT count(DISTINCT l.partition), count(DISTINCT l.node_name)
	  INTO npart, nnodes FROM pg_temp.layout l;
	SELECT count(*) INTO ncopies FROM pg_temp.layout l
	 WHERE l.role IN ('primary', 'replica');
	want_primaries := npart / nnodes;
	want_copies := ncopies / nnodes;

	-- Copies each node keeps, as the plan goes.
	CREATE TEMP TABLE pg_temp.holds ON COMMIT DROP AS
		SELECT l.node_name, l.partition, l.role FROM pg_temp.layout l
		 WHERE l.role IN ('primary', 'replica') AND l.node_name <> new_node;

	-- A share of the primaries, from the nodes that have the most.
	FOR i IN 1 .. want_primaries LOOP
		SELECT h.node_name, min(h.partition) INTO victim, p
		  FROM pg_temp.holds h
		 WHERE h.role = 'primary'
		 GROUP BY h.node_name
		 ORDER BY count(*) DESC, h.node_name
		 LIMIT 1;
		EXIT WHEN p IS NULL;
		moves := moves || p;
		chosen := chosen || p;
		DELETE FROM pg_temp.holds h WHERE h.node_name = victim AND h.partition = p;
		INSERT INTO pg_temp.drops VALUES (cardinality(chosen), victim, p);
	END LOOP;

	-- More copies, from the nodes that keep the most.
	WHILE cardinality(chosen) < want_copies LOOP
		SELECT h.node_name INTO victim
		  FROM pg_temp.holds h
		 WHERE h.role = 'replica' AND NOT h.partition = ANY (chosen)
		 GROUP BY h.node_name
		 ORDER BY (SELECT count(*) FROM pg_temp.holds k WHERE k.node_name = h.node_name) DESC,
				  h.node_name
		 LIMIT 1;
		EXIT WHEN victim IS NULL;
		SELECT min(h.partition) INTO p FROM pg_temp.holds h
		 WHERE h.node_name = victim AND h.role = 'replica'
		   AND NOT h.partition = ANY (chosen);
		chosen := chosen || p;
		DELETE FROM pg_temp.holds h WHERE h.node_name = victim AND h.partition = p;
		INSERT INTO pg_temp.drops VALUES (cardinality(chosen), victim, p);
	END LOOP;

	-- 1. new_node copies each chosen partition from one of its replicas.
	FOREACH p IN ARRAY chosen LOOP
		SELECT l.conninfo INTO src FROM pg_temp.layout l
		 WHERE l.partition = p AND l.role = 'replica'
		 ORDER BY l.node_name LIMIT 1;
		IF src IS NULL THEN
			SELECT l.conninfo INTO src FROM pg_temp.layout l
			 WHERE l.partition = p AND l.role = 'primary';
		END IF;
		n := n + 1;
		RETURN QUERY SELECT n, new_node, new_conninfo, 'copy'::text, p,
			format('SELECT replkafka.follow(%s, source => %L)', p, src);
	END LOOP;
	n := n + 1;
	RETURN QUERY SELECT n, new_node, new_conninfo, 'wait'::text, NULL::integer,
		format('SELECT count(*) = %s FROM replkafka.partitions WHERE role = ''replica'' AND partition = ANY (%L)',
			   cardinality(chosen), chosen);

	-- 2. the primaries move: a clean handover each.
	FOREACH p IN ARRAY moves LOOP
		n := n + 1;
		RETURN QUERY SELECT n, l.node_name, l.conninfo, 'demote'::text, p,
			format('SELECT replkafka.demote(%s)', p)
		  FROM pg_temp.layout l WHERE l.partition = p AND l.role = 'primary';
		n := n + 1;
		RETURN QUERY SELECT n, new_node, new_conninfo, 'promote'::text, p,
			format('SELECT replkafka.promote(%s)', p);
	END LOOP;

	-- 3. the surplus copies go.
	FOR victim, p IN SELECT d.node_name, d.partition FROM pg_temp.drops d ORDER BY d.ord LOOP
		n := n + 1;
		RETURN QUERY SELECT n, victim, l.conninfo, 'unfollow'::text, p,
			format('SELECT replkafka.unfollow(%s)', p)
		  FROM pg_temp.layout l WHERE l.node_name = victim AND l.partition = p;
		n := n + 1;
		RETURN QUERY SELECT n, victim, l.conninfo, 'drop'::text, p,
			format('SELECT replkafka.drop_partition(%s)', p)
		  FROM pg_temp.layout l WHERE l.node_name = victim AND l.partition = p;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION replkafka.plan_expansion(text) IS
	'The steps that give a new node its share of the partitions and of the primaries, to run in order on the nodes named';

-- The write fence: installed on every replicated table by add_table().
CREATE FUNCTION replkafka.fence()
RETURNS trigger
AS 'MODULE_PATHNAME', 'replkafka_fence'
LANGUAGE C;
COMMENT ON FUNCTION replkafka.fence() IS
	'Trigger that lets writes through only on the primary of their partition';

-- A dropped table is no longer replicated.  It runs for every DROP in the
-- database, by whoever drops: as the extension's owner, since only it may
-- change replkafka.tables.
CREATE FUNCTION replkafka.forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM replkafka.tables t
	 USING pg_catalog.pg_event_trigger_dropped_objects() d
	 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
	   AND d.objsubid OPERATOR(pg_catalog.=) 0
	   AND t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid;
END;
$$;
CREATE EVENT TRIGGER replkafka_forget_dropped_tables ON sql_drop
	EXECUTE FUNCTION replkafka.forget_dropped_tables();

--
-- The wire format.
--
CREATE FUNCTION replkafka.decode(record bytea)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'replkafka_decode'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION replkafka.decode(bytea) IS
	'Decodes one Kafka record of replkafka''s wire format into JSON';

CREATE FUNCTION replkafka.decode_chunks(records bytea[])
RETURNS jsonb
AS 'MODULE_PATHNAME', 'replkafka_decode_chunks'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION replkafka.decode_chunks(bytea[]) IS
	'Decodes a transaction from all its chunks, in order, into JSON';

--
-- Nothing here is for PUBLIC.
--
REVOKE ALL ON ALL TABLES IN SCHEMA replkafka FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA replkafka FROM PUBLIC;
REVOKE ALL ON SCHEMA replkafka FROM PUBLIC;
