
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
use Time::HiRes;

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

=pod

=back

=head1 ReplkafkaTest::Writer

A client that writes rows one transaction at a time, in the background,
and records what the server answered: the rows whose COMMIT returned, and
the SQLSTATE of every row that failed.

=over

=item ReplkafkaTest::Writer->start($node, ids => \@ids, %params)

Start psql on $node inserting ($id, $value) into $params{table} (default
items) for each id, one transaction each.  %params: B<value> (default the
node's name), B<sql> (run first, e.g. SET replkafka.synchronous_commit),
B<pause> (seconds to sleep after a failed row, default 0.005).

=cut

package ReplkafkaTest::Writer;

use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;

my $writer_count = 0;

sub start
{
	my ($class, $node, %params) = @_;
	my $table = $params{table} // 'items';
	my $value = $params{value} // $node->name;
	my $pause = $params{pause} // 0.005;
	my $file = "$PostgreSQL::Test::Utils::tmp_check/writer_"
	  . $node->name . '_' . $writer_count++ . '.sql';

	open my $fh, '>', $file or die "could not write $file: $!";
	print $fh "$params{sql};\n" if $params{sql};
	foreach my $id (@{ $params{ids} })
	{
		print $fh "INSERT INTO $table VALUES ($id, '$value');\n",
		  "\\if :ERROR\n",
		  "\\echo fail $id :SQLSTATE\n",
		  "SELECT pg_sleep($pause) \\g /dev/null\n",
		  "\\else\n",
		  "\\echo ok $id\n",
		  "\\endif\n";
	}
	close $fh;

	my $self = bless { node => $node, out => '', err => '' }, $class;
	$self->{h} = IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-f', $file ],
		'>', \$self->{out}, '2>', \$self->{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 4));
	return $self;
}

=pod

=item $writer->wait_for_ok($count)

Wait until $count rows committed (dies after the default timeout).

=cut

sub wait_for_ok
{
	my ($self, $count) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$self->{h}->pump_nb;
		my $ok = () = $self->{out} =~ /^ok /mg;
		return if $ok >= $count;
		Time::HiRes::usleep(50_000);
	}
	die $self->{node}->name . "'s writer did not commit $count rows:\n$self->{err}";
}

=pod

=item $writer->finish()

Wait for the writer to end (or to lose its server).  Returns a hash:
B<ok> (the ids whose COMMIT returned), B<failed> (id => SQLSTATE),
B<stderr>.

=cut

sub finish
{
	my ($self) = @_;
	eval { $self->{h}->finish; };
	my (%ok, %failed);
	foreach my $line (split /\n/, $self->{out})
	{
		$ok{$1} = 1 if $line =~ /^ok (\d+)$/;
		$failed{$1} = $2 if $line =~ /^fail (\d+) (\w+)$/;
	}
	return (ok => \%ok, failed => \%failed, stderr => $self->{err});
}

=pod

=item $writer->kill()

Stop the writer now.

=cut

sub kill
{
	my ($self) = @_;
	$self->{h}->kill_kill;
}

package ReplkafkaTest;

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

=item ReplkafkaTest::Kafka->start(brokers => N, secure => { user => password, ... }, auto_create => 1)

Start a KRaft cluster of N brokers (default 1) and wait until it serves
metadata.  With B<secure>, one broker whose clients connect over SASL_SSL
with SCRAM-SHA-512 as one of the users given, and an authorizer that
allows nothing without an ACL (see $kafka->acl); the harness's own kcat
calls connect as the cluster's super user.  With B<auto_create>, the
brokers create a topic a client asks for, as Kafka does by default.

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

	my $self = bless { dir => $dir, brokers => $brokers, secure => $params{secure} }, $class;
	push @started, $self;

	my @secure = $params{secure}
	  ? ('--secure', join(',', map { "$_:$params{secure}{$_}" } sort keys %{ $params{secure} }))
	  : ();
	push @secure, '--auto-create' if $params{auto_create};
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
		'--topic', 'replkafka');
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

=head1 ReplkafkaTest::Wire

An independent reader of the wire format of doc/protocol.md, used as the
tests' oracle.

=over

=item ReplkafkaTest::Wire::header($payload)

