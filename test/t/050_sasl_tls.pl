
# Copyright (c) 2026, replkafka authors

# A production-like broker (doc/security.md): clients connect over TLS and
# authenticate with SASL/SCRAM-SHA-512, and an authorizer allows only what
# the ACLs grant.  Two nodes, each with its own principal and the ACLs
# doc/security.md lists, replicate through it; a principal without those
# ACLs can neither write a record to the topic nor read one.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my %users = map { $_ => "$_-" . join('', map { ('a' .. 'z')[ rand 26 ] } 1 .. 16) }
  qw(node_a node_b mallory);
my $kafka = ReplkafkaTest::Kafka->start(secure => \%users);

$kafka->grant_node($_) foreach qw(node_a node_b);

my @nodes = map {
	ReplkafkaTest::new_node($_, $kafka,
		conf => "replkafka.kafka_options = '" . $kafka->client_options($_) . "'")
} qw(node_a node_b);
ReplkafkaTest::setup_cluster(\@nodes, 2, { node_a => [0], node_b => [1] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

# Each node writes rows of its own partition.
foreach my $i (0, 1)
{
	my @keys = ReplkafkaTest::keys_of_partition($nodes[$i], 'items', $i, 50);
	$nodes[$i]->safe_psql('postgres',
		join('', map { "INSERT INTO items VALUES ($_, 'from node $i');" } @keys));
}
ok(ReplkafkaTest::wait_for_convergence(\@nodes, 'items'),
	'both nodes have the same rows, shipped and applied over SASL_SSL');
is($nodes[1]->safe_psql('postgres', 'SELECT count(*) FROM items'), '100',
	'every row is on node_b');

# A principal without ACLs on the topic.
sub kcat_as
{
	my ($user, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ 'kcat', '-b', $kafka->bootstrap,
		  '-X', 'security.protocol=sasl_ssl', '-X', 'sasl.mechanisms=SCRAM-SHA-512',
		  '-X', "sasl.username=$user", '-X', "sasl.password=$users{$user}",
		  '-X', "ssl.ca.location=$kafka->{dir}/ca.pem", @args ],
		'<', \"forged\n", '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return $out . $err;
}
like(kcat_as('mallory', '-P', '-t', 'replkafka', '-p', '0'),
	qr/Topic authorization failed/, 'a principal without the ACLs cannot write a record');
like(kcat_as('mallory', '-C', '-t', 'replkafka', '-o', 'beginning', '-e', '-q'),
	qr/[Aa]uthorization failed/, 'nor read one');

my @records = $kafka->consume('replkafka');
is(scalar(grep { index($_->{payload}, 'forged') >= 0 } @records), 0,
	'no forged record is in the topic');
is(join(',', map { $_->safe_psql('postgres',
			q{SELECT count(*) FROM replkafka.partitions WHERE role = 'error'}) } @nodes),
	'0,0', 'no partition is in error');

done_testing();
