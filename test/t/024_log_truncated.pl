
# Copyright (c) 2026, replkafka authors

# A replica whose stored offset Kafka no longer holds (retention deleted
# the records it had not applied) puts the partition in error, saying the
# replica must be rebuilt; so does a new replica of a log whose start is
# gone.  Nothing is skipped silently.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 1, { node_a => [0] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
$node_c->safe_psql('postgres', q{
SELECT replkafka.create_cluster(1, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'v$_')") foreach 1 .. 10;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'), 'node_b caught up');

# node_b is down while records it has not applied are deleted.
$node_b->stop;
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'v$_')") foreach 11 .. 20;
$node_a->poll_query_until('postgres',
	"SELECT scn & 4294967295 = 20 FROM replkafka.partitions WHERE partition = 0")
  or die "node_a did not ship";
$kafka->delete_records('replkafka', 0, 16);
$node_b->start;

ok( $node_b->poll_query_until(
		'postgres', "SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'the partition goes to error on node_b');
like(
	$node_b->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 0'),
	qr/Kafka no longer holds offset 11 of the partition; this replica must be rebuilt/,
	'the error says the replica must be rebuilt');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items'), '10',
	'node_b applied nothing past the hole');

# A new replica cannot start from a log whose start is gone.
$node_c->safe_psql('postgres', 'SELECT replkafka.follow(0)');
ok( $node_c->poll_query_until(
		'postgres', "SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'a new replica of a truncated log goes to error');
like(
	$node_c->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 0'),
	qr/Kafka no longer holds offset 0 of the partition; this replica must be rebuilt/,
	'and says it must be rebuilt');
is($node_c->safe_psql('postgres', 'SELECT count(*) FROM items'), '0', 'having applied nothing');

done_testing();
