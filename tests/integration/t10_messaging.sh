#!/usr/bin/env bash
# 10: the first end-to-end conversation, as a new user would run it in two terminals: register alice and
# bob, bob accepts alice (message requests), bob offline, `parley send bob hi`, then `parley listen` as
# bob shows "hi" exactly once; receipts come back (end-to-end encrypted); a second device of bob's gets the next message too; the server's database and logs never
# contain the plaintext (scanned while it runs with the message queued, with positive controls); safety
# numbers agree on both sides. And the details a new user meets: the confirmation line of send, -q,
# messages from standard input (with the 8192-byte limit), sending to yourself with one device, and
# text that is not UTF-8 or carries terminal escapes.
set -uo pipefail
: "${PARLEYD:?}" "${PARLEY:?}" "${IT_SCAN:?}"
# the store: SQLite in --data_dir, or a fresh PostgreSQL database in the integration-pg suite
tools=$(dirname "$0")/../tools
store=$("$tools/parleyd-store.sh" new) || exit 99
dir=$(mktemp -d /tmp/parley-msg-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; "$tools/parleyd-store.sh" drop "$store"; }
trap cleanup EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

"$PARLEYD" --port=0 --port_file="$dir/port" --data_dir="$dir/data" ${store:+"$store"} --log_level=debug 2>"$dir/log" &
pid=$!
for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.05; done
export PARLEY_SERVER="ws://127.0.0.1:$(cat "$dir/port")/v1/websocket"
p() { local home=$1; shift; PARLEY_HOME="$dir/$home" timeout 30 "$PARLEY" "$@"; }

check "register alice" 'p alice register alice >/dev/null'
check "register bob" 'p bob register bob >/dev/null'
# Message requests: bob gives receipts (and presence) only to people he wrote to or accepted.
check "bob accepts alice" '[ "$(p bob accept alice)" = "accepted alice" ]'
check "alice sends hi while bob is offline" 'p alice send bob hi >"$dir/sent"'
check "send confirms in one line" \
	'[ "$(wc -l <"$dir/sent")" = 1 ] && grep -qE "^sent to bob at [0-9]{2}:[0-9]{2}:[0-9]{2} \(id [0-9]+\)$" "$dir/sent"'
p bob listen --count 1 --timeout 10 >"$dir/out-bob1" 2>&1; rc=$?
check "bob's listen exits 0 after one message" '[ "$rc" = 0 ]'
check "bob sees 'alice: hi'" 'grep -q "alice: hi$" "$dir/out-bob1"'
p bob listen --timeout 2 >"$dir/out-bob2" 2>&1
check "delivered once: a second listen shows no message" '! grep -q "alice:" "$dir/out-bob2"'
p alice listen --timeout 3 >"$dir/out-alice1" 2>&1
check "alice gets the delivery receipt" 'grep -q "bob delivered" "$dir/out-alice1"'

p alice send alice "note to self" >"$dir/self" 2>&1; rc=$?
check "send to yourself with one device: a specific error" \
	'[ "$rc" = 1 ] && grep -q "you have no other device" "$dir/self"'

# standard input: a pipe, the limit (exactly 8192 bytes pass, 8193 are refused whole), -q
check "send -q from standard input prints nothing" \
	'[ -z "$(printf "from stdin\n" | p alice send -q bob -)" ]'
check "bob gets the message from stdin without its newline" \
	'p bob listen --count 1 --timeout 10 | grep -q "alice: from stdin$"'
head -c 8193 /dev/zero | tr '\0' x | p alice send bob - >"$dir/big" 2>&1; rc=$?
check "8193 bytes on stdin refused with exit 1, naming the limit" \
	'[ "$rc" = 1 ] && grep -q "longer than 8192 bytes" "$dir/big"'
check "8192 bytes on stdin are sent" 'head -c 8192 /dev/zero | tr "\0" y | p alice send -q bob -'
check "bob gets all 8192 bytes" \
	'[ "$(p bob listen --count 1 --timeout 10 | grep -o "y*$" | tr -d "\n" | wc -c)" = 8192 ]'

# text that is not UTF-8, and escape sequences, are made harmless on bob's terminal
printf 'bad \377 utf8 \033[31m red \a' | p alice send -q bob -
p bob listen --count 1 --timeout 10 >"$dir/raw" 2>&1
check "ill-formed UTF-8 shown as U+FFFD" 'grep -q "bad $(printf "\357\277\275") utf8" "$dir/raw"'
check "ESC and BEL never reach the terminal" \
	'! grep -q "$(printf "\033")" "$dir/raw" && ! grep -q "$(printf "\a")" "$dir/raw" &&
	 grep -q "?\[31m red ?" "$dir/raw"'

# No plaintext at rest, with a scan that can fail ($IT_SCAN, tests/integration/scan.c: the text raw, in
# hex, base64, base64url, UTF-16). The scanner must first find the text in files this test writes with
# other tools, and call a missing file missing.
secret="zebra-quokka-$RANDOM$RANDOM-plaintext"
printf 'xx%s yy' "$secret" >"$dir/control-raw"
printf 'x%s y' "$secret" | base64 -w0 >"$dir/control-b64"
printf '%s' "$secret" | od -An -tx1 | tr -d ' \n' >"$dir/control-hex"
for f in raw b64 hex; do
	"$IT_SCAN" "$secret" "$dir/control-$f" >"$dir/scan" 2>&1; rc=$?
	check "positive control: the scanner finds the text in control-$f" '[ "$rc" = 1 ]'
