/* parleyd's listener and loop threads: one uv loop per worker, all accepting from ONE listening socket
 * (each worker polls its own dup of it; the kernel hands each connection to whichever loop accepts
 * first), and the start / stop-accepting / drain / free lifecycle driven from the controlling thread through
 * uv_async (the only thread-safe libuv call). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <parley/error.h>

#include "base/config.h"
#include "base/heap.h"
#include "common/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "net/net_internal.h"

void net__config_from(net_config *nc, const parleyd_config *c)
{
	memset(nc, 0, sizeof(*nc));
	nc->bind_address = c->bind;
	nc->port = (uint16_t)c->port;
	nc->tls_cert_file = c->tls_cert[0] ? c->tls_cert : NULL;
	nc->tls_key_file = c->tls_key[0] ? c->tls_key : NULL;
	nc->workers = c->workers;
	nc->max_connections = (unsigned)c->max_connections;
	nc->max_header_bytes = (size_t)c->max_header_bytes;
	nc->max_message_bytes = (size_t)c->max_message_bytes;
	nc->max_pending_output = (size_t)c->max_output_bytes;
	nc->handshake_timeout_ms = (unsigned)c->handshake_timeout_ms;
	nc->idle_timeout_ms = (unsigned)c->idle_timeout_ms;
	nc->ping_interval_ms = (unsigned)c->idle_timeout_ms / 3;
	nc->ws_path = c->ws_path;
	nc->auth_timeout_ms = (unsigned)c->auth_timeout_ms;
	nc->max_preauth_message_bytes = (size_t)c->max_preauth_message_bytes;
	nc->message_timeout_ms = (unsigned)c->message_timeout_ms;
	nc->max_conns_per_address = (unsigned)c->max_connections_per_address;
	nc->allowed_origins = c->allowed_origins;
	nc->admin_bind = c->admin_bind;
	nc->admin_port = c->admin_port;
}

void net__config_defaults(net_config *nc)
{
	parleyd_config d;
	config__defaults(&d);
	net__config_from(nc, &d);
	/* the strings must outlive `d`: the table's own literals */
	nc->bind_address = config__default_text("bind");
	nc->ws_path = config__default_text("ws_path");
	nc->allowed_origins = config__default_text("allowed_origins");
	nc->admin_bind = config__default_text("admin_bind");
}

static char *dup_or_null(const char *s, int *fail)
{
	char *d;
	if (s == NULL)
		return NULL;
	d = parley__strdup(s);
	if (d == NULL)
		*fail = 1;
	return d;
}

/* allowed_origins -> origin_list: the separators become NULs in the server's own copy. */
static int split_origins(net_server *s)
{
	size_t n = 0;
	for (char *p = s->origins; *p; p++)
		n += *p == ',' || *p == ' ';
	s->origin_list = parley__calloc(n + 2, sizeof(char *));
	if (s->origin_list == NULL)
		return PARLEY_E_NOMEM;
	n = 0;
	for (char *p = s->origins; *p;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (strcmp(p, "*") == 0 || strncmp(p, "* ", 2) == 0 || strncmp(p, "*,", 2) == 0)
			s->origin_any = 1;
		s->origin_list[n++] = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
	}
	return PARLEY_OK;
}

static void free_strings(net_server *s)
{
	parley__free(s->bind_address);
	parley__free(s->ws_path);
	parley__free(s->tls_cert);
	parley__free(s->tls_key);
	parley__free(s->admin_bind);
	parley__free(s->origins);
	parley__free(s->origin_list);
}

