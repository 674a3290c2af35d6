#!/usr/bin/env python3
"""Every SQL text of the store's domain logic (server/store/sql/*.c) compiles on both databases.

The domain files are written once for SQLite and PostgreSQL (server/store/sql/sql.h): a construct
only one of them accepts would otherwise be caught only if some integration test happens to run that
statement on PostgreSQL. So this test takes every `static const char SQL_...[]` constant and every
`sql_text` pair (after the C preprocessor, so macros are expanded), prepares it on a SQLite database
and on a PostgreSQL database that parleyd itself migrated, and on PostgreSQL also requires every
parameter's inferred type to be one the driver binds safely (bigint, text, bytea, double precision:
an `integer` parameter would overflow on millisecond timestamps and ids).

Run in suite integration-pg (PARLEY_TEST_PG=1, PARLEY_TEST_PG_URL): exit 77 otherwise.
usage: sql_dialects.py SOURCE_ROOT BUILD_ROOT PARLEYD
"""
import glob
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

STR = r'"(?:[^"\\]|\\.)*"'
SAFE_TYPES = {'bigint', 'text', 'bytea', 'double precision'}


def c_strings(seq):
    return ''.join(bytes(m, 'utf-8').decode('unicode_escape') for m in re.findall(r'"((?:[^"\\]|\\.)*)"', seq))


def statements(root, build):
    out = []
    for f in sorted(glob.glob(os.path.join(root, 'server/store/sql/*.c'))):
        pre = subprocess.run(['cc', '-E', '-P', '-I' + root + '/server', '-I' + root + '/include',
                              '-I' + root + '/lib', '-I' + build, '-I' + build + '/proto', f],
                             capture_output=True, text=True, check=True).stdout
        name = os.path.basename(f)
        for m in re.finditer(r'static const char (SQL_\w+)\[\]\s*=\s*((?:' + STR + r'\s*)+);', pre):
            out.append((name, m.group(1), 'both', c_strings(m.group(2))))
        for m in re.finditer(r'static const sql_text (\w+)\s*=\s*\{\s*((?:' + STR + r'\s*)+),\s*((?:' + STR +
                             r'\s*)+),?\s*\}', pre):
            out.append((name, m.group(1), 'sqlite', c_strings(m.group(2))))
            out.append((name, m.group(1), 'pg', c_strings(m.group(3))))
    return out


def migrated(parleyd, workdir, extra):
    """Starts parleyd until it listens (its store is open and migrated), then stops it."""
    port_file = os.path.join(workdir, 'port')
    log = open(os.path.join(workdir, 'parleyd.log'), 'w')
    p = subprocess.Popen([parleyd, '--port=0', '--port_file=' + port_file, '--data_dir=' + workdir + '/data',
                          '--log_level=warn'] + extra, stdout=log, stderr=log)
    deadline = time.time() + 20
    while not os.path.exists(port_file) and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    ok = os.path.exists(port_file)
    p.terminate()
    p.wait(timeout=20)
    if not ok:
        sys.exit('parleyd did not start:\n' + open(os.path.join(workdir, 'parleyd.log')).read())


def main():
    if os.environ.get('PARLEY_TEST_PG') != '1':
        print('1..0 # SKIP PostgreSQL pass only (suite integration-pg)')
        return 77
    root, build, parleyd = sys.argv[1:4]
    tools = os.path.join(root, 'tests/tools/parleyd-store.sh')
    stmts = statements(root, build)
    if len(stmts) < 100:  # the parser must see them: an empty list would pass vacuously
        sys.exit('only %d statements found: the parser no longer matches the sources' % len(stmts))
    store = subprocess.run([tools, 'new'], capture_output=True, text=True, check=True).stdout.strip()
    try:
        with tempfile.TemporaryDirectory() as sq_dir, tempfile.TemporaryDirectory() as pg_dir:
            migrated(parleyd, sq_dir, [])
            migrated(parleyd, pg_dir, [store])
            url = store[len('--store='):]
            sq = sqlite3.connect(os.path.join(sq_dir, 'data/parley.db'))
            failures = 0
            n = 0
            for f, name, dialect, sql in stmts:
                if dialect in ('both', 'sqlite'):
                    n += 1
                    nparams = max([int(x) for x in re.findall(r'\?(\d+)', sql)] or [0])
                    try:
                        sq.execute('EXPLAIN ' + sql, [None] * nparams)
                        print('ok %d - sqlite %s %s' % (n, f, name))
                    except sqlite3.Error as e:
                        print('not ok %d - sqlite %s %s: %s' % (n, f, name, e))
                        failures += 1
                if dialect in ('both', 'pg'):
                    n += 1
                    pg_sql = re.sub(r'\?(\d+)', r'$\1', sql)
                    r = subprocess.run(['psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', url, '-c',
                                        'BEGIN; PREPARE p AS ' + pg_sql + "; SELECT parameter_types FROM "
                                        "pg_prepared_statements WHERE name = 'p'; ROLLBACK;"],
                                       capture_output=True, text=True)
                    lines = [l for l in r.stdout.splitlines() if l.startswith('{')]
                    types = [t for t in lines[0].strip('{}').replace('"', '').split(',') if t] if lines else []
                    odd = [t for t in types if t not in SAFE_TYPES]
                    if r.returncode != 0:
                        err = (r.stderr.strip().splitlines() or ['?'])[0]
                        print('not ok %d - postgres %s %s: %s' % (n, f, name, err))
                        failures += 1
                    elif odd:
                        print('not ok %d - postgres %s %s: parameter types %s' % (n, f, name, ','.join(types)))
                        failures += 1
                    else:
                        print('ok %d - postgres %s %s' % (n, f, name))
            print('1..%d' % n)
            return 1 if failures else 0
    finally:
        subprocess.run([tools, 'drop', store], capture_output=True)


if __name__ == '__main__':
    sys.exit(main())
