
# Copyright (c) 2026, replkafka authors

# Groups: an apply worker that finds transactions queued applies several
# in one local transaction, which writes each partition's checkpoint once.
# The log is written by hand (node_x leads every partition; node_a follows,
# with one apply worker, so that the records of all partitions go through
# the same groups), before node_a follows, so that the worker finds it
# queued.  A group fails whole: an error in one of its transactions, or as
# it writes its checkpoints (another session holds one), rolls it back; its
# partitions
# are applied again from their checkpoints a transaction at a time, and the
# transaction that fails alone is reported, stopped or retried as itself.
# Every row is applied once (a trigger counts each application).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my $node = ReplkafkaTest::new_node('node_a', $kafka,
	conf => 'replkafka.apply_workers = 1');
$node->safe_psql('postgres', q{
SELECT replkafka.create_cluster(4, 1);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
} . ReplkafkaTest::count_applications_sql('items') . q{
-- The values refused as a row is written, with the SQLSTATE.
CREATE TABLE refuse (v text PRIMARY KEY, sqlstate text NOT NULL);
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	code text;
BEGIN
	SELECT sqlstate INTO code FROM public.refuse WHERE v = NEW.v;
	IF code IS NOT NULL THEN
		RAISE EXCEPTION 'refused value %', NEW.v USING ERRCODE = code;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON items
	FOR EACH ROW EXECUTE FUNCTION refuse();
ALTER TABLE items ENABLE ALWAYS TRIGGER refuse;
});

my $columns = [ [ 'id', 'integer', 1 ], [ 'v', 'text', 0 ] ];
my (%sequence, %next_key, %offset);

# Append to $partition's log $count transactions of one row each, the
# values from @values (then "v"), as node_x (starting the generation
# first); returns the Kafka offsets of the transactions.
sub produce
{
	my ($partition, $count, @values) = @_;
	my (@records, @offsets);
	$offset{$partition} //= 0;
	if (!$sequence{$partition})
	{
		push @records,
		  ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => $partition,
			generation => 1, origin => 'node_x');
	}
	my @keys = ReplkafkaTest::keys_of_partition($node, 'items', $partition,
		$count, $next_key{$partition} // 1);
	$next_key{$partition} = $keys[-1] + 1;
	foreach my $key (@keys)
	{
		$sequence{$partition}++;
		push @records,
		  ReplkafkaTest::Wire::record(partition => $partition, generation => 1,
			sequence => $sequence{$partition}, origin => 'node_x',
			body => ReplkafkaTest::Wire::insert_body('public', 'items', $columns,
				[ $key, shift(@values) // 'v' ]));
	}
	$offset{$partition} += @records;
	push @offsets, $offset{$partition} - $count + $_ foreach (0 .. $count - 1);
	$kafka->produce('replkafka', $partition, @records);
	return @offsets;
}

sub partition_row
{
	my ($partition, $columns) = @_;
	return $node->safe_psql('postgres',
		"SELECT $columns FROM replkafka.partitions WHERE partition = $partition");
}

sub follow
{
	my $list = join(', ', @_);
	$node->safe_psql('postgres',
		"SELECT replkafka.follow(p) FROM unnest(ARRAY[$list]) p");
}

sub unfollow
{
	my $list = join(', ', @_);
	$node->safe_psql('postgres',
		"SELECT replkafka.unfollow(p) FROM unnest(ARRAY[$list]) p");
}

# Wait until $partition applied the transaction at Kafka offset $offset.
sub applied_up_to
{
	my ($partition, $offset) = @_;
	return $node->poll_query_until('postgres', qq{
SELECT kafka_offset >= $offset FROM replkafka.consumer_checkpoints
 WHERE partition = $partition});
}

# Wait until $partition, a replica still, tries again (and counts) the
# transaction at Kafka offset $offset, which failed alone with $sqlstate
# and $message.
sub retrying
{
	my ($partition, $offset, $sqlstate, $message) = @_;
	return $node->poll_query_until('postgres', qq{
SELECT role = 'replica' AND apply_retries >= 1 AND error_sqlstate = '$sqlstate'
   AND last_error LIKE 'could not apply the transaction at Kafka offset $offset: $message; retrying since %'
  FROM replkafka.partitions WHERE partition = $partition});
}

sub applied_once
{
	my ($what) = @_;
	is( $node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM items) || ' ' || count(*) || ' ' || count(DISTINCT id)
  FROM applications}),
		join(' ', ($node->safe_psql('postgres', 'SELECT count(*) FROM items')) x 3),
		"$what: every row was applied once");
}

