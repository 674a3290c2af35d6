/* A plain TCP connection on a libuv loop for parley-bench's broker engines (MQTT, NATS), shaped like
 * lib/transport's WebSocket pump so every peer's client does the same kind of I/O work:
 *
 * - reads land in the loop thread's shared buffer; the protocol's on_data consumes whole packets
 *   straight from it and only an incomplete tail is copied into the connection's own bounded input
 *   buffer (max_in bytes: a peer cannot make it grow past that);
 * - output is appended with rtcp__out (the protocol's encoders write into it directly), held while a
 *   read is being handled or while corked, then written with uv_try_write, only what the socket does
 *   not take being handed to one uv_write at a time: one write(2) for everything one read or one
 *   timer tick produced;
 * - TCP_NODELAY, as parleyd, mosquitto (set_tcp_nodelay) and nats-server use it.
 *
 * Every call and callback happens on the loop thread. on_close is called exactly once after
 * rtcp__connect succeeded (whatever ended the connection), and the rtcp may be reused after it.
 */
#ifndef PARLEY_BENCH_RELAY_TCP_H
#define PARLEY_BENCH_RELAY_TCP_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/dynbuf.h"

typedef struct rtcp rtcp;

typedef struct rtcp_callbacks {
	void (*on_open)(rtcp *t);
	/* Bytes received: return how many were consumed (whole packets; the rest is kept and handed
	 * back with more), or -1 to close the connection (protocol error; say why first). */
	long (*on_data)(rtcp *t, const uint8_t *buf, size_t len);
	/* Everything one read delivered was handled; output produced here leaves with it. Optional. */
	void (*on_read_done)(rtcp *t);
	/* why: "" for a close we asked for, else what happened ("connection refused", "end of stream"). */
	void (*on_close)(rtcp *t, const char *why);
} rtcp_callbacks;

struct rtcp {
	uv_tcp_t h;
	uv_connect_t creq;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	dynbuf in;      /* an incomplete packet carried over to the next read */
	dynbuf out;     /* queued output */
	dynbuf wbuf;    /* the bytes of the uv_write in flight */
	uint8_t *rbuf;  /* the loop's shared read buffer */
	size_t rbuf_len, max_in;
	const rtcp_callbacks *cb;
	void *data;     /* the protocol's connection */
	int open, writing, held, corked, closing, shutdown_after_write;
	char why[96];
};

/* Starts connecting to addr. max_in bounds an incomplete packet, max_out the queued output. 0, or a
 * libuv error (nothing will be called). */
int rtcp__connect(rtcp *t, uv_loop_t *loop, const struct sockaddr *addr, uint8_t *rbuf, size_t rbuf_len,
		  size_t max_in, size_t max_out, const rtcp_callbacks *cb, void *data);
/* The output buffer, for the protocol's encoders; rtcp__flush writes it unless held. */
dynbuf *rtcp__out(rtcp *t);
void rtcp__cork(rtcp *t, int corked);
void rtcp__flush(rtcp *t);
/* Closes: at once (graceful 0), or after the queued output is written and the sending side shut down
 * (graceful 1: for a last request the server must still read). Safe to call more than once. */
void rtcp__close(rtcp *t, int graceful);

#endif
