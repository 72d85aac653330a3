
# Copyright (c) 2026, replkafka authors

# Every way a worker cannot run shows where an operator looks: in
# replkafka.workers (state, restarts, the last error with its SQLSTATE and
# time), in the last_error of the partitions it serves, and promote()
# refuses to start a generation nobody would ship.  Causes: wal_level below
# logical, brokers unreachable, the shipper's slot lost or replaced, the
# topic deleted, authentication refused.  And promote() on a node whose
# shipper is still creating its slot waits for it.
use strict;
use warnings;

use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

# The worker of kind (and index) shows as failing with an error like $re
# and a SQLSTATE matching $state, an error of the last minute.
sub worker_fails
{
	my ($node, $kind, $index, $state, $re, $name) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT failing AND state IN ('retrying', 'failed', 'starting')
   AND error_sqlstate ~ '^($state)\$'
   AND last_error ~ '$re' AND error_time > now() - interval '1 minute'
  FROM replkafka.workers WHERE kind = '$kind' AND index = $index}),
		$name)
	  or diag $node->safe_psql('postgres', 'SELECT * FROM replkafka.workers');
}

# The partition shows the error of the worker that serves it.
sub partition_shows
{
	my ($node, $partition, $re, $name) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT last_error ~ '$re' FROM replkafka.partitions WHERE partition = $partition}),
		$name)
	  or diag $node->safe_psql('postgres', 'SELECT * FROM replkafka.partitions');
}

sub workers_run
{
	my ($node, $name) = @_;
	ok( $node->poll_query_until(
			'postgres', q{
SELECT bool_and(state = 'running' AND NOT failing) FROM replkafka.workers}),
		$name)
	  or diag $node->safe_psql('postgres', 'SELECT * FROM replkafka.workers');
}

