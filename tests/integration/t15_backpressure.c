/* t15: backpressure and memory (security items 3 and 13), black-box against a real parleyd.
 *
 * A client that pipelines large SendMessage frames and never reads its answers must not be able to
 * make parleyd buffer its whole burst: the server stops reading a connection (and, past the loop's
 * own bound, every connection of the loop) while its requests are in flight, so the client's writes
 * block in TCP instead of growing the server. The server's growth is read from /proc/<pid>/status
 * (VmHWM, the peak resident set, against VmRSS before the burst). After the burst, once the loop has
 * been quiet, parleyd gives the memory back (malloc_trim from the worker's idle timer): VmRSS must
 * come back near where it started.
 *
 * Each burst is bounded in frames and in time, so the test takes seconds whatever the disk. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "harness.h"

/* AddressSanitizer's allocator keeps freed memory in quarantine (256 MiB) and has no malloc_trim:
 * the RSS of a sanitized parleyd says nothing about these bounds. Its functional checks still run. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_CHECKED 0
#endif
#endif
#ifndef RSS_CHECKED
#define RSS_CHECKED 1
#endif
#define RSS_CHECK(cond)                                                                            \
	do {                                                                                       \
		if (RSS_CHECKED)                                                                   \
			IT_CHECK(cond);                                                            \
	} while (0)

#define CONTENT_BYTES (200u * 1024u)
#define MiB (1024L * 1024L)
#define BURST_MS 8000
#define MAX_CONNS 20

static srv s;
static uint8_t sk_alice[64];
static uint32_t bob_regid;

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A field of /proc/<pid>/status in bytes ("VmRSS", "VmHWM"), -1 if unreadable. */
static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	size_t n = strlen(field);
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10) * 1024L;
			break;
		}
	fclose(f);
	return v;
}

/* One masked binary WebSocket message holding a SendMessage of n (<= CONTENT_BYTES) bytes to bob's
 * device 1. The mask key is zero, so the payload goes out as encoded (still a valid masked frame). */
static uint8_t *make_frame(size_t n, size_t *len)
{
	static uint8_t content[CONTENT_BYTES];
	randombytes_buf(content, sizeof content);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *omp = &om;
	req.id = 4242;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	sm.recipient = "bob";
	sm.timestamp = 1;
	sm.n_messages = 1;
	sm.messages = &omp;
	om.device_id = 1;
	om.registration_id = bob_regid;
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	om.content.data = content;
	om.content.len = n;
	dynbuf b;
	dynbuf__init(&b, 1 << 20);
	if (wire__encode_request(&req, &b) != PARLEY_OK) {
		dynbuf__free(&b);
		return NULL;
	}
	uint8_t *f = malloc(b.len + 14);
	if (f == NULL) {
		dynbuf__free(&b);
		return NULL;
	}
	size_t h = 0;
	f[h++] = 0x82;
	if (b.len < 126) { /* the shortest length encoding, as RFC 6455 requires */
		f[h++] = (uint8_t)(0x80 | b.len);
	} else if (b.len <= 0xffff) {
		f[h++] = 0x80 | 126;
		f[h++] = (uint8_t)(b.len >> 8);
		f[h++] = (uint8_t)b.len;
	} else {
		f[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			f[h++] = (uint8_t)((uint64_t)b.len >> (8 * i));
	}
	memset(f + h, 0, 4);
	h += 4;
	memcpy(f + h, b.data, b.len);
	*len = h + b.len;
	dynbuf__free(&b);
	return f;
}

static int alice_connect(void)
{
	uint8_t nonce[32];
	int fd = pw_connect(s.port, nonce);
	if (fd < 0 || pw_auth(fd, nonce, "alice", 1, sk_alice) != PARLEY_OK)
		return -1;
	return fd;
}

/* The highest VmRSS seen by burst(), sampled every 50 ms (VmHWM would include earlier tests). */
static long peak_rss;

/* Pipelines up to `frames` copies of frame on each of n connections, never reading, for at most
 * BURST_MS; a frame begun is always finished (the server must not be left waiting for the rest of
 * one). Returns the frames sent on each connection in sent[]. */
static void burst(const int *fds, int n, const uint8_t *frame, size_t len, int frames, int *sent)
{
	size_t off[MAX_CONNS] = {0};
	struct pollfd p[MAX_CONNS];
	long deadline = now_ms() + BURST_MS, next_sample = 0;
	peak_rss = 0;
	for (int i = 0; i < n; i++) {
		sent[i] = 0;
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
	for (;;) {
		int active = 0, late = now_ms() >= deadline;
		if (now_ms() >= next_sample) {
			long rss = proc_kb(s.pid, "VmRSS");
			peak_rss = rss > peak_rss ? rss : peak_rss;
			next_sample = now_ms() + 50;
		}
		for (int i = 0; i < n; i++) {
			p[i].fd = fds[i];
			p[i].events = (sent[i] < frames && (!late || off[i] > 0)) ? POLLOUT : 0;
			active += p[i].events != 0;
		}
		if (active == 0)
			break;
		if (poll(p, (nfds_t)n, 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (!(p[i].revents & POLLOUT))
				continue;
			ssize_t w = send(fds[i], frame + off[i], len - off[i], MSG_NOSIGNAL);
			if (w < 0)
				continue;
			off[i] += (size_t)w;
			if (off[i] == len) {
				off[i] = 0;
				sent[i]++;
			}
		}
	}
	for (int i = 0; i < n; i++)
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) & ~O_NONBLOCK);
}

/* Reads `count` responses on fd; returns how many were OK (others are reported). */
static int drain_answers(int fd, int count)
{
	int ok = 0;
	for (int got = 0; got < count;) {
		wire_frame f;
		if (pw_recv(fd, &f, 30000) != 0) {
			fprintf(stderr, "# no answer after %d of %d\n", got, count);
			break;
		}
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE) {
			got++;
			if (f.frame->response->status == PARLEY_OK)
				ok++;
			else
				fprintf(stderr, "# answer %d: %s\n", got, parley_errname((int)f.frame->response->status));
		}
		wire__frame_free(&f);
	}
	return ok;
}

