/* parleyd — the parley server: wires configuration, logging, the store, the request dispatcher and
 * the network layer together, and owns process-level concerns (signals, start-up, clean shutdown).
 *
 * Threads: main runs a small uv loop for signals only; net workers run the connections; the store
 * has its own thread. Shutdown order matters: stop accepting -> drain connections (workers close
 * their store clients in on_worker_stop) -> free the dispatcher -> close the store (which finishes
 * queued jobs and checkpoints the WAL), so nothing acknowledged is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>
#include <parley/version.h>
#include <uv.h>

#include "common/dynbuf.h"
#include "base/config.h"
#include "cluster/bus.h"
#include "dispatch/dispatch.h"
#include "base/log.h"
#include "auth/auth.h"
#include "base/sdnotify.h"
#include "net/server.h"
#include "services.h"
#include "store/store.h"

extern char **environ;

#define MODULE "parleyd"
#define MAX_CONFIG_FILE (1024 * 1024)

struct parleyd {
	parleyd_config cfg;
	const char *config_file; /* NULL: none */
	int lock_fd; /* <data_dir>/parleyd.lock, held (flock) for the life of the process; -1: none */
	int argc;
	char **argv;
	store *store;
	dispatch *dispatch;
	cluster *bus; /* NULL: a single node */
	net_server *net;
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t drain_delay; /* SIGTERM -> unready -> (drain_delay_ms) -> stop accepting and drain */
	int stopping;           /* unready since SIGTERM/SIGINT */
	int stopped;            /* drained */
};

static void usage(FILE *out)
{
	dynbuf b;
	dynbuf__init(&b, 1 << 20);
	config__usage(&b);
	fprintf(out,
		"Usage: parleyd [OPTIONS]\n"
		"The parley server: accounts and devices, the key server and the durable relay of\n"
		"end-to-end encrypted messages, over WebSocket, with an embedded SQLite store.\n\n"
		"  --config=FILE                    read options from FILE (see --sample-config)\n"
		"  --sample-config                  print a commented configuration file and exit\n"
		"  --print-config                   print the effective configuration and exit\n"
		"  --help, --version\n\n"
		"Options (also PARLEYD_<NAME> in the environment, or `name value` in the file):\n%.*s\n"
		"Signals: SIGTERM/SIGINT stop accepting, drain connections and close the store;\n"
		"SIGHUP re-reads the file and environment and applies reloadable options.\n"
		"See parleyd(8).\n",
		(int)b.len, b.data ? (const char *)b.data : "");
	dynbuf__free(&b);
}

static int read_file(const char *path, dynbuf *out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return PARLEY_E_CONFIG;
	}
	int rc = PARLEY_OK;
	for (;;) {
		int e;
		uint8_t *dst = dynbuf__reserve(out, 4096, &e);
		if (dst == NULL) {
			snprintf(err, errlen, "%s: larger than %d bytes", path, MAX_CONFIG_FILE);
			rc = PARLEY_E_CONFIG;
			break;
		}
		ssize_t n = read(fd, dst, 4096);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			rc = PARLEY_E_CONFIG;
			break;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	close(fd);
	return rc;
}

/* Flags are `--name=value` or `--name value`. Only config options reach here. */
static int apply_flags(parleyd_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return PARLEY_E_CONFIG;
		}
		a += 2;
		if (!strcmp(a, "help") || !strcmp(a, "version") || !strcmp(a, "sample-config") ||
		    !strcmp(a, "print-config"))
			continue;
		char name[64];
		const char *value;
		const char *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		if (n >= sizeof name) {
			snprintf(err, errlen, "unknown option '--%s'", a);
			return PARLEY_E_CONFIG;
		}
		memcpy(name, a, n);
		name[n] = '\0';
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		if (eq != NULL) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			snprintf(err, errlen, "option '--%s' needs a value", name);
			return PARLEY_E_CONFIG;
		}
		if (!strcmp(name, "config"))
			continue;
		int rc = config__set(cfg, name, value, err, errlen);
		if (rc != PARLEY_OK)
			return rc;
	}
	return PARLEY_OK;
}

