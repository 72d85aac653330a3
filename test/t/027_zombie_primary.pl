
# Copyright (c) 2026, replkafka authors

# A stalled primary (SIGSTOP) with writes in flight; a replica is promoted
# and takes writes; the old primary continues (SIGCONT).  None of its late
# writes appears on any other node, and its partition goes to error with a
# message saying why; its write fence refuses further writes.
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
$node_a->safe_psql('postgres', q{
CREATE PROCEDURE load() LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 100000 LOOP
		INSERT INTO items VALUES (i, 'from node_a');
		COMMIT;
		PERFORM pg_sleep(0.01);
	END LOOP;
END $$;
});

# node_a writes continuously.
my $load = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node_a->connstr('postgres'), '-c', 'CALL load()' ],
	'>', \my $out, '2>', \my $err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 2));
$node_c->poll_query_until('postgres', 'SELECT count(*) >= 20 FROM items')
  or die "node_c does not apply";

# node_a stalls, with its writes in flight.
my $postmaster = $node_a->safe_psql('postgres', 'SELECT pg_postmaster_start_time() IS NOT NULL')
  && $node_a->{_pid};
my @pids = ($postmaster, split /\s+/, `ps --ppid $postmaster -o pid=`);
@pids = grep { /^\d+$/ } @pids;
kill 'STOP', @pids;

# node_b takes over and writes.
is($node_b->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '2',
	'node_b is promoted while node_a is stalled');
$node_b->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'from node_b')")
  foreach 200001 .. 200010;
my $applied_before = $node_b->safe_psql('postgres',
	"SELECT count(*) FROM items WHERE v = 'from node_a'");

# node_a wakes up and goes on writing until its fence stops it.
kill 'CONT', @pids;
ok( $node_a->poll_query_until(
		'postgres', "SELECT role = 'error' FROM replkafka.partitions"),
	'the old primary\'s partition goes to error');
like(
	$node_a->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions'),
	qr/another node wrote to the partition: Kafka offset \d+ holds a (NEW_GEN|TXN) record of generation 2 from node "node_b"/,
	'the error says another node took over');
$load->finish;
like($err, qr/cannot write to partition 0 on node "node_a"/,
	'the fence stops the old primary\'s writes');

my $late = $node_a->safe_psql('postgres', "SELECT count(*) FROM items WHERE v = 'from node_a'")
  - $applied_before;
note "node_a committed $late transactions locally after node_b took over";
ok( $node_a->poll_query_until(
		'postgres', 'SELECT orphaned_transactions FROM replkafka.partitions', $late),
	'node_a counts them as not part of the cluster\'s history');

ok(ReplkafkaTest::wait_for_convergence([ $node_b, $node_c ], 'items'),
	'node_b and node_c hold the same rows');
is($node_c->safe_psql('postgres', "SELECT count(*) FROM items WHERE v = 'from node_a'"),
	$applied_before, 'none of node_a\'s late writes is applied on node_c');
is($node_c->safe_psql('postgres', "SELECT count(*) FROM items WHERE v = 'from node_b'"),
	'10', 'node_b\'s writes are');
cmp_ok($node_c->safe_psql('postgres', 'SELECT zombies_skipped FROM replkafka.partitions'),
	'>=', $late > 0 ? 1 : 0, 'node_c counted the zombie writes it skipped');

done_testing();
