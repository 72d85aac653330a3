--
-- A cluster whose brokers cannot be reached fails within
-- replkafka.request_timeout and records nothing.
--
CREATE EXTENSION replkafka;
SET replkafka.request_timeout = '1s';
-- The detail carries librdkafka's last connection error, which varies.
\set VERBOSITY terse
SELECT replkafka.create_cluster(4, 1);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT count(*) AS partitions FROM replkafka.partitions;
SELECT count(*) AS clusters FROM replkafka.cluster;