# The shipper of a node whose wal_level is below logical cannot decode.
{
	my $kafka = ReplkafkaTest::Kafka->start();
	my $node = ReplkafkaTest::new_node('node_w', $kafka, conf => 'wal_level = replica');
	$node->safe_psql('postgres', 'SELECT replkafka.create_cluster(2, 1)');
	worker_fails($node, 'shipper', 0, '55000',
		'^logical decoding requires wal_level >= logical',
		'wal_level: the shipper shows as failed, with the error and its SQLSTATE');
	ok($node->poll_query_until('postgres',
			q{SELECT restarts > 0 FROM replkafka.workers WHERE kind = 'shipper'}),
		'wal_level: and counts its restarts');
	my ($rc, $out, $err) = $node->psql('postgres', 'SELECT replkafka.promote(0)');
	like($err, qr/could not promote node "node_w" for partition 0: its shipper is failing/,
		'wal_level: promote() refuses');
	like($err, qr/DETAIL:  The shipper failed at .* with SQLSTATE 55000: logical decoding requires wal_level >= logical/,
		'wal_level: and says why');
	ok($node->poll_query_until('postgres', q{
SELECT count(*) = 2 FROM replkafka.workers WHERE kind = 'apply' AND state = 'running'}),
		'wal_level: the apply workers run');
	$node->stop;

	# promote() on a node whose shipper is creating its slot waits for it:
	# the slot's start must come before the new generation's writes.  An
	# open transaction holds the slot's creation.
	my $node_s = ReplkafkaTest::new_node('node_s', $kafka);
	my $holder = ReplkafkaTest::background_psql($node_s,
		'BEGIN; SELECT txid_current(); SELECT pg_sleep(3600);');
	$node_s->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND query LIKE '%pg_sleep(3600)%'})
	  or die 'the holder did not start';
	$node_s->safe_psql('postgres', q{
SELECT replkafka.create_cluster(2, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');});
	my $promote = ReplkafkaTest::background_psql($node_s, q{SELECT replkafka.promote(0, '120s')});
	ok( $node_s->poll_query_until(
			'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE 'SELECT replkafka.promote%' AND wait_event_type = 'Extension'}),
		'slot being created: promote() waits');
	is($node_s->safe_psql('postgres', q{
SELECT role FROM replkafka.partitions WHERE partition = 0}),
		'offline', 'slot being created: and has not started a generation');
	$node_s->safe_psql('postgres', q{
SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3600)%'
   AND pid <> pg_backend_pid()});
	$holder->{h}->finish;
	$promote->{h}->finish;
	is(${ $promote->{out} }, "1\n", 'slot created: then promote() starts generation 1');
	my ($k) = ReplkafkaTest::keys_of_partition($node_s, 'items', 0, 1);
	$node_s->safe_psql('postgres', "INSERT INTO items VALUES ($k, 'first')");
	ok( $node_s->poll_query_until(
			'postgres', q{
SELECT scn & 4294967295 = 1 FROM replkafka.partitions WHERE partition = 0}),
		'slot created: the first write of the generation is shipped');
	$node_s->stop;
	$kafka->stop;
}

# Two nodes on a broker that creates the topics clients ask for, as
# Kafka does by default.
my $kafka = ReplkafkaTest::Kafka->start(auto_create => 1);
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 2,
	{ node_a => [0], node_b => [1] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
my @keys = ReplkafkaTest::keys_of_partition($node_a, 'items', 0, 10);
my $next = 0;

sub insert_one
{
	my ($node) = @_;
	$node->safe_psql('postgres', "INSERT INTO items VALUES ($keys[$next++], 'x')");
}

insert_one($node_a);
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'setup: a row replicates');
workers_run($node_a, 'setup: every worker runs');

# A worker terminated by an administrator is not failing.
my $shipper_pid = $node_a->safe_psql('postgres',
	q{SELECT pid FROM replkafka.workers WHERE kind = 'shipper'});
$node_a->safe_psql('postgres', "SELECT pg_terminate_backend($shipper_pid)");
ok( $node_a->poll_query_until(
		'postgres', qq{
SELECT pid <> $shipper_pid AND state = 'running' AND NOT failing AND error_time IS NULL
   AND restarts = 1
  FROM replkafka.workers WHERE kind = 'shipper'}),
	'terminated: the shipper starts again, and was never failing')
  or diag $node_a->safe_psql('postgres', 'SELECT * FROM replkafka.workers');

# Brokers unreachable: a row waits for Kafka.
$kafka->stop_broker(1);
insert_one($node_a);
worker_fails($node_a, 'shipper', 0, '08006', 'Kafka',
	'brokers down: the shipper shows as failing');
partition_shows($node_a, 0, '^shipper (failed|retrying) at .* with SQLSTATE 08006: ',
	'brokers down: and so does its primary partition');
worker_fails($node_b, 'apply', 0, '08006', 'Kafka',
	'brokers down: the apply worker of partition 0 shows as failing');
partition_shows($node_b, 0, '^apply worker 0 (failed|retrying) at .* with SQLSTATE 08006: ',
	'brokers down: and so does the replica partition');
my ($rc, $out, $err) = $node_a->psql('postgres', 'SELECT replkafka.promote(1)');
like($err, qr/its shipper is failing/, 'brokers down: promote() refuses');
$kafka->start_broker(1);
workers_run($node_a, 'brokers back: the workers of node_a run again');
workers_run($node_b, 'brokers back: and those of node_b');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'brokers back: the row that waited replicates');
is($node_a->safe_psql('postgres', q{
SELECT count(*) FROM replkafka.partitions WHERE last_error IS NOT NULL}),
	'0', 'brokers back: no partition shows an error');

# A commit after more than 5 s of quiet is no stall (the quiet is the
# point here, so the test waits it out).
my $log_pos = -s $node_a->logfile;
$node_a->safe_psql('postgres', 'SELECT pg_sleep(6)');
insert_one($node_a);
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'quiet, then a commit: it replicates');
unlike(slurp_file($node_a->logfile, $log_pos), qr/is retrying/,
	'quiet, then a commit: the shipper did not take the wait for its acknowledgement for a stall');

# The shipper's slot is lost (a node restored from a file-level backup):
# a new slot would skip the transactions the lost one had not shipped, so
# the partitions the node was primary of stop, and the shipper goes on.
$node_a->stop;
rmtree($node_a->data_dir . '/pg_replslot/replkafka');
$node_a->start;
ok( $node_a->poll_query_until(
		'postgres', q{
SELECT role = 'error'
   AND last_error ~ '^replication slot "replkafka" of the shipper was lost'
  FROM replkafka.partitions WHERE partition = 0}),
	'slot lost: the partition the node was primary of is in error');
workers_run($node_a, 'slot lost: the shipper runs again, with a new slot');
($rc, $out, $err) = $node_a->psql('postgres',
	"INSERT INTO items VALUES ($keys[$next], 'x')");
like($err, qr/cannot write to partition 0 on node "node_a"/,
	'slot lost: the partition takes no writes');
is($node_b->safe_psql('postgres', q{SELECT replkafka.promote(0)}), '2',
	'slot lost: another node takes the partition over');
