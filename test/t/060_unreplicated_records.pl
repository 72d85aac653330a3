
# Copyright (c) 2026, replkafka authors

# A shipper that crashes while its records are in the partition leader's
# log but not yet replicated: one of the two followers stalls (SIGSTOP),
# and stays in the in-sync replicas (the brokers wait long before they drop
# it), node_a commits five transactions, the leader appends the first it
# receives and cannot acknowledge it, and node_a's shipper is killed (a
# crash of the node).
# Consumers read only up to the high watermark, so the shipper that starts
# next cannot see those records; they become part of the log as soon as
# the follower is back.  It must not ship their transactions again (the
# log would hold them twice, with the same SCN): it reads on up to a
# HEARTBEAT that Kafka acknowledged, then goes on after them.  The crashed
# shipper had one request at a time in flight: none queued behind the one
# waiting for the follower lands after the HEARTBEAT.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start(
	brokers => 3,
	config => [ 'replica.lag.time.max.ms=600000', 'broker.session.timeout.ms=600000' ]);
my ($node_a, $node_b) =
  ReplkafkaTest::new_nodes($kafka, 2, conf => "restart_after_crash = on");
foreach my $node ($node_a, $node_b)
{
	$node->safe_psql('postgres', q{
SELECT replkafka.create_cluster(1, 3);
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
}
$node_a->safe_psql('postgres', 'SELECT replkafka.promote(0)');
$node_b->safe_psql('postgres', 'SELECT replkafka.follow(0)');
$node_a->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($_, 'before')")
  foreach 1 .. 10;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'node_b caught up');

# The batches the leader appended at or after offset $from.
my $leader = $kafka->partition_leader('replkafka', 0);

sub appended
{
	my ($from) = @_;
	return grep { $_->{first} >= $from } $kafka->log_batches($leader, 'replkafka', 0);
}

# A follower of partition 0 stalls; node_a commits five transactions,
# which its shipper sends and the leader appends, unreplicated.
my ($follower) = grep { $_ != $leader } 1 .. 3;
my $end = ($kafka->log_batches($leader, 'replkafka', 0))[-1]{last} + 1;
$kafka->pause_broker($follower);
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'unreplicated')")
  foreach 11 .. 15;
ok(ReplkafkaTest::wait_until(sub { appended($end) > 0 }),
	"the leader appended node_a's transactions");
my $producer = (appended($end))[0]{producer};

# node_a crashes; its next shipper reads the partition back.
my $shipper = ReplkafkaTest::worker_pid($node_a, 'replkafka shipper');
my $log_at = -s $node_a->logfile;
kill 'KILL', $shipper;
ok( ReplkafkaTest::poll_restarting($node_a, qq{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'replkafka shipper' AND pid <> $shipper}),
	'node_a crash-restarted with a new shipper');

# It writes to the partition (a HEARTBEAT, which waits for the follower
# like the rest) before the follower comes back.
ok(ReplkafkaTest::wait_until(sub { grep { $_->{producer} != $producer } appended($end) }),
	'the new shipper writes to the partition while the follower stalls');
my $waiting = ReplkafkaTest::worker_pid($node_a, 'replkafka shipper');
ok( $node_a->poll_query_until(
		'postgres', q{
SELECT state = 'retrying' AND last_error ~ 'HEARTBEAT record that partition 0 waits for'
  FROM replkafka.workers WHERE kind = 'shipper'}),
	'the shipper shows that it waits for the HEARTBEAT')
  or diag $node_a->safe_psql('postgres', 'SELECT * FROM replkafka.workers');
$kafka->resume_broker($follower);
is(ReplkafkaTest::worker_pid($node_a, 'replkafka shipper'),
	$waiting, 'it waited without restarting');

ok( $node_a->wait_for_log(
		qr/replkafka shipper resumes partition 0 of generation 1 at sequence \d+/, $log_at),
	'the new shipper resumes the partition');
my $appended = 0;
$appended += $_->{last} - $_->{first} + 1
  foreach grep { $_->{producer} == $producer } appended($end);
like(slurp_file($node_a->logfile, $log_at),
	qr/replkafka shipper resumes partition 0 of generation 1 at sequence @{[ 11 + $appended ]}\b/,
	"after the transactions of the earlier shipper it could not read at first ($appended)");
$node_a->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($_, 'after')")
  foreach 16 .. 20;
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'node_b caught up again');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM items'), '20',
	'no row lost, none added');

# The log: each transaction once, in order; the HEARTBEAT between the
# earlier shipper's records and the next shipper's, with the last
# transaction it could read at first.
my @log = ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
my @txns = map { $_->{sequence} } grep { $_->{type} eq 'TXN' } @log;
is("@txns", join(' ', 1 .. 20), 'the log holds each transaction once, in order');
my ($beat) = grep { $_->{type} eq 'HEARTBEAT' } @log;
my %offset_of = map { $_->{sequence} => $_->{offset} } grep { $_->{type} eq 'TXN' } @log;
is($beat && "$beat->{origin} $beat->{generation} $beat->{sequence}", 'node_a 1 10',
	"node_a's HEARTBEAT of generation 1 is in the log, after transaction 10");
ok( $beat
	  && $beat->{offset} > $offset_of{ 10 + $appended }
	  && $beat->{offset} < $offset_of{ 11 + $appended },
	"after the earlier shipper's records, before the next shipper's");
is($node_b->safe_psql('postgres', 'SELECT last_error IS NULL FROM replkafka.partitions'),
	't', 'node_b applies the HEARTBEAT as nothing');

done_testing();
