
# Copyright (c) 2026, replkafka authors

=pod

=head1 NAME

ReplkafkaTest - replkafka nodes for TAP tests

=head1 SYNOPSIS

  use ReplkafkaTest;
  use ReplkafkaTest::Kafka;

  my $kafka = ReplkafkaTest::Kafka->start();

  # PostgreSQL nodes with wal_level=logical, replkafka preloaded, their own
  # replkafka.node_name and replkafka.brokers pointing at $kafka, started,
  # with the extension created in database postgres.
  my @nodes = ReplkafkaTest::new_nodes($kafka, 2);

=head1 DESCRIPTION

Functions that create replkafka nodes (PostgreSQL::Test::Cluster
instances), set up a replkafka cluster on them and watch them.  The other
modules under ReplkafkaTest/ hold the rest of the harness:
ReplkafkaTest::Kafka (brokers), ReplkafkaTest::Mirror (MirrorMaker 2),
ReplkafkaTest::Writer (a background client) and ReplkafkaTest::Wire (a
reader of the wire format).

=cut

package ReplkafkaTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;

=pod

=head1 FUNCTIONS

=over

=item ReplkafkaTest::new_node($name, $kafka, %params)

Create and start one node.  %params: B<conf> (extra postgresql.conf lines),
B<start> (default 1), B<extension> (create the extension; default 1).

=cut

sub new_node
{
	my ($name, $kafka, %params) = @_;

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical');
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'replkafka'
max_worker_processes = 32
max_replication_slots = 10
replkafka.node_name = '$name'
replkafka.brokers = '@{[ $kafka->bootstrap ]}'
replkafka.request_timeout = '30s'
});
	# Servers that restrict output plugins must allow the shipper's.
	$node->append_conf('postgresql.conf', plugin_libraries_conf())
	  if plugin_libraries_conf() ne '';
	$node->append_conf('postgresql.conf', $params{conf}) if $params{conf};
	return $node if defined $params{start} && !$params{start};

	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION replkafka')
	  unless defined $params{extension} && !$params{extension};
	return $node;
}

# scripts/lib.sh, found relative to this file.
my $lib_sh = abs_path(dirname(__FILE__) . '/../../scripts/lib.sh');

# The postgresql.conf line that allows replkafka's output plugin on a
# server that restricts output plugins, or '': plugin_libraries_conf of
# scripts/lib.sh, for the postgres on PATH.
my $plugin_libraries_conf;

sub plugin_libraries_conf
{
	if (!defined $plugin_libraries_conf)
	{
		my $err;
		IPC::Run::run([ 'bash', '-c', '. "$1" && plugin_libraries_conf', 'bash', $lib_sh ],
			'>', \$plugin_libraries_conf, '2>', \$err)
		  or die "plugin_libraries_conf of $lib_sh failed:\n$err";
		chomp $plugin_libraries_conf;
	}
	return $plugin_libraries_conf;
}

=pod

=item ReplkafkaTest::new_nodes($kafka, $count, %params)

Create and start $count nodes named node_a, node_b, ...

=cut

sub new_nodes
{
	my ($kafka, $count, %params) = @_;
	return map { new_node('node_' . chr(ord('a') + $_), $kafka, %params) }
	  0 .. $count - 1;
}

=pod

=item ReplkafkaTest::setup_cluster(\@nodes, $partitions, \%primary_of, $sql)

On every node: create the cluster, run $sql (tables and add_table), then
promote the partitions %primary_of lists for the node (by node name) and
follow all the others.

=cut

sub setup_cluster
{
	my ($nodes, $partitions, $primary_of, $sql) = @_;
	foreach my $node (@$nodes)
	{
		$node->safe_psql('postgres', "SELECT replkafka.create_cluster($partitions, 1)");
		$node->safe_psql('postgres', $sql) if $sql;
	}
	foreach my $node (@$nodes)
	{
		$node->safe_psql('postgres', "SELECT replkafka.promote($_)")
		  foreach @{ $primary_of->{ $node->name } || [] };
	}
	foreach my $node (@$nodes)
	{
		my %mine = map { $_ => 1 } @{ $primary_of->{ $node->name } || [] };
		$node->safe_psql('postgres', "SELECT replkafka.follow($_)")
		  foreach grep { !$mine{$_} } 0 .. $partitions - 1;
	}
}

