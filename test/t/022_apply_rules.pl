
# Copyright (c) 2026, replkafka authors

# The apply rules, with records a test producer writes into the topic: a
# replayed transaction is skipped; an incomplete chunk sequence is
# discarded; records of an older generation, or of the current one from
# another node than its primary, are skipped and counted; a sequence gap,
# garbage bytes and a table that is not replicated put their partition in
# error with a clear message, while the other partitions go on.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 8,
	{ node_a => [ 0 .. 7 ] }, q{
CREATE TABLE t (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('t', 'id');
CREATE TABLE not_replicated (id int PRIMARY KEY, v text);
});

# Ids of each partition.
my @ids;
foreach my $p (0 .. 7)
{
	$ids[$p] = [ split /\n/, $node_a->safe_psql('postgres',
		"SELECT g FROM generate_series(1, 400) g WHERE replkafka.partition_of('t', g) = $p ORDER BY g LIMIT 20") ];
}
# Three real transactions in every partition.
foreach my $p (0 .. 7)
{
	$node_a->safe_psql('postgres', "INSERT INTO t VALUES ($ids[$p][$_], 'real $_')") foreach 0 .. 2;
}
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 't'), 'node_b applied the real transactions');

my @columns = ([ 'id', 'integer', 1 ], [ 'v', 'text', 0 ]);
sub txn
{
	my (%f) = @_;
	my $body = ReplkafkaTest::Wire::insert_body('public', $f{table} // 't', \@columns,
		[ $f{id}, $f{v} ]);
	return ReplkafkaTest::Wire::record(%f, body => $body);
}

# Partition 0: a replay of sequence 1 is skipped.
$kafka->produce('replkafka', 0,
	txn(partition => 0, generation => 1, sequence => 1, id => $ids[0][10], v => 'replayed'));

# Partition 1: chunk 0 of transaction 4, then transaction 4 whole: the
# incomplete copy is discarded, the whole one applied.
my $whole = txn(partition => 1, generation => 1, sequence => 4, id => $ids[1][10], v => 'whole');
my $partial_body = ReplkafkaTest::Wire::insert_body('public', 't', \@columns, [ $ids[1][11], 'partial' ]);
$kafka->produce('replkafka', 1,
	ReplkafkaTest::Wire::record(partition => 1, generation => 1, sequence => 4,
		last => 0, chunk => 0, body => substr($partial_body, 0, 20)),
	$whole);

# Partition 2: node_x starts generation 2; then a transaction of generation
# 1, and one of generation 2 from node_a, are zombies; node_y's NEW_GEN of
# generation 2 lost; node_x's transactions are applied.
$kafka->produce(
	'replkafka', 2,
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 2, generation => 2, origin => 'node_x'),
	txn(partition => 2, generation => 1, sequence => 4, id => $ids[2][10], v => 'zombie gen 1'),
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 2, generation => 2, origin => 'node_y'),
	txn(partition => 2, generation => 2, sequence => 1, origin => 'node_a', id => $ids[2][11], v => 'zombie node_a'),
	txn(partition => 2, generation => 2, sequence => 1, origin => 'node_x', id => $ids[2][12], v => 'from node_x'),
	txn(partition => 2, generation => 2, sequence => 2, origin => 'node_x', id => $ids[2][13], v => 'from node_x'));

# Partition 3: a gap.  Partition 5: garbage.  Partition 6: a table that is
# not replicated.
$kafka->produce('replkafka', 3,
	txn(partition => 3, generation => 1, sequence => 5, id => $ids[3][10], v => 'after a gap'));
$kafka->produce('replkafka', 5, "this is not a replkafka record");
$kafka->produce('replkafka', 6,
	txn(partition => 6, generation => 1, sequence => 4, table => 'not_replicated', id => 1, v => 'x'));

# The other partitions go on.
$node_a->safe_psql('postgres', "INSERT INTO t VALUES ($ids[$_][3], 'after the injections')")
  foreach (4, 7);

ok( $node_b->poll_query_until(
		'postgres',
		"SELECT count(*) = 3 FROM replkafka.partitions WHERE role = 'error'"),
	'three partitions are in error on node_b');

my %state = map { my @f = split /\|/; ($f[0] => \@f) } split /\n/,
  $node_b->safe_psql('postgres',
	'SELECT partition, role, generation, scn & 4294967295, zombies_skipped, last_error FROM replkafka.partitions ORDER BY 1');

is($state{0}[1], 'replica', 'partition 0 is still replica after a replay');
is($node_b->safe_psql('postgres', "SELECT count(*) FROM t WHERE v = 'replayed'"),
	'0', 'the replayed transaction was skipped');

ok($node_b->poll_query_until('postgres', "SELECT count(*) = 1 FROM t WHERE v = 'whole'"),
	'the whole transaction after an incomplete one is applied');
is($node_b->safe_psql('postgres', "SELECT count(*) FROM t WHERE v = 'partial'"),
	'0', 'the incomplete transaction is discarded');
is($state{1}[1], 'replica', 'partition 1 is still replica');

ok($node_b->poll_query_until('postgres', "SELECT count(*) = 2 FROM t WHERE v = 'from node_x'"),
	'the transactions of generation 2 from node_x are applied');
is($node_b->safe_psql('postgres', "SELECT count(*) FROM t WHERE v LIKE 'zombie%'"),
	'0', 'zombie transactions are not applied');
is($node_b->safe_psql('postgres', 'SELECT generation, zombies_skipped FROM replkafka.partitions WHERE partition = 2'),
	'2|2', 'partition 2 is in generation 2, with two zombies skipped');
is($node_b->safe_psql('postgres',
	'SELECT node_name FROM replkafka.generations WHERE partition = 2 AND generation = 2'),
	'node_x', 'the first NEW_GEN of generation 2 won');

is($state{3}[1], 'error', 'a sequence gap puts partition 3 in error');
like($state{3}[5], qr/sequence gap at Kafka offset 4: expected transaction 4 of generation 1, found 5/,
	'the error says where the gap is');
is($state{5}[1], 'error', 'garbage puts partition 5 in error');
like($state{5}[5], qr/the record at Kafka offset 4 is malformed: record is shorter than the header/,
	'the error says the record is malformed');
is($state{6}[1], 'error', 'a table that is not replicated puts partition 6 in error');
like($state{6}[5], qr/table "public\.not_replicated" is not replicated on this node/,
	'the error names the table');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM not_replicated'),
	'0', 'nothing was written to it');

ok( $node_b->poll_query_until(
		'postgres', "SELECT count(*) = 2 FROM t WHERE v = 'after the injections'"),
	'the other partitions go on');
like(
	$node_b->safe_psql(
		'postgres',
		"SELECT string_agg(role, ',' ORDER BY partition) FROM replkafka.partitions WHERE partition IN (0, 1, 2, 4, 7)"
	),
	qr/^replica,replica,replica,replica,replica$/,
	'partitions without bad records are replicas');
ok($node_b->log_contains(qr/partition 3 stops applying on node "node_b": sequence gap/),
	'the error is in the server log');

done_testing();
