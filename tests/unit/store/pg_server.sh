#!/bin/sh
# A throwaway PostgreSQL 15 server for the store's unit tests (test_pg.c), on 127.0.0.1 and a free
# port, in a temporary directory. As root, initdb and pg_ctl run as user postgres (PostgreSQL refuses
# to run as root), the directory owned by it. Exit 77 (meson's "skipped") when no PostgreSQL binaries
# exist.
#   pg_server.sh start DIR [postgres -c options...]   prints the port; DIR must not exist
#   pg_server.sh restart DIR                          pg_ctl restart -m fast (same port)
#   pg_server.sh halt DIR / resume DIR                stop (-m fast) / start again, for an outage
#   pg_server.sh stop DIR                             stops it and removes DIR
set -eu
bin=
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
	[ -x "$d/pg_ctl" ] && { bin=$d; break; }
done
[ -n "$bin" ] || { echo "pg_server.sh: no PostgreSQL binaries" >&2; exit 77; }

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=$1 dir=$2
shift 2
case $cmd in
start)
	mkdir -m 700 "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	as_pg "$bin/initdb" -D "$dir/data" -A trust -U parley --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	opts=""
	for o in "$@"; do opts="$opts -c $o"; done
	# a free port: try a few random ones (another test may take one between the choice and the bind)
	for try in 1 2 3 4 5 6 7 8; do
		port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000 ))
		o="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$dir' -c max_connections=20 $opts"
		if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 start -o "$o" >/dev/null 2>&1; then
			echo "$o" >"$dir/opts" # resume starts it the same way
			echo "$port" >"$dir/port"
			echo "$port"
			exit 0
		fi
	done
	cat "$dir/log" >&2
	exit 1
	;;
halt)
	as_pg "$bin/pg_ctl" -D "$dir/data" -w -t 30 -m fast stop >/dev/null
	;;
resume)
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 start -o "$(cat "$dir/opts")" >/dev/null
	;;
restart)
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 -m fast restart >/dev/null
	;;
stop)
	as_pg "$bin/pg_ctl" -D "$dir/data" -w -t 30 -m fast stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	;;
*)
	echo "usage: pg_server.sh start|restart|stop DIR [options]" >&2
	exit 2
	;;
esac