=pod

=item ReplkafkaTest::wait_for_convergence(\@nodes, $table, $key)

Wait until every node shows the same SCN for every partition and the same
checksum of $table's rows in every partition ($key: the partition key
column, default id).  Returns true if they converged within
$PostgreSQL::Test::Utils::timeout_default seconds; shows the differences
otherwise.

=cut

sub wait_for_convergence
{
	my ($nodes, $table, $key) = @_;
	$key //= 'id';
	my $query = qq{
SELECT (SELECT string_agg(partition || ':' || coalesce(scn, 0), ' ' ORDER BY partition)
		  FROM replkafka.partitions) || ' / ' ||
	   coalesce((SELECT string_agg(p || ':' || c, ' ' ORDER BY p)
		  FROM (SELECT replkafka.partition_of('$table', $key) AS p,
					   md5(string_agg(t::text, '|' ORDER BY $key)) AS c
				  FROM $table t GROUP BY 1) s), '')};
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my @states;
	while (time < $deadline)
	{
		@states = map { $_->safe_psql('postgres', $query) } @$nodes;
		return 1 unless grep { $_ ne $states[0] } @states;
		Time::HiRes::usleep(200_000);
	}
	diag $nodes->[$_]->name . ": $states[$_]" foreach 0 .. $#states;
	return 0;
}

=pod

=item ReplkafkaTest::wait_until($cond)

Call $cond every 100 ms until it returns true; returns true if it did
within $PostgreSQL::Test::Utils::timeout_default seconds.  For conditions
outside the database (the Kafka log, the proxy); poll_query_until serves
those a query answers.

=cut

sub wait_until
{
	my ($cond) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		return 1 if $cond->();
		Time::HiRes::usleep(100_000);
	}
	return 0;
}

=pod

=item ReplkafkaTest::count_applications_sql($table)

SQL that counts, on the node it runs on, every application of a row of
$table (keyed by its column id): an ALWAYS trigger, which fires on a
replica too, adds the row's id to table applications (id), which is not
replicated.  A row applied twice shows as two.

=cut

sub count_applications_sql
{
	my ($table) = @_;
	return qq{
CREATE TABLE applications (id bigint NOT NULL);
CREATE FUNCTION count_application() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	INSERT INTO public.applications VALUES (NEW.id);
	RETURN NULL;
END \$\$;
CREATE TRIGGER count_application AFTER INSERT ON $table
	FOR EACH ROW EXECUTE FUNCTION count_application();
ALTER TABLE $table ENABLE ALWAYS TRIGGER count_application;
};
}

=pod

=item ReplkafkaTest::poll_restarting($node, $query, $expected)

poll_query_until for a node that may be restarting after a crash: the
query goes to psql as its -c argument, not on its standard input, so that
a psql that cannot connect yet, and exits before it reads its input, is
one more attempt rather than a broken pipe that ends the test.

=cut

sub poll_restarting
{
	my ($node, $query, $expected) = @_;
	$expected //= 't';
	return wait_until(
		sub {
			my ($stdout, $stderr) = ('', '');
			IPC::Run::run([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', $query ],
				'>', \$stdout, '2>', \$stderr);
			chomp $stdout;
			return $stdout eq $expected && $stderr eq '';
		});
}

=pod

=item ReplkafkaTest::worker_pid($node, $type)

The pid of $node's background worker of type $type ('replkafka shipper',
'replkafka apply worker'), or undef if it does not run.

=cut

sub worker_pid
{
	my ($node, $type) = @_;
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = '$type' LIMIT 1");
	return $pid eq '' ? undef : $pid;
}

=item ReplkafkaTest::stop_shipper($node)

