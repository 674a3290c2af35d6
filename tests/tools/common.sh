# Shared by tests/tools/pg.sh and nats.sh (sourced; each defines die() first).

# the live pid written on the first line of FILE, else nothing
pid_in() {
	local pid
	[ -f "$1" ] || return 0
	pid=$(head -n1 "$1" 2>/dev/null) || return 0
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	kill -0 "$pid" 2>/dev/null && echo "$pid"
	return 0
}

# a port nobody listens on now (the bind itself decides: start retries on a collision)
pick_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		[ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return; }
	done
	die "no free port found"
}
