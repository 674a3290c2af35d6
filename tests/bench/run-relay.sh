#!/usr/bin/env bash
# Relay benchmark: parleyd's durable relay side by side with mosquitto 2.0 (MQTT QoS 1, persistence
# on) and nats-server 2.9 (core NATS and JetStream with file storage), same client program
# (parley-bench relay), same connections, senders, message size, in one run:
#   (a) maximum throughput, closed loop (at most RELAY_WINDOW messages awaiting their ack per sender);
#   (b) latency, open loop at half of parleyd's maximum acked rate from (a), for every peer.
# Prints a markdown report on stdout (docs/benchmarks.md "## Relay" shows one) and keeps the raw JSON
# of every run in BUILD_DIR/bench-results/relay-*.json.
#
#   tests/bench/run-relay.sh BUILD_DIR
#
# Builds nothing: BUILD_DIR must hold server/parleyd and tools/bench/parley-bench (built with
# libmosquitto-dev and libnats-dev for the reference peers). A peer whose server or client library is
# missing is skipped and the report says so. Everything listens on 127.0.0.1 only; everything it
# starts is stopped on exit, failure or Ctrl-C; data lives in a temporary directory on the same file
# system as BUILD_DIR (not /tmp, which may be tmpfs: fsync must cost what it costs on a disk).
# Knobs (environment):
#   RELAY_CONNS=40  RELAY_SENDERS=(CONNS/2)  RELAY_SIZE=256 (bytes)  RELAY_DURATION=5 (s per run)
#   RELAY_WINDOW=16  RELAY_THREADS=1 (client loop threads, parley peer)  RELAY_WORKERS=1 (parleyd)
#   RELAY_PEERS="parley mosquitto nats nats-js"  RELAY_RATE=... (skip (a)'s parleyd figure, use this)
set -euo pipefail

