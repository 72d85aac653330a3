
# Copyright (c) 2026, replkafka authors

=pod

=head1 NAME

ReplkafkaTest::Kafka - a real Kafka cluster for TAP tests

=head1 SYNOPSIS

  use ReplkafkaTest::Kafka;

  # One broker (or three: brokers => 3), stopped when the test ends,
  # even if it dies.
  my $kafka = ReplkafkaTest::Kafka->start();

  $kafka->topic_partitions('replkafka');    # from kcat's metadata
  $kafka->stop_broker(2); $kafka->start_broker(2);

=head1 DESCRIPTION

Brokers are run by test/kafka/kafka-cluster on loopback ports it picks at
run time; their files live under the test's tmp_check directory.  The
harness gets this test's pid as owner, so its watchdog stops the brokers if
the test is killed; an END block stops them on every normal or failing
exit.

=head1 METHODS

=over

=item ReplkafkaTest::Kafka->start(brokers => N, secure => { user => password, ... }, auto_create => 1, proxy => 1, config => [ 'key=value', ... ])

Start a KRaft cluster of N brokers (default 1) and wait until it serves
metadata.  With B<secure>, one broker whose clients connect over SASL_SSL
with SCRAM-SHA-512 as one of the users given, and an authorizer that
allows nothing without an ACL (see $kafka->acl); the harness's own kcat
calls connect as the cluster's super user.  With B<auto_create>, the
brokers create a topic a client asks for, as Kafka does by default.  With
B<proxy>, one broker that every client reaches through
test/kafka/kafka-proxy (see $kafka->proxy).  B<config> adds settings to
every broker's server.properties.

=cut

package ReplkafkaTest::Kafka;

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Path qw(rmtree);
use IPC::Run;
# Loaded before the END block below is compiled, so that END blocks run in
# the same order whatever order a test loads the modules in: this one, which
# stops the brokers, before PostgreSQL::Test::Cluster's, which stops the
# nodes.
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest::Mirror;
use Time::HiRes;
use Test::More;

# test/kafka/kafka-cluster, found relative to this file.
our $harness = abs_path(dirname(__FILE__) . '/../../kafka/kafka-cluster');

# Every Kafka cluster and mirror started by this test, stopped in END.
my @started;

