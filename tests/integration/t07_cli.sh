#!/usr/bin/env bash
# 07: the `parley` CLI against a real parleyd, as a new user would run it: register, devices, errors,
# state directory permissions, linking a second device, and what the help says in the first hour.
set -uo pipefail
: "${PARLEYD:?}" "${PARLEY:?}"
# the store: SQLite in --data_dir, or a fresh PostgreSQL database in the integration-pg suite
tools=$(dirname "$0")/../tools
store=$("$tools/parleyd-store.sh" new) || exit 99
dir=$(mktemp -d /tmp/parley-cli-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; "$tools/parleyd-store.sh" drop "$store"; }
trap cleanup EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

"$PARLEYD" --port=0 --port_file="$dir/port" --data_dir="$dir/data" ${store:+"$store"} 2>"$dir/log" &
pid=$!
for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
export PARLEY_SERVER="ws://127.0.0.1:$port/v1/websocket"

p() { local home=$1; shift; PARLEY_HOME="$dir/$home" "$PARLEY" "$@"; }

check "register alice" 'p alice register alice >"$dir/out" 2>&1'
check "devices lists exactly one device, marked as this one" \
	'p alice devices >"$dir/devs" 2>&1 && [ "$(grep -cE "^\s*\*?\s*[0-9]+" "$dir/devs")" = 1 ] && grep -q "\*" "$dir/devs"'
check "state directory is 0700" '[ "$(stat -c %a "$dir/alice")" = 700 ]'
check "every state file is 0600" '[ -z "$(find "$dir/alice" -type f ! -perm 0600)" ] && [ -n "$(find "$dir/alice" -type f)" ]'
p bob register alice >"$dir/dup" 2>&1; rc=$?
check "duplicate handle refused with exit 1" '[ "$rc" = 1 ]'
check "duplicate handle message is specific" 'grep -qi "already registered" "$dir/dup"'
p carol register 'Not A Handle' >"$dir/bad" 2>&1; rc=$?
check "invalid handle refused" '[ "$rc" = 1 ] && grep -qi "invalid handle" "$dir/bad"'
check "invalid handle message states the rule" \
	'grep -q "3 to 32 characters from a-z, 0-9" "$dir/bad" && grep -q "starting with a letter" "$dir/bad"'
PARLEY_SERVER=ws://127.0.0.1:1/v1/websocket p carol register Carol >"$dir/bad2" 2>&1; rc=$?
check "invalid handle refused locally, before connecting" \
	'[ "$rc" = 1 ] && grep -q "'"'"'C'"'"' is not allowed" "$dir/bad2" &&
	 ! grep -qi "connect" "$dir/bad2"'
check "registering twice from the same home is refused" '! p alice register alice2 >/dev/null 2>&1'
p nobody devices >"$dir/noid" 2>&1; rc=$?
check "devices before register: clear error" '[ "$rc" = 1 ] && grep -qi "register" "$dir/noid"'
"$PARLEY" --definitely-not-an-option >/dev/null 2>&1; rc=$?
check "usage error exits 2" '[ "$rc" = 2 ]'
check "--version" '"$PARLEY" --version | grep -q "[0-9]\.[0-9]"'
# a first-time user reads these: listen waits until Ctrl-C, send's limit and stdin form
check "usage says listen runs until Ctrl-C" '"$PARLEY" --help | grep "listen" | grep -q "Ctrl-C"'
check "listen --help says how it stops" \
	'"$PARLEY" listen --help >"$dir/lh" && grep -q "Ctrl-C" "$dir/lh" &&
	 grep -q -- "--count" "$dir/lh" && grep -q -- "--timeout" "$dir/lh"'
check "send --help gives the 8192-byte limit and the stdin form" \
	'"$PARLEY" help send >"$dir/sh" && grep -q "8192 bytes" "$dir/sh" && grep -q "parley send bob -" "$dir/sh"'

# link a second device: the new device shows its link code (key + its signature for alice), an existing
# device adds it, the new one links. A bare key is refused: it proves nothing (security item 10).
check "new device key" 'key=$(p alice-laptop device-key) && [ -n "$key" ]'
key=$(p alice-laptop device-key)
check "a bare key is refused by devices add" \
	'! p alice devices add "$key" laptop >"$dir/bare" 2>&1 && grep -q "link code" "$dir/bare"'
code=$(p alice-laptop device-key alice)
check "a link code signed for another account is refused" \
	'! p alice devices add "$(p alice-laptop device-key carol)" laptop >"$dir/bad" 2>&1 &&
	 grep -qi "bad signature" "$dir/bad"'
check "devices link (the alias of devices add)" 'p alice devices link "$code" laptop >"$dir/add" 2>&1'
check "link the new device" 'p alice-laptop link alice 2 >/dev/null 2>&1'
check "a device without the account key cannot link another" \
	'! p alice-laptop devices link "$(p alice-phone device-key alice)" phone >"$dir/noak" 2>&1 &&
	 grep -q "does not hold the account key" "$dir/noak"'
check "both devices listed from the new device" \
	'[ "$(p alice-laptop devices | grep -cE "^\s*\*?\s*[0-9]+")" = 2 ]'
# the account key moves to the laptop and back (docs/protocol.md §11.4): each side imports or wipes when
# it listens
check "devices transfer-key to the laptop" \
	'p alice devices transfer-key 2 >"$dir/tk" 2>&1 && grep -q "wipes its copy" "$dir/tk"'
