--
-- replkafka.decode(): records of the wire format as JSON, and every kind of
-- malformed record.  Records are built byte by byte with the helpers of
-- schema rkt; doc/protocol.md describes the format.
--
-- The extension exists already (create_cluster creates it).
--
CREATE SCHEMA rkt;

-- Big-endian integers of 1, 2, 4 and 8 bytes.
CREATE FUNCTION rkt.u8(v int) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT substring(int4send(v) FROM 4) $$;
CREATE FUNCTION rkt.u16(v int) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT substring(int4send(v) FROM 3) $$;
CREATE FUNCTION rkt.u32(v bigint) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT substring(int8send(v) FROM 5) $$;
CREATE FUNCTION rkt.lsn(v pg_lsn) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT rkt.u32(div(v - '0/0', 4294967296)::bigint) ||
		   rkt.u32(((v - '0/0') % 4294967296)::bigint)
$$;

-- A string: 2-byte length and the UTF-8 bytes.
CREATE FUNCTION rkt.str(s text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT rkt.u16(octet_length(convert_to(s, 'UTF8'))) || convert_to(s, 'UTF8')
$$;

-- A whole record: header, origin name and body.  Type 1 = TXN,
-- 2 = NEW_GEN, 3 = END_GEN, 4 = HEARTBEAT.
CREATE FUNCTION rkt.record(type int, body bytea DEFAULT '',
						   last boolean DEFAULT true, chunk bigint DEFAULT 0,
						   part bigint DEFAULT 3, gen bigint DEFAULT 2,
						   seq bigint DEFAULT 7,
						   commit_lsn pg_lsn DEFAULT '0/16B3748',
						   commit_time bigint DEFAULT 1767225600123456,
						   xid bigint DEFAULT 751,
						   origin text DEFAULT 'node_a') RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT '\x524b01'::bytea || rkt.u8(type) ||
		   rkt.u8(CASE WHEN last THEN 1 ELSE 0 END) ||
		   rkt.u8(octet_length(convert_to(origin, 'UTF8'))) || '\x0000'::bytea ||
		   rkt.u32(part) || rkt.u32(chunk) || rkt.u32(gen) || rkt.u32(seq) ||
		   rkt.lsn(commit_lsn) || int8send(commit_time) || rkt.u32(xid) ||
		   rkt.u32(length(body)) || convert_to(origin, 'UTF8') || body
$$;

-- A body record: kind, payload length, payload.
CREATE FUNCTION rkt.rec(kind text, payload bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT convert_to(kind, 'UTF8') || rkt.u32(length(payload)) || payload
$$;

-- A relation definition; columns as 'name|type' or 'name|type|k' (key).
CREATE FUNCTION rkt.rel(relno int, nsp text, name text, VARIADIC cols text[])
RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT rkt.rec('R', rkt.u16(relno) || rkt.str(nsp) || rkt.str(name) ||
		   rkt.u16(cardinality(cols)) ||
		   (SELECT string_agg(rkt.str(split_part(c, '|', 1)) ||
							  rkt.str(split_part(c, '|', 2)) ||
							  rkt.u8(CASE split_part(c, '|', 3) WHEN 'k' THEN 1 ELSE 0 END),
							  ''::bytea ORDER BY o)
			  FROM unnest(cols) WITH ORDINALITY AS u(c, o)))
$$;

-- A tuple: NULL is a null, '<unchanged>' an unchanged TOASTed value,
-- '<absent>' a column that is not part of a key tuple, anything else text.
CREATE FUNCTION rkt.tup(VARIADIC vals text[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT rkt.u16(cardinality(vals)) ||
		   (SELECT string_agg(CASE WHEN v IS NULL THEN '\x6e'::bytea
								   WHEN v = '<unchanged>' THEN '\x75'::bytea
								   WHEN v = '<absent>' THEN '\x78'::bytea
								   ELSE '\x74'::bytea ||
										rkt.u32(octet_length(convert_to(v, 'UTF8'))) ||
										convert_to(v, 'UTF8') END,
							  ''::bytea ORDER BY o)
			  FROM unnest(vals) WITH ORDINALITY AS u(v, o))
$$;

-- Changes.  old_kind is 'N', 'K' or 'O'.
CREATE FUNCTION rkt.ins(relno int, new bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT rkt.rec('I', rkt.u16(relno) || new) $$;
CREATE FUNCTION rkt.upd(relno int, old_kind text, old bytea, new bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT rkt.rec('U', rkt.u16(relno) || convert_to(old_kind, 'UTF8') ||
		   coalesce(old, '') || new)
$$;
CREATE FUNCTION rkt.del(relno int, old_kind text, old bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT rkt.rec('D', rkt.u16(relno) || convert_to(old_kind, 'UTF8') || old)
$$;

-- The relation most tests use.
CREATE FUNCTION rkt.accounts() RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT rkt.rel(1, 'public', 'accounts', 'id|integer|k', 'owner|text')
$$;

--
-- The worked example of doc/protocol.md, written out by hand: one insert.
--
SELECT jsonb_pretty(replkafka.decode('\x524b0101010600000000000300000000000000020000000700000000016b37480006474846222240000002ef0000004f6e6f64655f615200000032000100067075626c696300086163636f756e74730002000269640007696e74656765720100056f776e657200047465787400490000001300010002740000000234327400000003616e6e'));
-- The helpers build the same bytes.
SELECT rkt.record(1, rkt.accounts() || rkt.ins(1, rkt.tup('42', 'ann'))) =
	   '\x524b0101010600000000000300000000000000020000000700000000016b37480006474846222240000002ef0000004f6e6f64655f615200000032000100067075626c696300086163636f756e74730002000269640007696e74656765720100056f776e657200047465787400490000001300010002740000000234327400000003616e6e'::bytea
	   AS same;

-- Properties of the function.
SELECT provolatile, proisstrict, proparallel, prorettype::regtype
  FROM pg_proc WHERE oid = 'replkafka.decode(bytea)'::regprocedure;
SELECT replkafka.decode(NULL) IS NULL AS null_in_null_out;

--
-- Control records.
--
SELECT jsonb_pretty(replkafka.decode(rkt.record(2, gen => 3, seq => 0,
	commit_lsn => '0/3000060', commit_time => 1767225601000000,
	xid => 0, origin => 'node_b')));
SELECT jsonb_pretty(replkafka.decode(rkt.record(3, gen => 3, seq => 41,
	xid => 0)));
SELECT jsonb_pretty(replkafka.decode(rkt.record(4, gen => 3, seq => 41,
	commit_time => 0, xid => 0)));

-- Extreme header values: the SCN is unsigned, times before 1970 work.
SELECT jsonb_pretty(replkafka.decode(rkt.record(4, part => 4294967295,
	gen => 4294967295, seq => 4294967295, commit_lsn => 'FFFFFFFF/FFFFFFFF',
	commit_time => -1000001, xid => 4294967295,
	origin => 'n23456789012345678901234567890123456789012345678901234567890123')));
SELECT replkafka.decode(rkt.record(4, commit_time => -210866803200000000))
	   ->> 'commit_time' AS earliest,
	   replkafka.decode(rkt.record(4, commit_time => 9223372036854775807))
	   ->> 'commit_time' AS latest;

--
-- Transactions.
--
-- Empty, and relation definitions alone.
SELECT replkafka.decode(rkt.record(1)) -> 'changes' AS changes;
SELECT replkafka.decode(rkt.record(1, rkt.accounts())) -> 'changes' AS changes;

-- Every kind of change and of old tuple; NULLs; unchanged TOASTed values.
SELECT jsonb_pretty(replkafka.decode(rkt.record(1,
	rkt.rel(7, 'public', 'docs', 'id|bigint|k', 'title|text', 'body|text',
			'note|text') ||
	rkt.ins(7, rkt.tup('1', 'First', 'a long text', NULL)) ||
	rkt.upd(7, 'N', NULL, rkt.tup('1', 'First!', '<unchanged>', NULL)) ||
	rkt.upd(7, 'K', rkt.tup('1', '<absent>', '<absent>', '<absent>'),
			rkt.tup('2', 'Second', '<unchanged>', '<unchanged>')) ||
	rkt.upd(7, 'O', rkt.tup('2', 'Second', 'a long text', 'n'),
			rkt.tup('2', NULL, 'short', 'n')) ||
	rkt.del(7, 'K', rkt.tup('2', '<absent>', '<absent>', '<absent>')) ||
	rkt.del(7, 'O', rkt.tup('3', 'Third', NULL, NULL)))));

-- Several relations; a relation number defined again takes the new
-- definition; names are quoted only where needed.
SELECT jsonb_pretty(replkafka.decode(rkt.record(1,
	rkt.accounts() ||
	rkt.rel(2, 'My Schema', 'Order', 'select|integer|k', 'Weird "name"|text') ||
	rkt.ins(1, rkt.tup('1', 'ann')) ||
	rkt.ins(2, rkt.tup('5', 'x')) ||
	rkt.rel(1, 'public', 'accounts', 'id|integer|k', 'owner|text', 'added|date') ||
	rkt.ins(1, rkt.tup('2', 'bob', '2026-01-01')) ||
	rkt.rel(65535, 'sales', 'select', 'k|text|k') ||
	rkt.ins(65535, rkt.tup('z')))));

-- A larger transaction.
WITH r AS (
	SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
		(SELECT string_agg(rkt.ins(1, rkt.tup(i::text, 'owner ' || i)), ''::bytea ORDER BY i)
		   FROM generate_series(1, 1000) AS i))) -> 'changes' AS changes
)
SELECT jsonb_array_length(changes) AS changes,
	   (SELECT sum((c #>> '{new,id}')::int) FROM jsonb_array_elements(changes) AS c) AS id_sum,
	   changes -> 999 AS last_change
  FROM r;

-- A relation without columns.
SELECT replkafka.decode(rkt.record(1,
	rkt.rec('R', rkt.u16(3) || rkt.str('public') || rkt.str('empty') || rkt.u16(0)) ||
	rkt.ins(3, '\x0000'))) -> 'changes' AS changes;

-- Values by type.
SELECT jsonb_pretty(replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'types', 'i2|smallint|k', 'i4|integer', 'i8|bigint',
			'n|numeric', 'n2|numeric(10,2)', 'r|real', 'd|double precision',
			'b1|boolean', 'b2|boolean', 'j|json', 'jb|jsonb', 't|text',
			'vc|character varying(10)', 'ia|integer[]', 'ts|timestamp with time zone',
			'u|uuid', 'by|bytea') ||
	rkt.ins(1, rkt.tup('-32768', '2147483647', '-9223372036854775808',
					   '12345678901234567890.000123456789', '3.10',
					   '1.5e+30', '-0', 't', 'f',
					   '{"a": [1, 2.50, {"b": null}], "c": "x\"y\u00e9", "d": true}',
					   '[false, "s", 1e3]',
					   'He said "hi" \ and left.' || chr(10) || 'Tab:' || chr(9) || 'end €',
					   'caf' || chr(233), '{1,2,NULL}', '2026-01-01 00:00:00+00',
					   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff')))));

-- Texts that are not JSON numbers stay strings, as do booleans that are
-- not "t" or "f"; a json value can be a scalar.
SELECT jsonb_pretty(replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'odd', 'n1|numeric|k', 'n2|numeric', 'n3|numeric',
			'r1|real', 'r2|double precision', 'i|integer', 'b|boolean',
			'j1|json', 'j2|jsonb', 'j3|json') ||
	rkt.ins(1, rkt.tup('NaN', 'Infinity', '-Infinity', 'NaN', '-Infinity',
					   '0123', 'true', '"just a string"', 'null',
					   '  42  ')))));

-- Numbers become numerics through numeric's input function, at any depth:
-- the largest and the most precise it holds are numbers...
WITH r AS (
	SELECT replkafka.decode(rkt.record(1,
		rkt.rel(1, 'public', 'big', 'a|numeric|k', 'b|numeric', 'd|json') ||
		rkt.ins(1, rkt.tup('1e131071', '1e-16383',
						   '[1e-16383, 0.1e131072, {"x": -1e131071}]'))))
		   #> '{changes,0,new}' AS new
)
SELECT jsonb_typeof(new -> 'a') AS a_type, jsonb_typeof(new -> 'b') AS b_type,
	   jsonb_path_query_array(new -> 'd', '$[*].type()') AS d_types,
	   jsonb_typeof(new #> '{d,2,x}') AS d2x_type
  FROM r;
-- ...and a number beyond them fails with numeric's own error, in the
-- context of its column.
SELECT replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'big', 'a|numeric|k', 'b|numeric') ||
	rkt.ins(1, rkt.tup('1', '1e131072'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'big', 'a|numeric|k', 'b|double precision') ||
	rkt.ins(1, rkt.tup('1', '1e-16384'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'big', 'a|numeric|k', 'd|json') ||
	rkt.ins(1, rkt.tup('1', '{"x": [1, 0e1073741823]}'))));
\echo :LAST_ERROR_SQLSTATE

-- Duplicate keys of embedded JSON: the last one wins, as in jsonb.
SELECT replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'j', 'j|jsonb|k') ||
	rkt.ins(1, rkt.tup('{"a": 1, "a": 2}')))) #> '{changes,0,new}' AS new;

--
-- Pieces of a chunked transaction: only the size of their body.
--
SELECT jsonb_pretty(replkafka.decode(rkt.record(1,
	rkt.accounts() || '\x490000', last => false)));
-- The other pieces of the same transaction; a piece's body may start or
-- end anywhere inside a body record.
SELECT n, d -> 'chunk' AS chunk, d -> 'last' AS last, d -> 'changes' AS changes,
	   d -> 'body_bytes' AS body_bytes
  FROM (VALUES
	(1, replkafka.decode(rkt.record(1, '\x001300010002', chunk => 1,
								   last => false))),
	(2, replkafka.decode(rkt.record(1, '\x740000000234327400000003616e6e',
								   chunk => 2)))) AS v(n, d)
 ORDER BY n;
-- Concatenating the bodies of chunks 0 to last gives the transaction back.
SELECT replkafka.decode(rkt.record(1, rkt.accounts() || '\x490000' ||
	'\x001300010002' || '\x740000000234327400000003616e6e')) -> 'changes' AS changes;

--
-- Malformed records: each raises an error, never a crash.
--
-- Too short for a header, or not a replkafka record at all.
SELECT replkafka.decode('');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode('\x524b');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(substring(rkt.record(4) FROM 1 FOR 47));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 1, ascii('X')));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(convert_to(repeat('garbage!', 10), 'UTF8'));
\echo :LAST_ERROR_SQLSTATE

-- Versions this server does not know, whatever follows.
SELECT replkafka.decode(set_byte(rkt.record(4), 2, 2));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode('\x524b02');
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 2, 0));
\echo :LAST_ERROR_SQLSTATE