done
"$IT_SCAN" "$secret" "$dir/no-such-file" >"$dir/scan" 2>&1; rc=$?
check "positive control: a missing file is a failure, not a clean scan" '[ "$rc" = 2 ]'
# $1: what; then the server's files (all must exist while it runs: the -wal holds the queued
# envelopes) and the CLI homes (a CLI that exited leaves no -wal: optional there)
scan() {
	local what=$1; shift
	"$IT_SCAN" "$secret" "$@" "$dir/log" >"$dir/scan" 2>&1; rc=$?
	check "no plaintext $what" '[ "$rc" = 0 ] || { cat "$dir/scan"; false; }'
}
homes() {
	local h
	for h in "$@"; do
		echo "$dir/$h/client.db" "$dir/$h/signal.db" "?$dir/$h/client.db-wal" "?$dir/$h/signal.db-wal"
	done
}
# the server's store as files: SQLite's (the WAL and shm exist while it runs), or on PostgreSQL a dump
# of its tables taken now, values as raw bytes (the cluster's own files are not the test's to read)
live() {
	if [ -z "$store" ]; then
		echo "$dir/data/parley.db $dir/data/parley.db-wal $dir/data/parley.db-shm"
	elif "$tools/parleyd-store.sh" dump "$store" "$dir/pgdump.bin"; then
		echo "$dir/pgdump.bin"
	else
		echo "$dir/pgdump-failed" # missing: the scan fails
	fi
}
stored() { if [ -z "$store" ]; then echo "$dir/data/parley.db"; else live; fi; }
check "alice sends a distinctive message" 'p alice send bob "$secret" >/dev/null'
check "alice sends it again inside a sentence" 'p alice send bob "the word is $secret, keep it" >/dev/null'
# shellcheck disable=SC2046,SC2086
scan "in the live server files and the CLI homes while bob has not fetched it" $(live) $(homes alice bob)
check "bob reads both" '[ "$(p bob listen --count 2 --timeout 10 | grep -c "$secret")" = 2 ]'
# shellcheck disable=SC2046,SC2086
scan "in the live server files and the CLI homes after delivery" $(live) $(homes alice bob)
# the local history (docs/history.md) has both, oldest first, and keeps nothing of them in clear
p bob history alice --last 2 >"$dir/hist" 2>&1
check "bob's history lists both as HH:MM:SS alice: TEXT, oldest first" \
	'[ "$(grep -Ec "^[0-9]{2}:[0-9]{2}:[0-9]{2} alice: (the word is )?$secret" "$dir/hist")" = 2 ] &&
	 head -n 1 "$dir/hist" | grep -q "alice: $secret$"'
check "alice's history has what she sent" '[ "$(p alice history bob --last 2 | grep -c "alice: .*$secret")" = 2 ]'
check "the history key file is private" '[ "$(stat -c %a "$dir/bob/history.key")" = 600 ]'
# shellcheck disable=SC2046,SC2086
scan "in the CLI homes and history keys after the history was read" $(homes alice bob) \
	"$dir/alice/history.key" "$dir/bob/history.key"

# a second device for bob: it must get new messages too (fan-out to every device)
code=$(p bob2 device-key bob)
check "bob adds a second device" 'p bob devices add "$code" tablet >/dev/null'
check "the second device links" 'p bob2 link bob 2 >/dev/null'
check "alice sends after bob's device list changed" 'p alice send bob "to both devices" >/dev/null'
check "bob's first device gets it" 'p bob listen --count 1 --timeout 10 | grep -q "alice: to both devices"'
check "bob's second device gets it" 'p bob2 listen --count 1 --timeout 10 | grep -q "alice: to both devices"'

# each device has its own identity key, so alice sees one safety number per device of bob's
check "safety numbers agree (bob's first device)" \
	'p alice safety-number bob | grep "device 1" | grep -qF "$(p bob safety-number alice)"'
check "safety numbers agree (bob's second device)" \
	'p alice safety-number bob | grep "device 2" | grep -qF "$(p bob2 safety-number alice)"'
check "safety number is 60 digits" '[ "$(p bob safety-number alice | tr -cd 0-9 | wc -c)" = 60 ]'

# a stranger's first message is a message request: listen says why no receipt goes back
check "carol registers" 'p carol register carol >/dev/null'
check "carol writes to bob" 'p carol send -q bob "hello from carol"'
p bob listen --count 1 --timeout 10 >"$dir/out-bob-req" 2>&1
check "bob sees carol's message" 'grep -q "carol: hello from carol$" "$dir/out-bob-req"'
check "listen marks it a message request" 'grep -q "(a message request: carol gets no receipts" "$dir/out-bob-req"'
check "no hint for alice, whom bob accepted" '! grep -q "message request" "$dir/out-bob1"'

kill -TERM "$pid"; wait "$pid"; pid=
# after the stop too (the WAL is checkpointed and gone, so only the main file is scanned there)
# shellcheck disable=SC2046
scan "after a clean stop" $(stored) $(homes alice bob bob2)
check "database holds no plaintext" '! grep -rqa -- "$secret" "$dir/data" $(stored)'
check "database holds no 'to both devices'" '! grep -rqa -- "to both devices" "$dir/data" $(stored)'
check "log holds no plaintext" '! grep -qa -- "$secret" "$dir/log"'
exit $fail
