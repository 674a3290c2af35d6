#!/bin/sh
# Installs the browser test's pinned npm dependency (playwright-core, the driver only: no browser is
# downloaded, the test uses Debian's chromium) from the committed lockfile, the same way
# tests/interop/setup.sh and tests/idp/setup.sh do. Idempotent: does nothing when node_modules is
# already populated, so `make deps-test` can call it every time. `npm ci` needs only the npm registry.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/node_modules/playwright-core/package.json" ]; then
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "tests/e2e/setup.sh: npm not found; the browser test needs node >= 20 and npm" >&2
	exit 1
fi
cd "$here"
# playwright-core never downloads browsers on install; the variable says so for any later version too
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
