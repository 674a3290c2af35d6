# tests/bench/lib.sh: helpers shared by the run-*.sh benchmark scripts. Sourced, not run: the
# sourcing script sets PROG (its name, the prefix of every message) and BUILD (the build directory,
# absolute) first, then calls bench_require and bench_workdir.

die() { echo "$PROG: $*" >&2; exit 1; }

BENCH=$BUILD/tools/bench/parley-bench
# BENCH_PARLEYD: another parleyd (a test's wrapper that breaks it on purpose)
PARLEYD=${BENCH_PARLEYD:-$BUILD/server/parleyd}
# Every benchmark client connects from 127.0.0.1, and the runs open up to 10,000 connections: lift the
# per-address cap (default 256). An environment variable, so older parleyds (run-compare's "before")
# that do not know the option simply ignore it.
export PARLEYD_MAX_CONNECTIONS_PER_ADDRESS=0
# A benchmark registers its clients from one address and measures the relay: parleyd's registration
# limit and prekey budget (security item 4) are off for every parleyd started from here (as
# configuration variables, so an older parleyd being compared simply ignores them).
export PARLEYD_REGISTER_RATE_BURST=0 PARLEYD_PREKEY_BUDGET_BURST=0
# The idle connections (--idle, start --idle-clients) and the ws ping clients stand in for idle and busy
# devices but never authenticate: parleyd's auth deadline (security item 6, 10 s) would close them in
# the middle of a run, so it is off here.
export PARLEYD_AUTH_TIMEOUT_MS=0

# bench_require: the two programs every run needs; this builds nothing, so say how to.
bench_require() {
	[ -x "$BENCH" ] || die "$BENCH not built (ninja -C $BUILD)"
	[ -x "$PARLEYD" ] || die "$PARLEYD not built (ninja -C $BUILD)"
}

# bench_workdir TEMPLATE: WORK=$(mktemp -d TEMPLATE), and everything started (pids appended to PIDS)
# is stopped and WORK removed on exit, failure or Ctrl-C.
PIDS=()
bench_workdir() {
	WORK=$(mktemp -d "$1")
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}
bench_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}

# wait_port FILE: the port from a "listening on HOST:PORT" line (parleyd, ws-echo.js), nats-server's
# "Listening for client connections on HOST:PORT", or a bare port file; 20 s at most.
wait_port() {
	local i port
	for i in $(seq 200); do
		port=$(sed -n 's/.*[Ll]istening on [^ ]*:\([0-9][0-9]*\).*/\1/p; s/.*client connections on [^ ]*:\([0-9][0-9]*\).*/\1/p; s/^\([0-9][0-9]*\)$/\1/p' "$1" 2>/dev/null | head -1)
		[ -n "$port" ] && { echo "$port"; return 0; }
		sleep 0.1
	done
	return 1
}

# The report header's facts: load average now, the commit (marked when PATHS... differ from it; all
# of the tree without PATHS) and the CPU model.
bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
bench_commit() {
	local c
	c=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	git -C "$ROOT" diff --quiet HEAD -- "$@" 2>/dev/null || c="$c (+ uncommitted changes)"
	echo "$c"
}
bench_cpu() { sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1; }

