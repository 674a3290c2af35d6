/* 09: key server and relay, black-box over the wire (content is opaque to the server, so these tests
 * send arbitrary bytes; end-to-end encryption is covered by the CLI test and the client's tests):
 * one-time prekeys handed out once under parallel fetches (one loop thread and two), bundle rate
 * limit, stale/mismatched device lists naming the devices, offline delivery in order, 10,000 messages
 * with no loss and no duplicate, redelivery of unacknowledged envelopes, and nothing acknowledged lost
 * across SIGKILL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "harness.h"

static srv s;

typedef struct tuser {
	char handle[33];
	uint8_t pk[32], sk[64];
	uint32_t regid;
	int fd;
} tuser;

static void make_acct_at(int port, tuser *a, const char *handle, int n_otpk)
{
	snprintf(a->handle, sizeof a->handle, "%s", handle);
	IT_EQ(pw_register(port, handle, a->pk, a->sk, &a->fd), PARLEY_OK);
	IT_EQ(pw_upload_keys(a->fd, &a->regid, n_otpk, 1), PARLEY_OK);
}

static void make_acct(tuser *a, const char *handle, int n_otpk)
{
	make_acct_at(s.port, a, handle, n_otpk);
}

static int reconnect(tuser *a)
{
	uint8_t nonce[32];
	a->fd = pw_connect(s.port, nonce);
	return pw_auth(a->fd, nonce, a->handle, 1, a->sk);
}

static void build_send(Parley__Wire__Request *req, Parley__Wire__SendMessageRequest *sm,
		       Parley__Wire__OutgoingMessage *om, Parley__Wire__OutgoingMessage **omp, uint64_t id,
		       const char *to, uint32_t device, uint32_t regid, const void *content, size_t len)
{
	parley__wire__request__init(req);
	parley__wire__send_message_request__init(sm);
	parley__wire__outgoing_message__init(om);
	req->id = id;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req->send_message = sm;
	sm->recipient = (char *)to;
	sm->timestamp = id;
	sm->n_messages = 1;
	*omp = om;
	sm->messages = omp;
	om->device_id = device;
	om->registration_id = regid;
	om->type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	om->content.data = (uint8_t *)content;
	om->content.len = len;
}

/* Sends `count` messages "seq:N" (N from first) with up to `window` requests in flight; returns how
 * many were acknowledged OK. Each response must answer a request in flight, by id, once: a response
 * for another id (or a second one for the same id) is a failure, not an acknowledgement. */
static int send_many(tuser *from, tuser *to, int first, int count, int window)
{
	const uint64_t base = (uint64_t)first + 1000000;
	int sent = 0, acked = 0, outstanding = 0;
	uint8_t *answered = calloc((size_t)count, 1);
	if (answered == NULL)
		return 0;
	while (acked < count) {
		while (sent < count && outstanding < window) {
			char body[64];
			int n = snprintf(body, sizeof body, "seq:%d", first + sent);
			Parley__Wire__Request req;
			Parley__Wire__SendMessageRequest sm;
			Parley__Wire__OutgoingMessage om, *omp;
			build_send(&req, &sm, &om, &omp, (uint64_t)(first + sent) + 1000000, to->handle, 1, to->regid, body,
				   (size_t)n);
			if (pw_send_request(from->fd, &req) != 0)
				goto out;
			sent++;
			outstanding++;
		}
		wire_frame f;
		if (pw_recv(from->fd, &f, 10000) != 0)
			goto out;
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE) {
			uint64_t id = f.frame->response->id;
			int status = (int)f.frame->response->status;
			wire__frame_free(&f);
			if (id < base || id >= base + (uint64_t)sent || answered[id - base]) {
				it_failures++;
				fprintf(stderr, "not ok - send_many: response id %llu answers no request in flight "
						"(sent %llu..%llu)\n", (unsigned long long)id, (unsigned long long)base,
					(unsigned long long)(base + (uint64_t)sent - 1));
				goto out;
			}
			answered[id - base] = 1;
			outstanding--;
			if (status != PARLEY_OK) {
				fprintf(stderr, "# send refused: %s\n", parley_errname(status));
				goto out;
			}
			acked++;
			continue;
		}
		wire__frame_free(&f);
	}
out:
	free(answered);
	return acked;
}

/* Envelopes received that are not "seq:N" messages of send_many (none may come: see
 * offline_then_online_ten_thousand). */
static int foreign_envelopes;

