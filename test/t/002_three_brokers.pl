
# Copyright (c) 2026, replkafka authors

# create_cluster() on a three-broker Kafka cluster: the default replication
# factor of 3 is used with min.insync.replicas=2, and a node joins while one
# broker is down.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start(brokers => 3);
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);

$node_a->safe_psql('postgres', 'SELECT replkafka.create_cluster(8)');
is($kafka->topic_partitions('replkafka', wait => 1), 8, 'topic has 8 partitions');
is($node_a->safe_psql('postgres', 'SELECT replication_factor FROM replkafka.cluster'),
	'3', 'the default replication factor is 3');

my $description = $kafka->describe_topic('replkafka');
like($description, qr/PartitionCount: 8\s+ReplicationFactor: 3/,
	'Kafka describes 8 partitions with replication factor 3');
like($description, qr/min\.insync\.replicas=2/, 'min.insync.replicas is 2');

# One broker down: the cluster still answers, and node_b joins.
$kafka->stop_broker(1, kill => 1);
$node_b->safe_psql('postgres', 'SELECT replkafka.create_cluster(8)');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM replkafka.partitions'),
	'8', 'a node joins while a broker is down');
$kafka->start_broker(1);
is($kafka->topic_partitions('replkafka', wait => 1), 8, 'the restarted broker serves the topic');

done_testing();