-- Header fields.
SELECT replkafka.decode(set_byte(rkt.record(4), 3, 0));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 3, 5));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 4, 3));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 6, 1));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 7, 128));
\echo :LAST_ERROR_SQLSTATE

-- Origin names: 1 to 63 bytes, no zero byte, valid text.
SELECT replkafka.decode(set_byte(rkt.record(4), 5, 0));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 5, 64));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(4,
	origin => 'n234567890123456789012345678901234567890123456789012345678901234'));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 5, 200));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 50, 0));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(4), 50, 255));
\echo :LAST_ERROR_SQLSTATE
-- Origin names are node names: letters, digits, "_", "." and "-" only.
SELECT replkafka.decode(rkt.record(4, origin => 'node a'));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(4, origin => E'node\nb'));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(4, origin => 'nöde'));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(4, origin => 'Node_A.1-x'))->>'origin' AS origin;

-- The body length must be what follows the origin name.
SELECT replkafka.decode(rkt.record(1, rkt.accounts()) || '\x00'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(substring(rkt.record(1, rkt.accounts()) FROM 1 FOR 60));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(set_byte(rkt.record(1, rkt.accounts()), 44, 128));
\echo :LAST_ERROR_SQLSTATE

-- Control records have no body and are never chunked.
SELECT replkafka.decode(rkt.record(2, '\x00'));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(3, last => false));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(4, chunk => 1));
\echo :LAST_ERROR_SQLSTATE

