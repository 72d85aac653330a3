"""The soak's faults: a seeded schedule of kills, stops, restarts and moves
of real processes.  Each fault is drawn whole from the seed before it runs
(its kind, its node, partition, durations and choices), so the same seed
gives the same draws in the same order; a draw that finds nothing to act on
(no primary known at the moment, a worker restarting) is skipped and logged,
and which are skipped follows the machine's timing, as the timing does."""

import random
import signal
import threading
import time

import psycopg2

from cluster import SoakError

# The error a stale primary's partition is in after another node's
# promotion: the soak rebuilds it as doc/operations.md says.  The errors of
# a demotion cut short are expected only on a node whose demote() of that
# partition failed or warned; any other error is a problem.
STALE_ERROR = "another node wrote to the partition"
DEMOTION_ERRORS = ("this node ended generation", "a demotion ended generation")


# The faults of the brokers' stream (--streams 2); the rest are the nodes'.
BROKER_FAULTS = ("kill broker", "kill two brokers", "kill a partition's leader broker",
                 "pause broker")


class Draw:
    """One fault of the schedule and every random choice it may make."""

    def __init__(self, rng, kinds, before):
        self.kind = rng.choices(kinds, weights=[FAULTS[k][0] for k in kinds])[0]
        self.u = [rng.random() for _ in range(6)]
        self.before = before[0] + (before[1] - before[0]) * self.u[5]

    def node(self, names):
        return names[int(self.u[0] * len(names))]

    def partition(self, count):
        return int(self.u[1] * count)

    def duration(self, low, high):
        return low + (high - low) * self.u[2]

    def pick(self, items):
        items = sorted(items)
        return items[int(self.u[3] * len(items))] if items else None

    def shuffled(self, items):
        items = list(items)
        random.Random(self.u[4]).shuffle(items)
        return items


