#!/usr/bin/env bash
# 08: libparley is installable and consumable: `meson install` into a staging root, then a program
# built with `pkg-config libparley` against the installed headers runs; the shared library exports
# only parley_* symbols (everything else is hidden).
# The server's system install: parleyd, the man pages, the sample config, the systemd unit (where
# systemd looks for it, naming the installed binary and config, hardened: `systemd-analyze verify` and
# `security` when the machine has systemd-analyze), the sysusers.d file, a parleyd.conf created once
# and never overwritten; `make install` passes PREFIX, SYSCONFDIR and DESTDIR on.
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

# ---- the server's system install ----
src=$(cd "$(dirname "$0")/../.." && pwd)
opt() { meson introspect "$BUILD_ROOT" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]==sys.argv[1]][0])' "$1"; }
abs() { case "$1" in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
sbindir=$(abs "$(opt sbindir)")
confdir=$(abs "$(opt sysconfdir)")/parley
mandir=$(abs "$(opt mandir)")
case "$prefix" in /usr | /usr/local) unitdir=$prefix/lib/systemd/system sysusers=$prefix/lib/sysusers.d ;;
*) unitdir=/etc/systemd/system sysusers=/etc/sysusers.d ;; esac
unit="$root$unitdir/parleyd.service"
mode() { stat -c %a "$1" 2>/dev/null; }
check "parleyd 0755 in sbindir" '[ "$(mode "$root$sbindir/parleyd")" = 755 ]'
check "man pages 0644" '[ "$(mode "$root$mandir/man8/parleyd.8")" = 644 ] && [ "$(mode "$root$mandir/man1/parley.1")" = 644 ] &&
	[ "$(mode "$root$mandir/man5/parleyd.service.5")" = 644 ]'
check "sample config 0644, the repository's" '[ "$(mode "$root$confdir/parleyd.conf.sample")" = 644 ] &&
	cmp -s "$root$confdir/parleyd.conf.sample" "$src/etc/parleyd.conf.sample"'
check "parleyd.conf created 0640 from the sample" '[ "$(mode "$root$confdir/parleyd.conf")" = 640 ] &&
	cmp -s "$root$confdir/parleyd.conf" "$src/etc/parleyd.conf.sample"'
check "unit 0644 in $unitdir" '[ "$(mode "$unit")" = 644 ]'
check "sysusers.d/parley.conf 0644 declares the user" '[ "$(mode "$root$sysusers/parley.conf")" = 644 ] &&
	grep -qE "^u parley " "$root$sysusers/parley.conf"'
if command -v systemd-sysusers >/dev/null; then
	# applied to an empty root: the user and group the unit runs as, with the state directory as home
	mkdir -p "$dir/sysroot/etc"
	check "systemd-sysusers creates parley:parley, home /var/lib/parley, no login" \
		'systemd-sysusers --root="$dir/sysroot" "$root$sysusers/parley.conf" >/dev/null 2>&1 &&
		grep -qE "^parley:x:[0-9]+:[0-9]+:[^:]*:/var/lib/parley:/usr/sbin/nologin$" "$dir/sysroot/etc/passwd" &&
		grep -q "^parley:" "$dir/sysroot/etc/group"'
fi
execstart=$(sed -n 's/^ExecStart=//p' "$unit")
check "the unit runs the installed parleyd with the installed config" \
	'[ "$execstart" = "$sbindir/parleyd --config=$confdir/parleyd.conf --data_dir=/var/lib/parley" ] || { echo "# ExecStart=$execstart"; false; }'
check "the unit has no unfilled @PLACEHOLDER@" '! grep -q "@[A-Z_]*@" "$unit"'
# the hardening the unit promises (docs/deploy.md), line by line, so a lost line is named
missing=""
for d in Type=notify User=parley Group=parley StateDirectory=parley UMask=0077 LimitNOFILE=100064 \
	ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes NoNewPrivileges=yes \
	CapabilityBoundingSet= AmbientCapabilities= "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
	RestrictNamespaces=yes RestrictRealtime=yes RestrictSUIDSGID=yes LockPersonality=yes \
	MemoryDenyWriteExecute=yes ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
	ProtectControlGroups=yes ProtectClock=yes ProtectHostname=yes ProtectProc=invisible \
	SystemCallArchitectures=native SystemCallFilter=@system-service "SystemCallFilter=~@privileged @resources" \
	Restart=on-failure "ExecReload=/bin/kill -HUP \$MAINPID"; do
	grep -qxF "$d" "$unit" || missing="$missing [$d]"
