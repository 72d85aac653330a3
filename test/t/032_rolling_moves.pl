
# Copyright (c) 2026, replkafka authors

# Rolling moves under load: three partitions, one primary each on three
# nodes; every partition is moved around the three nodes twice (demote on
# its primary, promote on the next node) while a client on every node
# writes rows of every partition.  Afterwards all nodes converge and hold
# exactly the rows whose COMMIT returned; writes failed only with the
# fence error.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Writer;
use Test::More;

my $partitions = 3;
my @nodes = ReplkafkaTest::new_nodes(my $kafka = ReplkafkaTest::Kafka->start(), 3);
ReplkafkaTest::setup_cluster(\@nodes, $partitions,
	{ node_a => [0], node_b => [1], node_c => [2] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

# Each node's client writes its own ids, of every partition; a row goes
# through only on the partition's primary of the moment.
my @writers = map {
	ReplkafkaTest::Writer->start($nodes[$_],
		ids => [ ($_ + 1) * 100000 + 1 .. ($_ + 1) * 100000 + 4000 ],
		sql => 'SET replkafka.synchronous_commit = on')
} 0 .. 2;
$_->wait_for_ok(50) foreach @writers;

# Move every partition to the next node, six times: around the three
# nodes twice.
my %primary = (0 => 0, 1 => 1, 2 => 2);
my $moves = 0;
my $generations_ok = 1;
foreach my $round (1 .. 6)
{
	foreach my $p (0 .. $partitions - 1)
	{
		my $from = $nodes[ $primary{$p} ];
		my $to = $nodes[ ($primary{$p} + 1) % 3 ];
		$from->safe_psql('postgres', "SELECT replkafka.demote($p)");
		my $gen = $to->safe_psql('postgres', "SELECT replkafka.promote($p)");
		$generations_ok = 0 unless $gen == $round + 1;
		$primary{$p} = ($primary{$p} + 1) % 3;
		$moves++;
	}
}
is(scalar(grep { $_->{h}->pumpable } @writers), 3,
	'the clients were still writing when the moves ended');
is($moves, 18, 'every partition was moved six times');
ok($generations_ok, 'each move started the next generation');
is(join(',', map { $nodes[ $primary{$_} ]->name } 0 .. 2),
	'node_a,node_b,node_c', 'every partition is back on its first primary');

my %acked;
my %sqlstates;
foreach my $w (@writers)
{
	my %r = $w->finish;
	%acked = (%acked, %{ $r{ok} });
	$sqlstates{$_}++ foreach values %{ $r{failed} };
	unlike($r{stderr}, qr/WARNING|FATAL|server closed/, 'the client saw no warning');
}
note 'rows committed: ' . scalar(keys %acked) . ', failed: '
  . join(', ', map { "$_ x $sqlstates{$_}" } sort keys %sqlstates);
is_deeply([ keys %sqlstates ], ['25006'], 'writes failed only with the fence error');

ok(ReplkafkaTest::wait_for_convergence(\@nodes, 'items'), 'the three nodes converge');
foreach my $node (@nodes)
{
	my %rows = map { $_ => 1 } split /\n/,
	  $node->safe_psql('postgres', 'SELECT id FROM items');
	is_deeply(\%rows, \%acked, $node->name . ' holds exactly the rows whose COMMIT returned');
	is($node->safe_psql('postgres',
			"SELECT string_agg(role || ':' || generation, ',' ORDER BY partition) FROM replkafka.partitions"),
		join(',', map { ($nodes[ $primary{$_} ] == $node ? 'primary' : 'replica') . ':7' } 0 .. 2),
		$node->name . ' has the right role in generation 7 of every partition');
}

done_testing();