END
{
	# Keep the exit status of the test: stopping brokers must not change it.
	my $exit_code = $?;
	$_->stop foreach @started;
	$? = $exit_code;
}

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

	my $self = bless { dir => $dir, brokers => $brokers, secure => $params{secure} }, $class;
	push @started, $self;

	my @secure = $params{secure}
	  ? ('--secure', join(',', map { "$_:$params{secure}{$_}" } sort keys %{ $params{secure} }))
	  : ();
	push @secure, '--auto-create' if $params{auto_create};
	push @secure, '--proxy' if $params{proxy};
	push @secure, map { ('--config', $_) } @{ $params{config} || [] };
	my ($out, $err);
	my $ok = IPC::Run::run(
		[ $harness, 'start', $dir, '--brokers', $brokers, '--owner', $$, @secure ],
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

=item $kafka->client_options($user)

For a secure cluster: the replkafka.kafka_options that connect as $user.

=item $kafka->acl(@args)

For a secure cluster: run Kafka's ACL command with @args, as the super
user; return its output.

=cut

sub client_options
{
	my ($self, $user) = @_;
	return "security.protocol=sasl_ssl, sasl.mechanisms=SCRAM-SHA-512, "
	  . "sasl.username=$user, sasl.password=$self->{secure}{$user}, "
	  . "ssl.ca.location=$self->{dir}/ca.pem";
}

sub acl
{
	my ($self, @args) = @_;
	return $self->harness('acl', @args);
}

=pod

=item $kafka->grant_node($user)

For a secure cluster: the ACLs doc/security.md lists for the node that
connects as $user (and is named $user).

=cut

sub grant_node
{
	my ($self, $user) = @_;
	$self->acl('--add', '--allow-principal', "User:$user",
		map({ ('--operation', $_) } qw(Write Read Describe Create DescribeConfigs)),
		'--topic', $_)
	  foreach qw(replkafka replkafka-nodes);
	$self->acl('--add', '--allow-principal', "User:$user",
		'--operation', 'Read', '--operation', 'Describe', '--group', "replkafka-$user");
	$self->acl('--add', '--allow-principal', "User:$user",
		'--operation', 'IdempotentWrite', '--cluster');
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

=item $kafka->proxy($command)

For a cluster started with B<proxy>: send $command to its proxy
(test/kafka/kafka-proxy lists them: hold CLIENT, drop-ack CLIENT, held,
release) and return the answer.  A client is named by its client.id;
replkafka's are "replkafka-NODE-KIND", KIND being producer, consumer,
control (promote() and demote()) or admin.

=cut

sub proxy
{
	my ($self, $command) = @_;
	my $out = $self->harness('proxy', split(/ /, $command));
	chomp $out;
	return $out;
}

=pod

=item $kafka->pause_broker(I), resume_broker(I)

SIGSTOP broker I (1-based), as a machine that stalls; SIGCONT it.

=item $kafka->partition_leader($topic, $partition)

The broker (node id, 1-based) that leads a partition of $topic.

=cut

sub pause_broker
{
	my ($self, $i) = @_;
	kill 'STOP', slurp_file("$self->{dir}/node$i/pid") =~ s/\s+//gr;
}

sub resume_broker
{
	my ($self, $i) = @_;
	kill 'CONT', slurp_file("$self->{dir}/node$i/pid") =~ s/\s+//gr;
}

=pod

=item $kafka->log_batches($i, $topic, $partition)

The record batches in broker I's copy of a partition of $topic, read from
its segment files: what it appended, replicated or not (consumers read only
up to the high watermark).  A list of hashes: B<first> and B<last> offset,
B<producer> id (-1 for a producer that is not idempotent).  Message format
2.

=cut

sub log_batches
{
	my ($self, $i, $topic, $partition) = @_;
	my @batches;
	foreach my $file (sort glob("$self->{dir}/node$i/data/$topic-$partition/*.log"))
	{
		open(my $fh, '<:raw', $file) or die "could not open $file: $!";
		my $data = do { local $/; <$fh> };
		close($fh);
		my $pos = 0;
		# baseOffset int64, batchLength int32, ...: lastOffsetDelta int32
		# at 23, producerId int64 at 43
		while ($pos + 61 <= length($data))
		{
			my ($base, $len) = unpack('q> l>', substr($data, $pos, 12));
			last if $len <= 0 || $pos + 12 + $len > length($data);
			push @batches,
			  {
				first => $base,
				last => $base + unpack('l>', substr($data, $pos + 23, 4)),
				producer => unpack('q>', substr($data, $pos + 43, 8))
			  };
			$pos += 12 + $len;
		}
	}
	return @batches;
}

sub partition_leader
{
	my ($self, $topic, $partition) = @_;
	my $out = $self->describe_topic($topic);
	$out =~ /Partition: $partition\s+Leader: (\d+)/ or die "no leader in:\n$out";
	return $1;
}

=pod

=item $kafka->kcat(@args)

Run kcat against this cluster with @args; return ($exit_ok, $stdout, $stderr).

=cut

sub kcat
{
	my ($self, @args) = @_;
	my ($out, $err);
	my @conf = $self->{secure} ? ('-F', "$self->{dir}/kcat.conf") : ();
	my $ok = IPC::Run::run([ 'kcat', '-b', $self->{bootstrap}, @conf, @args ],
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

=item $kafka->delete_records($topic, $partition, $offset)

Delete the records of a partition before $offset, as retention would.

=cut

sub delete_records
{
	my ($self, $topic, $partition, $offset) = @_;
	return $self->harness('delete-records', $topic, $partition, $offset);
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

=item $kafka->mirror($target, $topic)

Start MirrorMaker 2 copying $topic of this cluster to the cluster $target
as "source.$topic", and wait until that topic exists; returns an object
whose stop() ends it (the test's end does too).

=cut

sub mirror
{
	my ($self, $target, $topic) = @_;
	my $dir = "$self->{dir}_mirror";
	my ($out, $err);
	IPC::Run::run([ $harness, 'mirror', $dir, $self->{dir}, $target->{dir}, $topic ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300))
	  or die "kafka-cluster mirror failed:\n$err";
	my $mirror = bless { dir => $dir, kafka => $self }, 'ReplkafkaTest::Mirror';
	unshift @started, $mirror;
	return $mirror;
}

=pod

=item $kafka->delete_topic($topic)

Delete $topic.

=cut

sub delete_topic
{
	my ($self, $topic) = @_;
	return $self->harness('delete-topic', $topic);
}

=pod

=item $kafka->produce($topic, $partition, @payloads)

Write records (binary strings) to a partition of $topic with kcat, one
Kafka record per payload, in order.

=cut

sub produce
{
	my ($self, $topic, $partition, @payloads) = @_;
	my @files;
	foreach my $i (0 .. $#payloads)
	{
		my $file = "$self->{dir}/produce_${partition}_$i.bin";
		open my $fh, '>:raw', $file or die "could not write $file: $!";
		print $fh $payloads[$i];
		close $fh;
		push @files, $file;
	}
	my ($ok, $out, $err) = $self->kcat('-P', '-t', $topic, '-p', $partition, @files);
	die "kcat -P failed: $err" unless $ok;
	unlink @files;
}

=pod

=item $kafka->consume($topic)

Every record of $topic, read from the beginning with kcat: a list of hashes
{ partition, offset, payload }, ordered by partition and offset.

=cut

sub consume
{
	my ($self, $topic) = @_;
	my ($ok, $out, $err) =
	  $self->kcat('-C', '-t', $topic, '-o', 'beginning', '-e', '-q',
		'-f', '%p %o %S\n%s');
	die "kcat -C failed: $err" unless $ok;

	my @records;
	my $pos = 0;
	while ($pos < length($out))
	{
		my $nl = index($out, "\n", $pos);
		die "malformed kcat output" if $nl < 0;
		my ($partition, $offset, $size) = split / /, substr($out, $pos, $nl - $pos);
		$size = 0 if $size < 0;    # kcat prints -1 for a null payload
		push @records,
		  {
			partition => $partition,
			offset => $offset,
			payload => substr($out, $nl + 1, $size)
		  };
		$pos = $nl + 1 + $size;
	}
	return sort { $a->{partition} <=> $b->{partition} || $a->{offset} <=> $b->{offset} }
	  @records;
}

=pod

=back

=cut

1;
