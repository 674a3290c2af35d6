#!/usr/bin/env bash
# Before/after comparison of two parleyd builds on this machine, side by side in one run, with the
# same client (AFTER's parley-bench) for both: the "no regression" check of a restructuring.
#
#   tests/bench/run-compare.sh BEFORE_BUILD AFTER_BUILD
#
#   (a) relay, closed loop maximum, and mosquitto (QoS 1, persistence) in the same rounds: the ratio
#       parleyd / mosquitto of each build;
#   (b) WebSocket ping round trips at 100 and 10,000 clients;
#   (c) idle memory: RSS per idle WebSocket connection (10,000 of them);
#   (d) delivery cost against connections held: the relay maximum with 100 and with 10,000 idle
#       WebSockets open on the same loop (--workers 1).
# Every measurement alternates BEFORE, AFTER, BEFORE, AFTER (COMPARE_ROUNDS rounds) so that drift on
# the machine hits both alike; the report gives each round and the median. Raw JSON in
# AFTER_BUILD/bench-results/compare-*.json. Knobs: COMPARE_ROUNDS=2, COMPARE_DURATION=5 (s per run),
# RELAY_CONNS=40.
set -euo pipefail

BEFORE=$(cd "${1:?usage: tests/bench/run-compare.sh BEFORE_BUILD AFTER_BUILD}" && pwd)
BUILD=$(cd "${2:?usage: tests/bench/run-compare.sh BEFORE_BUILD AFTER_BUILD}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${COMPARE_ROUNDS:-2}
DURATION=${COMPARE_DURATION:-5}
CONNS=${RELAY_CONNS:-40}
OUT=$BUILD/bench-results
PROG=run-compare
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_require
[ -x "$BEFORE/server/parleyd" ] || die "$BEFORE/server/parleyd not built"
command -v mosquitto >/dev/null || die "mosquitto not installed (make deps-bench)"
mkdir -p "$OUT"
bench_workdir "$BUILD/compare-bench.XXXXXX"
declare -A BIN=([before]="$BEFORE/server/parleyd" [after]="$PARLEYD")
LOAD_BEFORE=$(bench_loadavg)

# start_parleyd NAME: a fresh parleyd of that build on its own data dir; sets SRV_PID and SRV_URL.
start_parleyd() {
	local name=$1 dir
	dir=$(mktemp -d "$WORK/$name.XXXXXX")
	"${BIN[$name]}" --port 0 --workers 1 --data-dir "$dir/data" --port-file "$dir/port" --log-level warn \
		>"$dir/log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	SRV_URL="ws://127.0.0.1:$(wait_port "$dir/port" || die "$name parleyd did not start")/v1/websocket"
}
stop_parleyd() { kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; }

relay() { # FILE URL PID [ARGS...]
	local f=$1 url=$2 pid=$3 rc=0
	shift 3
	"$BENCH" relay --url "$url" --connections "$CONNS" --duration "$DURATION" --server-pid "$pid" --json "$@" \
		>"$OUT/compare-$f.json" || rc=$?
	[ "$rc" -le 2 ] || echo "$PROG: parley-bench relay failed ($rc): $f" >&2
	sleep 1
}

bench_start_mosquitto "$WORK/mosquitto"
for r in $(seq "$ROUNDS"); do
	for b in before after; do
		echo "$PROG: round $r: $b" >&2
		start_parleyd "$b"
		relay "relay-$b-$r" "$SRV_URL" "$SRV_PID" --max
		for n in 100 10000; do
			"$BENCH" ws --url "$SRV_URL" --clients "$n" --duration "$DURATION" --server-pid "$SRV_PID" \
				--json >"$OUT/compare-ws$n-$b-$r.json" || echo "$PROG: ws $n failed" >&2
			sleep 1
		done
		for n in 100 10000; do relay "idle$n-$b-$r" "$SRV_URL" "$SRV_PID" --max --idle "$n"; done
		stop_parleyd
		"$BENCH" start --parleyd "${BIN[$b]}" --runs 1 --idle-clients 10000 --json -- --port 0 --workers 1 \
			--data-dir "$WORK/start-$b-$r" >"$OUT/compare-mem-$b-$r.json" || echo "$PROG: start failed" >&2
	done
	echo "$PROG: round $r: mosquitto" >&2
	"$BENCH" relay --peer mosquitto --url "127.0.0.1:$MQ_PORT" --connections "$CONNS" --duration "$DURATION" \
		--server-pid "$MQ_PID" --max --json >"$OUT/compare-relay-mosquitto-$r.json" || true
	sleep 1
done
bench_stop_mosquitto "$OUT/compare-mosquitto.log"
LOAD_AFTER=$(bench_loadavg)

python3 - "$OUT" "$ROUNDS" <<PY
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rd(name):
    try: return json.load(open('%s/compare-%s.json' % (out, name)))
    except Exception: return None
def series(fmt, key):
    v = []
    for r in range(1, rounds + 1):
        j = rd(fmt % r)
        v.append(j.get(key) if j else None)
    return v
def cell(v, f='{:,.0f}'):
    ok = [x for x in v if x is not None]
    return ('%s (%s)' % (f.format(statistics.median(ok)), ', '.join(f.format(x) for x in ok))) if ok else '–'
def med(v):
    ok = [x for x in v if x is not None]
    return statistics.median(ok) if ok else None
print('Date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  ')
print('Builds: before = $BEFORE, after = $BUILD (commit $(bench_commit server lib proto))  ')
print('Machine: $(nproc) cores ($(bench_cpu)); load average before: $LOAD_BEFORE, after: $LOAD_AFTER  ')
print('Each cell: median (round 1, round 2, ...); rounds alternate before/after; ${DURATION} s per run; parleyd --workers 1.')
print()
print('| measurement | before | after | after / before |')
print('|---|---:|---:|---:|')
rows = [('relay max acked/s ($CONNS conns, closed loop)', 'relay-%s-%%d', 'acked_per_s'),
        ('WebSocket round trips/s, 100 clients', 'ws100-%s-%%d', 'rate'),
        ('WebSocket round trips/s, 10,000 clients', 'ws10000-%s-%%d', 'rate'),
        ('relay max acked/s with 100 idle connections', 'idle100-%s-%%d', 'acked_per_s'),
        ('relay max acked/s with 10,000 idle connections', 'idle10000-%s-%%d', 'acked_per_s'),
        ('kB per idle WebSocket (10,000 open)', 'mem-%s-%%d', 'per_conn_kb')]
for title, fmt, key in rows:
    b, a = series(fmt % 'before', key), series(fmt % 'after', key)
    f = '{:.2f}' if key == 'per_conn_kb' else '{:,.0f}'
    ratio = '%.2f' % (med(a) / med(b)) if med(a) and med(b) else '–'
    print('| %s | %s | %s | %s |' % (title, cell(b, f), cell(a, f), ratio))
mq = series('relay-mosquitto-%d', 'acked_per_s')
print()
print('mosquitto QoS 1 (same client, same rounds): %s acked/s  ' % cell(mq))
for b in ('before', 'after'):
    p = med(series('relay-%s-%%d' % b, 'acked_per_s'))
    m = med(mq)
    print('parleyd %s / mosquitto: %s  ' % (b, '%.2f' % (p / m) if p and m else '–'))
for b in ('before', 'after'):
    i100 = med(series('idle100-%s-%%d' % b, 'acked_per_s'))
    i10k = med(series('idle10000-%s-%%d' % b, 'acked_per_s'))
    print('%s: throughput with 10,000 idle connections / with 100: %s  ' % (b, '%.2f' % (i10k / i100) if i100 and i10k else '–'))
PY
