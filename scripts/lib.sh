# scripts/lib.sh: shell functions shared by test/run, demo/run, the
# benchmarks and the Kafka harness.  Source it; it defines functions only.

# postgres_install: choose the PostgreSQL installation to build against and
# run: PG_CONFIG from the environment, or else PostgreSQL 15's pg_config.
# Exports PG_CONFIG (for make and the scripts it runs) and sets pgbin to the
# directory of its programs.  Every script finds PostgreSQL through it.
postgres_install() {
	export PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
	# shellcheck disable=SC2034  # for the caller
	pgbin=$("$PG_CONFIG" --bindir)
}

# plugin_libraries_conf [BINDIR]: print the postgresql.conf line that lets
# a server restricting output plugins (output_plugin_libraries, in recent
# minor releases) load replkafka's, as the shipper does; print nothing for
# a server without that setting.  The server is BINDIR's postgres, or the
# one on PATH.
plugin_libraries_conf() {
	# not grep -q: postgres killed by SIGPIPE would fail the pipeline
	if "${1:+$1/}postgres" --describe-config 2>/dev/null |
		grep '^output_plugin_libraries' >/dev/null; then
		echo "output_plugin_libraries = 'pgoutput, test_decoding, replkafka'"
	fi
}

# free_ports COUNT: print COUNT distinct free TCP ports on 127.0.0.1.  All
# sockets stay open until every port is chosen, so the ports are distinct.
free_ports() {
	perl -MIO::Socket::INET -e '
		my @s;
		for (1 .. $ARGV[0]) {
			my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
				Proto => "tcp", Listen => 1, ReuseAddr => 0) or die "socket: $!";
			push @s, $s;
		}
		print join(" ", map { $_->sockport } @s), "\n";' "$1"
}

# unprivileged_tree TOP DIR: PostgreSQL refuses to run as root.  As root,
# copy the source tree TOP (with its built files and Kafka jar cache) to
# DIR, give it to user postgres, and set workdir=DIR and runas to the
# command prefix that runs as postgres.  Otherwise set workdir=TOP and an
# empty runas.
unprivileged_tree() {
	local top="$1" dir="$2"
	workdir="$top"
	runas=()
	[ "$(id -u)" -eq 0 ] || return 0
	workdir="$dir"
	rm -rf "$workdir"
	mkdir -p "$workdir"
	tar -C "$top" --exclude=./tmp_check --exclude=./tmp_regress \
		--exclude=./output_regress --exclude=./demo/state \
		--exclude=./test/soak/state -cf - . |
		tar -C "$workdir" -xf -
	chown -R postgres: "$workdir"
	runas=(runuser -u postgres --)
}

# kill_postgres DATADIR SOCKETDIR PORT: SIGKILL a server's postmaster and
# every child at once, as if the machine died.  Once they are gone (or
# zombies nobody reaps), remove the lock files a reboot would have removed,
# so that the server can start again.
kill_postgres() {
	local datadir="$1" sockdir="$2" port="$3" pid
	pid=$(head -1 "$datadir/postmaster.pid")
	# shellcheck disable=SC2046
	kill -KILL "$pid" $(ps --ppid "$pid" -o pid= || true)
	while ps -o stat= -p "$pid" | grep -qv '^Z'; do sleep 0.01; done
	rm -f "$datadir/postmaster.pid" "$sockdir/.s.PGSQL.$port.lock"
}
