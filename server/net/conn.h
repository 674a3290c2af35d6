/* The contract between parleyd's network layer (server/net) and the services above it.
 *
 * server/net owns sockets, TLS, HTTP and WebSocket framing. It hands each complete, size-checked
 * WebSocket *binary* message to a net_handler and offers the calls below to answer. Services never
 * see sockets and the net layer never parses protobuf.
 *
 * Threading: every connection belongs to exactly one loop thread; all handler callbacks for it run on
 * that thread and every net__conn_* call must be made on that thread. Work done elsewhere (the store
 * thread) hands results back to the loop first (uv_async), then calls net__conn_send.
 *
 * Lifetime: a net_conn is freed after on_close returns and its last reference is dropped. Code that
 * keeps a pointer across an asynchronous step (a pending store job) takes a reference with
 * net__conn_ref and drops it with net__conn_unref; net__conn_is_open tells whether it may still send.
 */
#ifndef PARLEYD_NET_CONN_H
#define PARLEYD_NET_CONN_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct net_conn net_conn;

typedef struct net_handler {
	void *ctx;
	/* Called on each loop thread once before it accepts anything / after its last connection closed,
	 * so a service can set up per-loop state (e.g. a store completion queue with its own uv_async).
	 * `worker` is 0..workers-1. on_worker_start returning non-zero aborts server start-up. */
	int (*on_worker_start)(void *ctx, int worker, uv_loop_t *loop);
	void (*on_worker_stop)(void *ctx, int worker, uv_loop_t *loop);
	/* The WebSocket upgrade completed; the service may send (e.g. the auth challenge). */
	void (*on_open)(void *ctx, net_conn *c);
	/* One complete binary WebSocket message, already reassembled and within the size limit.
	 * `buf` is valid only during the call. Text messages never reach here (refused by net). */
	void (*on_message)(void *ctx, net_conn *c, const uint8_t *buf, size_t len);
	/* The connection is gone (peer closed, error, shutdown). No send is possible any more.
	 * Called once for every connection for which on_open was called. */
	void (*on_close)(void *ctx, net_conn *c);
	/* GET /healthz, on any loop thread: 0 = healthy, 1 = degraded (503). A reason (degraded, or a
	 * warning when healthy) goes into reason as plain text without quotes, "" if none. NULL = healthy. */
	int (*health)(void *ctx, char *reason, size_t cap);
	/* A GET on the public listener under NET_ASYNC_PREFIX (the customer-authentication pages), on the
	 * connection's loop thread: return 1 to answer it later with net__http_answer (exactly once, on
	 * the same loop), 0 to let net answer 404. url: the request target (path and query), valid during
	 * the call only. NULL = every such GET is 404. */
	int (*on_http)(void *ctx, net_conn *c, const char *url);
} net_handler;

#define NET_ASYNC_PREFIX "/v1/auth/"

/* The answer to a GET taken by on_http: status, an optional Location (a 302; refused unless printable
 * ASCII without spaces), an HTML body; no-store and no-referrer (the pages carry one-time links). The
 * connection then closes. If the client went away meanwhile, only the reference is released. */
void net__http_answer(net_conn *c, int status, const char *location, const char *html);

/* Queue one binary WebSocket message. Copies buf. Returns PARLEY_OK, PARLEY_E_CLOSED if the
 * connection is closing, or PARLEY_E_SLOW_CONSUMER if the peer's unsent output exceeds the configured
 * limit (the connection is then closed with 1008 and on_close follows). */
int net__conn_send(net_conn *c, const uint8_t *buf, size_t len);

/* Start a graceful close with a WebSocket close code (RFC 6455 §7.4) and short reason. */
void net__conn_close(net_conn *c, uint16_t code, const char *reason);

/* The service authenticated the connection: the full max_message_bytes applies from now on and the
 * auth deadline is off. Until then messages are limited to max_preauth_message_bytes. */
void net__conn_authenticated(net_conn *c);
/* Backpressure (the dispatcher's request caps): paused, the connection reads nothing more from its
 * socket, so a client that pipelines faster than its requests complete blocks in TCP instead of
 * growing the server; unpaused, reading resumes. Bytes already read are still delivered. */
void net__conn_pause(net_conn *c, int paused);

void net__conn_ref(net_conn *c);
void net__conn_unref(net_conn *c);
int net__conn_is_open(const net_conn *c);

/* One opaque pointer for the handler's per-connection state (the dispatcher keeps its link there). */
void net__conn_set_data(net_conn *c, void *data);
void *net__conn_data(const net_conn *c);

uv_loop_t *net__conn_loop(const net_conn *c);
int net__conn_worker(const net_conn *c); /* index of the loop thread that owns the connection */
uint64_t net__conn_id(const net_conn *c); /* unique for the life of the process */
const char *net__conn_peer(const net_conn *c); /* "ip:port", for logs */

#endif
