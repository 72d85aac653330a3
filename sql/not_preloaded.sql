--
-- Installed but not in shared_preload_libraries: the extension can be
-- created, but functions that need the workers say what is missing.
--
CREATE EXTENSION replkafka;
SELECT replkafka.create_cluster(4, 1);
\echo :LAST_ERROR_SQLSTATE
SHOW replkafka.node_name;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS partitions FROM replkafka.partitions;
SELECT * FROM replkafka.workers;
\echo :LAST_ERROR_SQLSTATE
