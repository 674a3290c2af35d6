/* t14: one sender cannot deny others a device's queue or delivery window (security items 7 and 1).
 *
 *   sender_share:    with queue_limit 20 and queue_sender_share 50, a flooder's 11th envelope to an
 *                    offline device is refused with SENDER_QUEUE_FULL, and another sender still queues
 *                    its 10 (before: the flooder filled all 20 and everyone else got QUEUE_FULL).
 *   send_rate_limit: with send_rate_burst 5, an account's 6th immediate send is SEND_RATE_LIMITED
 *                    while another account still sends.
 *   poison_does_not_starve: a device that never acknowledges 100 envelopes (as a client that cannot
 *                    decrypt them and leaves them on the server) still gets the 5 envelopes queued
 *                    behind them once each was pushed max_redeliveries times: they are moved to the
 *                    back of the queue (counted), never dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/error.h>

#include "harness.h"

typedef struct tuser {
	char handle[33];
	uint8_t pk[32], sk[64];
	uint32_t regid;
	int fd;
	uint64_t next_id;
} tuser;

static srv s;

static void make_acct(tuser *a, const char *handle)
{
	memset(a, 0, sizeof *a);
	snprintf(a->handle, sizeof a->handle, "%s", handle);
	a->next_id = 100;
	IT_EQ(pw_register(s.port, handle, a->pk, a->sk, &a->fd), PARLEY_OK);
	IT_EQ(pw_upload_keys(a->fd, &a->regid, 0, 1), PARLEY_OK);
}

static int reconnect(tuser *a)
{
	uint8_t nonce[32];
	a->fd = pw_connect(s.port, nonce);
	return pw_auth(a->fd, nonce, a->handle, 1, a->sk);
}

/* One envelope with `body` to device 1 of `to`; returns the response status. */
static int send1(tuser *from, const tuser *to, const char *body)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *omp = &om;
	req.id = from->next_id++;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	sm.recipient = (char *)to->handle;
	sm.timestamp = req.id;
	sm.n_messages = 1;
	sm.messages = &omp;
	om.device_id = 1;
	om.registration_id = to->regid;
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	om.content.data = (uint8_t *)body;
	om.content.len = strlen(body);
	return pw_call(from->fd, &req, NULL);
}

static void start(const char *const *extra)
{
	srv_start(&s, extra);
}

static void stop(void)
{
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
}

static void sender_share(void)
{
	const char *extra[] = {"--queue_limit=20", "--queue_sender_share=50", NULL};
	tuser v, m, l;
	start(extra);
	make_acct(&v, "victim");
	make_acct(&m, "mallory");
	make_acct(&l, "legit");
	close(v.fd); /* offline: everything queues */
	for (int i = 0; i < 10; i++)
		IT_EQ(send1(&m, &v, "flood"), PARLEY_OK);
	IT_EQ(send1(&m, &v, "flood"), PARLEY_E_SENDER_QUEUE_FULL);
	IT_EQ(send1(&m, &v, "flood"), PARLEY_E_SENDER_QUEUE_FULL);
	for (int i = 0; i < 10; i++)
		IT_EQ(send1(&l, &v, "real"), PARLEY_OK);
	/* the queue itself is full now: the usual error for everyone */
	IT_EQ(send1(&l, &v, "real"), PARLEY_E_QUEUE_FULL);
	IT_CHECK(metric_value(s.port, "parley_relay_sender_refused_total") >= 2);
	close(m.fd);
	close(l.fd);
	stop();
}

static void send_rate_limit(void)
{
	const char *extra[] = {"--send_rate_burst=5", "--send_rate_per_min=60", NULL};
	tuser v, m, l;
	start(extra);
	make_acct(&v, "victim");
	make_acct(&m, "mallory");
	make_acct(&l, "legit");
	for (int i = 0; i < 5; i++)
		IT_EQ(send1(&m, &v, "fast"), PARLEY_OK);
	IT_EQ(send1(&m, &v, "fast"), PARLEY_E_SEND_RATE_LIMITED);
	IT_EQ(send1(&l, &v, "real"), PARLEY_OK);
	close(v.fd);
	close(m.fd);
	close(l.fd);
	stop();
}

/* One connection of v: for hold_ms, acks every envelope that is not "poison"; counts them. */
static void one_connection(tuser *v, int hold_ms, int *good, int *poison)
{
	wire_frame f;
	IT_EQ(reconnect(v), PARLEY_OK);
	while (pw_recv(v->fd, &f, hold_ms) == 0) {
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH &&
		    f.frame->push->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE) {
			Parley__Wire__Envelope *e = f.frame->push->envelope;
			if (e->content.len == 6 && memcmp(e->content.data, "poison", 6) == 0) {
				(*poison)++;
			} else {
				Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
				Parley__Wire__AckRequest ack = PARLEY__WIRE__ACK_REQUEST__INIT;
				uint64_t id = e->server_id;
				req.id = v->next_id++;
				req.body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
				req.ack = &ack;
				ack.server_ids = &id;
				ack.n_server_ids = 1;
				IT_EQ(pw_send_request(v->fd, &req), 0);
				if (e->content.len == 4 && memcmp(e->content.data, "good", 4) == 0)
					(*good)++;
			}
		}
		wire__frame_free(&f);
	}
	close(v->fd);
	usleep(200000); /* the server handles the close */
}

static void poison_does_not_starve(void)
{
	const char *extra[] = {"--max_redeliveries=2", "--redelivery_grace_ms=300", NULL};
	tuser v, st, l;
	int good = 0, poison = 0, conns = 0;
	start(extra);
	make_acct(&v, "victim");
	make_acct(&st, "stranger");
	make_acct(&l, "legit");
	close(v.fd);
	IT_EQ(send1(&st, &v, "hello"), PARLEY_OK); /* the one the device can read: it acks it */
	for (int i = 0; i < 100; i++)
		IT_EQ(send1(&st, &v, "poison"), PARLEY_OK);
	for (int i = 0; i < 5; i++)
		IT_EQ(send1(&l, &v, "good"), PARLEY_OK);
	/* each connection lasts 1 s, past the grace; it never acks a poison envelope */
	while (good < 5 && conns < 6) {
		one_connection(&v, 1000, &good, &poison);
		conns++;
	}
	IT_EQ(good, 5);
	IT_CHECK(conns <= 3); /* pushed twice unacknowledged, then behind the good ones */
	IT_CHECK(metric_value(s.port, "parley_relay_requeued_total") >= 100);
	/* never dropped: the poison envelopes are still there, after the good ones */
	poison = 0;
	one_connection(&v, 1000, &good, &poison);
	IT_EQ(poison, 100);
	close(st.fd);
	close(l.fd);
	stop();
}

int main(void)
{
	IT_RUN(sender_share);
	IT_RUN(send_rate_limit);
	IT_RUN(poison_does_not_starve);
	return it_failures ? 1 : 0;
}
