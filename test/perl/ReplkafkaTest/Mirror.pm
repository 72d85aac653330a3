
# Copyright (c) 2026, replkafka authors

=pod

=head1 NAME

ReplkafkaTest::Mirror - a MirrorMaker 2 process copying a topic

=head1 SYNOPSIS

  my $mirror = $kafka_a->mirror($kafka_b, 'replkafka');
  $mirror->stop;

=head1 DESCRIPTION

A MirrorMaker 2 process started by ReplkafkaTest::Kafka->mirror, stopped
by stop() or when the test ends.

=head1 METHODS

=over

=item $mirror->stop()

Stop the mirror.

=cut

package ReplkafkaTest::Mirror;

use strict;
use warnings;

use IPC::Run;

sub stop
{
	my ($self) = @_;
	return if $self->{stopped};
	IPC::Run::run([ $ReplkafkaTest::Kafka::harness, 'mirror-stop', $self->{dir} ],
		IPC::Run::timeout(120));
	$self->{stopped} = 1;
}

=pod

=back

=cut

1;
