
# Copyright (c) 2026, replkafka authors

# Transactions prepared for two-phase commit (correctness issue, item 9).
# - COMMIT PREPARED with replkafka.synchronous_commit = on waits for Kafka,
#   as COMMIT does.
# - A prepared transaction that wrote a partition is a writer of it until
#   COMMIT PREPARED or ROLLBACK PREPARED: demote() waits for it (and gives
#   up at its timeout), so its commit is shipped in the generation it
#   wrote, never after the handover.
# - After a restart the partition of a transaction prepared before is not
#   known: demote() waits for it too, and its COMMIT PREPARED waits for
#   Kafka.
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
	conf => 'max_prepared_transactions = 10');
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 1, { node_a => [0] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
my $sync = 'SET replkafka.synchronous_commit = on';

sub ids_in_kafka
{
	my %ids;
	foreach my $t (ReplkafkaTest::Wire::transactions($kafka->consume('replkafka')))
	{
		next unless $t->{type} eq 'TXN';
		$ids{ $_->{new}{id} } = $t->{generation} foreach @{ $t->{changes} };
	}
	return \%ids;
}

# COMMIT PREPARED waits for Kafka.
$node_a->safe_psql('postgres', q{
BEGIN; INSERT INTO items VALUES (1, 'w1'); PREPARE TRANSACTION 'w1';});
my $shipper = ReplkafkaTest::stop_shipper($node_a);
my $commit = ReplkafkaTest::background_psql($node_a, $sync, "COMMIT PREPARED 'w1'");
ok(ReplkafkaTest::waits_for_kafka($node_a, "COMMIT PREPARED ''w1''"),
	'item 9: a synchronous COMMIT PREPARED waits for Kafka');
kill 'CONT', $shipper;
$commit->{h}->finish;
is(${ $commit->{err} }, '', 'it returns once Kafka holds the transaction');
ok(ids_in_kafka()->{1}, 'item 9: the transaction is in Kafka when COMMIT PREPARED returns');

# demote() waits for a prepared transaction that wrote the partition.
$node_a->safe_psql('postgres', q{
BEGIN; INSERT INTO items VALUES (2, 'w2'); PREPARE TRANSACTION 'w2';});
my ($ret, $stdout, $stderr) = $node_a->psql('postgres', "SELECT replkafka.demote(0, '2s')");
like($stderr,
	qr/could not demote node "node_a" in partition 0 within the timeout\nDETAIL:  1 prepared transaction may write the partition/,
	'item 9: demote() waits for the prepared transaction, and gives up at its timeout');
is($node_a->safe_psql('postgres', 'SELECT role FROM replkafka.partitions'), 'primary',
	'node_a stays primary');
my $demote = ReplkafkaTest::background_psql($node_a, 'SELECT replkafka.demote(0)');
ok(ReplkafkaTest::waits_for_kafka($node_a, 'replkafka.demote(0)'), 'a demotion waits for the prepared transaction');
$node_a->safe_psql('postgres', "COMMIT PREPARED 'w2'");
$demote->{h}->finish;
is(${ $demote->{err} }, '', 'the demotion ends once it is committed');
is(ids_in_kafka()->{2}, 1, 'item 9: the prepared transaction is shipped in generation 1');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'node_b holds both rows');

# Back to node_a, through node_b.
$node_b->safe_psql('postgres', 'SELECT replkafka.promote(0)');
$node_b->safe_psql('postgres', 'SELECT replkafka.demote(0)');
is($node_a->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '3',
	'node_a is primary again, in generation 3');

# A transaction prepared before a restart: its partition is not known.
$node_a->safe_psql('postgres', q{
BEGIN; INSERT INTO items VALUES (3, 'w3'); PREPARE TRANSACTION 'w3';});
$node_a->restart;
($ret, $stdout, $stderr) = $node_a->psql('postgres', "SELECT replkafka.demote(0, '2s')");
like($stderr, qr/1 prepared transaction may write the partition/,
	'item 9: after a restart, demote() waits for a transaction prepared before');
$shipper = ReplkafkaTest::stop_shipper($node_a);
$commit = ReplkafkaTest::background_psql($node_a, $sync, "COMMIT PREPARED 'w3'");
ok(ReplkafkaTest::waits_for_kafka($node_a, "COMMIT PREPARED ''w3''"),
	'item 9: its synchronous COMMIT PREPARED waits for Kafka');
kill 'CONT', $shipper;
$commit->{h}->finish;
is(ids_in_kafka()->{3}, 3, 'item 9: it is in Kafka, in generation 3, when COMMIT PREPARED returns');

# A rolled back one no longer counts.
$node_a->safe_psql('postgres', q{
BEGIN; INSERT INTO items VALUES (4, 'w4'); PREPARE TRANSACTION 'w4';});
$node_a->safe_psql('postgres', "ROLLBACK PREPARED 'w4'");
$node_a->safe_psql('postgres', 'SELECT replkafka.demote(0)');
is($node_a->safe_psql('postgres', 'SELECT role FROM replkafka.partitions'), 'replica',
	'demote() no longer waits for a transaction rolled back');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'node_a and node_b converge');
is($node_b->safe_psql('postgres', 'SELECT string_agg(v, \',\' ORDER BY id) FROM items'),
	'w1,w2,w3', 'node_b holds exactly the committed prepared transactions');

done_testing();
