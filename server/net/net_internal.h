/* Internals shared by the files of server/net: workers, connections, TLS contexts, routes. */
#ifndef PARLEYD_NET_INTERNAL_H
#define PARLEYD_NET_INTERNAL_H
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "common/dynbuf.h"
#include "net/conn.h"
#include "codec/http.h"
#include "net/server.h"
#include "codec/tls_bio.h"
#include "codec/ws.h"

#define NET_READ_BUF 65536
#define NET_CLOSE_GRACE_MS 5000 /* how long a closing connection may take to flush and hear the peer */
#define NET_TRIM_AFTER_CLOSES 256 /* connections closed on a worker before its heap is trimmed */
#define NET_TRIM_DELAY_MS 1000    /* ... a second later, once for the whole wave */
#define NET_REFUSAL_RETRY_AFTER_S 5 /* Retry-After of a connection refused at accept (503/429) */
#define NET_ADMIN_MAX_CONNS 16  /* admin connections at once: scrapes and probes, never many */
#define NET_CLOSE_AUTH_TIMEOUT 4408 /* WebSocket close code: not authenticated by auth_timeout_ms */

typedef struct net_worker net_worker;

/* A listening socket polled by one worker; accept.c accepts from it itself (not uv_listen) so that
 * running out of file descriptors can be answered (503) rather than silently closed. */
typedef struct net_listener {
	uv_poll_t poll;
	net_worker *w;
	int fd;       /* -1: none */
	uint8_t inited; /* poll handle initialised (fd then closed by its close callback) */
	uint8_t open;   /* poll handle initialised and not closed */
	uint8_t admin;
} net_listener;

/* The per-address connection counts of the whole server (accept.c): open addressing keyed by a
 * SipHash of the address with a random key, so peers cannot aim at one probe chain. */
typedef struct net_addr_slot {
	uint8_t key[16];
	uint32_t count; /* 0: empty */
} net_addr_slot;
typedef struct net_addr_table {
	uv_mutex_t mu;
	net_addr_slot *slots;
	size_t cap, used;
	uint8_t hash_key[16];
} net_addr_table;

enum conn_state { CONN_HTTP, CONN_WS, CONN_CLOSING, CONN_CLOSED };

/* The deadlines a connection can wait for. Each kind has one delay for every connection of a worker, so
 * each kind's list, appended to as time goes on, is already sorted by deadline (see sched.c). */
enum net_deadline {
	NET_DL_NONE,
	NET_DL_HANDSHAKE, /* accept -> TLS + HTTP header complete (slowloris) */
	NET_DL_TICK,      /* WebSocket idle/ping check, a few times per period */
	NET_DL_CLOSING,   /* closing: time for the last bytes and the peer's close frame */
	NET_DL_AUTH,      /* WebSocket open -> authenticated (closed with 4408 at the deadline) */
	NET_DL_MESSAGE,   /* first byte of a WebSocket message -> its last (trickling peers) */
	NET_DL__COUNT
};

/* Sized for the idle connection: the only libuv handle is the socket. The per-iteration flush and the
 * timeouts are one uv_prepare and one uv_timer per worker, with the connections waiting for them on
 * intrusive lists (sched.c), so a connection carries list links instead of two more handles. */
struct net_conn {
	uv_tcp_t tcp;
	net_worker *w;
	net_conn *prev, *next;   /* worker's list of connections */
	net_conn *dl_prev, *dl_next; /* worker's list for the deadline kind dl */
	net_conn *flush_next;    /* worker's flush queue */
	uint64_t deadline;       /* loop time (ms) when dl expires */
	uint64_t id;
	uint64_t last_rx_ms;
	size_t write_pending;    /* bytes handed to uv_write and not yet completed */
	tls_bio *tls;
	http_req_parser *http;   /* until the request header is complete */
	ws_session *ws;
	void *data;
	int refs;
	uint8_t state;           /* enum conn_state */
	uint8_t dl;              /* enum net_deadline: the list the connection is on */
	uint8_t flush_queued;    /* on the worker's flush queue (which holds a reference) */
	uint8_t opened;          /* on_open was called: on_close is owed */
	uint8_t hard_closing;
	uint8_t close_after_flush;
	uint8_t tls_shutdown_sent;
	uint8_t in_dispatch;     /* inside ws__feed: sends only queue, the caller flushes */
	uint8_t authed;          /* the service authenticated it (net__conn_authenticated) */
	uint8_t admin;           /* accepted on the admin listener: /metrics, /healthz, no WebSocket */
	uint8_t http_pending;    /* a GET handed to net_handler.on_http, not answered yet (holds a ref) */
	uint8_t addr_counted;    /* holds one slot of addr_key in the per-address table */
	uint8_t addr_key[16];    /* IPv4 (v4-mapped) or the IPv6 /64: the per-address cap's unit */
	char peer[56];           /* "ip:port" for logs: INET6_ADDRSTRLEN + ':' + 5 digits fits */
};
/* An idle WebSocket connection may cost 4 KiB of RSS in all (it is ~1.1 KiB): grow this knowingly */
_Static_assert(sizeof(struct net_conn) <= sizeof(uv_tcp_t) + 256, "net_conn outgrew the idle-connection budget");

