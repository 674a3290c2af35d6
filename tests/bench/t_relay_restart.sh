#!/usr/bin/env bash
# Delivery across a server crash, checked with `parley-bench relay --phase send|verify` (meson suite
# 'integration', a few thousand messages, ~10 s):
#   1. parleyd runs; senders send 4000 messages to offline receivers; parley-bench SIGKILLs parleyd
#      once 1500 are acked (--crash-after, so the point does not depend on timing); parleyd restarts on
#      the same data directory; the receivers log in: every acked message must arrive once, intact.
#   2. The same without a crash, but one stored message is deleted from the SQLite database between
#      the phases: the verifier must report exactly that one as missing, and fail.
#   3. One stored message's body is replaced by a body meant for another receiver: the verifier must
#      count it as corrupted/misrouted (and the message it replaced as missing), and fail.
# Cases 2 and 3 prove the check can fail. Needs PARLEYD and BENCH (meson passes both); the database
# is edited with the sqlite3 shell, or Python's sqlite3 module when the shell is missing.
set -euo pipefail

: "${PARLEYD:?PARLEYD=path/to/parleyd}" "${BENCH:?BENCH=path/to/parley-bench}"
# its clients register from one address: parleyd's registration limit (security item 4) is off here
export PARLEYD_REGISTER_RATE_BURST=0 PARLEYD_PREKEY_BUDGET_BURST=0
W=$(mktemp -d /tmp/parley-restart.XXXXXX)
SRV=
cleanup() {
	[ -n "$SRV" ] && kill -KILL "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	for f in "$W"/*.out "$W"/parleyd.log; do [ -f "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
	exit 1
}

sql() { # DB STATEMENT
	if command -v sqlite3 >/dev/null; then
		sqlite3 "$1" "$2"
	elif python3 -c 'import sqlite3' 2>/dev/null; then
		python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()' "$1" "$2"
	else
		echo "neither sqlite3 nor python3's sqlite3 module: skipped" >&2
		exit 77
	fi
}

start_server() { # DATA_DIR: SRV (pid) and URL
	rm -f "$W/port"
	"$PARLEYD" --port 0 --data-dir "$1" --port-file "$W/port" --log-level warn >>"$W/parleyd.log" 2>&1 &
	SRV=$!
	for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
	[ -s "$W/port" ] || fail "parleyd did not start"
	URL="ws://127.0.0.1:$(cat "$W/port")/v1/websocket"
}

kill_server() { # SIGKILL: no chance to flush anything that was not already durable
	kill -KILL "$SRV" 2>/dev/null || true
	wait "$SRV" 2>/dev/null || true
	SRV=
}

send() { # NAME ARGS...: a send phase that must succeed
	local name=$1 rc=0
	shift
	"$BENCH" relay --phase send --state "$W/$name.state" --url "$URL" --connections 8 --senders 4 "$@" \
		>"$W/$name-send.out" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || fail "$name: send phase exited $rc"
}

verify() { # NAME EXPECTED_EXIT: the JSON report in $W/NAME-verify.out
	local rc=0
	"$BENCH" relay --phase verify --state "$W/$1.state" --url "$URL" --drain 30 --json >"$W/$1-verify.out" 2>&1 || rc=$?
	[ "$rc" -eq "$2" ] || fail "$1: verify exited $rc, expected $2"
}

has() { # NAME FRAGMENT: the verify report contains it
	grep -q -- "$2" "$W/$1-verify.out" || fail "$1: verify report lacks $2"
}

# 1. crash mid-send
start_server "$W/d1"
send crash --messages 4000 --server-pid "$SRV" --crash-after 1500
status=0
wait "$SRV" || status=$?
SRV=
[ "$status" -eq 137 ] || fail "crash: parleyd exited $status, not killed by --crash-after"
grep -q "stopped      early" "$W/crash-send.out" || fail "crash: the send phase did not notice the crash"
start_server "$W/d1"
verify crash 0
has crash '"ok":true'
has crash '"lost":0,'
has crash '"duplicates":0,'
kill_server
echo "ok 1 - every message acked before SIGKILL was delivered after the restart"

# 2. one acked message deleted behind the server's back
start_server "$W/d2"
send deleted --messages 2000
kill_server
sql "$W/d2/parley.db" "DELETE FROM messages WHERE id = (SELECT min(id) FROM messages);"
start_server "$W/d2"
verify deleted 2
has deleted '"ok":false'
has deleted '"lost":1,'
has deleted '"corrupt":0,'
kill_server
echo "ok 2 - a deleted message is reported missing"

# 3. one body swapped for a body meant for another receiver
start_server "$W/d3"
send swapped --messages 2000
kill_server
sql "$W/d3/parley.db" "UPDATE messages SET content = (SELECT m2.content FROM messages m2
	WHERE m2.account_id != messages.account_id LIMIT 1) WHERE id = (SELECT min(id) FROM messages);"
start_server "$W/d3"
verify swapped 2
has swapped '"ok":false'
has swapped '"corrupt":1,'
has swapped '"lost":1,'
kill_server
echo "ok 3 - a misrouted body is reported corrupted"
