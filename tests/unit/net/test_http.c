/* lib/net/http: request parser limits and splits, upgrade validation, accept key, response parser. */
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>
#include <parley/error.h>

#include "common/alloc.h"
#include "common/dynbuf.h"
#include "codec/http.h"
#include "test.h"

static const char *good_upgrade = "GET /v1/websocket?x=1 HTTP/1.1\r\n"
				  "Host: example.org\r\n"
				  "Upgrade: websocket\r\n"
				  "Connection: keep-alive, Upgrade\r\n"
				  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				  "Sec-WebSocket-Version: 13\r\n"
				  "X-Ignored: yes\r\n"
				  "Origin: https://example.org\r\n"
				  "\r\n";

/* Feeds the whole text in pieces of `step` bytes; returns the final code, sets *consumed_total. */
static int feed_in_steps(http_req_parser *p, const char *text, size_t len, size_t step, size_t *consumed_total,
			 int *complete)
{
	size_t off = 0;
	*consumed_total = 0;
	*complete = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		size_t used = 0;
		int rc = http__req_parser_feed(p, (const uint8_t *)text + off, n, &used, complete);
		if (rc != PARLEY_OK)
			return rc;
		*consumed_total += used;
		if (*complete)
			return PARLEY_OK;
		off += n;
	}
	return PARLEY_OK;
}

static void test_accept_vector(void)
{
	char out[HTTP_WS_ACCEPT_LEN + 1];
	TEST_EQ_INT(http__ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out), PARLEY_OK);
	TEST_EQ_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_valid_every_split(void)
{
	size_t len = strlen(good_upgrade);
	for (size_t step = 1; step <= len; step++) {
		http_req_parser *p = NULL;
		size_t used;
		int complete;
		TEST_EQ_INT(http__req_parser_new(&p, NULL), PARLEY_OK);
		TEST_EQ_INT(feed_in_steps(p, good_upgrade, len, step, &used, &complete), PARLEY_OK);
		TEST_EQ_INT(complete, 1);
		const http_request *r = http__req_parser_request(p);
		TEST_EQ_INT(r->method, HTTP_GET);
		TEST_CHECK(r->path != NULL && strcmp(r->path, "/v1/websocket") == 0);
		TEST_CHECK(r->url != NULL && strcmp(r->url, "/v1/websocket?x=1") == 0);
		TEST_CHECK(r->host != NULL && strcmp(r->host, "example.org") == 0);
		TEST_CHECK(r->origin != NULL && strcmp(r->origin, "https://example.org") == 0);
		TEST_CHECK(http__token_list_has(r->connection, "upgrade"));
		int status = 0;
		TEST_EQ_INT(http__ws_validate_upgrade(r, &status), PARLEY_OK);
		http__req_parser_free(p);
	}
}

static void test_trailing_bytes_not_consumed(void)
{
	char buf[1024];
	size_t len = strlen(good_upgrade);
	memcpy(buf, good_upgrade, len);
	memcpy(buf + len, "\x82\x80WSWS", 6); /* a WebSocket frame right after the header */
	http_req_parser *p = NULL;
	size_t used = 0;
	int complete = 0;
	http__req_parser_new(&p, NULL);
	TEST_EQ_INT(http__req_parser_feed(p, (const uint8_t *)buf, len + 6, &used, &complete), PARLEY_OK);
	TEST_EQ_INT(complete, 1);
	TEST_EQ_INT(used, len);
	http__req_parser_free(p);
}

