
# Copyright (c) 2026, replkafka authors

# A transaction that changes a replicated table's definition between its
# changes (ALTER TABLE ... ADD COLUMN between two INSERTs): the shipper
# defines the table again, under the same relation number, before the
# first change after the ALTER, and the replica applies both changes with
# the definition each was written with.  (DDL is not replicated: the
# replica adds the column itself.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my ($node_a, $node_b) = ReplkafkaTest::new_nodes($kafka, 2);
ReplkafkaTest::setup_cluster([ $node_a, $node_b ], 1, { node_a => [0] }, q{
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('items', 'id');
});

$node_b->safe_psql('postgres', 'ALTER TABLE items ADD COLUMN extra int DEFAULT 5');
$node_a->safe_psql('postgres', q{
BEGIN;
INSERT INTO items VALUES (1, 'before');
ALTER TABLE items ADD COLUMN extra int DEFAULT 5;
INSERT INTO items VALUES (2, 'after', 6);
UPDATE items SET extra = 7 WHERE id = 1;
COMMIT;
});

my @t = grep { $_->{type} eq 'TXN' }
  ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
is(scalar(@t), 1, 'one transaction in Kafka');
is(join(' | ', map { join(',', sort keys %{ $_->{new} }) } @{ $t[0]{changes} }),
	'id,v | extra,id,v | extra,id,v',
	'each change carries the columns of the definition it was written with');

ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'node_b has the same rows as node_a');
is($node_b->safe_psql('postgres', q{SELECT string_agg(id || ' ' || v || ' ' || extra, ',' ORDER BY id) FROM items}),
	'1 before 7,2 after 6', 'both changes applied, with their columns');
is($node_b->safe_psql('postgres', 'SELECT role FROM replkafka.partitions WHERE partition = 0'),
	'replica', 'the partition goes on');

# A rename in the middle of a transaction: the transaction keeps the names
# it defined the table with (a replica cannot have both), and the next
# transaction uses the new ones; the replica renames in between.
$node_a->safe_psql('postgres', q{
BEGIN;
INSERT INTO items VALUES (3, 'before rename', 1);
ALTER TABLE items RENAME COLUMN v TO w;
INSERT INTO items VALUES (4, 'after rename', 2);
COMMIT;
});
@t = grep { $_->{type} eq 'TXN' }
  ReplkafkaTest::Wire::transactions($kafka->consume('replkafka'));
is(join(' | ', map { join(',', sort keys %{ $_->{new} }) } @{ $t[1]{changes} }),
	'extra,id,v | extra,id,v',
	'a rename leaves the transaction with the names it started with');
ok($node_b->poll_query_until('postgres', 'SELECT count(*) = 4 FROM items'),
	'node_b applies the transaction');
$node_b->safe_psql('postgres', 'ALTER TABLE items RENAME COLUMN v TO w');
$node_a->safe_psql('postgres', q{INSERT INTO items VALUES (5, 'renamed', 3)});
ok(ReplkafkaTest::wait_for_convergence([ $node_a, $node_b ], 'items'),
	'and the next one, with the new names');

done_testing();
