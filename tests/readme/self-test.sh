#!/usr/bin/env bash
# The checks of this folder must be able to fail. Each fixtures/readme/*.md is a README that is wrong in
# one way for run-readme.sh (the bug the README once had, a command that never returns, a promise the
# output does not keep, a block without a marker, ...); each fixtures/options/*.md names parleyd options
# wrongly for check-options.sh. A fixture's first line `<!-- expect: TEXT -->` names what the failure
# report must say; the fixture passes when its check exits 1 and the report contains TEXT.
set -uo pipefail
: "${BUILD_ROOT:?BUILD_ROOT must name the meson build directory}"
here=$(cd "$(dirname "$0")" && pwd)
fail=0 n=0
for f in "$here"/fixtures/readme/*.md "$here"/fixtures/options/*.md; do
	n=$((n + 1))
	expect=$(sed -n '1s/^<!-- expect: \(.*\) -->$/\1/p' "$f")
	name=${f#"$here"/}
	if [ -z "$expect" ]; then
		echo "not ok - $name: first line must be <!-- expect: TEXT -->"
		fail=1
		continue
	fi
	case $f in
	*/fixtures/readme/*) out=$(README_CMD_TIMEOUT=2 "$here/run-readme.sh" "$f" 2>&1) ;;
	*) out=$("$here/check-options.sh" "$f" 2>&1) ;;
	esac
	rc=$?
	if [ "$rc" = 1 ] && grep -qF -- "$expect" <<<"$out"; then
		echo "ok - $name fails as it should: $(grep -F -- "$expect" <<<"$out" | head -n 1)"
	else
		echo "not ok - $name: expected exit 1 with \"$expect\", got exit $rc:"
		sed 's/^/    | /' <<<"$out"
		fail=1
	fi
done
[ "$n" -gt 0 ] || { echo "not ok - no fixtures"; fail=1; }
exit $fail
