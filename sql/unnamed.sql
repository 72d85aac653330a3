--
-- A node without replkafka.node_name cannot join a cluster.
--
CREATE EXTENSION replkafka;
SHOW replkafka.node_name;
SELECT replkafka.create_cluster(4, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS partitions FROM replkafka.partitions;
