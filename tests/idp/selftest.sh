#!/usr/bin/env bash
# tests/idp/selftest.sh — meson test 'idp-selftest': the test identity provider works end to end, as
# the C side will use it. Makes the CA, starts idp.mjs over HTTPS, signs in with login.mjs, redeems the
# code at the token endpoint with curl (client_secret_basic, PKCE verifier made with openssl) and checks
# the ID token: alg RS256 for one client and ES256 for another, signature against the published JWKS,
# iss, aud, nonce, email, phone_number. Then what must be refused is refused: a replayed code, a wrong
# PKCE verifier, no PKCE at all, a wrong password. Finally /__test/rotate really changes the signing kid
# Every /__test/tamper mode makes the next ID token wrong in exactly its one property (and only the
# next); a tampered access token is refused by userinfo; /__test/count counts the JWKS fetches.
# SIGTERM stops the provider with status 0.
# Needs node (CI has it: the interop tests need it too) and tests/idp/node_modules (tests/idp/setup.sh,
# run by `make deps-test`): their absence is a failure, not a skip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NODE=${NODE:-node}
REDIRECT=http://127.0.0.1:7600/v1/auth/callback   # never requested: login.mjs stops at the redirect

tmp=$(mktemp -d)
idp_pid=
cleanup() {
	if [ -n "$idp_pid" ]; then kill "$idp_pid" 2>/dev/null || true; wait "$idp_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "idp-selftest: FAIL: $*" >&2
	echo "--- idp log (last 30 lines) ---" >&2
	tail -n 30 "$tmp/idp.log" >&2 2>/dev/null || true
	exit 1
}
ok() { echo "ok - $*"; }

command -v "$NODE" >/dev/null || fail "node not found (NODE=$NODE)"
[ -f "$here/node_modules/oidc-provider/package.json" ] || fail "tests/idp/node_modules missing: run tests/idp/setup.sh"

# field PATH of the JSON document on stdin (dotted path), empty when absent
jget() { "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);
	for (const k of process.argv[1].split(".")) v=v?.[k]; process.stdout.write(v===undefined?"":String(v));})' "$1"; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
rand() { openssl rand 32 | b64url; }

"$here/make-ca.sh" "$tmp/ca" || fail "make-ca.sh"
[ "$(stat -c %a "$tmp/ca/ca.key")" = 600 ] && [ "$(stat -c %a "$tmp/ca/server.key")" = 600 ] || fail "key files are not 0600"
openssl verify -CAfile "$tmp/ca/ca.pem" "$tmp/ca/server.pem" >/dev/null || fail "server cert does not verify"
ok "test CA and server certificate (keys 0600)"

cat >"$tmp/config.json" <<EOF
{ "clients": [
    { "client_id": "parley-rs", "client_secret": "secret-rs", "redirect_uris": ["$REDIRECT"],
      "id_token_signed_response_alg": "RS256", "token_endpoint_auth_method": "client_secret_basic" },
    { "client_id": "parley-es", "client_secret": "secret-es", "redirect_uris": ["$REDIRECT"],
      "id_token_signed_response_alg": "ES256", "token_endpoint_auth_method": "client_secret_basic" } ],
  "users": [
    { "id": "alice", "password": "alice-pw",
      "claims": { "email": "alice@example.test", "email_verified": true, "phone_number": "+15551234567",
                  "phone_number_verified": true, "name": "Alice Example" } } ],
  "id_token_ttl_s": 120, "access_token_ttl_s": 120 }
EOF

"$NODE" "$here/idp.mjs" --port 0 --port-file "$tmp/port" --cert "$tmp/ca/server.pem" --key "$tmp/ca/server.key" \
	--config "$tmp/config.json" --test-control 2>"$tmp/idp.log" &
idp_pid=$!
for _ in $(seq 1 100); do
	[ -s "$tmp/port" ] && break
	kill -0 "$idp_pid" 2>/dev/null || fail "idp.mjs exited at start"
	sleep 0.1
