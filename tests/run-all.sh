#!/usr/bin/env bash
# `make test`: every test in the normal build, the integration suite again on PostgreSQL (normal build
# only: tests/run-pg.sh), then everything under ASan+UBSan, then a short fuzz run.
# Ends with one closing line: "N passed, N failed" summed over all four stages.
set -uo pipefail
BUILD=${1:-build} ASAN=${2:-build-asan} FUZZ=${3:-build-fuzz} FUZZ_SECONDS=${4:-15} JOBS=${5:-2}
cd "$(dirname "$0")/.."

passed=0 failed=0
count() { # count results in a meson testlog (BUILD [LOGBASE])
	local log=$1/meson-logs/${2:-testlog}.json p f
	[ -f "$log" ] || { failed=$((failed + 1)); return; }
	p=$(grep -c '"result": "OK"' "$log" || true)
	f=$(grep -vc '"result": "\(OK\|SKIP\|EXPECTEDFAIL\)"' "$log" || true)
	passed=$((passed + p)); failed=$((failed + f))
}

stage() { echo; echo "=== $* ==="; }

ulimit -n 65536 2>/dev/null || true
# libuv/OpenSSL keep a few reachable allocations until exit; leaks we care about are checked in tests.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

stage "tests (build: $BUILD)"
meson test -C "$BUILD" --no-suite integration-pg --print-errorlogs --num-processes "$JOBS"
count "$BUILD"

stage "integration tests on PostgreSQL (build: $BUILD)"
rm -f "$BUILD/meson-logs/testlog-pg.json"
tests/run-pg.sh "$BUILD" "$JOBS"
# 77: no PostgreSQL here. A failure, not a skip: CI installs it (make deps), so its absence is a bug.
if [ $? = 77 ]; then echo "PostgreSQL 15 is not installed"; failed=$((failed + 1)); else count "$BUILD" testlog-pg; fi

stage "tests under ASan+UBSan (build: $ASAN)"
if [ ! -f "$ASAN/build.ninja" ]; then
	meson setup "$ASAN" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug >/dev/null || failed=$((failed + 1))
fi
if ninja -C "$ASAN" -j"$JOBS" >/dev/null; then
	meson test -C "$ASAN" --no-suite integration-pg --print-errorlogs --num-processes "$JOBS" --timeout-multiplier 3
	count "$ASAN"
else
	echo "ASan build failed"; failed=$((failed + 1))
fi

stage "fuzz smoke run (${FUZZ_SECONDS}s per harness, build: $FUZZ)"
if [ ! -f "$FUZZ/build.ninja" ]; then
	CC=clang meson setup "$FUZZ" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || failed=$((failed + 1))
fi
# only the harnesses (and what they link) are built in the fuzz tree
fuzz_targets=$(ninja -C "$FUZZ" -t targets all 2>/dev/null | grep -E '^tests/fuzz/fuzz-[^:/]+:' | cut -d: -f1 | sort -u)
if [ -n "$fuzz_targets" ] && ninja -C "$FUZZ" -j"$JOBS" $fuzz_targets >/dev/null; then
	out=$(tests/fuzz/run.sh "$FUZZ" "$FUZZ_SECONDS")
	echo "$out"
	fp=$(echo "$out" | grep -c '^fuzz ok' || true)
	ff=$(echo "$out" | grep -c '^fuzz FAIL' || true)
	passed=$((passed + fp)); failed=$((failed + ff))
else
	echo "fuzz build failed"; failed=$((failed + 1))
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
