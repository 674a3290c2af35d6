/* The project's one WebSocket client "pump": a connection to parleyd (or any RFC 6455 server) on a
 * caller's libuv loop. libparley (lib/client) and parley-bench (tools/bench: 10,000 idle connections,
 * ~100k messages/s from one loop thread) both run on it, so it is lean on purpose.
 *
 * ws://host:port/path or wss://host:port/path (default ports 80/443, default path "/v1/websocket").
 * Resolves with uv_getaddrinfo (unless the caller hands over the address), connects with
 * uv_tcp_connect, runs TLS (OpenSSL, memory BIOs) for wss, performs the opening handshake with
 * codec/http.h and frames messages with codec/ws.h.
 *
 * Output: a send is framed into the session's bounded buffer and written with uv_try_write; only what
 * the socket does not take is copied for one uv_write at a time (the rest waits in the session). While
 * the transport delivers the messages of one socket read, sends are only queued and go out together
 * after the read (one write(2) for all the answers to one read); transport__cork does the same for a
 * burst of sends outside callbacks.
 *
 * Threading: every call, and every callback, happens on the loop thread the connection was made on.
 * The transport never prints; errors arrive as parley error codes plus a one-line text
 * (transport__error_text) that says what exactly happened.
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
	/* Optional: the messages of one socket read have all been delivered; what the callback sends still
	 * leaves in the same write as the answers sent from on_message (callers batch acks here). */
	void (*on_read_done)(void *ctx, transport_conn *c);
	/* The connection is over. err:
	 *   PARLEY_OK                      clean close handshake (either side started it)
	 *   PARLEY_E_CONNECT               the name did not resolve or the TCP connect failed
	 *   PARLEY_E_TIMEOUT               connect + TLS + upgrade took longer than connect_timeout_ms
	 *   PARLEY_E_TLS                   TLS handshake or certificate/hostname verification failed
	 *   PARLEY_E_HTTP_UPGRADE_REFUSED  the server answered the upgrade with another status (404...)
	 *   PARLEY_E_HTTP_BAD_RESPONSE     the answer was not HTTP, or a 101 that is not a valid upgrade
	 *   PARLEY_E_WS_*                  the server violated the WebSocket protocol
	 *   PARLEY_E_CLOSED                the connection ended without a close frame (server killed, reset)
	 *                                  or was aborted by transport__close before it opened
	 *   PARLEY_E_IO, PARLEY_E_NOMEM
	 * transport__error_text(c) says which (reason included) during this call.
	 * ws_code: the close code the server sent (0 if it sent none). */
	void (*on_close)(void *ctx, transport_conn *c, int err, uint16_t ws_code);
} transport_callbacks;

typedef struct transport_options {
	const char *ca_file;        /* PEM CA bundle for wss; NULL = system default store */
	int insecure_skip_verify;   /* tests only: accept any certificate and hostname */
	const char *origin;         /* Origin header, may be NULL */
	unsigned connect_timeout_ms;/* resolve + connect + TLS + upgrade; 0 = 10000 */
	size_t max_message;         /* largest message accepted from the server; 0 = 1 MiB */
	size_t max_pending_output;  /* transport__send refuses when this many bytes are unsent; 0 = 4 MiB */
	/* Connect to this address (copied) instead of resolving the URL's host, which still names the
	 * Host header and the TLS server name. For callers that open thousands of connections to one
	 * address (parley-bench): no resolver round trip per connection. NULL = resolve. */
	const struct sockaddr *addr;
	/* Where socket reads land, shared by every connection given the same buffer: the loop reads one
	 * stream at a time and the transport consumes every byte before the read callback returns, so
	 * connections of ONE loop may share it. NULL = a buffer of its own (64 KiB) per connection. */
	uint8_t *read_buf;
	size_t read_buf_len;
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

/* corked = 1: sends only queue; corked = 0: write everything queued now. For a burst of sends made
 * outside the transport's callbacks (inside them, output is already held until the read is done). */
void transport__cork(transport_conn *c, int corked);

/* Bytes queued but not yet written to the socket (for flow control in callers and benchmarks). */
size_t transport__pending_output(const transport_conn *c);

/* Close gracefully with 1000 (the server answers, then the socket closes; on_close(PARLEY_OK) follows),
 * or abort a connection still being set up. Safe to call more than once. */
void transport__close(transport_conn *c);

/* Stop / resume reading from the socket (back-pressure for callers; tests use it to play a slow
 * consumer). Reading is on by default. */
void transport__pause_reading(transport_conn *c, int paused);

/* What ended (or is ending) the connection, in one line without a trailing period, e.g.
 * "cannot connect to 127.0.0.1:8080: connection refused",
 * "cannot resolve nonexistent.invalid: host not found",
 * "server answered HTTP 404 Not Found to the WebSocket upgrade",
 * "connection lost without a WebSocket close frame: connection reset by peer",
 * "server closed the WebSocket with code 1008: device removed".
 * "" while nothing went wrong. Meant for on_close (the connection is freed right after it). */
const char *transport__error_text(const transport_conn *c);

void transport__set_data(transport_conn *c, void *data);
void *transport__data(const transport_conn *c);

#endif
