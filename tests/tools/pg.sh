#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster for the tests (loopback only, one directory holds everything).
#
#   pg.sh start DIR     initdb in DIR/data, listen on 127.0.0.1:<free port>, socket in DIR, wait until
#                       it accepts connections; writes DIR/url (a superuser URL, password included),
#                       DIR/port. Exit 77 when PostgreSQL 15 is not installed (callers skip).
#   pg.sh stop DIR      fast shutdown, then remove DIR (nothing to do when DIR is gone)
#   pg.sh restart DIR   stop if running (fast), start again on the same port (crash recovery after kill)
#   pg.sh kill DIR      SIGKILL of the postmaster and of its backends: a power cut, for crash tests
#   pg.sh url DIR       print the URL
#
# Durability settings are the production ones (fsync, synchronous_commit, full_page_writes on): the
# tests check "acknowledged means durable", which a cluster with fsync off would not exercise.
# Authentication: scram-sha-256 on 127.0.0.1 with a generated password (the URL carries it), so the
# driver's password path is what the tests run; trust on the unix socket in DIR (mode 0700, its owner
# only), which this script uses for nothing but readiness checks.
# As root, the cluster belongs to the `postgres` system user (PostgreSQL refuses to run as root); the
# user is created when missing. DIR's parent must be traversable by that user (/tmp is).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
SUPERUSER=parley            # the cluster's superuser (tests CREATE DATABASE with it)
RUN_AS=postgres             # owner of the cluster when this script runs as root
PORT_TRIES=20
MARK=.parley-pg             # marks a directory this script made: stop removes only those

die() { echo "pg.sh: $*" >&2; exit 1; }
# shellcheck source=tests/tools/common.sh
. "$(dirname "$0")/common.sh"
usage() { echo "usage: pg.sh start|stop|restart|kill|url DIR" >&2; exit 2; }

[ $# -eq 2 ] || usage
cmd=$1 DIR=$2
[ -n "$DIR" ] || usage
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
DATA=$DIR/data

for b in initdb pg_ctl postgres pg_isready; do
	[ -x "$PGBIN/$b" ] || { echo "pg.sh: PostgreSQL 15 not installed ($PGBIN/$b missing)" >&2; exit 77; }
done

# run a command as the cluster's owner (as ourselves unless we are root); cd / so a root-only cwd does
# not make initdb/pg_ctl complain
as_owner() {
	if [ "$(id -u)" = 0 ]; then (cd / && runuser -u "$RUN_AS" -- "$@"); else (cd / && "$@"); fi
}

ensure_owner() {
	[ "$(id -u)" = 0 ] || return 0
	getent passwd "$RUN_AS" >/dev/null && return 0
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_AS" ||
		getent passwd "$RUN_AS" >/dev/null || die "cannot create the system user $RUN_AS"
}

# the postmaster's pid when it runs, else nothing
pm_pid() { pid_in "$DATA/postmaster.pid"; }


server_log() { echo "--- $DIR/log ---" >&2; tail -n 60 "$DIR/log" >&2 2>/dev/null || true; }

# start the server on the port in DIR/port; 0 when ready, 1 on a port collision, 2 on another failure
launch() {
	local port from
	port=$(cat "$DIR/port")
	# only this attempt's part of the log decides whether the port was taken
	from=$(($(stat -c %s "$DIR/log" 2>/dev/null || echo 0) + 1))
	if as_owner "$PGBIN/pg_ctl" start -w -t 60 -D "$DATA" -l "$DIR/log" -o "-p $port" >"$DIR/log.start" 2>&1; then
		# -w waits on the unix socket; check the TCP listener the tests use as well
		for _ in $(seq 100); do
			"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 && return 0
			sleep 0.1
		done
		return 2
	fi
	case $(tail -c +"$from" "$DIR/log" 2>/dev/null; cat "$DIR/log.start") in
	*'could not bind'* | *'Address already in use'*) return 1 ;;
	esac
	return 2
}

# stop, whatever state it is in; never fails
halt() {
	[ -f "$DATA/postmaster.pid" ] || return 0
	as_owner "$PGBIN/pg_ctl" stop -w -t 60 -m fast -D "$DATA" >/dev/null 2>&1 ||
		as_owner "$PGBIN/pg_ctl" stop -w -t 30 -m immediate -D "$DATA" >/dev/null 2>&1 || kill_all
	return 0
}

