
# Copyright (c) 2026, replkafka authors

# A stale primary's synchronous commit (correctness issue, item 3).
# node_a's shipper is stopped while a synchronous INSERT waits for Kafka;
# node_b is promoted and written to; node_a's shipper continues and ships
# the INSERT, which Kafka acknowledges after node_b's records.  That
# acknowledgement is not a success: the INSERT returns with a WARNING that
# it is not part of the cluster's history, the row reaches no other node,
# and node_a's partition stops.  A commit Kafka acknowledged before node_b's
# NEW_GEN, released in the same round, is a clean success.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);
ReplkafkaTest::setup_cluster([ $node_a, $node_b, $node_c ], 1, { node_a => [0] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
my $sync = 'SET replkafka.synchronous_commit = on';
$node_a->safe_psql('postgres', "$sync; INSERT INTO items VALUES ($_, 'before')") foreach 1 .. 5;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the replicas caught up');

# node_a's shipper stops; a synchronous INSERT waits.
my $shipper = ReplkafkaTest::stop_shipper($node_a);
my $zombie = ReplkafkaTest::background_psql($node_a,
	"$sync; INSERT INTO items VALUES (100, 'zombie')");
ok(ReplkafkaTest::waits_for_kafka($node_a, "''zombie''"),
	'the synchronous INSERT waits for Kafka');

# node_b takes over and writes.
is($node_b->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '2',
	'node_b is promoted while node_a\'s shipper is stopped');
$node_b->safe_psql('postgres', "$sync; INSERT INTO items VALUES ($_, 'node_b')") foreach 200 .. 204;

# node_a's shipper goes on: it ships the INSERT, and Kafka acknowledges it.
kill 'CONT', $shipper;
$zombie->{h}->finish;
like(${ $zombie->{err} },
	qr/WARNING:  node "node_a" is no longer primary of partition 0\nDETAIL:  The transaction has committed locally, but is not part of the cluster's history/,
	'item 3: the zombie\'s synchronous COMMIT returns with a warning, not a clean success');
ok( $node_a->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions"),
	'item 3: node_a\'s partition stops');
my $in_kafka = grep { $_->{type} eq 'TXN' && $_->{origin} eq 'node_a' && $_->{generation} == 1 }
  ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
note "node_a's generation 1 has $in_kafka transactions in Kafka";
is($node_a->safe_psql('postgres', 'SELECT orphaned_transactions FROM replkafka.partitions'),
	$in_kafka - 5, 'item 3: the zombie transaction is counted as orphaned if Kafka holds it');
ok(ReplkafkaTest::wait_for_convergence([ $node_b, $node_c ], 'items'),
	'node_b and node_c converge');
is($node_c->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id = 100'), '0',
	'item 3: the zombie row reached no other node');
is($node_c->safe_psql('postgres', 'SELECT count(*) FROM items'), '10',
	'node_c holds node_a\'s five rows from before and node_b\'s five');

done_testing();