done
[ -s "$tmp/port" ] || fail "idp.mjs wrote no port file within 10 s"
ISS="https://127.0.0.1:$(cat "$tmp/port")"
curlx() { curl -sS --max-time 15 --cacert "$tmp/ca/ca.pem" "$@"; }
curlx "$ISS/.well-known/openid-configuration" >"$tmp/disco.json" || fail "discovery over HTTPS with the test CA"
[ "$(jget issuer <"$tmp/disco.json")" = "$ISS" ] || fail "discovery issuer is not $ISS"
[ "$(jget code_challenge_methods_supported <"$tmp/disco.json")" = S256 ] || fail "PKCE methods are not just S256"
[ "$(jget grant_types_supported <"$tmp/disco.json")" = authorization_code ] || fail "grant types are not just authorization_code"
ok "provider up at $ISS (discovery trusted through the test CA)"

# sign_in CLIENT USER PASSWORD [VERIFIER]: sets code, state, nonce, verifier; login.mjs's status in rc
sign_in() {
	verifier=${4:-$(openssl rand 48 | b64url)}
	local challenge pkce=""
	challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | b64url)
	state=$(rand) nonce=$(rand)
	[ "${NO_PKCE:-}" ] || pkce="&code_challenge=$challenge&code_challenge_method=S256"
	local url
	url="$ISS/auth?response_type=code&client_id=$1&redirect_uri=$(printf %s "$REDIRECT" | uri_encode)&scope=openid%20email%20phone%20profile&state=$state&nonce=$nonce$pkce"
	rc=0
	callback=$("$NODE" "$here/login.mjs" --ca "$tmp/ca/ca.pem" "$url" "$2" "$3" 2>"$tmp/login.err") || rc=$?
	code=$(node_param "$callback" code)
}
uri_encode() { "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(encodeURIComponent(s)))'; }
node_param() { "$NODE" -e 'try{process.stdout.write(new URL(process.argv[1]).searchParams.get(process.argv[2])??"")}catch{}' "$1" "$2"; }

# redeem CLIENT SECRET CODE VERIFIER: token endpoint answer in $tmp/token.json, HTTP status in status
redeem() {
	status=$(curlx -o "$tmp/token.json" -w '%{http_code}' -u "$1:$2" -d grant_type=authorization_code \
		--data-urlencode "code=$3" --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode "code_verifier=$4" \
		"$ISS/token") || fail "token endpoint unreachable"
}

# check_id_token CLIENT ALG: verifies the ID token in $tmp/token.json; sets kid
check_id_token() {
	local tok
	tok=$(jget id_token <"$tmp/token.json")
	[ -n "$tok" ] || fail "$1: no id_token in $(cat "$tmp/token.json")"
	curlx "$ISS/jwks" >"$tmp/jwks.json" || fail "jwks"
	"$NODE" "$here/idtoken.mjs" "$tmp/jwks.json" "$tok" >"$tmp/idt.json" || fail "$1: ID token signature"
	[ "$(jget header.alg <"$tmp/idt.json")" = "$2" ] || fail "$1: header alg is $(jget header.alg <"$tmp/idt.json"), not $2"
	[ "$(jget payload.iss <"$tmp/idt.json")" = "$ISS" ] || fail "$1: iss"
	[ "$(jget payload.aud <"$tmp/idt.json")" = "$1" ] || fail "$1: aud"
	[ "$(jget payload.sub <"$tmp/idt.json")" = alice ] || fail "$1: sub"
	[ "$(jget payload.nonce <"$tmp/idt.json")" = "$nonce" ] || fail "$1: nonce missing or wrong"
	[ "$(jget payload.email <"$tmp/idt.json")" = alice@example.test ] || fail "$1: email not in the ID token"
	[ "$(jget payload.phone_number <"$tmp/idt.json")" = +15551234567 ] || fail "$1: phone_number not in the ID token"
	[ "$(jget payload.phone_number_verified <"$tmp/idt.json")" = true ] || fail "$1: phone_number_verified"
	kid=$(jget header.kid <"$tmp/idt.json")
}

# refused CLIENT SECRET CODE VERIFIER WHAT: the token endpoint must answer 400 invalid_grant
refused() {
	redeem "$1" "$2" "$3" "$4"
	[ "$status" = 400 ] && [ "$(jget error <"$tmp/token.json")" = invalid_grant ] ||
		fail "$5 was not refused with invalid_grant: HTTP $status $(cat "$tmp/token.json")"
	ok "$5 refused (invalid_grant)"
}

for pair in parley-rs:secret-rs:RS256 parley-es:secret-es:ES256; do
	IFS=: read -r client secret alg <<<"$pair"
	sign_in "$client" alice alice-pw
	[ "$rc" = 0 ] || fail "$client: login.mjs exited $rc: $(cat "$tmp/login.err")"
	case $callback in "$REDIRECT?"*) ;; *) fail "$client: login.mjs printed '$callback'" ;; esac
	[ "$(node_param "$callback" state)" = "$state" ] || fail "$client: state not returned"
	[ -n "$code" ] || fail "$client: no code in $callback"
	redeem "$client" "$secret" "$code" "$verifier"
	[ "$status" = 200 ] || fail "$client: token exchange HTTP $status $(cat "$tmp/token.json")"
	check_id_token "$client" "$alg"
	ok "$client: signed in, code redeemed, $alg ID token with nonce, email and phone_number"
	refused "$client" "$secret" "$code" "$verifier" "$client: the replayed code"
