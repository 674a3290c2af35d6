#!/usr/bin/env bash
# Completed customer authentications per second end to end (tests/bench/auth-e2e/auth_e2e): OpenID
# Connect through parleyd and tests/idp's oidc-provider beside the same sign-in done by the same node
# client directly at the provider (the peer), their ratio, and one-time codes and business JWTs, at each
# concurrency. One run, one machine; per concurrency the kinds run one after the other (the sign-in
# through parley right beside its peer), all of it REPS times, and the best point of each (kind,
# concurrency) is kept: on a shared machine the best run is the one least disturbed by others. Every
# point is printed first, then the best, then the ratio oidc / peer.
#   tests/bench/run-auth-e2e.sh [BUILD] [SECONDS] [CONC] [REPS]     (defaults: build 4 1,8,32 2)
set -euo pipefail
BUILD=${1:-build} SECONDS_EACH=${2:-4} CONC=${3:-1,8,32} REPS=${4:-2}
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=$(cd "$BUILD" && pwd)
PROG=run-auth-e2e
. tests/bench/lib.sh
[ -x "$BUILD/tests/bench/auth-e2e/auth_e2e" ] || die "auth_e2e not built (ninja -C $BUILD)"
[ -x "$PARLEYD" ] || die "$PARLEYD not built (ninja -C $BUILD)"
[ -f tests/idp/node_modules/oidc-provider/package.json ] || tests/idp/setup.sh
echo "# customer authentications end to end ($SECONDS_EACH s per point after 1 s warm-up, $REPS reps;" \
	"$(date -u +%Y-%m-%dT%H:%MZ); commit $(bench_commit); load $(bench_loadavg) before; $(nproc) CPUs, $(bench_cpu))"
out=$(PARLEYD=$PARLEYD NODE=$(command -v node) IDP_DIR=$ROOT/tests/idp SIGNER=$ROOT/tests/bench/auth-e2e/signer.mjs \
	JWTBIZ=$ROOT/tests/integration/jwtbiz.mjs "$BUILD/tests/bench/auth-e2e/auth_e2e" --conc "$CONC" \
	--seconds "$SECONDS_EACH" --warmup 1 --reps "$REPS")
echo "$out"
echo "# best of $REPS (load $(bench_loadavg) after)"
echo "$out" | awk '!/^#/ { k = $1 " " $2; if (!(k in best) || $5 > best[k] + 0) { best[k] = $5; line[k] = $0 } }
	END { for (k in line) print line[k] }' | sort -k1,1 -k2n | tee "${TMPDIR:-/tmp}/run-auth-e2e.$$"
# parley's sign-ins/s over the provider's alone (the best of each), and the p50 latencies' ratio
awk '$1 == "oidc" { p[$2] = $5; l[$2] = $6 } $1 == "peer" { q[$2] = $5; m[$2] = $6 }
	END { print "# ratio oidc/peer: conc auth/s p50_latency";
	      for (c in p) if (q[c] > 0) printf "ratio %4d %6.2f %6.2f\n", c, p[c] / q[c], (m[c] > 0 ? l[c] / m[c] : 0) }' \
	"${TMPDIR:-/tmp}/run-auth-e2e.$$" | sort -k2n
rm -f "${TMPDIR:-/tmp}/run-auth-e2e.$$"
