#!/usr/bin/env bash
# Runs every libFuzzer harness in BUILD for SECONDS each; prints "fuzz ok NAME" or "fuzz FAIL NAME".
# Corpora live in tests/fuzz/corpus/NAME (seeds committed); new inputs go to a scratch copy.
set -uo pipefail
BUILD=$1 SECONDS_EACH=${2:-60}
cd "$(dirname "$0")/../.."
mkdir -p tests/fuzz/artifacts
found=0
for bin in "$BUILD"/tests/fuzz/fuzz-*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	found=1
	name=${bin##*/fuzz-}
	work=$(mktemp -d)
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
	if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
		-artifact_prefix="tests/fuzz/artifacts/$name-" "$work" >"$work.log" 2>&1; then
		echo "fuzz ok $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" | tail -1 || true)$(grep -o '#[0-9]*.*DONE.*' "$work.log" | tail -1))"
	else
		echo "fuzz FAIL $name"; tail -40 "$work.log"
	fi
	rm -rf "$work" "$work.log"
done
[ "$found" = 1 ] || echo "no fuzz harnesses built"
