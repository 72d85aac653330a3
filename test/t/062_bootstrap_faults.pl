
# Copyright (c) 2026, replkafka authors

# Bootstraps under faults: the source killed in the middle of the copy
# (the copy is rolled back and tried again, from scratch), the target
# killed in the middle (it starts over after the restart), two bootstraps
# of one partition at once, a source with the partition in error, of
# another cluster or with another table definition, and a replica whose
# next record left the log's retention, which rebuilds itself from a peer
# it finds in the directory of nodes.  Every row present once, checksums
# equal.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $schema = q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
};

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);

sub source_of
{
	my ($node) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
}

# Rows enough for a copy to take a while, written before add_table().
$node_a->safe_psql('postgres', q{
SELECT replkafka.create_cluster(2, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
INSERT INTO items SELECT g, repeat('x', 200) FROM generate_series(1, 300000) g;
SELECT replkafka.add_table('items', 'id');
SELECT replkafka.promote(0);
SELECT replkafka.promote(1);
});
foreach my $node ($node_b, $node_c)
{
	$node->safe_psql('postgres', "SELECT replkafka.create_cluster(2, 1); $schema");
}
$node_b->safe_psql('postgres',
	'SELECT replkafka.follow(p, source => $$' . source_of($node_a) . '$$) FROM generate_series(0, 1) p');

# The partition of each key that the test writes.
my %part_of = map { split /:/ } split / /, $node_a->safe_psql('postgres',
	"SELECT string_agg(g || ':' || replkafka.partition_of('items', g), ' ') FROM generate_series(300100, 300200) g");

sub wait_role
{
	my ($node, $p, $role) = @_;
	return $node->poll_query_until('postgres',
		"SELECT role = '$role' FROM replkafka.partitions WHERE partition = $p");
}

sub count_of
{
	my ($node, $p) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM items WHERE replkafka.partition_of('items', id) = $p");
}

# Wait until a bootstrap of p on $node copies rows.
sub wait_copying
{
	my ($node, $p) = @_;
	return $node->poll_query_until('postgres', qq{
SELECT role = 'bootstrapping' AND phase = 'copying' AND records_done > 0
  FROM replkafka.partitions WHERE partition = $p});
}

ok(wait_role($node_b, 0, 'replica') && wait_role($node_b, 1, 'replica'),
	'node_b bootstrapped both partitions from the primary');
$node_a->safe_psql('postgres', "INSERT INTO items VALUES (300001, 'log')");

# The source dies in the middle of the copy.
$node_c->safe_psql('postgres',
	'SELECT replkafka.follow(0, source => $$' . source_of($node_b) . '$$)');
ok(wait_copying($node_c, 0), 'node_c copies partition 0 from node_b');
is( $node_c->safe_psql('postgres', q{
SELECT copied_bytes > 0 AND estimated_bytes > 0 AND records_total > 0
	   AND time_remaining IS NOT NULL AND transition = 'bootstrapping'
  FROM replkafka.partitions WHERE partition = 0}),
	't', 'the view shows the copy\'s rows, bytes and time remaining');
$node_b->stop('immediate');
ok( $node_c->poll_query_until('postgres', q{
SELECT role = 'bootstrapping' AND last_error LIKE 'bootstrap failed: %'
  FROM replkafka.partitions WHERE partition = 0}),
	'the copy fails with the source, and says so');
is(count_of($node_c, 0), '0', 'nothing of the failed copy is left');
$node_b->start;
ok(wait_role($node_c, 0, 'replica'), 'the copy is tried again and completes');
is(count_of($node_c, 0), count_of($node_a, 0), 'every row of partition 0, once');

# The target dies in the middle of the copy.
$node_c->safe_psql('postgres',
	'SELECT replkafka.follow(1, source => $$' . source_of($node_a) . '$$)');
ok(wait_copying($node_c, 1), 'node_c copies partition 1 from node_a');
$node_c->stop('immediate');
$node_a->safe_psql('postgres', "INSERT INTO items VALUES (300002, 'while down')");
my $log_offset = -s $node_c->logfile;
$node_c->start;
ok($node_c->wait_for_log(qr/bootstrapping partition 1 from peer/, $log_offset),
	'after the crash the bootstrap starts over');
ok(wait_role($node_c, 1, 'replica'), 'and completes');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the three nodes converge');
is($node_c->safe_psql('postgres', 'SELECT count(*) FROM items'), '300002',
	'node_c has every row once');

# Two bootstraps of one partition at once: the second waits for the
# first's lock, then finds the partition bootstrapping.
my $node_d = ReplkafkaTest::new_node('node_d', $kafka);
$node_d->safe_psql('postgres', "SELECT replkafka.create_cluster(2, 1); $schema");
my $first = ReplkafkaTest::background_psql($node_d,
	'BEGIN; SELECT replkafka.follow(0, source => $$' . source_of($node_a) . '$$);'
	  . ' SELECT pg_sleep(2); COMMIT;');
$node_d->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()})
  or die 'the first bootstrap did not start';
my ($ret, $stdout, $stderr) = $node_d->psql('postgres',
	'SELECT replkafka.follow(0, source => $$' . source_of($node_b) . '$$)');
$first->{h}->finish;
like($stderr, qr/node "node_d" is already bootstrapping partition 0/,
	'a second bootstrap of the partition is refused');
ok(wait_role($node_d, 0, 'replica'), 'the first completes');
is(count_of($node_d, 0), count_of($node_a, 0), 'with every row once');

