
# Copyright (c) 2026, replkafka authors

# A newly promoted node never applies its own records (correctness issue,
# item 7).  node_b's apply worker is stopped while node_b promotes; after
# node_b's NEW_GEN, a transaction of node_b's new generation lands (written
# by hand: the record the shipper writes once the role has changed).  The
# worker, continued, reads both in one batch: it learns that the promotion
# won and must apply nothing after it, or node_b would write its own rows
# twice.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2,
	conf => 'replkafka.apply_workers = 1');
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 1, { node_a => [0] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'node_a')") foreach 1 .. 5;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'node_b caught up');
$node_a->safe_psql('postgres', 'SELECT replkafka.demote(0)');
ok( $node_b->poll_query_until('postgres',
		'SELECT lag_messages = 0 FROM replkafka.partitions'),
	'node_b read the END_GEN');

# node_b promotes with its apply worker stopped: it is caught up, so the
# promotion writes its NEW_GEN and waits for the worker to read it.
my $worker = ReplkafkaTest::worker_pid($node_b, 'replkafka apply worker');
kill 'STOP', $worker;
my $promote = ReplkafkaTest::background_psql($node_b, 'SELECT replkafka.promote(0)');
my $newgen;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (!$newgen && time < $deadline)
{
	($newgen) = grep { $_->{type} eq 'NEW_GEN' && $_->{generation} == 2 }
	  ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
	Time::HiRes::usleep(100_000) unless $newgen;
}
ok($newgen && $newgen->{origin} eq 'node_b', 'node_b wrote its NEW_GEN of generation 2');

# Transaction 1 of node_b's generation 2, right after its NEW_GEN.
$kafka->produce('replkafka', 0,
	ReplkafkaTest::Wire::record(
		partition => 0, generation => 2, sequence => 1, origin => 'node_b',
		body => ReplkafkaTest::Wire::insert_body('public', 'items',
			[ [ 'id', 'integer', 1 ], [ 'v', 'text', 0 ] ], [ 1000, 'node_b' ])));
kill 'CONT', $worker;
$promote->{h}->finish;
like(${ $promote->{out} }, qr/^2$/m, "node_b is promoted to generation 2");
is($node_b->safe_psql('postgres', 'SELECT role FROM replkafka.partitions'), 'primary',
	'item 7: node_b is primary, not in error');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id = 1000'), '0',
	'item 7: its apply worker did not apply the record of its own generation');
my ($ret, $stdout, $stderr) = $node_b->psql('postgres', "INSERT INTO items VALUES (1001, 'node_b')");
is($ret, 0, 'node_b takes writes');

done_testing();
