
# Copyright (c) 2026, replkafka authors

# Control records whose acknowledgement is lost, or that are still on
# their way when the node that sent them crashes.  Every client reaches the
# broker through test/kafka/kafka-proxy, which loses acknowledgements and
# holds produce requests on command.
#
# Partition 0, a NEW_GEN written twice: node_b promotes; the
# acknowledgement of its NEW_GEN is lost, so librdkafka writes it again,
# and the second copy is held while node_c promotes.  The log holds node_b's
# NEW_GEN of generation 2, node_c's of generation 3, then the second copy.
# node_b won generation 2 at the first copy, and its producer checkpoint
# must be that copy: its shipper then reads node_c's NEW_GEN and stops,
# instead of shipping transactions every replica skips as a zombie's.
#
# Partition 1, an END_GEN that lands after a crash: node_a demotes; its
# END_GEN is held on its way, and the demoting backend is killed before the
# role change commits (a crash of the node).  Once the END_GEN is sent
# (the bytes were on their way), it lands whenever it lands: node_a,
# restarted, must not take writes in the generation it ended, and its
# shipper finishes the handover.  The replicas then read the END_GEN as the
# end of the generation, and node_b goes on from there.
#
# Partition 2, the same with node_a down until node_c has taken over: node_a
# comes back primary of the generation it ended with node_c's NEW_GEN after
# its last transaction, and must hand the partition over all the same
# rather than take itself for a stale primary; its END_GEN lands after
# node_c's NEW_GEN, a record of an old generation that nobody applies.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start(proxy => 1);
my ($node_a, $node_b, $node_c) =
  ReplkafkaTest::new_nodes($kafka, 3, conf => "restart_after_crash = on");
ReplkafkaTest::setup_cluster([ $node_a, $node_b, $node_c ], 3,
	{ node_a => [ 0, 1, 2 ] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});
my @p0 = ReplkafkaTest::keys_of_partition($node_a, 'items', 0, 20);
my @p1 = ReplkafkaTest::keys_of_partition($node_a, 'items', 1, 20);
my @p2 = ReplkafkaTest::keys_of_partition($node_a, 'items', 2, 20);
$node_a->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($_, 'node_a')")
  foreach @p0[ 0 .. 4 ], @p1[ 0 .. 4 ], @p2[ 0 .. 4 ];
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the replicas caught up');

# The records of a partition: header fields, offset.
sub partition_log
{
	my ($partition) = @_;
	return grep { $_->{partition} == $partition }
	  ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
}

# Wait until the proxy holds $count produce requests.
sub wait_held
{
	my ($count) = @_;
	return ReplkafkaTest::wait_until(sub { $kafka->proxy('held') >= $count });
}

# The role and last error of a partition on a node.
sub partition_state
{
	my ($node, $partition) = @_;
	return $node->safe_psql('postgres',
		"SELECT role || ' ' || coalesce(last_error, '') FROM replkafka.partitions WHERE partition = $partition"
	);
}

# Wait until the END_GEN of a partition is in the log; return the log.
sub wait_for_end_gen
{
	my ($partition) = @_;
	my @log;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		@log = partition_log($partition);
		last if grep { $_->{type} eq 'END_GEN' } @log;
		Time::HiRes::usleep(200_000);
	}
	return @log;
}

# node_a, restarted primary of generation 1 of $partition which it ended:
# it takes no write ($key) and its shipper finishes the handover.
sub node_a_hands_over
{
	my ($partition, $key) = @_;
	my ($ret, $stdout, $stderr) = $node_a->psql('postgres',
		"INSERT INTO items VALUES ($key, 'node_a, restarted')");
	like($stderr, qr/cannot write to partition $partition on node "node_a"/,
		"node_a takes no more writes in the generation of partition $partition it ended");
	ok( $node_a->poll_query_until('postgres',
			"SELECT role = 'replica' FROM replkafka.partitions WHERE partition = $partition"),
		"its shipper finishes the handover of partition $partition");
	ok( $node_a->log_contains(
			qr/finishes the handover of partition $partition that a demotion left after ending generation 1/),
		'and says so');
}

# The rows of a partition, as one string.
sub rows_of
{
	my ($partition) = @_;
	return "SELECT string_agg(id || v, ',' ORDER BY id) FROM items WHERE replkafka.partition_of('items', id) = $partition";
}

#
# Partition 0: node_a hands over, node_b promotes and its NEW_GEN is
# written twice, node_c promotes between the copies.
#
$node_a->safe_psql('postgres', 'SELECT replkafka.demote(0)');
is($kafka->proxy('drop-ack replkafka-node_b-control'), 'ok', 'the proxy will lose an acknowledgement');
my $promote_b = ReplkafkaTest::background_psql($node_b, "SELECT replkafka.promote(0, '120s')");
ok(wait_held(1), "node_b's NEW_GEN was not acknowledged, and is written again");

my @log = partition_log(0);
my ($first) = grep { $_->{type} eq 'NEW_GEN' && $_->{origin} eq 'node_b' } @log;
ok($first, "the first copy of node_b's NEW_GEN is in the log");

# node_c, once it applied node_b's NEW_GEN, starts generation 3.
ok( $node_c->poll_query_until('postgres',
		'SELECT generation = 2 FROM replkafka.partitions WHERE partition = 0'),
	'node_c knows generation 2');
$node_c->safe_psql('postgres', 'SELECT replkafka.promote(0)');
is($kafka->proxy('held'), '1', 'the second copy is still held');
is($kafka->proxy('release'), 'ok', 'the second copy goes on');
$promote_b->{h}->finish;
like(${ $promote_b->{out} }, qr/^2$/, 'node_b won generation 2, at its first copy');