/* Receives envelopes until `want` have arrived or 5 s pass without one; records each seq in seen[]
 * (counts) and checks order; acks in batches unless ack_upto < 0 (ack the first ack_upto only).
 * Returns the number received. */
static int receive(tuser *a, int *seen, int seen_len, int want, int ack_upto, int *in_order)
{
	int got = 0, last = -1;
	uint64_t pending[100];
	size_t npending = 0;
	*in_order = 1;
	while (got < want) {
		wire_frame f;
		if (pw_recv(a->fd, &f, 5000) != 0)
			break;
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH &&
		    f.frame->push->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE) {
			Parley__Wire__Envelope *e = f.frame->push->envelope;
			int seq = -1;
			char buf[64] = {0};
			memcpy(buf, e->content.data, e->content.len < 63 ? e->content.len : 63);
			if (sscanf(buf, "seq:%d", &seq) == 1 && seq >= 0 && seq < seen_len)
				seen[seq]++;
			else
				foreign_envelopes++;
			if (seq <= last)
				*in_order = 0;
			last = seq;
			got++;
			if (ack_upto < 0 || got <= ack_upto)
				pending[npending++] = e->server_id;
		}
		wire__frame_free(&f);
		if (npending == 100 || (npending > 0 && got == want)) {
			Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
			Parley__Wire__AckRequest ack = PARLEY__WIRE__ACK_REQUEST__INIT;
			req.id = 5000000 + (uint64_t)got;
			req.body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
			req.ack = &ack;
			ack.server_ids = pending;
			ack.n_server_ids = npending;
			pw_send_request(a->fd, &req);
			npending = 0;
		}
	}
	if (npending > 0) {
		Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
		Parley__Wire__AckRequest ack = PARLEY__WIRE__ACK_REQUEST__INIT;
		req.id = 6000000;
		req.body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
		req.ack = &ack;
		ack.server_ids = pending;
		ack.n_server_ids = npending;
		pw_call(a->fd, &req, NULL);
	}
	return got;
}

/* 20 connections pipeline 8 bundle fetches each for one device with 100 one-time prekeys: exactly 100
 * answers carry a prekey, each id in 1..100 handed out once. */
static void prekeys_once(int port)
{
	tuser tina;
	make_acct_at(port, &tina, "tina", 100);
	enum { FETCHERS = 20, EACH = 8 };
	int fds[FETCHERS];
	for (int i = 0; i < FETCHERS; i++) {
		char h[32];
		uint8_t pk[32], sk[64];
		snprintf(h, sizeof h, "fetcher%d", i);
		IT_EQ(pw_register(port, h, pk, sk, &fds[i]), PARLEY_OK);
	}
	/* every fetcher pipelines all its requests before anyone reads an answer */
	for (int k = 0; k < EACH; k++)
		for (int i = 0; i < FETCHERS; i++) {
			Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
			Parley__Wire__GetBundlesRequest g = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
			req.id = (uint64_t)(k + 1);
			req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
			req.get_bundles = &g;
			g.handle = "tina";
			g.device_id = 1;
			pw_send_request(fds[i], &req);
		}
	int hits[101] = {0}, with = 0, without = 0, dup = 0, out_of_range = 0, errors = 0;
	for (int i = 0; i < FETCHERS; i++) {
		for (int k = 0; k < EACH; k++) {
			wire_frame f;
			if (pw_recv(fds[i], &f, 10000) != 0) {
				errors++;
				continue;
			}
			if (f.frame->kind_case != PARLEY__WIRE__FRAME__KIND_RESPONSE) {
				k--;
				wire__frame_free(&f);
				continue;
			}
			Parley__Wire__Response *r = f.frame->response;
			if (r->status != 0 || r->get_bundles == NULL || r->get_bundles->n_bundles != 1) {
				errors++;
			} else if (r->get_bundles->bundles[0]->one_time_prekey != NULL) {
				uint32_t id = r->get_bundles->bundles[0]->one_time_prekey->id;
				if (id < 1 || id > 100)
					out_of_range++;
				else if (hits[id]++ > 0)
					dup++;
				with++;
			} else {
				without++;
			}
			wire__frame_free(&f);
		}
		close(fds[i]);
	}
	IT_EQ(errors, 0);
	IT_EQ(dup, 0);
	IT_EQ(out_of_range, 0);
	IT_EQ(with, 100);
	IT_EQ(without, FETCHERS * EACH - 100);
	close(tina.fd);
}

static void prekeys_once_under_parallel_fetches(void)
{
	prekeys_once(s.port);
}