net_server *net__server_new(const net_config *cfg, const net_handler *handler, int *err)
{
	net_server *s = NULL;
	int fail = 0;
	int rc = PARLEY_E_CONFIG;
	if (cfg->workers < 1 || cfg->workers > 256 || cfg->max_connections == 0 || cfg->max_header_bytes < 256 ||
	    cfg->max_message_bytes == 0 || cfg->max_pending_output == 0 ||
	    (cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL))
		goto fail;
	if (cfg->ws_path != NULL && cfg->ws_path[0] != '/')
		goto fail;
	if (cfg->admin_port < -1 || cfg->admin_port > 65535 || (cfg->admin_port == -1 && cfg->port == 65535))
		goto fail;
	rc = PARLEY_E_NOMEM;
	s = parley__calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	s->cfg = *cfg;
	s->h = *handler;
	s->bind_address = dup_or_null(cfg->bind_address != NULL ? cfg->bind_address : "127.0.0.1", &fail);
	s->ws_path = dup_or_null(cfg->ws_path != NULL ? cfg->ws_path : "/v1/websocket", &fail);
	s->tls_cert = dup_or_null(cfg->tls_cert_file, &fail);
	s->tls_key = dup_or_null(cfg->tls_key_file, &fail);
	s->admin_bind = dup_or_null(cfg->admin_bind != NULL ? cfg->admin_bind : "127.0.0.1", &fail);
	s->origins = dup_or_null(cfg->allowed_origins != NULL ? cfg->allowed_origins : "", &fail);
	if (!fail && split_origins(s) != PARLEY_OK)
		fail = 1;
	s->workers = parley__calloc((size_t)cfg->workers, sizeof(*s->workers));
	if (fail || s->workers == NULL)
		goto fail;
	s->cfg.bind_address = s->bind_address;
	s->cfg.ws_path = s->ws_path;
	s->cfg.tls_cert_file = s->tls_cert;
	s->cfg.tls_key_file = s->tls_key;
	s->cfg.admin_bind = s->admin_bind;
	s->cfg.allowed_origins = s->origins;
	if (net__addr_table_init(&s->addrs) != PARLEY_OK)
		goto fail;
	uv_mutex_init(&s->tls_mu);
	if (s->tls_cert != NULL) {
		rc = net__tls_ctx_load(s->tls_cert, s->tls_key, &s->tls_ctx);
		if (rc != PARLEY_OK) {
			uv_mutex_destroy(&s->tls_mu);
			net__addr_table_free(&s->addrs);
			goto fail;
		}
	}
	*err = PARLEY_OK;
	return s;
fail:
	if (s != NULL) {
		free_strings(s);
		parley__free(s->workers);
		parley__free(s);
	}
	*err = rc;
	return NULL;
}

/* One socket for the whole process, bound WITHOUT SO_REUSEPORT: with it, a second parleyd on the same
 * port would bind cleanly and the kernel would split the connections between the two processes (other
 * keys, other live sessions). Without it the second one gets EADDRINUSE and exits. SO_REUSEADDR only
 * lets us rebind over our own TIME_WAIT connections after a restart; it never admits a second listener. */
static int make_listen_socket(const char *address, uint16_t port, int backlog, uv_os_sock_t *out, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int one = 1;
	memset(&ss, 0, sizeof(ss));
	if (uv_ip4_addr(address, port, (struct sockaddr_in *)&ss) == 0) {
		slen = sizeof(struct sockaddr_in);
	} else if (uv_ip6_addr(address, port, (struct sockaddr_in6 *)&ss) == 0) {
		slen = sizeof(struct sockaddr_in6);
	} else {
		log_warn("net", "bad bind address %s", address);
		return PARLEY_E_CONFIG;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return PARLEY_E_IO;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, slen) != 0 || listen(fd, backlog) != 0) {
		int e = errno;
		log_error("net", "cannot bind %s:%u: %s%s", address, port, strerror(e),
			  e == EADDRINUSE ? " (another process listens on this port)" : "");
		close(fd);
		return PARLEY_E_IO;
	}
	slen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) != 0) {
		close(fd);
		return PARLEY_E_IO;
	}
	*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*out = fd;
	return PARLEY_OK;
}

