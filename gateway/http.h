/* parley-gateway's HTTP/1.1 server: libuv + http-parser, one request per connection (answered with
 * Connection: close: webhook senders open a connection per call anyway), every size a client controls
 * bounded (URL, header count and bytes, kept header values, body = max_body: 413), an idle deadline per
 * connection (slow clients cannot hold a slot), at most max_conns connections (503 beyond).
 * A handler may take the connection over for WebSocket (http__conn_upgrade): later bytes go to its
 * callback, and it writes with http__conn_write. */
#ifndef PARLEY_GATEWAY_HTTP_H
#define PARLEY_GATEWAY_HTTP_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "gw.h"

typedef struct gw_http gw_http;
typedef struct gw_conn gw_conn;

enum gw_hdr {
	GW_H_CONTENT_TYPE,
	GW_H_TWILIO_SIG,
	GW_H_HUB_SIG,
	GW_H_PARLEY_SIG,
	GW_H_UPGRADE,
	GW_H_CONNECTION,
	GW_H_WS_KEY,
	GW_H_WS_VERSION,
	GW_H_PARLEY_TS,
	GW_H_ORIGIN,
	GW_H_HOST,
	GW_H_FORWARDED_FOR,
	GW_H__COUNT
};

typedef struct gw_http_req {
	int method;        /* enum http_method */
	const char *target; /* as sent: path and query */
	const char *path;
	const char *query;  /* after '?', "" when none */
	const char *h[GW_H__COUNT]; /* NULL when absent */
	const char *body;
	size_t body_len;
	int upgrade;
} gw_http_req;

typedef void (*gw_http_handler)(void *ctx, gw_conn *c, const gw_http_req *r);

int http__start(uv_loop_t *loop, const gw_config *cfg, gw_http_handler h, void *ctx, gw_http **out);
/* The port it listens on (the one the system chose when the configured port is 0). */
unsigned http__port(const gw_http *s);
/* Stops listening and closes every connection (their handles close on the next loop turns). */
void http__stop(gw_http *s);

/* Answer the request and close. body may be NULL with len 0. */
void http__respond(gw_conn *c, int status, const char *content_type, const void *body, size_t len);
/* The same with one more header line (without its CRLF), e.g. the WWW-Authenticate a 401 must carry. */
void http__respond_hdr(gw_conn *c, int status, const char *header, const char *content_type, const void *body,
		       size_t len);

/* WebSocket take-over: on_data gets every later byte (the rest of the first read included), on_close
 * once when the connection is gone (then the owner must not touch c again). */
typedef struct gw_conn_owner {
	void *ctx;
	void (*on_data)(void *ctx, const uint8_t *buf, size_t len);
	void (*on_close)(void *ctx);
} gw_conn_owner;
void http__conn_upgrade(gw_conn *c, const gw_conn_owner *owner);
int http__conn_write(gw_conn *c, const void *buf, size_t len); /* PARLEY_E_SLOW_CONSUMER past 1 MiB queued */
void http__conn_close(gw_conn *c);
/* The peer's address as text (out: GW_IP_MAX + 1 bytes). PARLEY_E_IO when unknown. */
int http__conn_peer(gw_conn *c, char *out, size_t cap);
/* Keeps an upgraded connection alive (its idle deadline restarts). */
void http__conn_touch(gw_conn *c);

#endif
