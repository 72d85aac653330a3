
# Copyright (c) 2026, replkafka authors

# Every DML kind and the common types go through the shipper into Kafka and
# come back intact through replkafka.decode(): NULLs, integers, numeric,
# text (with a value over 1 MB that is TOASTed), bytea, jsonb, arrays,
# timestamptz, uuid and more; updates without and with a key change, with
# an unchanged TOASTed value, deletes by key and with the full old row.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ReplkafkaTest;
use ReplkafkaTest::Kafka;
use ReplkafkaTest::Wire;
use Test::More;

my $kafka = ReplkafkaTest::Kafka->start();
my $node = ReplkafkaTest::new_node('node_a', $kafka);

$node->safe_psql(
	'postgres', q{
SELECT replkafka.create_cluster(1, 1);
SELECT replkafka.promote(0);
CREATE TABLE types (
	tenant int, id int,
	i int, b bigint, n numeric, t text, big text, by bytea, j jsonb,
	arr int[], tarr text[], ts timestamptz, u uuid, flag boolean, d date,
	iv interval, vc varchar(20),
	PRIMARY KEY (tenant, id));
SELECT replkafka.add_table('types', 'tenant');
CREATE TABLE full_t (tenant int, id int, v text, PRIMARY KEY (tenant, id));
ALTER TABLE full_t REPLICA IDENTITY FULL;
SELECT replkafka.add_table('full_t', 'tenant');
});

# The transactions, and a copy of the rows as each left them.
my @sql = (
	q{INSERT INTO types VALUES
		(1, 1, 42, 9000000000, 12345678901234567890.123456789, 'plain',
		 NULL, '\x00ff10', '{"a": [1, 2, {"b": null}], "c": "d"}',
		 '{1,2,3}', '{"a b","c,d",NULL}', '2026-01-02 03:04:05.678+02',
		 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, '2026-11-22',
		 '1 day 02:03:04', 'short'),
		(1, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		 NULL, NULL, NULL, NULL, NULL),
		(1, 3, -2147483648, -1, -0.5, E'quotes '' " \\ tab\t newline\n unicode é ✓',
		 '', '\x', '[]', '{}', '{}', 'infinity', '00000000-0000-0000-0000-000000000000',
		 false, '-infinity', '-1 mons', '')},
	q{INSERT INTO types (tenant, id, big)
		SELECT 1, 4, string_agg(md5(g::text), '') FROM generate_series(1, 50000) g},
	q{UPDATE types SET i = 99 WHERE tenant = 1 AND id = 4},
	q{UPDATE types SET t = 'changed' WHERE tenant = 1 AND id = 1},
	q{DELETE FROM types WHERE tenant = 1 AND id = 2},
	q{UPDATE types SET id = 10 WHERE tenant = 1 AND id = 3},
	q{INSERT INTO full_t VALUES (1, 1, 'gone soon')},
	q{DELETE FROM full_t WHERE tenant = 1 AND id = 1});
for my $i (0 .. $#sql)
{
	$node->safe_psql('postgres', $sql[$i]);
	$node->safe_psql('postgres', "CREATE TABLE after_$i AS SELECT * FROM types");
}
cmp_ok(
	$node->safe_psql(
		'postgres',
		"SELECT pg_column_size(big) FROM types WHERE id = 4"),
	'>', 1024 * 1024,
	'the large value is over 1 MB');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_class c JOIN pg_class t ON t.reltoastrelid = c.oid WHERE t.relname = 'types' AND pg_relation_size(c.oid) > 1024 * 1024"
	),
	'1',
	'it is stored out of line (TOASTed)');

ok( $node->poll_query_until(
		'postgres',
		"SELECT scn & 4294967295 = " . scalar(@sql) . " FROM replkafka.partitions"),
	'every transaction was shipped');

# Group the records into transactions and decode each with decode_chunks().
my (@txns, $cur);
foreach my $r ($kafka->consume('replkafka'))
{
	my $h = ReplkafkaTest::Wire::header($r->{payload});
	next unless $h->{type} eq 'TXN';
	$cur = [] if $h->{chunk} == 0;
	push @$cur, unpack('H*', $r->{payload});
	push @txns, $cur if $h->{last};
}
is(scalar(@txns), scalar(@sql), 'one transaction in Kafka per transaction committed');
cmp_ok(scalar(@{ $txns[1] }), '>', 1, 'the transaction with the large value is chunked');

