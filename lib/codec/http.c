/* Incremental HTTP/1.1 request/response parsing over http-parser, with parley's limits.
 *
 * http-parser does the grammar; this file adds what it does not: limits checked before anything is
 * stored, keeping only the headers parley needs, and stopping exactly at the end of one message so the
 * bytes after an upgrade belong to the WebSocket layer. The handshake helpers live in http_ws.c.
 */
#include "codec/http.h"

#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <parley/error.h>

#include "common/alloc.h"
#include "codec/http_internal.h"

/* Header names we keep; anything else is counted and skipped. */
static const char *const known_names[HDR__COUNT] = {
	[HDR_HOST] = "host",
	[HDR_UPGRADE] = "upgrade",
	[HDR_CONNECTION] = "connection",
	[HDR_WS_KEY] = "sec-websocket-key",
	[HDR_WS_VERSION] = "sec-websocket-version",
	[HDR_WS_PROTOCOL] = "sec-websocket-protocol",
	[HDR_WS_ACCEPT] = "sec-websocket-accept",
	[HDR_ORIGIN] = "origin",
};

static http_msg *msg_of(http_parser *hp)
{
	return (http_msg *)hp->data;
}

/* Ends the header whose value was being accumulated (the value itself is already stored). */
static void commit_header(http_msg *m)
{
	if (!m->in_value)
		return;
	m->in_value = 0;
	if (m->cur_hdr >= 0)
		m->present[m->cur_hdr] = 1;
	m->cur_hdr = -1;
}

static int on_message_begin(http_parser *hp)
{
	(void)hp;
	return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
	http_msg *m = msg_of(hp);
	if (m->url.len + len > m->limits.max_url) {
		m->err = PARLEY_E_HTTP_HEADER_TOO_LARGE;
		return -1;
	}
	if (dynbuf__append(&m->url, at, len) != PARLEY_OK) {
		m->err = PARLEY_E_NOMEM;
		return -1;
	}
	return 0;
}

static int on_status(http_parser *hp, const char *at, size_t len)
{
	(void)hp;
	(void)at;
	(void)len;
	return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
	http_msg *m = msg_of(hp);
	commit_header(m);
	if (!m->name_started) {
		m->name_started = 1;
		if (++m->nheaders > m->limits.max_headers) {
			m->err = PARLEY_E_HTTP_HEADER_TOO_LARGE;
			return -1;
		}
	}
	/* names we keep are short; a longer name is simply not one of them */
	if (m->name_len + len <= HTTP_MAX_KNOWN_NAME) {
		memcpy(m->name_buf + m->name_len, at, len);
		m->name_len += len;
	} else {
		m->name_len = HTTP_MAX_KNOWN_NAME + 1;
	}
	return 0;
}

static int lookup_name(http_msg *m)
{
	if (m->name_len > HTTP_MAX_KNOWN_NAME)
		return -1;
	for (int i = 0; i < HDR__COUNT; i++) {
		size_t n = strlen(known_names[i]);
		if (n == m->name_len && strncasecmp(known_names[i], m->name_buf, n) == 0)
			return i;
	}
	return -1;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
	http_msg *m = msg_of(hp);
	int rc;
	if (!m->in_value) {
		m->in_value = 1;
		m->name_started = 0;
		m->cur_hdr = lookup_name(m);
		m->name_len = 0;
		if (m->cur_hdr >= 0 && m->present[m->cur_hdr]) {
			rc = dynbuf__append(&m->vals[m->cur_hdr], ", ", 2);
			if (rc != PARLEY_OK)
				goto fail;
		}
	}
	if (m->cur_hdr < 0)
		return 0;
	rc = dynbuf__append(&m->vals[m->cur_hdr], at, len);
	if (rc != PARLEY_OK)
		goto fail;
	return 0;
fail:
	/* values are bounded by max_header_bytes, so TOO_LARGE here means the section is too large */
	m->err = rc == PARLEY_E_TOO_LARGE ? PARLEY_E_HTTP_HEADER_TOO_LARGE : rc;
	return -1;
}

static int nul_terminate(dynbuf *b, const char **out)
{
	int rc = dynbuf__append(b, "", 1);
	if (rc != PARLEY_OK)
		return rc;
	b->len--; /* keep len = string length; the NUL stays in the buffer */
	*out = (const char *)b->data;
	return PARLEY_OK;
}