done
rs_kid=$(jget kids.RS256 < <(curlx "$ISS/__test/kids"))

sign_in parley-rs alice alice-pw
[ "$rc" = 0 ] || fail "sign-in for the wrong-verifier case: $(cat "$tmp/login.err")"
refused parley-rs secret-rs "$code" "$(openssl rand 48 | b64url)" "a wrong PKCE verifier"

NO_PKCE=1 sign_in parley-rs alice alice-pw
[ "$rc" = 3 ] && [ "$(node_param "$callback" error)" = invalid_request ] ||
	fail "an authorization request without PKCE was not refused: rc $rc, '$callback'"
ok "an authorization request without code_challenge refused (invalid_request)"

sign_in parley-rs alice wrong-pw
[ "$rc" = 1 ] || fail "a wrong password: login.mjs exited $rc, not 1"
grep -q 'sign-in refused' "$tmp/login.err" || fail "a wrong password: no clear message"
ok "a wrong password refused (login.mjs exit 1)"

# the code is issued before the rotation and redeemed after it: rotation rebuilds the Provider, and
# what a test has in flight (codes, interactions) must survive that
sign_in parley-rs alice alice-pw
[ "$rc" = 0 ] || fail "sign-in before rotation: $(cat "$tmp/login.err")"
rotated=$(curlx -X POST "$ISS/__test/rotate?alg=RS256" | jget kids.RS256)
[ -n "$rotated" ] && [ "$rotated" != "$rs_kid" ] || fail "/__test/rotate gave no new RS256 kid"
redeem parley-rs secret-rs "$code" "$verifier"
[ "$status" = 200 ] || fail "a code issued before the rotation, redeemed after it: HTTP $status $(cat "$tmp/token.json")"
check_id_token parley-rs RS256
[ "$kid" = "$rotated" ] || fail "after rotation the ID token is signed with kid $kid, not the new $rotated"
grep -q "\"$rs_kid\"" "$tmp/jwks.json" || fail "after rotation the old kid $rs_kid left the JWKS"
ok "/__test/rotate: the new kid $rotated signs (old kid still published, a code in flight survives)"