-- Commit times PostgreSQL cannot represent.
SELECT replkafka.decode(rkt.record(4, commit_time => -210866803200000001));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(4, commit_time => -9223372036854775808));
\echo :LAST_ERROR_SQLSTATE

-- Body records cut short: a whole transaction must end with a whole record.
SELECT replkafka.decode(rkt.record(1, '\x52000000'));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, substring(rkt.accounts() FROM 1 FOR 20)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() || '\x49'::bytea));
\echo :LAST_ERROR_SQLSTATE

-- Body records whose payload does not match its declared length.
SELECT replkafka.decode(rkt.record(1, rkt.rec('R', '\x0001')));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.rec('R', '\x00')));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.rec('R', '\x0001' ||
	rkt.str('public') || rkt.str('t') || '\x0001'::bytea || rkt.str('id'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1,
	rkt.rec('R', substring(rkt.accounts() FROM 6) || '\x00'::bytea)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('I', '\x0001' || rkt.tup('42', 'ann') || '\x00'::bytea)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('I', '\x0001' || substring(rkt.tup('42', 'ann') FROM 1 FOR 9))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('I', '\x00010002'::bytea)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('D', '\x0001'::bytea)));
\echo :LAST_ERROR_SQLSTATE

-- Unknown body record kinds.
SELECT replkafka.decode(rkt.record(1, rkt.rec('Z', '\x0001')));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.rec('i', '\x0001')));
\echo :LAST_ERROR_SQLSTATE