The header of a record as a hash: type (TXN, NEW_GEN, END_GEN,
HEARTBEAT), last, partition, chunk, scn, generation, sequence, commit_lsn,
commit_time, xid, origin, body.  Dies on a malformed header.

=cut

package ReplkafkaTest::Mirror;

use strict;
use warnings;

# A MirrorMaker 2 process started by ReplkafkaTest::Kafka->mirror.
sub stop
{
	my ($self) = @_;
	return if $self->{stopped};
	IPC::Run::run([ $harness, 'mirror-stop', $self->{dir} ], IPC::Run::timeout(120));
	$self->{stopped} = 1;
}

package ReplkafkaTest::Wire;

use strict;
use warnings;

my %types = (1 => 'TXN', 2 => 'NEW_GEN', 3 => 'END_GEN', 4 => 'HEARTBEAT');

sub header
{
	my ($payload) = @_;
	die "record too short" if length($payload) < 48;
	my ($magic, $version, $type, $flags, $olen, $reserved, $partition,
		$chunk, $scn, $lsn, $time, $xid, $blen)
	  = unpack('a2 C C C C n N N Q> Q> q> N N', $payload);
	die "bad magic" unless $magic eq 'RK';
	die "bad version $version" unless $version == 1;
	die "bad type $type" unless $types{$type};
	die "bad body length" unless length($payload) == 48 + $olen + $blen;
	return {
		type => $types{$type},
		last => ($flags & 1) ? 1 : 0,
		partition => $partition,
		chunk => $chunk,
		scn => $scn,
		generation => $scn >> 32,
		sequence => $scn & 0xffffffff,
		commit_lsn => $lsn,
		commit_time => $time,
		xid => $xid,
		origin => substr($payload, 48, $olen),
		body => substr($payload, 48 + $olen, $blen),
	};
}

=pod

=item ReplkafkaTest::Wire::record(%fields)

Encode a record: type (TXN, NEW_GEN, END_GEN, HEARTBEAT; default TXN),
partition, generation, sequence, origin, commit_lsn, commit_time (µs since
1970), xid, chunk (default 0), last (default 1), body (bytes).  For tests
that write records of their own into the topic.

=cut

