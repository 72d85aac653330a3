
# Copyright (c) 2026, replkafka authors

# A replica that was down while the primary kept writing and the broker
# restarted catches up from its checkpoint when it comes back; unfollow()
# and follow() stop and resume applying.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 2, { node_a => [ 0, 1 ] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

sub write_rows
{
	my ($from, $to) = @_;
	$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'v$_')") foreach $from .. $to;
}

write_rows(1, 50);
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'), 'node_b caught up');

# node_b is down while node_a writes and the broker restarts.
$node_b->stop;
write_rows(51, 100);
$kafka->stop_broker(1);
$kafka->start_broker(1);
write_rows(101, 150);
$node_b->start;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'node_b catches up after being down across a broker restart');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items'), '150', 'with every row');

# unfollow() stops applying; follow() resumes from the checkpoint.
$node_b->safe_psql('postgres', 'SELECT replkafka.unfollow(0)');
is($node_b->safe_psql('postgres', 'SELECT role FROM replkafka.partitions WHERE partition = 0'),
	'offline', 'partition 0 is offline on node_b');
write_rows(151, 200);
ok( $node_b->poll_query_until(
		'postgres',
		"SELECT count(*) = (SELECT count(*) FROM generate_series(151, 200) g WHERE replkafka.partition_of('items', g) = 1) FROM items WHERE id > 150"
	),
	'partition 1 is still applied');
$node_b->safe_psql('postgres', 'SELECT replkafka.follow(0)');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'following partition 0 again catches it up');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items'), '200', 'with every row');

# Bad calls.
my ($ret, $stdout, $stderr) = $node_b->psql('postgres', 'SELECT replkafka.follow(0)');
like($stderr, qr/node "node_b" is already replica of partition 0/, 'follow() twice fails');
($ret, $stdout, $stderr) = $node_a->psql('postgres', 'SELECT replkafka.follow(0)');
like($stderr, qr/node "node_a" is primary of partition 0/, 'a primary cannot follow');
($ret, $stdout, $stderr) = $node_a->psql('postgres', 'SELECT replkafka.unfollow(1)');
like($stderr, qr/node "node_a" is primary of partition 1/, 'a primary cannot unfollow');
($ret, $stdout, $stderr) = $node_b->psql('postgres', 'SELECT replkafka.follow(9)');
like($stderr, qr/partition 9 does not exist/, 'follow() checks the partition');

done_testing();
