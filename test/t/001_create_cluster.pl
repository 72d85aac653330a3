
# Copyright (c) 2026, replkafka authors

# create_cluster() on two nodes sharing one real Kafka broker: the same
# partition count is accepted by both, a different one is refused, and the
# topic really has the recorded number of partitions, the no-data-loss
# settings and the retention asked for, with the directory of nodes beside
# it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);

is($kafka->topic_partitions('replkafka'),
	undef, 'no topic before create_cluster');

# Same P on both nodes: the first creates the topic, the second joins it.
$node_a->safe_psql('postgres', 'SELECT replkafka.create_cluster(4, 1)');
$node_b->safe_psql('postgres', 'SELECT replkafka.create_cluster(4, 1)');
is($kafka->topic_partitions('replkafka', wait => 1), 4, 'topic has 4 partitions');

foreach my $node ($node_a, $node_b)
{
	is( $node->safe_psql(
			'postgres',
			q{SELECT string_agg(format('%s:%s:%s', partition, role, generation), ' '
			   ORDER BY partition) FROM replkafka.partitions}),
		'0:offline:0 1:offline:0 2:offline:0 3:offline:0',
		$node->name . ' shows every partition offline in generation 0');
	is( $node->safe_psql(
			'postgres',
			'SELECT topic, partitions, replication_factor, node_name FROM replkafka.cluster'
		),
		'replkafka|4|1|' . $node->name,
		$node->name . ' recorded the cluster');
}

# The topic carries the settings that keep acknowledged records safe.
my $description = $kafka->describe_topic('replkafka');
like($description, qr/PartitionCount: 4\s+ReplicationFactor: 1/,
	'Kafka describes 4 partitions with replication factor 1');
like($description, qr/min\.insync\.replicas=1/, 'min.insync.replicas is 1');
like($description, qr/retention\.ms=604800000/, 'retention is 7 days by default');
like($description, qr/cleanup\.policy=delete/, 'cleanup policy is delete');
like($description, qr/unclean\.leader\.election\.enable=false/,
	'unclean leader election is off');

# Beside it, the directory of nodes keeps the last record of each.
$description = $kafka->describe_topic('replkafka-nodes');
like($description, qr/PartitionCount: 1\s+ReplicationFactor: 1/,
	'the directory of nodes has one partition');
like($description, qr/cleanup\.policy=compact/, 'and is compacted');

# A second cluster on another topic, where the nodes disagree on P.
foreach my $node ($node_a, $node_b)
{
	$node->append_conf('postgresql.conf', "replkafka.topic = 'second'");
	$node->restart;
	$node->safe_psql('postgres',
		'DROP EXTENSION replkafka; CREATE EXTENSION replkafka');
}
my ($ret, $stdout, $stderr) = $node_a->psql('postgres',
	q{SELECT replkafka.create_cluster(3, 1, retention => '0 days')});
like($stderr, qr/retention must be positive, or "infinity"/,
	'a retention of nothing is refused');
$node_a->safe_psql('postgres',
	q{SELECT replkafka.create_cluster(3, 1, retention => 'infinity')});
like($kafka->describe_topic('second'), qr/retention\.ms=-1/,
	'retention "infinity" keeps every record');
($ret, $stdout, $stderr) =
  $node_b->psql('postgres', 'SELECT replkafka.create_cluster(5, 1)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'create_cluster with a different partition count fails');
like(
	$stderr,
	qr/ERROR:  22023: Kafka topic "second" has 3 partitions, not 5/,
	'the error names the topic and both counts');
like($stderr, qr/HINT:  Create the cluster with 3 partitions/,
	'the hint gives the count to use');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM replkafka.partitions'),
	'0', 'the failed call recorded nothing');
is($kafka->topic_partitions('second', wait => 1), 3, 'topic "second" keeps 3 partitions');

# An interval value works as well.
my $node_d = ReplkafkaTest::new_node('node_d', $kafka, conf => "replkafka.topic = 'third'");
$node_d->safe_psql('postgres',
	q{SELECT replkafka.create_cluster(1, 1, interval '36 hours')});
like($kafka->describe_topic('third'), qr/retention\.ms=129600000/,
	'an interval retention is set on the topic');

# The first node cannot change its mind either.
($ret, $stdout, $stderr) =
  $node_a->psql('postgres', 'SELECT replkafka.create_cluster(5, 1)');
like($stderr, qr/cluster already exists with 3 partitions/,
	'a node cannot change the partition count of its cluster');

# With the broker gone, create_cluster fails within the request timeout.
$kafka->stop;
my $node_c = ReplkafkaTest::new_node('node_c', $kafka,
	conf => "replkafka.request_timeout = '2s'");
($ret, $stdout, $stderr) =
  $node_c->psql('postgres', 'SELECT replkafka.create_cluster(3, 1)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$stderr,
	qr/ERROR:  08006: could not reach Kafka brokers "[^"]+" within 2000 ms/,
	'an unreachable broker gives a connection error');

done_testing();
