
# Copyright (c) 2026, replkafka authors

# Bootstrapping a partition from a peer: follow(p, source) copies the
# partition's rows from a snapshot of a replica or of a primary (under a
# write load) and applies the log from where that snapshot stands, with no
# row lost or applied twice; rebuild() replaces a replica's copy, which
# brings rows written before add_table() to the replicas; drop_partition()
# deletes a copy without shipping the deletes; unfollow() stops a
# bootstrap; and a bad source gets a clear error.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Writer;
use Test::More;

# An enum: a type of the user's, copied in text.
my $schema = q{
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE items (id int PRIMARY KEY, v text, n numeric, tags text[], m mood);
SELECT replkafka.add_table('items', 'id');
};

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);

# node_a has rows before the table is replicated: the log never carries them.
$node_a->safe_psql('postgres', q{
SELECT replkafka.create_cluster(2, 1);
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE items (id int PRIMARY KEY, v text, n numeric, tags text[], m mood);
INSERT INTO items SELECT g, 'old' || g, g / 7.0, ARRAY['t' || g], 'busy' FROM generate_series(1, 500) g;
SELECT replkafka.add_table('items', 'id');
SELECT replkafka.promote(0);
SELECT replkafka.promote(1);
});
$node_b->safe_psql('postgres', "SELECT replkafka.create_cluster(2, 1); $schema");
$node_b->safe_psql('postgres', 'SELECT replkafka.follow(0); SELECT replkafka.follow(1);');
$node_c->safe_psql('postgres', "SELECT replkafka.create_cluster(2, 1); $schema");

$node_a->safe_psql('postgres',
	join('', map { "INSERT INTO items VALUES ($_, 'new$_', $_);\n" } 501 .. 600));
ok( $node_b->poll_query_until('postgres', 'SELECT count(*) = 100 FROM items'),
	'node_b applied the rows of the log, and only those');

sub role_of
{
	my ($node, $p) = @_;
	return $node->safe_psql('postgres',
		"SELECT role FROM replkafka.partitions WHERE partition = $p");
}

sub wait_role
{
	my ($node, $p, $role) = @_;
	return $node->poll_query_until('postgres',
		"SELECT role = '$role' FROM replkafka.partitions WHERE partition = $p");
}

# Rows of a partition per node, for the checks below.
sub count_of
{
	my ($node, $p) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM items WHERE replkafka.partition_of('items', id) = $p");
}

# A node's connection string, as a source.
sub source_of
{
	my ($node) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
}
my $src_a = source_of($node_a);
my $src_b = source_of($node_b);

# rebuild() from the primary, while it writes: node_b gets the old rows.
my $writer = ReplkafkaTest::Writer->start($node_a, ids => [ 601 .. 1400 ], pause => 0.002);
$writer->wait_for_ok(50);
$node_b->safe_psql('postgres',
	"SELECT replkafka.rebuild(0, source => '$src_a'); SELECT replkafka.rebuild(1, source => '$src_a')");
ok(wait_role($node_b, 0, 'replica') && wait_role($node_b, 1, 'replica'),
	'rebuild from the primary under load: node_b is replica again');

# follow() from a replica (partition 0) and from the primary (partition 1).
$writer->wait_for_ok(300);
$node_c->safe_psql('postgres', "SELECT replkafka.follow(0, source => '$src_b')");
$node_c->safe_psql('postgres', "SELECT replkafka.follow(1, source => '$src_a')");
ok(wait_role($node_c, 0, 'replica') && wait_role($node_c, 1, 'replica'),
	'follow from a replica and from the primary: node_c is replica of both');
my %done = $writer->finish;
is(scalar keys %{ $done{ok} }, 800, 'every write under load committed');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the three nodes converge: same SCNs, same rows per partition');
is($node_c->safe_psql('postgres', 'SELECT count(*) FROM items'), '1400',
	'node_c has every row, those older than add_table() included');
is($node_c->safe_psql('postgres', "SELECT n, tags, m FROM items WHERE id = 7"),
	'1.00000000000000000000|{t7}|busy', 'values of every type copied whole, an enum included');

is( $node_c->safe_psql('postgres', q{
SELECT count(*) FROM replkafka.partitions WHERE scn IS NULL OR kafka_offset IS NULL}),
	'0', 'node_c has a checkpoint of each partition');
is( $node_a->safe_psql('postgres', q{
SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'replkafka_bootstrap%'}),
	'0', 'the temporary slots of the bootstraps are gone');

