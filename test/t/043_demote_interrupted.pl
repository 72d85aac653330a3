
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
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
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

done_testing();