/* Waits up to 15 s for VmRSS to fall to `bound`; returns the last value read. */
static long rss_after_idle(long bound)
{
	long rss = proc_kb(s.pid, "VmRSS");
	for (long until = now_ms() + 15000; rss > bound && now_ms() < until;) {
		usleep(200 * 1000);
		rss = proc_kb(s.pid, "VmRSS");
	}
	return rss;
}

static uint8_t *frame;
static size_t frame_len;

/* Item 3: one connection, 2,000 x 200 KiB without reading: growth under 64 MiB; every request is
 * still answered OK (backpressure slows the client down, it refuses nothing). Item 13: after the
 * answers, the server returns to within 16 MiB of its start. */
static void one_connection_pipelining(void)
{
	int fd = alice_connect(), sent = 0;
	IT_CHECK(fd >= 0);
	if (fd < 0)
		return;
	long base = proc_kb(s.pid, "VmRSS");
	burst(&fd, 1, frame, frame_len, 2000, &sent);
	long peak = peak_rss, hwm = proc_kb(s.pid, "VmHWM");
	peak = hwm > peak ? hwm : peak; /* nothing ran before: VmHWM is this burst's peak */
	printf("# one connection: %d frames of %u bytes sent; RSS %ld MiB before, peak %ld MiB\n", sent,
	       CONTENT_BYTES, base / MiB, peak / MiB);
	IT_CHECK(sent >= 100);
	RSS_CHECK(peak - base < 64 * MiB);
	IT_EQ(drain_answers(fd, sent), sent);
	IT_CHECK(metric_value(s.port, "parley_backpressure_pauses_total") > 0);
	long rss = rss_after_idle(base + 16 * MiB);
	printf("# one connection: RSS %ld MiB after the answers and an idle period\n", rss / MiB);
	RSS_CHECK(rss <= base + 16 * MiB);
	/* RSS may come down by itself (the top of the heap): the idle trim must still have run (a
	 * sanitized server has no glibc heap to trim, and skips it) */
	uint64_t trims = 0;
	for (long until = now_ms() + 8000; RSS_CHECKED &&
					   (trims = metric_value(s.port, "parley_memory_trims_total")) == 0 &&
					   now_ms() < until;)
		usleep(200 * 1000);
	RSS_CHECK(trims > 0);
	close(fd);
}

/* Item 3: 20 such connections at once stay bounded in total (the loop's own cap), and closing them
 * with their requests in flight leaves nothing behind (item 13). */