my @keys_b = ReplkafkaTest::keys_of_partition($node_b, 'items', 1, 1);
$node_b->safe_psql('postgres', "INSERT INTO items VALUES ($keys_b[0], 'b')");
ok( $node_a->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM items WHERE id = $keys_b[0]"),
	'slot lost: the node still applies the partitions it follows');

# A slot of another plugin is refused.  The shipper is held before its
# slot (no brokers) while the slot is replaced.
$node_a->append_conf('postgresql.conf', "replkafka.brokers = ''");
$node_a->reload;
ok( $node_a->poll_query_until(
		'postgres', q{SELECT state = 'waiting for cluster' FROM replkafka.workers WHERE kind = 'shipper'}),
	'slot replaced: the shipper waits for brokers');
$node_a->safe_psql('postgres', q{
SELECT pg_drop_replication_slot('replkafka');
SELECT pg_create_logical_replication_slot('replkafka', 'test_decoding');});
$node_a->append_conf('postgresql.conf', "replkafka.brokers = '@{[ $kafka->bootstrap ]}'");
$node_a->reload;
worker_fails($node_a, 'shipper', 0, '55000',
	'^replication slot "replkafka" is not a logical slot of output plugin "replkafka"\. Its output plugin is "test_decoding"\.',
	'slot replaced: a slot of another plugin is refused');
ok($node_a->poll_query_until('postgres',
		q{SELECT true FROM pg_drop_replication_slot('replkafka')}),
	'slot replaced: dropped');
workers_run($node_a, 'slot replaced: the shipper creates its own and runs');

# The topic is deleted: nothing recreates it behind the nodes' backs.
$kafka->delete_topic('replkafka');
my @keys_b1 = ReplkafkaTest::keys_of_partition($node_b, 'items', 0, 1, 100000);
$node_b->safe_psql('postgres', "INSERT INTO items VALUES ($keys_b1[0], 'b')");
worker_fails($node_b, 'shipper', 0, '08006|42704', 'Unknown (topic or )?partition',
	'topic deleted: the shipper shows why it cannot ship');
worker_fails($node_a, 'apply', 1, '08006|42704', 'Unknown (topic or )?partition',
	'topic deleted: and the apply workers why they cannot read');
partition_shows($node_b, 0, '^shipper (failed|retrying) at .* Unknown (topic or )?partition',
	'topic deleted: the primary partition shows it');
my ($listed, $listing) = $kafka->kcat('-L');
ok($listed && $listing =~ /brokers:/ && $listing !~ /topic "replkafka"/,
	'topic deleted: the topic was not created again');
# librdkafka 2.0 may not let go of a consumer of a deleted topic: an apply
# worker would wait for it forever at shutdown (doc/operations.md, Limits).
$node_a->stop('immediate');
$node_b->stop('immediate');
$kafka->stop;

# Authentication refused: a node's password is changed to a wrong one.
{
	my %users = (node_c => 'node_c-' . join('', map { ('a' .. 'z')[ rand 26 ] } 1 .. 16));
	my $secure = ReplkafkaTest::Kafka->start(secure => \%users);
	$secure->grant_node('node_c');
	my $options = $secure->client_options('node_c');
	my $node = ReplkafkaTest::new_node('node_c', $secure,
		conf => "replkafka.kafka_options = '$options'");
	$node->safe_psql('postgres', q{
SELECT replkafka.create_cluster(2, 1);
SELECT replkafka.follow(0);
SELECT replkafka.follow(1);});
	workers_run($node, 'auth: the workers run with the right password');

	(my $wrong = $options) =~ s/sasl\.password=[^,]*/sasl.password=wrong/;
	$node->append_conf('postgresql.conf', "replkafka.kafka_options = '$wrong'");
	$node->reload;
	worker_fails($node, 'shipper', 0, '28000|08006', 'Authentication failed',
		'auth: the shipper shows the refused authentication');
	worker_fails($node, 'apply', 1, '28000', 'Authentication failed',
		'auth: and the apply workers, with SQLSTATE 28000');
	partition_shows($node, 1, '^apply worker 1 (failed|retrying) at .* Authentication failed',
		'auth: and so do the replica partitions');
	($rc, $out, $err) = $node->psql('postgres', 'SELECT replkafka.promote(0)');
	like($err, qr/its shipper is failing.*\n.*Authentication failed/,
		'auth: promote() refuses, saying why');

	$node->append_conf('postgresql.conf', "replkafka.kafka_options = '$options'");
	$node->reload;
	workers_run($node, 'auth: the workers run again with the right password');
	is($node->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '1',
		'auth: then promote() succeeds');
	$node->stop;
	$secure->stop;
}

done_testing();
