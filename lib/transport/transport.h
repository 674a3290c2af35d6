/* libparley's WebSocket client transport: one connection to parleyd on a caller's libuv loop.
 *
 * ws://host:port/path or wss://host:port/path (default ports 80/443, default path "/v1/websocket").
 * Resolves with uv_getaddrinfo, connects with uv_tcp_connect, runs TLS (OpenSSL, memory BIOs) for wss,
 * performs the opening handshake with lib/net/http.h and frames messages with lib/net/ws.h.
 *
 * Threading: every call, and every callback, happens on the loop thread the connection was made on.
 * The transport never prints; errors arrive as parley error codes.
 *
 * Lifetime: transport__connect either fails (returns an error, calls nothing, allocates nothing that
 * survives) or succeeds, after which on_close is called exactly once — whether or not on_open was
 * called — and the transport_conn is freed right after on_close returns. Until then the pointer stays
 * valid, even after transport__close. Callbacks may call transport__send / transport__close.
 */
#ifndef PARLEY_TRANSPORT_H
#define PARLEY_TRANSPORT_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct transport_conn transport_conn;

typedef struct transport_callbacks {
	void *ctx;
	/* Handshake done (TCP, TLS, HTTP 101); sending is possible from now on. */
	void (*on_open)(void *ctx, transport_conn *c);
	/* One complete binary message; buf valid only during the call. */
	void (*on_message)(void *ctx, transport_conn *c, const uint8_t *buf, size_t len);
	/* The connection is over. err: PARLEY_OK after a clean close handshake (either side started it),
	 * PARLEY_E_CONNECT (resolve/connect failed), PARLEY_E_TIMEOUT (connect + handshake took longer than
	 * connect_timeout_ms), PARLEY_E_TLS (TLS handshake or certificate/hostname verification failed),
	 * PARLEY_E_HTTP_BAD_RESPONSE (server refused the upgrade), PARLEY_E_WS_* (server violated the
	 * protocol), PARLEY_E_CLOSED (connection dropped without a close handshake), PARLEY_E_IO.
	 * ws_code: the close code the server sent (0 if none). */
	void (*on_close)(void *ctx, transport_conn *c, int err, uint16_t ws_code);
} transport_callbacks;

typedef struct transport_options {
	const char *ca_file;        /* PEM CA bundle for wss; NULL = system default store */
	int insecure_skip_verify;   /* tests only: accept any certificate and hostname */
	const char *origin;         /* Origin header, may be NULL */
	unsigned connect_timeout_ms;/* resolve + connect + TLS + upgrade; 0 = 10000 */
	size_t max_message;         /* largest message accepted from the server; 0 = 1 MiB */
	size_t max_pending_output;  /* transport__send refuses when this many bytes are unsent; 0 = 4 MiB */
} transport_options;

/* Start connecting. opt may be NULL (defaults); it and cb are copied, url is parsed right away.
 * Returns PARLEY_OK (on_close will follow eventually), PARLEY_E_INVAL (bad URL/arguments),
 * PARLEY_E_TLS (TLS context/CA file could not be set up), PARLEY_E_NOMEM, PARLEY_E_CONNECT. */
int transport__connect(uv_loop_t *loop, const char *url, const transport_options *opt,
		       const transport_callbacks *cb, transport_conn **out);

/* Send one binary message (copied). PARLEY_OK, PARLEY_E_STATE before on_open, PARLEY_E_CLOSED once
 * closing, PARLEY_E_SLOW_CONSUMER if the unsent output already exceeds max_pending_output (nothing is
 * queued; the connection stays up — retry after the output drains), PARLEY_E_NOMEM. */
int transport__send(transport_conn *c, const uint8_t *buf, size_t len);

/* Bytes queued but not yet written to the socket (for flow control in callers and benchmarks). */
size_t transport__pending_output(const transport_conn *c);

/* Close gracefully with 1000 (the server answers, then the socket closes; on_close(PARLEY_OK) follows),
 * or abort a connection still being set up. Safe to call more than once. */
void transport__close(transport_conn *c);

/* Stop / resume reading from the socket (back-pressure for callers; tests use it to play a slow
 * consumer). Reading is on by default. */
void transport__pause_reading(transport_conn *c, int paused);

void transport__set_data(transport_conn *c, void *data);
void *transport__data(const transport_conn *c);

#endif
