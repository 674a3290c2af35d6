/* Accepting connections, and refusing them out loud.
 *
 * Why parleyd accepts by itself (a uv_poll on the listening socket and accept4) instead of uv_listen:
 * when the process runs out of file descriptors, libuv's own accept path closes the waiting connections
 * through its reserve descriptor without a word, so at saturation every new client saw a silent close
 * and nothing was logged or counted. Here every refusal is answered (503 or 429 with Retry-After, over
 * plain HTTP; with TLS a close, since answering would cost the handshake the refusal is there to save),
 * counted in parley_connections_rejected_total and logged at most once a second per reason.
 *
 * Checked at accept, before anything is allocated for the connection:
 *   draining (public listener)        -> 503
 *   max_connections (public side)     -> 503   (parleyd clamps it below RLIMIT_NOFILE - fd_reserve)
 *   max_conns_per_address             -> 429   (IPv4 address, or IPv6 /64: one host owns a whole /64)
 *   EMFILE/ENFILE                     -> 503 through the worker's reserve descriptor: close it, accept,
 *                                        answer, close, reopen it
 * The admin listener (worker 0) has its own small bound and no per-address one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "base/log.h"
#include "base/metrics.h"
#include "common/alloc.h"
#include "net/net_internal.h"

#define ACCEPT_BATCH 64          /* connections taken per wake-up: other work on the loop gets a turn */
#define ACCEPT_BACKOFF_MS 100    /* out of fds with no reserve: stop polling the listener this long */
#define ADDR_TABLE_MIN 64

/* ---- the per-address table ---- */

int net__addr_table_init(net_addr_table *t)
{
	memset(t, 0, sizeof(*t));
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	return uv_mutex_init(&t->mu) == 0 ? PARLEY_OK : PARLEY_E_INTERNAL;
}

void net__addr_table_free(net_addr_table *t)
{
	parley__free(t->slots);
	t->slots = NULL;
	uv_mutex_destroy(&t->mu);
}

static size_t addr_home(const net_addr_table *t, const uint8_t key[16])
{
	uint64_t h;
	crypto_shorthash((unsigned char *)&h, key, 16, t->hash_key);
	return (size_t)h & (t->cap - 1);
}

/* The slot of key, or of the empty slot where it would go. cap is a power of two, never full. */
static size_t addr_find(const net_addr_table *t, const uint8_t key[16])
{
	size_t i = addr_home(t, key);
	while (t->slots[i].count != 0 && memcmp(t->slots[i].key, key, 16) != 0)
		i = (i + 1) & (t->cap - 1);
	return i;
}

/* Rehash into ncap slots (grow at half full, shrink at one eighth: the table follows the number of
 * distinct addresses connected, not its all-time peak). */
static int addr_resize(net_addr_table *t, size_t ncap)
{
	net_addr_slot *old = t->slots;
	size_t ocap = t->cap;
	net_addr_slot *n = parley__calloc(ncap, sizeof(*n));
	if (n == NULL)
		return PARLEY_E_NOMEM;
	t->slots = n;
	t->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].count != 0)
			t->slots[addr_find(t, old[i].key)] = old[i];
	parley__free(old);
	return PARLEY_OK;
}

int net__addr_acquire(net_server *s, const uint8_t key[16])
{
	net_addr_table *t = &s->addrs;
	int rc = PARLEY_OK;
	uv_mutex_lock(&t->mu);
	if ((t->used + 1) * 2 > t->cap)
		rc = addr_resize(t, t->cap ? t->cap * 2 : ADDR_TABLE_MIN);
	if (rc == PARLEY_OK) {
		net_addr_slot *e = &t->slots[addr_find(t, key)];
		if (e->count == 0) {
			memcpy(e->key, key, 16);
			t->used++;
		}
		if (e->count >= s->cfg.max_conns_per_address)
			rc = PARLEY_E_TOO_MANY_CONNECTIONS;
		else
			e->count++;
	}
	uv_mutex_unlock(&t->mu);
	return rc;
}

