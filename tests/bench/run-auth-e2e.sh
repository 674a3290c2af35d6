#!/usr/bin/env bash
# Completed customer authentications per second end to end (tests/bench/auth-e2e/auth_e2e): OpenID
# Connect through parleyd and tests/idp's oidc-provider beside the same sign-in done by the same node
# client directly at the provider (the peer), their ratio, and one-time codes and business JWTs, at each
# concurrency. One run, one machine: both sides see the same moments of a shared machine.
#   tests/bench/run-auth-e2e.sh [BUILD] [SECONDS] [CONC]     (defaults: build 4 1,8,32)
set -euo pipefail
BUILD=${1:-build} SECONDS_EACH=${2:-4} CONC=${3:-1,8,32}
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=$(cd "$BUILD" && pwd)
PROG=run-auth-e2e
. tests/bench/lib.sh
[ -x "$BUILD/tests/bench/auth-e2e/auth_e2e" ] || die "auth_e2e not built (ninja -C $BUILD)"
[ -x "$PARLEYD" ] || die "$PARLEYD not built (ninja -C $BUILD)"
[ -f tests/idp/node_modules/oidc-provider/package.json ] || tests/idp/setup.sh
out=$(PARLEYD=$PARLEYD NODE=$(command -v node) IDP_DIR=$ROOT/tests/idp SIGNER=$ROOT/tests/bench/auth-e2e/signer.mjs \
	JWTBIZ=$ROOT/tests/integration/jwtbiz.mjs "$BUILD/tests/bench/auth-e2e/auth_e2e" --conc "$CONC" \
	--seconds "$SECONDS_EACH" --warmup 1)
echo "# customer authentications end to end ($SECONDS_EACH s per point after 1 s warm-up; $(date -u +%Y-%m-%dT%H:%MZ);" \
	"commit $(bench_commit); load $(bench_loadavg); $(nproc) CPUs, $(bench_cpu))"
echo "$out"
# the ratio per concurrency: parley's sign-ins/s over the provider's alone
echo "$out" | awk '$1 == "oidc" { p[$2] = $5; l[$2] = $6 } $1 == "peer" { q[$2] = $5; m[$2] = $6 }
	END { printf "# ratio oidc/peer (auth/s; p50 latency)\n";
	      for (c in p) if (q[c] > 0) printf "ratio %4d %6.2f %6.2f\n", c, p[c] / q[c], (m[c] > 0 ? l[c] / m[c] : 0) }' | sort -k2 -n
