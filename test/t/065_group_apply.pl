
# Copyright (c) 2026, replkafka authors

# Groups: an apply worker that finds transactions queued applies several
# in one local transaction, which writes each partition's checkpoint once.
# The log is written by hand (node_x leads every partition; node_a follows,
# with one apply worker, so that the records of all partitions go through
# the same groups), before node_a follows, so that the worker finds it
# queued.  A group fails whole: an error in one of its transactions, or at
# its commit (a deferred constraint trigger), rolls it back; its partitions
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
-- Every application of a row, counted on this node.
CREATE TABLE applications (id int NOT NULL);
CREATE FUNCTION count_application() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.applications VALUES (NEW.id);
	RETURN NULL;
END $$;
CREATE TRIGGER count_application AFTER INSERT ON items
	FOR EACH ROW EXECUTE FUNCTION count_application();
ALTER TABLE items ENABLE ALWAYS TRIGGER count_application;
-- The values refused as a row is written, and at commit, with the SQLSTATE.
CREATE TABLE refuse (v text PRIMARY KEY, at_commit boolean NOT NULL, sqlstate text NOT NULL);
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	code text;
BEGIN
	SELECT sqlstate INTO code FROM public.refuse
	 WHERE v = NEW.v AND at_commit = (TG_WHEN = 'AFTER');
	IF code IS NOT NULL THEN
		RAISE EXCEPTION 'refused value %', NEW.v USING ERRCODE = code;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_now BEFORE INSERT ON items
	FOR EACH ROW EXECUTE FUNCTION refuse();
ALTER TABLE items ENABLE ALWAYS TRIGGER refuse_now;
CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON items
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();
ALTER TABLE items ENABLE ALWAYS TRIGGER refuse_at_commit;
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
	$node->safe_psql('postgres',
		"SELECT replkafka.follow(p) FROM unnest(ARRAY[@_]) p");
}

sub unfollow
{
	$node->safe_psql('postgres',
		"SELECT replkafka.unfollow(p) FROM unnest(ARRAY[@_]) p");
}

# Wait until $partition applied the transaction at Kafka offset $offset.
sub applied_up_to
{
	my ($partition, $offset) = @_;
	return $node->poll_query_until('postgres', qq{
SELECT kafka_offset >= $offset FROM replkafka.consumer_checkpoints
 WHERE partition = $partition});
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

# An error in a transaction of a group (a trigger refuses its row as it is
# written): the group rolls back, its partitions are read again, and the
# transaction fails alone, with its offset and SQLSTATE; the other
# partitions apply all of theirs, the failing one those before it.
sub refused
{
	my ($p, $at_commit, $code, $label) = @_;
	my $value = "refused $label";
	$node->safe_psql('postgres',
		"INSERT INTO refuse VALUES ('$value', $at_commit, '$code')");
	unfollow(0 .. 3);
	my $log_offset = -s $node->logfile;
	my %offsets;
	foreach my $q (0 .. 3)
	{
		my @values = $q == $p ? (('v') x 9, $value) : ();
		$offsets{$q} = [ produce($q, 20, @values) ];
	}
	my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
	follow(0 .. 3);
	my $bad = $offsets{$p}[9];
	ok( $node->poll_query_until('postgres',
			"SELECT role = 'error' FROM replkafka.partitions WHERE partition = $p"),
		"$label: partition $p stops");
	is(partition_row($p, 'error_sqlstate'), $code,
		"$label: it keeps the SQLSTATE of the transaction that failed");
	like(partition_row($p, 'last_error'),
		qr/^could not apply the transaction at Kafka offset $bad: refused value refused $label$/,
		"$label: the error names the transaction that failed alone");
	foreach my $q (grep { $_ != $p } 0 .. 3)
	{
		ok(applied_up_to($q, $offsets{$q}[-1]),
			"$label: partition $q applies its 20 transactions");
	}
	is($node->safe_psql('postgres', qq{
SELECT kafka_offset FROM replkafka.consumer_checkpoints WHERE partition = $p}),
		$bad - 1, "$label: partition $p applied those before it");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM items'),
		$rows + 3 * 20 + 9, "$label: no row of it or after it is there");
	like(slurp_file($node->logfile, $log_offset),
		qr/LOG:  could not apply \d+ transactions together: refused value refused $label\n.*DETAIL:  Their partitions are applied again from their checkpoints, a transaction at a time\./,
		"$label: the log says the group failed and is applied again");
	applied_once($label);

	# Once the value is accepted, the partition resumes where it stopped.
	$node->safe_psql('postgres', "DELETE FROM refuse WHERE v = '$value'");
	follow($p);
	ok(applied_up_to($p, $offsets{$p}[-1]),
		"$label: partition $p applies the rest once followed again");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM items'),
		$rows + 4 * 20, "$label: every row is there");
	applied_once("$label, followed again");
}
refused(1, 'false', '23514', 'as written');
refused(2, 'true', '23001', 'at commit');

# Running caught up, a transaction is committed once nothing more is
# queued, after its record was handled: an error at its commit still says
# which transaction, from which node, and stops its partition there.
$node->safe_psql('postgres', "INSERT INTO refuse VALUES ('late', true, '23001')");
my $log_offset = -s $node->logfile;
my ($late) = produce(0, 1, 'late');
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'an error at the commit of a transaction alone stops its partition');
like(partition_row(0, 'last_error'),
	qr/^could not apply the transaction at Kafka offset $late: refused value late$/,
	'the error names the transaction');
like(slurp_file($node->logfile, $log_offset),
	qr/ERROR:  refused value late\n[^\n]*CONTEXT:  [^\n]*(?:\n\t[^\n]*)*?applying transaction \d+ of generation 1 from node "node_x" \(partition 0, Kafka offset $late\)/,
	'the log gives its context: transaction, node, partition and offset');
$node->safe_psql('postgres', "DELETE FROM refuse WHERE v = 'late'");
follow(0);
ok(applied_up_to(0, $late), 'followed again, the partition applies it');
applied_once('a transaction alone');

# An error that passes by itself (a serialization failure) in a group: the
# transaction that fails alone is tried again, counted, and applies once
# the cause is gone.
$node->safe_psql('postgres',
	"INSERT INTO refuse VALUES ('transient', false, '40001')");
unfollow(0 .. 3);
my %offsets;
$offsets{$_} = [ produce($_, 20, $_ == 3 ? (('v') x 5, 'transient') : ()) ]
  foreach 0 .. 3;
my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
follow(0 .. 3);
ok($node->poll_query_until('postgres', qq{
SELECT role = 'replica' AND apply_retries >= 1 AND error_sqlstate = '40001'
   AND last_error LIKE 'could not apply the transaction at Kafka offset $offsets{3}[5]: refused value transient; retrying since %'
  FROM replkafka.partitions WHERE partition = 3}),
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
