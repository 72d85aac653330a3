# bench/lib.sh: functions shared by the benchmarks.  Source it after
# scripts/lib.sh and after setting "state" (a scratch directory).
# shellcheck disable=SC2154  # state, and pgbin set by postgres_install

postgres_install
kafka_harness="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/test/kafka/kafka-cluster"

say() { printf '==> %s\n' "$*" >&2; }

# bench_psql NODE SQL...: run SQL on a benchmark node, unaligned output.
bench_psql() {
	local node="$1"
	shift
	"$pgbin/psql" -X -q -A -t -h "$state" -p "$(cat "$state/$node.port")" \
		-d postgres -v ON_ERROR_STOP=1 "$@"
}

# The settings of every benchmark node, besides its address and names.
bench_conf=("wal_level = logical" "max_wal_size = 8GB" "shared_buffers = 512MB")

# start_node NODE BOOTSTRAP [CONF...]: initdb and start a node with
# replkafka preloaded; extra lines of postgresql.conf follow, then the line
# in REPLKAFKA_BENCH_CONF if set (to try a setting on every benchmark node).
start_node() {
	local node="$1" bootstrap="$2" port
	shift 2
	port=$(free_ports 1)
	"$pgbin/initdb" -D "$state/$node" -A trust --no-sync >"$state/$node.initdb.log"
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "unix_socket_directories = '$state'"
		printf '%s\n' "${bench_conf[@]}"
		echo "shared_preload_libraries = 'replkafka'"
		echo "replkafka.node_name = '$node'"
		echo "replkafka.brokers = '$bootstrap'"
		plugin_libraries_conf "$pgbin"
		for line in "$@"; do echo "$line"; done
		echo "${REPLKAFKA_BENCH_CONF:-}"
	} >>"$state/$node/postgresql.conf"
	echo "$port" >"$state/$node.port"
	"$pgbin/pg_ctl" -D "$state/$node" -l "$state/$node.log" -w start >/dev/null
}

# stop_all NODE...: stop the nodes and the broker.
stop_all() {
	local node
	for node in "$@"; do
		[ -f "$state/$node/postmaster.pid" ] &&
			"$pgbin/pg_ctl" -D "$state/$node" -m immediate -w stop >/dev/null
	done
	"$kafka_harness" stop "$state/kafka"
}

# now: seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# elapsed START END: seconds between two now() values.
elapsed() { echo "$2 - $1" | bc -l; }

# bench_schema NODE: on NODE, the extension, a cluster of 8 partitions of
# one copy, table t (rows keyed by tenant, its partition key) registered,
# and procedure fill(tbl, txns, per_txn, first): txns transactions of
# per_txn rows each into tbl, transaction i writing tenant first + i.
bench_schema() {
	bench_psql "$1" <<'SQL' >/dev/null
CREATE EXTENSION replkafka;
SELECT replkafka.create_cluster(8, 1);
CREATE TABLE t (tenant int, id int, payload text NOT NULL, PRIMARY KEY (tenant, id));
SELECT replkafka.add_table('t', 'tenant');
CREATE PROCEDURE fill(tbl regclass, txns int, per_txn int, first int DEFAULT 0)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN first + 1 .. first + txns LOOP
		EXECUTE format('INSERT INTO %s SELECT $1, g, md5(($1::bigint * $2 + g)::text)
		                  FROM generate_series(1, $2) g', tbl) USING i, per_txn;
		COMMIT;
	END LOOP;
END $$;
SQL
}

# wait_until NODE SQL VALUE [INTERVAL]: wait until SQL (one value) gives
# VALUE on NODE, asking every INTERVAL seconds (default 0.05).  One session
# asks, in a loop on the server: a client connecting at each question would
# take the CPU the measured processes need.
wait_until() {
	bench_psql "$1" -c "DO \$\$
BEGIN
	WHILE coalesce(($2)::text, '') <> '$3' LOOP
		COMMIT;
		PERFORM pg_sleep(${4:-0.05});
	END LOOP;
END \$\$"
}

# transactions_sql ROLE: the query of how many transactions a node shipped
# (as primary) or applied (as replica) in the partitions it has that role
# of, all of them in their first generation.
transactions_sql() {
	echo "SELECT coalesce(sum(scn & 4294967295), 0) FROM replkafka.partitions WHERE role = '$1'"
}

# wait_transactions NODE ROLE COUNT: wait until NODE shipped or applied
# COUNT transactions in the partitions it has ROLE of.
wait_transactions() {
	wait_until "$1" "$(transactions_sql "$2")" "$3"
}

# process_pids NODE BACKEND_TYPE: NODE's processes of that kind, comma-separated.
process_pids() {
	bench_psql "$1" -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE backend_type = '$2'"
}

# cpu_ticks: CPU time so far (clock ticks) of the broker and of each kind of
# server process, one "KIND TICKS" per line.
cpu_ticks() {
	python3 -c '
import os, collections
t = collections.Counter()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        args = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode()
        f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    ticks = int(f[11]) + int(f[12])
    if "kafka.Kafka" in args:
        t["broker"] += ticks
    elif args.startswith("postgres: "):
        kind = args.split(":")[1].strip()
        for k in ("replkafka shipper", "replkafka apply worker", "walsender",
                  "logical replication worker"):
            if kind.startswith(k):
                t[k.replace(" ", "_")] += ticks
                break
        else:
            t["other_postgres"] += ticks
for k, v in sorted(t.items()):
    print(k, v)
'
}
