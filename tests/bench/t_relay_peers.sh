#!/usr/bin/env bash
# tests/bench/run-relay.sh end to end, short (meson suite 'integration', ~30 s): every peer whose
# server is installed (parleyd always; mosquitto, nats-server when present) through its engine of
# record, the three measurements, the report and the saved JSON:
#   1. the run succeeds, every JSON has no error, loss, duplicate or corrupted body and carries both
#      CPU figures and the client-bound flag; report.md has the durability table and a row per peer;
#      mosquitto's database was written at exit (the script checks its log and file);
#   2. a requested peer that cannot run (an unknown name; a -lib peer parley-bench was built without)
#      fails the run before anything is measured, naming it: nothing is silently left out.
# Needs BUILD_ROOT (meson passes it).
set -euo pipefail

: "${BUILD_ROOT:?BUILD_ROOT=path/to/build}"
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/parley-relay-peers.XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$W"/*.err; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done; exit 1; }

peers=parley
command -v mosquitto >/dev/null && peers="$peers mosquitto"
command -v nats-server >/dev/null && peers="$peers nats nats-js"
echo "# peers: $peers"

# 1
RELAY_PEERS=$peers RELAY_CONNS=6 RELAY_DURATION=0.4 RELAY_OUT=$W/out \
	"$HERE/run-relay.sh" "$BUILD_ROOT" >"$W/run.out" 2>"$W/run.err" || fail "run-relay.sh failed"
python3 - "$W/out" $peers <<'PY' || fail "results"
import json, os, sys
out, peers = sys.argv[1], sys.argv[2:]
bad = []
for phase in ('max', 'half', 'common'):
    for p in peers:
        r = json.load(open(os.path.join(out, '%s-%s.json' % (phase, p))))
        for k in ('errors', 'lost', 'duplicates', 'corrupt', 'foreign', 'unsettled', 'conns_lost', 'connect_failed'):
            if r[k]:
                bad.append('%s %s: %s = %d (%s)' % (phase, p, k, r[k], r['first_error']))
        if r['acked'] <= 0 or r['server_cpu_pct'] < 0 or r['client_cpu_pct'] < 0 or 'client_bound' not in r:
            bad.append('%s %s: no acks or no CPU figures' % (phase, p))
    if phase != 'max':
        rates = [json.load(open(os.path.join(out, '%s-%s.json' % (phase, p))))['rate'] for p in peers]
        if phase == 'common' and len(set(rates)) != 1:
            bad.append('common rates differ: %s' % rates)
report = open(os.path.join(out, 'report.md')).read()
if 'What is durable when the peer acks' not in report:
    bad.append('no durability table in report.md')
if report.count('| parleyd |') != 4:
    bad.append('parleyd should have a durability row and one row per table')
if '**no result**' in report:
    bad.append('a run without a result in report.md')
for b in bad:
    print('not ok -', b)
sys.exit(1 if bad else 0)
PY
echo "ok - run-relay.sh: every peer ran clean, report and JSON complete"
if [[ " $peers " == *" mosquitto "* ]]; then
	grep -q "Error" "$W/out/mosquitto.log" && fail "mosquitto logged an error"
	echo "ok - mosquitto saved its database, no error in its log"
fi

# 2
if RELAY_PEERS="parley no-such-peer" RELAY_OUT=$W/out2 "$HERE/run-relay.sh" "$BUILD_ROOT" >"$W/bad.out" 2>"$W/bad.err"; then
	fail "an unknown peer did not fail the run"
fi
grep -q "unknown peer no-such-peer" "$W/bad.err" || fail "the failure does not name the peer"
[ ! -e "$W/out2/max-parley.json" ] || fail "it measured before failing"
echo "ok - an unknown peer fails the run before anything is measured"
if "$BUILD_ROOT/tools/bench/parley-bench" relay --peer mosquitto-lib --url 127.0.0.1:1 --duration 0.1 2>&1 |
	grep -q "built without"; then
	RELAY_PEERS="parley mosquitto-lib" RELAY_OUT=$W/out3 "$HERE/run-relay.sh" "$BUILD_ROOT" >"$W/lib.out" 2>"$W/lib.err" &&
		fail "a -lib peer without its library did not fail the run"
	grep -q "built without" "$W/lib.err" || fail "the failure does not say why"
	echo "ok - a -lib peer without its client library fails the run"
fi
echo "1..1 passed"
