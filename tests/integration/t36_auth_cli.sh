#!/usr/bin/env bash
# 36: `parley auth` and `parley thread auth` (issue 11, docs/auth.md) against a real parleyd, as a
# business and its customer run them: alice (admin) configures components (create, edit, activate,
# list, deactivate) and is the only one who may; bob (agent) sees the active ones only and sends one to
# dave's thread by name and by id; dave's `parley listen` shows the sign-in prompt with the URL the
# agent was given; `parley auth status` on both sides; the refusals a user meets (an inactive component,
# a bad answer, a thread that is not theirs) with their error names; `parley auth email` (the agent
# records, lists and removes a customer's known emails; the customer and strangers may not). The exact line formats are
# client-cli-auth's; this checks that real answers produce them.
set -uo pipefail
: "${PARLEYD:?}" "${PARLEY:?}"
# the store: SQLite in --data_dir, or a fresh PostgreSQL database in the integration-pg suite
tools=$(dirname "$0")/../tools
store=$("$tools/parleyd-store.sh" new) || exit 99
dir=$(mktemp -d /tmp/parley-auth-cli-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; "$tools/parleyd-store.sh" drop "$store"; }
trap cleanup EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; sed 's/^/#   /' "$dir/out" 2>/dev/null; fail=1; fi; }

"$PARLEYD" --port=0 --port_file="$dir/port" --data_dir="$dir/data" ${store:+"$store"} 2>"$dir/log" &
pid=$!
for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
export PARLEY_SERVER="ws://127.0.0.1:$port/v1/websocket"

p() { local home=$1; shift; PARLEY_HOME="$dir/$home" "$PARLEY" "$@"; }
# run HOME ARGS...: output (stdout and stderr) in $dir/out, status in $rc
run() { p "$@" >"$dir/out" 2>&1; rc=$?; }

# the business: alice admin, bob agent; dave's thread
p alice register alice >/dev/null && p alice entity create acme-support Acme Support >/dev/null &&
	p alice entity code acme-support >"$dir/code" && p bob register bob >/dev/null &&
	p bob agent join acme-support "$(awk '/^code:/ {print $2}' "$dir/code")" >/dev/null &&
	p alice entity approve acme-support 1 >/dev/null && p dave register dave >/dev/null &&
	p eve register eve >/dev/null &&
	p dave send acme-support "my order never came" >/dev/null || { echo "Bail out! setup failed"; exit 1; }
p alice listen --timeout 2 >/dev/null 2>&1
thread=$(p alice threads acme-support | sed -n 's/^#\([0-9]*\).*/\1/p' | head -1)
check "dave's thread exists" '[ -n "$thread" ]'
p alice thread add "$thread" bob >/dev/null || { echo "Bail out! bob not added to the thread"; exit 1; }

# ---- components: admins only ----
run alice auth component create acme-support acme-sso --type oidc --issuer https://id.acme.example \
	--authorize https://id.acme.example/authorize --token https://id.acme.example/token \
	--jwks https://id.acme.example/jwks --client-id parley-chat --secret-ref file:acme-oidc \
	--scopes "openid email" --binding sub --ttl 3600
check "create prints the new draft" 'grep -qE "^component [0-9]+ acme-sso \(oidc, draft\)$" "$dir/out"'
sso=$(sed -n 's/^component \([0-9]*\) .*/\1/p' "$dir/out")
run alice auth component create acme-support acme-code --type otp --binding none --ttl 900
check "an otp component" 'grep -qE "^component [0-9]+ acme-code \(otp, draft\)$" "$dir/out"'
code_id=$(sed -n 's/^component \([0-9]*\) .*/\1/p' "$dir/out")
run bob auth component create acme-support bobs --type otp --binding none
check "an agent may not create one (NOT_ENTITY_ADMIN, exit 1)" '[ "$rc" = 1 ] && grep -q NOT_ENTITY_ADMIN "$dir/out"'
run alice auth component edit acme-support "$sso" --scopes "openid email profile"
check "edit keeps what the options do not name" 'grep -qE "^component $sso acme-sso \(oidc, draft\)$" "$dir/out"'
run alice auth component activate acme-support "$sso"
check "activate" 'grep -qE "^component $sso acme-sso \(oidc, active\)$" "$dir/out"'
run alice auth component edit acme-support "$sso" --ttl 60
check "an active component cannot be edited" '[ "$rc" = 1 ]'
run alice auth component list acme-support
check "the admin lists every component, one tab-separated line each" \
	'[ "$(wc -l <"$dir/out")" = 2 ] &&
	 grep -qP "^$sso\tacme-sso\toidc\tactive\thttps://id.acme.example\tsub\t3600s$" "$dir/out" &&
	 grep -qP "^$code_id\tacme-code\totp\tdraft\t-\tnone\t900s$" "$dir/out"'