/* The same with two loop threads: the fetchers' connections are spread over both (SO_REUSEPORT), so
 * fetches run concurrently, not only interleaved on one loop. */
static void prekeys_once_under_parallel_fetches_two_workers(void)
{
	srv w;
	const char *extra[] = {"--workers=2", NULL};
	srv_start(&w, extra);
	char *log = srv_log(&w);
	IT_CHECK(log != NULL && strstr(log, "(2 workers") != NULL);
	free(log);
	prekeys_once(w.port);
	IT_EQ(srv_stop(&w), 0);
	srv_cleanup(&w);
}

static void bundle_rate_limit(void)
{
	tuser rita;
	make_acct(&rita, "rita", 5);
	uint8_t pk[32], sk[64];
	int fd;
	IT_EQ(pw_register(s.port, "greedy", pk, sk, &fd), PARLEY_OK);
	int limited = 0;
	uint32_t retry = 0;
	for (int i = 0; i < 200 && !limited; i++) {
		Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
		Parley__Wire__GetBundlesRequest g = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
		req.id = (uint64_t)i + 1;
		req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
		req.get_bundles = &g;
		g.handle = "rita";
		wire_frame f;
		int st = pw_call(fd, &req, &f);
		if (st == PARLEY_E_RATE_LIMITED) {
			limited = 1;
			retry = (uint32_t)f.frame->response->retry_after_ms;
		}
		if (st >= 0)
			wire__frame_free(&f);
	}
	IT_CHECK(limited);
	IT_CHECK(retry > 0);
	/* another requester is not affected */
	int fd2;
	IT_EQ(pw_register(s.port, "modest", pk, sk, &fd2), PARLEY_OK);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetBundlesRequest g = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
	req.id = 1;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
	req.get_bundles = &g;
	g.handle = "rita";
	IT_EQ(pw_call(fd2, &req, NULL), PARLEY_OK);
	close(fd);
	close(fd2);
	close(rita.fd);
}

static tuser alice, bob;

static void device_lists(void)
{
	make_acct(&alice, "alice", 10);
	make_acct(&bob, "bob", 10);
	Parley__Wire__Request req;
	Parley__Wire__SendMessageRequest sm;
	Parley__Wire__OutgoingMessage om, *omp;
	wire_frame f;
	/* device 2 does not exist, device 1 is missing */
	build_send(&req, &sm, &om, &omp, 11, "bob", 2, bob.regid, "x", 1);
	IT_EQ(pw_call(alice.fd, &req, &f), PARLEY_E_MISMATCHED_DEVICES);
	Parley__Wire__SendMessageResponse *r = f.frame->response->send_message;
	IT_CHECK(r != NULL && r->n_missing_devices == 1 && r->missing_devices[0] == 1);
	IT_CHECK(r != NULL && r->n_extra_devices == 1 && r->extra_devices[0] == 2);
	wire__frame_free(&f);
	/* right device, stale registration id */
	build_send(&req, &sm, &om, &omp, 12, "bob", 1, bob.regid ^ 1, "x", 1);
	IT_EQ(pw_call(alice.fd, &req, &f), PARLEY_E_STALE_DEVICES);
	r = f.frame->response->send_message;
	IT_CHECK(r != NULL && r->n_stale_devices == 1 && r->stale_devices[0] == 1);
	wire__frame_free(&f);
	/* oversized content */
	size_t big = 40000;
	uint8_t *content = calloc(1, big);
	build_send(&req, &sm, &om, &omp, 13, "bob", 1, bob.regid, content, big);
	IT_EQ(pw_call(alice.fd, &req, NULL), PARLEY_E_TOO_LARGE);
	free(content);
	/* that nothing was queued by the refused sends is checked by the next test: bob's first envelopes
	 * are all send_many's */
	close(bob.fd);
}

static int seen[10000];

static void offline_then_online_ten_thousand(void)
{
	/* bob is offline (closed above); alice sends 4,000; bob connects and receives them in order, while
	 * alice sends 6,000 more that reach him live */
	memset(seen, 0, sizeof seen);
	IT_EQ(send_many(&alice, &bob, 0, 4000, 200), 4000);
	IT_EQ(reconnect(&bob), PARLEY_OK);
	IT_EQ(send_many(&alice, &bob, 4000, 6000, 200), 6000);
	int in_order = 0;
	foreign_envelopes = 0;
	IT_EQ(receive(&bob, seen, 10000, 10000, -1, &in_order), 10000);
	IT_CHECK(in_order);
	IT_EQ(foreign_envelopes, 0); /* device_lists' refused sends queued nothing */
	int missing = 0, dups = 0;
	for (int i = 0; i < 10000; i++) {
		missing += seen[i] == 0;
		dups += seen[i] > 1;
	}
	IT_EQ(missing, 0);
	IT_EQ(dups, 0);
	/* everything was acked: a reconnect delivers nothing more */
	close(bob.fd);
	IT_EQ(reconnect(&bob), PARLEY_OK);
	int extra = receive(&bob, seen, 10000, 1, -1, &in_order);
	IT_EQ(extra, 0);
	close(bob.fd);
}

