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

typedef struct net_worker net_worker;

enum conn_state { CONN_HTTP, CONN_WS, CONN_CLOSING, CONN_CLOSED };

/* The deadlines a connection can wait for. Each kind has one delay for every connection of a worker, so
 * each kind's list, appended to as time goes on, is already sorted by deadline (see sched.c). */
enum net_deadline {
	NET_DL_NONE,
	NET_DL_HANDSHAKE, /* accept -> TLS + HTTP header complete (slowloris) */
	NET_DL_TICK,      /* WebSocket idle/ping check, a few times per period */
	NET_DL_CLOSING,   /* closing: time for the last bytes and the peer's close frame */
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
	char peer[56];           /* "ip:port" for logs: INET6_ADDRSTRLEN + ':' + 5 digits fits */
};
/* An idle WebSocket connection may cost 4 KiB of RSS in all (it is ~1.1 KiB): grow this knowingly */
_Static_assert(sizeof(struct net_conn) <= sizeof(uv_tcp_t) + 256, "net_conn outgrew the idle-connection budget");

struct net_worker {
	net_server *srv;
	int idx;
	uv_loop_t loop;
	uv_tcp_t listener;
	int listener_open;
	uv_os_sock_t fd;
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
	char *bind_address, *tls_cert, *tls_key, *ws_path;
	net_handler h;
	net_worker *workers;
	uint16_t port;
	_Atomic unsigned nconns;
	_Atomic uint64_t next_id;
	uv_mutex_t tls_mu;
	SSL_CTX *tls_ctx; /* NULL without TLS; replaced by reload under tls_mu */
	int started;
	unsigned drain_timeout_ms;
};

/* tls.c */
int net__tls_ctx_load(const char *cert, const char *key, SSL_CTX **out);
/* Returns a new reference to the current context (caller SSL_CTX_free's it) or NULL without TLS. */
SSL_CTX *net__tls_ctx_get(net_server *s);

/* conn.c */
void net__conn_accept(net_worker *w);
void net__conn_shutdown(net_conn *c, int hard); /* drain: 1001 for WebSocket, cut otherwise */
void net__conn_flush(net_conn *c);    /* the queued flush is due (sched.c) */
/* Heap bytes held in buffers beyond the connection's fixed state (ws output and reassembly, TLS memory
 * BIOs); 0 for an idle plain WebSocket connection, at most about 2 KiB with TLS. Tests, diagnostics. */
size_t net__conn_buffered(const net_conn *c);
void net__conn_deadline(net_conn *c); /* its deadline expired; it is off the list already (sched.c) */

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

/* http_routes.c: builds the answer for a non-WebSocket request */
int net__route_plain(net_server *s, const http_request *r, dynbuf *out);

/* server.c: the worker's list of connections and the open-connection count */
void net__worker_conn_add(net_worker *w, net_conn *c);
void net__worker_conn_gone(net_worker *w, net_conn *c);

#endif
