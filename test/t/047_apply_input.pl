
# Copyright (c) 2026, replkafka authors

# Records from Kafka are input (security issue).  The log is written by
# hand: node_x leads the partition; node_a follows.
#
# item 10 (partition 0): a record naming a table that is not replicated
#   here, which another session holds ACCESS EXCLUSIVE, stops the partition
#   at once with a clear error: the worker checks registration before it
#   locks.
# item 8 (partitions 1 and 2): a value with a zero byte (which would cut a
#   key 'admin\0x' to 'admin' and update the wrong row) or with an invalid
#   byte sequence stops the partition; nothing is written.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my $node = ReplkafkaTest::new_node('node_a', $kafka);
$node->safe_psql('postgres', q{
SELECT replkafka.create_cluster(3, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
CREATE TABLE other (id int PRIMARY KEY, v text);
});

# Another session holds "other" locked, for as long as the test runs.
my $locker = ReplkafkaTest::background_psql($node,
	'BEGIN; LOCK TABLE other IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3600)');
ok($node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
 WHERE c.relname = 'other' AND l.mode = 'AccessExclusiveLock' AND l.granted}),
	'another session holds "other" locked');

my $columns = [ [ 'id', 'integer', 1 ], [ 'v', 'text', 0 ] ];
$kafka->produce('replkafka', 0,
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 0,
		generation => 1, origin => 'node_x'),
	ReplkafkaTest::Wire::record(partition => 0, generation => 1, sequence => 1,
		origin => 'node_x',
		body => ReplkafkaTest::Wire::insert_body('public', 'other', $columns, [ 1, 'forged' ])));
$node->safe_psql('postgres', 'SELECT replkafka.follow(0)');
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'item 10: the record stops the partition, although the table is locked');
like($node->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 0'),
	qr/table "public.other" is not replicated on this node/,
	'item 10: the error says the table is not replicated');
$node->safe_psql('postgres', q{
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE query LIKE '%LOCK TABLE other%' AND pid <> pg_backend_pid()});
$locker->{h}->finish;
is($node->safe_psql('postgres', 'SELECT count(*) FROM other'), '0',
	'nothing was written to it');

# Values that are not text: a zero byte in a key, an invalid sequence.
my %key = map { $_ => (ReplkafkaTest::keys_of_partition($node, 'items', $_, 1))[0] } 1 .. 2;
$node->safe_psql('postgres', "SET session_replication_role = replica; INSERT INTO items VALUES ($key{1}, 'admin')");
foreach my $p (1, 2)
{
	my $value = $p == 1 ? "admin\0x" : "caf\xc3";
	$kafka->produce('replkafka', $p,
		ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => $p,
			generation => 1, origin => 'node_x'),
		ReplkafkaTest::Wire::record(partition => $p, generation => 1, sequence => 1,
			origin => 'node_x',
			body => ReplkafkaTest::Wire::insert_body('public', 'items', $columns,
				[ $key{$p}, $value ])));
	$node->safe_psql('postgres', "SELECT replkafka.follow($p)");
	ok($node->poll_query_until('postgres',
			"SELECT role = 'error' FROM replkafka.partitions WHERE partition = $p"),
		"item 8: a value that is not text stops partition $p");
	like($node->safe_psql('postgres', "SELECT last_error FROM replkafka.partitions WHERE partition = $p"),
		qr/the value of column "v" of table "items" is not valid text in encoding "UTF8"/,
		"item 8: the error says which value");
}
is($node->safe_psql('postgres', "SELECT string_agg(v, ',') FROM items"), 'admin',
	'item 8: nothing was written');

done_testing();