BUILD=${1:?usage: tests/bench/run-relay.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
CONNS=${RELAY_CONNS:-40}
SENDERS=${RELAY_SENDERS:-$((CONNS / 2))}
SIZE=${RELAY_SIZE:-256}
DURATION=${RELAY_DURATION:-5}
WINDOW=${RELAY_WINDOW:-16}
THREADS=${RELAY_THREADS:-1}
WORKERS=${RELAY_WORKERS:-1}
PEERS=${RELAY_PEERS:-"parley mosquitto nats nats-js"}
OUT=$BUILD/bench-results
PROG=run-relay
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_require
mkdir -p "$OUT"
bench_workdir "$BUILD/relay-bench.XXXXXX"

has_peer() { "$BENCH" relay --peer "$1" --url 127.0.0.1:1 --connections 2 --duration 0.1 2>&1 | grep -q "built without" && return 1; return 0; }

LOAD_BEFORE=$(bench_loadavg)
declare -A URL PID SKIP
echo "run-relay: starting parleyd" >&2
"$PARLEYD" --port 0 --workers "$WORKERS" --data-dir "$WORK/parleyd" --port-file "$WORK/parleyd.port" \
	--log-level warn >"$WORK/parleyd.log" 2>&1 &
PIDS+=($!)
PID[parley]=$!
URL[parley]="ws://127.0.0.1:$(wait_port "$WORK/parleyd.port" || die "parleyd did not start: $(cat "$WORK/parleyd.log")")/v1/websocket"

if [[ " $PEERS " == *" mosquitto "* ]]; then
	if ! command -v mosquitto >/dev/null; then SKIP[mosquitto]="mosquitto not installed"
	elif ! has_peer mosquitto; then SKIP[mosquitto]="parley-bench built without libmosquitto"
	else
		bench_start_mosquitto "$WORK/mosquitto"
		PID[mosquitto]=$MQ_PID
		URL[mosquitto]="127.0.0.1:$MQ_PORT"
	fi
fi
if [[ " $PEERS " == *" nats"* ]]; then
	if ! command -v nats-server >/dev/null; then SKIP[nats]="nats-server not installed"; SKIP[nats-js]=${SKIP[nats]}
	elif ! has_peer nats; then SKIP[nats]="parley-bench built without libnats"; SKIP[nats-js]=${SKIP[nats]}
	else
		mkdir -p "$WORK/nats"
		nats-server -a 127.0.0.1 -p -1 -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
		PIDS+=($!)
		PID[nats]=$!
		PID[nats-js]=$!
		NATS_PORT=$(wait_port "$WORK/nats.log") || die "nats-server did not start: $(cat "$WORK/nats.log")"
		URL[nats]="127.0.0.1:$NATS_PORT"
		URL[nats-js]=${URL[nats]}
	fi
fi

# run PEER NAME ARGS...: one parley-bench relay run, JSON in $OUT/relay-NAME-PEER.json. Exit status 2
# (ran, with errors) still leaves its JSON; the table shows the errors.
run() {
	local peer=$1 name=$2 rc=0
	shift 2
	echo "run-relay: $peer, $name" >&2
	"$BENCH" relay --peer "$peer" --url "${URL[$peer]}" --connections "$CONNS" --senders "$SENDERS" \
		--size "$SIZE" --duration "$DURATION" --threads "$THREADS" --window "$WINDOW" \
		--server-pid "${PID[$peer]}" --json "$@" >"$OUT/relay-$name-$peer.json" || rc=$?
	[ "$rc" -le 2 ] || echo "run-relay: parley-bench failed ($rc) for $peer $name" >&2
	sleep 1
}
ACTIVE=()
for p in $PEERS; do
	[ -n "${SKIP[$p]:-}" ] && { echo "run-relay: skipping $p: ${SKIP[$p]}" >&2; continue; }
	[ -n "${URL[$p]:-}" ] || { echo "run-relay: unknown peer $p" >&2; continue; }
	ACTIVE+=("$p")
done
for p in "${ACTIVE[@]}"; do run "$p" max --max; done
RATE=${RELAY_RATE:-$(python3 -c 'import json,sys
try: print(max(1, int(json.load(open(sys.argv[1]))["acked_per_s"] / 2)))
except Exception: print(0)' "$OUT/relay-max-parley.json")}
if [ "$RATE" -gt 0 ]; then
	for p in "${ACTIVE[@]}"; do run "$p" rate --rate "$RATE"; done
else
	echo "run-relay: no parleyd maximum to halve: latency runs skipped" >&2
fi
LOAD_AFTER=$(bench_loadavg)
declare -A RSS
for p in "${ACTIVE[@]}"; do RSS[$p]=$(awk '/VmRSS/ {print $2}' "/proc/${PID[$p]}/status" 2>/dev/null || echo "?"); done

COMMIT=$(bench_commit server lib proto)
CPU=$(bench_cpu)
MQ_V=$( (mosquitto -h 2>/dev/null || true) | sed -n "s/^mosquitto version //p" | head -1)
NATS_V=$( (nats-server --version 2>/dev/null || true) | sed "s/^nats-server: //")
SKIPPED=""
for p in "${!SKIP[@]}"; do SKIPPED="$SKIPPED $p (${SKIP[$p]});"; done

python3 - "$OUT" "$RATE" "${ACTIVE[*]}" <<EOF
import json, sys
out, rate, peers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def rd(name, p):
    try:
        return json.load(open('%s/relay-%s-%s.json' % (out, name, p)))
    except Exception:
        return None
label = {'parley': 'parleyd (durable, SQLite)', 'mosquitto': 'mosquitto QoS 1 + persistence',
         'nats': 'NATS core (no durability)', 'nats-js': 'NATS JetStream (file)'}
f0 = lambda x: '–' if x is None else '{:,.0f}'.format(x)
def lat(r, k):
    if not r or not r[k]['count']: return '–'
    l = r[k]
    return '%.0f / %.0f / %.0f / %.0f' % (l['p50'], l['p99'], l['p999'], l['max'])
def note(r):
    if not r: return 'no result'
    bad = []
    for k, t in (('connect_failed', 'connects failed'), ('errors', 'errors'), ('lost', 'lost'),
                 ('duplicates', 'duplicates'), ('unsettled', 'unsettled'), ('skipped', 'skipped'),
                 ('conns_lost', 'connections lost')):
        if r.get(k): bad.append('%d %s' % (r[k], t))
    if r.get('stop_reason'): bad.append('stopped after %.1f s: %s' % (r['send_s'], r['stop_reason']))
    if bad and r.get('first_error'): bad.append('first: ' + r['first_error'])
    return ', '.join(bad)
print('Date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  ')
print('Commit: $COMMIT  ')
print('Machine: $(nproc) cores ($CPU), Linux $(uname -r); mosquitto $MQ_V, nats-server $NATS_V  ')
print('Load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER  ')
print('Workload: $CONNS connections, $SENDERS senders (each to one receiver), $SIZE-byte messages, ${DURATION} s per run; '
      '(a) closed loop, window $WINDOW per sender; (b) open loop at %s msg/s (half of parleyd\'s (a)); parleyd --workers $WORKERS.' % f0(rate))
if '$SKIPPED'.strip(): print('Skipped:$SKIPPED')
print()
for name, title in (('max', '(a) maximum throughput, closed loop'), ('rate', '(b) latency at %s msg/s, open loop' % f0(rate))):
    print('**%s**' % title)
    print()
    print('| peer | acked/s | delivered/s | ack µs p50 / p99 / p99.9 / max | end-to-end µs p50 / p99 / p99.9 / max | CPU % server, client | notes |')
    print('|---|---:|---:|---:|---:|---|---|')
    for p in peers:
        r = rd(name, p)
        print('| %s | %s | %s | %s | %s | %s | %s |' % (label.get(p, p), f0(r and r['acked_per_s']), f0(r and r['delivered_per_s']),
              lat(r, 'ack_us'), lat(r, 'e2e_us'), ('%s, %s' % (r['server_cpu_pct'], r['client_cpu_pct'])) if r else '–', note(r)))
    print()
pm, pr = rd('max', 'parley'), rd('rate', 'parley')
print('| ratio parleyd / peer | max acked/s (higher is better for parleyd) | p99 ack latency at the (b) rate (lower is better for parleyd) |')
print('|---|---:|---:|')
for p in peers:
    if p == 'parley': continue
    m, r = rd('max', p), rd('rate', p)
    t = '%.2f' % (pm['acked_per_s'] / m['acked_per_s']) if pm and m and m['acked_per_s'] else '–'
    l = '%.2f' % (pr['ack_us']['p99'] / r['ack_us']['p99']) if pr and r and r['ack_us']['count'] and pr['ack_us']['count'] and r['ack_us']['p99'] else '–'
    print('| parleyd / %s | %s | %s |' % (p, t, l))
print()
print('Server RSS after the runs (kB): ' + ', '.join('%s %s' % (p, v) for p, v in (('parleyd', '${RSS[parley]:-?}'), ('mosquitto', '${RSS[mosquitto]:-?}'), ('nats-server', '${RSS[nats]:-?}'))))
EOF
