
# Copyright (c) 2026, replkafka authors

# What the shipper learns from Kafka when it starts shipping a partition
# again (after a restart), with records of others and holes written by
# hand where the race is hard to hit.  Each partition stages one case:
#
# partition 0 (correctness issue, item 1): a losing promoter's NEW_GEN of
#   the primary's generation, with a commit LSN far ahead, lands after the
#   primary's first transactions.  It is not the primary's own record:
#   after a restart, the shipper goes on with the next sequence number and
#   ships every later transaction.
# partition 1 (item 4): another node's NEW_GEN of a newer generation,
#   followed by more records of ours than any fixed window holds.  The
#   shipper reads everything after its checkpoint, finds it, and stops.
# partition 2 (item 5): a transaction of ours is missing from Kafka and
#   the next one is there (a failed delivery followed by a successful
#   one).  The shipper does not take the later one for its last: the
#   partition stops, and the waiting synchronous commit is told it is not
#   part of the cluster's history.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 3, { node_a => [ 0, 1, 2 ] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
my %keys = map { $_ => [ ReplkafkaTest::keys_of_partition($node_a, 'items', $_, 20) ] } 0 .. 2;
my $sync = 'SET replkafka.synchronous_commit = on';

# Rows of partition $p Kafka holds, by id.
sub ids_in_kafka
{
	my ($p) = @_;
	my %ids;
	foreach my $t (ReplkafkaTest::Wire::transactions($kafka->consume('replkafka')))
	{
		next unless $t->{type} eq 'TXN' && $t->{partition} == $p;
		$ids{ $_->{new}{id} }++ foreach @{ $t->{changes} };
	}
	return \%ids;
}

# Sequence number of the last transaction node_a shipped to $p.
sub last_sequence
{
	my ($p) = @_;
	return $node_a->safe_psql('postgres',
		"SELECT scn & 4294967295 FROM replkafka.partitions WHERE partition = $p");
}

foreach my $p (0 .. 2)
{
	$node_a->safe_psql('postgres', "$sync; INSERT INTO items VALUES ($keys{$p}[$_], 'before')")
	  foreach 0 .. 4;
}

# Partition 0: a losing NEW_GEN of generation 1 from node_c, whose commit
# LSN is beyond anything node_a will write.
$kafka->produce('replkafka', 0,
	ReplkafkaTest::Wire::record(
		type => 'NEW_GEN', partition => 0, generation => 1,
		origin => 'node_c', commit_lsn => 2**62));
my $shipper = ReplkafkaTest::stop_shipper($node_a);
$shipper = ReplkafkaTest::restart_stopped_shipper($node_a, $shipper);

my ($stdout, $stderr) = ('', '');
$node_a->psql('postgres', "$sync; INSERT INTO items VALUES ($keys{0}[$_], 'after')",
	stdout => \$stdout, stderr => \$stderr)
  foreach 5 .. 9;
is($stderr, '', 'item 1: synchronous commits after the losing NEW_GEN return without a warning');
my $in_kafka = ids_in_kafka(0);
is(scalar(grep { $in_kafka->{$_} } @{ $keys{0} }[ 0 .. 9 ]), 10,
	'item 1: every synchronously committed row is in Kafka when COMMIT returns');
is((grep { $_ > 1 } values %$in_kafka), 0, 'item 1: none is there twice');
is(last_sequence(0), 10, 'item 1: the shipper went on with sequence 6 after the restart');
ok( $node_b->poll_query_until('postgres', qq{
SELECT count(*) = 10 FROM items WHERE replkafka.partition_of('items', id) = 0}),
	'item 1: the replica applies all ten rows');

# Partition 1: node_c's NEW_GEN of generation 2, then 100 records of
# node_a's generation 1, written while node_a's shipper is stopped; then
# the shipper restarts.
my $seq = last_sequence(1);
$shipper = ReplkafkaTest::stop_shipper($node_a);
$kafka->produce('replkafka', 1,
	ReplkafkaTest::Wire::record(
		type => 'NEW_GEN', partition => 1, generation => 2,
		origin => 'node_c', commit_lsn => 1),
	map {
		ReplkafkaTest::Wire::record(
			partition => 1, generation => 1, sequence => $seq + $_,
			origin => 'node_a', commit_lsn => 1)
	} 1 .. 100);
$shipper = ReplkafkaTest::restart_stopped_shipper($node_a, $shipper);
ok( $node_a->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 1"),
	'item 4: the shipper finds the foreign NEW_GEN 100 records back');
like(
	$node_a->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 1'),
	qr/another node wrote to the partition: Kafka offset \d+ holds a NEW_GEN record of generation 2 from node "node_c"/,
	'item 4: the error names the foreign record');
is($node_a->safe_psql('postgres',
		'SELECT orphaned_transactions FROM replkafka.partitions WHERE partition = 1'),
	'100', 'item 4: the 100 transactions after it are counted as orphaned');
$node_a->psql('postgres', "INSERT INTO items VALUES ($keys{1}[10], 'zombie')",
	stderr => \$stderr);
like($stderr, qr/cannot write to partition 1 on node "node_a"/,
	'item 4: the write fence refuses writes');

# Partition 2: a synchronous commit waits while the shipper is stopped; a
# transaction of node_a with the sequence number after it, and a commit
# LSN after it, reaches Kafka: its own never will.
$seq = last_sequence(2);
$shipper = ReplkafkaTest::stop_shipper($node_a);
my $waiting = ReplkafkaTest::background_psql($node_a,
	"$sync; INSERT INTO items VALUES ($keys{2}[5], 'lost')");
ok(ReplkafkaTest::waits_for_kafka($node_a, "''lost''"),
	'item 5: the synchronous commit waits for Kafka');
my $lsn = $node_a->safe_psql('postgres', "SELECT pg_current_wal_lsn() - '0/0'");
$kafka->produce('replkafka', 2,
	ReplkafkaTest::Wire::record(
		partition => 2, generation => 1, sequence => $seq + 2,
		origin => 'node_a', commit_lsn => $lsn));
$shipper = ReplkafkaTest::restart_stopped_shipper($node_a, $shipper);
$waiting->{h}->finish;
like(${ $waiting->{err} },
	qr/WARNING:  node "node_a" is no longer primary of partition 2.*\nDETAIL:  The transaction has committed locally, but is not part of the cluster's history/s,
	'item 5: the waiting commit is told it is not part of the cluster\'s history');
ok( $node_a->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 2"),
	'item 5: the partition stops');
like(
	$node_a->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 2'),
	qr/Kafka lacks transaction @{[ $seq + 1 ]} of generation 1: the record at Kafka offset \d+ holds a later one/,
	'item 5: the error says which transaction Kafka lacks');

# The partitions that did not stop still ship.
$node_a->safe_psql('postgres', "$sync; INSERT INTO items VALUES ($keys{0}[10], 'last')");
ok(ids_in_kafka(0)->{ $keys{0}[10] }, 'partition 0 still ships');

done_testing();
