
# Copyright (c) 2026, replkafka authors

# A transaction larger than 100 MB is shipped in chunks and arrives whole,
# while the shipper's memory stays far below the transaction's size.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $rows = 150000;
my $kafka = ReplkafkaTest::Kafka->start();
my $node = ReplkafkaTest::new_node(
	'node_a', $kafka, conf => q{
logical_decoding_work_mem = 16MB
replkafka.kafka_options = 'queue.buffering.max.kbytes=16384'
});

$node->safe_psql(
	'postgres', q{
SELECT replkafka.create_cluster(1, 1);
SELECT replkafka.promote(0);
CREATE TABLE big (id int PRIMARY KEY, filler text NOT NULL);
SELECT replkafka.add_table('big', 'id');
});

my $shipper = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'replkafka shipper'");

my $before = ReplkafkaTest::anon_rss($shipper);
$node->safe_psql('postgres',
	"INSERT INTO big SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, $rows) g"
);
my $size = $node->safe_psql('postgres',
	"SELECT sum(pg_column_size(filler) + 4) FROM big");
cmp_ok($size, '>', 100 * 1024 * 1024, 'the transaction is larger than 100 MB');

# Watch the shipper's memory until Kafka acknowledged the transaction.
my $peak = $before;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	my $rss = ReplkafkaTest::anon_rss($shipper);
	$peak = $rss if $rss > $peak;
	last
	  if $node->safe_psql('postgres',
		"SELECT scn & 4294967295 FROM replkafka.partitions WHERE partition = 0")
	  eq '1';
	Time::HiRes::usleep(100_000);
}
note "shipper anonymous memory: $before kB before, $peak kB at most";
cmp_ok(($peak - $before) * 1024, '<', $size / 2,
	'the shipper\'s memory grows by less than half the transaction\'s size');

my @records = $kafka->consume('replkafka');
my @txn = grep { $_->{type} eq 'TXN' }
  map { ReplkafkaTest::Wire::header($_->{payload}) } @records;
cmp_ok(scalar(@txn), '>', 100, 'the transaction arrived in more than 100 chunks');
is(join(',', map { $_->{chunk} } @txn),
	join(',', 0 .. $#txn), 'chunks are numbered 0, 1, 2, ... in offset order');
is(scalar(grep { $_->{last} } @txn), 1, 'exactly one chunk is marked last');
ok($txn[-1]{last}, 'the last chunk is the last record');
is(scalar(grep { $_->{scn} != $txn[0]{scn} } @txn), 0, 'all chunks carry one SCN');
cmp_ok((sort { $b <=> $a } map { length($_->{body}) } @txn)[0],
	'<=', 512 * 1024, 'no chunk body exceeds the chunk size');

my @t = grep { $_->{type} eq 'TXN' } ReplkafkaTest::Wire::transactions(@records);
is(scalar(@t), 1, 'the chunks form one transaction');
my @changes = @{ $t[0]{changes} };
is(scalar(@changes), $rows, 'the transaction holds every row');
my $ok = 1;
for my $i (0 .. $#changes)
{
	my $c = $changes[$i];
	if ($c->{op} ne 'insert' || $c->{new}{id} != $i + 1
		|| length($c->{new}{filler}) != 1024)
	{
		$ok = 0;
		diag "row $i differs";
		last;
	}
}
ok($ok, 'every row arrived intact and in order');

# WAL records larger than the WAL reader's buffer so far (logical messages
# of 300 kB, 600 kB and 900 kB: the reader grows its buffer for each),
# written among 600 small transactions, so that the shipper reads them
# while it decodes, across many of its transactions: every transaction is
# shipped, and the shipper never restarts.
$node->safe_psql('postgres', q{
CREATE TABLE small (id int PRIMARY KEY);
SELECT replkafka.add_table('small', 'id');
});
my $shipped = q{SELECT scn & 4294967295 FROM replkafka.partitions WHERE partition = 0};
$node->poll_query_until('postgres',
	"SELECT shipped_scn IS NOT NULL FROM replkafka.partition_status() WHERE partition = 0")
  or die 'partition 0 is not shipped';
my $first = $node->safe_psql('postgres', $shipped);
$node->safe_psql('postgres', q{
DO $$
BEGIN
	FOR i IN 1 .. 600 LOOP
		INSERT INTO small VALUES (i);
		COMMIT;
		IF i % 200 = 100 THEN
			PERFORM pg_logical_emit_message(false, 'large', repeat('x', 3000 * (i + 100)));
		END IF;
	END LOOP;
END $$});
ok($node->poll_query_until('postgres', $shipped, $first + 600),
	'600 transactions among large WAL records are shipped');
is($node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'replkafka shipper'"),
	$shipper, 'the shipper never restarted');

done_testing();
