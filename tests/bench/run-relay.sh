#!/usr/bin/env bash
# Relay benchmark: parleyd's durable relay side by side with mosquitto 2.0 (MQTT QoS 1, persistence
# on) and nats-server 2.9 (core NATS and JetStream with file storage), one client program for all
# (parley-bench relay: the same libuv loop thread speaks each peer's protocol), same connections,
# senders, message size, in one run:
#   (a) maximum throughput, closed loop (at most RELAY_WINDOW messages awaiting their ack per sender);
#   (b) latency, open loop at each peer's OWN half maximum (half of its (a));
#   (c) latency, open loop at one common rate every peer sustains: half of the slowest peer's (a).
# Writes the raw JSON of every run, the servers' logs, report.md (the markdown report, also printed
# on stdout) and, when gnuplot is installed, the plots (tests/bench/plot-relay.sh) into RELAY_OUT.
#
#   tests/bench/run-relay.sh BUILD_DIR
#   RELAY_OUT=bench-results/$(date +%F)-relay tests/bench/run-relay.sh build     # a run of record
#
# Builds nothing: BUILD_DIR must hold server/parleyd and tools/bench/parley-bench. A requested peer
# whose server or engine is missing FAILS the run (it is never silently left out); RELAY_PEERS says
# which to run. Everything listens on 127.0.0.1 only; everything it starts is stopped on exit, failure
# or Ctrl-C; data lives in a temporary directory on the same file system as BUILD_DIR (not /tmp, which
# may be tmpfs: fsync must cost what it costs on a disk). mosquitto is stopped with SIGTERM at the end
# and the run fails if it logged an error or wrote no database (its persistence must really work).
# Knobs (environment):
#   RELAY_CONNS=40  RELAY_SENDERS=(CONNS/2)  RELAY_SIZE=256 (bytes)  RELAY_DURATION=5 (s per run)
#   RELAY_WINDOW=16  RELAY_THREADS=1 (client loop threads)  RELAY_WORKERS=1 (parleyd)
#   RELAY_PEERS="parley mosquitto nats nats-js" (also: mosquitto-lib nats-lib nats-js-lib, the client-
#   library engines, as a cross-check)  RELAY_OUT=BUILD_DIR/bench-results/relay-<UTC time>
#   MQ_AUTOSAVE=1800 (mosquitto's autosave_interval, s)
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
OUT=${RELAY_OUT:-$BUILD/bench-results/relay-$(date -u +%Y%m%dT%H%M%SZ)}
PROG=run-relay
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_require
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bench_workdir "$BUILD/relay-bench.XXXXXX"

# Every requested peer must be runnable, or the run stops here, before anything is measured.
built_without() { "$BENCH" relay --peer "$1" --url 127.0.0.1:1 --connections 2 --duration 0.1 2>&1 | grep -q "built without"; }
need_mq=0 need_nats=0
for p in $PEERS; do
	case $p in
	parley) ;;
	mosquitto | mosquitto-lib) need_mq=1 ;;
	nats | nats-js | nats-lib | nats-js-lib) need_nats=1 ;;
	*) die "unknown peer $p (RELAY_PEERS)" ;;
	esac
	case $p in *-lib) ! built_without "$p" || die "peer $p requested, but parley-bench was built without its client library (install libmosquitto-dev / libnats-dev and reconfigure: make bench)" ;; esac
done
[ "$need_mq" = 0 ] || command -v mosquitto >/dev/null || die "peer mosquitto requested, but mosquitto is not installed (make deps-bench)"
[ "$need_nats" = 0 ] || command -v nats-server >/dev/null || die "peer nats requested, but nats-server is not installed (make deps-bench)"

LOAD_BEFORE=$(bench_loadavg)
declare -A URL PID
echo "$PROG: starting parleyd" >&2
"$PARLEYD" --port 0 --workers "$WORKERS" --data-dir "$WORK/parleyd" --port-file "$WORK/parleyd.port" \
	--log-level warn >"$WORK/parleyd.log" 2>&1 &
PIDS+=($!)
PID[parley]=$!
URL[parley]="ws://127.0.0.1:$(wait_port "$WORK/parleyd.port" || die "parleyd did not start: $(cat "$WORK/parleyd.log")")/v1/websocket"
if [ "$need_mq" = 1 ]; then
	bench_start_mosquitto "$WORK/mosquitto"
	PID[mosquitto]=$MQ_PID PID[mosquitto-lib]=$MQ_PID
	URL[mosquitto]="127.0.0.1:$MQ_PORT" URL[mosquitto-lib]="127.0.0.1:$MQ_PORT"
