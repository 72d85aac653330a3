
# Copyright (c) 2026, replkafka authors

# Long operations say where they are: a replica catching up after follow(),
# promote() catching up a lagging node, and demote() waiting for writers
# show their transition, phase, start and records in replkafka.partitions,
# and promote() and demote() send a NOTICE every few seconds.  Each is held
# at its step by a lock or an open transaction, so the test sees it there.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);
my $schema = q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
};
ReplkafkaTest::setup_cluster([$node_a], 1, { node_a => [0] }, $schema);
$node_b->safe_psql('postgres', "SELECT replkafka.create_cluster(1, 1); $schema");

my $next = 1;

sub write_rows
{
	my ($node, $count) = @_;
	$node->safe_psql('postgres',
		join('', map { "INSERT INTO items VALUES ($_, 'x');\n" } $next .. $next + $count - 1));
	$next += $count;
}

# Hold items on $node with a lock its apply worker waits for.
sub lock_items
{
	my ($node) = @_;
	my $h = ReplkafkaTest::background_psql($node,
		'BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3600);');
	$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks
 WHERE relation = 'items'::regclass AND mode = 'AccessExclusiveLock' AND granted})
	  or die 'the lock was not taken';
	return $h;
}

sub unlock_items
{
	my ($node, $h) = @_;
	$node->safe_psql('postgres', q{
SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3600)%'
   AND pid <> pg_backend_pid()});
	$h->{h}->finish;
}

# Wait until the background psql $run printed a line like $re on stderr.
sub notice_like
{
	my ($run, $re, $name) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline && ${ $run->{err} } !~ $re)
	{
		$run->{h}->pump_nb;
		select(undef, undef, undef, 0.2);
	}
	like(${ $run->{err} }, $re, $name);
}

write_rows($node_a, 300);
# The catch-up goes to the log's end when the replica first hears of it:
# all 300 transactions are in Kafka before it starts.
$node_a->poll_query_until('postgres',
	q{SELECT scn & 4294967295 = 300 FROM replkafka.partitions WHERE partition = 0})
  or die 'node_a did not ship the records node_b has to catch up with';

# follow(): the apply worker waits for the lock after its first record.
my $lock = lock_items($node_b);
$node_b->safe_psql('postgres', 'SELECT replkafka.follow(0)');
ok( $node_b->poll_query_until(
		'postgres', q{
SELECT transition = 'following' AND phase = 'catching up'
   AND records_total >= 300 AND records_done < records_total
   AND transition_started > now() - interval '1 minute'
  FROM replkafka.partitions WHERE partition = 0}),
	'follow: the replica shows it is catching up, with the records to read');
unlock_items($node_b, $lock);
ok( $node_b->poll_query_until(
		'postgres', q{
SELECT transition IS NULL AND phase IS NULL AND records_done IS NULL
  FROM replkafka.partitions WHERE partition = 0}),
	'follow: and shows nothing once caught up');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items'), '300',
	'follow: every row was applied');

# promote(): a lagging node catches up first.
$lock = lock_items($node_b);
write_rows($node_a, 200);
$node_a->poll_query_until('postgres',
	q{SELECT scn & 4294967295 = 500 FROM replkafka.partitions WHERE partition = 0})
  or die 'node_a did not ship the records node_b has to catch up with';
my $promote = ReplkafkaTest::background_psql($node_b,
	q{SELECT replkafka.promote(0, '120s')});
ok( $node_b->poll_query_until(
		'postgres', q{
SELECT transition = 'promoting' AND phase = 'catching up'
   AND records_total >= 200 AND records_done < records_total
  FROM replkafka.partitions WHERE partition = 0}),
	'promote: the view shows it catching up, with the records to read');
notice_like($promote,
	qr/NOTICE:  promoting partition 0: catching up, \d+ of \d+ records read/,
	'promote: the session is told how far it read');
unlock_items($node_b, $lock);
$promote->{h}->finish;
is(${ $promote->{out} }, "2\n", 'promote: then it won generation 2');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items'), '500',
	'promote: after applying every row');

# demote(): an open transaction holds it at waiting for writers.  The
# apply workers are stopped throughout, so that the view is seen before
# one takes the partition up as a replica.
my @appliers = split /\n/, $node_b->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'replkafka apply worker'});
kill 'STOP', @appliers;
my ($key) = ReplkafkaTest::keys_of_partition($node_b, 'items', 0, 1, 10000);
my $writer = ReplkafkaTest::background_psql($node_b,
	"BEGIN; INSERT INTO items VALUES ($key, 'open'); SELECT pg_sleep(3600);");
ok( $node_b->poll_query_until(
		'postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'BEGIN; INSERT%' AND wait_event = 'PgSleep'}),
	'demote: a transaction writes the partition and stays open');
my $demote = ReplkafkaTest::background_psql($node_b,
	q{SELECT replkafka.demote(0, '120s')});
ok( $node_b->poll_query_until(
		'postgres', q{
SELECT transition = 'demoting' AND phase = 'waiting for writers'
   AND records_total IS NULL AND transition_started IS NOT NULL
  FROM replkafka.partitions WHERE partition = 0}),
	'demote: the view shows it waiting for writers');
notice_like($demote,
	qr/NOTICE:  demoting partition 0: waiting for writers, 1 transaction still writes it/,
	'demote: the session is told what it waits for');
unlock_items($node_b, $writer);
$demote->{h}->finish;
like(${ $demote->{err} }, qr/^(NOTICE:.*\n)*$/, 'demote: then it succeeds');
is($node_b->safe_psql('postgres', q{
SELECT role || ' ' || coalesce(transition, 'none') || ' '
       || coalesce(lag_messages::text, 'unknown') || ' ' || (p.scn = cc.scn)
  FROM replkafka.partitions p
  JOIN replkafka.consumer_checkpoints cc USING (partition)}),
	'replica none unknown true',
	'demote: a replica, with no transition left, no lag known before a worker takes it up, and its checkpoint\'s SCN');
kill 'CONT', @appliers;
ok( $node_b->poll_query_until(
		'postgres', q{
SELECT role || ' ' || coalesce(transition, 'none') || ' ' || lag_messages
  FROM replkafka.partitions},
		'replica none 0'),
	'demote: once an apply worker takes it up, no lag and no catch-up');

$node_a->stop;
$node_b->stop;
done_testing();