static int on_headers_complete(http_parser *hp)
{
	http_msg *m = msg_of(hp);
	http_request *r = &m->req;
	int rc;
	commit_header(m);
	m->headers_done = 1;
	r->method = hp->method;
	r->http_major = hp->http_major;
	r->http_minor = hp->http_minor;
	m->status = hp->status_code;
	r->keep_alive = http_should_keep_alive(hp);
	r->has_content_length = (hp->flags & F_CONTENTLENGTH) != 0;
	r->content_length = r->has_content_length ? hp->content_length : 0;
	if ((hp->flags & F_CHUNKED) && m->limits.max_body == 0 && m->type == HTTP_REQUEST) {
		m->err = PARLEY_E_HTTP_BODY_TOO_LARGE;
		return -1;
	}
	if (r->has_content_length && r->content_length > m->limits.max_body && m->type == HTTP_REQUEST) {
		m->err = PARLEY_E_HTTP_BODY_TOO_LARGE;
		return -1;
	}
	const char **slots[HDR__COUNT] = {
		[HDR_HOST] = &r->host,
		[HDR_UPGRADE] = &r->upgrade,
		[HDR_CONNECTION] = &r->connection,
		[HDR_WS_KEY] = &r->ws_key,
		[HDR_WS_VERSION] = &r->ws_version,
		[HDR_WS_PROTOCOL] = &r->ws_protocol,
		[HDR_WS_ACCEPT] = &m->ws_accept,
		[HDR_ORIGIN] = &r->origin,
	};
	for (int i = 0; i < HDR__COUNT; i++) {
		*slots[i] = NULL;
		if (!m->present[i])
			continue;
		rc = nul_terminate(&m->vals[i], slots[i]);
		if (rc != PARLEY_OK)
			goto fail;
	}
	if (m->type == HTTP_REQUEST) {
		rc = nul_terminate(&m->url, &r->url);
		if (rc != PARLEY_OK)
			goto fail;
		size_t plen = strcspn(r->url, "?#");
		dynbuf__reset(&m->path);
		rc = dynbuf__append(&m->path, r->url, plen);
		if (rc == PARLEY_OK)
			rc = nul_terminate(&m->path, &r->path);
		if (rc != PARLEY_OK)
			goto fail;
	}
	if (m->on_headers != NULL) {
		rc = m->on_headers(m);
		if (rc != PARLEY_OK)
			goto fail;
	}
	return 0;
fail:
	m->err = rc == PARLEY_E_TOO_LARGE ? PARLEY_E_HTTP_HEADER_TOO_LARGE : rc;
	return -1;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	http_msg *m = msg_of(hp);
	(void)at;
	/* parley keeps no body; it only has to stay within the limit */
	if (len > m->limits.max_body - m->body_bytes) {
		m->err = PARLEY_E_HTTP_BODY_TOO_LARGE;
		return -1;
	}
	m->body_bytes += len;
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	http_msg *m = msg_of(hp);
	m->complete = 1;
	/* stop right here: what follows is the next request or, after an upgrade, WebSocket frames */
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_status = on_status,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void http__msg_init(http_msg *m, int type, const http_limits *limits)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->limits.max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES;
	m->limits.max_headers = HTTP_DEFAULT_MAX_HEADERS;
	m->limits.max_url = HTTP_DEFAULT_MAX_URL;
	m->limits.max_body = HTTP_DEFAULT_MAX_BODY;
	if (limits != NULL) {
		if (limits->max_header_bytes)
			m->limits.max_header_bytes = limits->max_header_bytes;
		if (limits->max_headers)
			m->limits.max_headers = limits->max_headers;
		if (limits->max_url)
			m->limits.max_url = limits->max_url;
		m->limits.max_body = limits->max_body;
	}
	for (int i = 0; i < HDR__COUNT; i++)
		dynbuf__init(&m->vals[i], m->limits.max_header_bytes + 1);
	dynbuf__init(&m->url, m->limits.max_url + 1);
	dynbuf__init(&m->path, m->limits.max_url + 1);
	http__msg_reset(m);
}

