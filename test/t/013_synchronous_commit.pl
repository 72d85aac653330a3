
# Copyright (c) 2026, replkafka authors

# replkafka.synchronous_commit = on: COMMIT returns only once Kafka holds
# the transaction.  With the broker stopped, a COMMIT waits; once the broker
# is back it returns, and the transaction is in Kafka.  A cancelled wait
# warns that the transaction committed locally but might not be in Kafka.
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

$node->safe_psql(
	'postgres', q{
SELECT replkafka.create_cluster(2, 1);
SELECT replkafka.promote(0);
SELECT replkafka.promote(1);
CREATE TABLE t (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('t', 'id');
});

# The ids of the rows Kafka holds.
sub ids_in_kafka
{
	my %ids;
	foreach my $t (ReplkafkaTest::Wire::transactions($kafka->consume('replkafka')))
	{
		next unless $t->{type} eq 'TXN';
		$ids{ $_->{new}{id} } = 1 foreach @{ $t->{changes} };
	}
	return \%ids;
}

# With the broker up, the record is in Kafka when COMMIT returns.
$node->safe_psql('postgres',
	"SET replkafka.synchronous_commit = on; INSERT INTO t VALUES (1, 'one')");
ok(ids_in_kafka()->{1}, 'a synchronous commit is in Kafka when it returns');

# With the broker down, COMMIT waits.
$kafka->stop_broker(1);
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[
		'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		"SET replkafka.synchronous_commit = on; INSERT INTO t VALUES (2, 'two')"
	],
	'>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE '%INSERT INTO t VALUES (2%' AND wait_event_type = 'Extension'}
	),
	'the committing session waits for Kafka');
is($node->safe_psql('postgres', 'SELECT v FROM t WHERE id = 2'),
	'two', 'the transaction is committed locally meanwhile');
$h->pump_nb;
is($out, '', 'the client has no answer yet');

$kafka->start_broker(1);
$h->finish;
like($out, qr/INSERT 0 1/, 'COMMIT returns once the broker is back');
is($err, '', 'without a warning');
ok(ids_in_kafka()->{2}, 'and the transaction is in Kafka');

# A cancelled wait warns and leaves the transaction committed locally.
$kafka->stop_broker(1);
($out, $err) = ('', '');
$h = IPC::Run::start(
	[
		'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		"SET replkafka.synchronous_commit = on; INSERT INTO t VALUES (3, 'three')"
	],
	'>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
$node->poll_query_until(
	'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE '%INSERT INTO t VALUES (3%' AND wait_event_type = 'Extension'})
  or die "the session does not wait";
$node->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%INSERT INTO t VALUES (3%' AND pid <> pg_backend_pid()"
);
$h->finish;
like(
	$err,
	qr/WARNING:  canceling the wait for Kafka due to user request\nDETAIL:  The transaction has already committed locally, but might not have reached Kafka\./,
	'a cancelled wait warns that the transaction committed locally');
like($out, qr/INSERT 0 1/, 'and the statement still succeeds');
is($node->safe_psql('postgres', 'SELECT v FROM t WHERE id = 3'),
	'three', 'the transaction is committed locally');

# Once the broker is back, the shipper delivers it.
$kafka->start_broker(1);
ok( $node->poll_query_until(
		'postgres',
		"SELECT sum(scn & 4294967295) = 3 FROM replkafka.partitions"),
	'the shipper delivers the transaction whose wait was cancelled');
ok(ids_in_kafka()->{3}, 'it is in Kafka');

done_testing();
