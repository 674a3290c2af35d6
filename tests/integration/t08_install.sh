#!/usr/bin/env bash
# 08: libparley is installable and consumable: `meson install` into a staging root, then a program
# built with `pkg-config libparley` against the installed headers runs; the shared library exports
# only parley_* symbols (everything else is hidden).
set -uo pipefail
: "${BUILD_ROOT:?}"
dir=$(mktemp -d /tmp/parley-install-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

check "meson install" 'meson install -C "$BUILD_ROOT" --destdir "$dir/root" --no-rebuild >"$dir/log" 2>&1'
prefix=$(meson introspect "$BUILD_ROOT" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
libdir=$(meson introspect "$BUILD_ROOT" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"][0])')
case "$libdir" in /*) ;; *) libdir="$prefix/$libdir" ;; esac
san=$(meson introspect "$BUILD_ROOT" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="b_sanitize"][0])')
# a sanitizer-built library needs its runtime in the consumer too
sanflags=""
[ "$san" != none ] && sanflags="-fsanitize=$san"
root="$dir/root"
check "public headers installed" '[ -f "$root$prefix/include/parley/parley.h" ] && [ -f "$root$prefix/include/parley/version.h" ]'
check "pkg-config file installed" '[ -f "$root$libdir/pkgconfig/libparley.pc" ]'
cat >"$dir/hello.c" <<'C'
#include <parley/parley.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	if (strcmp(parley_version(), PARLEY_VERSION_STRING) != 0)
		return 1;
	printf("%s %s\n", parley_version(), parley_strerror(PARLEY_E_BAD_MAC));
	return strcmp(parley_errname(PARLEY_E_HANDLE_TAKEN), "HANDLE_TAKEN") != 0;
}
C
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$root$libdir/pkgconfig"
check "compile against the installed library with pkg-config" \
	'cc -std=c11 -Wall -Werror $sanflags "$dir/hello.c" -o "$dir/hello" $(pkg-config --cflags --libs libparley) 2>"$dir/cc.log" || { cat "$dir/cc.log"; false; }'
check "run it" 'LD_LIBRARY_PATH="$root$libdir" "$dir/hello" | grep -q "message authentication failed"'
lib=$(ls "$root$libdir"/libparley.so.* 2>/dev/null | head -1)
check "only parley_* symbols exported" \
	'[ -n "$lib" ] && [ -z "$(nm -D --defined-only "$lib" | awk "{print \$3}" | grep -vE "^(parley_|_init$|_fini$|_edata$|_end$|__bss_start$)")" ]'
check "parleyd and the CLI installed" '[ -x "$root$prefix/sbin/parleyd" ] && ls "$root$prefix"/bin/parley >/dev/null 2>&1'
exit $fail
