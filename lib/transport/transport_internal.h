/* lib/transport's insides, shared by transport.c (lifecycle: URL, resolve, connect, deadlines, close,
 * the one on_close) and pump.c (bytes: socket reads through TLS, the HTTP upgrade and the WebSocket
 * session to the callbacks; the write path back). Not for use outside lib/transport. */
#ifndef PARLEY_TRANSPORT_INTERNAL_H
#define PARLEY_TRANSPORT_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "codec/http.h"
#include "codec/tls_bio.h"
#include "codec/ws.h"
#include "common/dynbuf.h"
#include "transport/transport.h"

#define T_READ_BUF 65536
#define T_TLS_CHUNK 16384
#define T_CLOSE_GRACE_MS 3000

enum t_state { T_RESOLVING, T_CONNECTING, T_HANDSHAKE, T_OPEN, T_CLOSING, T_DONE };

struct transport_conn {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	uv_getaddrinfo_t gai;
	uv_write_t wreq;
	transport_callbacks cb;
	unsigned connect_timeout_ms;
	size_t max_message, max_pending;
	int insecure;
	SSL_CTX *ssl_ctx;
	tls_bio *tls;
	dynbuf plain;           /* TLS: plaintext of one read */
	dynbuf request;         /* the upgrade request, built at connect time, freed once sent */
	http_resp_parser *resp; /* until the upgrade is answered */
	ws_session *ws;
	uint8_t *rbuf;
	size_t rbuf_len;
	int own_rbuf;
	uint8_t *wbuf; /* the one uv_write in flight: what the socket did not take at once */
	size_t wlen;
	enum t_state state;
	int err;
	int pending;   /* handles still open + requests still outstanding */
	int tcp_inited;
	int http_sent;
	int paused;
	int in_read;   /* delivering one read: output waits until it is done */
	int corked;
	void *data;
	char host[256];
	char port[8];
	char err_text[200];
};

/* ---- transport.c ---- */

/* Records why the connection is failing (the first reason is kept) and ends it with err. */
void transport__fail(transport_conn *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records a reason without ending anything (the first one is kept). */
void transport__set_text(transport_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the connection with err (the first reason wins); on_close follows once everything is released. */
void transport__finish(transport_conn *c, int err);
/* One handle or request of the connection is over; the last one calls on_close and frees. */
void transport__release(transport_conn *c);
/* Connect deadline and close grace period. */
void transport__on_timer(uv_timer_t *t);
/* "host:port" as the URL named it, for messages. */
const char *transport__endpoint(const transport_conn *c, char *buf, size_t n);

/* ---- pump.c ---- */

/* TCP is up: start reading, then TLS or the upgrade request. */
void transport__on_connected(uv_connect_t *req, int status);
/* Writes what is pending unless a read is being delivered or the caller corked the output. */
void transport__flush(transport_conn *c);

#endif
