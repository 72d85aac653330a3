
# Copyright (c) 2026, replkafka authors

# The smaller cases of the correctness issue (item 10).
#
# partition 0: a generation's sequence numbers never wrap.  The shipper
#   resumes after a transaction with a sequence number near 2^32; those
#   that committed before are shipped up to sequence 2^32 - 1, and the
#   partition stops before the next one would wrap to 0.  Then, as a
#   stale former primary, it cannot follow() or promote() from its old
#   consumer checkpoint: its rows include its own writes.
# partition 1: near the limit, the write fence refuses new transactions at
#   once; demote() and promote() start a new generation.
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
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 2, { node_a => [ 0, 1 ] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
my %keys = map { $_ => [ ReplkafkaTest::keys_of_partition($node_a, 'items', $_, 40) ] } 0 .. 1;
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($keys{$_}[0], 'first')") foreach 0 .. 1;

# Sequence numbers near 2^32 are out of reach of a test: Kafka gets a
# transaction of node_a with sequence 2^32 - 16, written by hand, and
# node_a's producer checkpoint is moved to it, while the shipper is
# stopped; the shipper then resumes from there.
my $last = 2**32 - 1;

sub jump_near_the_limit
{
	my ($p) = @_;
	$kafka->produce('replkafka', $p,
		ReplkafkaTest::Wire::record(
			partition => $p, generation => 1, sequence => $last - 15,
			origin => 'node_a', commit_lsn => 1));
	my ($record) = grep { $_->{partition} == $p && $_->{sequence} == $last - 15 }
	  ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
	$node_a->safe_psql('postgres', qq{
UPDATE replkafka.producer_checkpoints
   SET scn = (1::bigint << 32) | ($last - 15), commit_lsn = '0/1',
	   kafka_offset = $record->{offset}
 WHERE partition = $p});
}

# Partition 0: 20 transactions commit while the shipper is stopped.
ok($node_a->poll_query_until('postgres', q{
SELECT bool_and(scn & 4294967295 = 1) FROM replkafka.producer_checkpoints}),
	'the first transactions are shipped');
my $shipper = ReplkafkaTest::stop_shipper($node_a);
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($keys{0}[$_], 'late')") foreach 1 .. 20;
jump_near_the_limit(0);
$shipper = ReplkafkaTest::restart_stopped_shipper($node_a, $shipper);
ok($node_a->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'item 10: the partition stops before its sequence numbers wrap');
like($node_a->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 0'),
	qr/generation 1 of the partition has used up its transaction sequence numbers/,
	'item 10: and says why');
my @seqs = map { $_->{sequence} }
  grep { $_->{type} eq 'TXN' && $_->{partition} == 0 }
  ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
is($seqs[-1], $last, 'item 10: the last transaction shipped has sequence 2^32 - 1');
is(scalar(grep { $_ == 0 || $_ > $last } @seqs), 0, 'item 10: no sequence number wrapped');
is(scalar(@seqs), 1 + 1 + 15, 'item 10: 15 of the 20 late transactions were shipped');
is($node_a->safe_psql('postgres', 'SELECT orphaned_transactions FROM replkafka.partitions WHERE partition = 0'),
	'5', 'item 10: the 5 others are counted as orphaned');
my ($ret, $stdout, $stderr) = $node_a->psql('postgres', "INSERT INTO items VALUES ($keys{0}[30], 'refused')");
like($stderr, qr/cannot write to partition 0 on node "node_a"/, 'item 10: new writes are refused');

# Partition 1: near the limit, the fence refuses new transactions at once.
$shipper = ReplkafkaTest::stop_shipper($node_a);
jump_near_the_limit(1);
$shipper = ReplkafkaTest::restart_stopped_shipper($node_a, $shipper);
ok($node_a->poll_query_until('postgres', qq{
SELECT scn & 4294967295 = $last - 15 FROM replkafka.partitions WHERE partition = 1}),
	'the shipper resumes partition 1 after the transaction near the limit');
($ret, $stdout, $stderr) = $node_a->psql('postgres', "INSERT INTO items VALUES ($keys{1}[1], 'refused')");
like($stderr,
	qr/ERROR:  cannot write to partition 1 on node "node_a"\nDETAIL:  Generation 1 of partition 1 has used up its transaction sequence numbers/,
	'item 10: near the limit, the fence refuses new transactions');
is($node_a->safe_psql('postgres', 'SELECT role FROM replkafka.partitions WHERE partition = 1'),
	'primary', 'the partition is still primary');

# A new generation starts the count again, at once: the fence takes writes
# while the shipper (stopped) has not looked at the new generation yet.
# The apply worker that read the NEW_GEN moved the partition to
# generation 2 before promote() changed its role.
$node_a->safe_psql('postgres', 'SELECT replkafka.demote(1)');
$shipper = ReplkafkaTest::stop_shipper($node_a);
is($node_a->safe_psql('postgres', 'SELECT replkafka.promote(1)'), '2',
	'item 10: demote() and promote() start generation 2');
is($node_a->safe_psql('postgres', 'SELECT scn >> 32 FROM replkafka.partitions WHERE partition = 1'),
	'2', 'the view shows no transaction of generation 1 as shipped in generation 2');
($ret, $stdout, $stderr) = $node_a->psql('postgres',
	"INSERT INTO items VALUES ($keys{1}[2], 'new generation')");
is($stderr, '', 'item 10: generation 2 takes writes before the shipper looks at it');
$shipper = ReplkafkaTest::restart_stopped_shipper($node_a, $shipper);
ok($node_a->poll_query_until('postgres', q{
SELECT scn = (2::bigint << 32) | 1 FROM replkafka.partitions WHERE partition = 1}),
	'item 10: and the partition takes writes again, from sequence 1');

# Partition 0: node_a is a stale former primary (in error).  follow() from
# its old checkpoint is refused; so is promote() once it is offline.
$node_a->safe_psql('postgres', 'SELECT replkafka.unfollow(0)');
($ret, $stdout, $stderr) = $node_a->psql('postgres', 'SELECT replkafka.follow(0)');
like($stderr,
	qr/node "node_a" was primary of partition 0 in generation 1 after the last transaction it applied/,
	'item 10: follow() on a stale former primary demands a rebuild');
($ret, $stdout, $stderr) = $node_a->psql('postgres', 'SELECT replkafka.promote(0)');
like($stderr,
	qr/node "node_a" was primary of partition 0 in generation 1 after the last transaction it applied/,
	'item 10: so does promote()');
is($node_a->safe_psql('postgres', 'SELECT role FROM replkafka.partitions WHERE partition = 0'),
	'offline', 'the partition stays offline');

# After the rebuild doc/operations.md describes, it may follow again.
($ret, $stdout, $stderr) = $node_a->psql('postgres', q{
DELETE FROM replkafka.consumer_checkpoints WHERE partition = 0;
DELETE FROM replkafka.producer_checkpoints WHERE partition = 0;
SET session_replication_role = replica;
DELETE FROM items WHERE replkafka.partition_of('items', id) = 0;
RESET session_replication_role;
SELECT replkafka.follow(0);
});
is($stderr, '', 'after a rebuild, follow() is accepted');

done_testing();
