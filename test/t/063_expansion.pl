
# Copyright (c) 2026, replkafka authors

# Cluster expansion under load: three nodes hold 12 partitions, three
# copies of each, every node primary of four; a fourth node joins, and
# scripts/expand runs replkafka.plan_expansion()'s steps: node_d copies
# nine partitions from replicas, three primaries move to it by a clean
# handover each, and the copies the old nodes no longer need are dropped.
# Every partition is written throughout with synchronous commits: every
# acknowledged write is on every node that holds its partition afterwards,
# the holders of each partition have equal checksums, and the other nodes
# have none of its rows.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Writer;
use Test::More;

my $partitions = 12;
my $kafka = ReplkafkaTest::Kafka->start();
my @nodes = ReplkafkaTest::new_nodes($kafka, 4);
my ($node_a, $node_b, $node_c, $node_d) = @nodes;

sub source_of
{
	my ($node) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
}

foreach my $node (@nodes)
{
	$node->append_conf('postgresql.conf',
		"replkafka.node_conninfo = '" . source_of($node) . "'");
	$node->reload;
}
my %primary_of = (
	node_a => [ 0 .. 3 ],
	node_b => [ 4 .. 7 ],
	node_c => [ 8 .. 11 ]);
ReplkafkaTest::setup_cluster([ $node_a, $node_b, $node_c ],
	$partitions, \%primary_of, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
$node_d->safe_psql('postgres', qq{
SELECT replkafka.create_cluster($partitions, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

# A writer per node on the partitions it is primary of, with synchronous
# commits, for as long as the expansion takes.
my $partition_of = $node_a->safe_psql('postgres',
	"SELECT string_agg(g || ':' || replkafka.partition_of('items', g), ' ') FROM generate_series(1, 30000) g");
my %part = map { split /:/ } split / /, $partition_of;
my @writers;
foreach my $node ($node_a, $node_b, $node_c)
{
	my %mine = map { $_ => 1 } @{ $primary_of{ $node->name } };
	my @mine = grep { $mine{ $part{$_} } } 1 .. 30000;
	push @writers,
	  ReplkafkaTest::Writer->start($node, ids => \@mine, pause => 0.01,
		sql => 'SET replkafka.synchronous_commit = on');
}
$_->wait_for_ok(100) foreach @writers;

# Every node, node_d included, is in the directory of nodes.
ok( $node_a->poll_query_until('postgres',
		q{SELECT count(DISTINCT node_name) = 4 FROM replkafka.cluster_layout()}),
	'the four nodes are in the directory of nodes');

my $plan = $node_a->safe_psql('postgres',
	q{SELECT string_agg(action || ' ' || node_name || ' ' || coalesce(partition::text, '-'), ', ' ORDER BY step)
	    FROM replkafka.plan_expansion('node_d')});
note "plan: $plan";
my @copies = $plan =~ /copy node_d (\d+)/g;
my @moves = $plan =~ /promote node_d (\d+)/g;
is(scalar @copies, 9, 'the plan gives node_d nine copies');
is(scalar @moves, 3, 'and three of the twelve primaries');
is(scalar(() = $plan =~ /drop node_\w+ \d+/g), 9, 'and drops nine copies on the old nodes');

# Rows the writers committed so far.
sub committed
{
	my $n = 0;
	foreach my $w (@writers)
	{
		$w->{h}->pump_nb;
		$n += () = $w->{out} =~ /^ok /mg;
	}
	return $n;
}

my ($out, $err);
my $before = committed();
my $started = time;
IPC::Run::run([ "$ENV{TESTDIR}/scripts/expand", $node_a->connstr('postgres'), 'node_d' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 4))
  or die "scripts/expand failed:\n$out\n$err";
note "scripts/expand:\n$out";
note 'expansion took ' . (time - $started) . ' s';
my $during = committed() - $before;
note "$during writes committed while node_d joined";
ok($during > 0, 'writes went on while node_d joined');

# Writes go on a while after the moves, then stop.
my (%acked, %refused);
foreach my $w (@writers)
{
	my $done = () = $w->{out} =~ /^ok /mg;
	$w->wait_for_ok($done + 20);
	$w->kill;
	my %r = $w->finish;
	$acked{$_} = 1 foreach keys %{ $r{ok} };
	$refused{$_} = $r{failed}{$_} foreach keys %{ $r{failed} };
}
note scalar(keys %acked) . ' writes acknowledged, ' . scalar(keys %refused) . ' refused';
ok(!(grep { $_ ne '25006' } values %refused),
	'a refused write was refused by the fence of a partition moving (25006)');

# The layout after: node_d primary of three, every node holds nine copies.
my $layout = $node_a->safe_psql('postgres', q{
SELECT string_agg(node_name || ':' || copies || '/' || primaries, ' ' ORDER BY node_name)
  FROM (SELECT node_name, count(*) FILTER (WHERE role IN ('primary', 'replica')) AS copies,
			   count(*) FILTER (WHERE role = 'primary') AS primaries
		  FROM replkafka.cluster_layout() GROUP BY node_name) s});
is($layout, 'node_a:9/3 node_b:9/3 node_c:9/3 node_d:9/3',
	'every node holds nine copies, three of them as primary');

# Each partition: its holders agree, every acknowledged write is there,
# and the other nodes have none of its rows.
my $holders = $node_a->safe_psql('postgres', q{
SELECT string_agg(partition || ':' || node_name, ' ')
  FROM replkafka.cluster_layout() WHERE role IN ('primary', 'replica')});
my %holders;
foreach (split / /, $holders)
{
	my ($p, $n) = split /:/;
	push @{ $holders{$p} }, $n;
}
my %node = map { $_->name => $_ } @nodes;
my $checksum = q{
SELECT replkafka.partition_of('items', id), count(*), md5(string_agg(t::text, '|' ORDER BY id))
  FROM items t GROUP BY 1 ORDER BY 1};
my $converged = ReplkafkaTest::wait_until(sub {
	my %sums;
	foreach my $n (@nodes)
	{
		foreach (split /\n/, $n->safe_psql('postgres', $checksum))
		{
			my ($p, $count, $md5) = split /\|/;
			$sums{$p}{ $n->name } = $md5;
		}
	}
	foreach my $p (0 .. $partitions - 1)
	{
		my %held = map { $_ => 1 } @{ $holders{$p} };
		my @sums = map { $sums{$p}{$_} // 'none' } @{ $holders{$p} };
		return 0 if grep { $_ ne $sums[0] } @sums;
		return 0 if grep { !$held{$_} && defined $sums{$p}{$_} } keys %{ $sums{$p} };
	}
	return 1;
});
ok($converged, 'the holders of each partition agree, and no other node has its rows');

my $lost = 0;
foreach my $n (@nodes)
{
	my %have = map { $_ => 1 } split /\n/, $n->safe_psql('postgres', 'SELECT id FROM items');
	foreach my $id (keys %acked)
	{
		next unless grep { $_ eq $n->name } @{ $holders{ $part{$id} } };
		$lost++ unless $have{$id};
	}
}
is($lost, 0, 'every acknowledged write is on every node that holds its partition');

done_testing();