$node->safe_psql('postgres', 'CREATE TABLE decoded (tx int PRIMARY KEY, rec jsonb)');
for my $i (0 .. $#txns)
{
	my $array = join(',', map { "'\\x$_'::bytea" } @{ $txns[$i] });
	$node->safe_psql('postgres',
		"INSERT INTO decoded VALUES ($i, replkafka.decode_chunks(ARRAY[$array]))");
}

# Check a condition over decoded transaction n, in SQL.
sub check
{
	my ($n, $condition, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($node->safe_psql('postgres', "SELECT ($condition) FROM decoded WHERE tx = $n"),
		't', $name)
	  or diag $node->safe_psql('postgres',
		"SELECT left(rec::text, 3000) FROM decoded WHERE tx = $n");
}

# A decoded tuple, turned back into a row of types, equals the source row.
# (The decoded column is named rec: types has a column j.)
sub same_row
{
	my ($change, $after, $id) = @_;
	return "(SELECT to_jsonb(jsonb_populate_record(NULL::types, $change)) = to_jsonb(a) "
	  . "FROM after_$after a WHERE a.id = $id)";
}

check(0, q{rec->>'type' = 'TXN' AND (rec->>'sequence')::int = 1 AND rec->>'origin' = 'node_a'
	AND jsonb_array_length(rec->'changes') = 3}, 'inserts: header and three changes');
check(0, q{(rec->>'commit_time')::timestamptz BETWEEN now() - interval '10 minutes' AND now()},
	'the commit time is the source commit\'s');
check(0, q{(SELECT bool_and(c->>'op' = 'insert' AND c->>'table' = 'public.types')
	FROM jsonb_array_elements(rec->'changes') c)}, 'inserts: op and table');
check(0, same_row("rec->'changes'->0->'new'", 0, 1), 'every type round-trips');
check(0, same_row("rec->'changes'->1->'new'", 0, 2), 'NULLs round-trip');
check(0, same_row("rec->'changes'->2->'new'", 0, 3), 'edge values round-trip');
check(0, q{rec->'changes'->0->'new'->'i' = '42' AND rec->'changes'->0->'new'->'flag' = 'true'
	AND rec->'changes'->0->'new'->'j' = '{"a": [1, 2, {"b": null}], "c": "d"}'},
	'numbers, booleans and jsonb are JSON values');
check(1, same_row("rec->'changes'->0->'new'", 1, 4), 'the value over 1 MB round-trips');
check(1, q{(rec->>'chunks')::int > 1 AND (rec->>'last')::boolean}, 'from several chunks');
check(2, q{rec->'changes'->0->>'op' = 'update' AND rec->'changes'->0->'unchanged_toast' = '["big"]'
	AND NOT (rec->'changes'->0->'new') ? 'big' AND rec->'changes'->0->'new'->'i' = '99'},
	'an unchanged TOASTed value is marked, not sent');
check(3, q{rec->'changes'->0->>'op' = 'update' AND NOT rec->'changes'->0 ? 'key'
	AND NOT rec->'changes'->0 ? 'old'}, 'an update that keeps the key has no old tuple');
check(3, same_row("rec->'changes'->0->'new'", 3, 1), 'the updated row round-trips');
check(4, q{rec->'changes'->0->>'op' = 'delete'
	AND rec->'changes'->0->'key' = '{"tenant": 1, "id": 2}'}, 'a delete carries the key');
check(5, q{rec->'changes'->0->'key' = '{"tenant": 1, "id": 3}'
	AND rec->'changes'->0->'new'->'id' = '10'}, 'an update of the key carries the old key');
check(7, q{rec->'changes'->0->>'op' = 'delete' AND rec->'changes'->0->>'table' = 'public.full_t'
	AND rec->'changes'->0->'old' = '{"tenant": 1, "id": 1, "v": "gone soon"}'},
	'with REPLICA IDENTITY FULL a delete carries the whole old row');
check(7, q{(rec->>'sequence')::int = 8 AND (rec->>'generation')::int = 1}, 'SCNs follow');

done_testing();
