
# Copyright (c) 2026, replkafka authors

# A demotion whose END_GEN reaches Kafka but is not acknowledged in time
# (correctness issue, item 6).  Three brokers, replication factor 3: the
# two followers of the partition stall (SIGSTOP) after node_a's
# transactions are in Kafka, so the leader appends node_a's END_GEN but
# cannot acknowledge it before demote()'s timeout.  The demotion must
# still end in a state every node agrees on: node_a becomes a replica (it
# takes no more writes in its generation), and once the followers are back
# and END_GEN is in the log, every replica reads it as the end of the
# generation.  A later promotion of node_b goes on from there.
#
# Then node_b's demotion ends its generation, but the statement that called
# it fails afterwards (a division by zero after demote() in the same
# SELECT), so the role change rolls back: node_b takes no more writes in its
# ended generation, its shipper finishes the handover, and node_c takes
# over from there.  Last, a role change rolled back to a savepoint leaves
# shared memory as the catalog.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start(brokers => 3);
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);
foreach my $node ($node_a, $node_b, $node_c)
{
	$node->safe_psql('postgres', q{
SELECT replkafka.create_cluster(1, 3);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
}
$node_a->safe_psql('postgres', 'SELECT replkafka.promote(0)');
$_->safe_psql('postgres', 'SELECT replkafka.follow(0)') foreach $node_b, $node_c;
$node_a->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($_, 'node_a')")
  foreach 1 .. 20;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the replicas caught up');

# The followers of partition 0 stall; node_a demotes with a short timeout.
my $leader = $kafka->partition_leader('replkafka', 0);
my @followers = grep { $_ != $leader } 1 .. 3;
$kafka->pause_broker($_) foreach @followers;
my ($ret, $stdout, $stderr) =
  $node_a->psql('postgres', "SELECT replkafka.demote(0, '5s')");
$kafka->resume_broker($_) foreach @followers;
is($ret, 0, 'item 6: demote() returns');
like($stderr,
	qr/WARNING:  could not confirm that Kafka holds the END_GEN record of generation 1 of partition 0/,
	'item 6: with a warning that END_GEN was not acknowledged');
is($node_a->safe_psql('postgres', 'SELECT role FROM replkafka.partitions'), 'replica',
	'item 6: node_a is a replica all the same');
($ret, $stdout, $stderr) = $node_a->psql('postgres', "INSERT INTO items VALUES (100, 'node_a')");
like($stderr, qr/cannot write to partition 0 on node "node_a"/,
	'item 6: node_a takes no more writes in its generation');

# END_GEN reaches the followers: it is in the log, after node_a's last
# transaction.
my @log;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	@log = ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
	last if grep { $_->{type} eq 'END_GEN' } @log;
	Time::HiRes::usleep(200_000);
}
my ($end) = grep { $_->{type} eq 'END_GEN' } @log;
ok($end, 'item 6: the END_GEN is in the log once the followers are back');
is($end && $end->{sequence}, 20, 'item 6: it ends the generation after transaction 20');

# Every node reads it as the end of the generation; node_b goes on.
foreach my $node ($node_a, $node_b, $node_c)
{
	ok( $node->poll_query_until('postgres',
			"SELECT ended FROM replkafka.consumer_checkpoints WHERE partition = 0"),
		'item 6: ' . $node->name . ' read the end of generation 1');
}
is($node_b->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '2',
	'node_b is promoted to generation 2');
$node_b->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'node_b')") foreach 21 .. 30;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the three nodes converge');
is($node_c->safe_psql('postgres', 'SELECT count(*) FROM items'), '30',
	'no row lost, none added');
is($node_a->safe_psql('postgres', "SELECT role || ' ' || coalesce(last_error, '') FROM replkafka.partitions"),
	'replica ', 'node_a is a replica without error');

($ret, $stdout, $stderr) = $node_b->psql('postgres',
	'SELECT replkafka.demote(0), 1 / (random() * 0)::int');
like($stderr, qr/division by zero/, 'node_b\'s demotion ends in an error after its END_GEN');
($ret, $stdout, $stderr) = $node_b->psql('postgres', "INSERT INTO items VALUES (101, 'node_b')");
like($stderr, qr/cannot write to partition 0 on node "node_b"/,
	'item 6: node_b takes no more writes in its ended generation');
ok( $node_b->poll_query_until('postgres',
		"SELECT role = 'replica' FROM replkafka.partitions"),
	'item 6: node_b\'s shipper finishes the handover: node_b is a replica');
is($node_c->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '3',
	'node_c is promoted to generation 3');
$node_c->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'node_c')") foreach 31 .. 40;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the three nodes converge again');
is($node_a->safe_psql('postgres', 'SELECT count(*) FROM items'), '40',
	'no row lost, none added');
is($node_a->safe_psql('postgres', 'SELECT zombies_skipped FROM replkafka.partitions'), '0',
	'no write of the ended generation reached the log');

# A role change rolled back with its subtransaction is not published.
$node_b->safe_psql('postgres', q{
BEGIN;
SAVEPOINT s;
SELECT replkafka.unfollow(0);
ROLLBACK TO SAVEPOINT s;
COMMIT;
});
is($node_b->safe_psql('postgres', q{
SELECT p.role || ' ' || r.role
  FROM replkafka.partitions p JOIN replkafka.partition_roles r USING (partition)}),
	'replica replica',
	'an unfollow() rolled back to a savepoint leaves the role as it was, in shared memory too');
$node_c->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'node_c again')") foreach 41 .. 45;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the three nodes converge once more');

done_testing();
