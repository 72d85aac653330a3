
# Copyright (c) 2026, replkafka authors

# Graceful handoff of a partition under continuous load, with
# replkafka.synchronous_commit = on: node_a demotes, node_b promotes.
# Every row whose COMMIT returned is on every node afterwards, no other
# row is anywhere, and the writes that failed meanwhile failed with the
# fence error (25006) only.  Then demote() with a transaction still
# writing the partition: it waits for it, new writes fail at once, and a
# demotion that times out gives the partition back.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Writer;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b, $node_c) = ReplkafkaTest::new_nodes($kafka, 3);
ReplkafkaTest::setup_cluster([ $node_a, $node_b, $node_c ], 1, { node_a => [0] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

# Writers on node_a and node_b write the same partition all along; only
# its primary's succeed.
my $sync = 'SET replkafka.synchronous_commit = on';
my $writer_a = ReplkafkaTest::Writer->start($node_a, ids => [ 1 .. 1500 ], sql => $sync);
my $writer_b = ReplkafkaTest::Writer->start($node_b, ids => [ 100001 .. 101500 ], sql => $sync);
$writer_a->wait_for_ok(200);

$node_a->safe_psql('postgres', 'SELECT replkafka.demote(0)');
is($node_a->safe_psql('postgres', 'SELECT role FROM replkafka.partitions'),
	'replica', 'node_a is replica after demote()');
is($node_b->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '2',
	'node_b is promoted to generation 2');
$writer_b->wait_for_ok(200);

my %a = $writer_a->finish;
my %b = $writer_b->finish;
my %acked = (%{ $a{ok} }, %{ $b{ok} });
note sprintf('node_a committed %d rows, node_b %d; %d writes failed',
	scalar(keys %{ $a{ok} }), scalar(keys %{ $b{ok} }),
	scalar(keys %{ $a{failed} }) + scalar(keys %{ $b{failed} }));
ok(keys %{ $a{failed} } > 0, 'node_a\'s writes failed after the handoff');
is_deeply(
	[ sort { $a cmp $b } keys %{ { map { $_ => 1 } values %{ $a{failed} }, values %{ $b{failed} } } } ],
	['25006'], 'every failed write failed with the fence error');
unlike($a{stderr} . $b{stderr}, qr/WARNING/, 'no commit returned with a warning');

ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the three nodes converge');
foreach my $node ($node_a, $node_b, $node_c)
{
	my %rows = map { $_ => 1 } split /\n/,
	  $node->safe_psql('postgres', 'SELECT id FROM items');
	is_deeply(\%rows, \%acked,
		$node->name . ' holds exactly the rows whose COMMIT returned');
}
is($node_c->safe_psql('postgres', 'SELECT zombies_skipped FROM replkafka.partitions'),
	'0', 'a clean handoff leaves no zombie write');

# demote() waits for a transaction still writing the partition; writes
# arriving meanwhile fail at once.
my $open = $node_b->background_psql('postgres');
$open->query_safe("BEGIN; INSERT INTO items VALUES (200001, 'open');");
my ($demote_out, $demote_err) = ('', '');
my $demote = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $node_b->connstr('postgres'),
	  '-c', 'SELECT replkafka.demote(0)' ],
	'>', \$demote_out, '2>', \$demote_err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
$node_b->poll_query_until('postgres',
	'SELECT transition = \'demoting\' FROM replkafka.partitions')
  or die 'demote() does not start';
my ($ret, $stdout, $stderr) = $node_b->psql('postgres',
	"INSERT INTO items VALUES (200002, 'meanwhile')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/25006: cannot write to partition 0 on node "node_b".*\n.*being handed over to another node by replkafka\.demote\(\)/,
	'a write during demote() fails at once with the fence error');
ok($demote->pumpable, 'demote() waits for the open transaction');
$open->query_safe('COMMIT');
$demote->finish;
is($demote_err, '', 'demote() ends once the transaction committed');
is($node_b->safe_psql('postgres', 'SELECT role FROM replkafka.partitions'),
	'replica', 'node_b is replica');
is($node_c->safe_psql('postgres', 'SELECT replkafka.promote(0)'), '3',
	'node_c is promoted to generation 3');
$node_c->safe_psql('postgres', "INSERT INTO items VALUES (200003, 'on node_c')");
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'the three nodes converge again');
is($node_a->safe_psql('postgres', 'SELECT string_agg(v, \',\' ORDER BY id) FROM items WHERE id > 200000'),
	'open,on node_c', 'the transaction demote() waited for is on every node');

# A demotion that times out gives the partition back to its writers.
$open->quit;
$open = $node_c->background_psql('postgres');
$open->query_safe("BEGIN; INSERT INTO items VALUES (200004, 'open');");
($ret, $stdout, $stderr) = $node_c->psql('postgres',
	"SELECT replkafka.demote(0, '1s')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
$open->query_safe('COMMIT');
$open->quit;
like($stderr, qr/57014: could not demote node "node_c" in partition 0 within the timeout/,
	'demote() gives up after its timeout');
is($node_c->safe_psql('postgres', "SELECT role || ':' || coalesce(transition, '') FROM replkafka.partitions"),
	'primary:', 'node_c stays primary');
$node_c->safe_psql('postgres', "INSERT INTO items VALUES (200005, 'after the timeout')");
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'writes go on');

# Roles and generations survive a restart of every node.
my $roles = q{SELECT string_agg(role || ':' || generation, ',' ORDER BY partition) FROM replkafka.partitions};
my @before = map { $_->safe_psql('postgres', $roles) } $node_a, $node_b, $node_c;
is_deeply(\@before, [ 'replica:3', 'replica:3', 'primary:3' ], 'roles and generations before a restart');
$_->restart foreach $node_a, $node_b, $node_c;
is_deeply([ map { $_->safe_psql('postgres', $roles) } $node_a, $node_b, $node_c ],
	\@before, 'the same after it');

# Kafka down: the shipper fails, and a promotion, which could not ship the
# writes it lets in, is refused, saying why; the role stays as it was.
$kafka->stop_broker(1);
ok( $node_a->poll_query_until(
		'postgres', q{
SELECT failing AND state = 'retrying'
   AND last_error ~ '^(Kafka has [^;]*; )?cannot reach Kafka topic "replkafka": '
  FROM replkafka.workers WHERE kind = 'shipper'}),
	'the shipper shows that it cannot reach Kafka');
my ($rc, $promote_out, $promote_err) = $node_a->psql('postgres',
	"SELECT replkafka.promote(0, '3s')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($promote_err, qr/55000: could not promote node "node_a" for partition 0: its shipper is failing/,
	'the promotion is refused');
like($promote_err, qr/DETAIL:  The shipper (is retrying; its last error, at .*, has|failed at .* with) SQLSTATE 08006: /,
	'and says why');
is($node_a->safe_psql('postgres', "SELECT role || ':' || coalesce(transition, 'none') FROM replkafka.partitions"),
	'replica:none', 'node_a stays replica, with no transition left');
$kafka->start_broker(1);
$node_c->safe_psql('postgres', "INSERT INTO items VALUES (200006, 'broker back')");
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b, $node_c ], 'items'),
	'replication goes on once the broker is back');

done_testing();