void net__addr_release(net_server *s, const uint8_t key[16])
{
	net_addr_table *t = &s->addrs;
	uv_mutex_lock(&t->mu);
	size_t i = t->cap ? addr_find(t, key) : 0;
	if (t->cap && t->slots[i].count > 0 && --t->slots[i].count == 0) {
		/* backward-shift deletion: later entries of the probe chain move up, no tombstones */
		size_t j = i;
		t->used--;
		for (;;) {
			j = (j + 1) & (t->cap - 1);
			if (t->slots[j].count == 0)
				break;
			size_t home = addr_home(t, t->slots[j].key);
			/* j's entry may fill the hole at i unless its home lies cyclically in (i, j] */
			if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
				t->slots[i] = t->slots[j];
				i = j;
			}
		}
		t->slots[i].count = 0;
		if (t->cap > ADDR_TABLE_MIN && t->used * 8 < t->cap)
			(void)addr_resize(t, t->cap / 2); /* stays as it is if memory is short */
	}
	uv_mutex_unlock(&t->mu);
}

void net__addr_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		memcpy(key, a, memcmp(a, mapped, 12) == 0 ? 16 : 8);
	}
}

/* ---- refusals ---- */

enum refusal { REFUSE_DRAINING, REFUSE_FULL, REFUSE_PER_ADDRESS, REFUSE_NO_FDS, REFUSE_ADMIN_FULL, REFUSE__COUNT };

/* What the refused client is told: the HTTP status and, as the body, the stable name of the error
 * (parley_errname), which a client can act on without parsing prose. */
static const struct {
	int status;
	int code;
	const char *why;
} refusals[REFUSE__COUNT] = {
	[REFUSE_DRAINING] = {503, PARLEY_E_SHUTTING_DOWN, "shutting down"},
	[REFUSE_FULL] = {503, PARLEY_E_SERVER_FULL, "max_connections reached"},
	[REFUSE_PER_ADDRESS] = {429, PARLEY_E_TOO_MANY_CONNECTIONS, "per-address connection limit reached"},
	[REFUSE_NO_FDS] = {503, PARLEY_E_SERVER_FULL, "out of file descriptors"},
	[REFUSE_ADMIN_FULL] = {503, PARLEY_E_SERVER_FULL, "admin connection limit reached"},
};

/* At most one log line per second per reason, over all workers, with the count since the last one:
 * a flood of refusals must not become a flood of log lines. */
static _Atomic uint64_t refusal_next_log[REFUSE__COUNT];
static _Atomic uint64_t refusal_unlogged[REFUSE__COUNT];

static void peer_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss->ss_family == AF_INET) {
		uv_ip4_name((const struct sockaddr_in *)ss, ip, sizeof(ip));
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		uv_ip6_name((const struct sockaddr_in6 *)ss, ip, sizeof(ip));
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	snprintf(out, cap, "%s:%d", ip, port);
}

static void refusal_log(net_server *s, enum refusal why, const struct sockaddr_storage *peer)
{
	uint64_t now = uv_hrtime() / 1000000u;
	uint64_t next = atomic_load(&refusal_next_log[why]);
	atomic_fetch_add(&refusal_unlogged[why], 1);
	if (now < next || !atomic_compare_exchange_strong(&refusal_next_log[why], &next, now + 1000))
		return;
	char who[64] = "?";
	if (peer != NULL)
		peer_text(peer, who, sizeof(who));
	uint64_t n = atomic_exchange(&refusal_unlogged[why], 0);
	unsigned limit = why == REFUSE_FULL ? s->cfg.max_connections
		       : why == REFUSE_PER_ADDRESS ? s->cfg.max_conns_per_address
		       : why == REFUSE_ADMIN_FULL  ? NET_ADMIN_MAX_CONNS
						   : 0;
	if (limit != 0)
		log_warn("net", "refused %llu connection(s) with %d %s (last from %s): %s (%u)", (unsigned long long)n,
			 refusals[why].status, parley_errname(refusals[why].code), who, refusals[why].why, limit);
	else
		log_warn("net", "refused %llu connection(s) with %d %s (last from %s): %s", (unsigned long long)n,
			 refusals[why].status, parley_errname(refusals[why].code), who, refusals[why].why);
}

