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
            records.append((partition, offset, None, None))
            continue
        fields = HEADER.unpack_from(payload)
        origin = payload[HEADER.size:HEADER.size + fields[5]].decode()
        records.append((partition, offset, fields, origin))
    records.sort(key=lambda r: (r[0], r[1]))
    return records


def check_log(cluster, problems):
    """Each partition's log, as the apply rules read it: the leader of each
    generation is the node whose NEW_GEN of it came first; its
    transactions must be numbered 1, 2, 3... without a gap or a second
    copy.  Returns the count of duplicated transactions and of records of
    other nodes (zombies in the log, which replicas skip)."""
    duplicated = 0
    foreign = 0
    state = {}
    for partition, offset, fields, origin in read_log(cluster):
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
        if gen != st["gen"] or origin != st["leader"]:
            foreign += 1
            continue
        if (seq, chunk) in st["seen"]:
            duplicated += 1
            problems.append(f"partition {partition}: transaction {seq} chunk {chunk} of "
                            f"generation {gen} twice (offset {offset})")
            continue
        st["seen"].add((seq, chunk))
        if chunk == 0:
            if seq != st["last"] + 1:
                problems.append(f"partition {partition}: generation {gen} goes from "
                                f"transaction {st['last']} to {seq} at offset {offset}")
            st["last"] = seq
    return duplicated, foreign


def check(cluster, journal, say):
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
        problems.append(f"partition {p}: the nodes hold different rows")

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
                problems.append(f"{name}: key {key} holds {value}, a commit that was "
                                f"not part of the cluster's history")
            else:
                lost += 1
                problems.append(f"{name}: key {key} holds {value!r}; allowed: "
                                f"{sorted(map(str, allowed))[:5]} (last acknowledged "
                                f"write {history[last_ack][0] if last_ack is not None else None!r})")
    duplicated, foreign = check_log(cluster, problems)
    say(f"checked {len(writes)} keys on {len(cluster.names)} nodes; "
        f"{foreign} records of non-leaders in the log (skipped by the replicas)")
    return {"acknowledged": acknowledged, "lost": lost, "duplicated": duplicated,
            "divergent": len(divergent), "zombie": zombie, "problems": problems}
