
# Copyright (c) 2026, replkafka authors

# Failover: the primary's postmaster and all its processes are killed
# (SIGKILL) while a client writes with replkafka.synchronous_commit = on.
# promote() on a replica, with no other step, takes over; writes go on
# there; no write whose COMMIT returned is lost.  The old primary, started
# again, finds the newer generation at recovery and puts its partition in
# error instead of shipping anything more.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Writer;
use Test::More;
use Time::HiRes;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);
ReplkafkaTest::setup_cluster([ $node_a, $node_b, $node_c ], 1, { node_a => [0] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

my $sync = 'SET replkafka.synchronous_commit = on';
my $writer_a = ReplkafkaTest::Writer->start($node_a, ids => [ 1 .. 100000 ], sql => $sync);
$writer_a->wait_for_ok(300);

# node_a dies: its postmaster and every child at once.
my $postmaster = $node_a->{_pid};
my @children = grep { /^\d+$/ } split /\s+/, `ps --ppid $postmaster -o pid=`;
$node_a->kill9;
kill 'KILL', @children;
# The machine "reboots": once the processes are gone (or zombies nobody
# reaps), the stale lock files go too.
foreach my $pid ($postmaster, @children)
{
	while (1)
	{
		my $stat = `ps -o stat= -p $pid`;
		last if $stat eq '' || $stat =~ /^Z/;
		Time::HiRes::usleep(10_000);
	}
}
unlink $node_a->data_dir . '/postmaster.pid',
  $node_a->host . '/.s.PGSQL.' . $node_a->port . '.lock';
my %a = $writer_a->finish;
my $acked = scalar keys %{ $a{ok} };
note "node_a's client saw $acked commits before node_a died";

# Failover: promote on a replica, nothing else.
is($node_b->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '2',
	'node_b is promoted while node_a is dead');
my $writer_b = ReplkafkaTest::Writer->start($node_b, ids => [ 200001 .. 200300 ], sql => $sync);
my %b = $writer_b->finish;
is(scalar keys %{ $b{ok} }, 300, 'node_b takes every write');

ok(ReplkafkaTest::wait_for_convergence([ $node_b, $node_c ], 'items'),
	'node_b and node_c converge');
foreach my $node ($node_b, $node_c)
{
	my %rows = map { $_ => 1 } split /\n/,
	  $node->safe_psql('postgres', 'SELECT id FROM items');
	my @lost = grep { !$rows{$_} } keys %{ $a{ok} }, keys %{ $b{ok} };
	is(scalar @lost, 0, $node->name . ' lost no write whose COMMIT returned');
}

# node_a comes back: it still thinks it is primary, but Kafka says no.
$node_a->start;
ok( $node_a->poll_query_until(
		'postgres', "SELECT role = 'error' FROM replkafka.partitions"),
	'the old primary\'s partition goes to error at restart');
like(
	$node_a->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions'),
	qr/another node wrote to the partition: Kafka offset \d+ holds a (NEW_GEN|TXN) record of generation 2 from node "node_b"/,
	'the error says node_b took over');
my ($ret, $stdout, $stderr) = $node_a->psql('postgres',
	"INSERT INTO items VALUES (300001, 'late')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/25006: cannot write to partition 0 on node "node_a"/,
	'the old primary refuses writes');

my $orphans = $node_a->safe_psql('postgres', 'SELECT count(*) FROM items')
  - $node_b->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id < 200000');
note "node_a committed $orphans transactions that never reached Kafka";
ok( $node_a->poll_query_until(
		'postgres', 'SELECT orphaned_transactions FROM replkafka.partitions', $orphans),
	'node_a counts them as not part of the cluster\'s history');

# Back in the cluster: it follows the new primary and converges.
$node_a->safe_psql('postgres', 'SELECT replkafka.unfollow(0)');
$node_a->safe_psql('postgres', 'DELETE FROM replkafka.consumer_checkpoints');
$node_a->safe_psql('postgres', 'DELETE FROM replkafka.producer_checkpoints');
$node_a->safe_psql('postgres', 'SET session_replication_role = replica; TRUNCATE items');
$node_a->safe_psql('postgres', 'SELECT replkafka.follow(0)');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'rebuilt from the log, node_a converges with the others');

# Failing back: node_b hands over, node_a is primary again and ships.
$node_b->safe_psql('postgres', 'SELECT replkafka.demote(0)');
is($node_a->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '3',
	'node_a is primary again, in generation 3');
my $writer_back = ReplkafkaTest::Writer->start($node_a, ids => [ 300001 .. 300100 ], sql => $sync);
my %back = $writer_back->finish;
is(scalar keys %{ $back{ok} }, 100, 'node_a takes writes again');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'and they reach the other nodes');
is($node_c->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id > 300000'),
	'100', 'every one of them');

done_testing();