/* Waits for a push of the given kind; returns it in *out (wire__frame_free after) or -1. Other frames
 * are skipped; envelopes among them are acked so they are not redelivered later. */
static int wait_push(int fd, int body_case, wire_frame *out, int timeout_ms)
{
	for (;;) {
		wire_frame f;
		if (pw_recv(fd, &f, timeout_ms) != 0)
			return -1;
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH && (int)f.frame->push->body_case == body_case) {
			*out = f;
			return 0;
		}
		wire__frame_free(&f);
	}
}

static int send_typing(int fd, const char *to, int started)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__TypingRequest t = PARLEY__WIRE__TYPING_REQUEST__INIT;
	req.id = 777;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_TYPING;
	req.typing = &t;
	t.recipient = (char *)to;
	t.started = started;
	t.timestamp = 1;
	return pw_call(fd, &req, NULL);
}

static int send_contact(int fd, const char *handle, int accept)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ContactRequest c = PARLEY__WIRE__CONTACT_REQUEST__INIT;
	req.id = 778;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_CONTACT;
	req.contact = &c;
	c.handle = (char *)handle;
	c.accept = accept;
	return pw_call(fd, &req, NULL);
}

static void typing_and_presence(void)
{
	/* alice wrote to bob above and bob accepts her now (message requests: both ways needed); carol
	 * shares nothing with bob */
	wire_frame f;
	IT_EQ(reconnect(&bob), PARLEY_OK);
	IT_EQ(send_contact(bob.fd, "alice", 1), PARLEY_OK);
	/* the accept came after bob's "online" (nobody to tell then): say it again with a new connection */
	close(bob.fd);
	IT_EQ(reconnect(&bob), PARLEY_OK);
	/* alice may still hold the "offline" from bob's earlier disconnect: the next change is "online" */
	int online = 0;
	for (int i = 0; i < 4 && !online; i++) {
		if (wait_push(alice.fd, PARLEY__WIRE__PUSH__BODY_PRESENCE, &f, 5000) != 0)
			break;
		IT_CHECK(strcmp(f.frame->push->presence->handle, "bob") == 0);
		online = f.frame->push->presence->online;
		wire__frame_free(&f);
	}
	IT_CHECK(online);
	IT_EQ(send_typing(alice.fd, "bob", 1), PARLEY_OK);
	IT_EQ(wait_push(bob.fd, PARLEY__WIRE__PUSH__BODY_TYPING, &f, 5000), 0);
	if (f.frame) {
		IT_CHECK(strcmp(f.frame->push->typing->sender_handle, "alice") == 0);
		IT_CHECK(f.frame->push->typing->started);
		wire__frame_free(&f);
	}
	tuser carol;
	make_acct(&carol, "carol", 1);
	IT_EQ(send_typing(carol.fd, "bob", 1), PARLEY_E_NOT_ACCEPTED);
	close(carol.fd);
	close(bob.fd);
	IT_EQ(wait_push(alice.fd, PARLEY__WIRE__PUSH__BODY_PRESENCE, &f, 5000), 0);
	if (f.frame) {
		IT_CHECK(strcmp(f.frame->push->presence->handle, "bob") == 0);
		IT_CHECK(!f.frame->push->presence->online);
		wire__frame_free(&f);
	}
}

/* Collects envelopes pushed on fd until none comes for quiet_ms; records up to max server ids. */
static int collect(int fd, uint64_t *ids, int max, int quiet_ms)
{
	int got = 0;
	wire_frame f;
	while (pw_recv(fd, &f, quiet_ms) == 0) {
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH &&
		    f.frame->push->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE) {
			if (got < max)
				ids[got] = f.frame->push->envelope->server_id;
			got++;
		}
		wire__frame_free(&f);
	}
	return got;
}

