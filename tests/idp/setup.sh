#!/bin/sh
# Installs the test identity provider's pinned npm dependency (oidc-provider 8.x) from the committed
# lockfile, the same way tests/interop/setup.sh does. Idempotent: does nothing when node_modules is
# already populated, so `make deps-test` can call it every time. `npm ci` needs only the npm registry.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/node_modules/oidc-provider/package.json" ]; then
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "tests/idp/setup.sh: npm not found; the identity-provider tests need node >= 18 and npm" >&2
	exit 1
fi
cd "$here"
npm ci --no-audit --no-fund
