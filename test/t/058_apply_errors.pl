
# Copyright (c) 2026, replkafka authors

# The apply worker's error policy, as PostgreSQL's apply worker has it: an
# error applying a transaction is reported whole in the server log
# (SQLSTATE, detail, context with the table); an error of the data or of
# the log stops the partition, with the SQLSTATE kept; one that passes by
# itself (serialization failure, deadlock, lock timeout, cancel, lack of
# resources) makes the worker apply the transaction again later, counted
# in replkafka.partitions.  The log is written by hand: node_x leads every
# partition; node_a follows.
#
# Errors are raised where they would be: a duplicate key, a column this
# node lacks, another session's lock (lock_timeout, which the worker reads
# from the configuration while it retries, and pg_cancel_backend()); and,
# for the classes that cannot be caused at will (a deadlock, out of
# memory), by a trigger on the replica's table that raises the SQLSTATE a
# control table names.
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
SELECT replkafka.create_cluster(8, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
CREATE TABLE narrow (id int PRIMARY KEY);
SELECT replkafka.add_table('narrow', 'id');
CREATE TABLE fail_with (sqlstate text);
CREATE FUNCTION items_fail() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	code text;
BEGIN
	SELECT sqlstate INTO code FROM public.fail_with;
	IF code IS NOT NULL THEN
		RAISE EXCEPTION 'injected failure' USING ERRCODE = code,
			DETAIL = 'The row has id ' || NEW.id || '.';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER items_fail BEFORE INSERT ON items
	FOR EACH ROW EXECUTE FUNCTION items_fail();
ALTER TABLE items ENABLE ALWAYS TRIGGER items_fail;
});

my $columns = [ [ 'id', 'integer', 1 ], [ 'v', 'text', 0 ] ];
my %sequence;

# Write the next transaction of $partition, inserting ($id, $v) into
# $table, as node_x (starting the generation first).
sub produce_insert
{
	my ($partition, $table, $cols, $values) = @_;
	my @records;
	if (!$sequence{$partition})
	{
		push @records,
		  ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => $partition,
			generation => 1, origin => 'node_x');
	}
	$sequence{$partition}++;
	push @records,
	  ReplkafkaTest::Wire::record(partition => $partition, generation => 1,
		sequence => $sequence{$partition}, origin => 'node_x',
		body => ReplkafkaTest::Wire::insert_body('public', $table, $cols, $values));
	$kafka->produce('replkafka', $partition, @records);
}

sub partition_row
{
	my ($partition, $columns) = @_;
	return $node->safe_psql('postgres',
		"SELECT $columns FROM replkafka.partitions WHERE partition = $partition");
}

my $apply_pid_query = q{
SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
 WHERE backend_type = 'replkafka apply worker'};
ok($node->poll_query_until('postgres', q{
SELECT count(*) = 2 FROM replkafka.workers WHERE kind = 'apply' AND state = 'running'}),
	'both apply workers run');
my $apply_pids = $node->safe_psql('postgres', $apply_pid_query);

$node->safe_psql('postgres',
	'SELECT replkafka.follow(p) FROM generate_series(0, 7) p');

# A data error: a duplicate key.  The partition stops, keeping SQLSTATE
# 23505 in the view and in the catalog; the log has the whole report.
my @k0 = ReplkafkaTest::keys_of_partition($node, 'items', 0, 2);
$node->safe_psql('postgres',
	"SET session_replication_role = replica; INSERT INTO items VALUES ($k0[0], 'local')");
my $log_offset = -s $node->logfile;
produce_insert(0, 'items', $columns, [ $k0[0], 'remote' ]);
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'a duplicate key stops the partition');
is(partition_row(0, 'error_sqlstate'), '23505',
	'the view keeps the SQLSTATE of a duplicate key');
like(partition_row(0, 'last_error'),
	qr/^could not apply the transaction at Kafka offset 1: duplicate key value violates unique constraint "items_pkey"$/,
	'the view says which transaction and why');
is($node->safe_psql('postgres',
		'SELECT role || \' \' || error_sqlstate FROM replkafka.partition_roles WHERE partition = 0'),
	'error 23505', 'the catalog keeps the SQLSTATE');
my $log = slurp_file($node->logfile, $log_offset);
like($log,
	qr/ERROR:  duplicate key value violates unique constraint "items_pkey"\n.*DETAIL:  Key \(id\)=\($k0[0]\) already exists\.\n.*CONTEXT:  applying transaction 1 of generation 1 from node "node_x" \(partition 0, Kafka offset 1\), table public\.items/,
	'the log has the error whole: message, detail, and the context with the table');
like($log, qr/WARNING:  partition 0 stops applying on node "node_a": could not apply the transaction at Kafka offset 1: duplicate key/,
	'the log says the partition stops');

# A column this node lacks: SQLSTATE 42703.
my ($n1) = ReplkafkaTest::keys_of_partition($node, 'narrow', 1, 1);
produce_insert(1, 'narrow', $columns, [ $n1, 'wide' ]);
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 1"),
	'a column this node lacks stops the partition');