/* defaults < file < environment < flags */
static int load_config(struct parleyd *d, parleyd_config *cfg, char *err, size_t errlen)
{
	config__defaults(cfg);
	if (d->config_file != NULL) {
		dynbuf text;
		dynbuf__init(&text, MAX_CONFIG_FILE);
		int rc = read_file(d->config_file, &text, err, errlen);
		if (rc == PARLEY_OK)
			rc = config__parse_text(cfg, (const char *)text.data, text.len, d->config_file, err, errlen);
		dynbuf__free(&text);
		if (rc != PARLEY_OK)
			return rc;
	}
	int rc = config__apply_env(cfg, environ, err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	return apply_flags(cfg, d->argc, d->argv, err, errlen);
}

static const char *find_config_flag(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--config=", 9))
			return argv[i] + 9;
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			return argv[i + 1];
	}
	return NULL;
}

static int has_flag(int argc, char **argv, const char *flag)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], flag))
			return 1;
	return 0;
}

static int write_port_file(const char *path, unsigned port)
{
	char tmp[CONFIG_STR_MAX + 8], text[16];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return PARLEY_E_IO;
	int n = snprintf(text, sizeof text, "%u\n", port);
	int ok = write(fd, text, (size_t)n) == n;
	ok = close(fd) == 0 && ok;
	/* rename makes the file appear complete: a test polling for it never reads half a number */
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return PARLEY_E_IO;
	}
	return PARLEY_OK;
}

/* The service manager's view (Type=notify). A failure is logged, never fatal: the server itself is fine. */
static void notify(const char *state)
{
	int rc = sdnotify__send(state);
	if (rc != PARLEY_OK)
		log_warn(MODULE, "NOTIFY_SOCKET: cannot tell the service manager \"%s\": %s", state, parley_strerror(rc));
}

static void close_main_handles(struct parleyd *d)
{
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	uv_close((uv_handle_t *)&d->drain_delay, NULL);
}

static void drain_now(struct parleyd *d)
{
	if (d->stopped)
		return;
	d->stopped = 1;
	uv_timer_stop(&d->drain_delay);
	log_info(MODULE, "shutting down: draining connections (up to %d ms)", d->cfg.drain_timeout_ms);
	net__server_stop_accepting(d->net);
	int rc = net__server_drain(d->net, (unsigned)d->cfg.drain_timeout_ms);
	if (rc == PARLEY_E_TIMEOUT)
		log_warn(MODULE, "drain deadline reached: remaining connections were cut");
	close_main_handles(d);
	/* closing the uv handles restored the default action: a supervisor's repeated SIGTERM would now
	 * kill the process while the store finishes its queued jobs; the drain is done, so it only waits.
	 * (SIGKILL remains for a store that hangs: systemd's TimeoutStopSec.) */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
}

static void on_drain_delay(uv_timer_t *t)
{
	drain_now(t->data);
}

/* The node turns unready at once, so load balancers polling /readyz stop sending it clients; only
 * after drain_delay_ms (their detection time) does it stop accepting, so no client is refused by a node
 * the balancer still believes in. SIGINT (a person at a terminal) and a second SIGTERM do not wait. */
static void shutdown_server(struct parleyd *d, int signum)
{
	if (d->stopping) {
		drain_now(d);
		return;
	}
	d->stopping = 1;
	net__server_set_unready(d->net);
	notify("STOPPING=1\nSTATUS=draining: /readyz 503, finishing connections");
	if (signum == SIGTERM && d->cfg.drain_delay_ms > 0) {
		log_info(MODULE, "SIGTERM: /readyz now 503; still accepting for drain_delay_ms %d, then draining",
			 d->cfg.drain_delay_ms);
		uv_timer_start(&d->drain_delay, on_drain_delay, (uint64_t)d->cfg.drain_delay_ms, 0);
		return;
	}
	drain_now(d);
}