class Tally:
    """The faults done and the draws skipped, over every stream."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.skipped = 0
        self.drawn = 0


class Schedule:
    """A stream of faults drawn from rng among kinds, one after the other;
    with --streams 2 the brokers' faults run in a stream of their own, at
    the same time as the nodes'.  Only the stream that owns the repairs
    (the nodes') rebuilds what the protocol put in error, between its
    faults and at the end."""

    def __init__(self, rng, cluster, say, tally, kinds=None, before=(0.5, 3.0),
                 repairs=True, label=""):
        self.rng = rng
        self.cluster = cluster
        self.say = say
        self.tally = tally
        self.kinds = list(kinds or FAULTS)
        self.before = before
        self.repairs = repairs
        self.label = label
        self.orphaned = 0
        self.demotions_cut = set()  # (node, partition) whose demote() failed or warned
        self.finished = threading.Event()  # set: no fault after the one under way

    def next_fault(self):
        """Let the load run a little, then inject the next fault drawn and
        recover from it; False if it found nothing to act on."""
        d = Draw(self.rng, self.kinds, self.before)
        if self.finished.wait(d.before):
            return False
        with self.tally.lock:
            self.tally.drawn += 1
            number = self.tally.drawn
        self.say(f"fault {number}{self.label}: {d.kind}")
        if FAULTS[d.kind][1](self, d) is False:
            with self.tally.lock:
                self.tally.skipped += 1
                too_many = self.tally.skipped > 20 and self.tally.skipped > self.tally.count
            self.say(f"  fault {number}: nothing to act on, skipped")
            if too_many:
                raise SoakError("most faults find nothing to act on")
            return False
        with self.tally.lock:
            self.tally.count += 1
        if self.repairs:
            self.repair()
        return True

    # -- helpers ------------------------------------------------------------

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

    def demote(self, name, p):
        """demote(); False if it failed or warned that the handover is left
        to the shipper."""
        try:
            _, warnings = self.cluster.session(
                name, [("SELECT replkafka.demote(%s, '30s')", (p,))])
        except psycopg2.Error as e:
            warnings = ["failed: " + str(e).strip().splitlines()[0]]
        if warnings:
            self.say(f"  demote on {name}: {warnings[0][:160]}")
            self.demotions_cut.add((name, p))
            return False
        return True

    def repair(self):
        """Rebuild, as doc/operations.md says, the partitions that the
        protocol put in error on a node (a stale primary, or a demotion cut
        short); note any other error as a problem."""
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
                error = error or ""
                if STALE_ERROR not in error and not (
                        (name, p) in self.demotions_cut
                        and any(e in error for e in DEMOTION_ERRORS)):
                    self.cluster.problems.append(
                        f"{name}: partition {p} in error: {error}")
                    continue
                self.orphaned += orphaned or 0
                self.say(f"  rebuilding partition {p} on {name} ({orphaned} orphaned): {error[:100]}")
                self.rebuild(name, p)

    def rebuild(self, name, p):
        """unfollow, forget the checkpoints, delete the partition's rows
        (and their audit: the partition starts again), follow from the
        log's start."""
        try:
            self.cluster.session(name, [
                ("SELECT replkafka.unfollow(%s)", (p,)),
                ("DELETE FROM replkafka.consumer_checkpoints WHERE partition = %s", (p,)),
                ("DELETE FROM replkafka.producer_checkpoints WHERE partition = %s", (p,)),
                ("SET session_replication_role = replica", None),
                ("DELETE FROM soak WHERE replkafka.partition_of('soak', id) = %s", (p,)),
                ("DELETE FROM soak_audit WHERE replkafka.partition_of('soak', id) = %s", (p,)),
                ("RESET session_replication_role", None),
                ("SELECT replkafka.follow(%s)", (p,))])
        except psycopg2.Error as e:
            self.cluster.problems.append(f"{name}: could not rebuild partition {p}: {str(e).strip()}")

    def drawn_primary(self, d):
        """The partition drawn, and its primary as the cluster knows it
        now (None if it knows none)."""
        self.cluster.refresh_primaries()
        p = d.partition(self.cluster.partitions)
        return p, self.cluster.primary_of(p)

    def stop(self, pids):
        for pid in pids:
            self.cluster.signal(pid, signal.SIGSTOP)

    def pause(self, pids, seconds):
        self.stop(pids)
        try:
            time.sleep(seconds)
        finally:
            self.cluster.thaw(pids)

    # -- the faults ------------------------------------------------------------

    def crash_worker(self, d, kind):
        """SIGKILL a shipper or an apply worker: PostgreSQL takes a process
        killed by a signal for a crash, and restarts all of the node's."""
        name = d.node(self.cluster.names)
        pid = d.pick(self.cluster.worker_pids(name, kind))
        if pid is None:
            return False
        self.cluster.signal(pid, signal.SIGKILL)
        self.say(f"  SIGKILL the {kind} worker {pid} of {name}: the node crash-restarts")

    def terminate_worker(self, d, kind):
        """pg_terminate_backend() of a shipper or an apply worker: it exits,
        and the postmaster starts it again, the rest of the node going on."""
        name = d.node(self.cluster.names)
        pid = d.pick(self.cluster.worker_pids(name, kind))
        if pid is None:
            return False
        try:
            self.cluster.query(name, "SELECT pg_terminate_backend(%s)", (pid,))
        except psycopg2.Error:
            return False
        self.say(f"  terminate the {kind} worker {pid} of {name}")

    def kill_node(self, d):
        name = d.node(self.cluster.names)
        down = d.duration(0.5, 8.0)
        self.say(f"  SIGKILL node {name}, down for {down:.1f} s")
        self.cluster.kill_node(name)
        time.sleep(down)
        self.cluster.start_node(name)

    def failover(self, d, whole_node):
        """SIGSTOP a partition's primary (the whole node, or its shipper
        only) while another node is promoted, then SIGCONT it: the stale
        primary must find out and write nothing that counts."""
        p, old = self.drawn_primary(d)
        if old is None:
            return False
        if whole_node:
            pids = self.cluster.freeze_node(old)
            what = f"node {old}"
        else:
            pids = self.cluster.worker_pids(old, "shipper")
            what = f"the shipper of {old}"
            self.stop(pids)
        if not pids:
            return False
        self.say(f"  SIGSTOP {what}, fail partition {p} over")
        try:
            for new in d.shuffled(n for n in self.cluster.names if n != old):
                if self.promote(new, p):
                    break
            time.sleep(d.duration(0.5, 3.0))
        finally:
            self.cluster.thaw(pids)
            self.say(f"  SIGCONT {what}")
        # clients with a stale view write to the old primary a little
        # longer; it finds out within seconds
        self.cluster.pin_primary(p, old, 2.0)
        time.sleep(3)
        self.cluster.refresh_primaries()

    def stop_shipper(self, d):
        """SIGSTOP a node's shipper for up to 40 s, without a failover: its
        requests to the brokers wait past their timeout, its synchronous
        commits wait, and it resumes."""
        name = d.node(self.cluster.names)
        pids = self.cluster.worker_pids(name, "shipper")
        if not pids:
            return False
        pause = d.duration(1.0, 40.0)
        self.say(f"  SIGSTOP the shipper of {name} for {pause:.1f} s, no failover")
        self.pause(pids, pause)

    def stop_apply_worker(self, d):
        """SIGSTOP an apply worker for up to 20 s: it falls behind, and
        promote() of its partitions waits for it."""
        name = d.node(self.cluster.names)
        pid = d.pick(self.cluster.worker_pids(name, "apply"))
        if pid is None:
            return False
        pause = d.duration(1.0, 20.0)
        self.say(f"  SIGSTOP the apply worker {pid} of {name} for {pause:.1f} s")
        self.pause([pid], pause)

    def restart_behind(self, d):
        """Shut a node down (fast or immediate) and keep it down while the
        others write, so that it comes back far behind on the partitions
        it replicates; those it was primary of wait for it."""
        name = d.node(self.cluster.names)
        if not self.cluster.node_up(name):
            return False
        mode = d.pick(["fast", "immediate"])
        down = d.duration(10.0, 30.0)
        self.say(f"  shut node {name} down ({mode}), down for {down:.1f} s")
        self.cluster.stop_node(name, mode)
        time.sleep(down)
        self.cluster.start_node(name)
        self.say(f"  node {name} started again")

    def move(self, d):
        """demote() then promote() of a partition under load; a demotion
        that fails makes it a failover."""
        p, old = self.drawn_primary(d)
        if old is None:
            return False
        new = d.pick([n for n in self.cluster.names if n != old])
        self.say(f"  move partition {p} from {old} to {new}")
        if not self.demote(old, p):
            self.say(f"  the demotion did not finish: {new} promotes over {old}")
        self.promote(new, p)

    def concurrent_promotes(self, d):
        p, old = self.drawn_primary(d)
        if old is None:
            return False
        pids = self.cluster.freeze_node(old)
        if not pids:
            return False
        self.say(f"  SIGSTOP node {old}; both other nodes promote partition {p} at once")
        try:
            threads = [threading.Thread(target=self.promote, args=(n, p))
                       for n in self.cluster.names if n != old]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            self.cluster.thaw(pids)
        time.sleep(3)

    def kill_brokers(self, d, count):
        """SIGKILL count brokers for up to 8 s; with two down, fewer than
        min.insync.replicas remain and no write is acknowledged meanwhile."""
        brokers = d.shuffled([1, 2, 3])[:count]
        down = d.duration(1.0, 8.0)
        self.say(f"  SIGKILL broker(s) {brokers}, down for {down:.1f} s")
        for i in brokers:
            self.cluster.kafka("stop-node", self.cluster.kafka_dir, str(i), "--kill", check=False)
        killed = time.time()
        time.sleep(down)
        if count >= 2:
            # a commit acknowledged just before may still be returning
            self.cluster.no_ack_windows.append((killed + 1.0, time.time()))
        for i in brokers:
            self.cluster.kafka("start-node", self.cluster.kafka_dir, str(i), check=False)

    def kill_leader(self, d):
        """SIGKILL the broker that leads a partition's log, as its primary
        writes."""
        p = d.partition(self.cluster.partitions)
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
        down = d.duration(1.0, 8.0)
        self.say(f"  SIGKILL broker {leader}, leader of partition {p}, down for {down:.1f} s")
        self.cluster.kafka("stop-node", self.cluster.kafka_dir, str(leader), "--kill",
                           check=False)
        time.sleep(down)
        self.cluster.kafka("start-node", self.cluster.kafka_dir, str(leader), check=False)

    def pause_broker(self, d):
        """SIGSTOP a broker for up to 30 s: past its session timeout (9 s)
        the controller fences it and its partitions' leadership moves; it
        resumes as a deposed leader."""
        i = d.pick([1, 2, 3])
        pid = self.cluster.broker_pid(i)
        if pid is None:
            return False
        pause = d.duration(2.0, 30.0)
        self.say(f"  SIGSTOP broker {i} for {pause:.1f} s")
        self.pause([pid], pause)


# name -> (weight, function)
FAULTS = {
    "kill a shipper (node crash)": (2, lambda s, d: s.crash_worker(d, "shipper")),
    "terminate a shipper": (2, lambda s, d: s.terminate_worker(d, "shipper")),
    "kill an apply worker (node crash)": (2, lambda s, d: s.crash_worker(d, "apply")),
    "terminate an apply worker": (2, lambda s, d: s.terminate_worker(d, "apply")),
    "kill node": (2, Schedule.kill_node),
    "stop primary and fail over": (2, lambda s, d: s.failover(d, whole_node=True)),
    "stop shipper and fail over": (2, lambda s, d: s.failover(d, whole_node=False)),
    "stop shipper": (2, Schedule.stop_shipper),
    "stop apply worker": (1, Schedule.stop_apply_worker),
    "restart a node behind": (1, Schedule.restart_behind),
    "move a partition": (3, Schedule.move),
    "concurrent promotes": (1, Schedule.concurrent_promotes),
    "kill broker": (1, lambda s, d: s.kill_brokers(d, 1)),
    "kill two brokers": (1, lambda s, d: s.kill_brokers(d, 2)),
    "kill a partition's leader broker": (1, Schedule.kill_leader),
    "pause broker": (2, Schedule.pause_broker),
}
