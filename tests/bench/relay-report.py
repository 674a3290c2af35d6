#!/usr/bin/env python3
"""The markdown report of a tests/bench/run-relay.sh run, from the JSON it saved.

    tests/bench/relay-report.py RESULTS_DIR

RESULTS_DIR holds meta.json and {max,half,common}-PEER.json (parley-bench relay --json). The report is
rebuilt from those files alone, so a committed results folder can be re-read and re-checked later.
"""
import json
import os
import sys

LABEL = {
    'parley': 'parleyd',
    'mosquitto': 'mosquitto QoS 1',
    'nats': 'NATS core',
    'nats-js': 'NATS JetStream (file)',
    'mosquitto-lib': 'mosquitto QoS 1, libmosquitto client',
    'nats-lib': 'NATS core, nats.c client',
    'nats-js-lib': 'NATS JetStream, nats.c client',
}


def durable(peer, meta):
    """What is durable when the peer acks (docs/benchmarks.md, "What the ack means")."""
    base = peer[:-4] if peer.endswith('-lib') else peer
    if base == 'parley':
        return ('**on disk at ack**: committed to SQLite (WAL, `synchronous=FULL`, group commit) and '
                'fdatasync\'d before the answer')
    if base == 'mosquitto':
        return ('**in memory at ack, snapshot every %s s** (autosave_interval) and at exit: a crash loses up '
                'to %s s of acked messages' % (meta['mq_autosave'], meta['mq_autosave']))
    if base == 'nats':
        return '**nothing stored**: core NATS keeps no message; the "ack" is the receiver\'s reply'
    return ('**in the OS page cache at ack, not fsync\'d**: one write per message to the stream\'s block file, '
            'fsync on the file store\'s own timer (nats-server 2.9 has no sync option; 2.10 adds '
            '`sync_interval`, 2 min by default, or `always`): survives a server crash, not an OS crash or '
            'power loss')


def load(out, phase, peer):
    try:
        with open(os.path.join(out, '%s-%s.json' % (phase, peer))) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def num(x):
    return '–' if x is None else '{:,.0f}'.format(x)


def lat(r, k):
    if not r or not r[k]['count']:
        return '–'
    h = r[k]
    return '%.0f / %.0f / %.0f / %.0f' % (h['p50'], h['p99'], h['p999'], h['max'])


def notes(r):
    if not r:
        return '**no result**'
    bad = []
    if r.get('client_bound'):
        bad.append('**client-bound** (client CPU > server CPU)')
    for k, t in (('connect_failed', 'connects failed'), ('errors', 'errors'), ('lost', 'lost'),
                 ('duplicates', 'duplicates'), ('corrupt', 'corrupted or misrouted'), ('unsettled', 'unsettled'),
                 ('skipped', 'skipped (backlog full)'), ('conns_lost', 'connections lost')):
        if r.get(k):
            bad.append('%d %s' % (r[k], t))
    if r.get('stop_reason'):
        bad.append('stopped after %.1f s: %s' % (r['send_s'], r['stop_reason']))
    if (r.get('errors') or r.get('corrupt')) and r.get('first_error'):
        bad.append('first: ' + r['first_error'])
    return ', '.join(bad)


def cpu(r):
    return '%s, %s' % (r['server_cpu_pct'], r['client_cpu_pct']) if r else '–'


def table(out, peers, phase, with_rate):
    head = '| peer | %sacked/s | delivered/s | ack µs p50 / p99 / p99.9 / max | end-to-end µs p50 / p99 / p99.9 / max | CPU %% server, client | notes |'
    print(head % ('rate | ' if with_rate else ''))
    print('|---|%s---:|---:|---:|---:|---|---|' % ('---:|' if with_rate else ''))
    for p in peers:
        r = load(out, phase, p)
        rate = (num(r and r['rate']) + ' | ') if with_rate else ''
        print('| %s | %s%s | %s | %s | %s | %s | %s |' % (LABEL.get(p, p), rate, num(r and r['acked_per_s']),
              num(r and r['delivered_per_s']), lat(r, 'ack_us'), lat(r, 'e2e_us'), cpu(r), notes(r)))
    print()


def main():
    out = sys.argv[1]
    with open(os.path.join(out, 'meta.json')) as f:
        meta = json.load(f)
    peers = meta['peers'].split()
    print('Date: %s  ' % meta['date'])
    print('Commit: %s  ' % meta['commit'])
    print('Machine: %s; mosquitto %s, nats-server %s  ' % (meta['machine'], meta['mosquitto'] or '–',
                                                         meta['nats_server'] or '–'))
    print('Load average (1/5/15 min) before: %s, after: %s  ' % (meta['load_before'], meta['load_after']))
    print('Workload: %d connections, %d senders (each to one receiver), %d-byte messages, %s s per run, '
          'parleyd --workers %d; one client program, %d loop thread(s), for every peer (%s).  ' % (
              meta['connections'], meta['senders'], meta['size'], meta['duration'], meta['workers'],
              meta['threads'], 'the -lib peers: their client libraries' if any(p.endswith('-lib') for p in peers)
              else 'each protocol spoken by parley-bench on the same libuv loop'))
    print('Every delivered body is checked (keyed BLAKE2b over sender, sequence number, payload and the '
          'intended receiver): a corrupted or misrouted message is an error, not a delivery.')
    print()
    print('**What is durable when the peer acks**')
    print()
    print('| peer | at the ack |')
    print('|---|---|')
    for p in peers:
        print('| %s | %s |' % (LABEL.get(p, p), durable(p, meta)))
    print()
    print('**(a) maximum throughput, closed loop, window %d per sender**' % meta['window'])
    print()
    table(out, peers, 'max', False)
    print('**(b) latency at each peer\'s own half maximum (half of its (a)), open loop**')
    print()
    table(out, peers, 'half', True)
    print('**(c) latency at %s msg/s for every peer (half of the slowest peer\'s maximum), open loop**'
          % num(meta['common_rate']))
    print()
    table(out, peers, 'common', False)
    if 'parley' in peers and len(peers) > 1:
        pm, pc = load(out, 'max', 'parley'), load(out, 'common', 'parley')
        print('| ratio parleyd / peer | max acked/s (higher: parleyd faster) | p99 ack latency at the common rate '
              '(lower: parleyd faster) | read with |')
        print('|---|---:|---:|---|')
        for p in peers:
            if p == 'parley':
                continue
            m, c = load(out, 'max', p), load(out, 'common', p)
            t = '%.2f' % (pm['acked_per_s'] / m['acked_per_s']) if pm and m and m['acked_per_s'] else '–'
            l = ('%.2f' % (pc['ack_us']['p99'] / c['ack_us']['p99'])
                 if pc and c and pc['ack_us']['count'] and c['ack_us']['count'] and c['ack_us']['p99'] else '–')
            caveat = ['parleyd is on disk at the ack, %s is not' % LABEL.get(p, p)]
            if any(r and r.get('client_bound') for r in (pm, m)):
                caveat.append('a max run was client-bound: its ratio is not the servers\'')
            if any(r and (r.get('errors') or r.get('lost') or r.get('corrupt') or r.get('skipped'))
                   for r in (pm, m, pc, c)):
                caveat.append('a run had errors or skips (see notes)')
            print('| parleyd / %s | %s | %s | %s |' % (p, t, l, '; '.join(caveat)))
        print()
    print('Server RSS after the runs (kB): ' + ', '.join('%s %s' % (LABEL.get(p, p), v)
                                                      for p, v in meta['rss_kb'].items()))


if __name__ == '__main__':
    main()
