/* The WebSocket opening handshake (RFC 6455 §4) on both sides, and the plain responses parleyd sends. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <parley/error.h>
#include <sodium.h>

#include "common/alloc.h"
#include "codec/http.h"
#include "codec/http_internal.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int http__token_list_has(const char *list, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = list;
	if (list == NULL)
		return 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p != '\0' && *p != ',')
			p++;
		const char *end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
			return 1;
	}
	return 0;
}

/* 1 if key is the base64 (with padding) of exactly 16 bytes, as §4.1 requires. */
static int ws_key_valid(const char *key)
{
	unsigned char raw[18];
	size_t rawlen = 0;
	if (key == NULL || strlen(key) != HTTP_WS_KEY_LEN)
		return 0;
	if (sodium_base642bin(raw, sizeof(raw), key, HTTP_WS_KEY_LEN, NULL, &rawlen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return 0;
	return rawlen == 16;
}

int http__ws_validate_upgrade(const http_request *r, int *status)
{
	int st = 400;
	int rc = PARLEY_E_HTTP_BAD_UPGRADE;
	if (r->method != HTTP_GET)
		goto out;
	if (r->http_major < 1 || (r->http_major == 1 && r->http_minor < 1))
		goto out;
	if (r->host == NULL)
		goto out;
	if (r->upgrade == NULL || !http__token_list_has(r->upgrade, "websocket"))
		goto out;
	if (!http__token_list_has(r->connection, "upgrade"))
		goto out;
	if (!ws_key_valid(r->ws_key))
		goto out;
	if (r->ws_version == NULL || strcmp(r->ws_version, "13") != 0) {
		st = 426;
		goto out;
	}
	st = 101;
	rc = PARLEY_OK;
out:
	if (status != NULL)
		*status = st;
	return rc;
}

int http__ws_accept(const char *key, char out[HTTP_WS_ACCEPT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[128];
	size_t klen = strlen(key);
	if (klen > sizeof(buf) - sizeof(WS_GUID))
		return PARLEY_E_INVAL;
	memcpy(buf, key, klen);
	memcpy(buf + klen, WS_GUID, sizeof(WS_GUID) - 1);
	if (EVP_Digest(buf, klen + sizeof(WS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return PARLEY_E_CRYPTO;
	sodium_bin2base64(out, HTTP_WS_ACCEPT_LEN + 1, md, mdlen, sodium_base64_VARIANT_ORIGINAL);
	return PARLEY_OK;
}

/* A header value we echo must not let a peer inject CR/LF into our response. */
static int safe_value(const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\r' || *v == '\n')
			return 0;
	}
	return 1;
}

int http__ws_build_101(dynbuf *out, const char *key, const char *protocol)
{
	char accept[HTTP_WS_ACCEPT_LEN + 1];
	int rc = http__ws_accept(key, accept);
	if (rc != PARLEY_OK)
		return rc;
	rc = dynbuf__printf(out,
			    "HTTP/1.1 101 Switching Protocols\r\n"
			    "Upgrade: websocket\r\n"
			    "Connection: Upgrade\r\n"
			    "Sec-WebSocket-Accept: %s\r\n",
			    accept);
	if (rc == PARLEY_OK && protocol != NULL) {
		if (!safe_value(protocol))
			return PARLEY_E_INVAL;
		rc = dynbuf__printf(out, "Sec-WebSocket-Protocol: %s\r\n", protocol);
	}
	if (rc == PARLEY_OK)
		rc = dynbuf__append_str(out, "\r\n");
	return rc;
}

const char *http__status_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

int http__build_response(dynbuf *out, int status, const char *content_type, const void *body, size_t len,
			 int close)
{
	int rc = dynbuf__printf(out, "HTTP/1.1 %d %s\r\n", status, http__status_reason(status));
	if (rc == PARLEY_OK && content_type != NULL)
		rc = dynbuf__printf(out, "Content-Type: %s\r\n", content_type);
	if (rc == PARLEY_OK)
		rc = dynbuf__printf(out, "Content-Length: %zu\r\nConnection: %s\r\n\r\n", len,
				    close ? "close" : "keep-alive");
	if (rc == PARLEY_OK && len > 0)
		rc = dynbuf__append(out, body, len);
	return rc;
}

int http__build_upgrade_refusal(dynbuf *out, int status)
{
	int rc = dynbuf__printf(out, "HTTP/1.1 %d %s\r\n", status, http__status_reason(status));
	if (rc == PARLEY_OK && status == 426)
		rc = dynbuf__append_str(out, "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n");
	if (rc == PARLEY_OK)
		rc = dynbuf__append_str(out, "Content-Length: 0\r\nConnection: close\r\n\r\n");
	return rc;
}

/* ---- client side ---- */

int http__ws_build_request(dynbuf *out, const char *host, const char *path, const char *origin,
			   const char *protocol, char key_out[HTTP_WS_KEY_LEN + 1])
{
	unsigned char raw[16];
	int rc;
	if (!safe_value(host) || !safe_value(path) || (origin != NULL && !safe_value(origin)) ||
	    (protocol != NULL && !safe_value(protocol)))
		return PARLEY_E_INVAL;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(key_out, HTTP_WS_KEY_LEN + 1, raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	rc = dynbuf__printf(out,
			    "GET %s HTTP/1.1\r\n"
			    "Host: %s\r\n"
			    "Upgrade: websocket\r\n"
			    "Connection: Upgrade\r\n"
			    "Sec-WebSocket-Key: %s\r\n"
			    "Sec-WebSocket-Version: 13\r\n",
			    path, host, key_out);
	if (rc == PARLEY_OK && origin != NULL)
		rc = dynbuf__printf(out, "Origin: %s\r\n", origin);
	if (rc == PARLEY_OK && protocol != NULL)
		rc = dynbuf__printf(out, "Sec-WebSocket-Protocol: %s\r\n", protocol);
	if (rc == PARLEY_OK)
		rc = dynbuf__append_str(out, "\r\n");
	return rc;
}

struct http_resp_parser {
	http_msg m;
	char expect[HTTP_WS_ACCEPT_LEN + 1];
};

/* Runs at the end of the response header: anything but a correct 101 ends the handshake. */
static int check_101(http_msg *m)
{
	http_resp_parser *p = m->user;
	if (m->hp.status_code != 101)
		return PARLEY_E_HTTP_BAD_RESPONSE;
	if (!http__token_list_has(m->req.upgrade, "websocket"))
		return PARLEY_E_HTTP_BAD_RESPONSE;
	if (!http__token_list_has(m->req.connection, "upgrade"))
		return PARLEY_E_HTTP_BAD_RESPONSE;
	if (m->ws_accept == NULL || strcmp(m->ws_accept, p->expect) != 0)
		return PARLEY_E_HTTP_BAD_RESPONSE;
	return PARLEY_OK;
}

int http__resp_parser_new(http_resp_parser **out, const http_limits *limits, const char *key)
{
	int rc;
	http_resp_parser *p = parley__calloc(1, sizeof(*p));
	if (p == NULL)
		return PARLEY_E_NOMEM;
	rc = http__ws_accept(key, p->expect);
	if (rc != PARLEY_OK) {
		parley__free(p);
		return rc;
	}
	http__msg_init(&p->m, HTTP_RESPONSE, limits);
	p->m.on_headers = check_101;
	p->m.user = p;
	*out = p;
	return PARLEY_OK;
}

void http__resp_parser_free(http_resp_parser *p)
{
	if (p == NULL)
		return;
	http__msg_free(&p->m);
	parley__free(p);
}

int http__resp_parser_feed(http_resp_parser *p, const uint8_t *buf, size_t len, size_t *consumed,
			   int *complete)
{
	int rc = http__msg_feed(&p->m, buf, len, consumed, complete);
	if (rc != PARLEY_OK && rc != PARLEY_E_NOMEM)
		rc = PARLEY_E_HTTP_BAD_RESPONSE;
	return rc;
}

int http__resp_parser_status(const http_resp_parser *p)
{
	return p->m.hp.status_code;
}
