
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
# item 7 (partition 4): ALTER TABLE adds a column, then changes a
#   column's type, while the worker waits for the table's lock with a
#   column map of the table cached: the worker applies each change to the
#   table as the lock leaves it.
# item 6 (partitions 5, 6 and 7): chunks that the temporary file cannot
#   take (temp_file_limit) make the worker try their partition again, with
#   the reason shown; the worker starts again without the file, its other
#   partitions go on, and a higher temp_file_limit lets the chunks in.
# item 9 (partition 3): a transaction that defines a table twice, under
#   two relation numbers, stops the partition: the worker opens one
#   executor state per table, so at most as many as tables replicated.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
# Temporary files of 1 MB at most (item 6); the test's own queries fit in
# memory.
my $node = ReplkafkaTest::new_node('node_a', $kafka, conf => q{
temp_file_limit = '1MB'
work_mem = '64MB'
});
$node->safe_psql('postgres', q{
SELECT replkafka.create_cluster(8, 1);
CREATE TABLE racing (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('racing', 'id');
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

my @twice = ReplkafkaTest::keys_of_partition($node, 'items', 3, 2);
$kafka->produce('replkafka', 3,
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 3,
		generation => 1, origin => 'node_x'),
	ReplkafkaTest::Wire::record(partition => 3, generation => 1, sequence => 1,
		origin => 'node_x',
		body => ReplkafkaTest::Wire::insert_body('public', 'items', $columns, [ $twice[0], 'one' ], 0)
		  . ReplkafkaTest::Wire::insert_body('public', 'items', $columns, [ $twice[1], 'two' ], 1)));
$node->safe_psql('postgres', 'SELECT replkafka.follow(3)');
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 3"),
	'item 9: a table defined twice in a transaction stops the partition');
like($node->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 3'),
	qr/table "public.items" is defined twice in the transaction, as relations 0 and 1/,
	'item 9: the error says so');
is($node->safe_psql('postgres', "SELECT count(*) FROM items WHERE v IN ('one', 'two')"), '0',
	'item 9: nothing was written');

# item 7: a column map of "racing" is cached by a first transaction.
my @racing = ReplkafkaTest::keys_of_partition($node, 'racing', 4, 4);
my $record4 = sub {
	my ($sequence, $id, $v) = @_;
	return ReplkafkaTest::Wire::record(partition => 4, generation => 1,
		sequence => $sequence, origin => 'node_x',
		body => ReplkafkaTest::Wire::insert_body('public', 'racing', $columns, [ $id, $v ]));
};
$kafka->produce('replkafka', 4,
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 4,
		generation => 1, origin => 'node_x'),
	$record4->(1, $racing[0], '1'));
$node->safe_psql('postgres', 'SELECT replkafka.follow(4)');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 1 FROM racing'),
	'item 7: the first row is applied');

# ALTER TABLE runs while the worker waits for the table, and commits
# (it waits for an advisory lock first, which the test holds); then the
# worker applies the record at $sequence.
sub race_ddl
{
	my ($ddl, $sequence, $id, $value) = @_;
	my $holder = ReplkafkaTest::background_psql($node,
		'SELECT pg_advisory_lock(4711)', 'SELECT pg_sleep(3600)');
	ok($node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4711 AND granted}),
		'item 7: a session holds the advisory lock');
	my $session = ReplkafkaTest::background_psql($node, 'BEGIN', $ddl,
		'SELECT pg_advisory_lock(4711)', 'COMMIT');
	ok($node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4711 AND NOT granted}),
		"item 7: $ddl ran and waits to commit");
	$kafka->produce('replkafka', 4, $record4->($sequence, $id, $value));
	ok($node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.relation = 'racing'::regclass AND NOT l.granted
   AND a.backend_type = 'replkafka apply worker'}),
		'item 7: the apply worker waits for the table');
	$node->safe_psql('postgres', q{
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE query LIKE '%pg_sleep(3600)%' AND pid <> pg_backend_pid()});
	$holder->{h}->finish;
	$session->{h}->finish;
	ok($node->poll_query_until('postgres', "SELECT count(*) = $sequence FROM racing"),
		"item 7: the row is applied after $ddl");
}

# A column added: the row gets its default (a map of the old table would
# say, past its end, whether the new column was sent).
race_ddl('ALTER TABLE racing ADD COLUMN w int DEFAULT 7', 2, $racing[1], '42');
# A column's type changed: the value is read as the new type.
race_ddl('ALTER TABLE racing ALTER COLUMN v TYPE int USING v::int', 3, $racing[2], '43');
is($node->safe_psql('postgres', 'SELECT id || \' \' || v || \' \' || coalesce(w::text, \'null\') FROM racing ORDER BY id'),
	"$racing[0] 1 7\n$racing[1] 42 7\n$racing[2] 43 7",
	'item 7: each row was applied to the table as ALTER TABLE left it');
