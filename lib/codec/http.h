/* Sans-I/O HTTP/1.1 for parley: the request parser the server runs until a header is complete, the
 * WebSocket opening handshake of RFC 6455 §4 (both sides), and builders for the few plain responses
 * parleyd serves. Built on http-parser 2.9 (Debian libhttp-parser-dev).
 *
 * Nothing here touches a socket: callers feed bytes in and get bytes (dynbufs) out.
 *
 * Limits: every size a peer controls (header section bytes, header count, URL length, each kept header
 * value, body) is checked against http_limits *before* anything is stored, so a request can never make
 * the parser allocate more than about max_header_bytes.
 *
 * Only the headers parley needs are kept (Host, Upgrade, Connection, Sec-WebSocket-Key,
 * Sec-WebSocket-Version, Sec-WebSocket-Protocol, Origin, Content-Length); others are counted and
 * skipped. A header that repeats is joined with ", " (RFC 9110 §5.3), which is what Connection and
 * Sec-WebSocket-Protocol token lists need.
 */
#ifndef PARLEY_NET_HTTP_H
#define PARLEY_NET_HTTP_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"

#define HTTP_DEFAULT_MAX_HEADER_BYTES 8192u /* request line + all headers */
#define HTTP_DEFAULT_MAX_HEADERS 64u
#define HTTP_DEFAULT_MAX_URL 2048u
#define HTTP_DEFAULT_MAX_BODY 0u /* parley only takes bodyless requests */

/* Base64 of 16 random bytes is 24 characters; the accept value (base64 of a SHA-1) is 28. */
#define HTTP_WS_KEY_LEN 24
#define HTTP_WS_ACCEPT_LEN 28

typedef struct http_limits {
	size_t max_header_bytes; /* 0 = HTTP_DEFAULT_MAX_HEADER_BYTES */
	size_t max_headers;      /* 0 = HTTP_DEFAULT_MAX_HEADERS */
	size_t max_url;          /* 0 = HTTP_DEFAULT_MAX_URL */
	size_t max_body;         /* a declared or sent body longer than this is refused (0 = no body) */
} http_limits;

/* A parsed request. Strings are NUL-terminated, owned by the parser, valid until it is reset or
 * freed; NULL when the header was absent. */
typedef struct http_request {
	int method; /* enum http_method of http_parser.h (HTTP_GET = 1) */
	unsigned short http_major, http_minor;
	const char *url;  /* request target as sent, e.g. "/v1/websocket?x=1" */
	const char *path; /* url without query or fragment */
	const char *host;
	const char *upgrade;
	const char *connection;
	const char *ws_key;
	const char *ws_version;
	const char *ws_protocol;
	const char *origin;
	int has_content_length;
	uint64_t content_length;
	int keep_alive; /* http_should_keep_alive() at the end of the header */
} http_request;

/* ---- server side: request parser ---- */

typedef struct http_req_parser http_req_parser;

/* limits may be NULL (defaults). Returns PARLEY_OK or PARLEY_E_NOMEM. */
int http__req_parser_new(http_req_parser **out, const http_limits *limits);
void http__req_parser_free(http_req_parser *p);
/* Forget the previous request (keep-alive); limits are kept. */
void http__req_parser_reset(http_req_parser *p);

/* Feed the next bytes, split anywhere (one byte at a time works).
 *   PARLEY_OK, *complete == 0: all `len` bytes consumed, need more.
 *   PARLEY_OK, *complete == 1: the request (header, and body if allowed) is complete; *consumed says how
 *     many bytes of buf belong to it — bytes after that (e.g. the first WebSocket frames sent right after
 *     the upgrade) belong to the next layer. Feeding again before reset returns PARLEY_E_STATE.
 *   PARLEY_E_HTTP_HEADER_TOO_LARGE (answer 431: header section over max_header_bytes, more than
 *   max_headers fields, or a URL over max_url), PARLEY_E_HTTP_BODY_TOO_LARGE (413: declared, chunked or
 *   sent body over max_body), PARLEY_E_HTTP_BAD_REQUEST (400: malformed), PARLEY_E_NOMEM.
 *   After an error the parser stays failed and returns the same error. */