static void reload(struct parleyd *d)
{
	parleyd_config fresh;
	char err[512];
	if (load_config(d, &fresh, err, sizeof err) != PARLEY_OK) {
		log_error(MODULE, "SIGHUP: configuration not reloaded: %s", err);
		return;
	}
	char state[96];
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* MONOTONIC_USEC: newer managers (Type=notify-reload) match the READY=1 that ends the reload by it */
	snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)now.tv_sec * 1000000ull + (unsigned long long)now.tv_nsec / 1000);
	notify(state);
	dynbuf restart;
	dynbuf__init(&restart, 4096);
	int tls_changed = strcmp(fresh.tls_cert, d->cfg.tls_cert) != 0 || strcmp(fresh.tls_key, d->cfg.tls_key) != 0;
	config__apply_reloadable(&d->cfg, &fresh, &restart);
	log__setup(d->cfg.log_level, d->cfg.log_json, 2);
	if (restart.len)
		log_warn(MODULE, "SIGHUP: changed options need a restart to take effect: %.*s", (int)restart.len,
			 (const char *)restart.data);
	dynbuf__free(&restart);
	/* certificates are re-read even when the paths are unchanged: renewal replaces files in place */
	if (d->cfg.tls_cert[0] && d->cfg.tls_key[0]) {
		int rc = net__server_reload_tls(d->net, d->cfg.tls_cert, d->cfg.tls_key);
		if (rc != PARLEY_OK)
			log_error(MODULE, "SIGHUP: TLS certificate not reloaded (%s); the previous one stays in use",
				  parley_strerror(rc));
		else
			log_info(MODULE, "SIGHUP: TLS certificate reloaded");
	} else if (tls_changed) {
		log_warn(MODULE, "SIGHUP: turning TLS on or off needs a restart");
	}
	log_info(MODULE, "SIGHUP: configuration reloaded (log_level=%s)", log__level_name(d->cfg.log_level));
	notify("READY=1\nSTATUS=serving (configuration reloaded)");
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct parleyd *d = h->data;
	if (signum == SIGHUP)
		reload(d);
	else
		shutdown_server(d, signum);
}

/* Two parleyds on one data directory would each cache keys and live sessions the other never sees, so
 * the second one must not start. flock: the kernel drops it when the process dies, however it dies, so
 * a stale file never blocks a restart. Our pid goes into the file after locking, for the message the
 * next one prints. */
static int lock_data_dir(const char *dir, int *out)
{
	char path[CONFIG_STR_MAX + 32], text[24];
	snprintf(path, sizeof path, "%s/parleyd.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_error(MODULE, "lock file %s: %s", path, strerror(errno));
		return PARLEY_E_IO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ssize_t n = e == EWOULDBLOCK ? pread(fd, text, sizeof text - 1, 0) : -1;
		text[n > 0 ? n : 0] = '\0';
		long pid = strtol(text, NULL, 10);
		if (e != EWOULDBLOCK)
			log_error(MODULE, "lock file %s: %s", path, strerror(e));
		else if (pid > 0)
			log_error(MODULE, "data directory locked: %s is in use by another parleyd (pid %ld)", dir, pid);
		else
			log_error(MODULE, "data directory locked: %s is in use by another parleyd", dir);
		close(fd);
		return PARLEY_E_IO;
	}
	int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
		log_warn(MODULE, "lock file %s: cannot record pid: %s", path, strerror(errno));
	*out = fd;
	return PARLEY_OK;
}

/* Every connection is a file descriptor. The soft RLIMIT_NOFILE (often 1024) is raised to the hard one,
 * and max_connections is lowered to what the limit allows after fd_reserve (the store's files, logs,
 * the admin listener, the descriptor kept to answer refusals): above it the limit never applied and
 * accept ran out of descriptors instead, refusing everyone without a word. */
