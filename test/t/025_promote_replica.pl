
# Copyright (c) 2026, replkafka authors

# promote() on a replica: it catches up, starts a new generation, and takes
# writes; the other replica follows the new primary; the old primary finds
# out and stops taking writes, and the writes it still made are zombies
# that no other node applies.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);
ReplkafkaTest::setup_cluster([ $node_a, $node_b, $node_c ], 1, { node_a => [0] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'from node_a')") foreach 1 .. 100;

# node_b promotes while it may still be catching up.
is($node_b->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '2',
	'promote() on a replica starts generation 2');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items'), '100',
	'the new primary applied the whole log before taking over');
is($node_b->safe_psql('postgres', 'SELECT role, generation FROM replkafka.partitions'),
	'primary|2', 'node_b is primary in generation 2');

$node_b->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'from node_b')") foreach 101 .. 150;

# node_a may not know yet: the writes it still accepts are zombies.
my $zombies = 0;
foreach my $i (151 .. 155)
{
	my ($ret) = $node_a->psql('postgres', "INSERT INTO items VALUES ($i, 'zombie')");
	$zombies++ if $ret == 0;
}
note "node_a accepted $zombies of 5 late writes";
ok( $node_a->poll_query_until(
		'postgres', "SELECT role = 'error' FROM replkafka.partitions"),
	'node_a finds out that node_b took the partition over');
my ($ret, $stdout, $stderr) =
  $node_a->psql('postgres', "INSERT INTO items VALUES (156, 'zombie')");
like($stderr, qr/cannot write to partition 0 on node "node_a"/,
	'node_a refuses writes from then on');

ok( $node_c->poll_query_until(
		'postgres', "SELECT count(*) = 50 FROM items WHERE v = 'from node_b'"),
	'node_c applies the new primary\'s writes');
cmp_ok($node_c->safe_psql('postgres', 'SELECT zombies_skipped FROM replkafka.partitions'),
	'<=', $zombies, 'node_c skipped what reached Kafka of them');
is($node_c->safe_psql('postgres', "SELECT count(*) FROM items WHERE v = 'zombie'"),
	'0', 'none of them is applied on node_c');
is($node_b->safe_psql('postgres', "SELECT count(*) FROM items WHERE v = 'zombie'"),
	'0', 'nor on node_b');
is( $node_c->safe_psql('postgres',
		"SELECT generation, node_name FROM replkafka.generations ORDER BY generation"),
	"1|node_a\n2|node_b", 'node_c records who started each generation');
ok( ReplkafkaTest::wait_for_convergence([ $node_b, $node_c ], 'items'),
	'node_b and node_c hold the same rows');

# Promoting twice fails.
($ret, $stdout, $stderr) = $node_b->psql('postgres', 'SELECT replkafka.promote(0)');
like($stderr, qr/node "node_b" is already primary of partition 0/, 'promote() twice fails');

done_testing();
