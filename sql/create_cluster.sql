--
-- create_cluster() against a real Kafka broker: argument checks, topic
-- creation, repeated calls and partition-count mismatches.
--
-- This is the first test of the main suite; it creates the extension.
--
CREATE EXTENSION replkafka;

-- The catalog exists and nothing in it is available to PUBLIC.
CREATE ROLE regress_replkafka_user;
SELECT c.relname, c.relkind,
       has_table_privilege('regress_replkafka_user', c.oid, 'SELECT') AS can_select
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'replkafka' AND c.relkind IN ('r', 'v')
 ORDER BY c.relname;
SELECT p.proname,
       has_function_privilege('regress_replkafka_user', p.oid, 'EXECUTE') AS can_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'replkafka'
 ORDER BY p.proname;
SELECT has_schema_privilege('regress_replkafka_user', 'replkafka', 'USAGE') AS can_use_schema;
SET ROLE regress_replkafka_user;
SELECT replkafka.create_cluster(4, 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- No cluster yet: the view is empty.
SELECT * FROM replkafka.partitions;

-- Bad arguments.
SELECT replkafka.create_cluster(0, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.create_cluster(-3, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.create_cluster(1025, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.create_cluster(4, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.create_cluster(4, 32768);
\echo :LAST_ERROR_SQLSTATE
-- The default replication factor is 3; this broker is alone.
SELECT replkafka.create_cluster(4);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS partitions FROM replkafka.partitions;

-- Creates topic replkafka_regress with 4 partitions.
SELECT replkafka.create_cluster(4, 1);
SELECT topic, partitions, replication_factor, node_name FROM replkafka.cluster;
SELECT * FROM replkafka.partitions ORDER BY partition;

-- Calling it again with the same partition count only checks the topic.
SELECT replkafka.create_cluster(4, 1);
SELECT count(*) AS partitions FROM replkafka.partitions;

-- The partition count of a cluster cannot change.
SELECT replkafka.create_cluster(5, 1);
\echo :LAST_ERROR_SQLSTATE

-- A node joining an existing topic must agree on its partition count.
DROP EXTENSION replkafka;
CREATE EXTENSION replkafka;
SELECT replkafka.create_cluster(6, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS partitions FROM replkafka.partitions;
SELECT replkafka.create_cluster(4, 1);
SELECT partition, role, generation FROM replkafka.partitions ORDER BY partition;

-- Only the database named by replkafka.database can hold the cluster.
CREATE DATABASE regress_replkafka_other;
\c regress_replkafka_other
CREATE EXTENSION replkafka;
SELECT replkafka.create_cluster(4, 1);
\echo :LAST_ERROR_SQLSTATE
\c contrib_regression
DROP DATABASE regress_replkafka_other;
DROP ROLE regress_replkafka_user;
