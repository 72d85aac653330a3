"""The soak's processes: a three-broker Kafka cluster and three PostgreSQL
nodes, started, faulted, healed and stopped by their pids only."""

import os
import signal
import subprocess
import threading
import time

import psycopg2


class SoakError(Exception):
    """The soak itself cannot go on (a process that does not start...)."""


def _free_ports(count):
    import socket
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# Every change a node makes to table soak, in order, in a table of its own
# (not replicated): the apply workers fire ENABLE ALWAYS triggers, so the
# checker sees each change applied, not only the rows left at the end.  A
# sabotage in the soak's own test of its checker sets soak.sabotage.
# (Qualified names: the apply workers run with an empty search_path.)
AUDIT = """
CREATE TABLE soak_audit (n bigserial PRIMARY KEY, id bigint NOT NULL, v text);
CREATE FUNCTION soak_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('soak.sabotage', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO public.soak_audit (id, v) VALUES (OLD.id, NULL);
    ELSE
        INSERT INTO public.soak_audit (id, v) VALUES (NEW.id, NEW.v);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER soak_audit AFTER INSERT OR UPDATE OR DELETE ON soak
    FOR EACH ROW EXECUTE FUNCTION soak_audit();
ALTER TABLE soak ENABLE ALWAYS TRIGGER soak_audit;
"""


class Node:
    def __init__(self, name, port, datadir, logfile):
        self.name = name
        self.port = port
        self.datadir = datadir
        self.logfile = logfile