static int send_ack(int fd, uint64_t *ids, size_t n)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AckRequest ack = PARLEY__WIRE__ACK_REQUEST__INIT;
	req.id = 7000000;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
	req.ack = &ack;
	ack.server_ids = ids;
	ack.n_server_ids = n;
	return pw_send_request(fd, &req);
}

/* With 300 queued and max_inflight (100) in flight, an ack repeating one pushed id 100 times plus ids
 * never pushed to this device (another device's, made up, 0) reopens the window by exactly one (its one
 * real id), not by the backlog; acking the real ids in flight then reopens it by exactly that many. */
static void forged_acks_keep_window(void)
{
	tuser carol, erin;
	uint64_t ids[400] = {0}, erin_id = 0;
	make_acct(&carol, "mallory", 0);
	make_acct(&erin, "erin", 0);
	close(carol.fd);
	IT_EQ(send_many(&alice, &erin, 0, 1, 1), 1);
	IT_EQ(collect(erin.fd, &erin_id, 1, 1000), 1);
	IT_EQ(send_many(&alice, &carol, 0, 300, 100), 300);
	IT_EQ(reconnect(&carol), PARLEY_OK);
	IT_EQ(collect(carol.fd, ids, 400, 1000), 100);
	uint64_t forged[104];
	for (int i = 0; i < 100; i++)
		forged[i] = ids[0];
	forged[100] = erin_id;
	forged[101] = 0;
	forged[102] = ids[99] + 1000;
	forged[103] = UINT64_MAX;
	IT_EQ(send_ack(carol.fd, forged, 100), 0); /* at most 100 ids per AckRequest */
	IT_EQ(send_ack(carol.fd, forged + 100, 4), 0);
	IT_EQ(collect(carol.fd, ids + 100, 300, 1000), 1);
	IT_EQ(send_ack(carol.fd, ids + 1, 100), 0); /* the 100 really in flight */
	IT_EQ(collect(carol.fd, ids + 101, 299, 1000), 100);
	close(carol.fd);
	close(erin.fd);
}

static void unacked_redelivered_and_sigkill(void)
{
	/* 300 messages acknowledged to alice; bob acks only the first 100 he reads. The server keeps at
	 * most max_inflight (100) unacknowledged envelopes in flight, so he sees 200 and then nothing */
	memset(seen, 0, sizeof seen);
	IT_EQ(send_many(&alice, &bob, 0, 300, 100), 300);
	IT_EQ(reconnect(&bob), PARLEY_OK);
	int in_order;
	IT_EQ(receive(&bob, seen, 10000, 300, 100, &in_order), 200);
	close(bob.fd);
	usleep(200000); /* the acks of the first 100 are processed */
	/* SIGKILL right after alice's sends were acknowledged: nothing acknowledged may be lost */
	IT_EQ(send_many(&alice, &bob, 300, 100, 100), 100);
	/* a clean restart first, then more acknowledged sends and a SIGKILL */
	close(alice.fd);
	IT_EQ(srv_stop(&s), 0);
	srv_restart(&s);
	IT_EQ(reconnect(&alice), PARLEY_OK);
	IT_EQ(send_many(&alice, &bob, 400, 100, 100), 100);
	close(alice.fd);
	srv_kill9(&s);
	srv_restart(&s);
	memset(seen, 0, sizeof seen);
	IT_EQ(reconnect(&bob), PARLEY_OK);
	IT_EQ(receive(&bob, seen, 10000, 400, -1, &in_order), 400); /* 200 unacked + 200 new */
	IT_CHECK(in_order);
	int ok = 1;
	for (int i = 0; i < 100; i++)
		ok &= seen[i] == 0; /* acked ones are gone */
	for (int i = 100; i < 500; i++)
		ok &= seen[i] == 1;
	IT_CHECK(ok);
	close(bob.fd);
}

int main(void)
{
	/* offline_then_online_ten_thousand fills a whole queue_limit (10,000) from one sender: the
	 * per-sender share (queue_sender_share, t14_flood) would refuse it at half */
	const char *extra[] = {"--queue_sender_share=100", NULL};
	srv_start(&s, extra);
	IT_RUN(prekeys_once_under_parallel_fetches);
	IT_RUN(prekeys_once_under_parallel_fetches_two_workers);
	IT_RUN(bundle_rate_limit);
	IT_RUN(device_lists);
	IT_RUN(offline_then_online_ten_thousand);
	IT_RUN(typing_and_presence);
	IT_RUN(forged_acks_keep_window);
	IT_RUN(unacked_redelivered_and_sigkill);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
