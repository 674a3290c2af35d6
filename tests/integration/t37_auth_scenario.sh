#!/usr/bin/env bash
# 37: issue 11's acceptance scenario, end to end, with the real programs only: parleyd (SQLite), the
# real oidc-provider of tests/idp over HTTPS with a CA made here, parley-gateway bridging sms (Twilio's
# formats) and waba (WhatsApp Cloud's) with both API bases pointed at fake-provider (a local HTTP server
# that logs each call as a file), the parley CLI for the admin alice, the agent bob and the native
# customer dave, and tests/idp/login.mjs as the customers' browser (it follows the start link to the
# provider, fills in the login form and requests the callback, as a browser would).
#   native  dave writes; bob sends acme-sso (binding sub); dave's listen prints the link; dave signs in;
#           bob's listen, `auth status` and `threads` say authenticated until the credential's expiry;
#           after it, unverified again (bob's listen is told so)
#   sms     a Twilio-signed webhook opens the thread; bob sends acme-phone (binding phone_number); the
#           link reaches the number as a Twilio Messages call; the person with that verified number
#           signs in: authenticated, then channel-verified after the expiry; another person's sign-in
#           fails with IDENTITY_MISMATCH and the level stays
#   waba    a WABA-signed webhook opens the thread; the link goes out as a WABA messages call (found
#           anywhere in its JSON: a text or a CTA-URL button); the sign-in authenticates the thread
# TAP-like lines as t36; exit 1 on any failure; every process is stopped on every way out.
set -uo pipefail
: "${PARLEYD:?}" "${PARLEY:?}" "${PARLEY_GATEWAY:?}" "${NODE:?}" "${IDP_DIR:?}" "${FAKE_PROVIDER:?}"

TTL=8                     # the credential lifetime of both components: checked before it lapses, then after
NUM=+15551234567          # the sms customer, carol at the provider
WA=15557654321            # the waba customer (wa_id; +15557654321 in parley), erin at the provider
TWILIO_TOKEN=tw-scenario-token
WABA_SECRET=waba-scenario-secret

# the store: SQLite in --data_dir, or a fresh PostgreSQL database in the integration-pg suite
tools=$(dirname "$0")/../tools
store=$("$tools/parleyd-store.sh" new) || exit 99
dir=$(mktemp -d /tmp/parley-t37-XXXXXX)
pids=()
passed=0 failed=0
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [ "$failed" != 0 ] || [ -n "${bailed:-}" ]; then
		for f in parleyd.log gateway.log idp.log bob.listen; do
			[ -f "$dir/$f" ] && { echo "# --- $f (last 15 lines)"; tail -n 15 "$dir/$f" | sed 's/^/#   /'; }
		done
	fi
	rm -rf "$dir"
	"$tools/parleyd-store.sh" drop "$store"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
