#!/bin/sh
# tests/idp/make-ca.sh DIR — a throw-away test CA and a server certificate for the loopback identity
# provider (tests/idp/idp.mjs), made with the openssl CLI.
#
# Writes into DIR (created if missing):
#   ca.pem, ca.key          the CA (P-256, CA:TRUE pathlen 0, valid 2 days)
#   server.pem, server.key  the server certificate for IP 127.0.0.1 and DNS localhost, signed by the CA
#                           (serverAuth, valid 1 day)
#   server.spki             base64 SHA-256 of the server's public key (SubjectPublicKeyInfo), for a
#                           browser's --ignore-certificate-errors-spki-list: a fresh Chromium profile
#                           has no way to import ca.pem, and this pins exactly this test key instead of
#                           turning verification off for everything
# Key files are 0600. Validity is short on purpose: a leaked test CA is worthless the day after.
# The parley C side (libcurl) trusts ca.pem through its CA-file option; it never turns verification off.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077   # keys are created 0600 from the start, not chmod-ed after a window where they were readable
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -days 2 -subj "/O=parley tests/CN=parley test CA $$" \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "subjectKeyIdentifier=hash" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout server.key -out "$tmp/server.csr" -subj "/O=parley tests/CN=127.0.0.1" \
	2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
cat >"$tmp/ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
# a random serial: two runs never issue the same (issuer, serial) pair, and no .srl file is left behind
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
	-days 1 -extfile "$tmp/ext" -out server.pem 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }

openssl x509 -in server.pem -noout -pubkey | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | openssl base64 -A >server.spki
chmod 600 ca.key server.key
chmod 644 ca.pem server.pem server.spki
openssl verify -CAfile ca.pem server.pem >/dev/null
