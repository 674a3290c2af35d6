/* Shared between http.c (parsing) and http_ws.c (handshake, responses): the one parser core used for
 * both requests and responses. Not part of the net API. */
#ifndef PARLEY_NET_HTTP_INTERNAL_H
#define PARLEY_NET_HTTP_INTERNAL_H
#include <http_parser.h>

#include "common/dynbuf.h"
#include "codec/http.h"

enum http_hdr {
	HDR_HOST,
	HDR_UPGRADE,
	HDR_CONNECTION,
	HDR_WS_KEY,
	HDR_WS_VERSION,
	HDR_WS_PROTOCOL,
	HDR_WS_ACCEPT,
	HDR_ORIGIN,
	HDR__COUNT
};

#define HTTP_MAX_KNOWN_NAME 32 /* longer than every name in enum http_hdr */

typedef struct http_msg http_msg;
struct http_msg {
	http_parser hp;
	int type; /* HTTP_REQUEST or HTTP_RESPONSE */
	http_limits limits;
	dynbuf vals[HDR__COUNT];
	int present[HDR__COUNT];
	dynbuf url, path;
	char name_buf[HTTP_MAX_KNOWN_NAME];
	size_t name_len;   /* > HTTP_MAX_KNOWN_NAME: a name we do not keep */
	int name_started;
	int in_value;
	int cur_hdr; /* enum http_hdr of the value being read, -1 for one we skip */
	size_t nheaders;
	size_t header_bytes;
	uint64_t body_bytes;
	int headers_done;
	int complete;
	int status; /* responses */
	int err;
	http_request req;
	const char *ws_accept;
	/* called once the header is complete; a non-OK return fails the message with that code */
	int (*on_headers)(http_msg *m);
	void *user;
};

void http__msg_init(http_msg *m, int type, const http_limits *limits);
void http__msg_reset(http_msg *m);
void http__msg_free(http_msg *m);
int http__msg_feed(http_msg *m, const uint8_t *buf, size_t len, size_t *consumed, int *complete);

#endif
