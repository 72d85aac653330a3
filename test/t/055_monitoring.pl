
# Copyright (c) 2026, replkafka authors

# Monitoring as doc/operations.md sets it up: query-exporter runs
# monitoring/query-exporter.yaml as a role with only the grants the
# document lists, and a scrape of its /metrics shows each partition's role,
# generation, shipped and applied positions, lag, errors, and each
# worker's state and restarts, as they change.  The alert rules of
# monitoring/alerts.yml pass promtool's checks and their unit tests
# (monitoring/alerts.test.yml), and every metric they use is one the
# exporter serves.
use strict;
use warnings;

use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $venv = "$ENV{TESTDIR}/test/monitoring/cache/venv";
my $promtool = "$ENV{TESTDIR}/test/monitoring/cache/bin/promtool";
-x "$venv/bin/python3" && -x $promtool
  or die "the monitoring tools are not installed: run test/monitoring/install";

# The alerting rules are valid, and fire as their unit tests say.
foreach my $args ([ 'check', 'rules', 'alerts.yml' ],
	[ 'test', 'rules', 'alerts.test.yml' ])
{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $promtool, @$args ], '>', \$out, '2>', \$err,
		init => sub { chdir "$ENV{TESTDIR}/monitoring" or die $!; });
	ok($ok, "promtool @$args") or diag "$out$err";
}

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 2,
	{ node_a => [0], node_b => [1] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

# The monitoring role, with exactly the grants doc/operations.md lists.
my $doc = slurp_file("$ENV{TESTDIR}/doc/operations.md");
$doc =~ /```sql\n(CREATE ROLE replkafka_monitor.*?)```/s
  or die "doc/operations.md lists no grants for replkafka_monitor";
$node_b->safe_psql('postgres', $1);

# The exporter, with the shipped configuration but querying every second.
my $config = slurp_file("$ENV{TESTDIR}/monitoring/query-exporter.yaml");
$config =~ s/interval: 15s/interval: 1s/g == 3 or die "three queries expected";
my $config_file = "$PostgreSQL::Test::Utils::tmp_check/query-exporter.yaml";
open my $fh, '>', $config_file or die;
print $fh $config;
close $fh;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($out, $err) = ('', '');
$ENV{REPLKAFKA_DSN} =
    'postgresql://replkafka_monitor@/postgres?host='
  . $node_b->host
  . '&port='
  . $node_b->port;
my $exporter = IPC::Run::start(
	[
		"$venv/bin/python3", '-c',
		'import sys; from query_exporter.main import script; sys.exit(script())',
		'--config', $config_file, '-H', '127.0.0.1', '-p', $port
	],
	'>', \$out, '2>', \$err);

my $http = HTTP::Tiny->new(timeout => 10);

# The scrape: "name{labels}" => value.
sub scrape
{
	my $res = $http->get("http://127.0.0.1:$port/metrics");
	return undef unless $res->{success};
	my %m;
	foreach (split /\n/, $res->{content})
	{
		next if /^#/;
		/^(\S+) (\S+)$/ and $m{$1} = $2;
	}
	return \%m;
}

# The value of a replkafka metric of the scrape, by its labels.
sub value
{
	my ($m, $name, %labels) = @_;
	foreach my $key (keys %$m)
	{
		next unless $key =~ /^\Q$name\E\{(.*)\}$/;
		my %l = $1 =~ /(\w+)="([^"]*)"/g;
		next if grep { !defined $l{$_} || $l{$_} ne $labels{$_} } keys %labels;
		return $m->{$key} + 0;
	}
	return undef;
}

# Scrape until $check->($metrics) holds.
sub scrape_until
{
	my ($check, $name) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my $m;
	while (time < $deadline)
	{
		$m = scrape();
		if ($m && $check->($m))
		{
			pass($name);
			return $m;
		}
		select(undef, undef, undef, 0.25);
	}
	fail($name);
	diag explain $m;
	diag $err;
	return $m;
}

