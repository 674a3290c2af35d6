#!/usr/bin/env bash
# 12: one parleyd per port and per data directory. A second parleyd on a port already served must exit 1
# ("address in use"), not join the listener and take part of the connections (with SO_REUSEPORT the
# kernel splits them: other keys, live deliveries that miss the other process's sessions). A second
# parleyd on a data directory already in use must exit 1 ("data directory locked"), whatever its port.
set -uo pipefail
: "${PARLEYD:?}"
# the store: SQLite in --data_dir, or a fresh PostgreSQL database in the integration-pg suite
tools=$(dirname "$0")/../tools
store=$("$tools/parleyd-store.sh" new) || exit 99
dir=$(mktemp -d /tmp/parley-excl-XXXXXX)
pid= pid2=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	[ -n "$pid2" ] && kill -9 "$pid2" 2>/dev/null
	rm -rf "$dir"
	"$tools/parleyd-store.sh" drop "$store"
}
trap cleanup EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

# start_bg NAME ARGS...: a parleyd in the background, its log in $dir/NAME.log, its pid in $pid2
start_bg() { local name=$1; shift; "$PARLEYD" "$@" ${store:+"$store"} 2>"$dir/$name.log" & pid2=$!; }
# wait_exit: wait up to 5 s for $pid2 to exit; sets rc to its status, or "running" if it is still up
wait_exit() {
	rc=running
	for _ in $(seq 100); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.05; done
	if ! kill -0 "$pid2" 2>/dev/null; then wait "$pid2"; rc=$?; pid2=; fi
}
stop_second() { [ -n "$pid2" ] && { kill -9 "$pid2" 2>/dev/null; wait "$pid2" 2>/dev/null; pid2=; }; }
wait_port() { for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
requests() { curl -s --max-time 5 "http://127.0.0.1:$admin/metrics" | awk '/^parley_http_requests_total /{print $2}'; }

"$PARLEYD" --port=0 --workers=2 --port_file="$dir/port" --admin_port_file="$dir/admin" --data_dir="$dir/a" \
	${store:+"$store"} 2>"$dir/first.log" &
pid=$!
wait_port "$dir/port" || { echo "Bail out! first parleyd did not start"; cat "$dir/first.log"; exit 1; }
port=$(cat "$dir/port")
admin=$(cat "$dir/admin")  # /metrics is on the admin listener

# (a) same port, another data directory (with the first one's OTP key: on a shared PostgreSQL store a
# node with another key refuses to start before it binds, t41, which is not what this case checks)
mkdir -m 0700 "$dir/b" && cp -p "$dir/a/auth_otp.key" "$dir/b/"
start_bg second --port="$port" --data_dir="$dir/b"
wait_exit
# while a wrongly started second process would still be up: every request must reach the first one
before=$(requests)
ok=0
for _ in $(seq 40); do curl -s --max-time 5 "http://127.0.0.1:$port/healthz" | grep -q '"status":"ok"' && ok=$((ok + 1)); done
after=$(requests)
stop_second
check "second parleyd on a served port exits 1 (got $rc)" '[ "$rc" = 1 ]'
check "its error says the address is in use" 'grep -qi "address already in use" "$dir/second.log"'
check "the first parleyd is still running" 'kill -0 "$pid"'
check "the first parleyd served all 40 requests made meanwhile (ok=$ok, counter ${before:-?} -> ${after:-?})" \
	'[ "$ok" = 40 ] && [ -n "$before" ] && [ -n "$after" ] && [ $((after - before)) -ge 41 ]'

# (b) same data directory, another (ephemeral) port
start_bg third --port=0 --port_file="$dir/port3" --data_dir="$dir/a"
wait_exit
stop_second
check "second parleyd on a data directory in use exits 1 (got $rc)" '[ "$rc" = 1 ]'
check "its error says the data directory is locked" 'grep -qi "data directory locked" "$dir/third.log"'
check "its error names the pid of the holder ($pid)" 'grep -q "pid $pid)" "$dir/third.log"'
check "it never listened" '[ ! -e "$dir/port3" ]'
check "the lock file is 0600 and holds the first pid" \
	'[ "$(stat -c %a "$dir/a/parleyd.lock" 2>/dev/null)" = 600 ] && [ "$(cat "$dir/a/parleyd.lock" 2>/dev/null)" = "$pid" ]'
check "the first parleyd still serves" 'curl -s --max-time 5 "http://127.0.0.1:$port/healthz" | grep -q ok'

# (c) the lock and the port are released at exit: a restart on the same port and directory starts at once
kill -TERM "$pid"
wait "$pid"; rc=$?; pid=
check "first parleyd stops cleanly (got $rc)" '[ "$rc" = 0 ]'
# (no admin listener: its default, port + 1, is not ours to count on being free)
start_bg restart --port="$port" --admin_port=0 --port_file="$dir/port4" --data_dir="$dir/a"
check "restart on the same port and data directory starts" 'wait_port "$dir/port4"'
check "restart serves" 'curl -s --max-time 5 "http://127.0.0.1:$port/healthz" | grep -q ok'
kill -TERM "$pid2" 2>/dev/null
wait "$pid2"; rc=$?; pid2=
check "restart stops cleanly (got $rc)" '[ "$rc" = 0 ]'

exit $fail