# /__test/tamper: the next token answer is wrong in exactly the one way asked for, and only the next.
# wrong_props CLIENT TOKEN: the properties of the ID token that are wrong for this sign-in (nonce) and
# client, against the JWKS in $tmp/jwks.json, space-separated (sig is judged only under a published kid)
wrong_props() {
	"$NODE" -e '
const { createPublicKey, verify } = require("node:crypto");
const fs = require("node:fs");
const [jwksFile, tok, iss, client, nonce] = process.argv.slice(1);
const parts = tok.split(".");
const [h, p] = parts.slice(0, 2).map((x) => JSON.parse(Buffer.from(x, "base64url").toString("utf8")));
const jwk = JSON.parse(fs.readFileSync(jwksFile, "utf8")).keys.find((k) => k.kid === h.kid);
const opt = h.alg === "ES256" ? { dsaEncoding: "ieee-p1363" } : {};
const sigOk = !jwk || verify("sha256", Buffer.from(`${parts[0]}.${parts[1]}`),
	{ key: createPublicKey({ key: jwk, format: "jwk" }), ...opt }, Buffer.from(parts[2], "base64url"));
const ok = { iss: p.iss === iss, aud: p.aud === client, azp: p.azp === undefined || p.azp === client,
	nonce: p.nonce === nonce, exp: p.exp > Date.now() / 1000, kid: !!jwk, sig: sigOk, sub: p.sub === "alice" };
process.stdout.write(Object.keys(ok).filter((k) => !ok[k]).join(" "));' "$tmp/jwks.json" "$2" "$ISS" "$1" "$nonce"
}
# tampered CLIENT SECRET MODE: armed, signed in, redeemed (200 expected); the ID token in tok, what is
# wrong with it in wrong
tampered() {
	[ "$(curlx -X POST "$ISS/__test/tamper?what=$3" | jget armed)" = "$3" ] || fail "/__test/tamper?what=$3 not armed"
	sign_in "$1" alice alice-pw
	[ "$rc" = 0 ] || fail "sign-in for tamper $3: $(cat "$tmp/login.err")"
	redeem "$1" "$2" "$code" "$verifier"
	[ "$status" = 200 ] || fail "tamper $3: token exchange HTTP $status $(cat "$tmp/token.json")"
	tok=$(jget id_token <"$tmp/token.json")
	curlx "$ISS/jwks" >"$tmp/jwks.json" || fail "jwks"
	wrong=$(wrong_props "$1" "$tok")
}
for mode in nonce aud azp iss exp sig kid; do
	tampered parley-rs secret-rs "$mode"
	[ "$wrong" = "$mode" ] || fail "tamper $mode: wrong properties '$wrong', not exactly '$mode'"
done
ok "/__test/tamper nonce|aud|azp|iss|exp|sig|kid (RS256): each ID token wrong in exactly that property"
for mode in nonce sig kid; do
	tampered parley-es secret-es "$mode"
	[ "$wrong" = "$mode" ] || fail "ES256 tamper $mode: wrong properties '$wrong', not exactly '$mode'"
done
ok "/__test/tamper nonce|sig|kid (ES256) likewise"
# one answer only: the next one is right again
sign_in parley-rs alice alice-pw
redeem parley-rs secret-rs "$code" "$verifier"
[ "$status" = 200 ] && [ -z "$(wrong_props parley-rs "$(jget id_token <"$tmp/token.json")")" ] ||
	fail "the answer after a tampered one is not right: $(cat "$tmp/token.json")"
# userinfo: the real access token is accepted; the tampered one (the ID token itself untouched) not
userinfo() { curlx -o "$tmp/userinfo.json" -w '%{http_code}' -H "Authorization: Bearer $1" "$ISS/me"; }
[ "$(userinfo "$(jget access_token <"$tmp/token.json")")" = 200 ] && [ "$(jget sub <"$tmp/userinfo.json")" = alice ] ||
	fail "userinfo with a real access token: $(cat "$tmp/userinfo.json")"
tampered parley-rs secret-rs access_token
[ -z "$wrong" ] || fail "tamper access_token changed the ID token too: '$wrong'"
[ "$(userinfo "$(jget access_token <"$tmp/token.json")")" = 401 ] || fail "userinfo accepted a tampered access token"
ok "/__test/tamper is one-shot; access_token: userinfo answers 401, the ID token untouched"
[ "$(curlx -o /dev/null -w '%{http_code}' -X POST "$ISS/__test/tamper?what=payload")" = 400 ] ||
	fail "an unknown tamper mode was not refused"
before=$(curlx "$ISS/__test/count?path=/jwks" | jget count)
curlx "$ISS/jwks" >/dev/null
[ "$(curlx "$ISS/__test/count?path=/jwks" | jget count)" = $((before + 1)) ] || fail "/__test/count does not count GET /jwks"
ok "/__test/count?path=/jwks counts the JWKS fetches ($((before + 1)))"

kill -TERM "$idp_pid"
st=0
wait "$idp_pid" || st=$?
idp_pid=
[ "$st" = 0 ] || fail "idp.mjs exited $st on SIGTERM"
[ "$(grep -c '^idp: [A-Z]* /' "$tmp/idp.log")" -ge 10 ] || fail "no per-request log lines on stderr"
ok "SIGTERM: idp.mjs exited 0; one log line per request"
echo "idp-selftest: all checks passed"