static int fit_fd_limit(const parleyd_config *c, unsigned *max_connections)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_error(MODULE, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return PARLEY_E_IO;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = rl;
		want.rlim_cur = rl.rlim_max;
		if (want.rlim_cur == RLIM_INFINITY || want.rlim_cur > (1u << 20))
			want.rlim_cur = 1u << 20; /* the kernel's usual nr_open */
		/* (a soft limit already at the cap stays as it is) */
		if (want.rlim_cur > rl.rlim_cur) {
			if (setrlimit(RLIMIT_NOFILE, &want) == 0)
				rl.rlim_cur = want.rlim_cur;
			else
				log_warn(MODULE, "cannot raise RLIMIT_NOFILE above %llu: %s",
					 (unsigned long long)rl.rlim_cur, strerror(errno));
		}
	}
	long long limit = rl.rlim_cur == RLIM_INFINITY ? (1LL << 20) : (long long)rl.rlim_cur;
	long long usable = limit - c->fd_reserve;
	if (usable < 1) {
		log_error(MODULE, "RLIMIT_NOFILE %lld leaves no file descriptor for connections after fd_reserve %d",
			  limit, c->fd_reserve);
		return PARLEY_E_CONFIG;
	}
	/* the network's copy only: the configuration keeps what was asked, so SIGHUP sees no change */
	if (*max_connections > usable) {
		log_warn(MODULE, "max_connections lowered from %u to %lld: RLIMIT_NOFILE is %lld, fd_reserve %d",
			 *max_connections, usable, limit, c->fd_reserve);
		*max_connections = (unsigned)usable;
	}
	log_info(MODULE, "file descriptors: limit %lld, max_connections %u", limit, *max_connections);
	return PARLEY_OK;
}

/* A node of a cluster: the bus to the other nodes, before the loops start (they publish from the first
 * connection on). It connects in the background: a node whose NATS is down starts, not ready. */
static int open_bus(struct parleyd *d)
{
	const parleyd_config *c = &d->cfg;
	if (c->bus[0] == '\0')
		return PARLEY_OK;
	if (c->bus_node_timeout_ms <= c->bus_heartbeat_ms) {
		log_error(MODULE, "bus_node_timeout_ms (%d) must exceed bus_heartbeat_ms (%d)", c->bus_node_timeout_ms,
			  c->bus_heartbeat_ms);
		return PARLEY_E_CONFIG;
	}
	if (c->store[0] == '\0')
		log_warn(MODULE, "bus set with the embedded SQLite store: nodes linked by a bus must share a "
				 "PostgreSQL store (store = postgres://...)");
	if (c->bus_max_item_bytes < c->max_message_bytes)
		log_warn(MODULE, "bus_max_item_bytes (%d) below max_message_bytes (%d): larger pushes reach other "
				 "nodes as store wake-ups only (ephemeral ones not at all)",
			 c->bus_max_item_bytes, c->max_message_bytes);
	cluster_config cc;
	cluster_hooks hooks;
	cluster__config_from(&cc, c);
	dispatch__bus_hooks(d->dispatch, &hooks);
	int rc = cluster__open(&cc, &hooks, &d->bus);
	if (rc != PARLEY_OK) {
		log_error(MODULE, "bus %s: %s", c->bus, parley_strerror(rc));
		return rc;
	}
	dispatch__set_bus(d->dispatch, d->bus);
	return PARLEY_OK;
}

/* /readyz: the store can run jobs (with PostgreSQL: its connection is up) */
static int store_ready(void *arg, char *reason, size_t cap)
{
	if (store__ready(arg))
		return 1;
	snprintf(reason, cap, "database unreachable");
	return 0;
}

