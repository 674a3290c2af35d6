#!/usr/bin/env python3
"""The markdown report of a tests/bench/run-scale.sh run, from the JSON it saved.

    tests/bench/scale-report.py RESULTS_DIR

RESULTS_DIR holds meta.json, the parley-bench relay JSON of every run (max-sqlite, max-postgres,
max-mosquitto, max-nK, half-nK), pg-RUN.json (the PostgreSQL statistics of every PostgreSQL run) and
idle.json. Rebuilt from those files alone, so a committed results folder can be re-read later. The
formatting helpers are relay-report.py's (one definition of a latency cell, a notes cell...).
"""
import importlib.util
import json
import os
import sys

_spec = importlib.util.spec_from_file_location(
    'relay_report', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'relay-report.py'))
rr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rr)


def load(out, name):
    try:
        with open(os.path.join(out, name + '.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def p50_99(r, k):
    if not r or not r[k]['count']:
        return '–'
    return '%.0f / %.0f' % (r[k]['p50'], r[k]['p99'])


def per(x, n, fmt='%.2f'):
    return fmt % (x / n) if n else '–'


def node_cpu(r):
    if not r or 'nodes' not in r:
        return rr.cpu(r)
    return '%s (%s), %s' % (r['server_cpu_pct'], ' + '.join(str(n.get('server_cpu_pct', '?')) for n in r['nodes']),
                            r['client_cpu_pct'])


def part_relay(out, meta):
    print('**(a) maximum throughput, closed loop, window %d per sender: the same workload on each**' % meta['window'])
    print()
    print('| server | acked/s | delivered/s | ack µs p50 / p99 | end-to-end µs p50 / p99 | CPU % server, client | '
          'at the ack | notes |')
    print('|---|---:|---:|---:|---:|---|---|---|')
    rows = (('max-sqlite', 'parleyd, SQLite', 'on disk: SQLite WAL, fdatasync before the answer'),
            ('max-postgres', 'parleyd, PostgreSQL (1 node, no bus)',
             'on disk: PostgreSQL COMMIT (synchronous_commit on) before the answer'),
            ('max-mosquitto', 'mosquitto QoS 1', rr.durable('mosquitto', meta).replace('**', '')))
    for name, label, dur in rows:
        r = load(out, name)
        print('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
            label, rr.num(r and r['acked_per_s']), rr.num(r and r['delivered_per_s']), p50_99(r, 'ack_us'),
            p50_99(r, 'e2e_us'), rr.cpu(r), dur, rr.notes(r)))
    print()
    s, p, m = (load(out, n) for n in ('max-sqlite', 'max-postgres', 'max-mosquitto'))
    ratio = lambda a, b: '%.2f' % (a['acked_per_s'] / b['acked_per_s']) if a and b and b['acked_per_s'] else '–'
    print('Ratios of max acked/s: PostgreSQL / SQLite %s, SQLite / mosquitto %s, PostgreSQL / mosquitto %s '
          '(parleyd\'s ack is on disk, mosquitto\'s in memory).' % (ratio(p, s), ratio(s, m), ratio(p, m)))
    print()


def part_nodes(out, meta):
    ks = meta['nodes'].split()
    print('**(b) 1–%s nodes on one PostgreSQL and one nats-server**: the maximum (closed loop) and the latency in '
          'open loop at %s msg/s (half of the 1-node maximum); from 2 nodes on every receiver is on another node '
          'than its sender, so the end-to-end latency is the cross-node delivery latency (sender\'s node → '
          'PostgreSQL → NATS wake-up → receiver\'s node). **Every node, PostgreSQL, nats-server and the client '
          'share this machine\'s %s**: the nodes compete for the same cores, so more nodes cannot add throughput '
          'here; the figures show the cost of the cluster path, not how it scales on separate machines.'
          % (ks[-1] if ks else '?', rr.num(meta['rate']), meta['machine'].split(' (')[0]))
    print()
    print('| nodes | max acked/s | CPU % servers (per node), client | rate | delivered/s | end-to-end µs p50 / p99 | '
          'ack µs p50 / p99 | CPU % servers (per node), client | notes |')
    print('|---:|---:|---|---:|---:|---:|---:|---|---|')
    for k in ks:
        m, h = load(out, 'max-n' + k), load(out, 'half-n' + k)
        note = '; '.join(x for x in (rr.notes(m) if m else '**no max run**', rr.notes(h) if h else '**no rate run**')
                         if x)
        if h and h.get('cross_node'):
            note = ('cross-node: %d of %d senders' % (h['cross_node_pairs'], h['senders'])) + ('; ' + note if note else '')
        elif k == '1':
            note = 'same node' + ('; ' + note if note else '')
        print('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            k, rr.num(m and m['acked_per_s']), node_cpu(m), rr.num(h and h['rate']), rr.num(h and h['delivered_per_s']),
            p50_99(h, 'e2e_us'), p50_99(h, 'ack_us'), node_cpu(h), note))
    print()


