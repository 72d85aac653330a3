--
-- The output plugin "replkafka" on its own, through the SQL interface:
-- what it writes for the changes of replicated tables, its options, and
-- the origin filter.  The node is primary of every partition (fence.sql).
--
SET client_min_messages = warning;
SELECT 'init' FROM pg_create_logical_replication_slot('regress_plugin', 'replkafka');

BEGIN;
INSERT INTO orders VALUES (1, 100, 'from the plugin');
UPDATE orders SET note = 'updated' WHERE tenant = 1 AND id = 100;
COMMIT;
DELETE FROM orders WHERE tenant = 1 AND id = 100;
-- A table that is not replicated is not decoded.
CREATE TABLE not_replicated (id int PRIMARY KEY);
INSERT INTO not_replicated VALUES (1);

-- Records are not sequenced (the shipper stamps SCNs): generation and
-- sequence are 0.
SELECT j->>'type' AS type, j->'partition' = to_jsonb(replkafka.partition_of('orders', 1)) AS right_partition,
	   j->'generation' AS generation, j->'sequence' AS sequence, j->'chunk' AS chunk,
	   j->'last' AS last, j->'origin' AS origin, jsonb_pretty(j->'changes') AS changes
  FROM (SELECT replkafka.decode(data) AS j
		  FROM pg_logical_slot_get_binary_changes('regress_plugin', NULL, NULL)) s;

-- A small chunk size cuts a transaction into chunks.
INSERT INTO orders SELECT 1, g, repeat('x', 500) FROM generate_series(200, 209) g;
SELECT count(*) AS chunks, sum((j->>'last')::boolean::int) AS last_chunks,
	   min((j->>'chunk')::int) AS first_chunk, max((j->>'chunk')::int) AS last_chunk
  FROM (SELECT replkafka.decode(data) AS j
		  FROM pg_logical_slot_peek_binary_changes('regress_plugin', NULL, NULL,
												  'chunk_size', '1024')) s;
SELECT jsonb_array_length(replkafka.decode_chunks(array_agg(data ORDER BY lsn, ordinality)) -> 'changes') AS rows
  FROM pg_logical_slot_get_binary_changes('regress_plugin', NULL, NULL,
										  'chunk_size', '1024') WITH ORDINALITY;

-- Changes made under a replkafka replication origin (the apply worker's)
-- are not decoded; other origins are.
SELECT 'origin' FROM pg_replication_origin_create('replkafka_regress');
SELECT 'origin' FROM pg_replication_origin_create('other_origin');
SELECT pg_replication_origin_session_setup('replkafka_regress');
INSERT INTO orders VALUES (1, 300, 'applied from Kafka');
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_session_setup('other_origin');
INSERT INTO orders VALUES (1, 301, 'from another origin');
SELECT pg_replication_origin_session_reset();
SELECT j->'changes'->0->'new'->'id' AS id
  FROM (SELECT replkafka.decode(data) AS j
		  FROM pg_logical_slot_get_binary_changes('regress_plugin', NULL, NULL)) s;
SELECT pg_replication_origin_drop('replkafka_regress');
SELECT pg_replication_origin_drop('other_origin');

-- Options.
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_plugin', NULL, NULL, 'chunk_size', '10');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_plugin', NULL, NULL, 'chunk_size', 'big');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_plugin', NULL, NULL, 'chunk_size', '2048', 'chunk_size', '4096');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_plugin', NULL, NULL, 'origin', '');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_plugin', NULL, NULL, 'no_such_option', '1');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_logical_slot_peek_changes('regress_plugin', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO orders VALUES (1, 400, 'origin option');
SELECT j->>'origin' AS origin
  FROM (SELECT replkafka.decode(data) AS j
		  FROM pg_logical_slot_get_binary_changes('regress_plugin', NULL, NULL, 'origin', 'elsewhere')) s;

SELECT 'stop' FROM pg_drop_replication_slot('regress_plugin');
