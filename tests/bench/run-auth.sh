#!/usr/bin/env bash
# ID-token verifications per second (tests/bench/auth/auth_bench: signature + claim checks, JWKS already
# parsed) beside `openssl speed`'s raw verify/s for the same key types, and their ratio.
#   tests/bench/run-auth.sh [BUILD] [SECONDS]
set -euo pipefail
BUILD=${1:-build} SECONDS_EACH=${2:-5}
cd "$(dirname "$0")/../.."
ours=$("$BUILD/tests/bench/auth/auth_bench" "$SECONDS_EACH")
speed=$(openssl speed -seconds "$SECONDS_EACH" rsa2048 ecdsap256 2>/dev/null)
rsa_ossl=$(echo "$speed" | awk '/^rsa 2048 bits/ {print $NF}')
ec_ossl=$(echo "$speed" | awk '/ecdsa \(nistp256\)/ {print $NF}')
rsa_ours=$(echo "$ours" | awk '$2 == "RS256-2048" {print $8}')
ec_ours=$(echo "$ours" | awk '$2 == "ES256" {print $8}')
echo "# ID-token verification ($SECONDS_EACH s each; $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-12s %18s %20s %7s\n' alg "parley idtoken/s" "openssl verify/s" ratio
printf '%s\n' "RS256-2048 $rsa_ours $rsa_ossl" "ES256 $ec_ours $ec_ossl" |
	awk '{ printf "%-12s %18.0f %20.0f %7.2f\n", $1, $2, $3, ($3 > 0 ? $2 / $3 : 0) }'
