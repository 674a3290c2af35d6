#!/usr/bin/env bash
# The store argument of the parleyds a shell test starts, the shell twin of the harness's PostgreSQL
# mode (tests/integration/itdb.c).
#
#   parleyd-store.sh new        PostgreSQL mode (PARLEY_TEST_PG=1): creates a fresh database in the
#                               cluster of PARLEY_TEST_PG_URL and prints --store=<its URL>; otherwise
#                               prints nothing (the parleyd keeps its SQLite file in --data_dir)
#   parleyd-store.sh drop ARG   drops the database of ARG (what `new` printed); nothing for ""
#   parleyd-store.sh dump ARG FILE
#                               every table of ARG's database into FILE as COPY (FORMAT binary):
#                               values as their bytes, as in SQLite's file (a text dump would
#                               hex-encode or escape a bytea); what the at-rest scans read on
#                               PostgreSQL, whose own files belong to the cluster
#
#   store=$("$tools/parleyd-store.sh" new) || exit 99
#   trap '"$tools/parleyd-store.sh" drop "$store"' EXIT
#   "$PARLEYD" --data_dir=... ${store:+"$store"}
set -euo pipefail

pg_mode() { [ "${PARLEY_TEST_PG:-0}" = 1 ]; }

admin_url() {
	[ -n "${PARLEY_TEST_PG_URL:-}" ] || {
		echo "parleyd-store.sh: PARLEY_TEST_PG=1 without PARLEY_TEST_PG_URL (tests/tools/pg.sh start DIR; make test-pg)" >&2
		exit 1
	}
	echo "$PARLEY_TEST_PG_URL"
}

admin() { psql -X -q -v ON_ERROR_STOP=1 "$(admin_url)" -c "$1" >/dev/null; }

case ${1:-} in
new)
	pg_mode || exit 0
	url=$(admin_url)
	db=t_sh_$$_$RANDOM
	admin "CREATE DATABASE $db"
	base=${url%%\?*} # the query (?sslmode=...) is kept, the database (the path) replaced
	echo "--store=${base%/*}/$db${url#"$base"}"
	;;
dump)
	[ $# = 3 ] && [ -n "$2" ] || { echo "usage: parleyd-store.sh dump ARG FILE" >&2; exit 2; }
	url=${2#--store=}
	tables=$(psql -X -At -v ON_ERROR_STOP=1 "$url" -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
	[ -n "$tables" ] || { echo "parleyd-store.sh: no tables in $url" >&2; rm -f "$3"; exit 1; }
	: >"$3"
	for t in $tables; do
		psql -X -q -v ON_ERROR_STOP=1 "$url" -c "COPY \"$t\" TO STDOUT (FORMAT binary)" >>"$3" || { rm -f "$3"; exit 1; }
	done
	;;
drop)
	arg=${2:-}
	[ -n "$arg" ] || exit 0
	url=${arg#--store=}
	db=${url%%\?*}
	db=${db##*/}
	case $db in t_sh_*) ;; *) echo "parleyd-store.sh: not a test database: $db" >&2; exit 1 ;; esac
	# FORCE: a parleyd killed a moment ago may still hold a backend
	admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
	;;
*)
	echo "usage: parleyd-store.sh new | drop ARG | dump ARG FILE" >&2
	exit 2
	;;
esac
