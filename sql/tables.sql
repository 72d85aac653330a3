--
-- add_table(), remove_table() and partition_of(): registering tables and
-- the partition of a key.  The cluster (4 partitions) exists already.
--
CREATE TABLE orders (tenant int, id bigint, note text, PRIMARY KEY (tenant, id));
CREATE TABLE lines (tenant int, region text, id int, qty int,
					PRIMARY KEY (tenant, region, id));
CREATE TABLE nopk (id int, v text);
CREATE UNLOGGED TABLE unlogged_t (id int PRIMARY KEY);
CREATE TEMP TABLE temp_t (id int PRIMARY KEY);
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY HASH (id);
CREATE VIEW a_view AS SELECT 1 AS id;
CREATE TABLE bits (k varbit PRIMARY KEY);
CREATE TABLE no_identity (id int PRIMARY KEY);
ALTER TABLE no_identity REPLICA IDENTITY NOTHING;

-- Tables that cannot be replicated.
SELECT replkafka.add_table('nopk', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('unlogged_t', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('temp_t', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('parted', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('a_view', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('no_identity', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('replkafka.cluster', 'singleton');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('pg_class', 'oid');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('no_such_table', 'id');
\echo :LAST_ERROR_SQLSTATE

-- Partition keys that are not one.
SELECT replkafka.add_table('orders', '');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('orders', '"tenant');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('orders', 'nosuch');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('orders', 'note');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('orders', 'tenant, tenant');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('bits', 'k');
\echo :LAST_ERROR_SQLSTATE

-- Registration.
SELECT replkafka.add_table('orders', 'tenant');
SELECT replkafka.add_table('lines', 'tenant, "region"');
SELECT relid, key_attnums FROM replkafka.tables ORDER BY relid::text;
SELECT tgrelid::regclass, tgname, tgenabled FROM pg_trigger
 WHERE tgrelid IN ('orders'::regclass, 'lines'::regclass) ORDER BY 1, 2;
SELECT replkafka.add_table('orders', 'tenant');
\echo :LAST_ERROR_SQLSTATE

-- The partition of a key is a fixed function of its value: every node
-- computes the same.
SELECT k, replkafka.partition_of('orders', k) FROM generate_series(1, 8) k;
SELECT replkafka.partition_of('orders', 5::bigint) AS from_bigint,
	   replkafka.partition_of('orders', '5'::text) AS from_text,
	   replkafka.partition_of('orders', 5::numeric) AS from_numeric;
SELECT replkafka.partition_of('lines', row(1, 'eu')),
	   replkafka.partition_of('lines', row(1, 'us')),
	   replkafka.partition_of('lines', row(2, 'eu'));
SELECT replkafka.partition_of('orders', 'five'::text);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.partition_of('orders', row(1, 2));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.partition_of('lines', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.partition_of('lines', row(1, NULL::text));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.partition_of('nopk', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.partition_of('orders', NULL::int) IS NULL AS null_key_has_no_partition;

-- Rows that exist before registration stay on this node.
CREATE TABLE prefilled (id int PRIMARY KEY);
INSERT INTO prefilled VALUES (1);
SELECT replkafka.add_table('prefilled', 'id');

-- Removal.
SELECT replkafka.remove_table('prefilled');
SELECT count(*) AS fence_triggers FROM pg_trigger WHERE tgrelid = 'prefilled'::regclass;
SELECT replkafka.remove_table('prefilled');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO prefilled VALUES (2);

-- A dropped table is forgotten.
SELECT replkafka.add_table('prefilled', 'id');
DROP TABLE prefilled;
SELECT relid FROM replkafka.tables ORDER BY relid::text;
