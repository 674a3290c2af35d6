#!/usr/bin/env bash
# The banned-function list (curl's habit): functions that cannot bound their output or report errors.
# Use snprintf/memcpy with explicit lengths, dynbuf, strtol/strtoull with end-pointer checks, strtok_r.
set -uo pipefail
cd "$(dirname "$0")/.."
banned='\b(strcpy|strcat|strncat|strncpy|sprintf|vsprintf|gets|atoi|atol|atoll|atof|strtok|tmpnam|mktemp)[[:space:]]*\('
hits=$(grep -rnE "$banned" --include='*.c' --include='*.h' lib server tools include tests gateway 2>/dev/null |
	grep -vE '^\S+:[0-9]+:\s*(/\*|\*|//)' | grep -v 'check-banned' || true)
if [ -n "$hits" ]; then
	echo "banned functions used:"
	echo "$hits"
	exit 1
fi
echo "no banned functions in lib/ server/ tools/ include/ tests/ gateway/"