# Bad calls.
my ($ret, $stdout, $stderr) =
  $node_c->psql('postgres', "SELECT replkafka.follow(0, source => '$src_b')");
like($stderr, qr/node "node_c" is already replica of partition 0/,
	'follow() of a partition the node applies fails');
$node_c->safe_psql('postgres', 'SELECT replkafka.unfollow(0)');
($ret, $stdout, $stderr) =
  $node_c->psql('postgres', "SELECT replkafka.follow(0, source => '$src_b')");
like($stderr, qr/node "node_c" has rows of partition 0/, 'follow() into rows fails');
like($stderr, qr/replkafka\.drop_partition\(0\)/, 'and says how to drop them');
($ret, $stdout, $stderr) = $node_c->psql('postgres',
	"SELECT replkafka.rebuild(0, source => '" . source_of($node_c) . "')");
like($stderr, qr/is this node/, 'a node cannot bootstrap from itself');
($ret, $stdout, $stderr) =
  $node_c->psql('postgres', "SELECT replkafka.rebuild(0, source => 'host=127.0.0.1 port=1')");
like($stderr, qr/could not connect to peer host=127\.0\.0\.1 port=1/,
	'an unreachable source fails at once');

# drop_partition() refuses while a table that is not replicated refers to
# the rows, deletes a copy it no longer holds, and ships nothing.
$node_c->safe_psql('postgres', 'CREATE TABLE notes (item int REFERENCES items)');
($ret, $stdout, $stderr) = $node_c->psql('postgres', 'SELECT replkafka.drop_partition(0)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/ERROR:  23503: table notes references replicated table items/,
	'drop_partition() refuses to leave a foreign key dangling');
$node_c->safe_psql('postgres', 'DROP TABLE notes');
my $before = count_of($node_a, 0);
is($node_c->safe_psql('postgres', 'SELECT replkafka.drop_partition(0)'),
	$before, 'drop_partition() deletes every row of the partition');
is(count_of($node_c, 0), '0', 'none is left');
is(count_of($node_c, 1), count_of($node_a, 1), 'the other partition keeps its rows');
$node_a->safe_psql('postgres', 'INSERT INTO items VALUES (5000, $$after$$)');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'the deletes were not shipped: node_a and node_b still agree');
is(count_of($node_a, 0), $before + (0 + $node_a->safe_psql('postgres',
	"SELECT replkafka.partition_of('items', 5000) = 0")), 'node_a lost no row');
($ret, $stdout, $stderr) = $node_c->psql('postgres', 'SELECT replkafka.drop_partition(1)');
like($stderr, qr/node "node_c" is replica of partition 1/,
	'drop_partition() of a partition the node holds fails');

# unfollow() stops a bootstrap that waits: the primary's snapshot waits
# for a transaction open there.
my $open = ReplkafkaTest::open_transaction($node_a,
	"INSERT INTO items VALUES (6000, 'open')");
$node_c->safe_psql('postgres', "SELECT replkafka.follow(0, source => '$src_a')");
ok( $node_c->poll_query_until('postgres', q{
SELECT role = 'bootstrapping' AND transition = 'bootstrapping' AND phase = 'taking a snapshot'
  FROM replkafka.partitions WHERE partition = 0}),
	'the bootstrap shows as waiting for its snapshot');
$node_c->safe_psql('postgres', 'SELECT replkafka.unfollow(0)');
is(role_of($node_c, 0), 'offline', 'unfollow() stops the bootstrap');
ok($node_a->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name LIKE 'replkafka_bootstrap%'}),
	'its slot on the source goes');
is( $node_a->safe_psql('postgres', q{
SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND state = 'active'
   AND pid <> pg_backend_pid()}),
	'1', 'while the transaction it waited for is still open');
ReplkafkaTest::end_open_transaction($node_a, $open);
$node_a->safe_psql('postgres', 'INSERT INTO items VALUES (6001, $$later$$)');
is(count_of($node_c, 0), '0', 'the stopped bootstrap left no row behind');

# After it, the same partition bootstraps cleanly.
$node_c->safe_psql('postgres', "SELECT replkafka.follow(0, source => '$src_a')");
ok(wait_role($node_c, 0, 'replica'), 'follow() again: node_c is replica');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'and the three nodes converge');

# The bootstrap workers show in replkafka.workers.
is( $node_c->safe_psql('postgres',
		q{SELECT count(*) FROM replkafka.workers WHERE kind = 'bootstrap' AND state = 'running'}),
	'2', 'two bootstrap workers run');

done_testing();