is(partition_row(1, 'error_sqlstate'), '42703',
	'the view keeps the SQLSTATE of a missing column');

# A malformed record (the apply rules): SQLSTATE 08P01.
$kafka->produce('replkafka', 2, 'not a record');
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 2"),
	'a malformed record stops the partition');
is(partition_row(2, 'error_sqlstate'), '08P01',
	'a malformed record has SQLSTATE 08P01 (protocol violation)');

# Handled errors are no failures of the worker: it never exited.
is($node->safe_psql('postgres', $apply_pid_query), $apply_pids,
	'the apply workers did not exit');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM replkafka.workers WHERE kind = 'apply' AND failing"),
	'0', 'no apply worker shows as failing');

# The errors that pass by themselves, raised by the trigger: the partition
# stays a replica, the transaction is tried again, counted, with the
# SQLSTATE and message in the view; once the cause is gone it applies,
# once.
my $p = 3;
my %keys = map { $_ => [ ReplkafkaTest::keys_of_partition($node, 'items', $_, 3) ] } 3, 4;
foreach my $code ('40P01', '40001', '53200', '55P03', '57014', '08006')
{
	my $key = shift @{ $keys{$p} };
	$node->safe_psql('postgres', "INSERT INTO fail_with VALUES ('$code')");
	produce_insert($p, 'items', $columns, [ $key, "retried $code" ]);
	ok($node->poll_query_until('postgres', qq{
SELECT role = 'replica' AND apply_retries >= 2 AND error_sqlstate = '$code'
   AND last_error LIKE 'could not apply the transaction at Kafka offset % injected failure; retrying since %'
  FROM replkafka.partitions WHERE partition = $p}),
		"SQLSTATE $code: the transaction is tried again, and counted");
	$node->safe_psql('postgres', 'DELETE FROM fail_with');
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM items WHERE v = 'retried $code'"),
		"SQLSTATE $code: the transaction applies once the cause is gone");
	is(partition_row($p, "role || ' ' || coalesce(last_error, 'none') || ' ' || coalesce(error_sqlstate, 'none')"),
		'replica none none', "SQLSTATE $code: the error is cleared");
	$p = $p == 3 ? 4 : 3;
}
is($node->safe_psql('postgres', "SELECT count(*) FROM items WHERE v LIKE 'retried%'"),
	'6', 'every retried transaction applied once');

# A trigger's own error of another class stops the partition.
my ($k5) = ReplkafkaTest::keys_of_partition($node, 'items', 5, 1);
$node->safe_psql('postgres', "INSERT INTO fail_with VALUES ('P0001')");
produce_insert(5, 'items', $columns, [ $k5, 'raised' ]);
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 5"),
	"a trigger's error of its own stops the partition");
is(partition_row(5, 'error_sqlstate'), 'P0001', 'with its SQLSTATE');
$node->safe_psql('postgres', 'DELETE FROM fail_with');

# Another session's lock, and lock_timeout set while the worker waits: the
# worker waits (lock_timeout is off), is cancelled (57014), and tries
# again with the new lock_timeout (55P03) until the lock is gone.
my ($k6) = ReplkafkaTest::keys_of_partition($node, 'items', 6, 1);
my $locker = ReplkafkaTest::background_psql($node,
	'BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3600)');
ok($node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
 WHERE c.relname = 'items' AND l.mode = 'AccessExclusiveLock' AND l.granted}),
	'another session holds the table locked');
produce_insert(6, 'items', $columns, [ $k6, 'locked' ]);
my $waiting = q{
SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.relation = 'items'::regclass AND NOT l.granted
   AND a.backend_type = 'replkafka apply worker'};
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($waiting) w"),
	'the apply worker waits for the lock');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET lock_timeout = '200ms'; SELECT pg_reload_conf()");
$node->safe_psql('postgres', "SELECT pg_cancel_backend(pid) FROM ($waiting) w");
ok($node->poll_query_until('postgres', q{
SELECT role = 'replica' AND error_sqlstate = '55P03' AND apply_retries >= 2
  FROM replkafka.partitions WHERE partition = 6}),
	'cancelled, the worker tries again, with the lock_timeout it reloaded');
ok($node->log_contains(qr/ERROR:  canceling statement due to user request/, $log_offset),
	'the cancel is in the log');
$node->safe_psql('postgres', q{
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE query LIKE '%LOCK TABLE items%' AND pid <> pg_backend_pid()});
$locker->{h}->finish;
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM items WHERE v = 'locked'"),
	'once the lock is gone, the transaction applies');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET lock_timeout; SELECT pg_reload_conf()');