def part_pg(out, meta):
    runs = ['max-postgres'] + ['%s-n%s' % (p, k) for k in meta['nodes'].split() for p in ('max', 'half')]
    runs = [r for r in runs if load(out, 'pg-' + r)]
    if not runs:
        return
    print('**(c) PostgreSQL work per delivered message** (from the reset once every connection was set up to the '
          'nodes\' exit; statements and round trips from `pg_stat_statements`, transaction control included; WAL '
          'from `pg_stat_wal` and, as a cross-check, the WAL insert position)')
    print()
    print('| run | delivered | statements / msg | transaction control / msg | round trips / msg | WAL bytes / msg '
          '(pg_stat_wal) | WAL bytes / msg (position) | WAL records / msg | WAL fsyncs / msg | notes |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|')
    for name in runs:
        g, r = load(out, 'pg-' + name), load(out, name)
        n = r['delivered'] if r else 0
        w = g.get('wal') or {}
        note = []
        if g.get('nested'):
            note.append('%d nested statements (functions, triggers) not counted as round trips' % g['nested'])
        if g.get('dealloc'):
            note.append('**pg_stat_statements evicted %d entries: counts are low**' % g['dealloc'])
        if not n:
            note.append('**nothing delivered**')
        print('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            name, rr.num(n), per(g['statements'], n), per(g['tx_control'], n),
            per(g['statements'] + g['tx_control'], n), per(w.get('wal_bytes', 0), n, '%.0f'),
            per(g['wal_lsn_bytes'], n, '%.0f'), per(w.get('wal_records', 0), n), per(w.get('wal_sync', 0), n, '%.3f'),
            '; '.join(note)))
    print()
    g = load(out, 'pg-' + runs[0])
    if g and g.get('top'):
        print('Statements of `%s` by calls (first 20):' % runs[0])
        print()
        print('| calls | rows | total ms | statement |')
        print('|---:|---:|---:|---|')
        for t in g['top']:
            print('| %s | %s | %s | `%s`%s |' % (rr.num(t['calls']), rr.num(t['rows']), t['total_ms'],
                                                t['query'].replace('|', '\\|').replace('`', "'"),
                                                '' if t['toplevel'] else ' (nested)'))
        print()


def part_idle(out, meta):
    d = load(out, 'idle')
    if not d:
        return
    print('**(d) idle authenticated WebSockets on %d nodes** (each registered and uploaded keys, then idle), '
          '%s in all from %d client process(es); every process here is capped at %s open files, the nodes and '
          'the clients alike, with %d left free per process' % (
              len(d['nodes']), rr.num(d['total']), d['clients'], rr.num(d['client_fd_limit']), d['fd_slack']))
    print()
    print('| node | connections | open files before → after (limit) | RSS before → after | bytes per connection | '
          'files per connection |')
    print('|---|---:|---:|---:|---:|---:|')
    tc = trss = 0
    for i, n in enumerate(d['nodes']):
        c = n['connections']
        drss = (n['rss_kb_after'] - n['rss_kb_before']) * 1024
        tc += c
        trss += drss
        print('| %d | %s | %s → %s (%s) | %.1f → %.1f MiB | %s | %s |' % (
            i + 1, rr.num(c), rr.num(n['fds_before']), rr.num(n['fds_after']), rr.num(n['fd_limit']),
            n['rss_kb_before'] / 1024, n['rss_kb_after'] / 1024, per(drss, c, '%.0f'),
            per(n['fds_after'] - n['fds_before'], c)))
    print('| all | %s | | +%.1f MiB | %s | |' % (rr.num(tc), trss / 1048576, per(trss, tc, '%.0f')))
    print()
    if tc:
        print('At that cost per connection, 1,000,000 idle connections hold %.1f GiB of parleyd memory in all and '
              'need %d processes at this open-file limit (set LimitNOFILE higher in production).' % (
                  trss / tc * 1e6 / 2**30, -(-1000000 // max(1, d['nodes'][0]['fd_limit'] - d['fd_slack']))))
        print()


def main():
    out = sys.argv[1]
    with open(os.path.join(out, 'meta.json')) as f:
        meta = json.load(f)
    parts = meta['parts'].split()
    print('Date: %s  ' % meta['date'])
    print('Commit: %s  ' % meta['commit'])
    print('Machine: %s; PostgreSQL %s, nats-server %s, mosquitto %s  ' % (
        meta['machine'], meta['postgres'] or '–', meta['nats_server'] or '–', meta['mosquitto'] or '–'))
    print('Load average (1/5/15 min) before: %s, after: %s  ' % (meta['load_before'], meta['load_after']))
    print('Workload: %d connections, %d senders (each to one receiver), %d-byte messages, %s s per run, parleyd '
          '--workers %d per node, one parley-bench client (%d loop thread(s)); every delivered body is checked.  ' % (
              meta['connections'], meta['senders'], meta['size'], meta['duration'], meta['workers'], meta['threads']))
    print('Everything ran on this one machine: the client, every parleyd node, PostgreSQL and nats-server share '
          'its cores (CPU-bound by the box).')
    print()
    if 'relay' in parts:
        part_relay(out, meta)
    if 'nodes' in parts:
        part_nodes(out, meta)
    part_pg(out, meta)
    if 'idle' in parts:
        part_idle(out, meta)
    if meta.get('rss_kb'):
        print('Server RSS at the end of each run (kB): ' + ', '.join(
            '%s %s' % (k, v) for k, v in sorted(meta['rss_kb'].items())))


if __name__ == '__main__':
    main()
