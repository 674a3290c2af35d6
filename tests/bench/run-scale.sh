#!/usr/bin/env bash
# Scale-out benchmark (issue 12): parleyd on PostgreSQL, one to three nodes linked by NATS, in ONE run:
#   (a) relay maximum throughput, closed loop, the same workload on parleyd over SQLite, parleyd over
#       PostgreSQL (one node, no bus) and mosquitto (QoS 1, persistence on, as run-relay.sh starts it);
#   (b) parleyd on PostgreSQL with 1, 2 and 3 nodes sharing one database and one nats-server: the
#       maximum (closed loop) and the delivery latency in open loop at half of the 1-node maximum,
#       every sender's receiver on ANOTHER node from 2 nodes on (parley-bench relay --cross-node: the
#       end-to-end latency is then sender's node -> PostgreSQL -> NATS wake-up -> receiver's node);
#   (c) for every PostgreSQL run, the database's work per delivered message: statements and round trips
#       (pg_stat_statements, transaction control included), WAL bytes (pg_stat_wal and the WAL position);
#   (d) idle authenticated WebSockets held by three nodes, as many as the per-process open-file limit
#       allows: per node the descriptors, the RSS and the bytes per connection.
# Writes the JSON of every run, the PostgreSQL figures (pg-RUN.json), meta.json, the servers' logs and
# report.md (tests/bench/scale-report.py, also printed on stdout) into SCALE_OUT.
#
#   tests/bench/run-scale.sh BUILD_DIR
#   SCALE_OUT=bench-results/$(date +%F)-scale tests/bench/run-scale.sh build      # a run of record
#
# Builds nothing. Needs PostgreSQL 15 with pg_stat_statements (tests/tools/pg.sh starts a throw-away
# cluster with it loaded), nats-server (tests/tools/nats.sh), mosquitto, psql, ss. Each PostgreSQL run
# gets a fresh database and fresh parleyd nodes; statistics are reset once every connection of the run
# is set up (parley-bench relay --before-send), so registrations and key uploads are not counted per
# message, and read after the nodes have exited (a backend flushes its WAL statistics when it ends).
# Everything listens on 127.0.0.1; everything started is stopped on exit, failure or Ctrl-C; the data
# directories (PostgreSQL's included) are under BUILD_DIR, on a disk, not in /tmp, which may be tmpfs.
# A part whose prerequisite is missing fails the run with the reason (a parleyd that does not connect to
# the PostgreSQL store or the NATS bus it was given, for one): nothing is silently left out.
# Knobs (environment):
#   SCALE_CONNS=40  SCALE_SENDERS=(CONNS/2)  SCALE_SIZE=256 (bytes)  SCALE_DURATION=5 (s per run)
#   SCALE_WINDOW=16  SCALE_THREADS=1 (client loop threads)  SCALE_WORKERS=1 (parleyd --workers)
#   SCALE_NODES="1 2 3"  SCALE_RATE=(half of the 1-node maximum)  SCALE_PARTS="relay nodes idle"
#   SCALE_PG_SETTLE=11 (s between the set-up and the statistics reset, see pg-reset.sh below)
#   SCALE_IDLE=max (idle connections over the idle nodes: max = what their open-file limits allow, or a
#   number)  SCALE_IDLE_NODES=3  SCALE_FD_SLACK=200 (descriptors left free per process)
#   SCALE_OUT=BUILD_DIR/bench-results/scale-<UTC time>  MQ_AUTOSAVE=1800
set -euo pipefail

