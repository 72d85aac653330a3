"""The soak's checker: what every node holds and what the topic holds,
against what the clients were told.  It reads the topic with its own reader
of the record format (doc/protocol.md), not replkafka's, and replays each
partition's log as the apply rules say a replica must: that replay is the
history every node must hold, row by row and change by change.

Counts (the summary line):
  lost        an acknowledged transaction missing from the history, a key
              whose row is not the last acknowledged write of it (nor a
              later write that may have taken effect), a change of the
              history that a node never applied, a leader's transaction
              missing from its numbering;
  duplicated  a leader's transaction twice in the log, a change applied
              twice on a node, a transaction that is in the history twice;
  divergent   a partition whose rows on some node differ from the history;
  zombie      a change of a transaction that is not part of the history
              (a stale primary's, one after its generation's END_GEN, a
              commit the client was told is not part of the history or
              that rolled back) in the history or applied on a node.
Every count comes with its findings; anything else that looked wrong is a
problem, and fails the soak too."""

import re
import struct
import subprocess
import time

HEADER = struct.Struct(">2sBBBBHIIQQqII")
MAGIC = b"RK"
VERSION = 1
TXN, NEW_GEN, END_GEN, HEARTBEAT = 1, 2, 3, 4
FLAG_LAST = 0x01
CONVERGE_SECONDS = 120


