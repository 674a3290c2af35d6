#!/usr/bin/env bash
# The PostgreSQL pass: the integration suite again (suite integration-pg, see
# tests/integration/meson.build) against a throw-away PostgreSQL 15 cluster started here on loopback,
# stopped on any exit (a failure, Ctrl-C). `make test-pg`, and a stage of tests/run-all.sh.
# Results in BUILD/meson-logs/testlog-pg.json (the plain pass's testlog.json is left alone).
# Exit: meson's status; 77 when PostgreSQL is not installed (tests/tools/pg.sh).
set -uo pipefail
BUILD=${1:-build} JOBS=${2:-2}
cd "$(dirname "$0")/.."

# /tmp itself, not a private subdirectory: the cluster runs as the postgres user when we are root
pgdir=$(mktemp -d /tmp/parley-pg-XXXXXX) || exit 1
trap 'tests/tools/pg.sh stop "$pgdir" || rm -rf "$pgdir"' EXIT
trap 'exit 130' INT TERM
url=$(tests/tools/pg.sh start "$pgdir")
rc=$?
[ $rc = 0 ] || exit $rc
echo "PostgreSQL for the tests: ${url%%:*}://...@${url#*@}"
export PARLEY_TEST_PG_URL=$url
# integration tests run one at a time (is_parallel : false); the factor covers a slower disk's fsyncs
meson test -C "$BUILD" --suite integration-pg --logbase testlog-pg --print-errorlogs \
	--num-processes "$JOBS" --timeout-multiplier 2
