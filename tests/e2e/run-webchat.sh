#!/usr/bin/env bash
# e2e-webchat (issue 11): the web chat widget tested as a customer uses it. A real parleyd, a real
# parley-gateway with its web chat on, the business set up with the CLI (alice admin, bob agent with
# default-agent on, the gateway account "acme-gw" enrolled with `entity code --gateway` and approved),
# and Debian's chromium driven by tests/e2e/webchat.mjs (playwright-core) as the customer:
#   1 the browser writes "hello from the browser"; bob's `parley listen` receives it in a thread whose
#     channel is webchat (`parley threads acme`); bob answers with `parley thread send`; the browser
#     shows the answer;
#   2 (E2E_AUTH=1) bob sends the thread an active oidc component pointing at the test provider
#     (tests/idp: oidc-provider over HTTPS with a test CA) with `parley thread auth`; the widget shows
#     "Sign in"; the browser clicks it, signs in on the provider's form, lands on parleyd's callback
#     page; `parley auth status THREAD` says authenticated; the customer writes again and bob answers.
# The two sides meet through marker files (webchat.mjs's header). Screenshots of every step are kept
# in $E2E_ARTIFACTS (default: meson-logs/e2e-webchat/ in the build dir), with the logs of parleyd,
# the gateway, the provider and the browser; the directory is emptied at the start of each run.
#
# Environment (tests/e2e/meson.build sets it): PARLEYD PARLEY PARLEY_GATEWAY NODE E2E_ARTIFACTS,
# CHROMIUM (default /usr/bin/chromium), E2E_AUTH (0|1), IDP_SCRIPT IDP_MAKE_CA (for E2E_AUTH=1).
# It FAILS (never skips) when chromium or tests/e2e/node_modules is missing: `make deps-test` installs
# both (apt package chromium; tests/e2e/setup.sh runs npm ci).
set -uo pipefail
: "${PARLEYD:?}" "${PARLEY:?}" "${PARLEY_GATEWAY:?}" "${NODE:?}" "${E2E_ARTIFACTS:?}"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
E2E_AUTH=${E2E_AUTH:-0}
TIMEOUT_S=${E2E_TIMEOUT_S:-60}
here=$(cd "$(dirname "$0")" && pwd)

bail() { echo "Bail out! $*"; exit 1; }
[ -x "$CHROMIUM" ] || bail "$CHROMIUM not found: install Debian's chromium (make deps-test)"
[ -f "$here/node_modules/playwright-core/package.json" ] ||
	bail "tests/e2e/node_modules missing: run tests/e2e/setup.sh (make deps-test)"