check "a second transfer waits for the confirm" \
	'! p alice devices transfer-key 2 >"$dir/tk2" 2>&1 && grep -q "has not confirmed" "$dir/tk2"'
check "the laptop imports the account key" \
	'p alice-laptop listen --timeout 3 >"$dir/tl" 2>&1; grep -q "imported the account key" "$dir/tl"'
check "the old device wipes its copy on the confirm" \
	'p alice listen --timeout 3 >"$dir/ta" 2>&1; grep -q "wiped its copy" "$dir/ta"'
check "the old device no longer holds the account key" \
	'! p alice devices transfer-key 2 >"$dir/tk3" 2>&1 && grep -q "does not hold the account key" "$dir/tk3"'
check "and back to the first device" \
	'p alice-laptop devices transfer-key 1 >/dev/null 2>&1 && p alice listen --timeout 3 >/dev/null 2>&1 &&
	 p alice-laptop listen --timeout 3 >"$dir/tb" 2>&1; grep -q "wiped its copy" "$dir/tb"'
check "devices remove" 'p alice devices remove 2 >/dev/null 2>&1'
check "removed device can no longer list" '! p alice-laptop devices >/dev/null 2>&1'
check "server down gives a connection error, not a hang" \
	'! PARLEY_SERVER=ws://127.0.0.1:1/v1/websocket timeout 20 "$PARLEY" --home "$dir/alice" devices >/dev/null 2>&1'
# each way of not reaching the server says which it is
PARLEY_SERVER=ws://127.0.0.1:1/v1/websocket p alice devices >"$dir/e1" 2>&1
check "a refused port says so" 'grep -q "connection refused" "$dir/e1"'
PARLEY_SERVER=ws://nonexistent.invalid:7600/v1/websocket p alice devices >"$dir/e2" 2>&1
check "an unknown host says so" 'grep -q "cannot resolve nonexistent.invalid" "$dir/e2" && ! grep -q "refused" "$dir/e2"'
PARLEY_SERVER="ws://127.0.0.1:$port/no/such/path" p alice devices >"$dir/e3" 2>&1
check "a wrong path reports the HTTP status, not a malformed response" \
	'grep -q "HTTP 404" "$dir/e3" && ! grep -qi "malformed" "$dir/e3"'

# entities: what the CLI refuses by itself, before any request (docs/entities.md has the story)
ent() { p alice "$@" >"$dir/ent" 2>&1; echo $?; }
check "entity without a subcommand: usage, exit 2" '[ "$(ent entity)" = 2 ]'
check "entity code without ENTITY: usage, exit 2" '[ "$(ent entity code --bot)" = 2 ]'
check "entity rules: a bad value is a usage error naming it" \
	'[ "$(ent entity rules acme lock=sometimes)" = 2 ] && grep -q "lock=sometimes" "$dir/ent"'
check "entity rules: =inherit is for an agent only" \
	'[ "$(ent entity rules acme may-pay=inherit)" = 2 ] && grep -q -- "--agent" "$dir/ent"'
check "entity rules: show-name= takes on|off only" \
	'[ "$(ent entity rules acme show-name=maybe)" = 2 ] && grep -q "show-name=maybe" "$dir/ent"'
check "entity rules: may-transfer=inherit is for an agent only" \
	'[ "$(ent entity rules acme may-transfer=inherit)" = 2 ] && grep -q -- "--agent" "$dir/ent"'
check "entity rules: lock= is not an agent rule" '[ "$(ent entity rules acme --agent bob lock=none)" = 2 ]'
check "entity approve needs a numeric id" '[ "$(ent entity approve acme seven)" = 2 ]'
check "agent join: a QR payload for another entity is refused" \
	'[ "$(ent agent join acme "parley:join?entity=evil&code=AAAA-BBBB-CCCC")" = 2 ] && grep -q "another entity" "$dir/ent"'
check "entity: a bad entity handle is refused locally, before connecting" \
	'[ "$(PARLEY_SERVER=ws://127.0.0.1:1/v1/websocket ent entity show Acme)" = 1 ] &&
	 grep -q "BAD_HANDLE" "$dir/ent" && ! grep -qi "connect" "$dir/ent"'
check "entity before register: NO_IDENTITY" \
	'p nobody entity show acme >"$dir/ent" 2>&1; [ $? = 1 ] && grep -q "NO_IDENTITY" "$dir/ent"'
"$PARLEY" help entity >"$dir/eh"
missing=
for s in create show admins agents add-admin remove-admin code requests approve deny remove-agent rules devices \
	safety-number; do grep -qE "parley entity ([a-z-]+\|)*$s([| ]|\$)" "$dir/eh" || missing="$missing $s"; done
check "help entity lists every subcommand" '[ -z "$missing" ]'

# the server dies under a listening client: the client says the connection was lost, not "close code 0"
p alice listen --timeout 4 >"$dir/lost" 2>&1 &
lpid=$!
sleep 1
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=
wait "$lpid"
check "a server killed under listen reads as a lost connection" \
	'grep -q "connection lost without a WebSocket close frame" "$dir/lost" && ! grep -q "close code 0" "$dir/lost"'
check "listen keeps trying and says why it cannot reconnect" 'grep -q "connection refused" "$dir/lost"'
exit $fail