my $m = scrape_until(
	sub {
		(value($_[0], 'replkafka_worker_running', kind => 'shipper') // 0) == 1;
	},
	'the exporter serves the metrics of node_b');
is(value($m, 'replkafka_partition_primary', partition => 1, role => 'primary'), 1,
	'partition 1: primary');
is(value($m, 'replkafka_partition_primary', partition => 0, role => 'replica'), 0,
	'partition 0: replica');
is(value($m, 'replkafka_partition_generation', partition => 1), 1,
	'generation of partition 1');
is(join(',', map { value($m, 'replkafka_worker_running', kind => 'apply', index => $_) } 0, 1),
	'1,1', 'both apply workers run');
is(value($m, 'replkafka_worker_restarts_total', kind => 'shipper'), 0,
	'the shipper never restarted');
is(value($m, 'replkafka_worker_failing', kind => 'shipper'), 0,
	'the shipper is not failing');
ok(defined value($m, 'replkafka_wal_unshipped_bytes'), 'unshipped WAL is served');

# Shipped: transactions of partition 1 on its primary.
my @keys1 = ReplkafkaTest::keys_of_partition($node_b, 'items', 1, 5);
$node_b->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'b')") foreach @keys1;
scrape_until(
	sub {
		(value($_[0], 'replkafka_partition_transactions_total', partition => 1) // 0) == 5;
	},
	'shipped transactions of partition 1 are counted');

# Applied, and lag: the apply worker of partition 0 stops while node_a writes.
my @keys0 = ReplkafkaTest::keys_of_partition($node_a, 'items', 0, 21);
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($keys0[0], 'a')");
$m = scrape_until(
	sub {
		(value($_[0], 'replkafka_partition_transactions_total', partition => 0) // 0) == 1;
	},
	'an applied transaction of partition 0 is counted');
my $offset = value($m, 'replkafka_partition_offset_total', partition => 0);
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'a')")
  foreach @keys0[ 1 .. 20 ];
$m = scrape_until(
	sub {
		(value($_[0], 'replkafka_partition_transactions_total', partition => 0) // 0) == 21;
	},
	'applied transactions are counted');
cmp_ok(value($m, 'replkafka_partition_offset_total', partition => 0),
	'>=', $offset + 20, 'and the applied offset moved on by as many records');
is(value($m, 'replkafka_partition_lag_messages', partition => 0), 0,
	'caught up: no lag');

# A lag that stays: a session of node_b holds a lock the apply worker
# needs, while node_a writes.
my $locker = ReplkafkaTest::background_psql($node_b,
	'BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3600);');
$node_b->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_locks WHERE relation = 'items'::regclass AND mode = 'AccessExclusiveLock' AND granted})
  or die 'the lock was not taken';
my @more = ReplkafkaTest::keys_of_partition($node_a, 'items', 0, 3, 200000);
$node_a->safe_psql('postgres', "INSERT INTO items VALUES ($_, 'a')") foreach @more;
scrape_until(
	sub {
		(value($_[0], 'replkafka_partition_lag_messages', partition => 0) // 0) >= 1
		  && (value($_[0], 'replkafka_partition_lag_seconds', partition => 0) // 0) > 1;
	},
	'an apply worker waiting for a lock shows as lag in messages and seconds');
$node_b->safe_psql('postgres', q{
SELECT pg_cancel_backend(pid) FROM pg_locks
 WHERE relation = 'items'::regclass AND mode = 'AccessExclusiveLock' AND granted});
$locker->{h}->finish;
scrape_until(
	sub {
		(value($_[0], 'replkafka_partition_lag_messages', partition => 0) // 1) == 0
		  && (value($_[0], 'replkafka_partition_transactions_total', partition => 0) // 0) == 24;
	},
	'and the lag goes once it gets the lock');

# Kafka down: the workers show it.
$kafka->stop_broker(1);
scrape_until(
	sub {
		(value($_[0], 'replkafka_worker_running', kind => 'shipper') // 1) == 0
		  && (value($_[0], 'replkafka_worker_failing', kind => 'shipper') // 0) == 1;
	},
	'brokers down: the shipper is not running and failing');
$kafka->start_broker(1);
scrape_until(
	sub {
		(value($_[0], 'replkafka_worker_running', kind => 'shipper') // 0) == 1
		  && (value($_[0], 'replkafka_worker_running', kind => 'apply', index => 0) // 0) == 1;
	},
	'brokers back: the workers run again');

# A malformed record puts the replica partition in error.
$kafka->produce('replkafka', 0, 'not a replkafka record');
scrape_until(
	sub {
		(value($_[0], 'replkafka_partition_in_error', partition => 0, role => 'error') // 0) == 1
		  && (value($_[0], 'replkafka_partition_failing', partition => 0) // 0) == 1;
	},
	'a partition in error is served as such');

# The node stops answering: the exporter counts failed queries.
$node_b->stop;
scrape_until(
	sub {
		my $errors = 0;
		$errors += $_[0]{$_} foreach grep { /^database_errors_total/ } keys %{ $_[0] };
		$errors > 0;
	},
	'a node that does not answer is counted in database_errors_total');

# Every metric the alert rules use is served (the exporter's own too,
# whose errors now exist; the node's metrics stay for two minutes).
my $alerts = slurp_file("$ENV{TESTDIR}/monitoring/alerts.yml");
my %used = map { $_ => 1 } $alerts =~ /\b((?:replkafka_|queries_|database_errors_)\w+)/g;
my %served = map { /^(\w+)/ ? ($1 => 1) : () } keys %{ scrape() // {} };
my @missing = grep { !$served{$_} } sort keys %used;
ok(scalar(keys %used) >= 8 && !@missing,
	'every metric of the alert rules is served')
  or diag 'missing: ' . join(', ', @missing);

$exporter->kill_kill;
$node_a->stop;
done_testing();