Stop $node's shipper with SIGSTOP once it waits for work, so that it holds
no lock while it is stopped; returns its pid.

=cut

sub stop_shipper
{
	my ($node) = @_;
	my $pid = worker_pid($node, 'replkafka shipper')
	  or die "the shipper of " . $node->name . " does not run";
	$node->poll_query_until('postgres', qq{
SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $pid})
	  or die "the shipper of " . $node->name . " does not wait for work";
	kill 'STOP', $pid;
	return $pid;
}

=item ReplkafkaTest::restart_stopped_shipper($node, $pid)

End $node's shipper $pid, stopped with SIGSTOP, before it does anything
more (SIGTERM is handled first when it continues), and wait until the
postmaster started a new one; returns the new pid.

=cut

sub restart_stopped_shipper
{
	my ($node, $pid) = @_;
	kill 'TERM', $pid;
	kill 'CONT', $pid;
	my $new;
	$node->poll_query_until('postgres', qq{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'replkafka shipper' AND pid <> $pid})
	  or die "the shipper of " . $node->name . " did not restart";
	return worker_pid($node, 'replkafka shipper');
}

=item ReplkafkaTest::background_psql($node, @sql)

Run the statements @sql with psql on $node in the background, each in a
-c of its own (so each runs in a transaction of its own); returns a hash
whose B<h> is the IPC::Run harness and B<out>, B<err> references to what
psql printed.  Finish it with $run->{h}->finish.

=cut

sub background_psql
{
	my ($node, @sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), map { ('-c', $_) } @sql ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return { h => $h, out => \$out, err => \$err };
}

=pod

=item ReplkafkaTest::open_transaction($node, $sql)

Run $sql on $node in a transaction that stays open, in the background,
until end_open_transaction(): a slot created meanwhile waits for it.
Returns its background_psql() hash once it is open.

=cut

sub open_transaction
{
	my ($node, $sql) = @_;
	my $open = background_psql($node,
		"BEGIN; $sql; SELECT pg_sleep($PostgreSQL::Test::Utils::timeout_default)");
	$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE '%pg_sleep%' AND state = 'active' AND pid <> pg_backend_pid()})
	  or die 'the transaction did not open on ' . $node->name;
	return $open;
}

=pod

=item ReplkafkaTest::end_open_transaction($node, $open)

End the transaction of open_transaction() (its session is terminated,
and the transaction rolls back).

=cut

sub end_open_transaction
{
	my ($node, $open) = @_;
	$node->safe_psql('postgres', q{
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE query LIKE '%pg_sleep%' AND backend_type = 'client backend' AND pid <> pg_backend_pid()});
	$open->{h}->finish;
}

=item ReplkafkaTest::waits_for_kafka($node, $pattern)

Wait until exactly one session of $node whose query contains $pattern (a
LIKE pattern) waits on replkafka's wait event: a synchronous commit waiting
for Kafka, a demotion waiting for writers.  Returns true if it did within
the default timeout.

=cut

sub waits_for_kafka
{
	my ($node, $pattern) = @_;
	return $node->poll_query_until('postgres', qq{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE '%$pattern%' AND wait_event_type = 'Extension'});
}

=item ReplkafkaTest::anon_rss($pid)

The anonymous memory of process $pid, in kB (0 if it is gone).

=cut

sub anon_rss
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return 0;
	while (<$fh>)
	{
		return $1 if /^RssAnon:\s+(\d+) kB/;
	}
	return 0;
}

=item ReplkafkaTest::keys_of_partition($node, $table, $partition, $count, $from)

$count integer keys of $table, from $from on, that fall in $partition.

=cut

sub keys_of_partition
{
	my ($node, $table, $partition, $count, $from) = @_;
	$from //= 1;
	return split /\n/, $node->safe_psql('postgres', qq{
SELECT i FROM generate_series($from, $from + 100000) i
 WHERE replkafka.partition_of('$table', i) = $partition
 ORDER BY i LIMIT $count});
}

=back

=cut

1;
