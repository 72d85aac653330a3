
# Copyright (c) 2026, replkafka authors

# Remote replicas: MirrorMaker 2 copies the topic of cluster A to cluster B
# (as "source.replkafka"), and nodes attached to B replicate from the copy.
# The copy's records are the same, at offsets of its own: a remote node's
# checkpoints hold B's offsets and the same SCNs as A's replicas, and a
# record B holds after a record A lacks sits at another offset.  A
# promotion in B is a failover to B (cluster A lost): it starts a
# generation that A never sees, and what A's primary still writes reaches B
# as zombies that B's nodes skip.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka_a = ReplkafkaTest::Kafka->start();
my $kafka_b = ReplkafkaTest::Kafka->start();
my $schema = q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
};

# Cluster A: node_a primary of 0, node_b of 1, each a replica of the other.
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka_a, 2);
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 2,
	{ node_a => [0], node_b => [1] }, $schema);
my @keys0 = ReplkafkaTest::keys_of_partition($node_a, 'items', 0, 60);
my @keys1 = ReplkafkaTest::keys_of_partition($node_a, 'items', 1, 20);
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'a')") foreach @keys0[ 0 .. 19 ];
$node_b->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'b')") foreach @keys1[ 0 .. 9 ];

# MirrorMaker 2, and two nodes on cluster B following the copy.
my $mirror = $kafka_a->mirror($kafka_b, 'replkafka');
my @remote = map {
	ReplkafkaTest::new_node($_, $kafka_b, conf => "replkafka.topic = 'source.replkafka'")
} qw(node_r node_s);
foreach my $node (@remote)
{
	$node->safe_psql('postgres', "SELECT replkafka.create_cluster(2, 1); $schema");
	$node->safe_psql('postgres', 'SELECT replkafka.follow(0); SELECT replkafka.follow(1);');
}
$node_b->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'b')") foreach @keys1[ 10 .. 19 ];
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, @remote ], 'items'),
	'the remote nodes have the same rows and SCNs as cluster A');

# The copy: same records, offsets of cluster B.
my %offsets_b = map { $_->{partition} . ':' . $_->{offset} => $_ }
  $kafka_b->consume('source.replkafka');
foreach my $node ($node_b, $remote[0])
{
	my ($scn, $offset) = split /\|/, $node->safe_psql('postgres',
		'SELECT scn, kafka_offset FROM replkafka.consumer_checkpoints WHERE partition = 0');
	$node->{ckpt} = { scn => $scn, offset => $offset };
}
is($remote[0]{ckpt}{scn}, $node_b->{ckpt}{scn},
	'a remote replica checkpoints the same SCN as a replica in cluster A');
my $record = $offsets_b{"0:$remote[0]{ckpt}{offset}"};
ok($record && ReplkafkaTest::Wire::header($record->{payload})->{scn} == $remote[0]{ckpt}{scn},
	'its checkpoint offset is the offset of that transaction in cluster B');

# Failover to cluster B: node_r becomes primary of partition 0 there.
is($remote[0]->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '2',
	'a remote node is promoted in cluster B');
# Cluster A goes on without knowing: its primary's writes reach B late.
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'a late')") foreach @keys0[ 20 .. 29 ];
$remote[0]->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'r')") foreach @keys0[ 30 .. 39 ];
ok( $remote[1]->poll_query_until(
		'postgres', q{
SELECT zombies_skipped >= 10 FROM replkafka.partitions WHERE partition = 0}),
	'the old primary\'s writes copied after the NEW_GEN are zombies in cluster B');
ok(ReplkafkaTest::wait_for_convergence(\@remote, 'items'),
	'the remote nodes converge on the new primary\'s history');
is($remote[1]->safe_psql('postgres', q{SELECT count(*) FROM items WHERE v = 'a late'}),
	'0', 'without the zombies');

# The same record at other offsets: B holds node_r's NEW_GEN that A lacks.
sub offset_of
{
	my ($kafka, $topic, $scn) = @_;
	foreach my $r ($kafka->consume($topic))
	{
		next unless $r->{partition} == 0;
		my $h = ReplkafkaTest::Wire::header($r->{payload});
		return $r->{offset} if $h->{type} eq 'TXN' && $h->{scn} == $scn;
	}
	return undef;
}
my $late = (1 << 32) + 21;
my ($in_a, $in_b) = (offset_of($kafka_a, 'replkafka', $late),
	offset_of($kafka_b, 'source.replkafka', $late));
ok(defined $in_a && defined $in_b && $in_b > $in_a,
	'the old primary\'s transaction 21 is at another offset in cluster B')
  or diag "offsets: A " . ($in_a // 'none') . ", B " . ($in_b // 'none');
is($remote[0]->safe_psql('postgres',
		q{SELECT role || ' ' || coalesce(last_error, '') FROM replkafka.partitions WHERE partition = 0}),
	'primary ', 'the new primary ships on, undisturbed by the zombies');
is($node_a->safe_psql('postgres', q{SELECT count(*) FROM items WHERE v = 'r'}),
	'0', 'cluster A never sees generation 2: the mirror is one-way');

$mirror->stop;
$_->stop foreach ($node_a, $node_b, @remote);
done_testing();