done
check "hardening directives present" '[ -z "$missing" ] || { echo "# missing:$missing"; false; }'
if [ "$confdir" = /etc/parley ]; then
	check "ConfigurationDirectory=parley (config under /etc)" 'grep -qx "ConfigurationDirectory=parley" "$unit"'
fi
if command -v systemd-analyze >/dev/null; then
	# verify resolves ExecStart on this machine: point it at the staged binary (same unit otherwise)
	mkdir -p "$dir/verify"
	sed "s|^ExecStart=$sbindir/parleyd|ExecStart=$root$sbindir/parleyd|" "$unit" >"$dir/verify/parleyd.service"
	# it only warns about an unknown key or a bad value: any output is a failure too
	check "systemd-analyze verify: clean" 'systemd-analyze verify --man=no "$dir/verify/parleyd.service" >"$dir/verify.log" 2>&1 &&
		[ ! -s "$dir/verify.log" ] || { sed "s/^/# /" "$dir/verify.log"; false; }'
	if exposure=$(systemd-analyze security --offline=yes "$dir/verify/parleyd.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for parleyd.service: \([0-9.]*\).*/\1/p') && [ -n "$exposure" ]; then
		echo "# systemd-analyze security: exposure $exposure"
		check "exposure at most 2.0 (systemd-analyze security)" 'awk -v e="$exposure" "BEGIN{exit !(e <= 2.0)}"'
	fi
else
	echo "# systemd-analyze not installed: unit verification skipped"
fi

# installing again: the administrator's parleyd.conf stays as it is, the sample is refreshed
echo "bind 0.0.0.0" >"$root$confdir/parleyd.conf"
echo "# stale" >"$root$confdir/parleyd.conf.sample"
check "meson install again" 'meson install -C "$BUILD_ROOT" --destdir "$dir/root" --no-rebuild >"$dir/log2" 2>&1'
check "an existing parleyd.conf is never overwritten" '[ "$(cat "$root$confdir/parleyd.conf")" = "bind 0.0.0.0" ]'
check "the sample is refreshed" 'cmp -s "$root$confdir/parleyd.conf.sample" "$src/etc/parleyd.conf.sample"'

# make install hands PREFIX, SYSCONFDIR and DESTDIR to meson (dry run: the build directory is shared)
plan=$(make -s -n -C "$src" install BUILD="$BUILD_ROOT" PREFIX=/opt/parley SYSCONFDIR=/etc DESTDIR=/tmp/stage 2>/dev/null)
check "make install: prefix and sysconfdir configured" 'grep -qF -- "-Dprefix=/opt/parley -Dsysconfdir=/etc" <<<"$plan"'
check "make install: DESTDIR honoured" 'grep -qF -- "meson install -C $BUILD_ROOT --no-rebuild --destdir /tmp/stage" <<<"$plan"'
# make run: one node on SQLite unless STORE/BUS are given, which reach parleyd as --store/--bus
run_plain=$(make -s -n -C "$src" run BUILD="$BUILD_ROOT" 2>/dev/null | grep -F "$BUILD_ROOT/server/parleyd" -A1)
run_clus=$(make -s -n -C "$src" run BUILD="$BUILD_ROOT" STORE=postgres://u@127.0.0.1:5432/parley \
	BUS=nats://127.0.0.1:4222,nats://127.0.0.1:4223 2>/dev/null | grep -F "$BUILD_ROOT/server/parleyd" -A1)
check "make run: plain is one node on SQLite" '[ -n "$run_plain" ] && ! grep -qE -- "--(store|bus)" <<<"$run_plain"'
check "make run STORE= BUS=: --store and --bus passed" \
	'grep -qF -- "'"'"'--store=postgres://u@127.0.0.1:5432/parley'"'"'" <<<"$run_clus" &&
	grep -qF -- "'"'"'--bus=nats://127.0.0.1:4222,nats://127.0.0.1:4223'"'"'" <<<"$run_clus"'
exit $fail