is($node->safe_psql('postgres', 'SELECT role FROM replkafka.partitions WHERE partition = 4'),
	'replica', 'item 7: the partition goes on');

# item 6: 1.2 MB of chunks against temp_file_limit = 1MB.
my $workers_query = q{
SELECT count(*) || ':' || string_agg(pid::text, ',' ORDER BY pid)
  FROM pg_stat_activity WHERE backend_type = 'replkafka apply worker'};
my $workers = $node->safe_psql('postgres', $workers_query);
# A new generation of $partition whose first transaction is chunks of
# @sizes bytes; this node follows the partition.
sub chunked_transaction
{
	my ($partition, @sizes) = @_;
	$kafka->produce('replkafka', $partition,
		ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => $partition,
			generation => 1, origin => 'node_x'),
		map {
			ReplkafkaTest::Wire::record(partition => $partition, generation => 1,
				sequence => 1, origin => 'node_x', chunk => $_,
				last => $_ == $#sizes ? 1 : 0, body => 'x' x $sizes[$_])
		} 0 .. $#sizes);
	$node->safe_psql('postgres', "SELECT replkafka.follow($partition)");
}
chunked_transaction(5, 600 * 1024, 600 * 1024, 10);
ok($node->poll_query_until('postgres', q{
SELECT role = 'replica' AND apply_retries >= 1 AND error_sqlstate = '53400'
  FROM replkafka.partitions WHERE partition = 5}),
	'item 6: chunks the temporary file cannot take make the worker try again');
like($node->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 5'),
	qr/could not keep chunk 1 of the transaction at Kafka offset 2: temporary file size exceeds "temp_file_limit"|could not keep chunk 1 of the transaction at Kafka offset 2: temporary file size exceeds temp_file_limit/,
	'item 6: the error says why');
ok($node->poll_query_until('postgres', qq{
SELECT ($workers_query) LIKE '2:%' AND ($workers_query) <> '$workers'}),
	'item 6: the worker started again');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM replkafka.workers WHERE kind = 'apply' AND failing"),
	'0', 'item 6: which is no failure of the worker');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_ls_tmpdir()'),
	'item 6: its temporary file is gone');
my ($other) = ReplkafkaTest::keys_of_partition($node, 'items', 7, 1);
$kafka->produce('replkafka', 7,
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 7,
		generation => 1, origin => 'node_x'),
	ReplkafkaTest::Wire::record(partition => 7, generation => 1, sequence => 1,
		origin => 'node_x',
		body => ReplkafkaTest::Wire::insert_body('public', 'items', $columns, [ $other, 'seven' ])));
$node->safe_psql('postgres', 'SELECT replkafka.follow(7)');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM items WHERE v = 'seven'"),
	'item 6: another partition of the worker goes on');

# item 6 again, the limit crossed by the last bytes of the last chunk
# (which the file buffers until it is flushed).
$workers = $node->safe_psql('postgres', $workers_query);
chunked_transaction(6, 512 * 1024, 512 * 1024, 100);
ok($node->poll_query_until('postgres', q{
SELECT role = 'replica' AND apply_retries >= 1 AND error_sqlstate = '53400'
  FROM replkafka.partitions WHERE partition = 6}),
	'item 6: a limit crossed by the last bytes makes the worker try again too');
like($node->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 6'),
	qr/could not keep chunk 2 of the transaction at Kafka offset 3: temporary file size exceeds/,
	'item 6: the error says why');
ok($node->poll_query_until('postgres', qq{
SELECT ($workers_query) LIKE '2:%' AND ($workers_query) <> '$workers'}),
	'item 6: the worker started again');
$kafka->produce('replkafka', 4, $record4->(4, $racing[3], '44'));
ok($node->poll_query_until('postgres', 'SELECT count(*) = 4 FROM racing'),
	'item 6: another partition of the worker goes on');

# A higher limit lets the chunks in: the transactions (whose bodies are no
# records) are then read whole, and stop their partitions as malformed.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET temp_file_limit = '8MB'; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres', q{
SELECT count(*) = 2 FROM replkafka.partitions
 WHERE partition IN (5, 6) AND role = 'error' AND error_sqlstate = '08P01'}),
	'item 6: with a higher temp_file_limit the chunks are kept');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_ls_tmpdir()'),
	'item 6: no temporary file is left');

done_testing();