fi
if [ "$need_nats" = 1 ]; then
	mkdir -p "$WORK/nats"
	nats-server -a 127.0.0.1 -p -1 -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
	PIDS+=($!)
	NATS_PORT=$(wait_port "$WORK/nats.log") || die "nats-server did not start: $(cat "$WORK/nats.log")"
	for p in nats nats-js nats-lib nats-js-lib; do PID[$p]=${PIDS[-1]} URL[$p]="127.0.0.1:$NATS_PORT"; done
fi

# run PEER NAME ARGS...: one parley-bench relay run, JSON in $OUT/NAME-PEER.json. Exit status 2 (ran,
# with errors) still leaves its JSON and the report shows the errors; anything else fails the run.
run() {
	local peer=$1 name=$2 rc=0
	shift 2
	echo "$PROG: $peer, $name $*" >&2
	"$BENCH" relay --peer "$peer" --url "${URL[$peer]}" --connections "$CONNS" --senders "$SENDERS" \
		--size "$SIZE" --duration "$DURATION" --threads "$THREADS" --window "$WINDOW" \
		--server-pid "${PID[$peer]}" --json "$@" >"$OUT/$name-$peer.json" || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 2 ] || die "parley-bench failed ($rc) for $peer $name: see $OUT/$name-$peer.json"
	sleep 1
}
# half PEER...: half of each peer's (a) acked/s, one per line ("PEER RATE").
half() { python3 -c 'import json,sys
for p in sys.argv[2:]: print(p, max(1, int(json.load(open("%s/max-%s.json" % (sys.argv[1], p)))["acked_per_s"] / 2)))' "$OUT" "$@"; }

for p in $PEERS; do run "$p" max --max; done
declare -A HALF
while read -r p r; do HALF[$p]=$r; done < <(half $PEERS)
COMMON=${RELAY_RATE:-$(for p in $PEERS; do echo "${HALF[$p]}"; done | sort -n | head -1)}
for p in $PEERS; do run "$p" half --rate "${HALF[$p]}"; done
for p in $PEERS; do run "$p" common --rate "$COMMON"; done
LOAD_AFTER=$(bench_loadavg)
declare -A RSS
for p in $PEERS; do RSS[$p]=$(awk '/VmRSS/ {print $2}' "/proc/${PID[$p]}/status" 2>/dev/null || echo "?"); done

cp "$WORK/parleyd.log" "$OUT/parleyd.log"
[ "$need_mq" = 0 ] || bench_stop_mosquitto "$OUT/mosquitto.log"
if [ "$need_nats" = 1 ]; then
	cp "$WORK/nats.log" "$OUT/nats-server.log"
	! grep -E "\[(ERR|FTL)\]" "$WORK/nats.log" || die "nats-server logged errors (see $OUT/nats-server.log)"
fi

MQ_V=$( (mosquitto -h 2>/dev/null || true) | sed -n "s/^mosquitto version //p" | head -1)
NATS_V=$( (nats-server --version 2>/dev/null || true) | sed "s/^nats-server: //")
cat >"$OUT/meta.json" <<EOF
{"date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","commit":"$(bench_commit server lib proto tools/bench)",
 "machine":"$(nproc) cores ($(bench_cpu)), Linux $(uname -r)","mosquitto":"$MQ_V","nats_server":"$NATS_V",
 "load_before":"$LOAD_BEFORE","load_after":"$LOAD_AFTER","connections":$CONNS,"senders":$SENDERS,"size":$SIZE,
 "duration":$DURATION,"window":$WINDOW,"threads":$THREADS,"workers":$WORKERS,"common_rate":$COMMON,
 "mq_autosave":${MQ_AUTOSAVE:-1800},"peers":"$PEERS",
 "rss_kb":{$(for p in $PEERS; do printf '"%s":"%s",' "$p" "${RSS[$p]}"; done | sed 's/,$//')}}
EOF
python3 "$HERE/relay-report.py" "$OUT" | tee "$OUT/report.md"
if command -v gnuplot >/dev/null; then
	"$HERE/plot-relay.sh" "$OUT" >&2
else
	echo "$PROG: gnuplot not installed: no plots (make deps-bench installs it)" >&2
fi
echo "$PROG: results in $OUT" >&2
