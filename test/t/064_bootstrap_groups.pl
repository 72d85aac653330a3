
# Copyright (c) 2026, replkafka authors

# Partitions bootstrapped from the same source are read together: one COPY
# per table for the group, from one snapshot (no filter when the group is
# every partition), with the source primary of some of them and replica
# of the others, under a write load.  A partition of a group that cannot
# come from the source fails alone; one whose bootstrap is cancelled
# (unfollow()) lets the others go on at once without it; a rebuild drops
# the group's rows in one pass.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Writer;
use Test::More;

my $schema = q{
SELECT replkafka.create_cluster(8, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
CREATE TABLE notes (id int PRIMARY KEY, body text);
SELECT replkafka.add_table('items', 'id');
SELECT replkafka.add_table('notes', 'id');
};

my $kafka = ReplkafkaTest::Kafka->start();
# The sources log their statements, to count the copies' reads.
my ($node_a, $node_b) =
  ReplkafkaTest::new_nodes($kafka, 2, conf => "log_statement = 'all'");
# One bootstrap worker: every partition due from a source is in one group.
my $node_c = ReplkafkaTest::new_node('node_c', $kafka,
	conf => 'replkafka.max_bootstraps = 1');
$_->safe_psql('postgres', $schema) for ($node_a, $node_b, $node_c);

my @a_parts = (0 .. 3);
my @b_parts = (4 .. 7);
$node_a->safe_psql('postgres', join '', map { "SELECT replkafka.promote($_);" } @a_parts);
$node_b->safe_psql('postgres', join '', map { "SELECT replkafka.promote($_);" } @b_parts);
$node_a->safe_psql('postgres', join '', map { "SELECT replkafka.follow($_);" } @b_parts);
$node_b->safe_psql('postgres', join '', map { "SELECT replkafka.follow($_);" } @a_parts);

sub keys_of
{
	my ($node, $parts, $count, $from) = @_;
	return map { ReplkafkaTest::keys_of_partition($node, 'items', $_, $count, $from) }
	  @$parts;
}

# Rows in both tables, written by each partition's primary.
foreach my $w ([ $node_a, \@a_parts ], [ $node_b, \@b_parts ])
{
	my ($node, $parts) = @$w;
	my @ids = keys_of($node, $parts, 150);
	$node->safe_psql('postgres',
		join('', map { "INSERT INTO items VALUES ($_, 'first');\n" } @ids)
		  . join('', map { "INSERT INTO notes VALUES ($_, 'n$_');\n" } @ids));
}
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'node_a and node_b hold the eight partitions alike');

sub source_of
{
	my ($node) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
}
my $src_a = source_of($node_a);
my $src_b = source_of($node_b);

sub wait_roles
{
	my ($node, $parts, $role) = @_;
	my $list = join ',', @$parts;
	return $node->poll_query_until('postgres', qq{
SELECT count(*) = @{[ scalar @$parts ]} FROM replkafka.partitions
 WHERE partition IN ($list) AND role = '$role'});
}