# A source of another cluster, and one whose table differs.
my $node_e = ReplkafkaTest::new_node('node_e', $kafka, conf => "replkafka.topic = 'other'");
$node_e->safe_psql('postgres', "SELECT replkafka.create_cluster(2, 1); $schema");
($ret, $stdout, $stderr) = $node_d->psql('postgres',
	'SELECT replkafka.follow(1, source => $$' . source_of($node_e) . '$$)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/ERROR:  55000: peer .* is not a member of this cluster/,
	'a node of another cluster is refused');
like($stderr, qr/through topic "other" with 2 partitions, this node through topic "replkafka"/,
	'naming both topics');
my $node_f = ReplkafkaTest::new_node('node_f', $kafka);
$node_f->safe_psql('postgres', q{
SELECT replkafka.create_cluster(2, 1);
CREATE TABLE items (id int PRIMARY KEY, v varchar(10));
SELECT replkafka.add_table('items', 'id');
SELECT replkafka.follow(1);
});
($ret, $stdout, $stderr) = $node_d->psql('postgres',
	'SELECT replkafka.follow(1, source => $$' . source_of($node_f) . '$$)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/ERROR:  42P16: table "public.items" differs between this node and peer/,
	'a table that differs is refused');
like($stderr, qr/Column "v" is of type character varying\(10\) on the peer and text here/,
	'naming the column and both types');

# A source with a partition in error: node_g's table refuses every row.
my $node_g = ReplkafkaTest::new_node('node_g', $kafka);
$node_g->safe_psql('postgres', q{
SELECT replkafka.create_cluster(2, 1);
CREATE TABLE items (id int PRIMARY KEY CHECK (id < 0), v text);
SELECT replkafka.add_table('items', 'id');
SELECT replkafka.follow(0);
SELECT replkafka.follow(1);
});
ok( $node_g->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM replkafka.partitions WHERE role = 'error'"),
	'node_g has a partition in error');
my $p_err = $node_g->safe_psql('postgres',
	"SELECT min(partition) FROM replkafka.partitions WHERE role = 'error'");
$node_d->safe_psql('postgres', 'SELECT replkafka.unfollow(0); SELECT replkafka.drop_partition(0);');
($ret, $stdout, $stderr) = $node_d->psql('postgres',
	"SELECT replkafka.follow($p_err, source => \$\$" . source_of($node_g) . '$$)');
like($stderr, qr/peer .* has partition $p_err in error/, 'a source in error is refused');
like($stderr, qr/violates check constraint/, 'with its error');

# Retention deletes what node_b has not applied while it is down; with
# auto_rebuild it rebuilds the partition from a peer of the directory.
foreach my $node ($node_a, $node_c)
{
	$node->append_conf('postgresql.conf',
		"replkafka.node_conninfo = '" . source_of($node) . "'");
	$node->reload;
}
$node_b->stop;
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'gone')") foreach 300003 .. 300020;
$node_a->poll_query_until('postgres', q{
SELECT bool_and(scn IS NOT NULL) FROM replkafka.partitions})
  or die 'node_a did not ship';
foreach my $p (0, 1)
{
	my $high = $node_a->safe_psql('postgres',
		"SELECT kafka_offset + 1 FROM replkafka.partitions WHERE partition = $p");
	$kafka->delete_records('replkafka', $p, $high);
}
$node_b->append_conf('postgresql.conf', 'replkafka.auto_rebuild = on');
$log_offset = -s $node_b->logfile;
$node_b->start;
ok( $node_b->wait_for_log(
		qr/Kafka no longer holds offset \d+ of partition 0: rebuilding the partition from a peer/,
		$log_offset),
	'node_b finds its next record of partition 0 gone, and rebuilds the partition');
ok( $node_b->wait_for_log(qr/partition 0 bootstrapped from peer/, $log_offset),
	'from a peer it found in the directory of nodes');
ok( $node_b->poll_query_until('postgres',
		q{SELECT bool_and(role = 'replica') AND count(*) = 2 FROM replkafka.partitions}),
	'node_b is replica of both partitions again');
$node_a->safe_psql('postgres', q{INSERT INTO items VALUES (300021, 'after')});
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'node_b converges with the others');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items'), '300021',
	'with every row once');

# rebuild() without a source finds one too.
$node_c->safe_psql('postgres', 'SELECT replkafka.rebuild(1)');
ok(wait_role($node_c, 1, 'replica'), 'rebuild() without a source completes');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'and the nodes converge');

# A primary that another node replaced while the bootstrap copied it: its
# shipper is stopped while it commits, another node's NEW_GEN lands, then
# the shipper ships those commits after it.  The copy holds transactions
# that are not part of the cluster's history: it must not be used.
my $shipper = ReplkafkaTest::stop_shipper($node_a);
my $gen = $node_a->safe_psql('postgres',
	'SELECT generation FROM replkafka.partitions WHERE partition = 1');
my @p1 = grep { $part_of{$_} == 1 } 300100 .. 300200;
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'orphan')") foreach @p1[0 .. 4];
$kafka->produce('replkafka', 1,
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 1,
		generation => $gen + 1, sequence => 0, origin => 'node_x'));
$node_d->safe_psql('postgres',
	'SELECT replkafka.follow(1, source => $$' . source_of($node_a) . '$$)');
ok( $node_d->poll_query_until('postgres', q{
SELECT phase = 'finding the position' FROM replkafka.partitions WHERE partition = 1}),
	'a bootstrap from node_a waits for its stopped shipper');
kill 'CONT', $shipper;
ok( $node_d->poll_query_until('postgres', q{
SELECT role = 'bootstrapping' AND last_error ~ 'stale|no longer primary'
  FROM replkafka.partitions WHERE partition = 1}),
	'the copy of the stale primary is refused');
is(count_of($node_d, 1), '0', 'and none of its rows is kept');
$node_d->safe_psql('postgres', 'SELECT replkafka.unfollow(1)');

done_testing();
