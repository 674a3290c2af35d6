/* parley-gateway's HTTP/1.1 server (http.h). */
#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "http.h"

#define URL_MAX 2048
#define HEADERS_MAX 64
#define HEADER_BYTES_MAX 16384
#define HEADER_VALUE_MAX 1024
#define NAME_MAX_KEPT 32
#define IDLE_MS 30000
#define WS_IDLE_MS 120000
#define OUT_MAX (1u << 20)

struct gw_http {
	uv_loop_t *loop;
	uv_tcp_t listener;
	const gw_config *cfg;
	gw_http_handler handler;
	void *ctx;
	gw_conn *conns; /* doubly linked, for http__stop */
	unsigned n;
	int stopping;
};

struct gw_conn {
	uv_tcp_t tcp;
	uv_timer_t idle;
	gw_http *srv;
	gw_conn *prev, *next;
	http_parser hp;
	gw_buf url, body;
	gw_buf h[GW_H__COUNT];
	int have[GW_H__COUNT];
	char name[NAME_MAX_KEPT + 1];
	size_t name_len;
	int cur;          /* enum gw_hdr of the value being read, -1 skip */
	int in_value;
	size_t nheaders, header_bytes;
	int complete, failed_status;
	int answered, closing, closed_handles;
	gw_conn_owner owner;
	int upgraded;
	size_t out_queued;
};

static const char *const hdr_names[GW_H__COUNT] = {
	"content-type", "x-twilio-signature", "x-hub-signature-256", "x-parley-signature",
	"upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "x-parley-timestamp", "origin",
	"host", "x-forwarded-for",
};

static void conn_free_if_done(gw_conn *c)
{
	if (c->closed_handles < 2)
		return;
	gwbuf__free(&c->url);
	gwbuf__free(&c->body);
	for (int i = 0; i < GW_H__COUNT; i++)
		gwbuf__free(&c->h[i]);
	free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	gw_conn *c = h->data;
	c->closed_handles++;
	conn_free_if_done(c);
}

void http__conn_close(gw_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	gw_http *s = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n--;
	if (c->upgraded && c->owner.on_close)
		c->owner.on_close(c->owner.ctx);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

static void on_idle(uv_timer_t *t)
{
	http__conn_close(t->data);
}

void http__conn_touch(gw_conn *c)
{
	if (!c->closing)
		uv_timer_start(&c->idle, on_idle, c->upgraded ? WS_IDLE_MS : IDLE_MS, 0);
}

typedef struct write_req {
	uv_write_t w;
	gw_conn *c;
	size_t len;
	int close_after;
	char data[];
} write_req;

static void on_written(uv_write_t *w, int status)
{
	write_req *wr = (write_req *)w;
	gw_conn *c = wr->c;
	c->out_queued -= wr->len;
	if (status < 0 || wr->close_after)
		http__conn_close(c);
	free(wr);
}

static int write_raw(gw_conn *c, const void *buf, size_t len, int close_after)
{
	if (c->closing)
		return PARLEY_E_CLOSED;
	if (c->out_queued + len > OUT_MAX)
		return PARLEY_E_SLOW_CONSUMER;
	write_req *wr = malloc(sizeof(*wr) + len);
	if (!wr)
		return PARLEY_E_NOMEM;
	memcpy(wr->data, buf, len);
	wr->c = c;
	wr->len = len;
	wr->close_after = close_after;
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
	if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
		free(wr);
		http__conn_close(c);
		return PARLEY_E_CLOSED;
	}
	c->out_queued += len;
	return PARLEY_OK;
}

int http__conn_write(gw_conn *c, const void *buf, size_t len)
{
	return write_raw(c, buf, len, 0);
}

static const char *reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 401: return "Unauthorized";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

void http__respond(gw_conn *c, int status, const char *content_type, const void *body, size_t len)
{
	http__respond_hdr(c, status, NULL, content_type, body, len);
}