static void many_connections_pipelining(void)
{
	int fds[MAX_CONNS], sent[MAX_CONNS], n = 0, total = 0;
	for (; n < MAX_CONNS; n++) {
		fds[n] = alice_connect();
		if (fds[n] < 0)
			break;
	}
	IT_EQ(n, MAX_CONNS);
	long base = proc_kb(s.pid, "VmRSS");
	burst(fds, n, frame, frame_len, 2000, sent);
	long now = proc_kb(s.pid, "VmRSS"), peak = peak_rss > now ? peak_rss : now;
	for (int i = 0; i < n; i++)
		total += sent[i];
	printf("# %d connections: %d frames sent; RSS %ld MiB before, %ld MiB at the end, peak %ld MiB\n", n, total,
	       base / MiB, now / MiB, peak / MiB);
	IT_CHECK(total >= 100);
	RSS_CHECK(peak - base < 96 * MiB);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	long rss = rss_after_idle(base + 16 * MiB);
	printf("# %d connections: RSS %ld MiB after they closed and an idle period\n", n, rss / MiB);
	RSS_CHECK(rss <= base + 16 * MiB);
	IT_CHECK(server_alive(s.port));
}

/* The store queue's own bound, on a second server whose request caps are out of the way and whose
 * store commits one job at a time (store_batch_max 1: an fsync each, far slower than the loop takes
 * small requests, so the queue fills whatever the build): requests past store_queue_max are answered
 * SERVER_BUSY (not buffered), the others OK, and the server goes on. */
static void store_queue_full_answers_busy(void)
{
	const char *flags[] = {"--store_queue_max=64", "--store_batch_max=1", "--conn_max_requests=100000",
			       "--loop_max_requests=10000000", NULL};
	srv t;
	uint8_t pk[32], sk[64], sk_b[64], nonce[32];
	int fd, busy = 0, ok = 0, other = 0;
	srv_start(&t, flags);
	IT_EQ(pw_register(t.port, "bob", pk, sk_b, &fd), PARLEY_OK);
	IT_EQ(pw_upload_keys(fd, &bob_regid, 0, 1), PARLEY_OK);
	close(fd);
	IT_EQ(pw_register(t.port, "carl", pk, sk, &fd), PARLEY_OK);
	close(fd);
	fd = pw_connect(t.port, nonce);
	IT_EQ(pw_auth(fd, nonce, "carl", 1, sk), PARLEY_OK);
	size_t len = 0;
	uint8_t *f = make_frame(100, &len); /* bob's new registration id */
	int sent = 0;
	while (f != NULL && sent < 400 && send_all(fd, f, len) == 0)
		sent++;
	IT_EQ(sent, 400);
	for (int got = 0; got < 400;) {
		wire_frame w;
		if (pw_recv(fd, &w, 30000) != 0)
			break;
		if (w.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE) {
			got++;
			int st = (int)w.frame->response->status;
			ok += st == PARLEY_OK;
			busy += st == PARLEY_E_SERVER_BUSY;
			other += st != PARLEY_OK && st != PARLEY_E_SERVER_BUSY;
		}
		wire__frame_free(&w);
	}
	printf("# 400 pipelined sends, store_queue_max 64: %d OK, %d SERVER_BUSY, %d other\n", ok, busy, other);
	IT_CHECK(busy > 0);
	IT_CHECK(ok > 0);
	IT_EQ(ok + busy, 400);
	IT_EQ(other, 0);
	IT_CHECK(metric_value(t.port, "parley_store_busy_total") > 0);
	free(f);
	close(fd);
	IT_CHECK(server_alive(t.port));
	IT_EQ(srv_stop(&t), 0);
	srv_cleanup(&t);
}

int main(void)
{
	const char *flags[] = {"--max_content_bytes=204800", "--queue_limit=100000000", NULL};
	uint8_t pk[32], sk_bob[64];
	int fd;
	if (sodium_init() < 0)
		return 99;
	if (!RSS_CHECKED)
		printf("# AddressSanitizer build: RSS bounds reported, not checked (its quarantine keeps freed memory)\n");
	srv_start(&s, flags);
	IT_EQ(pw_register(s.port, "alice", pk, sk_alice, &fd), PARLEY_OK);
	close(fd);
	IT_EQ(pw_register(s.port, "bob", pk, sk_bob, &fd), PARLEY_OK);
	IT_EQ(pw_upload_keys(fd, &bob_regid, 0, 1), PARLEY_OK);
	close(fd);
	frame = make_frame(CONTENT_BYTES, &frame_len);
	if (frame == NULL || it_failures) {
		fprintf(stderr, "Bail out! set-up failed\n");
		return 99;
	}
	IT_RUN(one_connection_pipelining);
	IT_RUN(many_connections_pipelining);
	free(frame);
	IT_RUN(store_queue_full_answers_busy);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
