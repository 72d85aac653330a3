--
-- A node without replkafka.brokers cannot reach Kafka.
--
CREATE EXTENSION replkafka;
SHOW replkafka.brokers;
SELECT replkafka.create_cluster(4, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS partitions FROM replkafka.partitions;
