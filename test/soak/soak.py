"""replkafka soak: random faults on real processes, and an independent check.

Three PostgreSQL nodes and a three-broker KRaft cluster (replication factor
3, min.insync.replicas 2) replicate 8 partitions.  Clients write every
partition through its current primary while a seeded schedule of faults
kills, stops and restarts workers, nodes and brokers and moves partitions.
Then everything is healed and checked against a journal of what the clients
were told: see test/soak/run and doc/testing.md, "The soak".

Run through test/soak/run, as a user that may run PostgreSQL.
"""

import argparse
import json
import os
import random
import sys
import threading
import time

import psycopg2

from checker import check
from cluster import Cluster, SoakError
from faults import BROKER_FAULTS, FAULTS, Schedule, Tally

PARTITIONS = 8
NODES = ["node_a", "node_b", "node_c"]
KEYS_PER_CLIENT = 1001  # per partition: a marker and 1,000 others


class Journal:
    """What the clients were told, one JSON line per transaction, in a file
    outside the databases: the node that took it, the time, the outcome
    (acknowledged, committed locally only, failed, unknown) and its
    writes as [key, value] (value None: a delete)."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.file = open(path, "a", buffering=1)

    def record(self, entry):
        with self.lock:
            self.file.write(json.dumps(entry) + "\n")

    def close(self):
        self.file.close()

    def read(self):
        """The last line of each transaction: a transaction whose client
        never learnt its outcome (it was still waiting at the end) is
        unknown."""
        entries = {}
        with open(self.path) as f:
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    entries[entry["id"]] = entry
        for entry in entries.values():
            if entry["outcome"] == "invoked":
                entry["outcome"] = "unknown"
        return list(entries.values())


class Client(threading.Thread):
    """One client: owns a set of keys, writes transactions of 1 to 1,000
    rows to one partition at a time through its current primary, and
    journals each transaction before it starts and its outcome.  Values
    are unique ("client:sequence"), so the checker can tell which write a
    row holds; every transaction first writes the client's marker key of
    the partition, so that each one, deletes only or not, can be found in
    the log."""

    def __init__(self, index, cluster, journal, keys, synchronous, rng, stop):
        super().__init__(name=f"client-{index}", daemon=True)
        self.index = index
        self.cluster = cluster
        self.journal = journal
        self.keys = keys  # partition -> [keys of this client]
        self.synchronous = synchronous
        self.rng = rng
        self.stop = stop
        self.sequence = 0
        self.present = set()  # keys this client believes exist
        self.conn = {}
        self.transactions = 0

    def connection(self, node):
        conn = self.conn.get(node)
        if conn is None or conn.closed:
            conn = self.cluster.connect(node)
            with conn.cursor() as cur:
                cur.execute("SET replkafka.synchronous_commit = %s",
                            ("on" if self.synchronous else "off",))
            conn.commit()
            self.conn[node] = conn
        return conn

    def drop(self, node):
        conn = self.conn.pop(node, None)
        if conn is not None:
            try:
                conn.close()
            except psycopg2.Error:
                pass

    def abandon(self, conn, node):
        """Roll back, or drop a connection that cannot."""
        if conn is None:
            return
        try:
            conn.rollback()
        except psycopg2.Error:
            self.drop(node)

    def run(self):
        while not self.stop.is_set():
            partition = self.rng.randrange(PARTITIONS)
            node = self.cluster.primary_of(partition)
            if node is None:
                # look again (at most every second, for all clients)
                self.cluster.refresh_primaries(at_most_every=1.0)
                time.sleep(0.05)
                continue
            self.transaction(node, partition)

    def transaction(self, node, partition):
        marker, keys = self.keys[partition][0], self.keys[partition][1:]
        # mostly small, now and then large enough to be cut into chunks
        size = self.rng.choice([1, 1, 1, 2, 3, 5, 10, 20, 50]) \
            if self.rng.random() < 0.97 else self.rng.randint(200, 1000)
        chosen = [marker] + self.rng.sample(keys, min(size, len(keys)))
        writes = []
        statements = []
        for key in chosen:
            self.sequence += 1
            value = f"{self.index}:{self.sequence}"
            if key != marker and key in self.present and self.rng.random() < 0.15:
                statements.append(("DELETE FROM soak WHERE id = %s", (key,)))
                writes.append([key, None])
            else:
                statements.append((
                    "INSERT INTO soak (id, v) VALUES (%s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET v = excluded.v",
                    (key, value)))
                writes.append([key, value])
        entry = {"id": f"{self.index}:{writes[0][1]}", "client": self.index,
                 "node": node, "partition": partition, "sync": self.synchronous,
                 "start": time.time(), "writes": writes, "outcome": "invoked"}
        self.journal.record(entry)
        conn = None
        try:
            conn = self.connection(node)
            with conn.cursor() as cur:
                for sql, args in statements:
                    cur.execute(sql, args)
        except psycopg2.Error as e:
            # refused, or the connection went before COMMIT was sent: rolled
            # back
            self.abandon(conn, node)
            self.cluster.forget_primary(partition, node)
            entry.update(outcome="failed", error=str(e).strip()[:200])
            self.journal.record(entry)
            return
        try:
            conn.notices.clear()
            conn.commit()
        except psycopg2.OperationalError as e:
            # the connection went during the commit: the outcome is unknown
            self.drop(node)
            self.cluster.forget_primary(partition, node)
            entry.update(outcome="unknown", error=str(e).strip()[:200])
            self.journal.record(entry)
            return
        except psycopg2.Error as e:
            # COMMIT raised an error: rolled back
            self.abandon(conn, node)
            self.cluster.forget_primary(partition, node)
            entry.update(outcome="failed", error=str(e).strip()[:200])
            self.journal.record(entry)
            return
        warnings = [n.strip() for n in conn.notices if "WARNING" in n]
        if any(" is no longer primary of partition " in w for w in warnings):
            # committed here, but not part of the cluster's history
            entry.update(outcome="local", error=warnings[0][:200])
        elif warnings:
            # committed here, perhaps not in Kafka (a cancelled wait...)
            entry.update(outcome="unknown", error=warnings[0][:200])
        else:
            entry.update(outcome="acknowledged" if self.synchronous else "committed")
        entry["end"] = time.time()
        self.journal.record(entry)
        for key, value in writes:
            if value is None:
                self.present.discard(key)
            else:
                self.present.add(key)
        self.transactions += 1


# What a sabotage does on one replica, behind replkafka's back, and what
# the checker must then report (and nothing else).
SABOTAGE = {
    # a write lost there: the row deleted, unseen by the audit trigger
    "lost": ("SET soak.sabotage = on; SET session_replication_role = replica; "
             "DELETE FROM soak WHERE id = %s",
             {"lost": 1, "divergent": 1, "duplicated": 0, "zombie": 0}),
    # a change applied twice there: the row written again with its value
    "duplicate": ("SET session_replication_role = replica; "
                  "UPDATE soak SET v = v WHERE id = %s",
                  {"lost": 0, "divergent": 0, "duplicated": 1, "zombie": 0}),
}


def sabotage(cluster, journal, kind, say):
    """Sabotage, on a replica, the row of a key whose last write was
    acknowledged."""
    last_writer = {}
    for i, entry in enumerate(journal):
        for key, _ in entry["writes"]:
            last_writer[key] = i
    for i in range(len(journal) - 1, -1, -1):
        entry = journal[i]
        if entry["outcome"] != "acknowledged":
            continue
        for key, value in entry["writes"]:
            if value is not None and last_writer[key] == i:
                name = [n for n in cluster.names
                        if n != cluster.primary_of(entry["partition"])][0]
                cluster.sql(name, SABOTAGE[kind][0], (key,))
                say(f"sabotage ({kind}): key {key} ({value}) on {name}")
                return
    raise SoakError("nothing acknowledged to sabotage")


class BrokerStream(threading.Thread):
    """The brokers' faults, one after the other, while the nodes' run."""

    def __init__(self, schedule):
        super().__init__(name="broker faults", daemon=True)
        self.schedule = schedule
        self.error = None

    def run(self):
        try:
            while not self.schedule.finished.is_set():
                self.schedule.next_fault()
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def finish(self, timeout=None):
        """Let the fault under way end, then stop."""
        self.schedule.finished.set()
        self.join(timeout)
        if self.error:
            raise self.error


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--faults", type=int)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--streams", type=int, choices=(1, 2), default=1,
                        help="2: the brokers' faults in a stream of their own, "
                        "overlapping the nodes' faults")
    parser.add_argument("--sabotage", choices=sorted(SABOTAGE),
                        help="before checking, delete (lost) or write again (duplicate) "
                        "the row of an acknowledged write on one node, behind "
                        "replkafka's back: the run passes only if the checker finds "
                        "exactly that")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--top", required=True)
    args = parser.parse_args()
    if args.minutes is None and args.faults is None:
        args.faults = 20

    rng = random.Random(args.seed)
    os.makedirs(args.dir, exist_ok=True)
    log = open(os.path.join(args.dir, "soak.log"), "a", buffering=1)

    def say(msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        log.write(line + "\n")

    cluster = Cluster(args.dir, args.top, NODES, PARTITIONS, say)
    journal = Journal(os.path.join(args.dir, "journal.jsonl"))
    stop = threading.Event()
    clients = []
    ok = False
    done = 0
    brokers = None
    try:
        cluster.start()
        keys = cluster.keys_by_partition(args.clients * KEYS_PER_CLIENT)
        for i in range(args.clients):
            mine = {p: ks[i::args.clients] for p, ks in keys.items()}
            clients.append(Client(i, cluster, journal, mine,
                                  synchronous=(i % 2 == 0),
                                  rng=random.Random(rng.random()), stop=stop))
        for c in clients:
            c.start()

        tally = Tally()
        if args.streams == 1:
            schedule = Schedule(random.Random(rng.random()), cluster, say, tally)
        else:
            schedule = Schedule(random.Random(rng.random()), cluster, say, tally,
                                kinds=[k for k in FAULTS if k not in BROKER_FAULTS])
            brokers = BrokerStream(Schedule(random.Random(rng.random()), cluster, say,
                                            tally, kinds=BROKER_FAULTS, before=(3.0, 12.0),
                                            repairs=False, label=" (brokers)"))
            brokers.start()
        deadline = time.time() + args.minutes * 60 if args.minutes else None
        while True:
            if args.faults is not None and tally.count >= args.faults:
                break
            if deadline is not None and time.time() >= deadline:
                break
            if args.streams == 2 and brokers.error:
                raise brokers.error
            schedule.next_fault()
        if args.streams == 2:
            brokers.finish()
        done = tally.count
        say(f"{done} faults done ({tally.skipped} draws found nothing to act on); "
            f"stopping the clients")
        stop.set()
        for c in clients:
            c.join(timeout=120)
            if c.is_alive():
                cluster.problems.append(f"{c.name} still waits for its transaction "
                                        f"2 minutes after the faults")
        cluster.heal(repair=schedule.repair)
        if args.sabotage:
            sabotage(cluster, journal.read(), args.sabotage, say)
        result = check(cluster, journal.read(), say)
        say(f"{schedule.orphaned} orphaned transactions of stale primaries, "
            f"as the protocol counts them")
        line = (f"faults {done}, acknowledged {result['acknowledged']}, "
                f"lost {result['lost']}, duplicated {result['duplicated']}, "
                f"divergent {result['divergent']}, zombie {result['zombie']}")
        print(line, flush=True)
        log.write(line + "\n")
        for f in result["findings"]:
            say("finding: " + f)
        for p in result["problems"]:
            say("problem: " + p)
        clean = all(result[k] == 0 for k in ("lost", "duplicated", "divergent", "zombie")) \
            and not result["problems"]
        if args.sabotage:
            # the checker must find the sabotage, and nothing else
            expect = SABOTAGE[args.sabotage][1]
            ok = all(result[k] == n for k, n in expect.items()) and not result["problems"]
            verdict = ("ok, the checker found the sabotage" if ok
                       else "FAILED, the checker did not find the sabotage alone")
        else:
            ok = clean
            verdict = "ok" if ok else "FAILED"
        print(f"soak: {verdict}, seed {args.seed}", flush=True)
    except Exception as e:  # noqa: BLE001 - any error fails the run, replayably
        say(f"soak error: {type(e).__name__}: {e}")
        print(f"soak: FAILED, seed {args.seed}", flush=True)
    finally:
        stop.set()
        if brokers is not None and brokers.is_alive():
            brokers.schedule.finished.set()
            brokers.join(120)
        journal.close()
        cluster.stop()
    if not ok:
        print(f"soak FAILED with seed {args.seed}; logs kept in {args.dir}; replay: "
              f"test/soak/run --seed {args.seed} --faults {done} "
              f"--clients {args.clients} --streams {args.streams}"
              f"{' --sabotage ' + args.sabotage if args.sabotage else ''}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
