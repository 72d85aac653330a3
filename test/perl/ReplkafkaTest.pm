
# Copyright (c) 2026, replkafka authors

=pod

=head1 NAME

ReplkafkaTest - a real Kafka cluster and replkafka nodes for TAP tests

=head1 SYNOPSIS

  use ReplkafkaTest;

  # One broker (or three: brokers => 3), stopped when the test ends,
  # even if it dies.
  my $kafka = ReplkafkaTest::Kafka->start();

  # PostgreSQL nodes with wal_level=logical, replkafka preloaded, their own
  # replkafka.node_name and replkafka.brokers pointing at $kafka, started,
  # with the extension created in database postgres.
  my @nodes = ReplkafkaTest::new_nodes($kafka, 2);

  $kafka->topic_partitions('replkafka');    # from kcat's metadata
  $kafka->stop_broker(2); $kafka->start_broker(2);

=head1 DESCRIPTION

Brokers are run by test/kafka/kafka-cluster on loopback ports it picks at
run time; their files live under the test's tmp_check directory.  The
harness gets this test's pid as owner, so its watchdog stops the brokers if
the test is killed; an END block stops them on every normal or failing
exit.

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

# test/kafka/kafka-cluster, found relative to this file.
our $harness = abs_path(dirname(__FILE__) . '/../kafka/kafka-cluster');

# Every Kafka cluster started by this test, stopped in END.
my @started;

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
	$node->append_conf('postgresql.conf',
		"output_plugin_libraries = 'pgoutput, test_decoding, replkafka'")
	  if plugin_libraries_restricted();
	$node->append_conf('postgresql.conf', $params{conf}) if $params{conf};
	return $node if defined $params{start} && !$params{start};

	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION replkafka')
	  unless defined $params{extension} && !$params{extension};
	return $node;
}

# Does this server have output_plugin_libraries (recent minor releases)?
my $plugin_libraries_restricted;

sub plugin_libraries_restricted
{
	if (!defined $plugin_libraries_restricted)
	{
		my $out = `postgres --describe-config 2>/dev/null`;
		$plugin_libraries_restricted = $out =~ /^output_plugin_libraries\t/m ? 1 : 0;
	}
	return $plugin_libraries_restricted;
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

END
{
	# Keep the exit status of the test: stopping brokers must not change it.
	my $exit_code = $?;
	$_->stop foreach @started;
	$? = $exit_code;
}

=pod

=back

=head1 ReplkafkaTest::Kafka

=over

=item ReplkafkaTest::Kafka->start(brokers => N)

Start a KRaft cluster of N brokers (default 1) and wait until it serves
metadata.

=cut

package ReplkafkaTest::Kafka;

use strict;
use warnings;

use File::Basename qw(basename);
use File::Path qw(rmtree);
use PostgreSQL::Test::Utils;
use Time::HiRes;
use Test::More;

my $kafka_count = 0;

sub start
{
	my ($class, %params) = @_;
	my $brokers = $params{brokers} // 1;
	my $dir =
	    "$PostgreSQL::Test::Utils::tmp_check/kafka_"
	  . basename($0, '.pl') . '_'
	  . $kafka_count++;

	rmtree($dir);

	my $self = bless { dir => $dir, brokers => $brokers }, $class;
	push @started, $self;

	my ($out, $err);
	my $ok = IPC::Run::run(
		[ $harness, 'start', $dir, '--brokers', $brokers, '--owner', $$ ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout(300));
	die "could not start Kafka:\n$err" unless $ok;
	chomp $out;
	$self->{bootstrap} = $out;
	note "Kafka with $brokers broker(s) at $out";
	return $self;
}

=pod

=item $kafka->bootstrap()

The bootstrap servers, host:port pairs separated by commas.

=cut

sub bootstrap
{
	return $_[0]->{bootstrap};
}

=pod

=item $kafka->harness(@args)

Run test/kafka/kafka-cluster with @args after the subcommand's name and
this cluster's directory; die on failure; return its standard output.

=cut

sub harness
{
	my ($self, $command, @args) = @_;
	my ($out, $err);
	IPC::Run::run([ $harness, $command, $self->{dir}, @args ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300))
	  or die "kafka-cluster $command failed:\n$err";
	return $out;
}

=pod

=item $kafka->stop(), stop_broker(I, kill => 1), start_broker(I)

Stop the whole cluster, or stop (SIGTERM, or SIGKILL with kill) and start
broker I (1-based).

=cut

sub stop
{
	my ($self) = @_;
	return if $self->{stopped};
	$self->harness('stop');
	$self->{stopped} = 1;
}

sub stop_broker
{
	my ($self, $i, %params) = @_;
	$self->harness('stop-node', $i, $params{kill} ? ('--kill') : ());
}

sub start_broker
{
	my ($self, $i) = @_;
	$self->harness('start-node', $i);
}

=pod

=item $kafka->kcat(@args)

Run kcat against this cluster with @args; return ($exit_ok, $stdout, $stderr).

=cut

sub kcat
{
	my ($self, @args) = @_;
	my ($out, $err);
	my $ok = IPC::Run::run([ 'kcat', '-b', $self->{bootstrap}, @args ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	return ($ok, $out, $err);
}

=pod

=item $kafka->topic_partitions($topic, wait => 1)

The number of partitions of $topic according to kcat's metadata listing,
or undef if the topic does not exist.  With wait, polls (up to
$PostgreSQL::Test::Utils::timeout_default) until the broker kcat asks knows
the topic: brokers learn of a new topic one after the other.

=cut

sub topic_partitions
{
	my ($self, $topic, %params) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;

	while (1)
	{
		my ($ok, $out, $err) = $self->kcat('-L', '-t', $topic);
		die "kcat -L failed: $err" unless $ok;
		if ($out =~ /topic "\Q$topic\E".*Unknown topic or partition/)
		{
			return undef if !$params{wait} || time > $deadline;
			Time::HiRes::usleep(100_000);
			next;
		}
		return $1 if $out =~ /topic "\Q$topic\E" with (\d+) partitions/;
		die "unexpected kcat output:\n$out";
	}
}

=pod

=item $kafka->describe_topic($topic)

Kafka's own description of $topic (TopicCommand --describe).

=cut

sub describe_topic
{
	my ($self, $topic) = @_;
	return $self->harness('describe-topic', $topic);
}

=pod

=back

=cut

1;