BUILD=${1:?usage: tests/bench/run-scale.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
CONNS=${SCALE_CONNS:-40}
SENDERS=${SCALE_SENDERS:-$((CONNS / 2))}
SIZE=${SCALE_SIZE:-256}
DURATION=${SCALE_DURATION:-5}
WINDOW=${SCALE_WINDOW:-16}
THREADS=${SCALE_THREADS:-1}
export BENCH_WORKERS=${SCALE_WORKERS:-1}
NODES=${SCALE_NODES:-"1 2 3"}
PARTS=${SCALE_PARTS:-"relay nodes idle"}
IDLE=${SCALE_IDLE:-max}
IDLE_NODES=${SCALE_IDLE_NODES:-3}
FD_SLACK=${SCALE_FD_SLACK:-200}
PG_SETTLE=${SCALE_PG_SETTLE:-11}
OUT=${SCALE_OUT:-$BUILD/bench-results/scale-$(date -u +%Y%m%dT%H%M%SZ)}
PROG=run-scale
PGSH=$ROOT/tests/tools/pg.sh
NATSSH=$ROOT/tests/tools/nats.sh
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_require

for p in $PARTS; do case $p in relay | nodes | idle) ;; *) die "unknown part $p (SCALE_PARTS: relay nodes idle)" ;; esac; done
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
for n in $NODES; do [[ $n =~ ^[1-9][0-9]?$ ]] || die "SCALE_NODES: $n is not a node count"; done
[[ $IDLE == max || $IDLE =~ ^[0-9]+$ ]] || die "SCALE_IDLE: max or a number, not $IDLE"
[ -x "$PGSH" ] && [ -x "$NATSSH" ] || die "tests/tools/pg.sh and nats.sh missing (merge wip-tinfra)"
command -v psql >/dev/null || die "psql not installed (postgresql-client)"
command -v ss >/dev/null || die "ss not installed (iproute2)"
if has_part relay; then command -v mosquitto >/dev/null || die "mosquitto not installed (make deps-bench)"; fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bench_workdir "$BUILD/scale-bench.XXXXXX"
# PostgreSQL runs as the user postgres when we are root (pg.sh): it must reach its directory in here
chmod 0711 "$WORK"
trap 'scale_cleanup' EXIT
scale_cleanup() {
	local rc=$?
	local p
	# the clients and the nodes (in the order started), then the database and the bus
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
	[ ! -d "$WORK/nats" ] || "$NATSSH" stop "$WORK/nats" >/dev/null 2>&1 || true
	[ ! -d "$WORK/pg" ] || "$PGSH" stop "$WORK/pg" >/dev/null 2>&1 || true
	rm -rf "$WORK"
	exit "$rc"
}

LOAD_BEFORE=$(bench_loadavg)
echo "$PROG: starting PostgreSQL and nats-server" >&2
rc=0
"$PGSH" start "$WORK/pg" >/dev/null 2>"$WORK/pg.err" || rc=$?
[ "$rc" = 0 ] || die "PostgreSQL did not start ($([ "$rc" = 77 ] && echo "not installed: make deps-test" || tail -3 "$WORK/pg.err"))"
PG_URL=$(cat "$WORK/pg/url")
PG_PORT=$(cat "$WORK/pg/port")
rc=0
"$NATSSH" start "$WORK/nats" >/dev/null 2>"$WORK/nats.err" || rc=$?
[ "$rc" = 0 ] || die "nats-server did not start ($([ "$rc" = 77 ] && echo "not installed: make deps-bench" || tail -3 "$WORK/nats.err"))"
NATS_URL=$(cat "$WORK/nats/url")
NATS_PORT=$(cat "$WORK/nats/port")

sql() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -At "$PG_URL" "$@"; }
sql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null ||
	die "pg_stat_statements cannot be created (postgresql-contrib, shared_preload_libraries)"
[ "$(sql -c "SHOW pg_stat_statements.track_utility")" = on ] ||
	die "pg_stat_statements.track_utility is off: BEGIN/SAVEPOINT/RELEASE/COMMIT would not be counted"
