--
-- What ordinary roles, objects in other schemas and Kafka options cannot
-- make replkafka do.
--

-- An ordinary role creates, alters and drops its own tables: the event
-- trigger that forgets dropped replicated tables does not stop it.
CREATE ROLE regress_replkafka_user;
GRANT CREATE ON SCHEMA public TO regress_replkafka_user;
SET ROLE regress_replkafka_user;
CREATE TABLE scratch (id int PRIMARY KEY, v text);
ALTER TABLE scratch DROP COLUMN v;
DROP TABLE scratch;
RESET ROLE;

-- replkafka's catalog queries use pg_catalog's operators, whatever a
-- schema on the search path defines.
CREATE TABLE keep_me (id int PRIMARY KEY);
CREATE TABLE drop_me (id int PRIMARY KEY);
SELECT replkafka.add_table('keep_me', 'id');
SELECT replkafka.add_table('drop_me', 'id');
CREATE FUNCTION public.always_equal(regclass, oid) RETURNS boolean
	LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR public.= (LEFTARG = regclass, RIGHTARG = oid,
						  FUNCTION = public.always_equal);
SELECT replkafka.remove_table('drop_me');
SELECT relid FROM replkafka.tables ORDER BY relid::text;
DROP OPERATOR public.= (regclass, oid);
DROP FUNCTION public.always_equal(regclass, oid);
SELECT replkafka.remove_table('keep_me');
DROP TABLE keep_me, drop_me;