# The COPY statements a source logged since $offset.
sub copies_since
{
	my ($node, $offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	return ($log =~ /statement: (COPY \(SELECT .*?\) TO STDOUT)/g);
}

# Partition => md5 of its rows in both tables, on a node.
sub checksums
{
	my ($node) = @_;
	my %sum = split /[|\n]/, $node->safe_psql('postgres', q{
SELECT p, md5(string_agg(r, ',' ORDER BY r)) FROM (
  SELECT replkafka.partition_of('items', id) AS p, 'i' || id || v AS r FROM items
  UNION ALL
  SELECT replkafka.partition_of('notes', id), 'n' || id || body FROM notes) s
 GROUP BY p});
	return \%sum;
}

# 1. node_c follows the eight partitions from node_a, primary of four and
# replica of four, while both primaries write.
my @writers = (
	ReplkafkaTest::Writer->start($node_a, ids => [ keys_of($node_a, \@a_parts, 100, 5000) ],
		pause => 0.002),
	ReplkafkaTest::Writer->start($node_b, ids => [ keys_of($node_b, \@b_parts, 100, 5000) ],
		pause => 0.002));
$_->wait_for_ok(20) for @writers;
my $a_offset = -s $node_a->logfile;
my $c_offset = -s $node_c->logfile;
$node_c->safe_psql('postgres',
	"SELECT replkafka.follow(p, source => '$src_a') FROM generate_series(0, 7) p");
ok(wait_roles($node_c, [ 0 .. 7 ], 'replica'), 'node_c is replica of the eight partitions');
my @copies = copies_since($node_a, $a_offset);
is(scalar @copies, 2, 'node_a was read once per table for all eight');
is(scalar(grep { /key_partition/ } @copies), 0, 'whole, with no filter');
ok( $node_c->wait_for_log(
		qr/partitions 0, 1, 2, 3, 4, 5, 6, 7 bootstrapped from peer/, $c_offset),
	'node_c logs the eight as one bootstrap');
my %done;
foreach my $w (@writers)
{
	my %r = $w->finish;
	$done{$_} = 1 for keys %{ $r{ok} };
}
is(scalar keys %done, 800, 'every write under load committed');
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the three nodes converge');
is($node_c->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id >= 5000'),
	'800', 'with every write made during the copy, once');
is_deeply(checksums($node_c), checksums($node_a), 'both tables alike on node_c and node_a');

# 2. A rebuild of node_b's four partitions from node_b waits for its
# snapshot, behind a transaction open there, while node_b writes three of
# them: node_c's apply workers let go of them as the group gathers.
my $writer_b = ReplkafkaTest::Writer->start($node_b,
	ids => [ keys_of($node_b, [ 4 .. 6 ], 60, 20000) ], pause => 0.002);
$writer_b->wait_for_ok(20);
my $open = ReplkafkaTest::open_transaction($node_b,
	"INSERT INTO items VALUES (90004, 'open')");
$node_c->safe_psql('postgres',
	"SELECT replkafka.rebuild(p, source => '$src_b') FROM generate_series(4, 7) p");
ok( $node_c->poll_query_until('postgres', q{
SELECT count(*) = 4 FROM replkafka.partitions
 WHERE partition BETWEEN 4 AND 7 AND phase = 'taking a snapshot'}),
	'the four wait for one snapshot together');

# Meanwhile, three of node_a's partitions are to be rebuilt from node_a,
# which then gives up partition 2 (demoted, then unfollowed).
$node_c->safe_psql('postgres',
	"SELECT replkafka.rebuild(p, source => '$src_a') FROM generate_series(0, 2) p");
$node_a->safe_psql('postgres', 'SELECT replkafka.demote(2)');
$node_a->safe_psql('postgres', 'SELECT replkafka.unfollow(2)');

# unfollow() of one of the four cancels its group: the other three are
# taken up again at once, after the three from node_a.
$a_offset = -s $node_a->logfile;
my $b_offset = -s $node_b->logfile;
$node_c->safe_psql('postgres', 'SELECT replkafka.unfollow(7)');
ok(wait_roles($node_c, [ 0, 1 ], 'replica'), 'partitions 0 and 1 are rebuilt from node_a');
ok( $node_c->poll_query_until('postgres', q{
SELECT role = 'bootstrapping'
   AND last_error LIKE 'bootstrap failed: peer % is neither primary nor replica of partition 2'
  FROM replkafka.partitions WHERE partition = 2}),
	'partition 2, which node_a no longer holds, fails alone');
@copies = copies_since($node_a, $a_offset);
is_deeply(\@copies, [ grep { /ANY \('\{0,1\}'::pg_catalog\.int4\[\]\)/ } @copies ],
	'node_a was read for partitions 0 and 1 only');
is(scalar @copies, 2, 'once per table');
ok( $node_c->poll_query_until('postgres', q{
SELECT count(*) = 3 FROM replkafka.partitions
 WHERE partition BETWEEN 4 AND 6 AND phase = 'taking a snapshot'}),
	'the three others wait for their snapshot again, without partition 7');
is( $node_c->safe_psql('postgres',
		'SELECT role FROM replkafka.partitions WHERE partition = 7'),
	'offline', 'partition 7 is no longer bootstrapped');

# The open transaction ends: the three are rebuilt from node_b.
ReplkafkaTest::end_open_transaction($node_b, $open);
ok(wait_roles($node_c, [ 4 .. 6 ], 'replica'), 'partitions 4 to 6 are rebuilt from node_b');
my %written = $writer_b->finish;
is(scalar keys %{ $written{ok} }, 180, 'every write of node_b during the rebuild committed');
@copies = copies_since($node_b, $b_offset);
is(scalar @copies, 2, 'node_b was read once per table for the three');
is(scalar(grep { /ANY \('\{4,5,6\}'::pg_catalog\.int4\[\]\)/ } @copies), 2,
	'for partitions 4, 5 and 6');

# Every partition rebuilt holds what node_b holds (replica of 0 and 1,
# primary of 4 to 6); the cancelled rebuild of 7 left its rows as they were.
$node_b->safe_psql('postgres',
	join '', map { "INSERT INTO items VALUES ($_, 'after');\n" } keys_of($node_b, [ 4 .. 7 ], 5, 9000));
ok( $node_c->poll_query_until('postgres',
		"SELECT count(*) = 15 FROM items WHERE v = 'after'"),
	'node_c applies node_b\'s writes to 4, 5 and 6 after the rebuild');
is( $node_c->safe_psql('postgres',
		"SELECT count(*) FROM items WHERE id BETWEEN 20000 AND 120000 AND v = 'node_b'"),
	'180', 'node_c has each of them once');
my $sum_b = checksums($node_b);
my $sum_c = checksums($node_c);
is_deeply([ map { $sum_c->{$_} } 0, 1, 4, 5, 6 ], [ map { $sum_b->{$_} } 0, 1, 4, 5, 6 ],
	'partitions 0, 1, 4, 5 and 6 are alike on node_c and node_b');
is( $node_c->safe_psql('postgres',
		"SELECT count(*) FROM items WHERE replkafka.partition_of('items', id) = 7 AND v <> 'after'"),
	$node_b->safe_psql('postgres',
		"SELECT count(*) FROM items WHERE replkafka.partition_of('items', id) = 7 AND v <> 'after'"),
	'partition 7 keeps the rows it had');
foreach my $node ($node_a, $node_b)
{
	ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name LIKE 'replkafka_bootstrap%'}),
		'no bootstrap slot is left on ' . $node->name);
}

$node_c->stop;
$node_b->stop;
$node_a->stop;
$kafka->stop;
done_testing();
