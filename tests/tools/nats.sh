#!/usr/bin/env bash
# A throw-away nats-server for the tests (loopback only, JetStream off: parley uses core NATS only).
#
#   nats.sh start DIR [--cluster [ROUTE_URL...]]
#                       listen on 127.0.0.1:<free port>; writes DIR/url (nats://127.0.0.1:PORT),
#                       DIR/port, DIR/pid, log in DIR/log. With --cluster it also listens for routes
#                       on another free port (DIR/cluster_url, cluster name "parley-test") and
#                       solicits the ROUTE_URLs given (other nodes' cluster_url), to test several
#                       NATS servers. Exit 77 when nats-server is not installed (callers skip).
#   nats.sh stop DIR    stop (SIGTERM, then SIGKILL), remove DIR (nothing to do when DIR is gone)
#   nats.sh restart DIR stop if running, start again on the same port(s)
#   nats.sh kill DIR    SIGKILL, DIR kept (restart brings it back)
#   nats.sh url DIR     print the URL
set -euo pipefail

NATS=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
PORT_TRIES=20
MARK=.parley-nats           # marks a directory this script made: stop removes only those

die() { echo "nats.sh: $*" >&2; exit 1; }
# shellcheck source=tests/tools/common.sh
. "$(dirname "$0")/common.sh"
usage() { echo "usage: nats.sh start DIR [--cluster [ROUTE_URL...]] | stop|restart|kill|url DIR" >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1 DIR=$2
shift 2
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
[ -x "$NATS" ] || { echo "nats.sh: nats-server not installed" >&2; exit 77; }

pid_of() { pid_in "$DIR/pid"; }


# the port accepts TCP connections
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start with the ports in DIR; 0 when ready, 1 on a port collision, 2 on another failure
launch() {
	local port args from pid
	port=$(cat "$DIR/port")
	args=(-a 127.0.0.1 -p "$port" -l "$DIR/log")
	if [ -f "$DIR/cluster_port" ]; then
		args+=(--cluster_name parley-test --cluster "nats://127.0.0.1:$(cat "$DIR/cluster_port")")
		[ ! -s "$DIR/routes" ] || args+=(--routes "$(cat "$DIR/routes")")
	fi
	from=$(($(stat -c %s "$DIR/log" 2>/dev/null || echo 0) + 1))
	# its own session, stdio away from the caller's pipes (meson waits for those to close)
	setsid "$NATS" "${args[@]}" </dev/null >>"$DIR/log" 2>&1 &
	pid=$!
	echo "$pid" >"$DIR/pid"
	# ready when its own log says so (a listener on the port could be someone else's) and it listens
	for _ in $(seq 200); do
		case $(ps -o stat= -p "$pid" 2>/dev/null) in '' | Z*) break ;; esac
		case $(tail -c +"$from" "$DIR/log" 2>/dev/null) in
		*'Server is ready'*) listening "$port" && return 0 ;;
		esac
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$DIR/pid"
	case $(tail -c +"$from" "$DIR/log" 2>/dev/null) in
	*'address already in use'*) return 1 ;;
	esac
	return 2
}

halt() {
	local pid
	pid=$(pid_of)
	[ -n "$pid" ] || { rm -f "$DIR/pid"; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$DIR/pid"; return 0; }
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$DIR/pid"; return 0; }
		sleep 0.05
	done
	die "nats-server $pid survived SIGKILL"
}

fail_start() {
	echo "--- $DIR/log ---" >&2
	tail -n 40 "$DIR/log" >&2 2>/dev/null || true
	halt
	die "$1"
}

do_start() {
	local cluster=0 routes="" rc=2 tries
	if [ $# -gt 0 ]; then
		[ "$1" = --cluster ] || usage
		cluster=1
		shift
		routes=$(IFS=,; echo "$*")
	fi
	[ -z "$(pid_of)" ] || die "already running in $DIR"
	if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then die "$DIR exists and is not empty"; fi
	mkdir -p "$DIR"
	touch "$DIR/$MARK"
	printf '%s\n' "$routes" >"$DIR/routes"
	for tries in $(seq "$PORT_TRIES"); do
		pick_port >"$DIR/port"
		if [ $cluster = 1 ]; then pick_port >"$DIR/cluster_port"; fi
		launch && { rc=0; break; } || rc=$?
		[ $rc = 1 ] || break
		echo "nats.sh: port taken, retrying ($tries)" >&2
	done
	[ $rc = 0 ] || fail_start "nats-server did not start"
	echo "nats://127.0.0.1:$(cat "$DIR/port")" >"$DIR/url"
	[ $cluster = 0 ] || echo "nats://127.0.0.1:$(cat "$DIR/cluster_port")" >"$DIR/cluster_url"
	cat "$DIR/url"
}

do_stop() {
	[ -e "$DIR" ] || return 0
	[ -f "$DIR/$MARK" ] || die "$DIR was not made by nats.sh start: not removing it"
	halt
	rm -rf "$DIR"
}

do_restart() {
	[ -f "$DIR/port" ] || die "no nats-server in $DIR"
	halt
	local rc=0
	launch || rc=$?
	[ $rc = 0 ] || fail_start "nats-server did not restart on port $(cat "$DIR/port")"
}

case $cmd in
start) do_start "$@" ;;
stop) do_stop ;;
restart) do_restart ;;
kill)
	pid=$(pid_of)
	[ -z "$pid" ] || { kill -KILL "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done; }
	;;
url) [ -f "$DIR/url" ] || die "no nats-server in $DIR"; cat "$DIR/url" ;;
*) usage ;;
esac
