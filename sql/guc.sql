--
-- replkafka's configuration parameters: defaults, contexts and validation.
--
SHOW replkafka.node_name;
SHOW replkafka.topic;
SHOW replkafka.database;
SHOW replkafka.kafka_options;
SHOW replkafka.synchronous_commit;
SHOW replkafka.apply_workers;
SHOW replkafka.max_partitions;
SHOW replkafka.request_timeout;
SHOW replkafka.node_conninfo;
SHOW replkafka.auto_rebuild;
SHOW replkafka.max_bootstraps;

-- Contexts: identity is fixed at start-up, Kafka settings need a reload.
SET replkafka.node_name = 'other';
\echo :LAST_ERROR_SQLSTATE
SET replkafka.topic = 'other';
\echo :LAST_ERROR_SQLSTATE
SET replkafka.brokers = '127.0.0.1:9092';
\echo :LAST_ERROR_SQLSTATE
SET replkafka.kafka_options = 'linger.ms=5';
\echo :LAST_ERROR_SQLSTATE
SET replkafka.synchronous_commit = on;
SHOW replkafka.synchronous_commit;
RESET replkafka.synchronous_commit;
SET replkafka.request_timeout = '2s';
SHOW replkafka.request_timeout;
SET replkafka.request_timeout = '50ms';
\echo :LAST_ERROR_SQLSTATE
RESET replkafka.request_timeout;

-- The prefix is reserved: misspelled parameters are rejected.
SET replkafka.node_nam = 'x';
\echo :LAST_ERROR_SQLSTATE

-- kafka_options may hold secrets, node_conninfo names a server: superusers only.
CREATE ROLE regress_replkafka_guc;
SET ROLE regress_replkafka_guc;
SHOW replkafka.kafka_options;
\echo :LAST_ERROR_SQLSTATE
SHOW replkafka.node_conninfo;
\echo :LAST_ERROR_SQLSTATE
SET replkafka.auto_rebuild = on;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_replkafka_guc;

-- Validation happens when the value is set, before any server reads it.
ALTER SYSTEM SET replkafka.kafka_options = 'socket.timeout.ms';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = '=5';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'bootstrap.servers=127.0.0.1:9092';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'enable.idempotence=false';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'no.such.property=1';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'socket.timeout.ms=soon';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'linger.ms=1, linger.ms=2';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = ' linger.ms = 5 , client.rack=rack\,1 ,';
ALTER SYSTEM RESET replkafka.kafka_options;
ALTER SYSTEM SET replkafka.node_name = 'node one';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.node_name = 'n234567890123456789012345678901234567890123456789012345678901234';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.node_name = 'n23456789012345678901234567890123456789012345678901234567890123';
ALTER SYSTEM RESET replkafka.node_name;
ALTER SYSTEM SET replkafka.topic = '';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.topic = '..';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.topic = 'a/b';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.apply_workers = 0;
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.max_partitions = 100000;
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.max_bootstraps = 17;
\echo :LAST_ERROR_SQLSTATE
