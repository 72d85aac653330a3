
# Copyright (c) 2026, replkafka authors

# Records that are not the current leader's, landing between the chunks of
# its transaction, and the end of a generation.  The log is written by
# hand: node_x leads each partition; node_y is a losing promoter and a
# zombie.  node_a follows.
#
# partition 0 (correctness issue, item 2): between the four chunks of
#   node_x's transaction 1 land a losing NEW_GEN, a whole zombie
#   transaction, a HEARTBEAT and the first chunk of a chunked zombie
#   transaction, all from node_y.  None of them interrupts the
#   reassembly: the transaction is applied whole, and so is the next one.
# partition 1 (item 2): node_x's END_GEN says its generation ended after
#   transaction 3, but the log holds only 1 and 2: the replica stops and
#   says transactions are missing.
# partition 2 (item 6): after node_x's END_GEN, a transaction of node_x's
#   ended generation is skipped, even by a worker that restarted between
#   the two (the end of the generation is kept in the checkpoint).
# partition 0 again (item 8): node_x's transaction 3 inserts a row whose
#   key belongs to partition 1: the replica refuses to write it there.
# partition 3: chunks copied twice, as by a mirror that copies at least
#   once and starts again from an earlier record (MirrorMaker 2 after a
#   restart): some chunks of a transaction again in the middle of it; then
#   the next transaction, and the whole first one again.  Each is applied
#   once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my $node = ReplkafkaTest::new_node('node_a', $kafka);
$node->safe_psql('postgres', q{
SELECT replkafka.create_cluster(4, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
my %keys = map { $_ => [ ReplkafkaTest::keys_of_partition($node, 'items', $_, 40) ] } 0 .. 3;
my @columns = ([ 'id', 'integer', 1 ], [ 'v', 'text', 0 ]);

# The body of a transaction inserting ids with value $v.
sub body
{
	my ($v, @ids) = @_;
	return join '', map { ReplkafkaTest::Wire::insert_body('public', 'items', \@columns, [ $_, $v ]) } @ids;
}

# A transaction of $origin as records of at most $size body bytes.
sub chunks
{
	my ($p, $origin, $seq, $size, $body) = @_;
	my @pieces = unpack("(a$size)*", $body);
	return map {
		ReplkafkaTest::Wire::record(
			partition => $p, generation => 1, sequence => $seq,
			origin => $origin, xid => 1000 + $seq, chunk => $_,
			last => $_ == $#pieces ? 1 : 0, body => $pieces[$_])
	} 0 .. $#pieces;
}

sub new_gen
{
	my ($p, $origin) = @_;
	return ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => $p,
		generation => 1, origin => $origin);
}

sub state
{
	my ($p) = @_;
	return $node->safe_psql('postgres',
		"SELECT role || ' ' || (scn & 4294967295) || ' ' || zombies_skipped || ' ' || coalesce(last_error, '')"
		  . " FROM replkafka.partitions WHERE partition = $p");
}

sub rows
{
	my ($p, $v) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM items WHERE replkafka.partition_of('items', id) = $p AND v = '$v'");
}

# Partition 0.
my @leader = chunks(0, 'node_x', 1, 60, body('leader', @{ $keys{0} }[ 0 .. 9 ]));
cmp_ok(scalar @leader, '>=', 4, 'the leader\'s transaction has at least four chunks');
my @zombie = chunks(0, 'node_y', 9, 60, body('zombie', @{ $keys{0} }[ 20 .. 29 ]));
$kafka->produce('replkafka', 0,
	new_gen(0, 'node_x'),
	$leader[0],
	new_gen(0, 'node_y'),
	$leader[1],
	chunks(0, 'node_y', 7, 100000, body('zombie', $keys{0}[30])),
	$leader[2],
	ReplkafkaTest::Wire::record(type => 'HEARTBEAT', partition => 0,
		generation => 1, sequence => 7, origin => 'node_y'),
	$zombie[0],
	@leader[ 3 .. $#leader ],
	chunks(0, 'node_x', 2, 100000, body('next', $keys{0}[10])));
$node->safe_psql('postgres', 'SELECT replkafka.follow(0)');
ok($node->poll_query_until('postgres',
		"SELECT (scn & 4294967295) = 2 OR role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'partition 0 is read');
like(state(0), qr/^replica 2 \d+ $/, 'item 2: the replica applied transactions 1 and 2, without error');
is(rows(0, 'leader'), '10', 'item 2: the interrupted-looking transaction was applied whole');
is(rows(0, 'next'), '1', 'item 2: and the one after it');
is(rows(0, 'zombie'), '0', 'item 2: no zombie row was applied');
cmp_ok((split / /, state(0))[2], '>=', 2, 'item 2: the zombie transactions were counted');

# Partition 1: END_GEN after transaction 3, of which the log lacks one.
$kafka->produce('replkafka', 1,
	new_gen(1, 'node_x'),
	chunks(1, 'node_x', 1, 100000, body('one', $keys{1}[0])),
	chunks(1, 'node_x', 2, 100000, body('two', $keys{1}[1])),
	ReplkafkaTest::Wire::record(type => 'END_GEN', partition => 1,
		generation => 1, sequence => 3, origin => 'node_x'));
$node->safe_psql('postgres', 'SELECT replkafka.follow(1)');
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 1"),
	'item 2: an END_GEN beyond the last applied transaction stops the partition');
like(state(1),
	qr/node "node_x" ended generation 1 after transaction 3 at Kafka offset 3, but this node applied up to transaction 2; the transactions in between are missing from the log/,
	'item 2: the error says transactions are missing');

# Partition 2: END_GEN after transaction 1; the worker restarts; then a
# transaction of the ended generation.
$kafka->produce('replkafka', 2,
	new_gen(2, 'node_x'),
	chunks(2, 'node_x', 1, 100000, body('one', $keys{2}[0])),
	ReplkafkaTest::Wire::record(type => 'END_GEN', partition => 2,
		generation => 1, sequence => 1, origin => 'node_x'));
$node->safe_psql('postgres', 'SELECT replkafka.follow(2)');
ok($node->poll_query_until('postgres', q{
SELECT kafka_offset = 2 FROM replkafka.consumer_checkpoints WHERE partition = 2}),
	'item 6: the replica read the END_GEN');
$node->restart;
$kafka->produce('replkafka', 2,
	chunks(2, 'node_x', 2, 100000, body('after end', $keys{2}[1])),
	chunks(2, 'node_x', 3, 100000, body('after end', $keys{2}[2])));
ok($node->poll_query_until('postgres', q{
SELECT kafka_offset = 4 FROM replkafka.consumer_checkpoints WHERE partition = 2}),
	'item 6: the restarted replica read past the records after END_GEN');
is(rows(2, 'after end'), '0', 'item 6: it applied none of them');
like(state(2), qr/^replica 1 2 $/, 'item 6: it counted both as zombies, without error');

# Partition 3: copies of chunks.
my @copied = chunks(3, 'node_x', 1, 60, body('copied', @{ $keys{3} }[ 0 .. 9 ]));
cmp_ok(scalar @copied, '>=', 4, 'copies: the transaction has at least four chunks');
$kafka->produce('replkafka', 3,
	new_gen(3, 'node_x'),
	@copied[ 0 .. 2 ],
	@copied[ 1 .. 2 ],
	@copied[ 3 .. $#copied ],
	chunks(3, 'node_x', 2, 100000, body('after copies', $keys{3}[10])),
	@copied);
$node->safe_psql('postgres', 'SELECT replkafka.follow(3)');
ok($node->poll_query_until('postgres', q{
SELECT role = 'error' OR (scn & 4294967295 = 2 AND lag_messages = 0)
  FROM replkafka.partitions WHERE partition = 3}),
	'copies: partition 3 is read to its end');
like(state(3), qr/^replica 2 0 $/, 'copies: both transactions applied, without error or zombie');
is(rows(3, 'copied'), '10', 'copies: the transaction copied in part was applied once, whole');
is(rows(3, 'after copies'), '1', 'copies: and the next one');

# Partition 0: a row of partition 1 in partition 0's log.
$kafka->produce('replkafka', 0,
	chunks(0, 'node_x', 3, 100000, body('elsewhere', $keys{1}[5])));
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'item 8: a row of another partition stops the partition');
like(state(0),
	qr/could not apply the transaction at Kafka offset \d+: a row of table "items" in the log of partition 0 belongs to partition 1/,
	'item 8: the error says where the row belongs');
is($node->safe_psql('postgres', "SELECT count(*) FROM items WHERE v = 'elsewhere'"), '0',
	'item 8: the row was not written');

done_testing();