void net__worker_conn_add(net_worker *w, net_conn *c)
{
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	atomic_fetch_add(&w->srv->nconns, 1);
	metrics__add(METRIC_CONNECTIONS_OPEN, 1);
}

static void maybe_finish(net_worker *w);

/* A wave of closed connections (a flood that was cut, clients leaving) leaves their buffers as free
 * holes in this thread's malloc arena, which glibc keeps: RSS stayed at the peak after the connections
 * were gone. One trim a second after the wave returns the free pages; never more than once a second. */
static void on_trim(uv_timer_t *t)
{
	net_worker *w = t->data;
	w->closed_since_trim = 0;
	heap__trim();
}

void net__worker_conn_gone(net_worker *w, net_conn *c)
{
	if (++w->closed_since_trim >= NET_TRIM_AFTER_CLOSES && !w->draining &&
	    !uv_is_active((uv_handle_t *)&w->trim_timer))
		uv_timer_start(&w->trim_timer, on_trim, NET_TRIM_DELAY_MS, 0);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub(&w->srv->nconns, 1);
	metrics__add(METRIC_CONNECTIONS_OPEN, -1);
	maybe_finish(w);
}

static void close_listener(net_worker *w)
{
	net__listener_close(&w->pub);
	net__listener_close(&w->adm);
}

/* Once draining and the last connection is gone, close our own handles so uv_run returns. */
static void maybe_finish(net_worker *w)
{
	if (!w->draining || w->nconns > 0)
		return;
	close_listener(w);
	if (!w->stop_called) {
		/* before the loop ends, so a service can close the handles it keeps on this loop */
		w->stop_called = 1;
		if (w->srv->h.on_worker_stop != NULL)
			w->srv->h.on_worker_stop(w->srv->h.ctx, w->idx, &w->loop);
	}
	net__sched_close(w);
	if (w->reserve_fd >= 0) {
		close(w->reserve_fd);
		w->reserve_fd = -1;
	}
	if (!uv_is_closing((uv_handle_t *)&w->accept_backoff))
		uv_close((uv_handle_t *)&w->accept_backoff, NULL);
	if (!uv_is_closing((uv_handle_t *)&w->trim_timer))
		uv_close((uv_handle_t *)&w->trim_timer, NULL);
	if (!uv_is_closing((uv_handle_t *)&w->drain_timer))
		uv_close((uv_handle_t *)&w->drain_timer, NULL);
	if (!uv_is_closing((uv_handle_t *)&w->async))
		uv_close((uv_handle_t *)&w->async, NULL);
}

static void on_drain_deadline(uv_timer_t *t)
{
	net_worker *w = t->data;
	net_conn *c = w->conns;
	if (c != NULL)
		w->drain_cut = 1;
	while (c != NULL) {
		net_conn *next = c->next;
		net__conn_shutdown(c, 1);
		c = next;
	}
}

static void on_async(uv_async_t *a)
{
	net_worker *w = a->data;
	/* the admin listener stays open until maybe_finish: probes read /readyz 503 during the drain */
	if (atomic_load(&w->cmd_stop_accepting))
		net__listener_close(&w->pub);
	if (atomic_load(&w->cmd_drain) && !w->draining) {
		w->draining = 1;
		net_conn *c = w->conns;
		while (c != NULL) {
			net_conn *next = c->next;
			net__conn_shutdown(c, 0);
			c = next;
		}
		uv_timer_start(&w->drain_timer, on_drain_deadline, w->srv->drain_timeout_ms, 0);
		maybe_finish(w);
	}
}