check() {
	if eval "$2"; then echo "ok - $1"; passed=$((passed + 1))
	else echo "not ok - $1"; sed 's/^/#   /' "$dir/out" 2>/dev/null; failed=$((failed + 1)); fi
}
bail() { echo "Bail out! $*"; sed "s/^/#   /" "$dir/out" 2>/dev/null; bailed=1; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
# wait_for FILE ERE SECONDS: until a line of FILE matches
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do grep -qE -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
# wait_file FILE SECONDS: until FILE is not empty
wait_file() { local i; for ((i = 0; i < $2 * 10; i++)); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
free_port() { "$NODE" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# up PID WHAT...: until WHAT succeeds (15 s) while PID lives; 1 if PID died first (its port was taken)
up() {
	local pid=$1 i
	shift
	for ((i = 0; i < 150; i++)); do
		"$@" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# ---- parleyd: the operator's secrets folder for entity acme; providers trusted through the test CA ----
# Its auth_public_url must name its port before it listens, so the port is chosen here: free_port's
# port can be taken by someone else before parleyd binds it; then parleyd exits and another is tried.
"$IDP_DIR/make-ca.sh" "$dir/ca" >/dev/null 2>&1 || bail "make-ca.sh"
mkdir -m 700 -p "$dir/secrets/acme"
(umask 077 && echo sso-secret-1 >"$dir/secrets/acme/sso-secret" && echo phone-secret-2 >"$dir/secrets/acme/phone-secret")
# parleyd refuses providers on private addresses unless told: the test provider is on 127.0.0.1
extra=(--auth_allow_private_hosts=1)
for _ in 1 2 3; do
	pport=$(free_port) || bail "no free port"
	"$PARLEYD" --port="$pport" --admin_port=0 --port_file="$dir/parleyd.port" --data_dir="$dir/data" ${store:+"$store"} \
		--auth_public_url="http://127.0.0.1:$pport" --auth_ca_file="$dir/ca/ca.pem" \
		--auth_secrets_dir="$dir/secrets" "${extra[@]}" 2>>"$dir/parleyd.log" &
	pid=$!
	up "$pid" test -s "$dir/parleyd.port" && break
	wait "$pid" 2>/dev/null
	pid=
done
[ -n "$pid" ] || bail "parleyd did not start"
pids+=("$pid")
export PARLEY_SERVER="ws://127.0.0.1:$pport/v1/websocket"

# ---- the identity provider: two clients (RS256 and ES256) redirecting to parleyd, four people ----
CB="http://127.0.0.1:$pport/v1/auth/callback"
cat >"$dir/idp.json" <<EOF
{ "clients": [
    { "client_id": "parley-sso", "client_secret": "sso-secret-1", "redirect_uris": ["$CB"],
      "id_token_signed_response_alg": "RS256", "token_endpoint_auth_method": "client_secret_basic" },
    { "client_id": "parley-phone", "client_secret": "phone-secret-2", "redirect_uris": ["$CB"],
      "id_token_signed_response_alg": "ES256", "token_endpoint_auth_method": "client_secret_basic" } ],
  "users": [
    { "id": "dave-at-acme", "login": "dave", "password": "dave-pw", "claims": { "name": "Dave" } },
    { "id": "carol", "password": "carol-pw", "claims": { "phone_number": "$NUM", "phone_number_verified": true } },
    { "id": "erin", "password": "erin-pw", "claims": { "phone_number": "+$WA", "phone_number_verified": true } },
    { "id": "mallory", "password": "mallory-pw", "claims": { "phone_number": "+15559990000", "phone_number_verified": true } } ],
  "id_token_ttl_s": 300, "access_token_ttl_s": 300 }
EOF
"$NODE" "$IDP_DIR/idp.mjs" --port 0 --port-file "$dir/idp.port" --cert "$dir/ca/server.pem" \
	--key "$dir/ca/server.key" --config "$dir/idp.json" 2>"$dir/idp.log" &
pids+=($!)
wait_file "$dir/idp.port" 15 || bail "idp.mjs did not start"
ISS="https://127.0.0.1:$(cat "$dir/idp.port")"

p() { local home=$1; shift; PARLEY_HOME="$dir/$home" "$PARLEY" "$@"; }
run() { p "$@" >"$dir/out" 2>&1; rc=$?; }
# listen_bg HOME SECONDS FILE: `parley listen` in the background. A simple command, not the function p:
# bash execs it in the forked child, so the pid in pids is parley's own and cleanup's kill reaches it
listen_bg() { PARLEY_HOME="$dir/$1" "$PARLEY" listen --timeout "$2" >"$3" 2>&1 & pids+=($!); }
# expiry_ok FILE: the first "until YYYY-MM-DD HH:MM:SS" (UTC) of FILE is TTL seconds after the sign-in,
# which happened between $t0 and $t1 (the credential's expiry is the callback's time + its ttl)
expiry_ok() {
	local until
	until=$(grep -oE 'until [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}' "$1" | head -1 | cut -c7-)
	until=$(date -u -d "$until UTC" +%s 2>/dev/null) || return 1
	[ "$until" -ge $((t0 + TTL)) ] && [ "$until" -le $((t1 + TTL)) ]
}
# lapse_left WHAT: a comment with the seconds left before the credential lapses (how much margin the
# checks of the authenticated level had; a loaded machine eats it)
lapse_left() { echo "# $1: checked $((t0 + TTL - $(date +%s))) s before the credential lapses"; }

# ---- the business: alice (admin), bob (default agent), the gateway account, dave (a native customer) ----
p alice register alice >/dev/null && p alice entity create acme Acme Support >/dev/null &&
	p alice entity code acme >"$dir/code" && p bob register bob >/dev/null &&
	p bob agent join acme "$(awk '/^code:/ {print $2}' "$dir/code")" >/dev/null &&
	p alice entity approve acme 1 >/dev/null && p alice entity rules acme --agent bob default-agent=on >/dev/null &&
	p alice entity code acme --gateway >"$dir/gcode" && p gw register acme-gw >/dev/null &&
	p gw agent join acme "$(awk '/^code:/ {print $2}' "$dir/gcode")" >/dev/null &&
	p alice entity approve acme 2 >/dev/null && p dave register dave >/dev/null || bail "business setup"

run alice auth component create acme acme-sso --type oidc --issuer "$ISS" \
	--discovery "$ISS/.well-known/openid-configuration" --client-id parley-sso --secret-ref file:sso-secret \
	--scopes openid --binding sub --ttl "$TTL"
sso=$(sed -n 's/^component \([0-9]*\) acme-sso .*/\1/p' "$dir/out")
run alice auth component create acme acme-phone --type oidc --issuer "$ISS" \
	--discovery "$ISS/.well-known/openid-configuration" --client-id parley-phone --secret-ref file:phone-secret \
	--scopes "openid phone" --binding phone --ttl "$TTL"
phone=$(sed -n 's/^component \([0-9]*\) acme-phone .*/\1/p' "$dir/out")
[ -n "$sso" ] && [ -n "$phone" ] && p alice auth component activate acme "$sso" >/dev/null &&
	p alice auth component activate acme "$phone" >/dev/null || bail "components"
run bob auth component list acme
check "bob sees both active components" 'grep -qP "^$sso\tacme-sso\toidc\tactive\t\Q$ISS\E\tsub\t${TTL}s$" "$dir/out" &&
	grep -qP "^$phone\tacme-phone\toidc\tactive\t\Q$ISS\E\tphone_number\t${TTL}s$" "$dir/out"'

# ---- the gateway and its providers ----
mkdir "$dir/fake"
"$FAKE_PROVIDER" --port-file "$dir/fake.port" --log "$dir/fake" &
pids+=($!)
wait_file "$dir/fake.port" 10 || bail "fake-provider did not start"
FAKE="http://127.0.0.1:$(cat "$dir/fake.port")"
for _ in 1 2 3; do # its public_url (what Twilio signs) names its port too: as parleyd's above
	gport=$(free_port) || bail "no free port"
	GW="http://127.0.0.1:$gport"
	GW_TWILIO=$TWILIO_TOKEN GW_WABA=$WABA_SECRET GW_WABA_TOKEN=waba-bearer "$PARLEY_GATEWAY" --entity=acme \
		--home="$dir/gw" --server="$PARLEY_SERVER" --port="$gport" --public_url="$GW" \
		--twilio.account_sid=AC0123 --twilio.auth_token=env:GW_TWILIO --twilio.from=+15550001111 \
		--twilio.api_base="$FAKE" --waba.app_secret=env:GW_WABA --waba.token=env:GW_WABA_TOKEN \
		--waba.phone_number_id=1055 --waba.api_base="$FAKE" --retry_base_ms=100 --retry_cap_ms=400 \
		2>>"$dir/gateway.log" &
	pid=$!
	up "$pid" curl -sf -o /dev/null "$GW/healthz" && break
	wait "$pid" 2>/dev/null
	pid=
done
[ -n "$pid" ] || bail "parley-gateway did not start"
pids+=("$pid")

# bob's agent client listens through the whole scenario
listen_bg bob 150 "$dir/bob.listen"
sleep 1

# thread_line N: thread N's line of bob's `parley threads acme` (tab-separated) into $dir/line
# gateway_thread TEXT: the thread in which bob's listen shows the gateway writing TEXT (fixed string;
# waits up to 15 s); bob's listen copied into $dir/out
gateway_thread() {
	local i id=
	for ((i = 0; i < 150; i++)); do
		id=$(grep -F "acme-gw: $1" "$dir/bob.listen" | sed -n 's/.*#\([0-9]*\) acme-gw: .*/\1/p' | head -1)
		[ -n "$id" ] && break
		sleep 0.1
	done
	cp "$dir/bob.listen" "$dir/out"
	echo "$id"
}
thread_line() { p bob threads acme >"$dir/out" 2>&1; grep -P "^#$1\t" "$dir/out" >"$dir/line"; }
# sign_in URL LOGIN PASSWORD: login.mjs as the customer's browser, through parleyd's start link to the
# provider and back to parleyd's callback (--follow-final: the callback must answer 2xx); status in rc
sign_in() {
	rc=0
	"$NODE" "$IDP_DIR/login.mjs" --ca "$dir/ca/ca.pem" --follow-final "$1" "$2" "$3" >"$dir/out" 2>&1 || rc=$?
}
# authenticate THREAD COMPONENT: bob's Authenticate (`parley thread auth`); the request id in req
authenticate() {
	run bob thread auth "$1" "$2"
	req=$(sed -n 's/^auth request \([0-9]*\) sent to the customer .*/\1/p' "$dir/out")
}

# ======== native: dave ========
listen_bg dave 40 "$dir/dave.listen"
p dave send acme "I want to change my delivery address" >/dev/null || bail "dave's first message"
wait_for "$dir/bob.listen" '#[0-9]+ dave: I want to change my delivery address' 15
native=$(sed -n 's/.*#\([0-9]*\) dave: I want to change my delivery address.*/\1/p' "$dir/bob.listen" | head -1)
cp "$dir/bob.listen" "$dir/out"
check "native: bob gets dave's thread" '[ -n "$native" ]'
[ -n "$native" ] || bail "no native thread"
# the prompt reaches the customer's devices online when it is sent: bob first answers, and once dave's
# listen printed that answer it is connected
p bob thread send "$native" "To change it I need to know it is you: a sign-in link follows" >/dev/null
wait_for "$dir/dave.listen" "#$native acme: To change it I need to know it is you" 15
cp "$dir/dave.listen" "$dir/out"
check "native: dave's listen gets bob's answer from the entity's handle" \
	'grep -qE "^[0-9:]{8} #$native acme: To change it I need to know it is you: a sign-in link follows$" "$dir/dave.listen"'
run bob auth status "$native"
check "native: the thread starts unverified" 'grep -qx "thread $native: unverified" "$dir/out"'
authenticate "$native" acme-sso
check "native: bob sends acme-sso" '[ -n "$req" ]'
wait_for "$dir/dave.listen" "asks you to sign in with acme-sso: .* \(request $req, " 10
cp "$dir/dave.listen" "$dir/out"
check "native: dave's listen prints the sign-in link" \
	'grep -qE "^Acme Support asks you to sign in with acme-sso: http://127\.0\.0\.1:$pport/v1/auth/start/[A-Za-z0-9_-]+ \(request $req, expires [0-9:]{8}\)$" "$dir/out"'
url=$(sed -n "s/^Acme Support asks you to sign in with acme-sso: \([^ ]*\) (request $req,.*/\1/p" "$dir/dave.listen")
t0=$(date +%s)
sign_in "$url" dave dave-pw
t1=$(date +%s)
check "native: dave signs in at the provider (login.mjs, callback answered 2xx)" '[ "$rc" = 0 ]'
wait_for "$dir/bob.listen" "^#$native: customer authenticated by acme-sso until" 10
cp "$dir/bob.listen" "$dir/out"
check "native: bob's listen: authenticated by acme-sso until <credential expiry>" \
	'grep -E "^#$native: customer authenticated by acme-sso until [0-9-]{10} [0-9:]{8} UTC$" "$dir/out" >"$dir/line" && expiry_ok "$dir/line"'
run bob auth status "$native"
check "native: bob's auth status: authenticated with the expiry, the sub bound, the request done" \
	'grep -qE "^thread $native: authenticated by acme-sso until [0-9-]{10} [0-9:]{8} UTC$" "$dir/out" && expiry_ok "$dir/out" &&
	 grep -qx "claim sub: dave-at-acme" "$dir/out" && grep -qP "^request $req\tacme-sso\tdone$" "$dir/out"'
thread_line "$native"
check "native: bob's thread list shows the level and its expiry" 'grep -qE "authenticated until [0-9-]{10} [0-9:]{8} by acme-sso$" "$dir/line" && expiry_ok "$dir/line"'
lapse_left native
wait_for "$dir/bob.listen" "^#$native: authentication expired, now unverified$" $((TTL + 5))
cp "$dir/bob.listen" "$dir/out"
check "native: after the ttl bob's listen says: authentication expired, now unverified" \
	'grep -qx "#$native: authentication expired, now unverified" "$dir/out"'
run bob auth status "$native"
check "native: after the ttl bob's auth status: unverified again" 'grep -qx "thread $native: unverified" "$dir/out"'
thread_line "$native"
check "native: and the thread list no longer says authenticated" '[ -s "$dir/line" ] && ! grep -q authenticated "$dir/line"'

# ======== sms: carol, +15551234567 ========
# twilio_post SID TEXT [KEY]: Twilio's inbound webhook, signed as Twilio signs: base64 HMAC-SHA1 under
# the auth token (or KEY) over the URL the provider calls + every parameter sorted by name, name and value joined
twilio_post() {
	local -a params=("AccountSid=AC0123" "ApiVersion=2010-04-01" "Body=$2" "From=$NUM" "MessageSid=$1"
		"NumMedia=0" "SmsMessageSid=$1" "To=+15550001111")
	local data="$GW/sms/twilio" kv sig
	local -a form=()
	while IFS= read -r kv; do data+="${kv%%=*}${kv#*=}"; form+=(--data-urlencode "$kv"); done \
		< <(printf '%s\n' "${params[@]}" | LC_ALL=C sort -t= -k1,1)
	sig=$(printf %s "$data" | openssl dgst -sha1 -hmac "${3:-$TWILIO_TOKEN}" -binary | openssl base64 -A)
	curl -s -o "$dir/out" -w '%{http_code}' -H "X-Twilio-Signature: $sig" "${form[@]}" "$GW/sms/twilio"
}
# provider_link PATH_SUFFIX: the newest call of the gateway to the fake whose request target ends in
# PATH_SUFFIX (its file in call), and the sign-in link found anywhere in its body (form or JSON) in link
provider_link() {
	call=$(grep -lE "^POST [^ ]*$1 HTTP" "$dir"/fake/*.req 2>/dev/null | tail -1)
	link=""
	[ -n "$call" ] || return 1
	link=$("$NODE" -e '
		const t = require("fs").readFileSync(process.argv[1], "utf8"), body = t.slice(t.indexOf("\r\n\r\n") + 4);
		const strings = [];
		try { (function walk(v) { if (typeof v === "string") strings.push(v); else if (v && typeof v === "object") Object.values(v).forEach(walk); })(JSON.parse(body)); }
		catch { for (const [, v] of new URLSearchParams(body)) strings.push(v); }
		for (const s of strings) { const m = s.match(/https?:\/\/[^\s"<>]+\/v1\/auth\/start\/[A-Za-z0-9_-]+/); if (m) { console.log(m[0]); break; } }' "$call")
	[ -n "$link" ]
}
form_field() { "$NODE" -e 'const t=require("fs").readFileSync(process.argv[1],"utf8");
	process.stdout.write(new URLSearchParams(t.slice(t.indexOf("\r\n\r\n")+4)).get(process.argv[2]) ?? "")' "$1" "$2"; }
# wait_link PATH_SUFFIX N: until the fake has N calls to PATH_SUFFIX carrying a link (or 15 s)
wait_link() {
	local i
	for ((i = 0; i < 150; i++)); do
		[ "$(grep -lE "^POST [^ ]*$1 HTTP" "$dir"/fake/*.req 2>/dev/null | wc -l)" -ge "$2" ] && provider_link "$1" && return 0
		sleep 0.1
	done
	return 1
}

st=$(twilio_post SM0000000000000000000000000000aa00 "a forged text" not-the-token)
check "sms: a webhook signed with another key is refused (403)" '[ "$st" = 403 ]'
st=$(twilio_post SM0000000000000000000000000000aa01 "I never got my refund")
check "sms: the signed Twilio webhook is accepted (200, TwiML)" '[ "$st" = 200 ] && grep -q "<Response" "$dir/out"'
sms=$(gateway_thread "I never got my refund")
check "sms: bob gets the sms thread (and not the forged text)" '[ -n "$sms" ] && ! grep -q "a forged text" "$dir/out"'
[ -n "$sms" ] || bail "no sms thread"
thread_line "$sms"
check "sms: the thread is sms $NUM via the gateway, channel-verified" \
	'grep -qP "\tsms \Q$NUM\E via acme-gw, E2E ends at the gateway, channel-verified$" "$dir/line"'
authenticate "$sms" acme-phone
check "sms: bob sends acme-phone" '[ -n "$req" ]'
wait_link /Messages.json 1
cp "$call" "$dir/out" 2>/dev/null
check "sms: the link reaches $NUM as Twilio's Messages call (basic auth, To, the start link in Body)" \
	'[ -n "$link" ] && grep -q "^POST /2010-04-01/Accounts/AC0123/Messages.json " "$call" &&
	 grep -qi "^Authorization: Basic $(printf AC0123:%s "$TWILIO_TOKEN" | openssl base64 -A)" "$call" &&
	 [ "$(form_field "$call" To)" = "$NUM" ] && [ "$(form_field "$call" From)" = +15550001111 ] &&
	 case $link in "http://127.0.0.1:$pport/v1/auth/start/"*) true ;; *) false ;; esac'
t0=$(date +%s)
sign_in "$link" carol carol-pw
t1=$(date +%s)
check "sms: carol (verified phone $NUM) signs in" '[ "$rc" = 0 ]'
wait_for "$dir/bob.listen" "^#$sms: customer authenticated by acme-phone until" 10
cp "$dir/bob.listen" "$dir/out"
check "sms: bob's listen: authenticated by acme-phone until <credential expiry>" \
	'grep -E "^#$sms: customer authenticated by acme-phone until [0-9-]{10} [0-9:]{8} UTC$" "$dir/out" >"$dir/line" && expiry_ok "$dir/line"'
run bob auth status "$sms"
check "sms: bob's auth status: authenticated, the phone number bound" \
	'grep -qE "^thread $sms: authenticated by acme-phone until [0-9-]{10} [0-9:]{8} UTC$" "$dir/out" && expiry_ok "$dir/out" &&
	 grep -qx "claim phone_number: $NUM" "$dir/out"'
thread_line "$sms"
check "sms: bob's thread list shows authenticated and its expiry" \
	'grep -qE "E2E ends at the gateway, authenticated until [0-9-]{10} [0-9:]{8} by acme-phone$" "$dir/line" && expiry_ok "$dir/line"'
lapse_left sms
wait_for "$dir/bob.listen" "^#$sms: authentication expired, now channel-verified$" $((TTL + 5))
cp "$dir/bob.listen" "$dir/out"
check "sms: after the ttl bob's listen says: authentication expired, now channel-verified" \
	'grep -qx "#$sms: authentication expired, now channel-verified" "$dir/out"'
run bob auth status "$sms"
check "sms: after the ttl: channel-verified again" 'grep -qx "thread $sms: channel-verified" "$dir/out"'
thread_line "$sms"
check "sms: and the thread list says channel-verified" 'grep -qP "\tsms .*, channel-verified$" "$dir/line"'
# another person signs in on the link sent to this number
authenticate "$sms" acme-phone
wait_link /Messages.json 2
sign_in "$link" mallory mallory-pw
check "sms: another person's sign-in is refused at the callback (login.mjs: not 2xx)" '[ "$rc" = 5 ]'
wait_for "$dir/bob.listen" "^#$sms: authentication request $req failed: IDENTITY_MISMATCH$" 10
cp "$dir/bob.listen" "$dir/out"
check "sms: bob's listen: the request failed IDENTITY_MISMATCH" \
	'[ -n "$req" ] && grep -qx "#$sms: authentication request $req failed: IDENTITY_MISMATCH" "$dir/out"'
run bob auth status "$sms"
check "sms: the level stays channel-verified" \
	'grep -qx "thread $sms: channel-verified" "$dir/out" && grep -qP "^request $req\tacme-phone\tfailed\tIDENTITY_MISMATCH$" "$dir/out"'

# ======== waba: erin, +15557654321 ========
waba_body=$(printf '{"object":"whatsapp_business_account","entry":[{"id":"105599","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"1055"},"contacts":[{"profile":{"name":"Erin"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"wamid.scenario01","timestamp":"%s","type":"text","text":{"body":"Can I change my plan?"}}]}}]}]}' "$WA" "$WA" "$(date +%s)")
sig=$(printf %s "$waba_body" | openssl dgst -sha256 -hmac "$WABA_SECRET" | sed 's/^.*= *//')
st=$(curl -s -o "$dir/out" -w '%{http_code}' -H "Content-Type: application/json" -H "X-Hub-Signature-256: sha256=$sig" \
	--data-binary "$waba_body" "$GW/waba")
check "waba: the signed webhook is accepted (200)" '[ "$st" = 200 ]'
waba=$(gateway_thread "Can I change my plan?")
check "waba: bob gets the waba thread" '[ -n "$waba" ] && [ "$waba" != "$sms" ]'
[ -n "$waba" ] || bail "no waba thread"
thread_line "$waba"
check "waba: the thread is waba +$WA via the gateway, channel-verified" \
	'grep -qP "\twaba \Q+$WA\E via acme-gw, E2E ends at the gateway, channel-verified$" "$dir/line"'
authenticate "$waba" acme-phone
check "waba: bob sends acme-phone" '[ -n "$req" ]'
wait_link /messages 1
cp "$call" "$dir/out" 2>/dev/null
check "waba: the link reaches the number as a WABA messages call (Bearer token, to, the start link)" \
	'[ -n "$link" ] && grep -q "^POST /v[0-9.]*/1055/messages " "$call" && grep -qi "^Authorization: Bearer waba-bearer" "$call" &&
	 grep -q "\"to\": *\"+\?$WA\"" "$call" && grep -q "\"messaging_product\": *\"whatsapp\"" "$call"'
t0=$(date +%s)
sign_in "$link" erin erin-pw
t1=$(date +%s)
check "waba: erin (verified phone +$WA) signs in" '[ "$rc" = 0 ]'
wait_for "$dir/bob.listen" "^#$waba: customer authenticated by acme-phone until" 10
cp "$dir/bob.listen" "$dir/out"
check "waba: bob's listen: authenticated by acme-phone until <credential expiry>" \
	'grep -E "^#$waba: customer authenticated by acme-phone until [0-9-]{10} [0-9:]{8} UTC$" "$dir/out" >"$dir/line" && expiry_ok "$dir/line"'
run bob auth status "$waba"
check "waba: bob's auth status: authenticated" \
	'grep -qE "^thread $waba: authenticated by acme-phone until [0-9-]{10} [0-9:]{8} UTC$" "$dir/out" && grep -qx "claim phone_number: +$WA" "$dir/out"'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