void http__msg_reset(http_msg *m)
{
	http_parser_init(&m->hp, (enum http_parser_type)m->type);
	m->hp.data = m;
	for (int i = 0; i < HDR__COUNT; i++) {
		dynbuf__reset(&m->vals[i]);
		m->present[i] = 0;
	}
	dynbuf__reset(&m->url);
	dynbuf__reset(&m->path);
	memset(&m->req, 0, sizeof(m->req));
	m->ws_accept = NULL;
	m->name_len = 0;
	m->name_started = 0;
	m->in_value = 0;
	m->cur_hdr = -1;
	m->nheaders = 0;
	m->header_bytes = 0;
	m->body_bytes = 0;
	m->headers_done = 0;
	m->complete = 0;
	m->status = 0;
	m->err = PARLEY_OK;
}

void http__msg_free(http_msg *m)
{
	for (int i = 0; i < HDR__COUNT; i++)
		dynbuf__free(&m->vals[i]);
	dynbuf__free(&m->url);
	dynbuf__free(&m->path);
}

static int parser_error(http_msg *m)
{
	if (m->err == PARLEY_OK)
		m->err = m->type == HTTP_REQUEST ? PARLEY_E_HTTP_BAD_REQUEST : PARLEY_E_HTTP_BAD_RESPONSE;
	return m->err;
}

int http__msg_feed(http_msg *m, const uint8_t *buf, size_t len, size_t *consumed, int *complete)
{
	size_t done = 0;
	*consumed = 0;
	*complete = 0;
	if (m->err != PARLEY_OK)
		return m->err;
	if (m->complete)
		return PARLEY_E_STATE;
	while (done < len) {
		size_t chunk = len - done;
		/* While in the header, never hand the parser more than the bytes still allowed, so the limit
		 * is exact whatever the split: one byte more than max and we know the section is too big. */
		if (!m->headers_done) {
			size_t room = m->limits.max_header_bytes - m->header_bytes;
			if (room == 0) {
				m->err = PARLEY_E_HTTP_HEADER_TOO_LARGE;
				return m->err;
			}
			if (chunk > room)
				chunk = room;
		}
		int was_in_header = !m->headers_done;
		size_t n = http_parser_execute(&m->hp, &settings, (const char *)buf + done, chunk);
		enum http_errno e = HTTP_PARSER_ERRNO(&m->hp);
		if (e != HPE_OK && e != HPE_PAUSED)
			return parser_error(m);
		if (was_in_header)
			m->header_bytes += m->headers_done ? n : chunk;
		done += n;
		if (m->complete) {
			*consumed = done;
			*complete = 1;
			return PARLEY_OK;
		}
		if (m->hp.upgrade) {
			/* http-parser stops after the header of an upgrade response without completing */
			m->complete = 1;
			*consumed = done;
			*complete = 1;
			return PARLEY_OK;
		}
		if (n < chunk)
			return parser_error(m);
	}
	*consumed = done;
	return PARLEY_OK;
}

/* ---- request parser ---- */

struct http_req_parser {
	http_msg m;
};

int http__req_parser_new(http_req_parser **out, const http_limits *limits)
{
	http_req_parser *p = parley__calloc(1, sizeof(*p));
	if (p == NULL)
		return PARLEY_E_NOMEM;
	http__msg_init(&p->m, HTTP_REQUEST, limits);
	*out = p;
	return PARLEY_OK;
}

void http__req_parser_free(http_req_parser *p)
{
	if (p == NULL)
		return;
	http__msg_free(&p->m);
	parley__free(p);
}

void http__req_parser_reset(http_req_parser *p)
{
	http__msg_reset(&p->m);
}

int http__req_parser_feed(http_req_parser *p, const uint8_t *buf, size_t len, size_t *consumed, int *complete)
{
	return http__msg_feed(&p->m, buf, len, consumed, complete);
}

const http_request *http__req_parser_request(const http_req_parser *p)
{
	return &p->m.req;
}

int http__status_for_error(int err)
{
	switch (err) {
	case PARLEY_E_HTTP_HEADER_TOO_LARGE:
		return 431;
	case PARLEY_E_HTTP_BODY_TOO_LARGE:
		return 413;
	case PARLEY_E_HTTP_BAD_REQUEST:
	case PARLEY_E_HTTP_BAD_UPGRADE:
		return 400;
	default:
		return 500;
	}
}