/* Answers and closes an accepted socket that gets no connection. What the client already sent is read
 * first: closing with unread input makes the kernel send a reset, which can destroy the answer. */
static void refuse_fd(net_worker *w, int fd, enum refusal why, const struct sockaddr_storage *peer)
{
	net_server *s = w->srv;
	metrics__inc(METRIC_CONNECTIONS_REJECTED);
	if (why == REFUSE_PER_ADDRESS)
		metrics__inc(METRIC_REFUSED_PER_ADDRESS);
	else if (why == REFUSE_NO_FDS)
		metrics__inc(METRIC_REFUSED_NO_FDS);
	refusal_log(s, why, peer);
	if (s->tls_ctx == NULL) {
		for (int i = 0; i < 4 && recv(fd, w->readbuf, NET_READ_BUF, MSG_DONTWAIT) > 0; i++)
			;
		char a[256];
		const char *name = parley_errname(refusals[why].code);
		int len = snprintf(a, sizeof(a),
				   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
				   "Retry-After: %d\r\nConnection: close\r\n\r\n%s\n",
				   refusals[why].status, http__status_reason(refusals[why].status), strlen(name) + 1,
				   NET_REFUSAL_RETRY_AFTER_S, name);
		ssize_t n = send(fd, a, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			metrics__add(METRIC_BYTES_OUT, n);
		(void)shutdown(fd, SHUT_WR);
	}
	close(fd);
}

/* ---- accepting ---- */

/* A connection for an accepted socket that passed the limits; addr_key: its per-address slot (taken
 * by the caller, released when the connection is freed), NULL when not counted. */
static void conn_new(net_worker *w, int fd, const struct sockaddr_storage *peer, int admin, const uint8_t *addr_key)
{
	net_server *s = w->srv;
	net_conn *c = parley__calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		if (addr_key != NULL)
			net__addr_release(s, addr_key);
		return;
	}
	c->w = w;
	c->refs = 1;
	c->state = CONN_HTTP;
	c->admin = (uint8_t)admin;
	if (admin)
		atomic_fetch_add(&s->nadmin, 1);
	if (addr_key != NULL) {
		memcpy(c->addr_key, addr_key, sizeof(c->addr_key));
		c->addr_counted = 1; /* released when the handle is closed, whatever happens next */
	}
	uv_tcp_init(&w->loop, &c->tcp);
	c->tcp.data = c;
	c->id = atomic_fetch_add(&s->next_id, 1) + 1;
	net__worker_conn_add(w, c);
	if (uv_tcp_open(&c->tcp, fd) != 0) {
		close(fd);
		net__conn_shutdown(c, 1);
		return;
	}
	peer_text(peer, c->peer, sizeof(c->peer));
	uv_tcp_nodelay(&c->tcp, 1);
	http_limits lim = {.max_header_bytes = s->cfg.max_header_bytes};
	if (http__req_parser_new(&c->http, &lim) != PARLEY_OK) {
		net__conn_shutdown(c, 1);
		return;
	}
	SSL_CTX *ctx = admin ? NULL : net__tls_ctx_get(s); /* the admin listener is plain HTTP on loopback */
	if (ctx != NULL) {
		int rc = tls__bio_new(&c->tls, ctx, 1, NULL);
		SSL_CTX_free(ctx); /* the SSL holds its own reference */
		if (rc != PARLEY_OK) {
			metrics__inc(METRIC_TLS_ERRORS);
			net__conn_shutdown(c, 1);
			return;
		}
	}
	net__conn_start(c);
}


