#!/usr/bin/env bash
# The committed sample configuration must be exactly what the configuration table generates.
set -euo pipefail
: "${PARLEYD:?}"
cd "$(dirname "$0")/.."
if ! diff -u etc/parleyd.conf.sample <("$PARLEYD" --sample-config); then
	echo "etc/parleyd.conf.sample is stale: regenerate with parleyd --sample-config > etc/parleyd.conf.sample"
	exit 1
fi
echo "sample configuration up to date"
