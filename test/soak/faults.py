"""The soak's faults: a seeded schedule of kills, stops, restarts and moves
of real processes.  The same seed gives the same faults in the same order
(their timing follows the machine)."""

import signal
import threading
import time

import psycopg2

# Errors a partition may be in after faults: a primary that another node's
# promotion made stale, or one whose demotion ended its generation.  Any
# other error is a finding.
EXPECTED_ERRORS = (
    "another node wrote to the partition",
    "this node ended generation",
    "a demotion ended generation",
)


class Schedule:
    def __init__(self, rng, cluster, say):
        self.rng = rng
        self.cluster = cluster
        self.say = say
        self.count = 0
        self.orphaned = 0

    def next_fault(self):
        """Let the load run a little, then inject one fault and recover
        from it."""
        time.sleep(self.rng.uniform(0.5, 3.0))
        # a fault that finds nothing to act on (no primary known at the
        # moment, a worker not running) gives way to another
        for _ in range(20):
            kind = self.rng.choices(list(FAULTS), weights=[w for w, _ in FAULTS.values()])[0]
            self.say(f"fault {self.count + 1}: {kind}")
            if FAULTS[kind][1](self) is not False:
                break
            time.sleep(0.5)
        self.count += 1
        self.repair()

    # -- helpers ------------------------------------------------------------

    def node(self):
        return self.rng.choice(self.cluster.names)

    def partition(self):
        return self.rng.randrange(self.cluster.partitions)

    def node_pids(self, name):
        pid = self.cluster.postmaster_pid(name)
        if pid is None:
            return []
        children = self.cluster.run("ps", "--ppid", str(pid), "-o", "pid=", check=False).split()
        return [pid] + [int(c) for c in children]

    def promote(self, name, p, timeout="30s"):
        try:
            self.cluster.query(name, "SELECT replkafka.promote(%s, %s)", (p, timeout))
            self.say(f"  {name} promoted for partition {p}")
            return True
        except psycopg2.Error as e:
            self.say(f"  {name} could not promote partition {p}: {str(e).strip().splitlines()[0][:160]}")
            return False
        finally:
            self.cluster.refresh_primaries()

    def repair(self):
        """Rebuild, as doc/operations.md says, the partitions that the
        protocol put in error on a node (a stale primary); note any other
        error as a problem."""
        for name in self.cluster.names:
            if not self.cluster.node_up(name):
                continue
            try:
                rows = self.cluster.query(name, """
SELECT partition, last_error, orphaned_transactions FROM replkafka.partitions
 WHERE role = 'error'""")
            except psycopg2.Error:
                continue
            for p, error, orphaned in rows:
                if not any(e in (error or "") for e in EXPECTED_ERRORS):
                    self.cluster.problems.append(
                        f"{name}: partition {p} in error: {error}")
                    continue
                self.orphaned += orphaned or 0
                self.say(f"  rebuilding partition {p} on {name} ({orphaned} orphaned): {error[:100]}")
                self.rebuild(name, p)

    def rebuild(self, name, p):
        conn = self.cluster.connect(name)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT replkafka.unfollow(%s)", (p,))
                cur.execute("DELETE FROM replkafka.consumer_checkpoints WHERE partition = %s", (p,))
                cur.execute("DELETE FROM replkafka.producer_checkpoints WHERE partition = %s", (p,))
                cur.execute("SET session_replication_role = replica")
                cur.execute("DELETE FROM soak WHERE replkafka.partition_of('soak', id) = %s", (p,))
                cur.execute("RESET session_replication_role")
                cur.execute("SELECT replkafka.follow(%s)", (p,))
        except psycopg2.Error as e:
            self.cluster.problems.append(f"{name}: could not rebuild partition {p}: {str(e).strip()}")
        finally:
            conn.close()

    # -- the faults ------------------------------------------------------------

    def kill_shipper(self):
        name = self.node()
        pids = self.cluster.worker_pids(name, "shipper")
        for pid in pids:
            self.cluster.signal(pid, signal.SIGKILL)
            self.say(f"  SIGKILL the shipper of {name} ({pid})")
        return bool(pids)

    def kill_apply_worker(self):
        name = self.node()
        pids = self.cluster.worker_pids(name, "apply")
        if not pids:
            return False
        pid = self.rng.choice(pids)
        self.cluster.signal(pid, signal.SIGKILL)
        self.say(f"  SIGKILL an apply worker of {name} ({pid}): the node restarts")

    def kill_node(self):
        name = self.node()
        down = self.rng.uniform(0.5, 8.0)
        self.say(f"  SIGKILL node {name}, down for {down:.1f} s")
        self.cluster.kill_node(name)
        time.sleep(down)
        self.cluster.start_node(name)

    def _failover(self, stop_whole_node):
        p = self.partition()
        old = self.cluster.primary_of(p)
        if old is None:
            return False
        if stop_whole_node:
            pids = self.node_pids(old)
            what = f"node {old}"
        else:
            pids = self.cluster.worker_pids(old, "shipper")
            what = f"the shipper of {old}"
        self.say(f"  SIGSTOP {what}, fail partition {p} over")
        for pid in pids:
            self.cluster.signal(pid, signal.SIGSTOP)
        try:
            others = [n for n in self.cluster.names if n != old]
            self.rng.shuffle(others)
            for new in others:
                if self.promote(new, p):
                    break
            time.sleep(self.rng.uniform(0.5, 3.0))
        finally:
            for pid in pids:
                self.cluster.signal(pid, signal.SIGCONT)
            self.say(f"  SIGCONT {what}")
        # the stale primary finds out within seconds
        time.sleep(3)

    def stop_primary_failover(self):
        self._failover(stop_whole_node=True)

    def stop_shipper_failover(self):
        self._failover(stop_whole_node=False)

    def move(self):
        p = self.partition()
        old = self.cluster.primary_of(p)
        if old is None:
            return False
        new = self.rng.choice([n for n in self.cluster.names if n != old])
        self.say(f"  move partition {p} from {old} to {new}")
        try:
            self.cluster.query(old, "SELECT replkafka.demote(%s, '30s')", (p,))
        except psycopg2.Error as e:
            self.say(f"  demote on {old} failed: {str(e).strip().splitlines()[0][:160]}")
        self.promote(new, p)

    def concurrent_promotes(self):
        p = self.partition()
        old = self.cluster.primary_of(p)
        if old is None:
            return False
        pids = self.node_pids(old)
        self.say(f"  SIGSTOP node {old}; both other nodes promote partition {p} at once")
        for pid in pids:
            self.cluster.signal(pid, signal.SIGSTOP)
        try:
            threads = [threading.Thread(target=self.promote, args=(n, p))
                       for n in self.cluster.names if n != old]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for pid in pids:
                self.cluster.signal(pid, signal.SIGCONT)
        time.sleep(3)

    def stop_shipper(self):
        """SIGSTOP a node's shipper for a while, without a failover: its
        producer's transactions and requests time out, and it resumes."""
        name = self.node()
        pids = self.cluster.worker_pids(name, "shipper")
        if not pids:
            return False
        pause = self.rng.uniform(1.0, 15.0)
        self.say(f"  SIGSTOP the shipper of {name} for {pause:.1f} s, no failover")
        self._pause(pids, pause)

    def stop_apply_worker(self):
        """SIGSTOP an apply worker for a while: its consumer leaves the
        group's session, and it resumes."""
        name = self.node()
        pids = self.cluster.worker_pids(name, "apply")
        if not pids:
            return False
        pid = self.rng.choice(pids)
        pause = self.rng.uniform(1.0, 15.0)
        self.say(f"  SIGSTOP an apply worker of {name} ({pid}) for {pause:.1f} s")
        self._pause([pid], pause)

    def _pause(self, pids, seconds):
        for pid in pids:
            self.cluster.signal(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            for pid in pids:
                self.cluster.signal(pid, signal.SIGCONT)

    def restart_behind(self):
        """Shut a node down (fast or immediate) and keep it down while the
        others write, so that it comes back far behind on the partitions
        it replicates; those it was primary of wait for it."""
        name = self.node()
        if not self.cluster.node_up(name):
            return False
        mode = self.rng.choice(["fast", "immediate"])
        down = self.rng.uniform(10.0, 30.0)
        self.say(f"  shut node {name} down ({mode}), down for {down:.1f} s")
        self.cluster.stop_node(name, mode)
        time.sleep(down)
        self.cluster.start_node(name)
        self.say(f"  node {name} started again")

    def kill_broker(self):
        i = self.rng.randint(1, 3)
        down = self.rng.uniform(1.0, 8.0)
        self.say(f"  SIGKILL broker {i}, down for {down:.1f} s")
        self.cluster.kafka("stop-node", self.cluster.kafka_dir, str(i), "--kill", check=False)
        time.sleep(down)
        self.cluster.kafka("start-node", self.cluster.kafka_dir, str(i), check=False)

    def kill_leader(self):
        """SIGKILL the broker that leads a partition's log, as its primary
        writes."""
        p = self.partition()
        out = self.cluster.run("kcat", "-b", self.cluster.bootstrap, "-L", "-t", "replkafka",
                               check=False)
        leader = None
        for line in out.splitlines():
            words = line.replace(",", " ").split()
            if len(words) >= 4 and words[0] == "partition" and words[1] == str(p) \
                    and words[2] == "leader":
                leader = int(words[3])
        if leader is None or leader < 1:
            return False
        down = self.rng.uniform(1.0, 8.0)
        self.say(f"  SIGKILL broker {leader}, leader of partition {p}, down for {down:.1f} s")
        self.cluster.kafka("stop-node", self.cluster.kafka_dir, str(leader), "--kill",
                           check=False)
        time.sleep(down)
        self.cluster.kafka("start-node", self.cluster.kafka_dir, str(leader), check=False)

    def pause_broker(self):
        i = self.rng.randint(1, 3)
        pid = self.cluster.broker_pid(i)
        if pid is None:
            return False
        pause = self.rng.uniform(1.0, 8.0)
        self.say(f"  SIGSTOP broker {i} for {pause:.1f} s")
        self._pause([pid], pause)


# name -> (weight, function)
FAULTS = {
    "kill shipper": (3, Schedule.kill_shipper),
    "kill apply worker": (3, Schedule.kill_apply_worker),
    "kill node": (2, Schedule.kill_node),
    "stop primary and fail over": (2, Schedule.stop_primary_failover),
    "stop shipper and fail over": (2, Schedule.stop_shipper_failover),
    "stop shipper": (2, Schedule.stop_shipper),
    "stop apply worker": (1, Schedule.stop_apply_worker),
    "restart a node behind": (1, Schedule.restart_behind),
    "move a partition": (3, Schedule.move),
    "concurrent promotes": (1, Schedule.concurrent_promotes),
    "kill broker": (1, Schedule.kill_broker),
    "kill a partition's leader broker": (1, Schedule.kill_leader),
    "pause broker": (2, Schedule.pause_broker),
}
