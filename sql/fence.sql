--
-- The write fence, promote() on a new cluster, and demote().
-- Tables orders (key tenant) and lines (key tenant, region) are replicated.
--
SET client_min_messages = warning;

-- Every partition is offline: nothing can be written.
INSERT INTO orders VALUES (1, 1, 'first');
\echo :LAST_ERROR_SQLSTATE

-- Bad calls of promote().
SELECT replkafka.promote(4);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.promote(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.promote(0, '0 seconds');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT replkafka.promote(0);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- A new cluster's log is empty: promotion starts generation 1.
SELECT p AS partition, replkafka.promote(p) AS generation
  FROM generate_series(0, 3) p;
SELECT replkafka.promote(0);
\echo :LAST_ERROR_SQLSTATE
SELECT partition, role, generation, scn, kafka_offset, last_error
  FROM replkafka.partitions ORDER BY partition;
SELECT partition, generation, node_name, kafka_offset
  FROM replkafka.generations ORDER BY partition;

-- Now this node takes writes.
INSERT INTO orders VALUES (1, 1, 'first');
INSERT INTO orders VALUES (5, 1, 'fifth');
UPDATE orders SET note = 'changed' WHERE tenant = 1;
DELETE FROM orders WHERE tenant = 5;

-- One transaction, one partition (tenants 1 and 2 are in different ones).
BEGIN;
INSERT INTO orders VALUES (1, 2, 'a');
INSERT INTO orders VALUES (2, 1, 'b');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Rows of one partition, in two tables, in one transaction.
SELECT min(k) AS tenant_b FROM generate_series(2, 100) k
 WHERE replkafka.partition_of('orders', k) = replkafka.partition_of('orders', 1) \gset
SELECT min(r) AS region_b FROM (SELECT 'r' || g AS r FROM generate_series(1, 100) g) s
 WHERE replkafka.partition_of('lines', row(1, r)) = replkafka.partition_of('orders', 1) \gset
BEGIN;
INSERT INTO orders VALUES (1, 2, 'a');
INSERT INTO orders VALUES (:tenant_b, 1, 'b');
INSERT INTO lines VALUES (1, :'region_b', 1, 10);
COMMIT;

-- A row's partition key never changes.
UPDATE orders SET tenant = :tenant_b WHERE tenant = 1 AND id = 2;
\echo :LAST_ERROR_SQLSTATE
UPDATE orders SET id = 3 WHERE tenant = 1 AND id = 2;

-- TRUNCATE cannot be replicated.
TRUNCATE orders;
\echo :LAST_ERROR_SQLSTATE

-- A role that may write the table passes the fence too.
CREATE ROLE regress_replkafka_writer;
GRANT SELECT, INSERT ON orders TO regress_replkafka_writer;
SET ROLE regress_replkafka_writer;
INSERT INTO orders VALUES (1, 4, 'by a plain role');
RESET ROLE;
REVOKE ALL ON orders FROM regress_replkafka_writer;
DROP ROLE regress_replkafka_writer;

SELECT tenant = :tenant_b AS is_tenant_b, id, note FROM orders ORDER BY tenant, id;

-- Bad calls of demote().
SELECT replkafka.demote(4);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.demote(0, '-1 seconds');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT replkafka.demote(0);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- demote() hands tenant 1's partition over: it ships what was written,
-- ends generation 1 and makes this node a replica, which refuses writes.
SELECT replkafka.partition_of('orders', 1) AS p1 \gset
SELECT replkafka.demote(:p1);
INSERT INTO orders VALUES (1, 5, 'after demote');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.demote(:p1);
\echo :LAST_ERROR_SQLSTATE
-- Its apply worker takes the partition up from its END_GEN, the consumer
-- checkpoint demote() wrote, and hears where the log ends: no record past
-- it, no lag.
DO $$
BEGIN
	FOR i IN 1..3000 LOOP
		IF EXISTS (SELECT FROM replkafka.partitions
					WHERE partition = replkafka.partition_of('orders', 1)
					  AND lag_messages = 0) THEN
			RETURN;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RAISE 'the apply worker did not take the partition up within 30 s';
END
$$;
SELECT role, generation, scn >> 32 AS scn_generation,
	   scn & 4294967295 AS scn_sequence, transition, last_error
  FROM replkafka.partitions WHERE partition = :p1;

-- Promoted again, it starts generation 2 after its own END_GEN.
SELECT replkafka.promote(:p1);
INSERT INTO orders VALUES (1, 5, 'after promote');
SELECT tenant, id, note FROM orders WHERE tenant = 1 ORDER BY id;
