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
		echo "wal_level = logical"
		echo "max_wal_size = 8GB"
		echo "shared_buffers = 512MB"
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
