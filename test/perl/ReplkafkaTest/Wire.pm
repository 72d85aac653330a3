
# Copyright (c) 2026, replkafka authors

=pod

=encoding utf8

=head1 NAME

ReplkafkaTest::Wire - an independent reader of replkafka's wire format

=head1 SYNOPSIS

  use ReplkafkaTest::Wire;

  my @txns = ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
  $kafka->produce('replkafka', 0, ReplkafkaTest::Wire::record(%fields));

=head1 DESCRIPTION

An independent reader of the wire format of doc/protocol.md, used as the
tests' oracle.

=head1 FUNCTIONS

=over

=item ReplkafkaTest::Wire::header($payload)

The header of a record as a hash: type (TXN, NEW_GEN, END_GEN,
HEARTBEAT), last, partition, chunk, scn, generation, sequence, commit_lsn,
commit_time, xid, origin, body.  Dies on a malformed header.

=cut

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
