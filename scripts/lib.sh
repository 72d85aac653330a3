# scripts/lib.sh: shell functions shared by test/run, demo/run, the
# benchmarks and the Kafka harness.  Source it; it defines functions only.

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
		--exclude=./output_regress --exclude=./demo/state -cf - . |
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