class Body:
    """A cursor over a transaction body (doc/protocol.md, "Body records")."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("body cut short")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return int.from_bytes(self.take(2), "big")

    def u32(self):
        return int.from_bytes(self.take(4), "big")

    def str(self):
        return self.take(self.u16()).decode()

    def tuple(self):
        values = []
        for _ in range(self.u16()):
            kind = self.u8()
            if kind == ord("t"):
                values.append(self.take(self.u32()).decode())
            elif kind in (ord("n"), ord("x")):
                values.append(None)
            else:
                raise ValueError(f"value kind {kind:#x} in table soak")
        return values


def decode_changes(body):
    """The changes a transaction body makes to table soak, in order:
    [key, value] for an insert or update, [key, None] for a delete."""
    relations = {}
    changes = []
    outer = Body(body)
    while outer.pos < len(body):
        kind = outer.u8()
        rec = Body(outer.take(outer.u32()))
        relation = rec.u16()
        if kind == ord("R"):
            rec.str()
            table = rec.str()
            names = []
            for _ in range(rec.u16()):
                names.append(rec.str())
                rec.str()
                rec.u8()
            relations[relation] = (table, names)
            continue
        table, names = relations[relation]
        if kind == ord("D"):
            rec.u8()
            row = rec.tuple()
        elif kind in (ord("I"), ord("U")):
            if kind == ord("U") and rec.u8() != ord("N"):
                rec.tuple()
            row = rec.tuple()
        else:
            raise ValueError(f"body record kind {kind:#x}")
        if rec.pos != len(rec.data):
            raise ValueError("body record longer than its fields")
        if table != "soak":
            continue
        key = int(row[names.index("id")])
        changes.append([key, None if kind == ord("D") else row[names.index("v")]])
    return changes


def high_watermarks(cluster):
    """partition -> the offset after the last record, from the brokers."""
    args = ["kcat", "-b", cluster.bootstrap, "-Q"]
    for p in range(cluster.partitions):
        args += ["-t", f"replkafka:{p}:-1"]
    out = cluster.run(*args)
    marks = {}
    for m in re.finditer(r"\[(\d+)\]\s+offset\s+(-?\d+)", out):
        marks[int(m.group(1))] = int(m.group(2))
    return marks


def read_log(cluster, problems):
    """Every record of the replication topic, as (partition, offset,
    header fields, origin, body), in log order; a record whose header is
    not one doc/protocol.md allows is a problem (fields None)."""
    marks = high_watermarks(cluster)
    out = subprocess.run(["kcat", "-b", cluster.bootstrap, "-C", "-t", "replkafka",
                          "-o", "beginning", "-e", "-q", "-f", "%p %o %S\n%s"],
                         stdout=subprocess.PIPE, check=True).stdout
    records = []
    pos = 0
    while pos < len(out):
        nl = out.index(b"\n", pos)
        partition, offset, size = (int(x) for x in out[pos:nl].split())
        size = max(size, 0)
        payload = out[nl + 1:nl + 1 + size]
        pos = nl + 1 + size
        fields = HEADER.unpack_from(payload) if len(payload) >= HEADER.size else None
        if fields is None or fields[0] != MAGIC or fields[1] != VERSION \
                or fields[6] != partition \
                or len(payload) != HEADER.size + fields[4] + fields[12]:
            problems.append(f"partition {partition}: malformed record at offset {offset}")
            records.append((partition, offset, None, None, None))
            continue
        origin = payload[HEADER.size:HEADER.size + fields[4]].decode()
        records.append((partition, offset, fields, origin,
                        payload[HEADER.size + fields[4]:]))
    records.sort(key=lambda r: (r[0], r[1]))
    # the whole log, not a cut-short read of it: offsets are dense (no
    # Kafka transactions, no compaction) and end at the high watermark
    for p in range(cluster.partitions):
        offsets = [r[1] for r in records if r[0] == p]
        if offsets != list(range(len(offsets))) or len(offsets) != marks.get(p):
            problems.append(f"partition {p}: read {len(offsets)} records, offsets "
                            f"{offsets[:1]}..{offsets[-1:]}, high watermark {marks.get(p)}")
    return records


class History:
    """Each partition's log replayed as the apply rules read it (doc/
    protocol.md, "Consumer rules"): the leader of a generation is the node
    whose NEW_GEN of it comes first; its complete transactions, numbered 1,
    2, 3..., until its END_GEN, are the history, each applied once; any
    other transaction is a zombie's."""

    def __init__(self, records, findings, problems):
        self.findings = findings
        self.problems = problems
        self.duplicated = 0
        self.lost = 0
        self.rows = {}       # partition -> {key: value}
        self.changes = {}    # partition -> {key: [value or None, ...]}
        self.by_value = {}   # value -> [(partition, origin, scn, changes)]
        self.foreign = set()         # values of transactions outside it
        self.foreign_deletes = set()  # keys deleted by them
        self.chunked = 0
        state = {}
        pending = {}
        for partition, offset, fields, origin, body in records:
            if fields is None:
                continue
            _, _, rtype, flags, _, _, _, chunk, scn, _, _, xid, _ = fields
            gen, seq = scn >> 32, scn & 0xFFFFFFFF
            st = state.setdefault(partition, {"gen": 0, "leader": None, "ended": False,
                                              "last": 0, "xids": {}})
            if gen > st["gen"] and rtype != NEW_GEN:
                problems.append(f"partition {partition}: a record of generation {gen} "
                                f"before its NEW_GEN, at offset {offset}")
            if rtype == NEW_GEN:
                if gen > st["gen"]:
                    st.update(gen=gen, leader=origin, ended=False, last=0, xids={})
                continue
            leader = gen == st["gen"] and origin == st["leader"] and not st["ended"]
            if rtype == END_GEN:
                if leader:
                    if seq != st["last"]:
                        self.lost += 1
                        findings.append(f"partition {partition}: END_GEN of generation {gen} "
                                        f"after transaction {seq}, but the history has "
                                        f"{st['last']} (offset {offset})")
                    st["ended"] = True
                continue
            if rtype != TXN:
                continue
            self.collect(partition, offset, origin, scn, xid, chunk, flags, body,
                         leader, st, pending)
        for (partition, origin, scn, xid), t in pending.items():
            # never completed: a transaction cut short by a generation
            # change or by its shipper's end, not rewritten after
            self.zombie_bodies(partition, t["bodies"], f"cut short at chunk "
                               f"{max(t['bodies'])} (origin {origin}, scn {scn:#x})")

    def collect(self, partition, offset, origin, scn, xid, chunk, flags, body,
                leader, st, pending):
        key = (partition, origin, scn, xid)
        t = pending.get(key)
        if chunk == 0 or t is None:
            # a transaction (again) from its first chunk: a copy cut short
            # before is written again from chunk 0
            t = pending[key] = {"bodies": {}, "leader": True}
        t["bodies"][chunk] = body
        t["leader"] = t["leader"] and leader
        if not flags & FLAG_LAST:
            return
        del pending[key]
        if sorted(t["bodies"]) != list(range(chunk + 1)):
            self.problems.append(f"partition {partition}: the transaction ending at "
                                 f"offset {offset} lacks chunks")
            return
        if not t["leader"]:
            self.zombie_bodies(partition, t["bodies"], f"ending at offset {offset}")
            return
        try:
            changes = decode_changes(b"".join(t["bodies"][c] for c in range(chunk + 1)))
        except (ValueError, KeyError, IndexError, UnicodeDecodeError) as e:
            self.problems.append(f"partition {partition}: cannot read the transaction "
                                 f"ending at offset {offset}: {e}")
            return
        gen, seq = scn >> 32, scn & 0xFFFFFFFF
        if seq in st["xids"]:
            if st["xids"][seq] == xid:
                self.duplicated += 1
                self.findings.append(f"partition {partition}: transaction {seq} of "
                                     f"generation {gen} twice (offset {offset})")
            else:
                self.lost += 1
                self.findings.append(f"partition {partition}: two transactions numbered "
                                     f"{seq} in generation {gen} (xids {st['xids'][seq]} "
                                     f"and {xid}, offset {offset})")
            return
        st["xids"][seq] = xid
        if seq != st["last"] + 1:
            self.lost += 1
            self.findings.append(f"partition {partition}: generation {gen} goes from "
                                 f"transaction {st['last']} to {seq} at offset {offset}")
        st["last"] = max(st["last"], seq)
        if chunk > 0:
            self.chunked += 1
        rows = self.rows.setdefault(partition, {})
        history = self.changes.setdefault(partition, {})
        for k, value in changes:
            if value is None:
                rows.pop(k, None)
            else:
                rows[k] = value
            history.setdefault(k, []).append(value)
        entry = (partition, st["leader"], scn, changes)
        for value in {v for _, v in changes if v is not None}:
            self.by_value.setdefault(value, []).append(entry)

    def zombie_bodies(self, partition, bodies, where):
        """The writes of a transaction outside the history, from its
        contiguous chunks from the first: replicas must not have applied
        any of them."""
        data = b""
        for c in range(len(bodies)):
            if c not in bodies:
                break
            data += bodies[c]
        try:
            changes = decode_changes(data)
        except (ValueError, KeyError, IndexError, UnicodeDecodeError):
            # a transaction cut short may end inside a body record: keep the
            # changes before that, if it still starts on a record
            changes = []
            try:
                changes = decode_changes(data[:_last_whole_record(data)])
            except (ValueError, KeyError, IndexError, UnicodeDecodeError) as e:
                self.problems.append(f"partition {partition}: cannot read the zombie "
                                     f"transaction {where}: {e}")
        for k, value in changes:
            if value is None:
                self.foreign_deletes.add(k)
            else:
                self.foreign.add(value)

    def finish(self):
        """Values of the history are not a zombie's, even where a copy of
        their transaction landed outside it (a copy written again after a
        generation change)."""
        self.foreign -= set(self.by_value)