static void worker_main(void *arg)
{
	net_worker *w = arg;
	net_server *s = w->srv;
	int rc = PARLEY_OK;
	if (s->h.on_worker_start != NULL) {
		rc = s->h.on_worker_start(s->h.ctx, w->idx, &w->loop);
		if (rc != PARLEY_OK) {
			close_listener(w); /* not polled yet: closes both descriptors */
			goto fail;
		}
	}
	uv_timer_init(&w->loop, &w->accept_backoff);
	w->accept_backoff.data = w;
	uv_timer_init(&w->loop, &w->trim_timer);
	w->trim_timer.data = w;
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int adm_fd = w->adm.fd;
	if (net__listener_start(w, &w->pub, w->pub.fd, 0) != PARLEY_OK ||
	    (adm_fd >= 0 && net__listener_start(w, &w->adm, adm_fd, 1) != PARLEY_OK)) {
		rc = PARLEY_E_IO;
		goto fail_stop;
	}
	uv_async_init(&w->loop, &w->async, on_async);
	w->async.data = w;
	uv_timer_init(&w->loop, &w->drain_timer);
	w->drain_timer.data = w;
	net__sched_init(w);
	w->start_rc = PARLEY_OK;
	uv_sem_post(&w->ready);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	return;
fail_stop:
	close_listener(w);
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	uv_close((uv_handle_t *)&w->accept_backoff, NULL);
	uv_close((uv_handle_t *)&w->trim_timer, NULL);
	uv_run(&w->loop, UV_RUN_NOWAIT);
	if (s->h.on_worker_stop != NULL)
		s->h.on_worker_stop(s->h.ctx, w->idx, &w->loop);
fail:
	w->start_rc = rc;
	uv_sem_post(&w->ready);
}

int net__server_start(net_server *s)
{
	int rc = PARLEY_OK;
	int started = 0;
	uint16_t port = 0, admin_port = 0;
	uv_os_sock_t lfd = -1, afd = -1;
	for (int i = 0; i < s->cfg.workers; i++) {
		net_worker *w = &s->workers[i];
		w->srv = s;
		w->idx = i;
		w->pub.fd = w->adm.fd = -1;
		w->reserve_fd = -1;
		dynbuf__init(&w->plain, NET_READ_BUF);
	}
	rc = make_listen_socket(s->bind_address, s->cfg.port, 1024, &lfd, &port);
	if (rc == PARLEY_OK && s->cfg.admin_port != 0) {
		/* -1: the port after the public one, so two servers never fight over a fixed admin port */
		uint16_t want = s->cfg.admin_port > 0 ? (uint16_t)s->cfg.admin_port
				: s->cfg.port == 0     ? 0
						       : (uint16_t)(s->cfg.port + 1);
		rc = make_listen_socket(s->admin_bind, want, 64, &afd, &admin_port);
		s->workers[0].adm.fd = afd; /* worker 0 closes it */
	}
	/* a dup per worker: each uv_tcp_t owns (and closes) its fd, and a worker that stops accepting
	 * closes only its own; the socket itself lives until the last worker lets go of it */
	for (int i = 0; rc == PARLEY_OK && i < s->cfg.workers; i++) {
		s->workers[i].pub.fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0);
		if (s->workers[i].pub.fd < 0) {
			log_error("net", "dup listening socket: %s", strerror(errno));
			rc = PARLEY_E_IO;
		}
	}
	if (lfd >= 0)
		close(lfd);
	if (rc == PARLEY_OK) {
		s->port = port;
		for (int i = 0; i < s->cfg.workers; i++) {
			net_worker *w = &s->workers[i];
			uv_loop_init(&w->loop);
			uv_sem_init(&w->ready, 0);
			w->launched = 1;
			if (uv_thread_create(&w->thread, worker_main, w) != 0) {
				rc = PARLEY_E_INTERNAL;
				uv_sem_destroy(&w->ready);
				uv_loop_close(&w->loop);
				break;
			}
			uv_sem_wait(&w->ready);
			uv_sem_destroy(&w->ready);
			if (w->start_rc != PARLEY_OK) {
				rc = w->start_rc;
				uv_thread_join(&w->thread);
				uv_loop_close(&w->loop);
				break;
			}
			started++;
		}
	}
	if (rc != PARLEY_OK) {
		for (int i = 0; i < s->cfg.workers; i++) {
			if (!s->workers[i].launched && s->workers[i].pub.fd >= 0)
				close(s->workers[i].pub.fd);
			if (!s->workers[i].launched && s->workers[i].adm.fd >= 0)
				close(s->workers[i].adm.fd);
		}
		s->started = started;
		net__server_drain(s, 0);
		return rc;
	}
	s->started = started;
	s->admin_port = admin_port;
	log_info("net", "listening on %s:%u (%d workers%s)", s->bind_address, s->port, started,
		 s->tls_ctx != NULL ? ", TLS" : "");
	if (admin_port != 0)
		log_info("net", "admin listener (/metrics, /healthz, /livez, /readyz) on %s:%u", s->admin_bind, admin_port);
	return PARLEY_OK;
}