static int start(struct parleyd *d)
{
	char dbpath[CONFIG_STR_MAX * 2 + 16];
	char where[CONFIG_STR_MAX * 2 + 16];
	parleyd_config *c = &d->cfg;
	int rc;

	/* an envelope carries its content plus a routing header inside one frame */
	if (c->max_content_bytes + 1024 > c->max_message_bytes) {
		log_error(MODULE, "max_content_bytes (%d) must be at least 1024 below max_message_bytes (%d)",
			  c->max_content_bytes, c->max_message_bytes);
		return PARLEY_E_CONFIG;
	}
	if (c->admin_port == -1 && c->port == 65535) {
		log_error(MODULE, "admin_port -1 means port + 1, and port is 65535: set admin_port (0 = none)");
		return PARLEY_E_CONFIG;
	}
	if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST) {
		log_error(MODULE, "data_dir %s: %s", c->data_dir, strerror(errno));
		return PARLEY_E_IO;
	}
	rc = lock_data_dir(c->data_dir, &d->lock_fd);
	if (rc != PARLEY_OK)
		return rc;
	if (c->database[0])
		snprintf(dbpath, sizeof dbpath, "%s", c->database);
	else
		snprintf(dbpath, sizeof dbpath, "%s/parley.db", c->data_dir);

	store_config sc;
	store__config_from(&sc, c, dbpath);
	store__describe(&sc, where, sizeof where); /* the logs never show a URL's password */
	rc = store__open(&sc, &d->store);
	if (rc != PARLEY_OK) {
		log_error(MODULE, "store %s: %s", where, parley_strerror(rc));
		return rc;
	}
	/* before any service: a node whose OTP key differs from its peers' must not serve */
	rc = auth__otp_key_check(d->store, c);
	if (rc != PARLEY_OK)
		return rc;
	size_t n_services;
	const struct service *const *services = parleyd__services(&n_services);
	rc = dispatch__new(d->store, &d->cfg, services, n_services, &d->dispatch);
	if (rc != PARLEY_OK) {
		log_error(MODULE, "dispatcher: %s", parley_strerror(rc));
		return rc;
	}

	rc = open_bus(d);
	if (rc != PARLEY_OK)
		return rc;

	net_config nc;
	net__config_from(&nc, c);
	rc = fit_fd_limit(c, &nc.max_connections);
	if (rc != PARLEY_OK)
		return rc;
	net_handler h = dispatch__handler(d->dispatch);
	d->net = net__server_new(&nc, &h, &rc);
	if (d->net == NULL) {
		log_error(MODULE, "network: %s", parley_strerror(rc));
		return rc;
	}
	rc = net__add_ready_check(d->net, "store", store_ready, d->store);
	/* a node cut off from the bus would take connections whose pushes from other nodes never reach
	 * it (envelopes only at the next resync): a load balancer must move them elsewhere */
	if (rc == PARLEY_OK && d->bus != NULL)
		rc = net__add_ready_check(d->net, "bus", cluster__ready_check, d->bus);
	if (rc != PARLEY_OK)
		return rc;
	rc = net__server_start(d->net);
	if (rc != PARLEY_OK) {
		log_error(MODULE, "listen on %s:%d: %s", c->bind, c->port, parley_strerror(rc));
		return rc;
	}
	unsigned port = net__server_port(d->net), admin_port = net__server_admin_port(d->net);
	/* before port_file: a script that waits for port_file finds both */
	if (c->admin_port_file[0] && admin_port != 0 && write_port_file(c->admin_port_file, admin_port) != PARLEY_OK) {
		log_error(MODULE, "admin_port_file %s: %s", c->admin_port_file, strerror(errno));
		return PARLEY_E_IO;
	}
	if (c->port_file[0] && write_port_file(c->port_file, port) != PARLEY_OK) {
		log_error(MODULE, "port_file %s: %s", c->port_file, strerror(errno));
		return PARLEY_E_IO;
	}
	log_info(MODULE, "parleyd %s listening on %s%s%s:%u (%s, %d worker%s), database %s", PARLEY_VERSION_STRING,
		 strchr(c->bind, ':') ? "[" : "", c->bind, strchr(c->bind, ':') ? "]" : "", port,
		 nc.tls_cert_file ? "TLS" : "plain", c->workers, c->workers == 1 ? "" : "s", where);
	return PARLEY_OK;
}