# The checkpoint row, locked by another session: the worker waits for it
# with the transaction applied but not committed; deleted meanwhile, the
# row is written again, and the transaction applies once.
# An administrator's index on the checkpoints (an expression, a
# predicate) and a column of their own are kept up to date.
$node->safe_psql('postgres', q{
CREATE INDEX checkpoints_by_block ON replkafka.consumer_checkpoints ((kafka_offset / 1000))
 WHERE NOT ended;
ALTER TABLE replkafka.consumer_checkpoints ADD COLUMN note text DEFAULT 'kept'});
my $retries = partition_row(4, 'apply_retries');
my @k4 = (ReplkafkaTest::keys_of_partition($node, 'items', 4, 5))[ 3, 4 ];
produce_insert(4, 'items', $columns, [ $k4[0], 'checkpointed' ]);
my $checkpoint = q{
SELECT (scn & 4294967295) || ' at ' || kafka_offset FROM replkafka.consumer_checkpoints
 WHERE partition = 4};
my $seq = $sequence{4};
ok($node->poll_query_until('postgres', $checkpoint, "$seq at $seq"),
	'a transaction of partition 4 is checkpointed');
my $holder = $node->background_psql('postgres');
$holder->query_safe(
	'BEGIN; SELECT 1 FROM replkafka.consumer_checkpoints WHERE partition = 4 FOR UPDATE');
produce_insert(4, 'items', $columns, [ $k4[1], 'after the delete' ]);
ok($node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'transactionid' AND NOT l.granted
   AND a.backend_type = 'replkafka apply worker'}),
	'the worker waits for the checkpoint row');
$holder->query_safe(
	'DELETE FROM replkafka.consumer_checkpoints WHERE partition = 4; COMMIT');
$holder->quit;
$seq++;
ok($node->poll_query_until('postgres', $checkpoint, "$seq at $seq"),
	'deleted meanwhile, the checkpoint row is written again');
is($node->safe_psql('postgres',
		"SELECT string_agg(v, ',' ORDER BY v) FROM items WHERE v IN ('checkpointed', 'after the delete')"),
	'after the delete,checkpointed', 'both transactions applied, once');
is(partition_row(4, "role || ' ' || coalesce(last_error, 'none') || ' ' || apply_retries"),
	"replica none $retries", 'without an error or a retry');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off;
SELECT note FROM replkafka.consumer_checkpoints
 WHERE kafka_offset / 1000 = 0 AND NOT ended AND partition = 4}),
	'kept', "the administrator's index finds the checkpoint, and their column is kept");
$node->safe_psql('postgres', q{
DROP INDEX replkafka.checkpoints_by_block;
ALTER TABLE replkafka.consumer_checkpoints DROP COLUMN note});

# A promotion while a transaction waits to be tried again waits for it:
# the partition's position stays at its checkpoint, so no NEW_GEN is
# written before the transaction applies.
my ($k7) = ReplkafkaTest::keys_of_partition($node, 'items', 7, 1);
$node->safe_psql('postgres', "INSERT INTO fail_with VALUES ('40P01')");
produce_insert(7, 'items', $columns, [ $k7, 'before the promotion' ]);
ok($node->poll_query_until('postgres',
		'SELECT apply_retries >= 1 FROM replkafka.partitions WHERE partition = 7'),
	'a transaction of partition 7 is tried again');
my ($ret, $out, $err) =
  $node->psql('postgres', "SELECT replkafka.promote(7, '2s')");
like($err,
	qr/could not promote node "node_a" for partition 7 within the timeout\n.*DETAIL:  This node read the log up to offset 1 of 2\./s,
	'promote() waits for the transaction tried again, and times out');
is(scalar(grep { $_->{partition} == 7 } $kafka->consume('replkafka')), 2,
	'no NEW_GEN was written');
$node->safe_psql('postgres', 'DELETE FROM fail_with');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM items WHERE v = 'before the promotion'"),
	'the transaction applies once the cause is gone');
is($node->safe_psql('postgres', "SELECT replkafka.promote(7, '30s')"), '2',
	'then promote() starts generation 2');

# Role changes take effect at commit in the session that made them: a
# transaction that made one cannot be prepared.
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; SELECT replkafka.unfollow(6); PREPARE TRANSACTION 'role change'");
like($err, qr/cannot prepare a transaction that changed replkafka's roles/,
	'a role change cannot be prepared');
is(partition_row(6, 'role'), 'replica', 'the role stays');

# Statistics: the worker reports them after its commits, so autovacuum
# sees the tables it writes and the checkpoints.
ok($node->poll_query_until('postgres', q{
SELECT (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'items'::regclass) >= 7
   AND (SELECT n_tup_upd + n_tup_ins FROM pg_stat_user_tables
         WHERE relid = 'replkafka.consumer_checkpoints'::regclass) >= 7}),
	'the statistics count the rows applied and the checkpoints written');

# The SQLSTATE survives a restart, with the partition's error.
$node->restart;
is(partition_row(0, "role || ' ' || error_sqlstate"), 'error 23505',
	'after a restart the partition is still in error, with its SQLSTATE');
is(partition_row(3, "role || ' ' || coalesce(error_sqlstate, 'none') || ' ' || apply_retries"),
	'replica none 0', 'a retried partition shows nothing after a restart');

done_testing();