# A free loopback TCP port (for mosquitto, which has no "port 0").
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_tcp() { # PORT: until something accepts on 127.0.0.1:PORT, 20 s at most
	local i
	for i in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# bench_start_mosquitto DIR: mosquitto on a free loopback port with persistence on, no queue/in-flight
# caps (QoS 1 messages are never dropped by the broker) and TCP_NODELAY as parleyd and the clients use
# it. Sets MQ_PORT, MQ_PID, MQ_LOG and MQ_AUTOSAVE. Durability: mosquitto keeps messages in memory and
# writes its whole database every MQ_AUTOSAVE seconds (autosave_interval, 1800 = its default) and at
# exit; nothing is on disk when it sends a PUBACK. Started as root, mosquitto drops to the user
# "mosquitto", which cannot write into our root-owned 0700 directory (its save at exit then fails with
# "Error: Permission denied."): as root it is told to stay root. bench_stop_mosquitto checks the save.
bench_start_mosquitto() {
	local dir=$1
	MQ_PORT=$(free_port)
	MQ_AUTOSAVE=${MQ_AUTOSAVE:-1800}
	MQ_LOG=$dir.log
	MQ_DIR=$dir
	mkdir -p "$dir"
	{
		echo "listener $MQ_PORT 127.0.0.1"
		[ "$(id -u)" != 0 ] || echo "user root"
		printf '%s\n' "allow_anonymous true" "persistence true" "persistence_location $dir/" \
			"persistence_file mosquitto.db" "autosave_interval $MQ_AUTOSAVE" "max_queued_messages 0" \
			"max_inflight_messages 0" "set_tcp_nodelay true" "log_dest stderr" "log_type error" \
			"log_type warning"
	} >"$dir/mosquitto.conf"
	mosquitto -c "$dir/mosquitto.conf" >"$MQ_LOG" 2>&1 &
	PIDS+=($!)
	MQ_PID=$!
	wait_tcp "$MQ_PORT" || die "mosquitto did not start: $(cat "$MQ_LOG")"
}
# bench_stop_mosquitto [KEEP_LOG]: SIGTERM, wait for the exit (it saves its database then), and fail
# the run if it logged an error or wrote no database: persistence that silently does not work would
# make the durability column a lie. The log is copied to KEEP_LOG first when given.
bench_stop_mosquitto() {
	kill -TERM "$MQ_PID" 2>/dev/null || true
	wait "$MQ_PID" 2>/dev/null || true
	[ -z "${1:-}" ] || cp "$MQ_LOG" "$1"
	if grep -qi "error" "$MQ_LOG"; then
		die "mosquitto logged an error (persistence not working?): $(grep -i error "$MQ_LOG" | head -3)"
	fi
	[ -s "$MQ_DIR/mosquitto.db" ] || die "mosquitto wrote no database at exit ($MQ_DIR/mosquitto.db)"
}

# bench_start_parleyd NAME [ARGS...]: parleyd --port 0 (--workers BENCH_WORKERS, default 1) on the data
# directory WORK/NAME, log WORK/NAME.log; sets PD_PID and PD_URL (its WebSocket URL) and appends the pid
# to PIDS. ARGS go last (--store, --bus...). bench_stop_pid PID: SIGTERM, wait, forget it.
bench_start_parleyd() {
	local name=$1 port
	shift
	rm -f "$WORK/$name.port"
	"$PARLEYD" --port 0 --workers "${BENCH_WORKERS:-1}" --data-dir "$WORK/$name" --port-file "$WORK/$name.port" \
		--log-level warn "$@" >"$WORK/$name.log" 2>&1 &
	PD_PID=$!
	PIDS+=("$PD_PID")
	port=$(wait_port "$WORK/$name.port") || die "parleyd $name did not start: $(tail -5 "$WORK/$name.log")"
	PD_URL="ws://127.0.0.1:$port/v1/websocket"
}
bench_stop_pid() {
	local p keep=()
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# bench_tcp_peers PID PORT: how many established TCP connections process PID has to 127.0.0.1:PORT (ss
# names the owning process). Tells whether a parleyd really uses the PostgreSQL store / NATS bus it was
# given, rather than trusting that an option was understood.
bench_tcp_peers() {
	ss -Htnp state established "( dport = :$2 )" 2>/dev/null | grep -c "pid=$1," || true
}

# bench_proc_mem PID: "RSS_KB FDS FD_LIMIT" of a running process (VmRSS, open descriptors, soft
# RLIMIT_NOFILE).
bench_proc_mem() {
	local rss fds lim
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
	fds=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	lim=$(awk '/^Max open files/ {print $4}' "/proc/$1/limits" 2>/dev/null || echo 0)
	echo "${rss:-0} $fds ${lim:-0}"
}