/* After start: the listeners accept and the port files exist, so whatever systemd starts next finds us. */
static void notify_ready(const struct parleyd *d)
{
	char state[CONFIG_STR_MAX + 96];
	snprintf(state, sizeof state, "READY=1\nSTATUS=serving on %s port %u (admin %u), %d worker%s", d->cfg.bind,
		 net__server_port(d->net), net__server_admin_port(d->net), d->cfg.workers, d->cfg.workers == 1 ? "" : "s");
	notify(state);
}

int main(int argc, char **argv)
{
	static struct parleyd d;
	char err[512];
	int rc;

	d.argc = argc;
	d.argv = argv;
	d.lock_fd = -1;
	if (has_flag(argc, argv, "--help") || has_flag(argc, argv, "-h")) {
		usage(stdout);
		return 0;
	}
	if (has_flag(argc, argv, "--version")) {
		printf("parleyd %s\n", PARLEY_VERSION_STRING);
		return 0;
	}
	if (has_flag(argc, argv, "--sample-config")) {
		dynbuf b;
		dynbuf__init(&b, 1 << 20);
		config__sample(&b);
		fwrite(b.data, 1, b.len, stdout);
		dynbuf__free(&b);
		return 0;
	}
	d.config_file = find_config_flag(argc, argv);
	if (load_config(&d, &d.cfg, err, sizeof err) != PARLEY_OK) {
		fprintf(stderr, "parleyd: %s\n(see parleyd --help)\n", err);
		return 2;
	}
	if (has_flag(argc, argv, "--print-config")) {
		dynbuf b;
		dynbuf__init(&b, 1 << 20);
		config__dump(&d.cfg, &b);
		fwrite(b.data, 1, b.len, stdout);
		dynbuf__free(&b);
		return 0;
	}
	log__setup(d.cfg.log_level, d.cfg.log_json, 2);
	/* a peer that vanishes mid-write must not kill the process */
	signal(SIGPIPE, SIG_IGN);

	uv_loop_init(&d.loop);
	uv_signal_init(&d.loop, &d.sig_term);
	uv_signal_init(&d.loop, &d.sig_int);
	uv_signal_init(&d.loop, &d.sig_hup);
	d.sig_term.data = d.sig_int.data = d.sig_hup.data = &d;
	uv_signal_start(&d.sig_term, on_signal, SIGTERM);
	uv_signal_start(&d.sig_int, on_signal, SIGINT);
	uv_signal_start(&d.sig_hup, on_signal, SIGHUP);
	uv_timer_init(&d.loop, &d.drain_delay);
	d.drain_delay.data = &d;

	rc = start(&d);
	if (rc == PARLEY_OK) {
		notify_ready(&d);
		uv_run(&d.loop, UV_RUN_DEFAULT);
	} else {
		close_main_handles(&d);
		uv_run(&d.loop, UV_RUN_DEFAULT);
	}
	net__server_free(d.net);
	/* after the loops (they publish), before the dispatcher (the bus delivers into it) */
	if (d.dispatch != NULL)
		dispatch__set_bus(d.dispatch, NULL);
	cluster__close(d.bus);
	dispatch__free(d.dispatch);
	store__close(d.store);
	/* released only after the store is closed: the next parleyd may then open the database at once */
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	uv_loop_close(&d.loop);
	if (rc == PARLEY_OK)
		log_info(MODULE, "stopped cleanly");
	return rc == PARLEY_OK ? 0 : 1;
}
