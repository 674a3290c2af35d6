#!/usr/bin/env bash
# 06: TLS. parleyd with a self-signed certificate made here: HTTPS /healthz, a WebSocket round trip over
# TLS (Python's ssl module as an independent client), plain HTTP refused on the TLS port, and SIGHUP
# swapping the certificate for new connections.
set -uo pipefail
: "${PARLEYD:?PARLEYD must point at the parleyd binary}"
# the store: SQLite in --data_dir, or a fresh PostgreSQL database in the integration-pg suite
tools=$(dirname "$0")/../tools
store=$("$tools/parleyd-store.sh" new) || exit 99
dir=$(mktemp -d /tmp/parley-tls-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; "$tools/parleyd-store.sh" drop "$store"; }
trap cleanup EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

mkcert() { # $1 = name, $2 = CN
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$dir/$1.key" -out "$dir/$1.crt" 2>/dev/null
}
mkcert one parley-test-one
mkcert two parley-test-two
cp "$dir/one.crt" "$dir/server.crt"; cp "$dir/one.key" "$dir/server.key"

"$PARLEYD" --port=0 --port_file="$dir/port" --admin_port_file="$dir/admin" --data_dir="$dir/data" ${store:+"$store"} \
	--tls_cert="$dir/server.crt" --tls_key="$dir/server.key" 2>"$dir/log" &
pid=$!
for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port" 2>/dev/null)
admin=$(cat "$dir/admin" 2>/dev/null)  # the admin listener (/metrics) is plain HTTP on loopback
check "parleyd started with TLS" '[ -n "$port" ]'
[ -n "$port" ] || { cat "$dir/log"; exit 1; }

check "HTTPS /healthz verified against the test CA" \
	'curl -s --cacert "$dir/one.crt" "https://127.0.0.1:$port/healthz" | grep -q "\"status\":\"ok\""'
check "plain HTTP on the TLS port gets no HTTP answer" \
	'! curl -s --max-time 3 "http://127.0.0.1:$port/healthz" | grep -q ok'

cat >"$dir/wss.py" <<'PY'
import os, socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1")
s.sendall(b"GET /v1/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(1)
assert buf.startswith(b"HTTP/1.1 101"), buf
assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in buf
def recv_exact(n):
    out = b""
    while len(out) < n:
        c = s.recv(n - len(out))
        if not c: raise EOFError
        out += c
    return out
def frame():
    h = recv_exact(2); n = h[1] & 0x7f
    if n == 126: n = int.from_bytes(recv_exact(2), "big")
    elif n == 127: n = int.from_bytes(recv_exact(8), "big")
    return h[0] & 0x0f, recv_exact(n)
op, challenge = frame()            # Push{Challenge}
assert op == 2 and challenge[:1] == b"\x1a", challenge
req = bytes([0x0a, 0x09, 0x08, 0x07, 0x52, 0x05, 0x0a, 0x03]) + b"abc"   # Request{id 7, ping "abc"}
mask = os.urandom(4)
s.sendall(bytes([0x82, 0x80 | len(req)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(req)))
op, resp = frame()
assert op == 2 and b"\x08\x07" in resp and b"abc" in resp, resp   # Response{id 7, ping "abc"}
print("wss round trip ok")
PY
check "WebSocket ping round trip over TLS" 'python3 "$dir/wss.py" "$port" "$dir/one.crt"'

subject() { echo | openssl s_client -connect "127.0.0.1:$port" 2>/dev/null | openssl x509 -noout -subject 2>/dev/null; }
check "certificate one served" 'subject | grep -q parley-test-one'
cp "$dir/two.crt" "$dir/server.crt"; cp "$dir/two.key" "$dir/server.key"
kill -HUP "$pid"; sleep 0.5
check "SIGHUP: new connections get certificate two" 'subject | grep -q parley-test-two'
check "HTTPS still verified (against cert two)" \
	'curl -s --cacert "$dir/two.crt" "https://127.0.0.1:$port/healthz" | grep -q ok'
echo "garbage" >"$dir/server.key"
kill -HUP "$pid"; sleep 0.5
check "SIGHUP with a broken key keeps the old certificate" 'subject | grep -q parley-test-two'
check "the broken reload is logged" 'grep -q "TLS certificate not reloaded" "$dir/log"'
check "TLS handshake errors counted" '[ "$(curl -s "http://127.0.0.1:$admin/metrics" | awk "/^parley_tls_errors_total /{print \$2}")" -ge 1 ]'

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
check "clean exit on SIGTERM" '[ "$rc" = 0 ]'
exit $fail
