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
# E2E_AUTH=0 runs part 1 alone (a stack without customer authentication). It FAILS (never skips) when
# chromium, tests/e2e/node_modules or (E2E_AUTH=1) tests/idp/node_modules is missing: `make deps-test`
# installs them (apt package chromium; tests/e2e/setup.sh and tests/idp/setup.sh run npm ci).
# E2E_KEEP=1 keeps the temporary directory (databases, CLI homes) for a post-mortem.
# shellcheck disable=SC2016,SC2317  # check's conditions are eval'ed later; helpers run through wait_for
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
rm -rf "$art"
mkdir -p "$art" "$dir/marks" || bail "cannot create $art"
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
browser_alive() {
	kill -0 "$browser" 2>/dev/null ||
		bail "the browser script exited early: $(grep -m1 FAILED "$dir/browser.log") (see $art/)"
}
marked() { [ -e "$dir/marks/$1" ] && return 0; browser_alive; return 1; }
# bob_online_until MARK: bob's client stays online (as an agent's app does) until the browser set MARK
bob_online_until() { marked "$1" && return 0; p bob listen --timeout 1 >>"$dir/bob.listen" 2>&1; marked "$1"; }
# bob_saw TEXT: bob's listen output so far (accumulated in $dir/bob.listen) contains TEXT
bob_saw() {
	browser_alive
	p bob listen --timeout 1 >>"$dir/bob.listen" 2>&1
	grep -qF "$1" "$dir/bob.listen"
}

# ---- parleyd (and, for the authentication part, the provider first: parleyd trusts its CA) ----
# parleyd's port is chosen before it starts: its sign-in pages' address (auth_public_url) and the
# redirect URI registered at the provider both name it
port=$(free_port)
pd_args=(--bind=127.0.0.1 --port="$port" --port_file="$dir/port" --data_dir="$dir/data")
idp_args=()
if [ "$E2E_AUTH" = 1 ]; then
	: "${IDP_SCRIPT:?}" "${IDP_MAKE_CA:?}"
	[ -f "$(dirname "$IDP_SCRIPT")/node_modules/oidc-provider/package.json" ] ||
		bail "tests/idp/node_modules missing: run tests/idp/setup.sh (make deps-test)"
	"$IDP_MAKE_CA" "$dir/ca" >/dev/null || bail "make-ca.sh failed"
	# the operator's secrets directory: the entity's own folder holds its client secret
	(umask 077 && mkdir -p "$dir/secrets/acme" && echo "e2e-client-secret" >"$dir/secrets/acme/client-secret")
	cat >"$dir/idp.json" <<-EOF
	{ "clients": [ { "client_id": "parley-e2e", "client_secret": "e2e-client-secret",
	                 "redirect_uris": ["http://127.0.0.1:$port/v1/auth/callback"],
	                 "id_token_signed_response_alg": "ES256",
	                 "token_endpoint_auth_method": "client_secret_basic" } ],
	  "users": [ { "id": "carol", "password": "carol-pw",
	               "claims": { "email": "carol@example.test", "email_verified": true, "name": "Carol" } } ],
	  "id_token_ttl_s": 300, "access_token_ttl_s": 300 }
	EOF
	"$NODE" "$IDP_SCRIPT" --port 0 --port-file "$dir/idp-port" --cert "$dir/ca/server.pem" \
		--key "$dir/ca/server.key" --config "$dir/idp.json" 2>"$dir/idp.log" &
	pids+=($!)
	wait_for test -s "$dir/idp-port" || bail "the test provider did not start (see $art/idp.log)"
	issuer="https://127.0.0.1:$(cat "$dir/idp-port")"
	pd_args+=(--auth_public_url="http://127.0.0.1:$port" --auth_ca_file="$dir/ca/ca.pem" \
		--auth_secrets_dir="$dir/secrets" --auth_allow_private_hosts=1) # the test provider is on 127.0.0.1
	# Chromium trusts exactly the provider's key (webchat.mjs's header says why not ignoreHTTPSErrors)
	idp_args=(--login carol --password carol-pw --spki "$(cat "$dir/ca/server.spki")")
