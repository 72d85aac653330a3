
# Copyright (c) 2026, replkafka authors

# The apply worker applies each change as the owner of its table (security
# issue, item 1).  The log is written by hand: node_x leads partition 0;
# node_a follows.  Table "items" belongs to alice, an ordinary role.
#
# - A column default and an ENABLE ALWAYS trigger of alice's run as alice,
#   not as the superuser the worker connects as.
# - alice's trigger that makes her a superuser fails for want of the
#   privilege, stopping the partition; she stays an ordinary role.
# - A setting her trigger changes does not outlive the change.
# - A function her expression index calls runs as alice when the worker
#   opens the table's indexes.
# - A deferred trigger of another table of hers, which her trigger on
#   "items" writes, never runs as the worker at commit: the change fails,
#   stopping its partition, since it cannot fire as alice either.
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
$node->safe_psql('postgres', q{
SELECT replkafka.create_cluster(2, 1);
CREATE ROLE alice LOGIN;
GRANT CREATE ON SCHEMA public TO alice;
SET ROLE alice;
CREATE TABLE public.items (id int PRIMARY KEY, v text,
						   made_by text DEFAULT current_user);
CREATE TABLE public.seen (id int, who text, datestyle text);
CREATE FUNCTION public.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.seen
		VALUES (NEW.id, current_user, current_setting('DateStyle'));
	PERFORM pg_catalog.set_config('DateStyle', 'German', false);
	RETURN NULL;
END $$;
CREATE TRIGGER note AFTER INSERT ON public.items
	FOR EACH ROW EXECUTE FUNCTION public.note();
ALTER TABLE public.items ENABLE ALWAYS TRIGGER note;
RESET ROLE;
SELECT replkafka.add_table('items', 'id');
});

my @keys = ReplkafkaTest::keys_of_partition($node, 'items', 0, 4);
my $columns = [ [ 'id', 'integer', 1 ], [ 'v', 'text', 0 ] ];
my $sequence = 0;
sub insert_record
{
	my ($id) = @_;
	$sequence++;
	return ReplkafkaTest::Wire::record(partition => 0, generation => 1,
		sequence => $sequence, origin => 'node_x',
		body => ReplkafkaTest::Wire::insert_body('public', 'items', $columns,
			[ $id, "row $sequence" ]));
}

$kafka->produce('replkafka', 0,
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 0,
		generation => 1, origin => 'node_x'),
	insert_record($keys[0]), insert_record($keys[1]));
$node->safe_psql('postgres', 'SELECT replkafka.follow(0)');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 2 FROM items'),
	'both rows are applied');
is($node->safe_psql('postgres', 'SELECT string_agg(DISTINCT made_by, \',\') FROM items'),
	'alice', 'the column default is computed as the owner');
is($node->safe_psql('postgres',
		'SELECT string_agg(who || \' \' || datestyle, \',\' ORDER BY id) FROM seen'),
	'alice ISO, MDY,alice ISO, MDY',
	'the trigger runs as the owner, and its setting did not outlive the first change');

# alice's code that makes her a superuser if it ever runs as one: in a
# function an expression index of "items" calls (the apply worker
# evaluates it when it opens the table's indexes), and in a deferred
# trigger of another table of hers, which her trigger on "items" writes.
$node->safe_psql('postgres', q{
SET ROLE alice;
CREATE TABLE public.ran_as (place text, who text);
CREATE FUNCTION public.try_escalate(place text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.ran_as VALUES (place, current_user);
	IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		EXECUTE 'ALTER ROLE alice SUPERUSER';
	END IF;
	RETURN 0;
END $$;
CREATE FUNCTION public.folded() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN public.try_escalate('index expression');
END $$;
CREATE INDEX items_folded ON public.items ((id + public.folded()));
CREATE TABLE public.other (x int);
CREATE FUNCTION public.later() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.try_escalate('deferred trigger');
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER later AFTER INSERT ON public.other
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.later();
ALTER TABLE public.other ENABLE ALWAYS TRIGGER later;
CREATE FUNCTION public.feed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.v LIKE 'feed%' THEN
		INSERT INTO public.other VALUES (NEW.id);
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER feed AFTER INSERT ON public.items
	FOR EACH ROW EXECUTE FUNCTION public.feed();
ALTER TABLE public.items ENABLE ALWAYS TRIGGER feed;
TRUNCATE public.ran_as;
CREATE FUNCTION public.items_count() RETURNS bigint LANGUAGE sql
	SECURITY DEFINER AS 'SELECT count(*) FROM public.items';
});

# From here on, "items" is queried as alice (items_count() is hers, and
# SECURITY DEFINER): a superuser's query would plan it, evaluating her
# index expression as the superuser.
$kafka->produce('replkafka', 0, insert_record($keys[2]));
ok($node->poll_query_until('postgres', 'SELECT items_count() = 3'),
	'the third row is applied');
is($node->safe_psql('postgres', 'SELECT string_agg(DISTINCT place || \' \' || who, \',\') FROM ran_as'),
	'index expression alice', 'the index expression runs as the owner');

# A deferred trigger cannot fire as alice (in a security-restricted
# operation), and must not fire at commit as the worker: the change fails.
my ($fed) = ReplkafkaTest::keys_of_partition($node, 'items', 1, 1);
$kafka->produce('replkafka', 1,
	ReplkafkaTest::Wire::record(type => 'NEW_GEN', partition => 1,
		generation => 1, origin => 'node_x'),
	ReplkafkaTest::Wire::record(partition => 1, generation => 1, sequence => 1,
		origin => 'node_x',
		body => ReplkafkaTest::Wire::insert_body('public', 'items', $columns, [ $fed, 'feed me' ])));
$node->safe_psql('postgres', 'SELECT replkafka.follow(1)');
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 1"),
	'the change whose trigger queues a deferred trigger stops its partition');
like($node->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 1'),
	qr/cannot fire deferred trigger within security-restricted operation/,
	'because a deferred trigger cannot fire as the owner');
is($node->safe_psql('postgres', "SELECT count(*) FROM ran_as WHERE place = 'deferred trigger'"),
	'0', 'the deferred trigger never ran');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'"),
	'f', 'alice is still not a superuser');

# alice's trigger tries to make her a superuser.
$node->safe_psql('postgres', q{
SET ROLE alice;
CREATE FUNCTION public.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE 'ALTER ROLE alice SUPERUSER';
	RETURN NULL;
END $$;
CREATE TRIGGER escalate AFTER INSERT ON public.items
	FOR EACH ROW EXECUTE FUNCTION public.escalate();
ALTER TABLE public.items ENABLE ALWAYS TRIGGER escalate;
});
$kafka->produce('replkafka', 0, insert_record($keys[3]));
ok($node->poll_query_until('postgres',
		"SELECT role = 'error' FROM replkafka.partitions WHERE partition = 0"),
	'the change whose trigger escalates stops the partition');
like($node->safe_psql('postgres', 'SELECT last_error FROM replkafka.partitions WHERE partition = 0'),
	qr/permission denied|must be superuser/,
	'for want of the privilege');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'"),
	'f', 'alice is not a superuser');
is($node->safe_psql('postgres', 'SELECT items_count()'), '3',
	'the change was not applied');

done_testing();
