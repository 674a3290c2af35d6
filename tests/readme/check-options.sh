#!/usr/bin/env bash
# Every parleyd option the docs name with a default, written "`name` (default VALUE", must exist and
# have that default: the docs once named `bundle_rate_capacity`/`bundle_rate_per_sec`, which never
# existed. VALUE is compared with `parleyd --print-config` after dropping Markdown emphasis and
# backquotes; a line break may fall anywhere in the phrase. Usage: check-options.sh [FILE...]
# (default: README.md and docs/*.md). Environment: BUILD_ROOT = the meson build directory.
set -uo pipefail
: "${BUILD_ROOT:?BUILD_ROOT must name the meson build directory}"
BUILD_ROOT=$(cd "$BUILD_ROOT" && pwd) || exit 1
files=()
for f in "$@"; do files+=("$(realpath -- "$f")"); done
cd "$(dirname "$0")/../.." || exit 1
[ ${#files[@]} -gt 0 ] || files=(README.md docs/*.md)
config=$("$BUILD_ROOT/server/parleyd" --print-config) || { echo "not ok - parleyd --print-config failed"; exit 1; }

# FILE -> "name<TAB>value" for each "`name` (default VALUE" in it, line breaks ignored.
# shellcheck disable=SC2016 # the backquotes are Markdown, not command substitution
defaults_in() {
	tr '\n' ' ' <"$1" | grep -oE '`[a-z][a-z0-9_]*`[[:space:]]+\(default[[:space:]]+[^[:space:],;)]+' |
		sed -E 's/^`([a-z0-9_]+)`[[:space:]]+\(default[[:space:]]+/\1\t/; s/[*`]//g'
}

fail=0 n=0
for f in "${files[@]}"; do
	while IFS=$'\t' read -r name value; do
		n=$((n + 1))
		actual=$(sed -n "s/^$name \"\\(.*\\)\"\$/\\1/p" <<<"$config")
		if [ -z "$actual" ] && ! grep -q "^$name \"\"\$" <<<"$config"; then
			echo "not ok - $f: \`$name\` is not a parleyd option (parleyd --help lists them)"
			fail=1
		elif [ "$value" != "$actual" ]; then
			echo "not ok - $f: \`$name\` defaults to \"$actual\", not \"$value\""
			fail=1
		else
			echo "ok - $f: $name = $value"
		fi
	done < <(defaults_in "$f")
done
[ "$n" -gt 0 ] || { echo "not ok - no \"\`name\` (default VALUE\" in ${files[*]}: nothing checked"; fail=1; }
exit $fail
