
# Copyright (c) 2026, replkafka authors

# A transaction larger than 2 GB is applied by a replica whose apply worker
# collects its chunks in a temporary file, so that the worker's memory
# stays far below the transaction's size (security issue, item 6: a
# transaction over 1 GB used to crash-loop the worker).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

# 2100 rows of 1 MiB of text: 2.05 GiB in the log.
my $rows = 2100;
my $kafka = ReplkafkaTest::Kafka->start();
# One apply worker on node_b, so that the one watched is the one applying.
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2,
	conf => 'replkafka.apply_workers = 1');
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 1, { node_a => [0] }, q{
CREATE TABLE big (id int PRIMARY KEY, filler text NOT NULL);
SELECT replkafka.add_table('big', 'id');
});

my $apply = ReplkafkaTest::worker_pid($node_b, 'replkafka apply worker');
ok($apply, 'node_b runs an apply worker');

my $before = ReplkafkaTest::anon_rss($apply);
$node_a->safe_psql('postgres',
	"INSERT INTO big SELECT g, repeat(md5(g::text), 32768) FROM generate_series(1, $rows) g");
my $size = $node_a->safe_psql('postgres', 'SELECT sum(octet_length(filler)) FROM big');
cmp_ok($size, '>', 2 * 1024 * 1024 * 1024, 'the transaction is larger than 2 GiB');

# Watch the apply worker's memory until the transaction is applied.
my $peak = $before;
my $applied = 0;
my $deadline = time + 3 * $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	my $rss = ReplkafkaTest::anon_rss($apply);
	$peak = $rss if $rss > $peak;
	if ($node_b->safe_psql('postgres',
			'SELECT scn & 4294967295 FROM replkafka.partitions WHERE partition = 0') eq '1')
	{
		$applied = 1;
		last;
	}
	Time::HiRes::usleep(100_000);
}
ok($applied, 'node_b applied the transaction');
is(ReplkafkaTest::worker_pid($node_b, 'replkafka apply worker'), $apply,
	'with the same apply worker, never restarted');
note "apply worker anonymous memory: $before kB before, $peak kB at most";
cmp_ok(($peak - $before) * 1024, '<', 256 * 1024 * 1024,
	'the apply worker\'s memory grew by less than 256 MiB');

my $checksum = q{SELECT count(*) || ' ' || sum(octet_length(filler)) || ' ' ||
	md5(string_agg(md5(filler), '' ORDER BY id)) FROM big};
is($node_b->safe_psql('postgres', $checksum), $node_a->safe_psql('postgres', $checksum),
	'node_b has the same rows as node_a');
is($node_b->safe_psql('postgres', 'SELECT count(*) FROM pg_ls_tmpdir()'), '0',
	'the temporary file of the chunks is gone');

done_testing();
