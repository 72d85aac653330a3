
# Copyright (c) 2026, replkafka authors

# Every way a worker cannot run shows where an operator looks: in
# replkafka.workers (state, restarts, the last error with its SQLSTATE and
# time), in the last_error of the partitions it serves, and promote()
# refuses to start a generation nobody would ship.  Causes: wal_level below
# logical, brokers unreachable, the shipper's slot lost or replaced, the
# topic deleted, authentication refused.
use strict;
use warnings;

use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use Test::More;

# The worker of kind (and index) shows as failing with an error like $re
# and SQLSTATE $state, an error of the last minute.
sub worker_fails
{
	my ($node, $kind, $index, $state, $re, $name) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT state IN ('retrying', 'failed') AND error_sqlstate = '$state'
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
SELECT bool_and(state = 'running') FROM replkafka.workers}),
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
	like($err, qr/cannot promote node "node_w" in partition 0: its shipper is not running/,
		'wal_level: promote() refuses');
	like($err, qr/DETAIL:  The shipper failed at .* with SQLSTATE 55000: logical decoding requires wal_level >= logical/,
		'wal_level: and says why');
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM replkafka.workers WHERE kind = 'apply' AND state = 'running'}),
		'2', 'wal_level: the apply workers run');
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM replkafka.partitions WHERE role = 'primary'}),
		'0', 'wal_level: no partition became primary');
	$node->stop;
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

# Brokers unreachable: a row waits for Kafka.
$kafka->stop_broker(1);
insert_one($node_a);
worker_fails($node_a, 'shipper', 0, '08006', 'Kafka',
	'brokers down: the shipper shows as failing');
partition_shows($node_a, 0, '^shipper failed at .* with SQLSTATE 08006: ',
	'brokers down: and so does its primary partition');
worker_fails($node_b, 'apply', 0, '08006', 'Kafka',
	'brokers down: the apply worker of partition 0 shows as failing');
partition_shows($node_b, 0, '^apply worker 0 failed at .* with SQLSTATE 08006: ',
	'brokers down: and so does the replica partition');
my ($rc, $out, $err) = $node_a->psql('postgres', 'SELECT replkafka.promote(1)');
like($err, qr/its shipper is not running/, 'brokers down: promote() refuses');
$kafka->start_broker(1);
workers_run($node_a, 'brokers back: the workers of node_a run again');
workers_run($node_b, 'brokers back: and those of node_b');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'brokers back: the row that waited replicates');
is($node_a->safe_psql('postgres', q{
SELECT count(*) FROM replkafka.partitions WHERE last_error IS NOT NULL}),
	'0', 'brokers back: no partition shows an error');

# The shipper's slot is lost (a node restored from a file-level backup).
$node_a->stop;
rmtree($node_a->data_dir . '/pg_replslot/replkafka');
$node_a->start;
worker_fails($node_a, 'shipper', 0, '42704',
	'^replication slot "replkafka" of the shipper is missing\. This node is primary of partitions 0:',
	'slot lost: the shipper refuses to start');
partition_shows($node_a, 0, 'SQLSTATE 42704: replication slot "replkafka" of the shipper is missing',
	'slot lost: the primary partition shows it');
is($node_a->safe_psql('postgres',
		q{SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'replkafka'}),
	'0', 'slot lost: the shipper did not create a slot that skips transactions');
($rc, $out, $err) = $node_a->psql('postgres', 'SELECT replkafka.promote(1)');
like($err, qr/its shipper is not running/, 'slot lost: promote() refuses');

# A slot made by hand with another plugin is refused.
$node_a->safe_psql('postgres',
	q{SELECT pg_create_logical_replication_slot('replkafka', 'test_decoding')});
worker_fails($node_a, 'shipper', 0, '55000',
	'^replication slot "replkafka" is not a logical slot of output plugin "replkafka"\. Its output plugin is "test_decoding"\.',
	'slot replaced: a slot of another plugin is refused');
ok($node_a->poll_query_until('postgres',
		q{SELECT true FROM pg_drop_replication_slot('replkafka')}),
	'slot replaced: dropped');

# The administrator accepts the loss: a new slot, and shipping goes on.
$node_a->safe_psql('postgres',
	q{SELECT pg_create_logical_replication_slot('replkafka', 'replkafka')});
workers_run($node_a, 'slot recreated: the shipper runs');
insert_one($node_a);
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'slot recreated: a new row replicates');

# The topic is deleted: nothing recreates it behind the nodes' backs.
$kafka->delete_topic('replkafka');
insert_one($node_a);
worker_fails($node_a, 'shipper', 0, '08006', 'Unknown (topic or )?partition',
	'topic deleted: the shipper shows why it cannot ship');
worker_fails($node_b, 'apply', 0, '08006', 'Unknown (topic or )?partition',
	'topic deleted: and the apply workers why they cannot read');
partition_shows($node_a, 0, '^shipper failed at .* Unknown (topic or )?partition',
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
	worker_fails($node, 'shipper', 0, '08006', 'Authentication failed',
		'auth: the shipper shows the refused authentication');
	worker_fails($node, 'apply', 1, '08006', 'Authentication failed',
		'auth: and the apply workers');
	partition_shows($node, 1, '^apply worker 1 failed at .* Authentication failed',
		'auth: and so do the replica partitions');
	($rc, $out, $err) = $node->psql('postgres', 'SELECT replkafka.promote(0)');
	like($err, qr/its shipper is not running.*\n.*Authentication failed/,
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
