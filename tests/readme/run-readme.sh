#!/usr/bin/env bash
# Runs README.md's command blocks as written, in order, against a fresh parleyd, so the README cannot
# drift from the code. Usage: run-readme.sh [MARKDOWN]  (default: README.md at the repository root)
# Environment: BUILD_ROOT = the meson build directory under test (required).
#
# Conventions in the Markdown file:
# - Every ```sh (or bash/shell/console) block is directly preceded by one marker line:
#       <!-- test: run -->             this test runs the block;
#       <!-- test: skip: REASON -->    it does not (it installs packages, runs forever, ...).
#   A block without a marker, or a marker without a block, fails the test: every new block is a choice.
# - Marked blocks run in file order against one server and one sandbox, so a block may rely on what the
#   blocks before it did. Each command line runs on its own (`bash -o pipefail -c LINE`; lines ending in
#   `\` are joined), so it must not rely on shell state (cd, export, variables) of an earlier line: the
#   state lives in files (PARLEY_HOME, the server's database), as it does between two terminals.
# - Each command must exit 0 within $README_CMD_TIMEOUT seconds (default 20).
# - `# prints "PATTERN"` at the end of a command line, or on a comment line of its own right after it,
#   promises that one line of the command's standard output matches PATTERN as a whole. PATTERN runs
#   from the first `"` after `prints` to the last `"` of the line (commentary may follow it). In PATTERN
#   `HH:MM:SS` is a time of day, a word made only of N's that many digits (`NNNNN`: five), `...` any
#   text, a run of spaces any run of whitespace; everything else is literal. Other comments are for
#   the reader only.
# - The README addresses a developer's machine with `make run` on port 7600; each line is rewritten
#   for the sandbox before it runs:
#       `build/` at the start of a word               -> $BUILD_ROOT/ (the build under test: build-asan...)
#       `localhost:7600`, `127.0.0.1:7600`            -> 127.0.0.1:<the test server's port>
#       `localhost:7601`, `127.0.0.1:7601`            -> 127.0.0.1:<its admin port (/metrics)>
#       `/tmp/` at the start of a word or after `=`   -> <sandbox>/tmp/
#   and runs from the repository root with HOME=<sandbox>/home,
#   PARLEY_SERVER=ws://127.0.0.1:<port>/v1/websocket, and no PARLEY_HOME or XDG_DATA_HOME.
# The server is started as `make run` starts it (bind 127.0.0.1, its own data directory) but on a free
# port; after the last block it must still be running and must exit 0 on SIGTERM.
set -uo pipefail
: "${BUILD_ROOT:?BUILD_ROOT must name the meson build directory}"
BUILD_ROOT=$(cd "$BUILD_ROOT" && pwd) || exit 1
md=README.md
[ $# -gt 0 ] && md=$(realpath -- "$1")
cd "$(dirname "$0")/../.." || exit 1
parleyd=$BUILD_ROOT/server/parleyd
cmd_timeout=${README_CMD_TIMEOUT:-20}
[ -f "$md" ] || { echo "no $md"; exit 1; }
[ -x "$parleyd" ] || { echo "no $parleyd: build first"; exit 1; }

sandbox=$(mktemp -d "${TMPDIR:-/tmp}/parley-readme-XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && { kill -9 "$pid" && wait "$pid"; } 2>/dev/null
	rm -rf "$sandbox"
}
trap cleanup EXIT
mkdir -p "$sandbox/home" "$sandbox/tmp"

die() { echo "not ok - $*"; exit 1; }

# ---- 1. parse: the commands of the marked blocks, in order ----
# Writes records "LINE<TAB>COMMAND" and, for a promise on a comment line of its own,
# "LINE<TAB>#PRINTS COMMENT" (LINE = the command's line) to fd 3.
parse() {
	local n=0 marker="" marker_line=-1 in_block=0 run=0 runs=0 pending="" pending_line=0 line
	emit() { [ -n "$pending" ] && printf '%s\t%s\n' "$pending_line" "$pending" >&3; pending=; }
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		if [ "$in_block" = 1 ]; then
			if [[ $line =~ ^\`\`\`[[:space:]]*$ ]]; then
				[ "$run" = 1 ] && emit
				in_block=0
				continue
			fi
			[ "$run" = 1 ] || continue
			if [[ $pending == *\\ ]]; then # continuation of the previous line
				pending="${pending%\\} $line"
				continue
			fi
			if [[ $line =~ ^[[:space:]]*# ]]; then # a comment line: may carry the previous command's promise
				emit
				if [[ $line =~ ^[[:space:]]*#[[:space:]]*prints[[:space:]] ]]; then
					[ "$pending_line" = 0 ] && die "$md:$n: a 'prints' comment with no command before it"
					printf '%s\t#PRINTS %s\n' "$pending_line" "$line" >&3
				fi
				continue
			fi
			emit
			if [[ $line =~ ^[[:space:]]*$ ]]; then
				pending_line=0 # a promise must follow its command directly
				continue
			fi
			pending=$line
			pending_line=$n
			continue
		fi
		if [[ $line =~ ^\`\`\`([A-Za-z]*) ]]; then # an opening fence
			in_block=1
			run=0
			pending=
			pending_line=0
			if [[ ${BASH_REMATCH[1]} =~ ^(sh|bash|shell|console)$ ]]; then
				[ "$marker_line" = $((n - 1)) ] ||
					die "$md:$n: a shell block without <!-- test: run --> or <!-- test: skip: REASON --> right before it"
				[ "$marker" = run ] && { run=1; runs=$((runs + 1)); }
				continue
			fi
		fi
		[ "$marker_line" = $((n - 1)) ] && die "$md:$marker_line: a test marker not directly followed by a shell block"
		if [[ $line =~ ^\<!--\ test:\ run\ --\>[[:space:]]*$ ]]; then
			marker=run
			marker_line=$n
		elif [[ $line =~ ^\<!--\ test:\ skip:\ .*[^[:space:]].*\ --\>[[:space:]]*$ ]]; then
			marker=skip
			marker_line=$n
		elif [[ $line =~ ^[[:space:]]*\<!--[[:space:]]*test ]]; then
			die "$md:$n: unknown test marker (use <!-- test: run --> or <!-- test: skip: REASON -->)"
		fi
	done <"$md"
	[ "$in_block" = 0 ] || die "$md: unterminated code block"
	[ "$marker_line" = "$n" ] && die "$md:$n: a test marker at the end of the file"
	[ "$runs" -gt 0 ] || die "$md: no <!-- test: run --> block: nothing would be checked"
}
parse 3>"$sandbox/cmds"

# LINE (a command with a trailing comment, or a comment line) -> its PATTERN; status 1 when the line
# promises nothing, 2 when the promise is not written as `prints "PATTERN"`.
promise_of() {
	local line=$1
	[[ $line =~ [[:space:]]#[[:space:]]*prints[[:space:]](.*)$ ]] || [[ $line =~ ^[[:space:]]*#[[:space:]]*prints[[:space:]](.*)$ ]] || return 1
	local rest=${BASH_REMATCH[1]}
	[[ $rest == *\"*\"* ]] || return 2
	rest=${rest#*\"}
	printf '%s' "${rest%\"*}"
}

# PATTERN -> an anchored extended regular expression (see the conventions above).
pattern_to_ere() {
	local ere run
	ere=$(printf '%s' "$1" | sed -E -e 's/[][\\.^$*+?(){}|]/\\&/g' \
		-e 's/HH:MM:SS/[0-9]{2}:[0-9]{2}:[0-9]{2}/g' -e 's/\\\.\\\.\\\./.*/g')
	# each word made only of N's: that many digits (the replacement holds no N, so this ends)
	while [[ $ere =~ (^|[^A-Za-z0-9_])(N+)([^A-Za-z0-9_]|$) ]]; do
		run=${BASH_REMATCH[2]}
		ere=${ere/"${BASH_REMATCH[0]}"/"${BASH_REMATCH[1]}[0-9]{${#run}}${BASH_REMATCH[3]}"}
	done
	ere=$(printf '%s' "$ere" | sed -E 's/ +/[[:space:]]+/g')
	printf '^%s$' "$ere"
}

# ---- 2. the server, as `make run` starts it, on a free port ----
"$parleyd" --bind=127.0.0.1 --port=0 --port_file="$sandbox/port" --admin_port_file="$sandbox/admin_port" \
	--data_dir="$sandbox/data" 2>"$sandbox/parleyd.log" &
pid=$!
for _ in $(seq 200); do [ -s "$sandbox/port" ] && break; sleep 0.05; done
[ -s "$sandbox/port" ] || { cat "$sandbox/parleyd.log"; die "parleyd did not start"; }
port=$(cat "$sandbox/port")
admin_port=$(cat "$sandbox/admin_port")

rewrite() {
	printf '%s' "$1" | sed -E \
		-e "s#(^|[[:space:]])build/#\\1$BUILD_ROOT/#g" \
		-e "s#(localhost|127\\.0\\.0\\.1):7600([^0-9]|\$)#127.0.0.1:$port\\2#g" \
		-e "s#(localhost|127\\.0\\.0\\.1):7601([^0-9]|\$)#127.0.0.1:$admin_port\\2#g" \
		-e "s#(^|[[:space:]=])/tmp/#\\1$sandbox/tmp/#g"
}

show() { # FILE LABEL: the first lines of a command's output, for the failure report
	[ -s "$1" ] || return 0
	echo "  $2:"
	head -n 20 "$1" | sed 's/^/    | /'
}

# ---- 3. run the commands; check exit status and promises ----
count=0 checked=0
last_out=
while IFS=$'\t' read -r lno rec; do
	if [[ $rec == '#PRINTS '* ]]; then
		promise=$(promise_of "${rec#\#PRINTS }") || die "$md:$lno: write the promise as: # prints \"PATTERN\""
	else
		cmd=$(rewrite "$rec")
		count=$((count + 1))
		(
			unset PARLEY_HOME XDG_DATA_HOME
			export HOME="$sandbox/home" PARLEY_SERVER="ws://127.0.0.1:$port/v1/websocket"
			exec timeout "$cmd_timeout" bash -o pipefail -c "$cmd"
		) >"$sandbox/out" 2>"$sandbox/err" </dev/null
		rc=$?
		if [ "$rc" != 0 ]; then
			echo "not ok - $md:$lno: exit status $rc$([ "$rc" = 124 ] && echo " (timed out after ${cmd_timeout}s)")"
			echo "  README: $rec"
			echo "  ran:    $cmd"
			show "$sandbox/out" stdout
			show "$sandbox/err" stderr
			exit 1
		fi
		echo "ok - $md:$lno: $rec"
		last_out=$sandbox/out.$count
		mv "$sandbox/out" "$last_out"
		promise=$(promise_of "$rec")
		prc=$?
		[ "$prc" = 2 ] && die "$md:$lno: write the promise as: # prints \"PATTERN\""
		[ "$prc" = 0 ] || continue
	fi
	ere=$(pattern_to_ere "$promise")
	if ! grep -qE -- "$ere" "$last_out"; then
		echo "not ok - $md:$lno: no line of the output matches \"$promise\" (as $ere)"
		show "$last_out" stdout
		exit 1
	fi
	checked=$((checked + 1))
	echo "ok - $md:$lno: prints \"$promise\""
done <"$sandbox/cmds"

kill -0 "$pid" 2>/dev/null || die "parleyd died while the README ran (log: $(tail -n 5 "$sandbox/parleyd.log"))"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || die "parleyd exited $rc on SIGTERM"
echo "ok - $md: $count commands ran, $checked promised outputs matched, parleyd stopped cleanly"
