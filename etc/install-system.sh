#!/bin/sh
# meson install script (etc/meson.build): $1 = the configuration directory, $2 = the sysusers.d file,
# both as installed (without DESTDIR).
# 1. <confdir>/parleyd.conf: created from the sample when missing, mode 0640 (it may hold a PostgreSQL
#    password), group parley when that group exists; an existing file is never touched.
# 2. Installing for real (no DESTDIR) as root: the system user parley, by systemd-sysusers when
#    present, else useradd; then systemd re-reads its units. Nothing is enabled or started.
set -eu
confdir=$1
sysusers=$2
dest=${DESTDIR:-}
conf="$dest$confdir/parleyd.conf"
created=0
if [ ! -e "$conf" ]; then
	created=1
	cp "$dest$confdir/parleyd.conf.sample" "$conf.tmp"
	chmod 0640 "$conf.tmp"
	mv "$conf.tmp" "$conf"
	echo "parley: created $confdir/parleyd.conf from the sample"
else
	echo "parley: kept the existing $confdir/parleyd.conf"
fi
[ -z "$dest" ] && [ "$(id -u)" = 0 ] || exit 0
if ! getent passwd parley >/dev/null; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers "$sysusers"
	else
		useradd --system --user-group --home-dir /var/lib/parley --no-create-home \
			--shell /usr/sbin/nologin --comment "parley server" parley
	fi
	echo "parley: created the system user parley"
fi
if [ "$created" = 1 ] && getent group parley >/dev/null; then
	chgrp parley "$conf"
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
