#!/bin/sh
# Installs the interop peers' pinned npm dependencies (Signal's libsignal-client 0.24.0) from the
# committed lockfile. Idempotent: does nothing when node_modules is already populated, so `make test`
# can call it every time. `npm ci` needs only the npm registry (the package ships prebuilt binaries).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/node_modules/@signalapp/libsignal-client/package.json" ]; then
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "tests/interop/setup.sh: npm not found; the interop tests need node >= 18 and npm" >&2
	exit 1
fi
cd "$here"
npm ci --no-audit --no-fund