static void take(net_listener *l, int fd, struct sockaddr_storage *ss)
{
	net_worker *w = l->w;
	net_server *s = w->srv;
	uint8_t key[16];
	metrics__inc(METRIC_CONNECTIONS_ACCEPTED);
	/* the admin listener still answers probes while draining (it closes when the worker is done), but
	 * not past the drain deadline: a probe that never sends its request must not hold the exit */
	if (w->draining && (!l->admin || w->drain_cut)) {
		refuse_fd(w, fd, REFUSE_DRAINING, ss);
		return;
	}
	if (l->admin) {
		if (atomic_load(&s->nadmin) >= NET_ADMIN_MAX_CONNS) {
			refuse_fd(w, fd, REFUSE_ADMIN_FULL, ss);
			return;
		}
		conn_new(w, fd, ss, 1, NULL);
		return;
	}
	if (atomic_load(&s->nconns) - atomic_load(&s->nadmin) >= s->cfg.max_connections) {
		refuse_fd(w, fd, REFUSE_FULL, ss);
		return;
	}
	if (s->cfg.max_conns_per_address == 0) {
		conn_new(w, fd, ss, 0, NULL);
		return;
	}
	net__addr_key(ss, key);
	int rc = net__addr_acquire(s, key);
	if (rc != PARLEY_OK) {
		/* without memory for the table entry the cap cannot be kept: refuse as if full */
		refuse_fd(w, fd, rc == PARLEY_E_TOO_MANY_CONNECTIONS ? REFUSE_PER_ADDRESS : REFUSE_FULL, ss);
		return;
	}
	conn_new(w, fd, ss, 0, key);
}

static void on_readable(uv_poll_t *h, int status, int events);

static void on_backoff(uv_timer_t *t)
{
	net_worker *w = t->data;
	net_listener *ls[2] = {&w->pub, &w->adm};
	for (int i = 0; i < 2; i++)
		if (ls[i]->open && !uv_is_closing((uv_handle_t *)&ls[i]->poll))
			uv_poll_start(&ls[i]->poll, UV_READABLE, on_readable);
}

static void reopen_reserve(net_worker *w)
{
	if (w->reserve_fd < 0)
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of descriptors: each waiting connection gets the reserve's slot for as long as it takes to answer
 * it. Without a reserve (another thread took the slot) the listener pauses instead of spinning on a
 * readable socket it cannot accept from. */
static void shed(net_listener *l)
{
	net_worker *w = l->w;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		reopen_reserve(w);
		if (w->reserve_fd < 0) {
			uv_poll_stop(&l->poll);
			uv_timer_start(&w->accept_backoff, on_backoff, ACCEPT_BACKOFF_MS, 0);
			refusal_log(w->srv, REFUSE_NO_FDS, NULL);
			return;
		}
		close(w->reserve_fd);
		w->reserve_fd = -1;
		struct sockaddr_storage ss;
		socklen_t slen = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			metrics__inc(METRIC_CONNECTIONS_ACCEPTED);
			refuse_fd(w, fd, REFUSE_NO_FDS, &ss);
		}
		reopen_reserve(w);
		if (fd < 0)
			return; /* EAGAIN: nobody else is waiting */
	}
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	net_listener *l = h->data;
	(void)events;
	if (status < 0) {
		log_warn("net", "listener on worker %d: %s", l->w->idx, uv_strerror(status));
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH && l->open; i++) {
		struct sockaddr_storage ss;
		socklen_t slen = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			take(l, fd, &ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE)
			shed(l);
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_warn("net", "accept on worker %d: %s", l->w->idx, strerror(errno));
		return;
	}
}

int net__listener_start(net_worker *w, net_listener *l, int fd, int admin)
{
	l->w = w;
	l->fd = fd;
	l->admin = (uint8_t)admin;
	if (uv_poll_init_socket(&w->loop, &l->poll, fd) != 0)
		return PARLEY_E_IO; /* net__listener_close closes fd */
	l->poll.data = l;
	l->inited = 1;
	l->open = 1;
	if (uv_poll_start(&l->poll, UV_READABLE, on_readable) != 0)
		return PARLEY_E_IO;
	return PARLEY_OK;
}

static void on_listener_closed(uv_handle_t *h)
{
	net_listener *l = h->data;
	/* the poll handle never owned the socket: close this worker's dup now that nothing polls it */
	close(l->fd);
	l->fd = -1;
}

void net__listener_close(net_listener *l)
{
	if (!l->inited && l->fd >= 0) {
		/* never polled (start-up failed before it): nobody else will close it */
		close(l->fd);
		l->fd = -1;
	}
	if (!l->open)
		return;
	l->open = 0;
	uv_close((uv_handle_t *)&l->poll, on_listener_closed);
}
