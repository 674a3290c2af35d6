/* Plain TCP connections for parley-bench's broker engines (see relay_tcp.h). */
#include "relay_tcp.h"

#include <stdio.h>
#include <string.h>

static void set_why(rtcp *t, const char *what, int uverr)
{
	if (t->why[0] == '\0')
		snprintf(t->why, sizeof(t->why), "%s%s%s", what, uverr ? ": " : "", uverr ? uv_strerror(uverr) : "");
}

static void on_closed(uv_handle_t *h)
{
	rtcp *t = h->data;

	dynbuf__free(&t->in);
	dynbuf__free(&t->out);
	dynbuf__free(&t->wbuf);
	t->open = 0;
	t->cb->on_close(t, t->why);
}

static void close_now(rtcp *t)
{
	if (uv_is_closing((uv_handle_t *)&t->h))
		return;
	t->closing = 1;
	uv_close((uv_handle_t *)&t->h, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	close_now(req->data);
}

static void on_write(uv_write_t *req, int status);

void rtcp__flush(rtcp *t)
{
	dynbuf swap;
	uv_buf_t b;
	int n;

	if (t->held || t->corked || t->writing || !t->open || uv_is_closing((uv_handle_t *)&t->h))
		return;
	if (t->out.len == 0) {
		if (t->shutdown_after_write) {
			t->shutdown_after_write = 0;
			t->sreq.data = t;
			if (uv_shutdown(&t->sreq, (uv_stream_t *)&t->h, on_shutdown) != 0)
				close_now(t);
		}
		return;
	}
	b = uv_buf_init((char *)t->out.data, (unsigned)t->out.len);
	n = uv_try_write((uv_stream_t *)&t->h, &b, 1);
	if (n > 0)
		dynbuf__consume(&t->out, (size_t)n);
	else if (n < 0 && n != UV_EAGAIN) {
		set_why(t, "write", n);
		close_now(t);
		return;
	}
	if (t->out.len == 0) {
		rtcp__flush(t); /* a pending shutdown */
		return;
	}
	/* What the socket did not take goes in one uv_write; new output queues behind it. */
	swap = t->wbuf;
	t->wbuf = t->out;
	t->out = swap;
	dynbuf__reset(&t->out);
	b = uv_buf_init((char *)t->wbuf.data, (unsigned)t->wbuf.len);
	t->wreq.data = t;
	n = uv_write(&t->wreq, (uv_stream_t *)&t->h, &b, 1, on_write);
	if (n != 0) {
		set_why(t, "write", n);
		close_now(t);
		return;
	}
	t->writing = 1;
}

static void on_write(uv_write_t *req, int status)
{
	rtcp *t = req->data;

	t->writing = 0;
	dynbuf__reset(&t->wbuf);
	if (t->closing && status == UV_ECANCELED)
		return; /* closed at once on purpose: the write was cancelled */
	if (status < 0) {
		set_why(t, "write", status);
		close_now(t);
		return;
	}
	rtcp__flush(t);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	rtcp *t = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)t->rbuf, (unsigned)t->rbuf_len);
}

/* Hands data[0..len) to the protocol; returns what it consumed, or -1 (it closed, or refused). */
static long feed(rtcp *t, const uint8_t *data, size_t len)
{
	long used = t->cb->on_data(t, data, len);

	if (used < 0 || (size_t)used > len) {
		set_why(t, "protocol error", 0);
		close_now(t);
		return -1;
	}
	return t->closing ? -1 : used;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	rtcp *t = s->data;
	long used;

	(void)buf;
	if (nread < 0) {
		set_why(t, nread == UV_EOF ? "the server closed the connection" : "read", nread == UV_EOF ? 0 : (int)nread);
		close_now(t);
		return;
	}
	if (nread == 0 || t->closing)
		return;
	t->held = 1;
	if (t->in.len == 0) {
		/* the common case: whole packets straight from the shared buffer, only a tail is copied */
		used = feed(t, t->rbuf, (size_t)nread);
		if (used >= 0 && dynbuf__append(&t->in, t->rbuf + used, (size_t)nread - (size_t)used) != 0)
			used = -1;
	} else if (dynbuf__append(&t->in, t->rbuf, (size_t)nread) != 0) {
		used = -1;
	} else {
		used = feed(t, t->in.data, t->in.len);
		if (used > 0)
			dynbuf__consume(&t->in, (size_t)used);
	}
	/* the bound is on what is left over: one incomplete packet, never more than max_in */
	if (used >= 0 && t->in.len > t->max_in)
		used = -1;
	if (used < 0 && !t->closing) {
		set_why(t, "a packet larger than the input limit", 0);
		close_now(t);
	}
	if (used >= 0 && t->cb->on_read_done)
		t->cb->on_read_done(t);
	t->held = 0;
	rtcp__flush(t);
}

static void on_connect(uv_connect_t *req, int status)
{
	rtcp *t = req->data;

	if (t->closing)
		return;
	if (status < 0) {
		set_why(t, "connect", status);
		close_now(t);
		return;
	}
	t->open = 1;
	if (uv_read_start((uv_stream_t *)&t->h, on_alloc, on_read) != 0) {
		set_why(t, "read start", 0);
		close_now(t);
		return;
	}
	t->held = 1;
	t->cb->on_open(t);
	t->held = 0;
	rtcp__flush(t);
}

int rtcp__connect(rtcp *t, uv_loop_t *loop, const struct sockaddr *addr, uint8_t *rbuf, size_t rbuf_len,
		  size_t max_in, size_t max_out, const rtcp_callbacks *cb, void *data)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->rbuf = rbuf;
	t->rbuf_len = rbuf_len;
	t->cb = cb;
	t->data = data;
	rc = uv_tcp_init(loop, &t->h);
	if (rc != 0)
		return rc;
	t->h.data = t;
	t->max_in = max_in;
	dynbuf__init(&t->in, max_in + rbuf_len); /* a leftover tail plus one read */
	dynbuf__init(&t->out, max_out);
	dynbuf__init(&t->wbuf, max_out);
	uv_tcp_nodelay(&t->h, 1);
	t->creq.data = t;
	rc = uv_tcp_connect(&t->creq, &t->h, addr, on_connect);
	if (rc != 0) {
		/* nothing will be called: close the handle without reporting */
		t->cb = NULL;
		uv_close((uv_handle_t *)&t->h, NULL);
		dynbuf__free(&t->in);
		dynbuf__free(&t->out);
		dynbuf__free(&t->wbuf);
	}
	return rc;
}

dynbuf *rtcp__out(rtcp *t)
{
	return &t->out;
}

void rtcp__cork(rtcp *t, int corked)
{
	t->corked = corked;
	if (!corked)
		rtcp__flush(t);
}

void rtcp__close(rtcp *t, int graceful)
{
	if (t->closing || uv_is_closing((uv_handle_t *)&t->h))
		return;
	if (graceful && t->open) {
		t->closing = 1;
		t->shutdown_after_write = 1;
		t->held = t->corked = 0;
		rtcp__flush(t);
		return;
	}
	close_now(t);
}