ok($node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM replkafka.workers WHERE kind = 'apply' AND state = 'running'}),
	'the apply worker runs');

# A backlog of 200 single-row transactions in four partitions, queued
# before node_a follows: far fewer local transactions than transactions.
my %last;
foreach my $p (0 .. 3)
{
	my @offsets = produce($p, 50);
	$last{$p} = $offsets[-1];
}
follow(0 .. 3);
foreach my $p (0 .. 3)
{
	ok(applied_up_to($p, $last{$p}),
		"partition $p applied its 50 transactions, checkpoint at offset $last{$p}");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM items'), '200',
	'the 200 rows are there');
my $local = $node->safe_psql('postgres',
	'SELECT count(DISTINCT xmin::text) FROM items');
cmp_ok($local, '<=', 20,
	"the 200 transactions were applied in $local local transactions");
applied_once('the backlog');
is($node->safe_psql('postgres', q{
SELECT string_agg(partition || ':' || scn % 4294967296 || ':' || kafka_offset, ' ' ORDER BY partition)
  FROM replkafka.consumer_checkpoints}),
	join(' ', map { "$_:50:$last{$_}" } 0 .. 3),
	'each checkpoint names its partition\'s last transaction');

# An error in a transaction of a group (a trigger refuses its row): the
# group rolls back, its partitions are read again, and the transaction
# fails alone, with its offset and SQLSTATE; the other partitions apply all
# of theirs, the failing one those before it, and resumes once followed
# again.
my $value = 'refused';
$node->safe_psql('postgres', "INSERT INTO refuse VALUES ('$value', '23514')");
unfollow(0 .. 3);
my $log_offset = -s $node->logfile;
my %offsets;
$offsets{$_} = [ produce($_, 20, $_ == 1 ? (('v') x 9, $value) : ()) ]
  foreach 0 .. 3;
my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
follow(0 .. 3);
my $bad = $offsets{1}[9];
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 1"),
	'a refused row: its partition stops');
is(partition_row(1, 'error_sqlstate'), '23514',
	'it keeps the SQLSTATE of the transaction that failed');
like(partition_row(1, 'last_error'),
	qr/^could not apply the transaction at Kafka offset $bad: refused value refused$/,
	'the error names the transaction that failed alone');
foreach my $q (0, 2, 3)
{
	ok(applied_up_to($q, $offsets{$q}[-1]),
		"partition $q applies its 20 transactions");
}
is($node->safe_psql('postgres',
		'SELECT kafka_offset FROM replkafka.consumer_checkpoints WHERE partition = 1'),
	$bad - 1, 'partition 1 applied those before it');
is($node->safe_psql('postgres', 'SELECT count(*) FROM items'),
	$rows + 3 * 20 + 9, 'no row of it or after it is there');
my $log = slurp_file($node->logfile, $log_offset);
like($log,
	qr/LOG:  could not apply \d+ transactions together: refused value refused\n.*DETAIL:  Their partitions are applied again from their checkpoints, a transaction at a time\./,
	'the log says the group failed and is applied again');
like($log,
	qr/LOG:  refused value refused\n[^\n]*CONTEXT:  [^\n]*\n\tapplying transaction \d+ of generation 1 from node "node_x" \(partition 1, Kafka offset $bad\), table public\.items/,
	'and the group\'s error whole, with the transaction it failed in');
applied_once('a refused row');
$node->safe_psql('postgres', "DELETE FROM refuse WHERE v = '$value'");
follow(1);
ok(applied_up_to(1, $offsets{1}[-1]),
	'accepted, partition 1 applies the rest once followed again');
is($node->safe_psql('postgres', 'SELECT count(*) FROM items'),
	$rows + 4 * 20, 'every row is there');
