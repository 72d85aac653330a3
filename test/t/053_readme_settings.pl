
# Copyright (c) 2026, replkafka authors

# A node configured exactly as the README's "Installing by hand" says works:
# its postgresql.conf settings and its first SQL block are read from
# README.md (so that they cannot drift from what is tested), with the
# broker list pointed at this test's brokers.  On servers with
# output_plugin_libraries (PostgreSQL 15.19 and later) that list is left
# at its default, which does not name replkafka: the shipper must still
# ship.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $readme = slurp_file("$ENV{TESTDIR}/README.md");
$readme =~ /## Installing by hand\n(.*?)\n## /s or die "no \"Installing by hand\" section";
my $section = $1;
$section =~ /In `postgresql.conf` of every node:\n\n```\n(.*?)```/s
  or die "no postgresql.conf block";
my $conf = $1;
$section =~ /```sql\n(.*?)```/s or die "no SQL block";
my $sql = $1;
like($conf, qr/^shared_preload_libraries = 'replkafka'/m, 'the README loads replkafka');

# create_cluster's default replication factor is 3: three brokers.
my $kafka = ReplkafkaTest::Kafka->start(brokers => 3);
my $bootstrap = $kafka->bootstrap;
$conf =~ s/^replkafka\.brokers = '[^']*'/replkafka.brokers = '$bootstrap'/m
  or die "no replkafka.brokers line";

my $node = PostgreSQL::Test::Cluster->new('node_a');
$node->init;
$node->append_conf('postgresql.conf', $conf);
$node->start;
note 'output_plugin_libraries: ' . $node->safe_psql('postgres',
	q{SELECT coalesce(current_setting('output_plugin_libraries', true), '(none)')});

$node->safe_psql('postgres', $sql);
is($node->safe_psql('postgres', 'SELECT count(*) FROM replkafka.partitions'), '16',
	'the README\'s SQL created a cluster of 16 partitions');

$node->safe_psql('postgres', q{
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance numeric);
SELECT replkafka.add_table('accounts', 'id');
SELECT replkafka.promote(replkafka.partition_of('accounts', 1));
INSERT INTO accounts VALUES (1, 'ann', 100);
});
my $p = $node->safe_psql('postgres', "SELECT replkafka.partition_of('accounts', 1)");
ok($node->poll_query_until('postgres',
		"SELECT scn & 4294967295 = 1 FROM replkafka.partitions WHERE partition = $p"),
	'the row is shipped: Kafka acknowledged its transaction');
my @changes = map { @{ $_->{changes} || [] } }
  grep { $_->{type} eq 'TXN' } ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
is(join(',', map { "$_->{op} $_->{new}{id} $_->{new}{owner}" } @changes), 'insert 1 ann',
	'Kafka holds the row');
is($node->safe_psql('postgres', "SELECT coalesce(last_error, '') FROM replkafka.partitions WHERE partition = $p"),
	'', 'no error');
is($node->safe_psql('postgres',
		q{SELECT string_agg(kind || ' ' || state || ' ' || failing || ' ' || coalesce(error_sqlstate, '-'), ', ' ORDER BY kind DESC, index)
		    FROM replkafka.workers}),
	'shipper running false -, bootstrap running false -, bootstrap running false -, '
	  . 'apply running false -, apply running false -',
	'every worker runs and never failed: the plugin is allowed to the shipper');

done_testing();
