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

struct net_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_prepare_t flush_prep; /* runs the deferred flush once per loop iteration, before the loop blocks */
	net_worker *w;
	net_conn *prev, *next; /* worker's list */
	uint64_t id;
	char peer[64];
	int refs;
	int handles_open; /* tcp + timer + flush_prep still to be closed */
	enum conn_state state;
	tls_bio *tls;
	http_req_parser *http;
	ws_session *ws;
	void *data;
	int opened;      /* on_open was called: on_close is owed */
	int hard_closing;
	int close_after_flush;
	int tls_shutdown_sent;
	size_t write_pending; /* bytes handed to uv_write and not yet completed */
	uint64_t last_rx_ms;
	int in_dispatch; /* inside ws__feed: sends only queue, the caller flushes */
	int flush_scheduled; /* flush_prep is started */
};

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

/* http_routes.c: builds the answer for a non-WebSocket request */
int net__route_plain(net_server *s, const http_request *r, dynbuf *out);

/* server.c: the worker's list of connections and the open-connection count */
void net__worker_conn_add(net_worker *w, net_conn *c);
void net__worker_conn_gone(net_worker *w, net_conn *c);

#endif