-- A BEFORE ROW trigger of a replicated table fires before the write fence,
-- which sees the row as it will be stored.
CREATE TABLE rekeyed (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('rekeyed', 'id');
CREATE FUNCTION public.rekey() RETURNS trigger LANGUAGE plpgsql
	AS 'BEGIN NEW.id := NEW.id + 1; RETURN NEW; END';
CREATE TRIGGER zz_rekey BEFORE INSERT ON rekeyed
	FOR EACH ROW EXECUTE FUNCTION public.rekey();
\echo :LAST_ERROR_SQLSTATE
CREATE TRIGGER aa_rekey BEFORE INSERT ON rekeyed
	FOR EACH ROW EXECUTE FUNCTION public.rekey();
ALTER TRIGGER aa_rekey ON rekeyed RENAME TO zz_rekey;
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.remove_table('rekeyed');
DROP TABLE rekeyed;
DROP FUNCTION public.rekey();

-- The write fence fires for every row: replacing it with one that has a
-- WHEN condition or a column list is refused.
CREATE TABLE fenced (id int PRIMARY KEY, v text);
SELECT replkafka.add_table('fenced', 'id');
CREATE OR REPLACE TRIGGER replkafka_fence
	BEFORE INSERT OR UPDATE OR DELETE ON fenced
	FOR EACH ROW WHEN (false) EXECUTE FUNCTION replkafka.fence();
\echo :LAST_ERROR_SQLSTATE
CREATE OR REPLACE TRIGGER replkafka_fence
	BEFORE INSERT OR UPDATE OF v OR DELETE ON fenced
	FOR EACH ROW EXECUTE FUNCTION replkafka.fence();
\echo :LAST_ERROR_SQLSTATE

-- Replicas apply changes as the table's owner, change by change: a
-- deferred trigger, or the deferred check of an exclusion constraint,
-- would run at commit instead.
CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql
	AS 'BEGIN RETURN NULL; END';
CREATE CONSTRAINT TRIGGER later AFTER INSERT ON fenced
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION public.noop();
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE fenced ADD CONSTRAINT one_v EXCLUDE USING btree (v WITH =)
	DEFERRABLE;
\echo :LAST_ERROR_SQLSTATE
-- not deferrable, or deferrable without code of the owner's: allowed
CREATE CONSTRAINT TRIGGER now_only AFTER INSERT ON fenced
	FOR EACH ROW EXECUTE FUNCTION public.noop();
ALTER TABLE fenced ADD CONSTRAINT unique_v UNIQUE (v) DEFERRABLE;
SELECT replkafka.remove_table('fenced');
CREATE CONSTRAINT TRIGGER later AFTER INSERT ON fenced
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION public.noop();
SELECT replkafka.add_table('fenced', 'id');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE fenced;
DROP FUNCTION public.noop();

-- A generated column cannot be a partition key: replicas could not write it.
CREATE TABLE generated_key (a int, id int GENERATED ALWAYS AS (a * 2) STORED PRIMARY KEY);
SELECT replkafka.add_table('generated_key', 'id');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE generated_key;

-- Only a table's owner registers it (or stops replicating it), even with
-- the right to call the functions.
CREATE TABLE not_yours (id int PRIMARY KEY);
GRANT EXECUTE ON FUNCTION replkafka.add_table(regclass, text) TO regress_replkafka_user;
GRANT USAGE ON SCHEMA replkafka TO regress_replkafka_user;
SET ROLE regress_replkafka_user;
SELECT replkafka.add_table('not_yours', 'id');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE USAGE ON SCHEMA replkafka FROM regress_replkafka_user;
REVOKE EXECUTE ON FUNCTION replkafka.add_table(regclass, text) FROM regress_replkafka_user;
DROP TABLE not_yours;

-- add_table() looks for existing rows without planning a query, which
-- would evaluate the constant parts of the owner's index expressions as
-- the caller.
SET ROLE regress_replkafka_user;
CREATE FUNCTION public.refuse_superuser() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		RAISE EXCEPTION 'the owner''s function ran as superuser %', current_user;
	END IF;
	RETURN 0;
END $$;
CREATE FUNCTION public.folded() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN public.refuse_superuser();
END $$;
CREATE TABLE owned (id int PRIMARY KEY);
CREATE INDEX owned_folded ON owned ((id + public.folded()));
RESET ROLE;
SELECT replkafka.add_table('owned', 'id');
SELECT replkafka.remove_table('owned');
DROP TABLE owned;
DROP FUNCTION public.folded(), public.refuse_superuser();

-- A schema "replkafka" that another role created beforehand is not used.
CREATE DATABASE regress_replkafka_schema;
\c regress_replkafka_schema
CREATE SCHEMA replkafka AUTHORIZATION regress_replkafka_user;
CREATE EXTENSION replkafka;
\echo :LAST_ERROR_SQLSTATE
DROP SCHEMA replkafka;
-- Nor one its owner let another role create objects in.
CREATE SCHEMA replkafka;
GRANT CREATE ON SCHEMA replkafka TO regress_replkafka_user;
CREATE EXTENSION replkafka;
\echo :LAST_ERROR_SQLSTATE
\c contrib_regression
DROP DATABASE regress_replkafka_schema;

-- replkafka.chunk_size is for superusers.
SET ROLE regress_replkafka_user;
SET replkafka.chunk_size = '4kB';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_replkafka_user;
DROP ROLE regress_replkafka_user;

-- replkafka.kafka_options never takes a property that makes librdkafka
-- load code or run commands, and never repeats a value it rejects (it may
-- be a password).
ALTER SYSTEM SET replkafka.kafka_options = 'sasl.kerberos.kinit.cmd=touch /tmp/replkafka-owned';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'plugin.library.paths=/tmp/replkafka-evil.so';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'ssl.engine.location=/tmp/replkafka-engine.so';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'ssl.providers=legacy';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'security.protocol=Secret-Passw0rd';
\echo :LAST_ERROR_SQLSTATE
-- Nor a reserved property under librdkafka's "topic." prefix.
ALTER SYSTEM SET replkafka.kafka_options = 'topic.acks=0';
\echo :LAST_ERROR_SQLSTATE
-- Kerberos principals and keytabs go into a shell command: plain
-- characters only.
ALTER SYSTEM SET replkafka.kafka_options = 'sasl.kerberos.principal=kafka$(touch /tmp/replkafka-owned)';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET replkafka.kafka_options = 'sasl.kerberos.keytab=/etc/krb5.keytab" -k x; touch /tmp/replkafka-owned; echo "';
\echo :LAST_ERROR_SQLSTATE
-- nor an option of kinit's
ALTER SYSTEM SET replkafka.kafka_options = 'sasl.kerberos.principal=-c/var/lib/postgresql/PG_VERSION';
\echo :LAST_ERROR_SQLSTATE
-- An entry without "=" is not repeated either.
ALTER SYSTEM SET replkafka.kafka_options = 'sasl.username=node, sasl.password Secret-Passw0rd';
\echo :LAST_ERROR_SQLSTATE
-- A message must hold a chunk of the smallest size.
ALTER SYSTEM SET replkafka.kafka_options = 'message.max.bytes=1000';
\echo :LAST_ERROR_SQLSTATE
-- TLS and SASL settings stay allowed, Kerberos included.
ALTER SYSTEM SET replkafka.kafka_options = 'security.protocol=sasl_ssl, sasl.mechanisms=SCRAM-SHA-512, sasl.username=node, sasl.password=secret, ssl.ca.location=/etc/ssl/certs/ca-certificates.crt';
ALTER SYSTEM SET replkafka.kafka_options = 'security.protocol=sasl_plaintext, sasl.mechanisms=GSSAPI, sasl.kerberos.principal=node/db1.example.com@EXAMPLE.COM, sasl.kerberos.keytab=/etc/postgresql/kafka.keytab';
ALTER SYSTEM RESET replkafka.kafka_options;