-- Relation definitions: names, column flags, duplicate columns.
SELECT replkafka.decode(rkt.record(1, rkt.rel(1, '', 'accounts', 'id|integer|k')));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.rel(1, 'public', 'accounts', '|integer|k')));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.rel(1, 'public', 'accounts', 'id||k')));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, set_byte(rkt.accounts(), 40, 3)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'accounts', 'id|integer|k', 'owner|text', 'id|text')));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.rec('R', rkt.u16(1) ||
	rkt.str('public') || '\x0002ff41'::bytea || rkt.u16(0))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.rec('R', rkt.u16(1) ||
	rkt.str('public') || rkt.str('t') || rkt.u16(1) || '\x0002c328'::bytea ||
	rkt.str('text') || '\x00'::bytea)));
\echo :LAST_ERROR_SQLSTATE

-- Changes of a relation number not defined before them.
SELECT replkafka.decode(rkt.record(1, rkt.ins(1, rkt.tup('42', 'ann'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.ins(2, rkt.tup('42', 'ann'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.ins(1, rkt.tup('42', 'ann')) ||
	rkt.accounts()));
\echo :LAST_ERROR_SQLSTATE

-- Tuples with another number of values than the relation has columns.
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.ins(1, rkt.tup('42'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.ins(1, rkt.tup('42', 'ann', 'x'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.upd(1, 'K', rkt.tup('42'), rkt.tup('42', 'ann'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.del(1, 'O', rkt.tup('42', 'ann', NULL))));
\echo :LAST_ERROR_SQLSTATE

-- Value kinds: unknown ones, and known ones where they cannot be.
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('I', '\x0001000274000000023432'::bytea || '\x3f'::bytea)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.ins(1, rkt.tup('42', '<absent>'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.upd(1, 'O', rkt.tup('42', '<absent>'), rkt.tup('42', 'ann'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.del(1, 'O', rkt.tup('42', '<unchanged>'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.del(1, 'K', rkt.tup('42', '<unchanged>'))));
\echo :LAST_ERROR_SQLSTATE

-- Old tuple kinds: only N, K and O, and no N for a delete.
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.upd(1, 'X', NULL, rkt.tup('42', 'ann'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('D', '\x00014e'::bytea)));
\echo :LAST_ERROR_SQLSTATE

-- Values: truncated, too many for the record, not valid text.
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('I', '\x000100027400000009343274'::bytea)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('I', '\x0001ffff6e6e'::bytea)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('I', '\x00010002740000000234327400000003616e00'::bytea)));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.rec('I', '\x000100027400000002343274000000036162e9'::bytea)));
\echo :LAST_ERROR_SQLSTATE

-- A json value that is not JSON.
SELECT replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'j', 'id|integer|k', 'doc|jsonb') ||
	rkt.ins(1, rkt.tup('1', '{"a": 1,'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'j', 'id|integer|k', 'doc|json') ||
	rkt.ins(1, rkt.tup('1', '{"a": "\u0000"}'))));
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode(rkt.record(1,
	rkt.rel(1, 'public', 'j', 'id|integer|k', 'doc|json') ||
	rkt.ins(1, rkt.tup('1', ''))));
\echo :LAST_ERROR_SQLSTATE

-- Bytes after the last body record of a whole transaction.
SELECT replkafka.decode(rkt.record(1, rkt.accounts() ||
	rkt.ins(1, rkt.tup('42', 'ann')) || '\x0000'::bytea));
\echo :LAST_ERROR_SQLSTATE

--
-- decode_chunks(): a transaction cut into chunks at arbitrary bytes.
--
SELECT rkt.accounts() || rkt.ins(1, rkt.tup('42', 'ann')) ||
	   rkt.ins(1, rkt.tup('43', 'bob')) AS body \gset
SELECT jsonb_pretty(replkafka.decode_chunks(ARRAY[
	rkt.record(1, substr(:'body'::bytea, 1, 10), last => false, chunk => 0),
	rkt.record(1, substr(:'body'::bytea, 11, 30), last => false, chunk => 1),
	rkt.record(1, substr(:'body'::bytea, 41), last => true, chunk => 2)]) - 'commit_time');
-- One chunk alone does not decode.
SELECT replkafka.decode(rkt.record(1, substr(:'body'::bytea, 1, 10),
								   last => false, chunk => 0)) -> 'changes' AS changes;
-- Chunks that are not one whole transaction, in order.
SELECT replkafka.decode_chunks(ARRAY[
	rkt.record(1, substr(:'body'::bytea, 1, 10), last => false, chunk => 0),
	rkt.record(1, substr(:'body'::bytea, 41), last => true, chunk => 2)]);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode_chunks(ARRAY[
	rkt.record(1, substr(:'body'::bytea, 1, 40), last => false, chunk => 0),
	rkt.record(1, substr(:'body'::bytea, 41), last => true, chunk => 1, seq => 8)]);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode_chunks(ARRAY[
	rkt.record(1, substr(:'body'::bytea, 1, 40), last => false, chunk => 0)]);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode_chunks(ARRAY[
	rkt.record(1, substr(:'body'::bytea, 1, 40), last => false, chunk => 0),
	rkt.record(1, substr(:'body'::bytea, 41, 5), last => true, chunk => 1)]);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode_chunks(ARRAY[]::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT replkafka.decode_chunks(ARRAY[NULL::bytea]);
\echo :LAST_ERROR_SQLSTATE

DROP SCHEMA rkt CASCADE;
