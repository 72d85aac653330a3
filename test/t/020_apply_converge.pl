
# Copyright (c) 2026, replkafka authors

# Three nodes, 8 partitions, each node primary of some partitions and
# replica of the others.  Concurrent writes on all nodes; afterwards every
# node has the same rows in every partition.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my @nodes = ReplkafkaTest::new_nodes($kafka, 3,
	conf => 'replkafka.apply_workers = 2');
my %primary_of = (node_a => [ 0, 3, 6 ], node_b => [ 1, 4, 7 ], node_c => [ 2, 5 ]);

ReplkafkaTest::setup_cluster(\@nodes, 8, \%primary_of, q{
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL,
					   balance numeric NOT NULL, note text, big text);
SELECT replkafka.add_table('accounts', 'id');
});

# Each node writes to its own partitions: inserts, updates, deletes, and a
# few transactions of several rows and of large values.
foreach my $node (@nodes)
{
	$node->safe_psql(
		'postgres', q{
CREATE PROCEDURE load(rounds int) LANGUAGE plpgsql AS $$
DECLARE
	mine int[] := ARRAY(SELECT partition FROM replkafka.partitions WHERE role = 'primary');
	ids bigint[];
	k bigint;
BEGIN
	ids := ARRAY(SELECT g FROM generate_series(1, 3000) g
				  WHERE replkafka.partition_of('accounts', g) = ANY (mine));
	FOR r IN 1 .. rounds LOOP
		k := ids[1 + (r * 7919) % array_length(ids, 1)];
		INSERT INTO accounts VALUES (k, 'owner ' || k, r, NULL, NULL)
			ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + 1,
			   note = 'round ' || r;
		COMMIT;
		IF r % 10 = 0 THEN
			DELETE FROM accounts WHERE id = ids[1 + (r * 31) % array_length(ids, 1)];
			COMMIT;
		END IF;
		IF r % 100 = 0 THEN
			UPDATE accounts SET big = repeat(md5(r::text), 40000)
			 WHERE id = k;
			COMMIT;
		END IF;
	END LOOP;
END $$;
});
}

my @loads = map {
	my ($out, $err) = ('', '');
	IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $_->connstr('postgres'), '-c', 'CALL load(2000)' ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 2));
} @nodes;
$_->finish foreach @loads;
is(scalar(grep { $_->result != 0 } @loads), 0, 'the load ran on every node');

ok(ReplkafkaTest::wait_for_convergence(\@nodes, 'accounts'),
	'every node has the same rows in every partition');

my @counts = map { $_->safe_psql('postgres', 'SELECT count(*) FROM accounts') } @nodes;
cmp_ok($counts[0], '>', 1000, 'the nodes hold the rows written on all of them');
is(scalar(grep { $_ ne $counts[0] } @counts), 0, 'every node has as many rows');

foreach my $node (@nodes)
{
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM replkafka.partitions WHERE role IN ('primary', 'replica') AND last_error IS NULL"
		),
		'8',
		$node->name . ' is primary or replica of every partition, without errors');
}

done_testing();