def _last_whole_record(data):
    pos = 0
    while pos + 5 <= len(data):
        end = pos + 5 + int.from_bytes(data[pos + 1:pos + 5], "big")
        if end > len(data):
            break
        pos = end
    return pos


def node_rows(cluster):
    """name -> {partition -> {key: value}}, for every node."""
    rows = {}
    for name in cluster.names:
        data = {p: {} for p in range(cluster.partitions)}
        for key, value, p in cluster.sql(
                name, "SELECT id, v, replkafka.partition_of('soak', id) FROM soak"):
            data[p][key] = value
        rows[name] = data
    return rows


def node_changes(cluster):
    """name -> {partition -> {key: [value or None, ...]}}: the changes each
    node made to table soak, from the ENABLE ALWAYS trigger's audit (since
    the partition's last rebuild), in the order they were made."""
    changes = {}
    for name in cluster.names:
        data = {p: {} for p in range(cluster.partitions)}
        for key, value, p in cluster.sql(name, """
SELECT id, v, replkafka.partition_of('soak', id) FROM soak_audit ORDER BY n"""):
            data[p].setdefault(key, []).append(value)
        changes[name] = data
    return changes


def converged(cluster, history):
    """Wait until every node holds the history's rows; returns them, and
    the partitions where some node still does not."""
    deadline = time.time() + CONVERGE_SECONDS
    while True:
        rows = node_rows(cluster)
        divergent = sorted({p for name in cluster.names for p in range(cluster.partitions)
                            if rows[name][p] != history.rows.get(p, {})})
        if not divergent or time.time() > deadline:
            return rows, divergent
        time.sleep(2)


def check_roles(cluster, records, problems):
    """Every partition back in a normal role: one primary, the leader of
    the log's last generation; every other node its replica, caught up."""
    last = {}
    for partition, _, fields, origin, _ in records:
        if fields is not None and fields[2] == NEW_GEN \
                and fields[8] >> 32 > last.get(partition, (0, None))[0]:
            last[partition] = (fields[8] >> 32, origin)
    roles = {name: cluster.roles(name) for name in cluster.names}
    for p in range(cluster.partitions):
        seen = []
        for name in cluster.names:
            role, gen = roles[name].get(p, (None, None))
            seen.append(f"{name} {role} {gen}")
            if role == "primary" and (gen, name) != last.get(p):
                problems.append(f"partition {p}: {name} is primary in generation {gen}, "
                                f"but the log's last generation is {last.get(p)}")
            elif role not in ("primary", "replica"):
                problems.append(f"partition {p}: {name} ends in role {role}")
        if sum(1 for s in seen if " primary " in s) != 1:
            problems.append(f"partition {p}: not exactly one primary: {', '.join(seen)}")


