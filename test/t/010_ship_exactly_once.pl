
# Copyright (c) 2026, replkafka authors

# Exactly once into Kafka: 20,000 transactions over 8 partitions while the
# shipper is killed with SIGKILL five times (each time the whole server goes
# through crash recovery) and the broker is restarted once.  Reading the
# topic back must find every committed transaction exactly once, and each
# partition's sequence numbers dense from 1.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $target = 20000;
my $kafka = ReplkafkaTest::Kafka->start();
my $node = ReplkafkaTest::new_node('node_a', $kafka,
	conf => 'restart_after_crash = on');

$node->safe_psql(
	'postgres', q{
SELECT replkafka.create_cluster(8, 1);
CREATE TABLE t (id bigint PRIMARY KEY, payload text NOT NULL);
SELECT replkafka.add_table('t', 'id');
CREATE PROCEDURE load(first bigint, last bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN first .. last LOOP
		INSERT INTO t VALUES (i, md5(i::text));
		COMMIT;
		-- paced, so that the crashes hit a running load
		PERFORM pg_sleep(0.001);
	END LOOP;
END $$;
});
$node->safe_psql('postgres', "SELECT replkafka.promote($_)") for 0 .. 7;

# The load runs in the background and is started again after each crash,
# from the first id not committed.
my ($load, $load_out, $load_err);

sub start_load
{
	my $first =
	  $node->safe_psql('postgres', 'SELECT coalesce(max(id), 0) + 1 FROM t');
	return if $first > $target;
	$load = IPC::Run::start(
		[
			'psql', '-X', '-q', '-d', $node->connstr('postgres'),
			'-c', "CALL load($first, $target)"
		],
		'>', \$load_out, '2>', \$load_err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 3));
}

sub shipper_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'replkafka shipper'"
	);
}

sub kill_shipper
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'replkafka shipper'"
	) or die "no shipper";
	my $pid = shipper_pid();
	kill 'KILL', $pid;
	# The postmaster restarts every process after a child's crash.
	ReplkafkaTest::poll_restarting($node,
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'replkafka shipper' AND pid <> $pid"
	) or die "shipper did not come back";
	$load->finish;
	start_load();
}

start_load();
my @events = (
	[ 2000, 'kill' ],
	[ 5000, 'kill' ],
	[ 8000, 'broker' ],
	[ 10000, 'kill' ],
	[ 13000, 'kill' ],
	[ 16000, 'kill' ]);
my $kills = 0;
foreach my $event (@events)
{
	my ($rows, $what) = @$event;
	$node->poll_query_until('postgres', "SELECT count(*) >= $rows FROM t")
	  or die "load stalled below $rows rows";
	if ($what eq 'kill')
	{
		kill_shipper();
		$kills++;
	}
	else
	{
		$kafka->stop_broker(1);
		$kafka->start_broker(1);
	}
}
$load->finish;
is($kills, 5, 'the shipper was killed five times');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'),
	$target, "$target transactions committed");

# Wait until every committed transaction is acknowledged by Kafka: each
# partition's shipped sequence equals its number of rows.
my $shipped = q{
SELECT bool_and(coalesce(s.scn & 4294967295, 0) = c.n)
  FROM (SELECT replkafka.partition_of('t', id) AS p, count(*) AS n
		  FROM t GROUP BY 1) c
  JOIN replkafka.partitions s ON s.partition = c.p
};
ok($node->poll_query_until('postgres', $shipped),
	'every partition shipped all its transactions');

# Read the topic back.
my @txns = ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
is($ReplkafkaTest::Wire::incomplete, 0, 'no incomplete chunk sequence');

my (%ids, %seqs, $bad_gen, $dups, $heartbeats);
$dups = 0;
$bad_gen = 0;
$heartbeats = 0;
foreach my $t (@txns)
{
	if ($t->{type} ne 'TXN')
	{
		# the NEW_GENs, and the HEARTBEAT each restarted shipper writes
		$bad_gen++
		  unless ($t->{type} eq 'NEW_GEN' || $t->{type} eq 'HEARTBEAT')
		  && $t->{generation} == 1
		  && $t->{origin} eq 'node_a';
		$heartbeats++ if $t->{type} eq 'HEARTBEAT';
		next;
	}
	$bad_gen++ unless $t->{generation} == 1 && $t->{origin} eq 'node_a';
	push @{ $seqs{ $t->{partition} } }, $t->{sequence};
	foreach my $c (@{ $t->{changes} })
	{
		$dups++ if $ids{ $c->{new}{id} }++;
	}
}
is($bad_gen, 0, 'every record belongs to generation 1 of node_a');
cmp_ok($heartbeats, '>=', 5 * 8,
	'each shipper started after a kill wrote a HEARTBEAT to each partition');
is($dups, 0, 'no row appears twice in Kafka');

my @table_ids = split /\n/,
  $node->safe_psql('postgres', 'SELECT id FROM t ORDER BY id');
is(scalar(keys %ids), scalar(@table_ids),
	'Kafka holds as many rows as the table');
is(join(',', sort { $a <=> $b } keys %ids),
	join(',', @table_ids), 'Kafka holds exactly the committed rows');

my $dense = 1;
foreach my $p (sort keys %seqs)
{
	my @s = @{ $seqs{$p} };
	for my $i (0 .. $#s)
	{
		if ($s[$i] != $i + 1)
		{
			diag "partition $p: sequence $s[$i] at position " . ($i + 1);
			$dense = 0;
			last;
		}
	}
}
ok($dense, 'each partition\'s sequence numbers are dense from 1');
is(scalar(keys %seqs), 8, 'all 8 partitions were written');

done_testing();
