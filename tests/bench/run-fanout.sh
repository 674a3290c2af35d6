#!/usr/bin/env bash
# Fan-out benchmark (issue 10): one message to N devices, three ways side by side in one run, on one
# parleyd and one mosquitto started here (parley-bench fanout, docs/benchmarks.md "Group fan-out"):
#   group      parleyd's group server: one ThreadSend to a thread whose member devices are the N receivers
#   pairwise   the same fan-out done by the client: N SendMessage requests, one per recipient account
#   mqtt-qos1  mosquitto (persistence on): one QoS 1 PUBLISH to a topic N subscribers hold at QoS 1
# Twice: window 1 (one message at a time: the fan-out latency) and window FANOUT_WINDOW (messages whose
# fan-out is not complete yet: throughput). Writes the JSON of each run, the servers' logs and
# report.md (also printed) into FANOUT_OUT.
#
#   tests/bench/run-fanout.sh BUILD_DIR
# Knobs: FANOUT_RECEIVERS=100  FANOUT_MESSAGES=500  FANOUT_SIZE=200  FANOUT_WINDOW=16
#   FANOUT_OUT=BUILD_DIR/bench-results/fanout-<UTC time>
# parleyd's per-account send rate (send_rate_burst) is off here: the pairwise way sends N requests per
# message and would be refused past the default bucket (10,000 messages), which measures the limit,
# not the fan-out. Everything listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail

BUILD=${1:?usage: tests/bench/run-fanout.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
RECEIVERS=${FANOUT_RECEIVERS:-100}
MESSAGES=${FANOUT_MESSAGES:-500}
SIZE=${FANOUT_SIZE:-200}
WINDOW=${FANOUT_WINDOW:-16}
OUT=${FANOUT_OUT:-$BUILD/bench-results/fanout-$(date -u +%Y%m%dT%H%M%SZ)}
PROG=run-fanout
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_require
command -v mosquitto >/dev/null || die "mosquitto is not installed (make deps-bench)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bench_workdir "$BUILD/fanout-bench.XXXXXX"
export PARLEYD_SEND_RATE_BURST=0

LOAD_BEFORE=$(bench_loadavg)
"$PARLEYD" --port 0 --data-dir "$WORK/parleyd" --port-file "$WORK/parleyd.port" --log-level warn \
	>"$WORK/parleyd.log" 2>&1 &
PIDS+=($!)
URL="ws://127.0.0.1:$(wait_port "$WORK/parleyd.port" || die "parleyd did not start: $(cat "$WORK/parleyd.log")")/v1/websocket"
bench_start_mosquitto "$WORK/mosquitto"

run() { # WINDOW: one run of the three ways, its JSON into OUT
	local cmd=("$BENCH" fanout --url "$URL" --mqtt "127.0.0.1:$MQ_PORT" --receivers "$RECEIVERS"
		--messages "$MESSAGES" --size "$SIZE" --window "$1" --json)
	echo "$PROG: ${cmd[*]}" >&2
	"${cmd[@]}" >"$OUT/fanout-w$1.json" || die "the window $1 run failed: $(cat "$OUT/fanout-w$1.json")"
}
run 1
run "$WINDOW"
bench_stop_mosquitto "$OUT/mosquitto.log"
cp "$WORK/parleyd.log" "$OUT/parleyd.log"

python3 - "$OUT" "$RECEIVERS" "$MESSAGES" "$SIZE" "$WINDOW" "$(bench_cpu)" "$(nproc)" "$(bench_commit)" \
	"$LOAD_BEFORE" "$(bench_loadavg)" >"$OUT/report.md" <<'PY'
import json, sys
out, n, m, size, window, cpu, cores, commit, load0, load1 = sys.argv[1:]
print(f"# Group fan-out: 1 sender -> {n} devices, {m} messages of {size} bytes\n")
print(f"Machine: {cpu}, {cores} cores; commit {commit}; load average {load0} before, {load1} after.\n")
for w in ("1", window):
    r = json.load(open(f"{out}/fanout-w{w}.json"))
    print(f"Window {w} ({'one message at a time: latency' if w == '1' else 'throughput'}):\n")
    print("| way | deliveries/s | to the last device p50 / p99 (ms) | ack p50 / p99 (ms) |")
    print("|---|---:|---:|---:|")
    ways = {x["way"]: x for x in r["ways"]}
    for x in r["ways"]:
        print(f"| {x['way']} | {x['deliveries_per_s']:.0f} | {x['last_ms']['p50']:.2f} / {x['last_ms']['p99']:.2f} "
              f"| {x['ack_ms']['p50']:.2f} / {x['ack_ms']['p99']:.2f} |")
    g, p, q = ways["group"], ways["pairwise"], ways["mqtt-qos1"]
    print(f"\nRatios: group / pairwise deliveries/s {g['deliveries_per_s'] / p['deliveries_per_s']:.2f}x, "
          f"pairwise / group p50 to the last device {p['last_ms']['p50'] / g['last_ms']['p50']:.2f}x; "
          f"mqtt-qos1 / group deliveries/s {q['deliveries_per_s'] / g['deliveries_per_s']:.2f}x.\n")
PY
cat "$OUT/report.md"
echo "$PROG: results in $OUT" >&2