fi
"$PARLEYD" "${pd_args[@]}" 2>"$dir/parleyd.log" &
parleyd_pid=$!
pids+=("$parleyd_pid")
wait_for test -s "$dir/port" || bail "parleyd did not start (see $art/parleyd.log)"
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
# port 0: the system picks a free one, which the gateway writes to --port-file once it listens
"$PARLEY_GATEWAY" --entity=acme --home="$dir/gw" --server="$PARLEY_SERVER" --db="$dir/gateway.db" \
	--bind=127.0.0.1 --port=0 --port-file="$dir/gw-port" --webchat=1 2>"$dir/gateway.log" &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for test -s "$dir/gw-port" || bail "parley-gateway did not start (see $art/gateway.log)"
gwport=$(cat "$dir/gw-port")
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

# ---- step 2: the agent asks the customer to sign in; the thread continues, authenticated ----
if [ "$E2E_AUTH" = 1 ]; then
	{ p alice auth component create acme e2e-sso --type oidc --issuer "$issuer" \
		--discovery "$issuer/.well-known/openid-configuration" --client-id parley-e2e \
		--secret-ref file:client-secret --scopes "openid email" --binding sub --ttl 3600 &&
	  p alice auth component activate acme "$(p alice auth component list acme | awk -F'\t' '$2 == "e2e-sso" {print $1}')"; } \
		>>"$dir/agent.log" 2>&1
	check "an active oidc component pointing at the test provider" \
		'p alice auth component list acme | grep -qP "^[0-9]+\te2e-sso\toidc\tactive\t"'
	p bob thread auth "$thread" e2e-sso >"$dir/auth.out" 2>&1
	cat "$dir/auth.out" >>"$dir/agent.log"
	check "bob sends the sign-in request to the webchat thread" \
		'grep -qE "^auth request [0-9]+ sent to the customer" "$dir/auth.out"'
	wait_for bob_online_until signed-in
	check "the browser signed in at the provider and saw parleyd's success page" 'marked signed-in'
	authed() { browser_alive; p bob auth status "$thread" >"$dir/status.out" 2>&1 &&
		grep -qE "^thread $thread: authenticated by e2e-sso until " "$dir/status.out"; }
	wait_for authed
	cat "$dir/status.out" >>"$dir/agent.log"
	check "bob's auth status: authenticated" 'grep -qE "^thread $thread: authenticated by e2e-sso until " "$dir/status.out"'
	p bob threads acme >"$dir/threads.log" 2>&1
	check "bob's thread list: the webchat thread is authenticated" \
		'grep -qP "^#$thread\t.*\twebchat [0-9a-f]{32} via acme-gw, E2E ends at the gateway, authenticated" "$dir/threads.log"'
	touch "$dir/marks/authenticated"
	wait_for bob_saw "signed in, thanks"
	check "bob receives the customer's message after the sign-in" 'grep -qF "acme-gw: signed in, thanks" "$dir/bob.listen"'
	p bob thread send "$thread" "you are verified, how can I help" >>"$dir/agent.log" 2>&1
	wait_for bob_online_until continued
	check "the browser shows the agent's answer after the sign-in" 'marked continued'
fi

# ---- the end: the browser script's verdict ----
wait "$browser"
brc=$?
check "the browser script passed every step (exit $brc)" '[ "$brc" = 0 ]'
[ "$brc" = 0 ] || sed 's/^/#   /' "$dir/browser.log"
shots=$(find "$art" -maxdepth 1 -name '*.png' | wc -l)
check "screenshots kept in $art ($shots)" '[ "$shots" -ge $([ "$E2E_AUTH" = 1 ] && echo 7 || echo 3) ]'

# ---- everything stops cleanly on SIGTERM (the gateway first: it is parleyd's client) ----
stop() { kill -TERM "$1" 2>/dev/null; wait "$1"; }
stop "$gateway_pid"
grc=$?
check "parley-gateway stops cleanly on SIGTERM (exit $grc)" '[ "$grc" = 0 ]'
stop "$parleyd_pid"
prc=$?
check "parleyd stops cleanly on SIGTERM (exit $prc)" '[ "$prc" = 0 ]'
exit $fail
