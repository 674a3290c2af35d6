# tests/bench/lib.sh: helpers shared by the run-*.sh benchmark scripts. Sourced, not run: the
# sourcing script sets PROG (its name, the prefix of every message) and BUILD (the build directory,
# absolute) first, then calls bench_require and bench_workdir.

die() { echo "$PROG: $*" >&2; exit 1; }

BENCH=$BUILD/tools/bench/parley-bench
PARLEYD=$BUILD/server/parleyd

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