def check(cluster, journal, say):
    """Check the nodes and the log against the journal.  Returns the
    counts of the summary line, the findings behind them, and the problems:
    anything else that looked wrong."""
    findings = []
    problems = list(cluster.problems)
    records = read_log(cluster, problems)
    history = History(records, findings, problems)
    history.finish()
    lost, duplicated, zombie = history.lost, history.duplicated, 0
    if history.chunked == 0:
        problems.append("no transaction of the history was cut into chunks")

    # the nodes converge to the history
    rows, divergent = converged(cluster, history)
    for p in divergent:
        findings.append(f"partition {p}: the nodes' rows differ from the history: "
                        + ", ".join(f"{n} {len(rows[n][p])} rows" for n in cluster.names)
                        + f", the history {len(history.rows.get(p, {}))}")
    check_roles(cluster, records, problems)

    # every transaction the clients were told of, against the history
    acknowledged = 0
    local_values = set()
    for entry in journal:
        outcome = entry["outcome"]
        values = [v for _, v in entry["writes"] if v is not None]
        copies = history.by_value.get(values[0], []) if values else []
        what = f"client {entry['client']}'s transaction {values[0] if values else ''} " \
            f"on {entry['node']} ({outcome})"
        if outcome == "acknowledged":
            acknowledged += 1
            for low, high in cluster.no_ack_windows:
                # begun once the brokers were down (a commit begun before
                # may have been acknowledged by Kafka before, and its
                # answer held up by a stopped process)
                if entry["start"] >= low and entry["end"] <= high:
                    problems.append(f"{what} was acknowledged while two brokers were down")
        if outcome in ("local", "failed"):
            local_values.update(values)
            if copies:
                zombie += 1
                findings.append(f"{what} is in the history")
            continue
        if len(copies) > 1:
            duplicated += 1
            findings.append(f"{what} is in the history {len(copies)} times")
        if outcome != "acknowledged":
            continue
        if not copies:
            lost += 1
            findings.append(f"{what} is not in the history")
            continue
        partition, origin, _, changes = copies[0]
        # a delete of a row that was not there changes nothing
        logged = [w for w in changes if w[1] is not None]
        if partition != entry["partition"] or origin != entry["node"] \
                or logged != [w for w in entry["writes"] if w[1] is not None] \
                or not {k for k, v in changes if v is None} <= \
                {k for k, v in entry["writes"] if v is None}:
            lost += 1
            findings.append(f"{what} is in the history as {origin}'s, partition "
                            f"{partition}, with other changes")

    # each key's row: the last acknowledged write of it, or a later write
    # that may have taken effect
    writes = {}
    for entry in journal:
        for key, value in entry["writes"]:
            writes.setdefault(key, []).append((value, entry["outcome"]))
    for key, sequence in writes.items():
        last_ack = max((i for i, (_, o) in enumerate(sequence) if o == "acknowledged"),
                       default=None)
        allowed = {v for v, o in sequence[last_ack or 0:]
                   if o in ("acknowledged", "committed", "unknown")}
        if last_ack is None:
            allowed.add(None)
        for name in cluster.names:
            value = next((rows[name][p][key] for p in range(cluster.partitions)
                          if key in rows[name][p]), None)
            if value in allowed:
                continue
            if value in local_values or value in history.foreign:
                continue  # counted below, as a zombie's change applied
            lost += 1
            findings.append(f"{name}: key {key} holds {value!r}; allowed: "
                            f"{sorted(map(str, allowed))[:5]} (last acknowledged "
                            f"write {sequence[last_ack][0] if last_ack is not None else None!r})")

    # each node's changes, one by one, against the history's
    audit = node_changes(cluster)
    for name in cluster.names:
        for p in range(cluster.partitions):
            made = audit[name][p]
            expected = history.changes.get(p, {})
            for key in sorted(set(made) | set(expected)):
                got, want = made.get(key, []), expected.get(key, [])
                if got == want:
                    continue
                extra = [v for v in got if v is not None and got.count(v) > want.count(v)]
                if any(v in history.foreign or v in local_values for v in extra) or \
                        (got.count(None) > want.count(None)
                         and key in history.foreign_deletes):
                    zombie += 1
                    kind = "a change of a transaction outside the history"
                elif extra and all(v in want for v in extra):
                    duplicated += 1
                    kind = "a change applied twice"
                elif len(got) < len(want):
                    lost += 1
                    kind = "a change of the history not applied"
                else:
                    problems.append(f"{name}: key {key}: changes {got[-6:]}, "
                                    f"the history's {want[-6:]}")
                    continue
                findings.append(f"{name}: key {key} (partition {p}): {kind}: "
                                f"changes {got[-6:]}, the history's {want[-6:]}")
    say(f"checked {len(records)} records, {sum(len(c) for c in history.changes.values())} "
        f"keys and {len(writes)} journaled keys on {len(cluster.names)} nodes; "
        f"{history.chunked} chunked transactions in the history; "
        f"{len(history.foreign)} values written outside it (skipped by the replicas)")
    return {"acknowledged": acknowledged, "lost": lost, "duplicated": duplicated,
            "divergent": len(divergent), "zombie": zombie, "findings": findings,
            "problems": problems}