@log = partition_log(0);
my @newgens = map { "$_->{origin}:$_->{generation}" }
  grep { $_->{type} eq 'NEW_GEN' && $_->{offset} >= $first->{offset} } @log;
is(join(' ', @newgens), 'node_b:2 node_c:3 node_b:2',
	'the log holds node_c\'s NEW_GEN between the copies of node_b\'s');
my ($newgen_c) = grep { $_->{type} eq 'NEW_GEN' && $_->{origin} eq 'node_c' } @log;

is( $node_b->safe_psql('postgres',
		'SELECT kafka_offset FROM replkafka.producer_checkpoints WHERE partition = 0'),
	$first->{offset},
	"node_b's producer checkpoint is the copy it won at");
ok( $node_b->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	"node_b's shipper finds node_c's generation");
like(partition_state($node_b, 0),
	qr/another node wrote to the partition: Kafka offset $newgen_c->{offset} holds a NEW_GEN record of generation 3 from node "node_c"/,
	'it names node_c\'s NEW_GEN');
my ($ret, $stdout, $stderr) = $node_b->psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($p0[10], 'node_b')");
isnt($ret, 0, 'node_b acknowledges no write in generation 2');

$node_c->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($_, 'node_c')")
  foreach @p0[ 11 .. 13 ];
ok( $node_a->poll_query_until('postgres',
		"SELECT count(*) = 3 FROM items WHERE v = 'node_c'"),
	'node_c\'s writes reach node_a');
is($node_a->safe_psql('postgres', "SELECT count(*) FROM items WHERE v = 'node_b'"),
	'0', 'nothing of node_b\'s generation 2 is applied');

#
# Partition 1: node_a's END_GEN is held, the demoting backend is killed.
#
is($kafka->proxy('hold replkafka-node_a-control'), 'ok', 'the proxy holds node_a\'s control records');
my $demote_a = ReplkafkaTest::background_psql($node_a, "SELECT replkafka.demote(1, '120s')");
ok(wait_held(1), "node_a's END_GEN is on its way");
my $pid = $node_a->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%replkafka.demote(1%' AND pid <> pg_backend_pid()");
ok($pid =~ /^\d+$/, 'the demoting backend runs');
my $log_offset = -s $node_a->logfile;
kill 'KILL', $pid;
$demote_a->{h}->finish;
$node_a->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
$node_a->wait_for_log(qr/database system is ready to accept connections/, $log_offset);

# Restarted, node_a takes no write in generation 1 of partition 1.
node_a_hands_over(1, $p1[10]);

# The END_GEN lands now, after everything node_a wrote.
is($kafka->proxy('release'), 'ok', 'the END_GEN goes on');
@log = wait_for_end_gen(1);
is(join(' ', map { $_->{type} } grep { $_->{origin} eq 'node_a' } @log),
	'NEW_GEN TXN TXN TXN TXN TXN END_GEN',
	'the log of partition 1: node_a\'s generation, its END_GEN last');

foreach my $node ($node_b, $node_c)
{
	ok( $node->poll_query_until('postgres',
			'SELECT ended FROM replkafka.consumer_checkpoints WHERE partition = 1'),
		$node->name . ' reads the END_GEN as the end of the generation');
	is(partition_state($node, 1), 'replica ', $node->name . ' is a replica of partition 1 still');
}
$node_b->safe_psql('postgres', 'SELECT replkafka.promote(1)');
$node_b->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($_, 'node_b')")
  foreach @p1[ 11 .. 13 ];
my $expected = $node_b->safe_psql('postgres', rows_of(1));
foreach my $node ($node_a, $node_c)
{
	ok($node->poll_query_until('postgres', rows_of(1), $expected),
		$node->name . ' has every row of partition 1, once');
	is(partition_state($node, 1), 'replica ', $node->name . ' applies generation 2 of partition 1');
}

#
# Partition 2: node_a's END_GEN is held, node_a stops (immediate: a
# crash), node_c takes over meanwhile, then node_a starts again.
#
is($kafka->proxy('hold replkafka-node_a-control'), 'ok', 'the proxy holds node_a\'s control records again');
$demote_a = ReplkafkaTest::background_psql($node_a, "SELECT replkafka.demote(2, '120s')");
ok(wait_held(1), "node_a's END_GEN of partition 2 is on its way");
$node_a->stop('immediate');
$demote_a->{h}->finish;
$node_c->safe_psql('postgres', 'SELECT replkafka.promote(2)');
$node_c->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($_, 'node_c')")
  foreach @p2[ 11 .. 12 ];
$node_a->start;
node_a_hands_over(2, $p2[14]);
is(partition_state($node_a, 2), 'replica ', 'without taking itself for a stale primary');
is($kafka->proxy('release'), 'ok', 'the END_GEN of partition 2 goes on');
@log = wait_for_end_gen(2);
is(join(' ', map { "$_->{type}:$_->{origin}" } grep { $_->{type} =~ /^(NEW|END)_GEN$/ } @log),
	'NEW_GEN:node_a NEW_GEN:node_c END_GEN:node_a',
	'node_a\'s END_GEN lands after node_c\'s NEW_GEN');
$node_c->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO items VALUES ($p2[13], 'node_c')");
$expected = $node_c->safe_psql('postgres', rows_of(2));
foreach my $node ($node_a, $node_b)
{
	ok($node->poll_query_until('postgres', rows_of(2), $expected),
		$node->name . ' has every row of partition 2, once');
	is(partition_state($node, 2), 'replica ', $node->name . ' applies generation 2 of partition 2');
}

done_testing();