class Cluster:
    """Kafka and the nodes.  primary_of() answers from a cache that clients
    refresh when a write is refused."""

    def __init__(self, directory, top, names, partitions, say):
        self.dir = directory
        self.top = top
        self.names = names
        self.partitions = partitions
        self.say = say
        self.kafka_dir = os.path.join(directory, "kafka")
        self.kafka_cmd = os.path.join(top, "test", "kafka", "kafka-cluster")
        self.pgbin = os.environ["PGBIN"]
        self.nodes = {}
        self.bootstrap = None
        self.primaries = {}
        self.lock = threading.Lock()
        self.stopped = set()  # pids under SIGSTOP, continued at heal
        self.refreshed = 0.0  # when refresh_primaries last looked
        self.no_ack_windows = []  # (from, to): too few brokers to acknowledge
        self.pinned = {}  # partition -> (node, until): a stale view kept
        self.problems = []  # what looked wrong on the way

    # -- processes ------------------------------------------------------

    def run(self, *cmd, check=True, capture=True):
        res = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None,
                             stderr=subprocess.STDOUT if capture else None,
                             text=True)
        if check and res.returncode != 0:
            raise SoakError(f"{' '.join(cmd)} failed: {res.stdout}")
        return res.stdout if capture else ""

    def kafka(self, *args, check=True):
        return self.run(self.kafka_cmd, *args, check=check)

    def start(self):
        self.say("starting three Kafka brokers")
        self.bootstrap = self.kafka("start", self.kafka_dir, "--brokers", "3",
                                    "--owner", str(os.getpid())).strip().splitlines()[-1]
        ports = _free_ports(len(self.names))
        for name, port in zip(self.names, ports):
            datadir = os.path.join(self.dir, name)
            node = Node(name, port, datadir, os.path.join(self.dir, name + ".log"))
            self.nodes[name] = node
            self.run(os.path.join(self.pgbin, "initdb"), "-D", datadir, "-A", "trust",
                     "--no-sync")
            with open(os.path.join(datadir, "postgresql.conf"), "a") as conf:
                conf.write(f"""
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{self.dir}'
wal_level = logical
max_worker_processes = 32
shared_preload_libraries = 'replkafka'
replkafka.node_name = '{name}'
replkafka.brokers = '{self.bootstrap}'
replkafka.apply_workers = 2
replkafka.chunk_size = '2kB'
replkafka.request_timeout = '30s'
max_prepared_transactions = 10
log_line_prefix = '%m [%p] %b '
""")
                conf.write(os.environ.get("PLUGIN_LIBRARIES_CONF", ""))
            self.start_node(name)
            self.sql(name, "CREATE EXTENSION replkafka")
        self.say(f"nodes {', '.join(self.names)} up; creating the cluster")
        for name in self.names:
            self.sql(name, f"SELECT replkafka.create_cluster({self.partitions}, 3)")
            self.sql(name, "CREATE TABLE soak (id bigint PRIMARY KEY, v text)")
            self.sql(name, "SELECT replkafka.add_table('soak', 'id')")
            self.sql(name, AUDIT)
        for p in range(self.partitions):
            owner = self.names[p % len(self.names)]
            self.sql(owner, f"SELECT replkafka.promote({p})")
            self.primaries[p] = owner
        for name in self.names:
            self.sql(name, "SELECT replkafka.follow(partition) FROM replkafka.partitions "
                     "WHERE role = 'offline'")
        self.say("every node is primary of some partitions and replica of the others")

    def start_node(self, name):
        node = self.nodes[name]
        self.run(os.path.join(self.pgbin, "pg_ctl"), "-D", node.datadir, "-l",
                 node.logfile, "-w", "-t", "120", "start")

    def stop_node(self, name, mode):
        node = self.nodes[name]
        self.run(os.path.join(self.pgbin, "pg_ctl"), "-D", node.datadir, "-m", mode,
                 "-w", "-t", "120", "stop", check=False)

    def postmaster_pid(self, name):
        try:
            with open(os.path.join(self.nodes[name].datadir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def node_up(self, name):
        pid = self.postmaster_pid(name)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True

    def kill_node(self, name):
        """SIGKILL the postmaster and its children at once, as if the
        machine died; remove the lock files a reboot would."""
        pids = self.freeze_node(name)
        if not pids:
            return
        for p in pids:
            self.signal(p, signal.SIGKILL)
        for p in pids:
            for _ in range(600):
                st = self.run("ps", "-o", "stat=", "-p", str(p), check=False).strip()
                if not st or st.startswith("Z"):
                    break
                time.sleep(0.05)
        node = self.nodes[name]
        for f in (os.path.join(node.datadir, "postmaster.pid"),
                  os.path.join(self.dir, f".s.PGSQL.{node.port}.lock")):
            try:
                os.unlink(f)
            except OSError:
                pass

    def freeze_node(self, name):
        """SIGSTOP the postmaster, so that it starts no new process, then
        every child it has; returns their pids (the postmaster's first)."""
        pid = self.postmaster_pid(name)
        if pid is None or not _alive(pid):
            return []
        self.signal(pid, signal.SIGSTOP)
        pids = [pid]
        while True:
            children = [int(c) for c in self.run("ps", "--ppid", str(pid), "-o", "pid=",
                                                 check=False).split()]
            new = [c for c in children if c not in pids]
            if not new:
                return pids
            for c in new:
                self.signal(c, signal.SIGSTOP)
            pids += new

    def thaw(self, pids):
        """SIGCONT pids, the postmaster (first) last."""
        for pid in reversed(pids):
            self.signal(pid, signal.SIGCONT)

    def worker_pids(self, name, kind):
        """The pids of node's background workers of kind ('shipper' or
        'apply'), from replkafka.workers."""
        try:
            rows = self.query(name, "SELECT pid FROM replkafka.workers "
                              "WHERE kind = %s AND pid IS NOT NULL", (kind,))
        except psycopg2.Error:
            return []
        return [r[0] for r in rows]

    def signal(self, pid, sig):
        try:
            os.kill(pid, sig)
        except OSError:
            return False
        if sig == signal.SIGSTOP:
            self.stopped.add(pid)
        elif sig == signal.SIGCONT:
            self.stopped.discard(pid)
        return True

    def broker_pid(self, i):
        try:
            with open(os.path.join(self.kafka_dir, f"node{i}", "pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        for pid in list(self.stopped):
            self.signal(pid, signal.SIGCONT)
        for name in self.nodes:
            if self.node_up(name):
                self.stop_node(name, "immediate")
        if self.bootstrap:
            self.kafka("stop", self.kafka_dir, check=False)

    # -- SQL ------------------------------------------------------------

    def connect(self, name, timeout=5):
        node = self.nodes[name]
        conn = psycopg2.connect(host="127.0.0.1", port=node.port, dbname="postgres",
                                connect_timeout=timeout,
                                application_name="soak")
        return conn

    def session(self, name, statements):
        """Run statements, [(sql, args)], in one session, each its own
        transaction; returns the last one's rows and the WARNINGs."""
        conn = self.connect(name)
        try:
            conn.autocommit = True
            rows = []
            with conn.cursor() as cur:
                for sql, args in statements:
                    cur.execute(sql, args)
                    rows = cur.fetchall() if cur.description else []
            return rows, [n.strip() for n in conn.notices if "WARNING" in n]
        finally:
            conn.close()

    def query(self, name, sql, args=None):
        return self.session(name, [(sql, args)])[0]

    def sql(self, name, sql, args=None):
        try:
            return self.query(name, sql, args)
        except psycopg2.Error as e:
            raise SoakError(f"{name}: {sql}: {str(e).strip()}")

    def roles(self, name):
        """partition -> (role, generation) on node name, or {} if it does
        not answer."""
        try:
            return {p: (r, g) for p, r, g in self.query(
                name, "SELECT partition, role, generation FROM replkafka.partitions")}
        except psycopg2.Error:
            return {}

    def keys_by_partition(self, count):
        """count keys of each partition."""
        name = self.names[0]
        rows = self.sql(name, """
SELECT p, array_agg(id ORDER BY id) FROM (
  SELECT id, replkafka.partition_of('soak', id) AS p,
         row_number() OVER (PARTITION BY replkafka.partition_of('soak', id) ORDER BY id) AS n
    FROM generate_series(1, %s) id) k
 WHERE n <= %s GROUP BY p""", (count * self.partitions * 2, count))
        return {p: list(ids) for p, ids in rows}

    # -- who is primary ---------------------------------------------------

    def primary_of(self, partition):
        with self.lock:
            return self.primaries.get(partition)

    def pin_primary(self, partition, node, seconds):
        """Send the partition's writes to node for a while, whatever the
        nodes say: clients with a stale view of who is primary."""
        with self.lock:
            self.pinned[partition] = (node, time.time() + seconds)
            self.primaries[partition] = node

    def _pinned(self, partition):
        node, until = self.pinned.get(partition, (None, 0))
        return node if time.time() < until else None

    def forget_primary(self, partition, node):
        """A write to node was refused or failed: look again, at most
        every so often."""
        with self.lock:
            if self.primaries.get(partition) != node or self._pinned(partition):
                return
            self.primaries[partition] = None
        self.refresh_primaries()

    def refresh_primaries(self, at_most_every=None):
        """The primary of each partition: the node that says it is primary
        in the highest generation.  A node that does not answer keeps the
        partitions it was known primary of (a failed write forgets it);
        with at_most_every, does nothing if it looked that recently."""
        with self.lock:
            now = time.time()
            if at_most_every is not None and now - self.refreshed < at_most_every:
                return
            self.refreshed = now
        best = {}
        silent = set()
        for name in self.names:
            roles = self.roles(name)
            if not roles:
                silent.add(name)
            for p, (role, gen) in roles.items():
                if role == "primary" and (p not in best or gen > best[p][1]):
                    best[p] = (name, gen)
        with self.lock:
            for p in range(self.partitions):
                if self._pinned(p):
                    continue
                if p in best:
                    self.primaries[p] = best[p][0]
                elif self.primaries.get(p) not in silent:
                    self.primaries[p] = None

    # -- healing ------------------------------------------------------------

    def heal(self, repair=None):
        """Continue what is stopped, start what is down, give every
        partition a primary, rebuild what the faults left stale (repair),
        and wait until every node caught up."""
        self.say("healing: continuing stopped processes, starting what is down")
        for pid in list(self.stopped):
            self.signal(pid, signal.SIGCONT)
        for i in (1, 2, 3):
            pid = self.broker_pid(i)
            if pid is None or not _alive(pid):
                self.kafka("start-node", self.kafka_dir, str(i), check=False)
        for name in self.names:
            if not self.node_up(name):
                self.kill_node(name)
                self.start_node(name)
        deadline = time.time() + 300
        # a node in crash recovery does not answer yet: its roles count
        while not all(self.roles(name) for name in self.names):
            if time.time() > deadline:
                raise SoakError("a node does not answer after healing")
            time.sleep(1)
        while True:
            self.refresh_primaries()
            missing = [p for p in range(self.partitions) if self.primary_of(p) is None]
            if not missing:
                break
            if time.time() > deadline:
                raise SoakError(f"partitions {missing} have no primary after healing")
            for p in missing:
                for name in self.names:
                    roles = self.roles(name)
                    if roles.get(p, ("", 0))[0] in ("replica", "offline"):
                        try:
                            self.query(name, "SELECT replkafka.promote(%s, '60s')", (p,))
                            self.say(f"heal: {name} promoted for partition {p}")
                            break
                        except psycopg2.Error as e:
                            self.say(f"heal: {name} could not promote {p}: {str(e).strip()[:200]}")
            time.sleep(1)
        # a stale primary finds out by itself, within seconds
        while True:
            stale = self.stale_primaries()
            if not stale:
                break
            if time.time() > deadline:
                raise SoakError(f"stale primaries do not find out: {stale}")
            time.sleep(1)
        if repair is not None:
            repair()
        self.wait_caught_up()

    def stale_primaries(self):
        """Nodes that say they are primary of a partition in a generation
        older than the newest any node knows of it."""
        roles = {name: self.roles(name) for name in self.names}
        stale = []
        for p in range(self.partitions):
            known = [r[p] for r in roles.values() if p in r]
            if not known:
                continue
            top = max(g for _, g in known)
            stale += [f"{n}:{p}" for n, r in roles.items()
                      if r.get(p, ("", 0))[0] == "primary" and r[p][1] < top]
        return stale

    def wait_caught_up(self, timeout=300):
        """Wait until every replica applied its partitions' whole log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            behind = []
            for name in self.names:
                try:
                    rows = self.query(name, """
SELECT partition FROM replkafka.partitions
 WHERE role = 'replica' AND (lag_messages IS NULL OR lag_messages > 0)""")
                except psycopg2.Error:
                    rows = [("?",)]
                behind += [f"{name}:{r[0]}" for r in rows]
            if not behind:
                return
            time.sleep(1)
        raise SoakError(f"replicas still behind after healing: {behind}")


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
