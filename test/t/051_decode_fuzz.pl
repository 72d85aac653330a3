
# Copyright (c) 2026, replkafka authors

# replkafka.decode() and replkafka.decode_chunks() fed mutated records, in
# a real server (their JSON is built by the backend, so they are fuzzed
# here rather than under libFuzzer): valid records of every kind are
# mutated (bytes flipped, replaced by extreme values, cut, repeated,
# inserted), deterministically.  Every call must return a JSON object with
# the record's type, or fail with one of the errors decode() documents;
# never an internal error, a crash, or a server that stops answering.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $cases = $ENV{REPLKAFKA_DECODE_FUZZ_CASES} // 50000;
srand(1);

# decode() needs no broker: the node never creates a cluster.
my $no_kafka = bless { bootstrap => '127.0.0.1:1' }, 'ReplkafkaTest::Kafka';
my $node = ReplkafkaTest::new_node('node_a', $no_kafka);

# Valid records of every kind.
my $rec = sub { my ($kind, $payload) = @_; return $kind . pack('N', length $payload) . $payload };
my $str = sub { return pack('n', length $_[0]) . $_[0] };
my $tuple = sub {
	my $t = pack('n', scalar @_);
	$t .= !defined $_ ? 'n' : $_ eq '(u)' ? 'u' : $_ eq '(x)' ? 'x' : 't' . pack('N', length $_) . $_
	  foreach @_;
	return $t;
};
my $relation = $rec->('R', pack('n', 0) . $str->('public') . $str->('accounts') . pack('n', 3)
	  . $str->('id') . $str->('bigint') . pack('C', 1)
	  . $str->('owner') . $str->('text') . pack('C', 0)
	  . $str->('balance') . $str->('numeric(12,2)') . pack('C', 0));
my $body = $relation
  . $rec->('I', pack('n', 0) . $tuple->(42, 'ann', '10.50'))
  . $rec->('U', pack('n', 0) . 'K' . $tuple->(42, '(x)', '(x)') . $tuple->(43, 'ann', undef))
  . $rec->('U', pack('n', 0) . 'N' . $tuple->(43, '(u)', '11.00'))
  . $rec->('D', pack('n', 0) . 'O' . $tuple->(43, 'ann', '11.00'));
my @seeds = (
	ReplkafkaTest::Wire::record(partition => 1, generation => 2, sequence => 7,
		origin => 'node_b', commit_lsn => 0x16B3748, xid => 750, body => $body),
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 3, generation => 4,
		origin => 'node_c'),
	ReplkafkaTest::Wire::record(type => 'END_GEN', partition => 0, generation => 4,
		sequence => 9, origin => 'node_c'),
	ReplkafkaTest::Wire::record(type => 'HEARTBEAT', partition => 2, generation => 1,
		sequence => 3),
	ReplkafkaTest::Wire::record(partition => 1, generation => 2, sequence => 8,
		last => 0, body => substr($body, 0, 40)),
);
my @chunks = map {
	ReplkafkaTest::Wire::record(partition => 1, generation => 2, sequence => 8,
		chunk => $_, last => $_ == 2 ? 1 : 0,
		body => substr($body, $_ * 50, $_ == 2 ? length($body) : 50))
} 0 .. 2;

my @extreme = (0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff);
sub mutate
{
	my ($r) = @_;
	for (1 .. 1 + int(rand(4)))
	{
		my $len = length $r;
		my $pos = $len ? int(rand($len)) : 0;
		my $op = int(rand(6));
		if ($op == 0 && $len) { substr($r, $pos, 1) = chr(ord(substr($r, $pos, 1)) ^ (1 << int(rand(8)))) }
		elsif ($op == 1 && $len) { substr($r, $pos, 1) = chr($extreme[ int(rand(@extreme)) ]) }
		elsif ($op == 2 && $len >= 4) { substr($r, $pos - $pos % 4, 4) = pack('N', (0, 1, 0x7fffffff, 0xffffffff)[ int(rand(4)) ]) if $pos + 4 <= $len }
		elsif ($op == 3) { $r = substr($r, 0, $pos) }
		elsif ($op == 4) { $r .= substr($r, $pos, int(rand(64))) }
		else { substr($r, $pos, 0) = join('', map { chr(int(rand(256))) } 1 .. 1 + int(rand(8))) }
	}
	return $r;
}

# One psql session runs every case; each prints the JSON's type and
# whether it names the record's type, or an error's SQLSTATE.
my $sql = "\\set VERBOSITY sqlstate\n";
for my $i (1 .. $cases)
{
	if ($i % 10 == 0)
	{
		my @c = map { $_ % 3 ? $_ : mutate($_) } @chunks;
		@c = map { mutate($_) } @chunks if $i % 30 == 0;
		$sql .= 'SELECT jsonb_typeof(d) || (d ? \'type\')::text FROM replkafka.decode_chunks(ARRAY['
		  . join(',', map { "'\\x" . unpack('H*', $_) . "'::bytea" } @c) . "]) d;\n";
	}
	else
	{
		my $r = mutate($seeds[ $i % @seeds ]);
		$sql .= "SELECT jsonb_typeof(d) || (d ? 'type')::text FROM replkafka.decode('\\x"
		  . unpack('H*', $r) . "') d;\n";
	}
}
my $file = "$PostgreSQL::Test::Utils::tmp_check/decode_fuzz.sql";
open my $fh, '>', $file or die "could not write $file: $!";
print $fh $sql;
close $fh;

my ($out, $err) = ('', '');
IPC::Run::run([ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-f', $file ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(600));

my %outcomes;
$outcomes{$1}++ while $out =~ /^(objecttrue)$/mg;
$outcomes{$1}++ while $err =~ /ERROR:\s+(\w{5})\s*$/mg;
my $total = 0;
$total += $_ foreach values %outcomes;
note join(', ', map { "$_: $outcomes{$_}" } sort keys %outcomes);
is($total, $cases, "every one of $cases calls returned a JSON object naming its type, or an error");
my @unexpected = grep { !/^(objecttrue|22P03|0A000|22003|22023|2202E|22004|54000)$/ } keys %outcomes;
is(join(',', sort @unexpected), '', 'every error is one decode() documents: no internal error');
unlike($err, qr/server closed the connection|terminated abnormally/, 'the session was never cut');
cmp_ok($outcomes{objecttrue} // 0, '>', $cases / 20, 'some mutated records still decode');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server answers');
my $log = slurp_file($node->logfile);
unlike($log, qr/TRAP:|PANIC|terminated by signal/, 'no assertion failure, panic or crash in the server log');

done_testing();
