#!/usr/bin/env bash
# ID-token verifications per second (tests/bench/auth/auth_bench: signature + claim checks, JWKS already
# parsed) beside `openssl speed`'s raw verify/s for the same key types, and their ratio. The two are
# run alternately REPS times and the best of each is kept: on a shared machine, the best run is the one
# least disturbed by others, and alternating exposes both to the same moments.
#   tests/bench/run-auth.sh [BUILD] [SECONDS] [REPS]
set -euo pipefail
BUILD=${1:-build} SECONDS_EACH=${2:-5} REPS=${3:-3}
cd "$(dirname "$0")/../.."
best() { sort -g | tail -1; }
rsa_ours= ec_ours= rsa_ossl= ec_ossl=
for _ in $(seq "$REPS"); do
	ours=$("$BUILD/tests/bench/auth/auth_bench" "$SECONDS_EACH")
	speed=$(openssl speed -seconds "$SECONDS_EACH" rsa2048 ecdsap256 2>/dev/null)
	rsa_ours+="$(echo "$ours" | awk '$2 == "RS256-2048" {print $8}')"$'\n'
	ec_ours+="$(echo "$ours" | awk '$2 == "ES256" {print $8}')"$'\n'
	rsa_ossl+="$(echo "$speed" | awk '/^rsa 2048 bits/ {print $NF}')"$'\n'
	ec_ossl+="$(echo "$speed" | awk '/ecdsa \(nistp256\)/ {print $NF}')"$'\n'
done
echo "# ID-token verification (best of $REPS x $SECONDS_EACH s; $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-12s %18s %20s %7s\n' alg "parley idtoken/s" "openssl verify/s" ratio
printf '%s\n' "RS256-2048 $(echo -n "$rsa_ours" | best) $(echo -n "$rsa_ossl" | best)" \
	"ES256 $(echo -n "$ec_ours" | best) $(echo -n "$ec_ossl" | best)" |
	awk '{ printf "%-12s %18.0f %20.0f %7.2f\n", $1, $2, $3, ($3 > 0 ? $2 / $3 : 0) }'