run bob auth component list acme-support
check "an agent sees the active ones only" '[ "$(wc -l <"$dir/out")" = 1 ] && grep -q acme-sso "$dir/out"'
run dave auth component list acme-support
check "a customer sees none of them" '[ "$rc" = 1 ]'

# ---- the agent's Authenticate ----
# a prompt reaches the customer's devices that are online: dave listens while bob sends
p dave listen --timeout 8 >"$dir/listen" 2>&1 &
lpid=$!
for _ in $(seq 100); do grep -q "member added" "$dir/listen" && break; sleep 0.1; done
run bob thread auth "$thread" acme-code
check "a draft component is not sent (COMPONENT_NOT_ACTIVE or not listed)" '[ "$rc" = 1 ]'
run bob thread auth "$thread" acme-sso
check "thread auth by name" 'grep -qE "^auth request [0-9]+ sent to the customer \(expires [0-9]{2}:[0-9]{2}:[0-9]{2}\)$" "$dir/out"'
req=$(sed -n 's/^auth request \([0-9]*\) .*/\1/p' "$dir/out")
run bob thread auth "$thread" "$sso"
check "thread auth by id" 'grep -qE "^auth request [0-9]+ sent to the customer" "$dir/out"'
run dave thread auth "$thread" "$sso"
check "the customer cannot send one" '[ "$rc" = 1 ]'
run eve auth status "$thread"
check "a stranger gets no status" '[ "$rc" = 1 ]'

# ---- the customer's side ----
wait "$lpid"
cp "$dir/listen" "$dir/out"
check "dave's listen shows the prompt with a sign-in URL" \
	'grep -qE "^Acme Support asks you to sign in with acme-sso: https?://[^ ]+/v1/auth/start/[^ ]+ \(request $req, expires [0-9:]{8}\)$" "$dir/out"'
url=$(sed -n "s/^Acme Support asks you to sign in with acme-sso: \([^ ]*\) (request $req,.*/\1/p" "$dir/listen")
run dave auth status "$thread"
check "the customer's status: unverified, the requests open with the link the prompt gave" \
	'grep -qx "thread $thread: unverified" "$dir/out" && grep -qP "^request $req\tacme-sso\topen\t\Q$url\E$" "$dir/out"'
run bob auth status "$thread"
check "the agent's status lists both requests, newest first, without the customer's link" \
	'grep -qx "thread $thread: unverified" "$dir/out" && [ "$(grep -c "^request " "$dir/out")" = 2 ] &&
	 [ "$(sed -n 2p "$dir/out" | cut -f1)" != "request $req" ] && ! grep -q "auth/start" "$dir/out"'
run dave auth answer "$req" --otp 123456
check "an otp answer to an oidc request is refused (exit 1)" '[ "$rc" = 1 ]'
run dave auth answer "$req" --otp 123456 --jwt x
check "two answers at once: usage (exit 2)" '[ "$rc" = 2 ]'

run alice auth component deactivate acme-support "$sso"
check "deactivate" 'grep -qE "^component $sso acme-sso \(oidc, inactive\)$" "$dir/out"'
run bob thread auth "$thread" "$sso"
check "an inactive component is not sent (COMPONENT_NOT_ACTIVE)" '[ "$rc" = 1 ] && grep -q COMPONENT_NOT_ACTIVE "$dir/out"'

# ---- a one-time code on an SMS thread: the gateway sends it out, the customer's answer comes back ----
p alice entity code acme-support --gateway >"$dir/gcode" && p gw register acmegw >/dev/null &&
	p gw agent join acme-support "$(awk '/^code:/ {print $2}' "$dir/gcode")" >/dev/null &&
	p alice entity approve acme-support 2 >/dev/null &&
	p gw send acme-support "where is my parcel" --channel sms --as +15551234567 >/dev/null ||
	{ echo "Bail out! gateway setup failed"; exit 1; }
p alice listen --timeout 2 >/dev/null 2>&1
sms=$(p alice threads acme-support | sed -n 's/^#\([0-9]*\).*+15551234567.*/\1/p' | head -1)
check "the sms thread" '[ -n "$sms" ]'
p alice thread add "$sms" bob >/dev/null
p alice auth component activate acme-support "$code_id" >/dev/null
p gw listen --timeout 6 >"$dir/gwlisten" 2>&1 &
gpid=$!
p bob listen --timeout 9 >"$dir/boblisten" 2>&1 &
bpid=$!
sleep 2
run bob thread auth "$sms" acme-code
otpreq=$(sed -n 's/^auth request \([0-9]*\) .*/\1/p' "$dir/out")
wait "$gpid"
cp "$dir/gwlisten" "$dir/out"
check "the gateway's listen: the channel customer and the code to send" \
	'grep -qE "^\[sms:\+15551234567\] Acme Support asks you for the one-time code of acme-code \(request $otpreq, expires [0-9:]{8}\): send the customer the code [0-9]{6}$" "$dir/out"'
