#!/usr/bin/env bash
# parley-bench fanout end to end, short (meson suite 'integration', ~5 s):
#   1. 20 receiving devices, 30 messages, window 4: group and pairwise both complete, every receiver
#      got every message exactly once (the bench's own check), exit 0.
#   2. The same against a parleyd whose per-account send bucket holds 10 messages: the sends past it
#      are refused (SEND_RATE_LIMITED: ThreadSend draws on SendMessage's bucket) and the bench must
#      say FAILED and exit 2 — the check can fail.
# Needs PARLEYD and BENCH (meson passes both).
set -euo pipefail

: "${PARLEYD:?PARLEYD=path/to/parleyd}" "${BENCH:?BENCH=path/to/parley-bench}"
export PARLEYD_REGISTER_RATE_BURST=0 PARLEYD_PREKEY_BUDGET_BURST=0
W=$(mktemp -d /tmp/parley-fanout.XXXXXX)
SRV=
stop() {
	[ -z "$SRV" ] || { kill -TERM "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null || true; }
	SRV=
}
trap 'stop; rm -rf "$W"' EXIT
fail() {
	echo "FAIL: $*" >&2
	for f in "$W"/*.out "$W"/parleyd.log; do [ -f "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
	exit 1
}
start() { # DIR
	rm -f "$W/port"
	"$PARLEYD" --port 0 --data-dir "$W/$1" --port-file "$W/port" --log-level warn >"$W/parleyd.log" 2>&1 &
	SRV=$!
	for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
	[ -s "$W/port" ] || fail "parleyd did not start"
	URL="ws://127.0.0.1:$(cat "$W/port")/v1/websocket"
}
run() { # OUT
	set +e
	"$BENCH" fanout --url "$URL" --receivers 20 --messages 30 --window 4 --timeout 30 >"$W/$1.out" 2>&1
	RC=$?
	set -e
}

PARLEYD_SEND_RATE_BURST=0 start ok
run ok
stop
[ "$RC" = 0 ] || fail "the run failed (exit $RC)"
grep -Eq '^group .* ok$' "$W/ok.out" || fail "group not ok"
grep -Eq '^pairwise .* ok$' "$W/ok.out" || fail "pairwise not ok"

PARLEYD_SEND_RATE_BURST=10 PARLEYD_SEND_RATE_PER_MIN=1 start limited
run limited
stop
[ "$RC" = 2 ] || fail "a run with refused sends exited $RC, not 2"
grep -Eq '^group .*FAILED send refused: sending too fast' "$W/limited.out" || fail "the group way did not report the refusal"
echo "ok: fan-out complete; refused sends make the run fail"