# The statistics reset, run by parley-bench once every connection is set up (--before-send): the
# statements and WAL counters, and the WAL position as a cross-check of the WAL bytes. A backend reports
# its WAL counters when a transaction ends at least 1 s after its last report, or after 10 s idle: what
# the set-up wrote (the schema, the registrations) would be reported after the reset and counted per
# message. So the reset waits PG_SETTLE s first, by which time every backend has reported.
cat >"$WORK/pg-reset.sh" <<EOF
#!/bin/sh
set -e
sleep $PG_SETTLE
psql -X -q -v ON_ERROR_STOP=1 -At '$PG_URL' -c "SELECT pg_stat_statements_reset(), pg_stat_reset_shared('wal')" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -At '$PG_URL' -c "SELECT pg_current_wal_insert_lsn()" >'$WORK/lsn0'
EOF
chmod 0700 "$WORK/pg-reset.sh"

declare -A RSS
NODE_PIDS=() NODE_URLS=()
# start_nodes NAME K [bus]: K parleyd nodes on a fresh database scale_NAME (one after the other: the first
# creates the schema), each with its own data directory and port; with "bus" they are linked by NATS.
# Fails unless every node holds a connection to PostgreSQL (and to NATS with the bus).
start_nodes() {
	local name=$1 k=$2 bus=${3:-} i args pg nats
	DB=scale_${name//-/_}
	sql -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
	STORE_URL=${PG_URL%/*}/$DB
	NODE_PIDS=() NODE_URLS=()
	for i in $(seq "$k"); do
		args=(--store "$STORE_URL")
		[ -z "$bus" ] || args+=(--bus "$NATS_URL")
		# node 1's OTP key: the nodes of one database share one, or they refuse to start
		if [ "$i" -gt 1 ]; then
			mkdir -p -m 0700 "$WORK/$name-node$i"
			cp -p "$WORK/$name-node1/auth_otp.key" "$WORK/$name-node$i/auth_otp.key"
		fi
		bench_start_parleyd "$name-node$i" "${args[@]}"
		NODE_PIDS+=("$PD_PID") NODE_URLS+=("$PD_URL")
	done
	for i in $(seq 0 $((k - 1))); do
		for _ in $(seq 50); do
			pg=$(bench_tcp_peers "${NODE_PIDS[$i]}" "$PG_PORT")
			nats=$(bench_tcp_peers "${NODE_PIDS[$i]}" "$NATS_PORT")
			[ "$pg" -gt 0 ] && { [ -z "$bus" ] || [ "$nats" -gt 0 ]; } && break
			sleep 0.1
		done
		[ "$pg" -gt 0 ] || die "parleyd $name-node$((i + 1)) holds no connection to PostgreSQL (--store $PG_PORT): this build has no working PostgreSQL store (wip-pga, wip-pgs); log: $(tail -3 "$WORK/$name-node$((i + 1)).log")"
		[ -z "$bus" ] || [ "$nats" -gt 0 ] || die "parleyd $name-node$((i + 1)) holds no connection to nats-server (--bus): this build has no cluster bus (wip-clus); log: $(tail -3 "$WORK/$name-node$((i + 1)).log")"
	done
}
# stop_nodes NAME: SIGTERM every node of the run, keep their logs; the database is dropped afterwards
# (read_pg reads it first).
stop_nodes() {
	local p i=1
	for p in "${NODE_PIDS[@]}"; do
		RSS[$1-node$i]=$(bench_proc_mem "$p" | cut -d' ' -f1)
		bench_stop_pid "$p"
		cp "$WORK/$1-node$i.log" "$OUT/parleyd-$1-node$i.log"
		i=$((i + 1))
	done
}
# read_pg NAME: the statistics since the reset of the run, into OUT/pg-NAME.json, then drops its database.
read_pg() {
	[ -s "$WORK/lsn0" ] || die "the statistics of run $1 were never reset (no --before-send?)"
	sql -v db="$DB" -v lsn0="$(cat "$WORK/lsn0")" >"$OUT/pg-$1.json" <<'SQL'
WITH s AS (
  SELECT query, calls, rows, total_exec_time, toplevel,
         query ~* '^\s*(begin|start\s+transaction|commit|end|rollback|savepoint|release)\M' AS txctl
  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = :'db'))
SELECT json_build_object(
  'database', :'db',
  'statements', (SELECT coalesce(sum(calls), 0) FROM s WHERE toplevel AND NOT txctl),
  'tx_control', (SELECT coalesce(sum(calls), 0) FROM s WHERE toplevel AND txctl),
  'nested', (SELECT coalesce(sum(calls), 0) FROM s WHERE NOT toplevel),
  'exec_ms', (SELECT round(coalesce(sum(total_exec_time), 0)::numeric, 1) FROM s WHERE toplevel),
  'dealloc', (SELECT dealloc FROM pg_stat_statements_info),
  'wal', (SELECT row_to_json(w) FROM (SELECT wal_records, wal_fpi, wal_bytes, wal_buffers_full, wal_write,
                                             wal_sync, stats_reset FROM pg_stat_wal) w),
  'wal_lsn_bytes', pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0'),
  'top', (SELECT coalesce(json_agg(t), '[]') FROM (
            SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query, calls, rows, toplevel,
                   round(total_exec_time::numeric, 1) AS total_ms
            FROM s ORDER BY calls DESC LIMIT 20) t))
SQL
	rm -f "$WORK/lsn0"
	sql -c "DROP DATABASE IF EXISTS $DB" >/dev/null
}

# relay FILE URLS PIDS ARGS...: one parley-bench relay run into OUT/FILE.json. Exit status 2 (ran, with
# errors) still leaves its JSON and the report shows the errors; anything else fails the run.
relay() {
	local file=$1 urls=$2 pids=$3 rc=0
	shift 3
	echo "$PROG: $file $*" >&2
	"$BENCH" relay --url "$urls" --server-pid "$pids" --connections "$CONNS" --senders "$SENDERS" --size "$SIZE" \
		--duration "$DURATION" --threads "$THREADS" --window "$WINDOW" --json "$@" >"$OUT/$file.json" || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 2 ] || die "parley-bench failed ($rc) for $file: see $OUT/$file.json"
}
join() { local IFS=,; echo "$*"; }
# pg_relay NAME K [bus] ARGS...: fresh database and K nodes, one relay run with the statistics reset
# once its connections are up, nodes stopped, statistics read.
pg_relay() {
	local name=$1 k=$2 bus=$3
	shift 3
	start_nodes "$name" "$k" "$bus"
	relay "$name" "$(join "${NODE_URLS[@]}")" "$(join "${NODE_PIDS[@]}")" --before-send "$WORK/pg-reset.sh" "$@"
	stop_nodes "$name"
	read_pg "$name"
}
acked_half() { python3 -c 'import json,sys; print(max(1, int(json.load(open(sys.argv[1]))["acked_per_s"] / 2)))' "$1"; }

# (a) the same workload on SQLite, PostgreSQL (one node, no bus) and mosquitto
if has_part relay; then
	bench_start_parleyd max-sqlite
	relay max-sqlite "$PD_URL" "$PD_PID" --max
	RSS[max-sqlite]=$(bench_proc_mem "$PD_PID" | cut -d' ' -f1)
	bench_stop_pid "$PD_PID"
	cp "$WORK/max-sqlite.log" "$OUT/parleyd-max-sqlite.log"
	pg_relay max-postgres 1 "" --max
	bench_start_mosquitto "$WORK/mosquitto"
	relay max-mosquitto "127.0.0.1:$MQ_PORT" "$MQ_PID" --peer mosquitto --max
	RSS[max-mosquitto]=$(bench_proc_mem "$MQ_PID" | cut -d' ' -f1)
	bench_stop_mosquitto "$OUT/mosquitto.log"
fi

# (b) 1, 2, 3 nodes: maximum, then the latency at one rate for all (half of the 1-node maximum)
if has_part nodes; then
	for k in $NODES; do
		cross=()
		[ "$k" -lt 2 ] || cross=(--cross-node)
		pg_relay "max-n$k" "$k" bus --max "${cross[@]}"
		if [ -z "${SCALE_RATE:-}" ]; then
			if [ -f "$OUT/max-n1.json" ]; then SCALE_RATE=$(acked_half "$OUT/max-n1.json")
			elif [ -f "$OUT/max-postgres.json" ]; then SCALE_RATE=$(acked_half "$OUT/max-postgres.json")
			else SCALE_RATE=$(acked_half "$OUT/max-n$k.json"); fi
		fi
		pg_relay "half-n$k" "$k" bus --rate "$SCALE_RATE" "${cross[@]}"
	done
fi

# (d) idle authenticated connections over IDLE_NODES nodes, up to what the open-file limits allow
IDLE_TOTAL=0 IDLE_CLIENTS=0
if has_part idle; then
	start_nodes idle "$IDLE_NODES" bus
	sleep 1
	for i in $(seq 0 $((IDLE_NODES - 1))); do bench_proc_mem "${NODE_PIDS[$i]}" >"$WORK/idle-before-$i"; done
	# the nodes' limit: every node gets the same share, so the smallest limit decides
	node_cap=$(for i in $(seq 0 $((IDLE_NODES - 1))); do cut -d' ' -f3 "$WORK/idle-before-$i"; done | sort -n | head -1)
	client_cap=$(($(ulimit -Hn) - FD_SLACK))
	if [ "$IDLE" = max ]; then IDLE_TOTAL=$(((node_cap - FD_SLACK) * IDLE_NODES)); else IDLE_TOTAL=$IDLE; fi
	[ "$IDLE_TOTAL" -ge "$IDLE_NODES" ] || die "SCALE_IDLE=$IDLE_TOTAL: fewer connections than nodes"
	# each client process is capped too: as many processes as needed, each spreading round-robin; all but
	# the last hold a multiple of the nodes, so the nodes' shares stay equal
	per_client=$((client_cap - client_cap % IDLE_NODES))
	[ "$per_client" -gt 0 ] || die "SCALE_FD_SLACK=$FD_SLACK leaves a client no connection"
	IDLE_CLIENTS=$(((IDLE_TOTAL + per_client - 1) / per_client))
	echo "$PROG: $IDLE_TOTAL idle connections over $IDLE_NODES nodes from $IDLE_CLIENTS client process(es)" >&2
	CLIENT_PIDS=()
	left=$IDLE_TOTAL
	for c in $(seq "$IDLE_CLIENTS"); do
		n=$((left < per_client ? left : per_client))
		left=$((left - n))
		"$BENCH" relay --hold --url "$(join "${NODE_URLS[@]}")" --connections "$n" --duration 3600 \
			--connect-timeout 600 --connect-batch 256 --ready-file "$WORK/idle-ready-$c" --json >"$OUT/idle-client$c.json" \
			2>"$WORK/idle-client$c.err" &
		CLIENT_PIDS+=($!)
		PIDS+=($!)
		# one after the other: a process's registrations do not compete with the next one's handshakes
		while [ ! -f "$WORK/idle-ready-$c" ]; do
			kill -0 "${CLIENT_PIDS[-1]}" 2>/dev/null ||
				die "idle client $c ended before its $n connections were up: $(tail -3 "$WORK/idle-client$c.err"; cat "$OUT/idle-client$c.json")"
			sleep 0.2
		done
	done
	sleep 2 # let the nodes settle (allocator, the last presence updates)
	for i in $(seq 0 $((IDLE_NODES - 1))); do bench_proc_mem "${NODE_PIDS[$i]}" >"$WORK/idle-after-$i"; done
	held=()
	for i in $(seq 0 $((IDLE_NODES - 1))); do
		port=${NODE_URLS[$i]#ws://127.0.0.1:}
		port=${port%%/*}
		held+=("$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)")
	done
	for p in "${CLIENT_PIDS[@]}"; do bench_stop_pid "$p"; done
	for c in $(seq "$IDLE_CLIENTS"); do
		python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["connected"]==r["connections"] and not r["conns_lost"] and not r["errors"] else 1)' \
			"$OUT/idle-client$c.json" || die "idle client $c lost or failed connections: see $OUT/idle-client$c.json"
	done
	{
		printf '{"nodes":['
		for i in $(seq 0 $((IDLE_NODES - 1))); do
			read -r rb fb lim <"$WORK/idle-before-$i"
			read -r ra fa _ <"$WORK/idle-after-$i"
			[ "$i" = 0 ] || printf ','
			printf '{"url":"%s","connections":%s,"rss_kb_before":%s,"rss_kb_after":%s,"fds_before":%s,"fds_after":%s,"fd_limit":%s}' \
				"${NODE_URLS[$i]}" "${held[$i]}" "$rb" "$ra" "$fb" "$fa" "$lim"
		done
		printf '],"total":%s,"clients":%s,"client_fd_limit":%s,"fd_slack":%s}\n' "$IDLE_TOTAL" "$IDLE_CLIENTS" "$(ulimit -Hn)" "$FD_SLACK"
	} >"$OUT/idle.json"
	stop_nodes idle
	sql -c "DROP DATABASE IF EXISTS $DB" >/dev/null
fi
LOAD_AFTER=$(bench_loadavg)

cp "$WORK/nats/log" "$OUT/nats-server.log" 2>/dev/null || true
! grep -E "\[(ERR|FTL)\]" "$OUT/nats-server.log" 2>/dev/null || die "nats-server logged errors (see $OUT/nats-server.log)"
cp "$WORK/pg/log" "$OUT/postgres.log" 2>/dev/null || true
MQ_V=$( (mosquitto -h 2>/dev/null || true) | sed -n "s/^mosquitto version //p" | head -1)
NATS_V=$( (nats-server --version 2>/dev/null || true) | sed "s/^nats-server: //")
PG_V=$(sql -c "SHOW server_version")
cat >"$OUT/meta.json" <<EOF
{"date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","commit":"$(bench_commit server lib proto tools/bench)",
 "machine":"$(nproc) cores ($(bench_cpu)), Linux $(uname -r)","mosquitto":"$MQ_V","nats_server":"$NATS_V",
 "postgres":"$PG_V","load_before":"$LOAD_BEFORE","load_after":"$LOAD_AFTER","connections":$CONNS,"senders":$SENDERS,
 "size":$SIZE,"duration":$DURATION,"window":$WINDOW,"threads":$THREADS,"workers":$BENCH_WORKERS,
 "nodes":"$NODES","parts":"$PARTS","rate":${SCALE_RATE:-0},"mq_autosave":${MQ_AUTOSAVE:-1800},
 "idle_total":$IDLE_TOTAL,"idle_clients":$IDLE_CLIENTS,
 "rss_kb":{$(for k in "${!RSS[@]}"; do printf '"%s":"%s",' "$k" "${RSS[$k]}"; done | sed 's/,$//')}}
EOF
python3 "$HERE/scale-report.py" "$OUT" | tee "$OUT/report.md"
echo "$PROG: results in $OUT" >&2
# A run that lost, duplicated or refused messages (or connections) fails the whole run, after the report
# that shows which: a figure measured with errors is not a result.
python3 - "$OUT" <<'PY' || die "some runs had errors (see the notes in $OUT/report.md)"
import glob, json, os, sys
bad = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], '*.json'))):
    r = json.load(open(f))
    if r.get('command') != 'relay':
        continue
    for k in ('errors', 'lost', 'duplicates', 'corrupt', 'foreign', 'unsettled', 'conns_lost', 'connect_failed'):
        if r.get(k):
            bad.append('%s: %s %d' % (os.path.basename(f), k, r[k]))
print('\n'.join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