static void test_oversized_header(void)
{
	dynbuf b;
	dynbuf__init(&b, 1 << 20);
	dynbuf__append_str(&b, "GET / HTTP/1.1\r\nHost: x\r\n");
	while (b.len < 9000)
		dynbuf__append_str(&b, "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
	dynbuf__append_str(&b, "\r\n");
	for (size_t step = 1; step <= 4096; step *= 8) {
		http_req_parser *p = NULL;
		size_t used;
		int complete;
		http__req_parser_new(&p, NULL);
		/* only 64 headers allowed too: use a limits struct that allows many headers to hit the size */
		http__req_parser_free(p);
		http_limits lim = {.max_headers = 1000};
		http__req_parser_new(&p, &lim);
		int rc = feed_in_steps(p, (const char *)b.data, b.len, step, &used, &complete);
		TEST_EQ_INT(rc, PARLEY_E_HTTP_HEADER_TOO_LARGE);
		TEST_EQ_INT(http__status_for_error(rc), 431);
		/* stays failed */
		TEST_EQ_INT(http__req_parser_feed(p, (const uint8_t *)"x", 1, &used, &complete), rc);
		http__req_parser_free(p);
	}
	/* exactly at the limit is fine */
	http_limits lim = {.max_header_bytes = 27};
	http_req_parser *p = NULL;
	size_t used;
	int complete;
	const char *small = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"; /* 27 bytes */
	http__req_parser_new(&p, &lim);
	TEST_EQ_INT(feed_in_steps(p, small, strlen(small), 1, &used, &complete), PARLEY_OK);
	TEST_EQ_INT(complete, 1);
	http__req_parser_free(p);
	lim.max_header_bytes = 26;
	http__req_parser_new(&p, &lim);
	TEST_EQ_INT(feed_in_steps(p, small, strlen(small), 5, &used, &complete), PARLEY_E_HTTP_HEADER_TOO_LARGE);
	http__req_parser_free(p);
	dynbuf__free(&b);
}

static void test_too_many_headers(void)
{
	dynbuf b;
	dynbuf__init(&b, 1 << 16);
	dynbuf__append_str(&b, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 70; i++)
		dynbuf__printf(&b, "H%d: v\r\n", i);
	dynbuf__append_str(&b, "\r\n");
	http_req_parser *p = NULL;
	size_t used;
	int complete;
	http__req_parser_new(&p, NULL);
	TEST_EQ_INT(feed_in_steps(p, (const char *)b.data, b.len, 7, &used, &complete),
		    PARLEY_E_HTTP_HEADER_TOO_LARGE);
	http__req_parser_free(p);
	dynbuf__free(&b);
}

static void test_body_and_malformed(void)
{
	http_req_parser *p = NULL;
	size_t used;
	int complete;
	const char *post = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789";
	http__req_parser_new(&p, NULL);
	TEST_EQ_INT(feed_in_steps(p, post, strlen(post), 3, &used, &complete), PARLEY_E_HTTP_BODY_TOO_LARGE);
	http__req_parser_free(p);

	const char *chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
	http__req_parser_new(&p, NULL);
	TEST_EQ_INT(feed_in_steps(p, chunked, strlen(chunked), 100, &used, &complete),
		    PARLEY_E_HTTP_BODY_TOO_LARGE);
	http__req_parser_free(p);

	http_limits lim = {.max_body = 16};
	http__req_parser_new(&p, &lim);
	TEST_EQ_INT(feed_in_steps(p, post, strlen(post), 3, &used, &complete), PARLEY_OK);
	TEST_EQ_INT(complete, 1);
	TEST_EQ_INT(http__req_parser_request(p)->content_length, 10);
	http__req_parser_free(p);

	const char *bad[] = {"GET / HTTP/1.1\r\nHost x\r\n\r\n", "GET / HTTP/1.x\r\n\r\n", "\x01\x02\x03 / HTTP/1.1\r\n\r\n",
			     "GET / HTTP/1.1\r\nHo\x01st: x\r\n\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http__req_parser_new(&p, NULL);
		TEST_EQ_INT(feed_in_steps(p, bad[i], strlen(bad[i]), 1, &used, &complete), PARLEY_E_HTTP_BAD_REQUEST);
		http__req_parser_free(p);
	}
	/* long URL */
	dynbuf b;
	dynbuf__init(&b, 1 << 16);
	dynbuf__append_str(&b, "GET /");
	for (int i = 0; i < 3000; i++)
		dynbuf__append_str(&b, "a");
	dynbuf__append_str(&b, " HTTP/1.1\r\n\r\n");
	http__req_parser_new(&p, NULL);
	TEST_EQ_INT(feed_in_steps(p, (const char *)b.data, b.len, 1000, &used, &complete),
		    PARLEY_E_HTTP_HEADER_TOO_LARGE);
	http__req_parser_free(p);
	dynbuf__free(&b);
}

/* Parses text and runs upgrade validation; returns its code and sets *status. */
static int upgrade_of(const char *text, int *status)
{
	http_req_parser *p = NULL;
	size_t used;
	int complete;
	http__req_parser_new(&p, NULL);
	int rc = feed_in_steps(p, text, strlen(text), 64, &used, &complete);
	if (rc == PARLEY_OK)
		rc = http__ws_validate_upgrade(http__req_parser_request(p), status);
	http__req_parser_free(p);
	return rc;
}

static void test_bad_upgrades(void)
{
	struct {
		const char *text;
		int status;
	} cases[] = {
		{"POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"GET /ws HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n", 400},
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 426},
		{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 426},
		{"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int status = 0;
		int rc = upgrade_of(cases[i].text, &status);
		TEST_EQ_INT(rc, PARLEY_E_HTTP_BAD_UPGRADE);
		TEST_EQ_INT(status, cases[i].status);
	}
	dynbuf b;
	dynbuf__init(&b, 4096);
	TEST_EQ_INT(http__build_upgrade_refusal(&b, 426), PARLEY_OK);
	dynbuf__append(&b, "", 1);
	TEST_CHECK(strstr((const char *)b.data, "HTTP/1.1 426 Upgrade Required\r\n") != NULL);
	TEST_CHECK(strstr((const char *)b.data, "Sec-WebSocket-Version: 13\r\n") != NULL);
	dynbuf__free(&b);
}

static int resp_feed_all(http_resp_parser *p, const char *text, size_t step, size_t *used_total, int *complete)
{
	size_t len = strlen(text), off = 0;
	*used_total = 0;
	*complete = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used = 0;
		int rc = http__resp_parser_feed(p, (const uint8_t *)text + off, n, &used, complete);
		if (rc != PARLEY_OK)
			return rc;
		*used_total += used;
		if (*complete)
			return PARLEY_OK;
		off += n;
	}
	return PARLEY_OK;
}

static void test_client_roundtrip(void)
{
	dynbuf req, resp;
	char key[HTTP_WS_KEY_LEN + 1];
	dynbuf__init(&req, 4096);
	dynbuf__init(&resp, 4096);
	TEST_EQ_INT(http__ws_build_request(&req, "localhost:1234", "/v1/websocket", NULL, NULL, key), PARLEY_OK);
	TEST_EQ_INT(strlen(key), HTTP_WS_KEY_LEN);
	/* our own server side accepts our own request */
	http_req_parser *p = NULL;
	size_t used;
	int complete;
	http__req_parser_new(&p, NULL);
	TEST_EQ_INT(feed_in_steps(p, (const char *)req.data, req.len, 1, &used, &complete), PARLEY_OK);
	TEST_EQ_INT(complete, 1);
	const http_request *r = http__req_parser_request(p);
	TEST_EQ_INT(http__ws_validate_upgrade(r, NULL), PARLEY_OK);
	TEST_EQ_INT(http__ws_build_101(&resp, r->ws_key, NULL), PARLEY_OK);
	dynbuf__append(&resp, "\x82\x02hi", 4);
	dynbuf__append(&resp, "", 1);
	for (size_t step = 1; step < resp.len; step += 13) {
		http_resp_parser *rp = NULL;
		TEST_EQ_INT(http__resp_parser_new(&rp, NULL, key), PARLEY_OK);
		TEST_EQ_INT(resp_feed_all(rp, (const char *)resp.data, step, &used, &complete), PARLEY_OK);
		TEST_EQ_INT(complete, 1);
		TEST_EQ_INT(used, resp.len - 5); /* the frame and the NUL are left */
		TEST_EQ_INT(http__resp_parser_status(rp), 101);
		http__resp_parser_free(rp);
	}
	http__req_parser_free(p);

	/* wrong accept, non-101, missing upgrade */
	const char *bad[] = {
		("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), /* one element: clang asks */
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 1x1 Switching\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http_resp_parser *rp = NULL;
		http__resp_parser_new(&rp, NULL, key);
		TEST_EQ_INT(resp_feed_all(rp, bad[i], 5, &used, &complete), PARLEY_E_HTTP_BAD_RESPONSE);
		http__resp_parser_free(rp);
	}
	dynbuf__free(&req);
	dynbuf__free(&resp);
}

static void test_responses(void)
{
	dynbuf b;
	dynbuf__init(&b, 4096);
	TEST_EQ_INT(http__build_response(&b, 200, "application/json", "{\"status\":\"ok\"}", 15, 1), PARLEY_OK);
	dynbuf__append(&b, "", 1);
	TEST_EQ_STR((const char *)b.data, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
					  "Connection: close\r\n\r\n{\"status\":\"ok\"}");
	dynbuf__free(&b);
	TEST_CHECK(http__token_list_has("a, b ,Upgrade", "upgrade"));
	TEST_CHECK(!http__token_list_has("upgrades", "upgrade"));
	TEST_CHECK(!http__token_list_has(NULL, "upgrade"));
}

/* Every allocation failing in turn: always a clean NOMEM (or success), never a crash or a leak (ASan). */
static void test_alloc_failures(void)
{
	size_t len = strlen(good_upgrade);
	int saw_nomem = 0, saw_ok = 0;
	for (unsigned long nth = 1; nth < 200 && !saw_ok; nth++) {
		http_req_parser *p = NULL;
		size_t used;
		int complete = 0;
		parley__alloc_fail_after(nth);
		int rc = http__req_parser_new(&p, NULL);
		if (rc == PARLEY_OK) {
			rc = feed_in_steps(p, good_upgrade, len, 9, &used, &complete);
			http__req_parser_free(p);
		}
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == PARLEY_E_NOMEM);
		if (rc == PARLEY_E_NOMEM)
			saw_nomem = 1;
		if (rc == PARLEY_OK && complete)
			saw_ok = 1;
	}
	TEST_CHECK(saw_nomem && saw_ok);
}

int main(void)
{
	TEST_RUN(test_accept_vector);
	TEST_RUN(test_valid_every_split);
	TEST_RUN(test_trailing_bytes_not_consumed);
	TEST_RUN(test_oversized_header);
	TEST_RUN(test_too_many_headers);
	TEST_RUN(test_body_and_malformed);
	TEST_RUN(test_bad_upgrades);
	TEST_RUN(test_client_roundtrip);
	TEST_RUN(test_responses);
	TEST_RUN(test_alloc_failures);
	TEST_EXIT();
}
