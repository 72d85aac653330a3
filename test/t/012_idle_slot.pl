
# Copyright (c) 2026, replkafka authors

# Idle partitions never pin WAL: with WAL written only by tables that are
# not replicated, the shipper's slot keeps advancing.
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
SELECT replkafka.create_cluster(4, 1);
SELECT replkafka.promote(p) FROM generate_series(0, 3) p;
CREATE TABLE replicated (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('replicated', 'id');
CREATE TABLE local_only (id int PRIMARY KEY, v text);
});
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = 'replkafka'")
  or die "the shipper did not create its slot";

my $start = $node->safe_psql('postgres',
	"SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'replkafka'");

# 30 MB of WAL from a table that is not replicated, in many transactions.
for my $i (1 .. 10)
{
	$node->safe_psql('postgres',
		"INSERT INTO local_only SELECT g, repeat('x', 1000) FROM generate_series($i * 100000, $i * 100000 + 2999) g"
	);
}
$node->safe_psql('postgres', 'CHECKPOINT');
my $end = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
cmp_ok(
	$node->safe_psql('postgres', "SELECT pg_wal_lsn_diff('$end', '$start')"),
	'>', 20_000_000, 'more than 20 MB of WAL was written');

ok( $node->poll_query_until(
		'postgres',
		"SELECT restart_lsn >= '$end' FROM pg_replication_slots WHERE slot_name = 'replkafka'"
	),
	'the slot\'s restart_lsn moves past all that WAL');
ok( $node->poll_query_until(
		'postgres',
		"SELECT confirmed_flush_lsn >= '$end' FROM pg_replication_slots WHERE slot_name = 'replkafka'"
	),
	'the slot\'s confirmed position moves past it too');

# Nothing was shipped but the NEW_GEN records.
my @records = $kafka->consume('replkafka');
is(scalar(grep { ReplkafkaTest::Wire::header($_->{payload})->{type} eq 'TXN' } @records),
	0, 'no transaction of a table that is not replicated reaches Kafka');

done_testing();