uint16_t net__server_admin_port(const net_server *s)
{
	return s->admin_port;
}

uint16_t net__server_port(const net_server *s)
{
	return s->port;
}

unsigned net__server_connections(const net_server *s)
{
	return atomic_load(&((net_server *)s)->nconns);
}

int net__add_ready_check(net_server *s, const char *name, net_ready_fn fn, void *arg)
{
	int n = atomic_load(&s->nready);
	if (fn == NULL || name == NULL || name[0] == '\0')
		return PARLEY_E_INVAL;
	if (n >= NET_MAX_READY_CHECKS)
		return PARLEY_E_TOO_LARGE;
	struct net_ready_check *c = &s->ready[n];
	snprintf(c->name, sizeof c->name, "%s", name);
	c->fn = fn;
	c->arg = arg;
	atomic_store_explicit(&s->nready, n + 1, memory_order_release);
	return PARLEY_OK;
}

void net__server_set_unready(net_server *s)
{
	atomic_store(&s->unready, 1);
}

int net__server_ready(net_server *s, char *reason, size_t cap)
{
	if (atomic_load(&s->unready)) {
		snprintf(reason, cap, "draining");
		return 0;
	}
	if (s->h.health != NULL && s->h.health(s->h.ctx, reason, cap) != 0)
		return 0;
	int n = atomic_load_explicit(&s->nready, memory_order_acquire);
	for (int i = 0; i < n; i++) {
		char why[160] = "";
		if (s->ready[i].fn(s->ready[i].arg, why, sizeof why))
			continue;
		snprintf(reason, cap, "%s: %s", s->ready[i].name, why[0] ? why : "not ready");
		return 0;
	}
	if (cap > 0)
		reason[0] = '\0';
	return 1;
}

void net__server_stop_accepting(net_server *s)
{
	net__server_set_unready(s);
	for (int i = 0; i < s->started; i++) {
		atomic_store(&s->workers[i].cmd_stop_accepting, 1);
		uv_async_send(&s->workers[i].async);
	}
}

int net__server_drain(net_server *s, unsigned timeout_ms)
{
	int cut = 0;
	s->drain_timeout_ms = timeout_ms;
	net__server_set_unready(s);
	for (int i = 0; i < s->started; i++) {
		net_worker *w = &s->workers[i];
		atomic_store(&w->cmd_stop_accepting, 1);
		atomic_store(&w->cmd_drain, 1);
		uv_async_send(&w->async);
	}
	for (int i = 0; i < s->started; i++) {
		net_worker *w = &s->workers[i];
		uv_thread_join(&w->thread);
		uv_loop_close(&w->loop);
		dynbuf__free(&w->plain);
		cut |= w->drain_cut;
	}
	s->started = 0;
	return cut ? PARLEY_E_TIMEOUT : PARLEY_OK;
}

void net__server_free(net_server *s)
{
	if (s == NULL)
		return;
	if (s->started > 0)
		net__server_drain(s, 0);
	SSL_CTX_free(s->tls_ctx);
	uv_mutex_destroy(&s->tls_mu);
	net__addr_table_free(&s->addrs);
	free_strings(s);
	parley__free(s->workers);
	parley__free(s);
}