sub record
{
	my (%f) = @_;
	my %codes = reverse %types;
	my $body = $f{body} // '';
	my $origin = $f{origin} // 'node_a';
	return pack('a2 C C C C n N N Q> Q> q> N N',
		'RK', 1, $codes{ $f{type} // 'TXN' },
		($f{last} // 1) ? 1 : 0,
		length($origin), 0, $f{partition} // 0, $f{chunk} // 0,
		(($f{generation} // 1) << 32) | ($f{sequence} // 0),
		$f{commit_lsn} // 0, $f{commit_time} // 0, $f{xid} // 0,
		length($body))
	  . $origin
	  . $body;
}

=pod

=item ReplkafkaTest::Wire::insert_body($schema, $table, \@columns, \@values, $relation)

The body of a transaction inserting one row: a relation definition
(columns as [name, type, is_key]) and an insert of @values (undef: NULL),
as relation number $relation (default 0).

=cut

sub insert_body
{
	my ($schema, $table, $columns, $values, $relation) = @_;
	$relation //= 0;
	my $rec = sub { my ($kind, $payload) = @_; return $kind . pack('N', length $payload) . $payload };
	my $str = sub { return pack('n', length $_[0]) . $_[0] };
	my $rel = pack('n', $relation) . $str->($schema) . $str->($table) . pack('n', scalar @$columns);
	$rel .= $str->($_->[0]) . $str->($_->[1]) . pack('C', $_->[2] ? 1 : 0) foreach @$columns;
	my $tuple = pack('n', scalar @$values);
	$tuple .= defined $_ ? 't' . pack('N', length $_) . $_ : 'n' foreach @$values;
	return $rec->('R', $rel) . $rec->('I', pack('n', $relation) . $tuple);
}

=pod

=item ReplkafkaTest::Wire::changes($body)

The changes of a whole transaction body (the bodies of its chunks
concatenated): a list of hashes { op (insert, update, delete), table
(schema.table), new, old (hashes column => value, undef for NULL) }.
Unchanged TOASTed values are returned as the string '(unchanged)'.

=cut

sub changes
{
	my ($body) = @_;
	my (@changes, %relations);
	my $pos = 0;
	my $take = sub {
		my ($n) = @_;
		die "truncated body" if $pos + $n > length($body);
		my $v = substr($body, $pos, $n);
		$pos += $n;
		return $v;
	};
	my $u8 = sub { unpack('C', $take->(1)) };
	my $u16 = sub { unpack('n', $take->(2)) };
	my $u32 = sub { unpack('N', $take->(4)) };
	my $str = sub { $take->($u16->()) };
	my $tuple = sub {
		my ($rel) = @_;
		my $natts = $u16->();
		die "tuple arity" unless $natts == @{ $rel->{columns} };
		my %row;
		for my $i (0 .. $natts - 1)
		{
			my $kind = chr($u8->());
			my $col = $rel->{columns}[$i];
			if ($kind eq 't') { $row{$col} = $take->($u32->()); }
			elsif ($kind eq 'n') { $row{$col} = undef; }
			elsif ($kind eq 'u') { $row{$col} = '(unchanged)'; }
			elsif ($kind ne 'x') { die "bad value kind $kind"; }
		}
		return \%row;
	};

	while ($pos < length($body))
	{
		my $kind = chr($u8->());
		my $len = $u32->();
		my $end = $pos + $len;
		my $relnum = $u16->();
		if ($kind eq 'R')
		{
			my $schema = $str->();
			my $table = $str->();
			my $natts = $u16->();
			my @columns;
			for (1 .. $natts)
			{
				push @columns, $str->();
				$str->();    # type
				$u8->();     # flags
			}
			$relations{$relnum} =
			  { name => "$schema.$table", columns => \@columns };
		}
		else
		{
			my $rel = $relations{$relnum} or die "undefined relation $relnum";
			my %change = (table => $rel->{name});
			if ($kind eq 'I')
			{
				$change{op} = 'insert';
				$change{new} = $tuple->($rel);
			}
			elsif ($kind eq 'U' || $kind eq 'D')
			{
				$change{op} = $kind eq 'U' ? 'update' : 'delete';
				my $old = chr($u8->());
				$change{old} = $tuple->($rel) if $old ne 'N';
				$change{new} = $tuple->($rel) if $kind eq 'U';
			}
			else
			{
				die "bad record kind $kind";
			}
			push @changes, \%change;
		}
		die "record length mismatch" unless $pos == $end;
	}
	return @changes;
}

=pod

=item ReplkafkaTest::Wire::transactions(@records)

Group the records of consume() into transactions: for each partition, in
offset order, complete chunk sequences (chunk 0 through the last chunk) of
one origin become { partition, offset (of the last chunk), scn,
generation, sequence, origin, commit_lsn, chunks, changes }.  Records of
other origins between them do not interrupt them (doc/protocol.md,
Chunks).  Control records are returned as { partition, offset, type, scn,
generation, sequence, origin }.  An incomplete chunk sequence followed by
another record of its origin is dropped, as the protocol says, and
counted in $ReplkafkaTest::Wire::incomplete.

=cut

our $incomplete = 0;

sub transactions
{
	my (@records) = @_;
	my (@result, %open);
	$incomplete = 0;
	foreach my $r (@records)
	{
		my $h = header($r->{payload});
		my $p = $r->{partition};
		my $key = "$p $h->{origin}";
		if ($h->{type} ne 'TXN' || $h->{chunk} == 0)
		{
			$incomplete++ if $open{$key};
			delete $open{$key};
		}
		if ($h->{type} ne 'TXN')
		{
			push @result,
			  { %$h, partition => $p, offset => $r->{offset}, body => undef };
			next;
		}
		if ($h->{chunk} == 0)
		{
			$open{$key} = { %$h, body => '', chunks => 0 };
		}
		my $t = $open{$key};
		next unless $t;    # a chunk without its start
		if ($h->{chunk} != $t->{chunks} || $h->{scn} != $t->{scn})
		{
			$incomplete++;
			delete $open{$key};
			next;
		}
		$t->{body} .= $h->{body};
		$t->{chunks}++;
		if ($h->{last})
		{
			$t->{offset} = $r->{offset};
			$t->{changes} = [ changes($t->{body}) ];
			delete $t->{body};
			push @result, $t;
			delete $open{$key};
		}
	}
	$incomplete += scalar keys %open;
	return @result;
}

=pod

=back

=cut

1;