applied_once('a refused row, followed again');

# A group that fails as it writes its checkpoints: another session holds
# the checkpoint row of partition 2, and lock_timeout is short.  The group
# rolls back; its partitions are applied again a transaction at a time:
# partition 2's first one fails alone, at its checkpoint, and is tried
# again (counted) while the other partitions apply theirs; once the lock
# goes, partition 2 applies all of its own, once.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET lock_timeout = '200ms'; SELECT pg_reload_conf()");
unfollow(0 .. 3);
$log_offset = -s $node->logfile;
$offsets{$_} = [ produce($_, 20) ] foreach 0 .. 3;
$rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
my $holder = $node->background_psql('postgres');
$holder->query_safe(
	'BEGIN; SELECT 1 FROM replkafka.consumer_checkpoints WHERE partition = 2 FOR UPDATE');
follow(0 .. 3);
ok(retrying(2, $offsets{2}[0], '55P03', 'canceling statement due to lock timeout'),
	'a checkpoint row locked: the first transaction of the partition is tried again alone, and counted');
foreach my $q (0, 1, 3)
{
	ok(applied_up_to($q, $offsets{$q}[-1]),
		"meanwhile partition $q applies its 20 transactions");
}
like(slurp_file($node->logfile, $log_offset),
	qr/LOG:  could not apply \d+ transactions together: canceling statement due to lock timeout\n/,
	'the log says the group failed');
$holder->query_safe('COMMIT');
ok(applied_up_to(2, $offsets{2}[-1]),
	'once the lock is gone, partition 2 applies the rest');
is($node->safe_psql('postgres', 'SELECT count(*) FROM items'),
	$rows + 80, 'every row is there');
applied_once('a checkpoint row locked');

# Running caught up, a transaction is committed once nothing more is
# queued, after its record was handled: an error then, as it writes its
# checkpoint, still says which transaction, from which node.
$holder->query_safe(
	'BEGIN; SELECT 1 FROM replkafka.consumer_checkpoints WHERE partition = 0 FOR UPDATE');
$log_offset = -s $node->logfile;
my ($late) = produce(0, 1);
ok(retrying(0, $late, '55P03', 'canceling statement due to lock timeout'),
	'an error as a transaction alone commits names the transaction');
like(slurp_file($node->logfile, $log_offset),
	qr/ERROR:  canceling statement due to lock timeout\n[^\n]*CONTEXT:  (?:[^\n]*\n\t)*?applying transaction \d+ of generation 1 from node "node_x" \(partition 0, Kafka offset $late\)\n/,
	'the log gives its context: transaction, node, partition and offset');
$holder->query_safe('COMMIT');
$holder->quit;
ok(applied_up_to(0, $late), 'once the lock is gone, the partition applies it');
applied_once('a transaction alone');
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET lock_timeout; SELECT pg_reload_conf()");

# An error that passes by itself (a serialization failure) in a group: the
# transaction that fails alone is tried again, counted, and applies once
# the cause is gone.
$node->safe_psql('postgres', "INSERT INTO refuse VALUES ('transient', '40001')");
unfollow(0 .. 3);
$offsets{$_} = [ produce($_, 20, $_ == 3 ? (('v') x 5, 'transient') : ()) ]
  foreach 0 .. 3;
$rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
follow(0 .. 3);
ok(retrying(3, $offsets{3}[5], '40001', 'refused value transient'),
	'a serialization failure: the transaction is tried again alone, and counted');
foreach my $q (0 .. 2)
{
	ok(applied_up_to($q, $offsets{$q}[-1]),
		"meanwhile partition $q applies its 20 transactions");
}
$node->safe_psql('postgres', "DELETE FROM refuse WHERE v = 'transient'");
ok(applied_up_to(3, $offsets{3}[-1]),
	'once the cause is gone, partition 3 applies the rest');
is($node->safe_psql('postgres', 'SELECT count(*) FROM items'),
	$rows + 80, 'every row is there');
is(partition_row(3, "role || ' ' || coalesce(last_error, 'none')"),
	'replica none', 'the error is cleared');
applied_once('a transaction tried again');

done_testing();
