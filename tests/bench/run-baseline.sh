#!/usr/bin/env bash
# Baseline benchmark: parleyd side by side with a reference WebSocket server (npm `ws`, echo), same
# client (parley-bench), same connection counts, same payload, in one run. Prints a markdown report
# on stdout (docs/benchmarks.md shows one) and keeps the raw JSON in BUILD_DIR/bench-results/.
#
#   tests/bench/run-baseline.sh BUILD_DIR
#
# Builds nothing: BUILD_DIR must hold server/parleyd and tools/bench/parley-bench. Installs the npm
# peer (tests/bench/node_modules, from the committed package-lock.json) only if it is missing.
# Everything it starts is stopped on exit, failure or Ctrl-C. Knobs (environment):
#   BENCH_CLIENTS="1 100 10000"  BENCH_DURATION=5 (s per run)  BENCH_PAYLOAD=32 (bytes)
#   BENCH_THREADS=1 (client threads)  BENCH_WORKERS=1 (parleyd workers)  BENCH_START_RUNS=5
#   BENCH_IDLE_CLIENTS=10000 (idle connections for the memory figure; 0 to skip)
set -euo pipefail

BUILD=${1:?usage: tests/bench/run-baseline.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
CLIENTS=${BENCH_CLIENTS:-"1 100 10000"}
DURATION=${BENCH_DURATION:-5}
PAYLOAD=${BENCH_PAYLOAD:-32}
THREADS=${BENCH_THREADS:-1}
WORKERS=${BENCH_WORKERS:-1}
START_RUNS=${BENCH_START_RUNS:-5}
IDLE=${BENCH_IDLE_CLIENTS:-10000}
OUT=$BUILD/bench-results
PROG=run-baseline
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_require
command -v node >/dev/null || die "node not found (make deps-test installs it)"
if [ ! -d "$HERE/node_modules/ws" ]; then
	(cd "$HERE" && npm ci --no-audit --no-fund --silent) >&2 || die "npm ci in tests/bench failed"
fi

# 10,000 clients and 10,000 server-side sockets, plus listeners, logs and the database.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_workdir /tmp/parley-baseline.XXXXXX
mkdir -p "$OUT"

LOAD_BEFORE=$(bench_loadavg)
echo "run-baseline: starting parleyd and the ws echo peer" >&2
node "$HERE/ws-echo.js" >"$WORK/echo.log" 2>&1 &
PIDS+=($!)
ECHO_PID=$!
"$PARLEYD" --port 0 --workers "$WORKERS" --data-dir "$WORK/data" --port-file "$WORK/parleyd.port" \
	--log-level warn >"$WORK/parleyd.log" 2>&1 &
PIDS+=($!)
PARLEYD_PID=$!
ECHO_PORT=$(wait_port "$WORK/echo.log") || die "ws-echo did not start: $(cat "$WORK/echo.log")"
PARLEYD_PORT=$(wait_port "$WORK/parleyd.port") || die "parleyd did not start: $(cat "$WORK/parleyd.log")"

# run NAME URL MODE CLIENTS PID: one closed-loop run, JSON kept in $OUT. A failed run still leaves its
# JSON (exit status 2 means it ran with errors, which the table shows).
run() {
	local rc=0
	echo "run-baseline: $1, $4 clients, ${DURATION}s" >&2
	"$BENCH" ws --url "$2" --mode "$3" --clients "$4" --threads "$THREADS" --payload "$PAYLOAD" \
		--duration "$DURATION" --connect-timeout 60 --server-pid "$5" --json >"$OUT/ws-$1-$4.json" || rc=$?
	[ "$rc" -le 2 ] || die "parley-bench failed ($rc) for $1 with $4 clients"
	# Let TIME_WAIT and the server's closing work settle before the next run.
	sleep 1
}
for n in $CLIENTS; do
	run parleyd "ws://127.0.0.1:$PARLEYD_PORT/v1/websocket" parley "$n" "$PARLEYD_PID"
	run ws "ws://127.0.0.1:$ECHO_PORT/" echo "$n" "$ECHO_PID"
done
# Memory of the long-running servers after all that, for the record.
PARLEYD_RSS_AFTER=$(awk '/VmRSS/ {print $2}' "/proc/$PARLEYD_PID/status" 2>/dev/null || echo "?")
ECHO_RSS_AFTER=$(awk '/VmRSS/ {print $2}' "/proc/$ECHO_PID/status" 2>/dev/null || echo "?")
kill -TERM "$PARLEYD_PID" "$ECHO_PID" 2>/dev/null || true
wait "$PARLEYD_PID" 2>/dev/null || true
wait "$ECHO_PID" 2>/dev/null || true
PIDS=()

echo "run-baseline: start time and idle memory ($START_RUNS starts each, $IDLE idle connections)" >&2
rc=0
"$BENCH" start --parleyd "$PARLEYD" --runs "$START_RUNS" --idle-clients "$IDLE" --json -- \
	--port 0 --workers "$WORKERS" --data-dir "$WORK/start-data" >"$OUT/start-parleyd.json" || rc=$?
[ "$rc" -le 2 ] || die "parley-bench start failed for parleyd"
rc=0
"$BENCH" start --exec "$(command -v node)" --runs "$START_RUNS" --idle-clients "$IDLE" --ws-path / --json -- \
	"$HERE/ws-echo.js" >"$OUT/start-ws.json" || rc=$?
[ "$rc" -le 2 ] || die "parley-bench start failed for ws-echo"

LOAD_AFTER=$(bench_loadavg)
COMMIT=$(bench_commit)
CPU=$(bench_cpu)
WS_VERSION=$(node -p "require('$HERE/node_modules/ws/package.json').version")

node - "$OUT" "$CLIENTS" <<EOF
const fs = require('fs');
const [out, clients] = process.argv.slice(2);
const rd = (f) => { try { return JSON.parse(fs.readFileSync(out + '/' + f, 'utf8')); } catch (e) { return null; } };
const f0 = (x) => x === undefined || x === null ? '–' : Math.round(x).toLocaleString('en-US');
const f1 = (x) => x === undefined || x === null ? '–' : x.toFixed(1);
const cpu = (r) => r ? r.server_cpu_pct + ', ' + r.client_cpu_pct : '–';
const note = (r) => {
  if (!r) return 'no result';
  const bad = [];
  if (r.connect_failed) bad.push(r.connect_failed + ' connects failed');
  if (r.errors) bad.push(r.errors + ' errors');
  if (r.lost) bad.push(r.lost + ' lost');
  if (bad.length && r.first_error) bad.push('first: ' + r.first_error);
  return bad.join(', ');
};
console.log('Date: ' + new Date().toISOString().replace(/\.\d+Z$/, 'Z') + '  ');
console.log('Commit: $COMMIT  ');
console.log('Machine: $(nproc) cores ($CPU), Linux $(uname -r), node $(node --version), ws $WS_VERSION  ');
console.log('Load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER  ');
console.log('Settings: payload $PAYLOAD bytes, ${DURATION} s per run, $THREADS client thread(s), parleyd --workers $WORKERS; ' +
  'parleyd answers protobuf Request{ping} with Response{ping}, ws echoes the raw message.');
console.log('');
console.log('| clients | parleyd round trips/s | parleyd p50 / p99 (µs) | ws round trips/s | ws p50 / p99 (µs) | parleyd / ws | CPU % server, client (parleyd run; ws run) | notes |');
console.log('|---:|---:|---:|---:|---:|---:|---|---|');
for (const n of clients.split(/\s+/).filter(Boolean)) {
  const p = rd('ws-parleyd-' + n + '.json'), w = rd('ws-ws-' + n + '.json');
  const ratio = p && w && w.rate ? (p.rate / w.rate).toFixed(2) : '–';
  const notes = [p && note(p) ? 'parleyd: ' + note(p) : '', w && note(w) ? 'ws: ' + note(w) : ''].filter(Boolean).join('; ');
  console.log('| ' + Number(n).toLocaleString('en-US') + ' | ' + f0(p && p.rate) + ' | ' +
    (p && p.round_trips ? f1(p.latency_us.p50) + ' / ' + f1(p.latency_us.p99) : '–') + ' | ' + f0(w && w.rate) + ' | ' +
    (w && w.round_trips ? f1(w.latency_us.p50) + ' / ' + f1(w.latency_us.p99) : '–') + ' | ' + ratio + ' | ' + cpu(p) + '; ' + cpu(w) + ' | ' + notes + ' |');
}
console.log('');
console.log('| server | start, fork → /healthz 200 (median, min–max) | RSS idle | RSS with idle connections | per connection | SIGTERM → exit |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, f] of [['parleyd', 'start-parleyd.json'], ['node ws echo (reference)', 'start-ws.json']]) {
  const s = rd(f);
  if (!s) { console.log('| ' + name + ' | no result | | | | |'); continue; }
  const idle = s.idle_connected ? (s.idle_rss_kb / 1024).toFixed(1) + ' MiB with ' + s.idle_connected.toLocaleString('en-US') : '–';
  console.log('| ' + name + ' | ' + f1(s.ready_ms.median) + ' ms (' + f1(s.ready_ms.min) + '–' + f1(s.ready_ms.max) + ', ' + s.runs + ' runs) | ' +
    (s.rss_kb / 1024).toFixed(1) + ' MiB | ' + idle + ' | ' + (s.idle_connected ? s.per_conn_kb.toFixed(1) + ' KiB' : '–') + ' | ' +
    f1(s.stop_ms.median) + ' ms (' + s.clean_exits + '/' + s.runs + ' clean) |');
}
console.log('');
console.log('RSS of the long-running servers after all load runs: parleyd $PARLEYD_RSS_AFTER kB, ws echo $ECHO_RSS_AFTER kB.');
EOF