int http__req_parser_feed(http_req_parser *p, const uint8_t *buf, size_t len, size_t *consumed, int *complete);

/* The request; its fields are meaningful once feed reported complete. */
const http_request *http__req_parser_request(const http_req_parser *p);

/* HTTP status to answer a feed error with (431, 413, 400, 500 for NOMEM). */
int http__status_for_error(int err);

/* ---- WebSocket handshake (RFC 6455 §4) ---- */

/* Case-insensitive search of a comma-separated token list ("keep-alive, Upgrade"). 1 if found. */
int http__token_list_has(const char *list, const char *token);

/* Validates a client's opening handshake: GET, HTTP/1.1 or later, Upgrade: websocket, Connection
 * containing the token upgrade, Sec-WebSocket-Key = base64 of exactly 16 bytes, Sec-WebSocket-Version 13.
 * Returns PARLEY_OK, or PARLEY_E_HTTP_BAD_UPGRADE with *status set to the HTTP status to answer:
 * 426 when only the version is wrong (send it with http__build_upgrade_refusal so the response carries
 * "Sec-WebSocket-Version: 13"), 400 otherwise. status may be NULL. */
int http__ws_validate_upgrade(const http_request *r, int *status);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key || 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)).
 * out receives HTTP_WS_ACCEPT_LEN chars + NUL. Returns PARLEY_OK or PARLEY_E_CRYPTO. */
int http__ws_accept(const char *key, char out[HTTP_WS_ACCEPT_LEN + 1]);

/* Appends "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection and Sec-WebSocket-Accept for
 * key; protocol (may be NULL) is echoed as Sec-WebSocket-Protocol. */
int http__ws_build_101(dynbuf *out, const char *key, const char *protocol);

/* Appends the response to a refused upgrade (status 400 or 426; 426 adds Sec-WebSocket-Version: 13).
 * Always "Connection: close". */
int http__build_upgrade_refusal(dynbuf *out, int status);

/* Appends a complete plain response: status line (reason from http__status_reason), Content-Type (may be
 * NULL when len is 0), Content-Length, and "Connection: close" when close is set (else keep-alive). */
int http__build_response(dynbuf *out, int status, const char *content_type, const void *body, size_t len,
			 int close);

const char *http__status_reason(int status);

/* ---- client side ---- */

/* Appends an upgrade request for `path` on `host` (the Host header value, e.g. "example.org:8443") with
 * a fresh random key (libsodium randombytes); key_out receives the key (HTTP_WS_KEY_LEN chars + NUL),
 * needed to check the response. origin and protocol may be NULL. */
int http__ws_build_request(dynbuf *out, const char *host, const char *path, const char *origin,
			   const char *protocol, char key_out[HTTP_WS_KEY_LEN + 1]);

typedef struct http_resp_parser http_resp_parser;

/* Parser for the server's answer to our upgrade request `key`. limits may be NULL. */
int http__resp_parser_new(http_resp_parser **out, const http_limits *limits, const char *key);
void http__resp_parser_free(http_resp_parser *p);

/* Same contract as http__req_parser_feed. On completion it validates: status 101, Upgrade: websocket,
 * Connection has upgrade, Sec-WebSocket-Accept equal to the value computed from the key. Anything else
 * (including a well-formed non-101 answer) is PARLEY_E_HTTP_BAD_RESPONSE; http__resp_parser_status
 * still tells the status code received (0 if none). Bytes after *consumed are WebSocket frames. */
int http__resp_parser_feed(http_resp_parser *p, const uint8_t *buf, size_t len, size_t *consumed,
			   int *complete);
int http__resp_parser_status(const http_resp_parser *p);

#endif
