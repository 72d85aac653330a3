
# Copyright (c) 2026, replkafka authors

# Two replicas promote the same partition at the same time: exactly one
# wins, the other gets a clear error and stays replica.  Repeated for 20
# partitions.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;
use Time::HiRes;

my $rounds = 20;
my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);
ReplkafkaTest::setup_cluster([ $node_a, $node_b, $node_c ], $rounds,
	{ node_a => [ 0 .. $rounds - 1 ] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'v')") foreach 1 .. 60;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the replicas caught up');

my ($one_winner, $clear_loser, $loser_replica) = (0, 0, 0);
foreach my $p (0 .. $rounds - 1)
{
	my %run;
	# Both sessions call promote() at the same instant.
	my $at = sprintf('%.3f', Time::HiRes::time() + 0.5);
	foreach my $node ($node_b, $node_c)
	{
		my ($out, $err) = ('', '');
		$run{ $node->name } = {
			node => $node,
			out => \$out,
			err => \$err,
			h => IPC::Run::start(
				[
					'psql', '-X', '-At', '-d', $node->connstr('postgres'),
					'-c', "SELECT pg_sleep_until(to_timestamp($at))",
					'-c', "SELECT replkafka.promote($p)"
				],
				'>', \$out, '2>', \$err,
				IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default))
		};
	}
	$_->{h}->finish foreach values %run;
	my @won = grep { ${ $_->{out} } =~ /^2$/m } values %run;
	my @lost = grep { ${ $_->{out} } !~ /^\d+$/m } values %run;
	if (@won == 1 && @lost == 1)
	{
		$one_winner++;
		my $winner = $won[0]{node}->name;
		my $loser = $lost[0]{node}->name;
		$clear_loser++
		  if ${ $lost[0]{err} } =~
		  /could not promote node "$loser" for partition $p: node "$winner" started generation 2 first/;
		$loser_replica++
		  if $lost[0]{node}->safe_psql('postgres',
			"SELECT role FROM replkafka.partitions WHERE partition = $p") eq 'replica';
	}
	else
	{
		diag "partition $p: " . join(' | ', map { $_ . ': ' . ${ $run{$_}{out} } . ${ $run{$_}{err} } } keys %run);
	}
}
is($one_winner, $rounds, "exactly one of two promotions won, $rounds times");
is($clear_loser, $rounds, 'the loser was told which node won');
is($loser_replica, $rounds, 'the loser stayed replica');

done_testing();