otp=$(sed -n 's/.*send the customer the code \([0-9]*\)$/\1/p' "$dir/gwlisten")
wrong=$([ "$otp" = 000000 ] && echo 111111 || echo 000000)
run gw auth answer "$otpreq" --otp "$wrong"
check "a wrong code: OTP_WRONG" '[ "$rc" = 1 ] && grep -q OTP_WRONG "$dir/out"'
run gw auth answer "$otpreq" --otp "$otp"
check "the right code: accepted" 'grep -qx "request $otpreq: accepted" "$dir/out"'
wait "$bpid"
cp "$dir/boblisten" "$dir/out"
check "the agent's listen: the customer is authenticated" \
	'grep -qE "^#$sms: customer authenticated by acme-code until [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC$" "$dir/out"'
run bob auth status "$sms"
check "the agent's status: authenticated, the request done" \
	'grep -qE "^thread $sms: authenticated by acme-code until [0-9-]{10} [0-9:]{8} UTC$" "$dir/out" &&
	 grep -qP "^request $otpreq\tacme-code\tdone$" "$dir/out"'
run bob threads acme-support
check "the thread list shows the level" 'grep -E "^#$sms\s" "$dir/out" | grep -q "authenticated"'

# ---- the customer's known emails (the email binding compares the sign-in's verified email) ----
run bob auth email "$sms"
check "no known email: an empty list" '[ "$rc" = 0 ] && [ ! -s "$dir/out" ]'
run bob auth email "$thread" Dave@Example.COM
check "the agent records one: the list, lower-cased" '[ "$rc" = 0 ] && [ "$(cat "$dir/out")" = "dave@example.com" ]'
run bob auth email "$thread" d2@example.com
check "one a line, sorted" '[ "$(cat "$dir/out")" = "$(printf "d2@example.com\ndave@example.com")" ]'
run alice auth email "$thread"
check "an admin lists them" '[ "$rc" = 0 ] && [ "$(wc -l <"$dir/out")" = 2 ]'
run bob auth email "$thread" DAVE@example.com --remove
check "--remove" '[ "$rc" = 0 ] && [ "$(cat "$dir/out")" = "d2@example.com" ]'
run bob auth status "$thread"
check "the agent's status lists the known emails" 'grep -qx "known email: d2@example.com" "$dir/out"'
run dave auth status "$thread"
check "the customer's does not" '! grep -q "known email" "$dir/out"'
run dave auth email "$thread" dave@example.com
check "the customer cannot record one (NOT_ENTITY_MEMBER, exit 1)" '[ "$rc" = 1 ] && grep -q NOT_ENTITY_MEMBER "$dir/out"'
run eve auth email "$thread"
check "nor can a stranger list them" '[ "$rc" = 1 ] && grep -q NOT_ENTITY_MEMBER "$dir/out"'
run bob auth email "$thread" "dave at example.com"
check "not an address: EMAIL_INVALID, exit 1" '[ "$rc" = 1 ] && grep -q EMAIL_INVALID "$dir/out"'
for args in "" "x" "$thread --remove" "$thread a@b.example c@d.example" "$thread a@b.example --bogus"; do
	# shellcheck disable=SC2086
	run bob auth email $args
	check "usage: auth email $args (exit 2)" '[ "$rc" = 2 ]'
done

# ---- a request nobody answers: the agent's listen says it expired ----
kill -TERM "$pid" && wait "$pid"
"$PARLEYD" --port=0 --port_file="$dir/port2" --data_dir="$dir/data" ${store:+"$store"} --auth_request_ttl_s=2 2>>"$dir/log" &
pid=$!
for _ in $(seq 300); do [ -s "$dir/port2" ] && break; sleep 0.05; done
export PARLEY_SERVER="ws://127.0.0.1:$(cat "$dir/port2")/v1/websocket"
p alice auth component activate acme-support "$sso" >/dev/null
p bob listen --timeout 7 >"$dir/listen" 2>&1 &
lpid=$!
sleep 1.5
run bob thread auth "$thread" acme-sso
late=$(sed -n 's/^auth request \([0-9]*\) .*/\1/p' "$dir/out")
wait "$lpid"
cp "$dir/listen" "$dir/out"
check "the agent's listen: the request expired" '[ -n "$late" ] && grep -qx "#$thread: authentication request $late expired" "$dir/out"'
run bob auth status "$thread"
check "and its status says so" 'grep -qP "^request $late\tacme-sso\texpired$" "$dir/out"'

kill -TERM "$pid" && wait "$pid"
pid=
exit $fail