void http__respond_hdr(gw_conn *c, int status, const char *header, const char *content_type, const void *body,
		       size_t len)
{
	gw_buf b;
	if (c->answered)
		return;
	c->answered = 1;
	gwbuf__init(&b, len + 2048);
	int rc = gwbuf__printf(&b, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (rc == PARLEY_OK && header)
		rc = gwbuf__printf(&b, "%s\r\n", header);
	if (rc == PARLEY_OK && content_type)
		rc = gwbuf__printf(&b, "Content-Type: %s\r\n", content_type);
	if (rc == PARLEY_OK)
		rc = gwbuf__printf(&b, "Content-Length: %zu\r\nCache-Control: no-store\r\nX-Content-Type-Options: "
				       "nosniff\r\nConnection: close\r\n\r\n",
				   len);
	if (rc == PARLEY_OK && len)
		rc = gwbuf__append(&b, body, len);
	if (rc == PARLEY_OK)
		write_raw(c, b.data, b.len, 1);
	else
		http__conn_close(c);
	gwbuf__free(&b);
}

void http__conn_upgrade(gw_conn *c, const gw_conn_owner *owner)
{
	c->answered = 1;
	c->upgraded = 1;
	c->owner = *owner;
	http__conn_touch(c);
}

/* ---- parsing ---- */

static int fail(gw_conn *c, int status)
{
	c->failed_status = status;
	return -1;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	gw_conn *c = p->data;
	return gwbuf__append(&c->url, at, n) == PARLEY_OK ? 0 : fail(c, 431);
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	gw_conn *c = p->data;
	if ((c->header_bytes += n) > HEADER_BYTES_MAX)
		return fail(c, 431);
	if (c->in_value || c->nheaders == 0) {
		if (++c->nheaders > HEADERS_MAX)
			return fail(c, 431);
		c->in_value = 0;
		c->name_len = 0;
	}
	if (c->name_len + n <= NAME_MAX_KEPT)
		memcpy(c->name + c->name_len, at, n);
	c->name_len += n;
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	gw_conn *c = p->data;
	if ((c->header_bytes += n) > HEADER_BYTES_MAX)
		return fail(c, 431);
	if (!c->in_value) {
		c->in_value = 1;
		c->cur = -1;
		if (c->name_len <= NAME_MAX_KEPT) {
			c->name[c->name_len] = '\0';
			for (int i = 0; i < GW_H__COUNT; i++)
				if (strcasecmp(c->name, hdr_names[i]) == 0)
					c->cur = i;
		}
		if (c->cur >= 0 && c->have[c->cur]) {
			/* a repeated signature or content type is ambiguous: refuse rather than pick one */
			return fail(c, 400);
		}
		if (c->cur >= 0)
			c->have[c->cur] = 1;
	}
	if (c->cur >= 0 && gwbuf__append(&c->h[c->cur], at, n) != PARLEY_OK)
		return fail(c, 431);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	gw_conn *c = p->data;
	if (p->content_length != ULLONG_MAX && p->content_length > c->srv->cfg->max_body)
		return fail(c, 413);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	gw_conn *c = p->data;
	return gwbuf__append(&c->body, at, n) == PARLEY_OK ? 0 : fail(c, 413);
}

static int on_complete(http_parser *p)
{
	gw_conn *c = p->data;
	c->complete = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

static void dispatch(gw_conn *c, const uint8_t *rest, size_t rest_len)
{
	gw_http_req r;
	memset(&r, 0, sizeof(r));
	r.method = (int)c->hp.method;
	r.upgrade = c->hp.upgrade;
	r.target = c->url.data ? c->url.data : "";
	/* path and query: split a copy at '?' */
	char *q = strchr(c->url.data ? c->url.data : "", '?');
	gw_buf path;
	gwbuf__init(&path, URL_MAX);
	gwbuf__append(&path, r.target, q ? (size_t)(q - r.target) : strlen(r.target));
	r.path = path.data ? path.data : "";
	r.query = q ? q + 1 : "";
	for (int i = 0; i < GW_H__COUNT; i++)
		r.h[i] = c->have[i] ? (c->h[i].data ? c->h[i].data : "") : NULL;
	r.body = c->body.data ? c->body.data : "";
	r.body_len = c->body.len;
	c->srv->handler(c->srv->ctx, c, &r);
	gwbuf__free(&path);
	if (c->upgraded && rest_len && !c->closing && c->owner.on_data)
		c->owner.on_data(c->owner.ctx, rest, rest_len);
	else if (!c->answered)
		http__respond(c, 500, NULL, NULL, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[65536]; /* one loop thread: reads are consumed before the next alloc */
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	gw_conn *c = st->data;
	if (n < 0) {
		http__conn_close(c);
		return;
	}
	if (n == 0 || c->closing)
		return;
	if (c->upgraded) {
		http__conn_touch(c);
		if (c->owner.on_data)
			c->owner.on_data(c->owner.ctx, (const uint8_t *)buf->base, (size_t)n);
		return;
	}
	if (c->answered || c->complete)
		return; /* one request per connection: anything after it is ignored */
	size_t used = http_parser_execute(&c->hp, &settings, buf->base, (size_t)n);
	if (c->complete) {
		dispatch(c, (const uint8_t *)buf->base + used, (size_t)n - used);
		return;
	}
	if (c->failed_status || HTTP_PARSER_ERRNO(&c->hp) != HPE_OK || used != (size_t)n)
		http__respond(c, c->failed_status ? c->failed_status : 400, NULL, NULL, 0);
}

static void on_connection(uv_stream_t *l, int status)
{
	gw_http *s = l->data;
	if (status < 0 || s->stopping)
		return;
	gw_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->srv = s;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->idle);
	c->tcp.data = c->idle.data = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n++;
	gwbuf__init(&c->url, URL_MAX);
	gwbuf__init(&c->body, s->cfg->max_body);
	for (int i = 0; i < GW_H__COUNT; i++)
		gwbuf__init(&c->h[i], HEADER_VALUE_MAX);
	http_parser_init(&c->hp, HTTP_REQUEST);
	c->hp.data = c;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
		http__conn_close(c);
		return;
	}
	if (s->n > s->cfg->max_conns) {
		http__respond(c, 503, NULL, NULL, 0);
		return;
	}
	http__conn_touch(c);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_listener_closed(uv_handle_t *h)
{
	free(h->data);
}

int http__start(uv_loop_t *loop, const gw_config *cfg, gw_http_handler h, void *ctx, gw_http **out)
{
	struct sockaddr_storage addr;
	gw_http *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return PARLEY_E_NOMEM;
	s->loop = loop;
	s->cfg = cfg;
	s->handler = h;
	s->ctx = ctx;
	if (uv_ip4_addr(cfg->bind, (int)cfg->port, (struct sockaddr_in *)&addr) != 0 &&
	    uv_ip6_addr(cfg->bind, (int)cfg->port, (struct sockaddr_in6 *)&addr) != 0) {
		free(s);
		return PARLEY_E_CONFIG;
	}
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
	if (rc != 0) {
		log__line("cannot listen on %s:%u: %s", cfg->bind, cfg->port, uv_strerror(rc));
		uv_close((uv_handle_t *)&s->listener, on_listener_closed);
		return PARLEY_E_IO;
	}
	*out = s;
	return PARLEY_OK;
}

int http__conn_peer(gw_conn *c, char *out, size_t cap)
{
	struct sockaddr_storage a;
	int len = (int)sizeof(a);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&a, &len) != 0)
		return PARLEY_E_IO;
	if (a.ss_family == AF_INET)
		return uv_ip4_name((struct sockaddr_in *)&a, out, cap) == 0 ? PARLEY_OK : PARLEY_E_IO;
	return uv_ip6_name((struct sockaddr_in6 *)&a, out, cap) == 0 ? PARLEY_OK : PARLEY_E_IO;
}

unsigned http__port(const gw_http *s)
{
	struct sockaddr_storage a;
	int len = (int)sizeof(a);
	if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&a, &len) != 0)
		return 0;
	if (a.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&a)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

void http__stop(gw_http *s)
{
	if (!s)
		return;
	s->stopping = 1;
	while (s->conns)
		http__conn_close(s->conns);
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