kill_all() {
	local pid kids
	pid=$(pm_pid)
	[ -n "$pid" ] || return 0
	# the backends outlive a killed postmaster for a moment and keep its shared memory attached, which
	# would make the next start refuse ("pre-existing shared memory block is still in use"): kill them
	# too, as a power cut would, and wait until all are gone
	kids=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ' || true)
	kill -KILL "$pid" $kids 2>/dev/null || true
	for _ in $(seq 100); do
		local alive=0
		for p in $pid $kids; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && return 0
		sleep 0.05
	done
	die "postmaster $pid or its backends survived SIGKILL"
}

do_start() {
	[ -z "$(pm_pid)" ] || die "already running in $DIR"
	if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then die "$DIR exists and is not empty"; fi
	ensure_owner
	mkdir -p "$DIR"
	touch "$DIR/$MARK"
	[ "$(id -u)" = 0 ] && chown "$RUN_AS" "$DIR"
	chmod 0700 "$DIR"
	as_owner test -w "$DIR" || die "$DIR is not writable by $RUN_AS (is its parent traversable?)"

	local pw
	pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	umask 077
	printf '%s\n' "$pw" >"$DIR/pwfile"
	[ "$(id -u)" = 0 ] && chown "$RUN_AS" "$DIR/pwfile"
	if ! as_owner "$PGBIN/initdb" -D "$DATA" -U "$SUPERUSER" --pwfile="$DIR/pwfile" -E UTF8 --no-locale \
		--auth-local=trust --auth-host=scram-sha-256 >"$DIR/log.initdb" 2>&1; then
		cat "$DIR/log.initdb" >&2
		die "initdb failed"
	fi
	rm -f "$DIR/pwfile"
	cat >>"$DATA/postgresql.conf" <<-EOF

		# pg.sh (parley tests)
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$DIR'
		max_connections = 200
		shared_buffers = 64MB
		fsync = on
		synchronous_commit = on
		full_page_writes = on
		shared_preload_libraries = 'pg_stat_statements'
		pg_stat_statements.track = all
		track_io_timing = on
		log_min_messages = warning
		log_line_prefix = '%m [%p] %d '
	EOF

	local tries rc=2
	for tries in $(seq "$PORT_TRIES"); do
		pick_port >"$DIR/port"
		launch && { rc=0; break; } || rc=$?
		[ $rc = 1 ] || break
		echo "pg.sh: port $(cat "$DIR/port") taken, retrying ($tries)" >&2
	done
	if [ $rc != 0 ]; then
		cat "$DIR/log.start" >&2 2>/dev/null || true
		server_log
		halt
		die "server did not start"
	fi
	printf 'postgres://%s:%s@127.0.0.1:%s/postgres\n' "$SUPERUSER" "$pw" "$(cat "$DIR/port")" >"$DIR/url"
	chmod 0644 "$DIR/url" "$DIR/port"
	cat "$DIR/url"
}

do_stop() {
	[ -e "$DIR" ] || return 0
	[ -f "$DIR/$MARK" ] || die "$DIR was not made by pg.sh start: not removing it"
	halt
	[ -z "$(pm_pid)" ] || die "server in $DIR still running"
	rm -rf "$DIR"
}

do_restart() {
	[ -f "$DIR/port" ] || die "no cluster in $DIR"
	if [ -n "$(pm_pid)" ]; then
		as_owner "$PGBIN/pg_ctl" stop -w -t 60 -m fast -D "$DATA" >/dev/null 2>&1 || die "stop failed"
	fi
	local rc=0
	launch || rc=$?
	if [ $rc != 0 ]; then
		cat "$DIR/log.start" >&2 2>/dev/null || true
		server_log
		halt
		die "server did not restart on port $(cat "$DIR/port")"
	fi
}

case $cmd in
start) do_start ;;
stop) do_stop ;;
restart) do_restart ;;
kill) [ -f "$DIR/port" ] || die "no cluster in $DIR"; kill_all ;;
url) [ -f "$DIR/url" ] || die "no cluster in $DIR"; cat "$DIR/url" ;;
*) usage ;;
esac
