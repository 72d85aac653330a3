
# Copyright (c) 2026, replkafka authors

# Apply workers killed with SIGKILL again and again during a load, and a
# replica restarted: afterwards the replicas equal the primary, and no
# transaction was applied twice (a trigger on the replicas counts every
# application in a table of their own).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $target = 6000;
my $kafka = ReplkafkaTest::Kafka->start();
my @nodes = ReplkafkaTest::new_nodes($kafka, 3,
	conf => "replkafka.apply_workers = 2\nrestart_after_crash = on");
my ($node_a, $node_b, $node_c) = @nodes;

ReplkafkaTest::setup_cluster(\@nodes, 4, { node_a => [ 0 .. 3 ] }, q{
CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL);
SELECT replkafka.add_table('events', 'id');
} . ReplkafkaTest::count_applications_sql('events'));

$node_a->safe_psql(
	'postgres', q{
CREATE PROCEDURE load(last bigint) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. last LOOP
		INSERT INTO events VALUES (i, md5(i::text));
		COMMIT;
		PERFORM pg_sleep(0.001);
	END LOOP;
END $$;
});
my $load = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node_a->connstr('postgres'), '-c', "CALL load($target)" ],
	'>', \my $out, '2>', \my $err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 2));

# Kill an apply worker of node_b whenever node_b has applied some more.
my $kills = 0;
foreach my $rows (500, 1500, 2500, 3500, 4500)
{
	$node_b->poll_query_until('postgres', "SELECT count(*) >= $rows FROM events")
	  or die "node_b stalled below $rows rows";
	my $pid = $node_b->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'replkafka apply worker' ORDER BY random() LIMIT 1"
	);
	next unless $pid;
	note "node_b has $rows rows: SIGKILL apply worker $pid";
	kill 'KILL', $pid;
	$kills++;
	# The postmaster restarts every process after a child's crash.
	ReplkafkaTest::poll_restarting($node_b,
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'replkafka apply worker' AND pid <> $pid"
	) or die "node_b's apply workers did not come back";
	note "node_b's apply workers are back";
	if ($rows == 2500)
	{
		$node_c->restart;
		note "node_c restarted";
	}
}
$load->finish;
is($kills, 5, 'node_b\'s apply workers were killed five times');
is($node_a->safe_psql('postgres', 'SELECT count(*) FROM events'), $target,
	"$target transactions committed on the primary");

ok(ReplkafkaTest::wait_for_convergence(\@nodes, 'events'),
	'the replicas have the same rows as the primary');
foreach my $node ($node_b, $node_c)
{
	is( $node->safe_psql(
			'postgres',
			'SELECT count(*), count(DISTINCT id) FROM applications'),
		"$target|$target",
		$node->name . ' applied every transaction exactly once');
}

done_testing();