dir=$(mktemp -d /tmp/parley-e2e-XXXXXX)
art=$E2E_ARTIFACTS
rm -rf "$art" && mkdir -p "$art" "$dir/marks" || bail "cannot create $art"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	cp "$dir"/*.log "$art/" 2>/dev/null
	if [ "${E2E_KEEP:-0}" = 1 ]; then echo "# kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

# waits up to TIMEOUT_S for the command "$@" to succeed
wait_for() {
	local end=$((SECONDS + TIMEOUT_S))
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p() { local home=$1; shift; PARLEY_HOME="$dir/$home" "$PARLEY" "$@"; }
# a browser that died stops every wait at once instead of each one timing out
browser_alive() { kill -0 "$browser" 2>/dev/null || bail "the browser script exited early (see $art/browser.log)"; }
marked() { [ -e "$dir/marks/$1" ] && return 0; browser_alive; return 1; }
# bob_online_until MARK: bob's client stays online (as an agent's app does) until the browser set MARK
bob_online_until() { marked "$1" && return 0; p bob listen --timeout 1 >>"$dir/bob.listen" 2>&1; marked "$1"; }
# bob_saw TEXT: bob's listen output so far (accumulated in $dir/bob.listen) contains TEXT
bob_saw() {
	browser_alive
	p bob listen --timeout 1 >>"$dir/bob.listen" 2>&1
	grep -qF "$1" "$dir/bob.listen"
}

# ---- the provider (authentication part only) ----
idp_args=()
if [ "$E2E_AUTH" = 1 ]; then
	: "${IDP_SCRIPT:?}" "${IDP_MAKE_CA:?}"
	"$IDP_MAKE_CA" "$dir/ca" >/dev/null || bail "make-ca.sh failed"
fi

# ---- parleyd ----
pd_args=(--port=0 --port_file="$dir/port" --data_dir="$dir/data")
"$PARLEYD" "${pd_args[@]}" 2>"$dir/parleyd.log" &
pids+=($!)
wait_for test -s "$dir/port" || bail "parleyd did not start"
port=$(cat "$dir/port")
export PARLEY_SERVER="ws://127.0.0.1:$port/v1/websocket"

# ---- the business, with the CLI ----
{ p alice register alice && p alice entity create acme Acme Support &&
	p alice entity code acme >"$dir/code-bob" && p alice entity code acme --gateway >"$dir/code-gw" &&
	p bob register bob && p bob agent join acme "$(awk '/^code:/ {print $2}' "$dir/code-bob")" &&
	p gw register acme-gw && p gw agent join acme "$(awk '/^code:/ {print $2}' "$dir/code-gw")" &&
	p alice entity approve acme 1 && p alice entity approve acme 2 &&
	p alice entity rules acme --agent bob default-agent=on; } >"$dir/setup.log" 2>&1 ||
	{ cat "$dir/setup.log"; bail "setting up the entity failed"; }
check "the gateway account is enrolled as a gateway" 'p alice entity agents acme | grep -q "^acme-gw gateway"'

# ---- the gateway ----
gwport=$(free_port)
"$PARLEY_GATEWAY" --entity=acme --home="$dir/gw" --server="$PARLEY_SERVER" --db="$dir/gateway.db" \
	--bind=127.0.0.1 --port="$gwport" --webchat=1 2>"$dir/gateway.log" &
pids+=($!)
widget="http://127.0.0.1:$gwport/webchat/"
wait_for curl -fs -o /dev/null "$widget" || bail "parley-gateway did not serve $widget"

# ---- the customer's browser ----
"$NODE" "$here/webchat.mjs" --url "$widget" --out "$art" --marks "$dir/marks" --chromium "$CHROMIUM" \
	--timeout-ms $((TIMEOUT_S * 1000)) "${idp_args[@]}" >"$dir/browser.log" 2>&1 &
browser=$!
pids+=("$browser")

# ---- step 1: the customer writes, the agent answers ----
wait_for marked sent
check "the browser wrote its first message" 'marked sent'
wait_for bob_saw "hello from the browser"
check "bob receives the browser's message" 'grep -qF "acme-gw: hello from the browser" "$dir/bob.listen"'
p bob threads acme >"$dir/threads.log" 2>&1
# one tab-separated line per thread: #ID, entity, customer, state, agent, unread, channel description
thread=$(awk -F'\t' '$7 ~ /^webchat / {sub(/^#/, "", $1); print $1; exit}' "$dir/threads.log")
check "it is in a webchat thread, E2E ending at the gateway" \
	'[ -n "$thread" ] && grep -qP "^#$thread\tAcme Support\tacme-gw\topen\t.*\twebchat [0-9a-f]{32} via acme-gw, E2E ends at the gateway, unverified$" "$dir/threads.log"'
p bob thread send "$thread" "hello from the agent" >>"$dir/agent.log" 2>&1
wait_for bob_online_until answered
check "the browser shows the agent's answer" 'marked answered'

# ---- the end: the browser script's verdict ----
wait "$browser"
brc=$?
check "the browser script passed every step (exit $brc)" '[ "$brc" = 0 ]'
[ "$brc" = 0 ] || sed 's/^/#   /' "$dir/browser.log"
shots=$(ls "$art"/*.png 2>/dev/null | wc -l)
check "screenshots kept in $art ($shots)" '[ "$shots" -ge 3 ]'
exit $fail
