#!/usr/bin/env bash
# Plots of a tests/bench/run-relay.sh run, from its saved JSON (gnuplot, PNG), into the same folder:
#   throughput.png      acked/s per peer, closed-loop maximum (a)
#   latency-common.png  ack latency p50 / p90 / p99 / p99.9 per peer at the common rate (c), log scale
#   latency-half.png    the same at each peer's own half maximum (b)
#
#   tests/bench/plot-relay.sh RESULTS_DIR
set -euo pipefail

DIR=${1:?usage: tests/bench/plot-relay.sh RESULTS_DIR}
command -v gnuplot >/dev/null || { echo "plot-relay: gnuplot not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
[ -f "$DIR/meta.json" ] || { echo "plot-relay: $DIR/meta.json missing: not a run-relay.sh results folder" >&2; exit 1; }

# Data files: one row per peer (label, then the values), from the JSON alone.
python3 - "$DIR" <<'PY'
import json, os, sys
d = sys.argv[1]
meta = json.load(open(os.path.join(d, 'meta.json')))
label = {'parley': 'parleyd', 'mosquitto': 'mosquitto', 'nats': 'NATS core', 'nats-js': 'JetStream',
         'mosquitto-lib': 'mosquitto (lib)', 'nats-lib': 'NATS (lib)', 'nats-js-lib': 'JetStream (lib)'}
def rd(phase, p):
    try:
        return json.load(open(os.path.join(d, '%s-%s.json' % (phase, p))))
    except (OSError, ValueError):
        return None
with open(os.path.join(d, 'throughput.dat'), 'w') as f:
    for p in meta['peers'].split():
        r = rd('max', p)
        f.write('"%s" %.0f %.0f\n' % (label.get(p, p), r['acked_per_s'] if r else 0, r['delivered_per_s'] if r else 0))
for phase in ('common', 'half'):
    with open(os.path.join(d, 'latency-%s.dat' % phase), 'w') as f:
        for p in meta['peers'].split():
            r = rd(phase, p)
            a = r['ack_us'] if r and r['ack_us']['count'] else None
            f.write('"%s" %s\n' % (label.get(p, p) + ('\\n%.0f/s' % r['rate'] if phase == 'half' and r else ''),
                                   ' '.join('%.1f' % a[k] if a else 'NaN' for k in ('p50', 'p90', 'p99', 'p999'))))
with open(os.path.join(d, 'plot-title.txt'), 'w') as f:
    f.write('%s, %d connections, %d-byte messages, commit %s' % (meta['date'][:10], meta['connections'], meta['size'],
                                                           meta['commit'].split()[0]))
PY
TITLE=$(cat "$DIR/plot-title.txt")
RATE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["common_rate"])' "$DIR/meta.json")

gnuplot <<EOF
set terminal pngcairo size 1000,520 font ",11"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set grid ytics
set key outside right top
set bmargin 4
set output "$DIR/throughput.png"
set title "Relay: maximum throughput, closed loop\n$TITLE"
set ylabel "messages/s"
set yrange [0:*]
plot "$DIR/throughput.dat" using 2:xtic(1) title "acked/s", "" using 3 title "delivered/s"

set logscale y
set yrange [*:*]
set ylabel "ack latency, µs (log scale)"
set output "$DIR/latency-common.png"
set title "Relay: ack latency at $RATE msg/s for every peer, open loop\n$TITLE"
plot "$DIR/latency-common.dat" using 2:xtic(1) title "p50", "" using 3 title "p90", "" using 4 title "p99", "" using 5 title "p99.9"
set output "$DIR/latency-half.png"
set title "Relay: ack latency at each peer's own half maximum, open loop\n$TITLE"
plot "$DIR/latency-half.dat" using 2:xtic(1) title "p50", "" using 3 title "p90", "" using 4 title "p99", "" using 5 title "p99.9"
EOF
rm -f "$DIR/plot-title.txt"
echo "plot-relay: $DIR/throughput.png, latency-common.png, latency-half.png"