struct net_worker {
	net_server *srv;
	int idx;
	uv_loop_t loop;
	net_listener pub;   /* the public listener: this worker's dup of the one socket */
	net_listener adm;   /* the admin listener, on worker 0 only (fd -1 elsewhere) */
	int reserve_fd;     /* kept open to be closed when accept hits EMFILE (accept.c) */
	uv_timer_t accept_backoff; /* out of fds with no reserve left: accepting pauses briefly */
	uv_timer_t trim_timer;     /* gives the heap of many closed connections back to the system */
	unsigned closed_since_trim;
	uv_async_t async;
	uv_timer_t drain_timer;
	uv_thread_t thread;
	uv_sem_t ready;
	int start_rc;
	_Atomic int cmd_stop_accepting;
	_Atomic int cmd_drain;
	int launched;
	int stop_called;
	int draining;
	int drain_cut; /* connections were cut at the deadline */
	net_conn *conns;
	unsigned nconns;
	/* sched.c: the deferred flush and the connection deadlines of this loop */
	uv_prepare_t flush_prep;
	net_conn *flush_head, *flush_tail;
	uv_timer_t dl_timer;
	uint64_t dl_timer_due; /* when dl_timer fires; 0 = stopped */
	uint64_t dl_delay[NET_DL__COUNT];
	net_conn *dl_head[NET_DL__COUNT], *dl_tail[NET_DL__COUNT];
	int sched_open;
	uint8_t readbuf[NET_READ_BUF];
	dynbuf plain; /* decrypted input scratch */
};

struct net_server {
	net_config cfg;
	char *bind_address, *tls_cert, *tls_key, *ws_path, *admin_bind, *origins;
	char **origin_list; /* allowed_origins split (pointers into origins); NULL-terminated */
	int origin_any;     /* "*" */
	net_handler h;
	net_worker *workers;
	uint16_t port, admin_port;
	net_addr_table addrs;
	_Atomic unsigned nconns;
	_Atomic unsigned nadmin; /* admin connections among nconns (not under max_connections) */
	_Atomic uint64_t next_id;
	uv_mutex_t tls_mu;
	SSL_CTX *tls_ctx; /* NULL without TLS; replaced by reload under tls_mu */
	int started;
	unsigned drain_timeout_ms;
	/* readiness (/readyz): entries [0, nready) are complete; written by the controlling thread only,
	 * nready published with release so a loop thread that sees the count sees the entry */
	struct net_ready_check {
		char name[32];
		net_ready_fn fn;
		void *arg;
	} ready[NET_MAX_READY_CHECKS];
	_Atomic int nready;
	_Atomic int unready; /* draining: /readyz 503 from SIGTERM on */
};

/* tls.c */
int net__tls_ctx_load(const char *cert, const char *key, SSL_CTX **out);
/* Returns a new reference to the current context (caller SSL_CTX_free's it) or NULL without TLS. */
SSL_CTX *net__tls_ctx_get(net_server *s);

/* conn.c */
/* A new connection (set up by accept.c) starts reading, with the handshake deadline running. */
void net__conn_start(net_conn *c);
void net__conn_shutdown(net_conn *c, int hard); /* drain: 1001 for WebSocket, cut otherwise */
void net__conn_flush(net_conn *c);    /* the queued flush is due (sched.c) */
/* Heap bytes held in buffers beyond the connection's fixed state (ws output and reassembly, TLS memory
 * BIOs); 0 for an idle plain WebSocket connection, at most about 2 KiB with TLS. Tests, diagnostics. */
size_t net__conn_buffered(const net_conn *c);
/* Its deadline of kind dl expired; it is off the list already (sched.c). */
void net__conn_deadline(net_conn *c, enum net_deadline dl);

/* accept.c: listeners, the limits checked at accept (draining, max_connections, per address, fds)
 * and the answer to a refused connection */
int net__listener_start(net_worker *w, net_listener *l, int fd, int admin); /* on the loop thread */
void net__listener_close(net_listener *l);
int net__addr_table_init(net_addr_table *t);
void net__addr_table_free(net_addr_table *t);
/* The unit of the per-address cap: an IPv4 address (also when it arrives v4-mapped on an IPv6 socket)
 * or an IPv6 /64, the block one subscriber or host normally has. */
void net__addr_key(const struct sockaddr_storage *ss, uint8_t key[16]);
/* One more connection from key: PARLEY_OK, PARLEY_E_TOO_MANY_CONNECTIONS at max_conns_per_address,
 * PARLEY_E_NOMEM. Any thread. */
int net__addr_acquire(net_server *s, const uint8_t key[16]);
void net__addr_release(net_server *s, const uint8_t key[16]);

/* sched.c: one uv_prepare and one uv_timer per worker serve all its connections */
void net__sched_init(net_worker *w); /* on the loop thread, before the first accept */
/* Runs what is still queued and closes the two handles (the worker has no connection left). */
void net__sched_close(net_worker *w);
/* Flush c once before the loop next blocks, together with whatever else this iteration queues for it.
 * Holds a reference until then. */
void net__sched_flush(net_conn *c);
/* (Re)starts c's deadline of kind dl, replacing any other; NET_DL_NONE just stops it. The delay is the
 * worker's for that kind (handshake timeout, tick step, close grace). */
void net__sched_deadline(net_conn *c, enum net_deadline dl);

/* http_routes.c: builds the answer for a non-WebSocket request; /metrics only on the admin listener */
int net__route_plain(net_server *s, const http_request *r, int admin, dynbuf *out);
/* 1 if a WebSocket upgrade with this Origin header (NULL: none, a native client) may proceed. */
int net__origin_allowed(const net_server *s, const char *origin);

/* server.c: the worker's list of connections and the open-connection count */
void net__worker_conn_add(net_worker *w, net_conn *c);
void net__worker_conn_gone(net_worker *w, net_conn *c);

#endif
