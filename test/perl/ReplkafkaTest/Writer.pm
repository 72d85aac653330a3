
# Copyright (c) 2026, replkafka authors

=pod

=head1 NAME

ReplkafkaTest::Writer - a client writing one row per transaction

=head1 SYNOPSIS

  use ReplkafkaTest::Writer;

  my $writer = ReplkafkaTest::Writer->start($node, ids => [ 1 .. 100 ]);
  $writer->wait_for_ok(10);
  my %result = $writer->finish;

=head1 DESCRIPTION

A client that writes rows one transaction at a time, in the background,
and records what the server answered: the rows whose COMMIT returned, and
the SQLSTATE of every row that failed.

=head1 METHODS

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

use IPC::Run;
use PostgreSQL::Test::Utils;
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

=pod

=back

=cut

1;
