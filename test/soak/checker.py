"""The soak's checker: what every node holds and what the topic holds,
against what the clients were told.  It reads the topic with its own reader
of the record header (doc/protocol.md), not replkafka's."""

import struct
import subprocess
import time

import psycopg2

HEADER = struct.Struct(">2sBBBBHIIQQqII")
TXN, NEW_GEN, END_GEN, HEARTBEAT = 1, 2, 3, 4
FLAG_LAST = 0x01


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


def divergent_partitions(cluster, rows):
    bad = []
    for p in range(cluster.partitions):
        copies = [rows[name][p] for name in cluster.names]
        if any(c != copies[0] for c in copies[1:]):
            bad.append(p)
    return bad


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
            values.append(self.take(self.u32()).decode() if kind == ord("t") else None)
        return values


def written_values(body):
    """The values of column v that a transaction body inserts or updates."""
    relations = {}
    values = []
    outer = Body(body)
    while outer.pos < len(body):
        kind = outer.u8()
        rec = Body(outer.take(outer.u32()))
        relation = rec.u16()
        if kind == ord("R"):
            rec.str()
            rec.str()
            names = []
            for _ in range(rec.u16()):
                names.append(rec.str())
                rec.str()
                rec.u8()
            relations[relation] = names
            continue
        if kind == ord("D"):
            continue
        if kind == ord("U") and rec.u8() != ord("N"):
            rec.tuple()
        new = rec.tuple()
        names = relations[relation]
        if "v" in names and new[names.index("v")] is not None:
            values.append(new[names.index("v")])
    return values


def read_log(cluster):
    """Every record of the replication topic: (partition, offset, header
    fields, origin)."""
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
        if len(payload) < HEADER.size:
            records.append((partition, offset, None, None, None))
            continue
        fields = HEADER.unpack_from(payload)
        origin = payload[HEADER.size:HEADER.size + fields[4]].decode()
        records.append((partition, offset, fields, origin,
                        payload[HEADER.size + fields[4]:]))
    records.sort(key=lambda r: (r[0], r[1]))
    return records


def check_log(cluster, findings, problems):
    """Each partition's log, as the apply rules read it: the leader of each
    generation is the node whose NEW_GEN of it came first; its complete
    transactions must be numbered 1, 2, 3... without a gap or a second
    copy.  Returns the count of duplicated transactions, and the values
    written by the transactions of other nodes (zombies in the log, which
    replicas must skip)."""
    duplicated = 0
    foreign = set()
    state = {}
    chunks = {}
    for partition, offset, fields, origin, body in read_log(cluster):
        if fields is None:
            problems.append(f"partition {partition}: malformed record at offset {offset}")
            continue
        magic, version, rtype, flags, _, _, _, chunk, scn, _, _, _, _ = fields
        gen, seq = scn >> 32, scn & 0xFFFFFFFF
        st = state.setdefault(partition, {"gen": 0, "leader": None, "seen": set(), "last": 0})
        if rtype == NEW_GEN:
            if gen > st["gen"]:
                st.update(gen=gen, leader=origin, seen=set(), last=0)
            continue
        if rtype != TXN:
            continue
        # every transaction's chunks, to read the bodies of zombies'
        key = (partition, origin, scn)
        pending = chunks.setdefault(key, {"bodies": {}, "zombie": False})
        pending["bodies"].setdefault(chunk, body)
        leader = gen == st["gen"] and origin == st["leader"]
        if not leader:
            pending["zombie"] = True
        if flags & FLAG_LAST:
            done = chunks.pop(key)
            if done["zombie"]:
                # a zombie's transaction, or one a generation change cut:
                # replicas must not have applied it
                if sorted(done["bodies"]) != list(range(chunk + 1)):
                    problems.append(f"partition {partition}: the zombie transaction "
                                    f"ending at offset {offset} lacks chunks")
                else:
                    try:
                        foreign.update(written_values(b"".join(
                            done["bodies"][c] for c in range(chunk + 1))))
                    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as e:
                        problems.append(f"partition {partition}: cannot read the zombie "
                                        f"transaction ending at offset {offset}: {e}")
        # a leader's transaction counts once complete: the chunks of one cut
        # short (its shipper restarted) come again, from the first
        if not leader or not flags & FLAG_LAST:
            continue
        if seq in st["seen"]:
            duplicated += 1
            findings.append(f"partition {partition}: transaction {seq} of generation "
                            f"{gen} twice (offset {offset})")
            continue
        st["seen"].add(seq)
        if seq != st["last"] + 1:
            problems.append(f"partition {partition}: generation {gen} goes from "
                            f"transaction {st['last']} to {seq} at offset {offset}")
        st["last"] = seq
    return duplicated, foreign


def check(cluster, journal, say):
    """Check the nodes and the log against the journal.  Returns the
    counts of the summary line, the findings behind them, and the problems:
    anything else that looked wrong."""
    findings = []
    problems = list(cluster.problems)
    # the nodes converge once caught up
    deadline = time.time() + 120
    while True:
        rows = node_rows(cluster)
        divergent = divergent_partitions(cluster, rows)
        if not divergent or time.time() > deadline:
            break
        time.sleep(2)
    for p in divergent:
        findings.append(f"partition {p}: the nodes hold different rows")

    # what the clients were told, key by key, in each client's order
    writes = {}
    for entry in journal:
        for key, value in entry["writes"]:
            writes.setdefault(key, []).append((value, entry["outcome"]))
    acknowledged = sum(1 for e in journal if e["outcome"] == "acknowledged")
    local_values = {v for e in journal if e["outcome"] == "local"
                    for _, v in e["writes"] if v is not None}

    lost = 0
    zombie = 0
    for key, history in writes.items():
        last_ack = max((i for i, (_, o) in enumerate(history) if o == "acknowledged"),
                       default=None)
        start = last_ack if last_ack is not None else 0
        allowed = {v for v, o in history[start:]
                   if o in ("acknowledged", "committed", "unknown")}
        if last_ack is None:
            allowed.add(None)
        for name in cluster.names:
            value = None
            for p in range(cluster.partitions):
                if key in rows[name][p]:
                    value = rows[name][p][key]
            if value in allowed:
                continue
            if value in local_values:
                zombie += 1
                findings.append(f"{name}: key {key} holds {value}, a commit that was "
                                f"not part of the cluster's history")
            else:
                lost += 1
                findings.append(f"{name}: key {key} holds {value!r}; allowed: "
                                f"{sorted(map(str, allowed))[:5]} (last acknowledged "
                                f"write {history[last_ack][0] if last_ack is not None else None!r})")
    duplicated, foreign = check_log(cluster, findings, problems)
    for name in cluster.names:
        for p in range(cluster.partitions):
            for key, value in rows[name][p].items():
                if value in foreign:
                    zombie += 1
                    findings.append(f"{name}: key {key} holds {value}, written by a "
                                    f"transaction of a node that was not the leader")
    say(f"checked {len(writes)} keys on {len(cluster.names)} nodes; "
        f"{len(foreign)} values written by non-leaders in the log (skipped by the replicas)")
    return {"acknowledged": acknowledged, "lost": lost, "duplicated": duplicated,
            "divergent": len(divergent), "zombie": zombie, "findings": findings, "problems": problems}
