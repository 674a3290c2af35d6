#!/usr/bin/env bash
# tests/bench/run-scale.sh end to end, tiny (meson suite 'integration'): a few hundred messages per run.
#   1. the run succeeds; every relay JSON is clean (no error, loss, duplicate, corrupted body, lost
#      connection) with acks; every PostgreSQL run's statistics count statements, transaction control
#      and WAL (the reset happened before the run's messages and the figures are of its database);
#      the 2-node runs are cross-node (every sender's receiver on the other node, both nodes used);
#      the idle part held its connections spread evenly over three nodes and each node's descriptors
#      grew by at least its connections; report.md has every part and no missing result;
#   2. a parleyd that ignores --store (runs on its own SQLite) fails the run before anything is measured
#      on "PostgreSQL", naming the cause: a figure can never be SQLite's under PostgreSQL's name.
# Exit 77 (skipped) when PostgreSQL 15 or nats-server is not installed, or parleyd was built without the
# PostgreSQL store (no libpq); without the cluster bus (no libnats in parleyd) only part (a) runs.
# Needs BUILD_ROOT (meson passes it).
set -euo pipefail

: "${BUILD_ROOT:?BUILD_ROOT=path/to/build}"
HERE=$(cd "$(dirname "$0")" && pwd)
PARLEYD=$BUILD_ROOT/server/parleyd
[ -x /usr/lib/postgresql/15/bin/initdb ] || { echo "skip: PostgreSQL 15 not installed"; exit 77; }
command -v nats-server >/dev/null || { echo "skip: nats-server not installed"; exit 77; }
command -v mosquitto >/dev/null || { echo "skip: mosquitto not installed"; exit 77; }
# ldd's output in a variable: `ldd | grep -q` under pipefail fails when grep's early exit SIGPIPEs ldd
libs=$(ldd "$PARLEYD")
[[ $libs == *libpq* ]] || { echo "skip: parleyd built without the PostgreSQL store (no libpq)"; exit 77; }
parts="relay nodes idle"
[[ $libs == *libnats* ]] || { parts=relay; echo "# parleyd has no cluster bus (no libnats): part (a) only"; }

W=$(mktemp -d "$BUILD_ROOT/t-scale.XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$W"/*.err; do [ -f "$f" ] && { echo "--- $f" >&2; tail -30 "$f" >&2; }; done; exit 1; }
# SCALE_PG_SETTLE=0: the WAL bytes of pg_stat_wal may then include some set-up; they are not checked here
export SCALE_CONNS=6 SCALE_DURATION=0.3 SCALE_NODES="1 2" SCALE_IDLE=12 SCALE_IDLE_NODES=3 SCALE_PG_SETTLE=0

# 1
SCALE_PARTS=$parts SCALE_OUT=$W/out "$HERE/run-scale.sh" "$BUILD_ROOT" >"$W/run.out" 2>"$W/run.err" ||
	fail "run-scale.sh failed"
python3 - "$W/out" "$parts" <<'PY' || fail "results"
import glob, json, os, sys
out, parts = sys.argv[1], sys.argv[2].split()
bad = []
def j(name):
    try:
        return json.load(open(os.path.join(out, name + '.json')))
    except (OSError, ValueError) as e:
        bad.append('%s.json: %s' % (name, e))
        return None
runs = ['max-sqlite', 'max-postgres', 'max-mosquitto'] if 'relay' in parts else []
pg = ['max-postgres'] if 'relay' in parts else []
if 'nodes' in parts:
    runs += ['max-n1', 'half-n1', 'max-n2', 'half-n2']
    pg += ['max-n1', 'half-n1', 'max-n2', 'half-n2']
for name in runs:
    r = j(name)
    if not r:
        continue
    for k in ('errors', 'lost', 'duplicates', 'corrupt', 'foreign', 'unsettled', 'conns_lost', 'connect_failed'):
        if r[k]:
            bad.append('%s: %s = %d (%s)' % (name, k, r[k], r['first_error']))
    if r['acked'] <= 0 or r['delivered'] <= 0:
        bad.append('%s: nothing acked or delivered' % name)
for name in pg:
    g, r = j('pg-' + name), j(name)
    if not g or not r:
        continue
    if g['statements'] <= 0 or g['tx_control'] <= 0:
        bad.append('pg-%s: no statements or no transaction control counted (%s, %s)' % (name, g['statements'], g['tx_control']))
    # every delivered message was stored once: at least one statement each, fewer than 100
    if not r['delivered'] <= g['statements'] <= 100 * r['delivered']:
        bad.append('pg-%s: %s statements for %s delivered messages' % (name, g['statements'], r['delivered']))
    if (g['wal'] or {}).get('wal_bytes', 0) <= 0 or g['wal_lsn_bytes'] <= 0:
        bad.append('pg-%s: no WAL counted' % name)
if 'nodes' in parts:
    for name in ('max-n2', 'half-n2'):
        r = j(name)
        if r and not (r.get('cross_node') and r.get('cross_node_pairs') == r['senders'] and len(r['nodes']) == 2
                      and all(n['connections'] > 0 for n in r['nodes'])):
            bad.append('%s: not cross-node over both nodes: %s' % (name, r.get('nodes')))
if 'idle' in parts:
    d = j('idle')
    if d:
        # round-robin over the three nodes: 4 each
        if [n['connections'] for n in d['nodes']] != [4, 4, 4] or d['total'] != 12:
            bad.append('idle: connections held %s, total %s' % ([n['connections'] for n in d['nodes']], d['total']))
        for n in d['nodes']:
            if n['fds_after'] - n['fds_before'] < n['connections'] or n['rss_kb_after'] <= 0:
                bad.append('idle: node %s descriptors %s -> %s for %s connections' % (
                    n['url'], n['fds_before'], n['fds_after'], n['connections']))
report = open(os.path.join(out, 'report.md')).read()
for part, head in (('relay', '(a) maximum throughput'), ('nodes', '(b) 1'), ('relay', '(c) PostgreSQL work'),
                   ('idle', '(d) idle authenticated')):
    if part in parts and head not in report:
        bad.append('report.md has no "%s"' % head)
for bad_text in ('**no result**', 'nothing delivered', '**no max run**', '**no rate run**', 'evicted'):
    if bad_text in report:
        bad.append('report.md: %s' % bad_text)
for b in bad:
    print('not ok -', b)
sys.exit(1 if bad else 0)
PY
echo "ok - run-scale.sh ($parts): every run clean, PostgreSQL statistics counted, cross-node placement, report complete"

# 2
cat >"$W/parleyd-sqlite" <<EOF
#!/bin/sh
# drops --store and --bus: a parleyd that silently runs on its own SQLite
for a in "\$@"; do
	shift
	case \$skip in 1) skip=0; continue ;; esac
	case \$a in --store|--bus) skip=1; continue ;; --store=*|--bus=*) continue ;; esac
	set -- "\$@" "\$a"
done
exec "$PARLEYD" "\$@"
EOF
chmod +x "$W/parleyd-sqlite"
if BENCH_PARLEYD=$W/parleyd-sqlite SCALE_PARTS=relay SCALE_OUT=$W/out2 "$HERE/run-scale.sh" "$BUILD_ROOT" \
	>"$W/bad.out" 2>"$W/bad.err"; then
	fail "a parleyd ignoring --store did not fail the run"
fi
grep -q "holds no connection to PostgreSQL" "$W/bad.err" || fail "the failure does not name the cause"
[ ! -e "$W/out2/max-postgres.json" ] || fail "it measured before failing"
echo "ok - a parleyd that does not use the PostgreSQL store fails the run before measuring"
echo "1..1 passed"
