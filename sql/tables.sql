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
-- Keys whose hash differs from node to node.
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN mood_d AS mood;
CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE EXTENSION citext;
CREATE TABLE by_enum (k mood PRIMARY KEY);
CREATE TABLE by_enum_domain (k mood_d PRIMARY KEY);
CREATE TABLE by_enum_array (k mood[] PRIMARY KEY);
CREATE TABLE by_oid (k oid PRIMARY KEY);
CREATE TABLE by_regclass (k regclass PRIMARY KEY);
CREATE TABLE by_nocase (k text COLLATE nocase PRIMARY KEY);
CREATE TABLE by_citext (k citext PRIMARY KEY);
SELECT replkafka.add_table('by_enum', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('by_enum_domain', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('by_enum_array', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('by_oid', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('by_regclass', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('by_nocase', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.add_table('by_citext', 'k');
\echo :LAST_ERROR_SQLSTATE
-- Keys every node hashes alike, through domains and arrays too.
CREATE DOMAIN code AS text COLLATE "C";
CREATE TABLE portable (a int, b text, c uuid, d timestamptz, e numeric,
					   f code, g int[], h bytea,
					   PRIMARY KEY (a, b, c, d, e, f, g, h));
SELECT replkafka.add_table('portable', 'a, b, c, d, e, f, g, h');
SELECT replkafka.remove_table('portable');
DROP TABLE by_enum, by_enum_domain, by_enum_array, by_oid, by_regclass,
	by_nocase, by_citext, portable;
DROP EXTENSION citext;
DROP COLLATION nocase;
DROP DOMAIN code, mood_d;
DROP TYPE mood;

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

-- ALTER TABLE must leave a replicated table replicable: its key logged in
-- the WAL, its key columns' types and in-row storage unchanged.
SELECT attname, attstorage FROM pg_attribute
 WHERE attrelid = 'lines'::regclass AND attnum > 0 ORDER BY attnum;
ALTER TABLE lines REPLICA IDENTITY NOTHING;
\echo :LAST_ERROR_SQLSTATE
CREATE UNIQUE INDEX lines_id ON lines (id);
ALTER TABLE lines REPLICA IDENTITY USING INDEX lines_id;
\echo :LAST_ERROR_SQLSTATE
DROP INDEX lines_id;
ALTER TABLE lines DROP CONSTRAINT lines_pkey;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE lines ALTER COLUMN tenant TYPE bigint;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE lines ALTER COLUMN region TYPE text COLLATE "C";
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE lines ALTER COLUMN region SET STORAGE EXTENDED;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE lines DROP COLUMN region;
\echo :LAST_ERROR_SQLSTATE
-- Other changes are fine.
ALTER TABLE lines REPLICA IDENTITY FULL, ADD COLUMN note text,
	ALTER COLUMN qty TYPE bigint;
ALTER TABLE lines REPLICA IDENTITY DEFAULT, DROP COLUMN note;
-- ALTER TABLE of a parent reaches the replicated tables that inherit from it.
CREATE TABLE accounts_base (tenant int, id int, v text);
CREATE TABLE accounts (PRIMARY KEY (tenant, id)) INHERITS (accounts_base);
SELECT replkafka.add_table('accounts', 'tenant');
ALTER TABLE accounts_base ALTER COLUMN tenant TYPE bigint;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE accounts_base ALTER COLUMN v TYPE varchar(10);
SELECT replkafka.remove_table('accounts');
DROP TABLE accounts_base CASCADE;
-- A rewrite of key values, even to the same type, and a typmod change.
CREATE TABLE amounts (id numeric(10,4) PRIMARY KEY, v text);
SELECT replkafka.add_table('amounts', 'id');
ALTER TABLE amounts ALTER COLUMN id TYPE numeric(10,4) USING id + 1;
\echo :LAST_ERROR_SQLSTATE
-- A typed table's key through ALTER TYPE ... CASCADE, and a key column
-- dropped with its domain.
CREATE TYPE account_row AS (id int, v text);
CREATE TABLE typed_accounts OF account_row (PRIMARY KEY (id));
SELECT replkafka.add_table('typed_accounts', 'id');
ALTER TYPE account_row ALTER ATTRIBUTE id TYPE bigint CASCADE;
\echo :LAST_ERROR_SQLSTATE
CREATE DOMAIN amount_key AS int;
CREATE TABLE by_domain (id amount_key PRIMARY KEY);
SELECT replkafka.add_table('by_domain', 'id');
DROP DOMAIN amount_key CASCADE;
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.remove_table(t) FROM unnest(ARRAY['amounts', 'typed_accounts', 'by_domain']::regclass[]) t;
DROP TABLE amounts, typed_accounts, by_domain;
DROP TYPE account_row;
DROP DOMAIN amount_key;

-- The write fence stays.
ALTER TABLE lines DISABLE TRIGGER replkafka_fence;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE lines DISABLE TRIGGER USER;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE lines ENABLE REPLICA TRIGGER replkafka_fence_truncate;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER replkafka_fence ON lines;
\echo :LAST_ERROR_SQLSTATE
-- Unrelated DDL passes.
CREATE TABLE scratch (id int);
DROP TABLE scratch;

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
