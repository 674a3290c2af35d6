/* t35: channel threads and the GATEWAY role (docs/protocol.md §13.6), against a real parleyd driven on
 * the wire (raw sockets; staff lists and thread events signed here with lib/wire's codecs).
 *
 *   enrol       an admin's code with role gateway, the join, the list naming it GATEWAY; a list naming
 *               the gateway as an agent, or a code of an unknown role: refused.
 *   open        the gateway opens an sms thread (channel, channel_user, gateway, verification 1 in the
 *               ThreadInfo; members: the gateway, the admins and the default agents, never the gateway's
 *               own "default agent" rule); the same number again: the same thread; another number, or
 *               the same number on another channel: another thread; thread_max_open_per_customer
 *               counts per channel customer.
 *   refusals    a customer, an agent and an admin opening a channel thread: NOT_ENTITY_GATEWAY; bad
 *               channels and channel users: CHANNEL_INVALID; a native customer with a channel user and a
 *               gateway opening a native thread: CHANNEL_INVALID.
 *   signed      the channel customer is the one the gateway's OPEN signs: a request naming another
 *               number, another channel, a channel beside a native OPEN or none beside a channel OPEN is
 *               CHANNEL_INVALID, and neither opens a thread nor gives back the open thread of the
 *               number it names (the one-open-thread rule keys on the signed values).
 *   never_staff the gateway cannot be added, handed, forwarded to, lock, add, pay, list the entity's
 *               threads, become an admin or the primary admin; it closes its own thread (the customer).
 *   routing     the gateway's message reaches the admins and default agents (as a customer's), the
 *               staff's answer reaches the gateway.
 *   removal     a gateway removed from the entity stays the customer of its threads and opens no more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <parley/error.h>

#include "harness.h"
#include "staffmodel.h"
#include "threadwire.h"
#include "wire/stafflist.h"
#include "wire/threadev.h"

#define SMS 2
#define WABA 3
#define WEBCHAT 1
#define NUM1 "+15551234567"
#define NUM2 "+15557654321"

static srv S;
static tacct P, A2, G, H, W, C, O; /* primary, admin, default agent, plain agent, gateway, customer, other */
static model acme;
static uint64_t T1; /* W's sms thread for NUM1 */

static void setup(void)
{
	const char *extra[] = {"--thread_max_open_per_customer=2", NULL};
	srv_start(&S, extra);
	sm_next_id = 0;
	sm_mk_many(S.port, 1, "pat ada gus hal wendy cleo otto", (tacct *[]){&P, &A2, &G, &H, &W, &C, &O});
	ent_create(&P, &acme, "acme", 0);
	ent_add(&P, &acme, &A2, WIRE_ROLE_ADMIN, 0);
	ent_add(&P, &acme, &G, WIRE_ROLE_AGENT, WIRE_RULE_DEFAULT_AGENT);
	ent_add(&P, &acme, &H, WIRE_ROLE_AGENT, 0);
}

static tev open_ev(const tacct *a)
{
	return ev_by(a, &acme, 0, WIRE_THREADEV_OPEN, a->id, 1, NULL);
}

/* the gateway's OPEN for a channel customer */
static tev chan_ev(uint32_t channel, const char *user)
{
	return ev_open_channel(&W, &acme, channel, user);
}

static void test_enrol(void)
{
	char code[32];
	uint64_t req = 0;
	dynbuf l;

	/* a code of an unknown role */
	IT_EQ(sm_code_role(P.fd, "acme", 0, WIRE_ROLE_GATEWAY + 1, NULL, 0), PARLEY_E_INVAL);
	/* the gateway's code: the list must name it GATEWAY, as the code says (an agent: refused) */
	IT_EQ(sm_code_role(P.fd, "acme", 0, WIRE_ROLE_GATEWAY, code, sizeof(code)), PARLEY_OK);
	IT_EQ(sm_join(W.fd, "acme", code, NULL, &req, NULL), PARLEY_OK);
	sm_model_set(&acme, &W, WIRE_ROLE_AGENT, 0, 0);
	sm_sign(&acme, acme.version + 1, NULL, &l);
	IT_EQ(sm_decide(P.fd, "acme", req, 1, &l, NULL, 0, NULL), PARLEY_E_STAFF_LIST_INVALID);
	dynbuf__free(&l);
	/* its own rules claim default agent, initiate and pay: a gateway's rules are ignored */
	sm_model_set(&acme, &W, WIRE_ROLE_GATEWAY, 0,
		     WIRE_RULE_DEFAULT_AGENT | WIRE_RULE_MAY_INITIATE | WIRE_RULE_MAY_PAY);
	sm_sign(&acme, acme.version + 1, NULL, &l);
	IT_EQ(sm_decide(P.fd, "acme", req, 1, &l, NULL, 0, NULL), PARLEY_OK);
	acme.version++;
	dynbuf__free(&l);
}

static void test_open(void)
{
	tev ev = chan_ev(SMS, NUM1);
	tinfo t, t2;

	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, NUM1, &ev, &t), PARLEY_OK);
	T1 = t.id;
	IT_EQ(t.channel, SMS);
	IT_CHECK(strcmp(t.channel_user, NUM1) == 0);
	IT_CHECK(strcmp(t.gateway, "wendy") == 0);
	IT_EQ(t.verification, 1); /* sms: the carrier vouches for the number */
	/* the gateway (its customer), the admins and the default agent; not the plain agent */
	IT_EQ(t.n_members, 4);
	IT_CHECK(t.n_members > 0 && t.members[0] == W.id);
	IT_CHECK(has_member(&t, P.id) && has_member(&t, A2.id) && has_member(&t, G.id));
	IT_CHECK(!has_member(&t, H.id));
	/* the same channel customer again: its open thread continues */
	ev = chan_ev(SMS, NUM1);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, NUM1, &ev, &t2), PARLEY_OK);
	IT_EQ(t2.id, T1);
	/* another number: another thread; the same number on waba: another thread too */
	ev = chan_ev(SMS, NUM2);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, NUM2, &ev, &t2), PARLEY_OK);
	IT_CHECK(t2.id != T1);
	IT_CHECK(strcmp(t2.channel_user, NUM2) == 0);
	ev = chan_ev(WABA, NUM1);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, WABA, NUM1, &ev, &t2), PARLEY_OK);
	IT_CHECK(t2.id != T1);
	IT_EQ(t2.channel, WABA);
	/* webchat: an opaque session id, unverified */
	ev = chan_ev(WEBCHAT, "sess-42 / tab 1");
	IT_EQ(th_open_channel(W.fd, "acme", NULL, WEBCHAT, "sess-42 / tab 1", &ev, &t2), PARLEY_OK);
	IT_EQ(t2.verification, 0);
	IT_EQ(t2.channel, WEBCHAT);
	/* the gateway now has 4 open threads although thread_max_open_per_customer is 2: the bound counts
	 * per channel customer, whose thread ThreadGet shows the same */
	IT_EQ(th_get(W.fd, T1, &t2, NULL), PARLEY_OK);
	IT_EQ(t2.channel, SMS);
	IT_CHECK(strcmp(t2.channel_user, NUM1) == 0);
	IT_CHECK(strcmp(t2.gateway, "wendy") == 0);
	/* a native thread of a customer says nothing of a channel */
	ev = open_ev(&C);
	IT_EQ(th_open(C.fd, "acme", NULL, &ev, &t2), PARLEY_OK);
	IT_EQ(t2.channel, 0);
	IT_CHECK(t2.channel_user[0] == '\0' && t2.gateway[0] == '\0');
	IT_EQ(t2.verification, 0);
	/* ... and never has the gateway as a member, whatever its own "default agent" rule says */
	IT_CHECK(!has_member(&t2, W.id));
	IT_CHECK(has_member(&t2, G.id));
}

static void test_refusals(void)
{
	char long_user[70];
	const tacct *not_gw[] = {&C, &G, &P};
	tev ev;

	for (size_t i = 0; i < sizeof(not_gw) / sizeof(not_gw[0]); i++) {
		ev = open_ev(not_gw[i]);
		IT_EQ(th_open_channel(not_gw[i]->fd, "acme", NULL, SMS, NUM1, &ev, NULL), PARLEY_E_NOT_ENTITY_GATEWAY);
	}
	/* a gateway of acme only: the other user, not a member at all */
	ev = open_ev(&O);
	IT_EQ(th_open_channel(O.fd, "acme", NULL, WEBCHAT, "s1", &ev, NULL), PARLEY_E_NOT_ENTITY_GATEWAY);
	/* the gateway with a malformed channel or channel user */
	const struct {
		uint32_t channel;
		const char *user;
	} bad[] = {{5, "x"}, {SMS, "15551234567"}, {SMS, "+1555"}, {WABA, "+1555123456789012"},
		   {SMS, "+1555 123 4567"}, {WEBCHAT, ""}, {WEBCHAT, "tab\there"}, {4, NULL}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ev = open_ev(&W);
		IT_EQ(th_open_channel(W.fd, "acme", NULL, bad[i].channel, bad[i].user, &ev, NULL),
		      PARLEY_E_CHANNEL_INVALID);
	}
	memset(long_user, 'a', 65);
	long_user[65] = '\0';
	ev = open_ev(&W);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, WEBCHAT, long_user, &ev, NULL), PARLEY_E_CHANNEL_INVALID);
	long_user[64] = '\0';
	ev = chan_ev(WEBCHAT, long_user);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, WEBCHAT, long_user, &ev, NULL), PARLEY_OK);
	/* a native customer naming a channel user; a gateway opening a native thread */
	ev = open_ev(&O);
	IT_EQ(th_open_channel(O.fd, "acme", NULL, 0, "x", &ev, NULL), PARLEY_E_CHANNEL_INVALID);
	ev = open_ev(&W);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, 0, NULL, &ev, NULL), PARLEY_E_CHANNEL_INVALID);
	/* staff opening toward the gateway (a member is never a native customer) */
	sm_model_set(&acme, &G, WIRE_ROLE_AGENT, 0, WIRE_RULE_DEFAULT_AGENT | WIRE_RULE_MAY_INITIATE);
	IT_EQ(sm_staff(P.fd, &acme, acme.version + 1), PARLEY_OK);
	acme.version++;
	ev = ev_by(&G, &acme, 0, WIRE_THREADEV_OPEN, W.id, 1, NULL);
	IT_EQ(th_open(G.fd, "acme", "wendy", &ev, NULL), PARLEY_E_THREAD_EVENT_INVALID);
}

/* A compromised server front or a buggy gateway pairing a signed OPEN with another channel customer:
 * the server takes the channel customer from the signature only. */
static void test_signed(void)
{
	const char *third = "+15550001111";
	size_t n0 = 0, n1 = 0;
	tev ev;

	IT_EQ(th_list(W.fd, NULL, &n0), PARLEY_OK);
	/* signed for NUM1 (whose thread T1 is open), sent as another number: no new thread for it, and
	 * not T1 given back either */
	ev = chan_ev(SMS, NUM1);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, third, &ev, NULL), PARLEY_E_CHANNEL_INVALID);
	/* signed for a new number, sent as NUM1: T1 is not given back for it */
	ev = chan_ev(SMS, third);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, NUM1, &ev, NULL), PARLEY_E_CHANNEL_INVALID);
	/* the same number on another channel */
	ev = chan_ev(WABA, NUM1);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, NUM1, &ev, NULL), PARLEY_E_CHANNEL_INVALID);
	/* a native OPEN (the layout before channels were signed) beside a channel */
	ev = open_ev(&W);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, third, &ev, NULL), PARLEY_E_CHANNEL_INVALID);
	/* a native customer's request with a channel OPEN (the server would keep a "native" thread whose
	 * OPEN says sms) */
	ev = ev_open_channel(&C, &acme, SMS, third);
	IT_EQ(th_open_channel(C.fd, "acme", NULL, 0, NULL, &ev, NULL), PARLEY_E_CHANNEL_INVALID);
	IT_EQ(th_list(W.fd, NULL, &n1), PARLEY_OK);
	IT_EQ(n1, n0);
}

static void test_never_staff(void)
{
	tinfo t, tc;
	tev ev;
	size_t n = 0;
	uint32_t dev = 1, regid = W.regid;

	IT_EQ(th_get(W.fd, T1, &t, NULL), PARLEY_OK);
	/* an admin adds the gateway to a customer's thread, or makes it the handling agent of its own */
	ev = open_ev(&C);
	IT_EQ(th_open(C.fd, "acme", NULL, &ev, &tc), PARLEY_OK);
	ev = ev_by(&P, &acme, tc.id, WIRE_THREADEV_ADD, W.id, tc.version + 1, NULL);
	IT_EQ(th_event(P.fd, tc.id, &ev), PARLEY_E_THREAD_EVENT_INVALID);
	ev = ev_by(&P, &acme, T1, WIRE_THREADEV_HANDLING, W.id, t.version + 1, NULL);
	IT_EQ(th_event(P.fd, T1, &ev), PARLEY_E_THREAD_EVENT_INVALID);
	/* an admin forwards to it */
	tev fw[2] = {ev_by(&P, &acme, tc.id, WIRE_THREADEV_ADD, W.id, tc.version + 1, NULL),
		     ev_by(&P, &acme, tc.id, WIRE_THREADEV_HANDLING, W.id, tc.version + 2, NULL)};
	IT_EQ(th_forward(&P, tc.id, &W, fw, 2, &dev, &regid, 1), PARLEY_E_NOT_ENTITY_MEMBER);
	/* the handling agent hands back to it */
	ev = ev_by(&P, &acme, T1, WIRE_THREADEV_HANDLING, G.id, t.version + 1, NULL);
	IT_EQ(th_event(P.fd, T1, &ev), PARLEY_OK);
	t.version++;
	ev = ev_by(&G, &acme, T1, WIRE_THREADEV_HANDBACK, W.id, t.version + 1, NULL);
	IT_EQ(th_event(G.fd, T1, &ev), PARLEY_E_THREAD_EVENT_INVALID);
	/* as an actor of staff events: it locks nothing, adds nobody */
	ev = ev_by(&W, &acme, T1, WIRE_THREADEV_LOCK, W.id, t.version + 1, NULL);
	IT_EQ(th_event(W.fd, T1, &ev), PARLEY_E_THREAD_EVENT_INVALID);
	ev = ev_by(&W, &acme, T1, WIRE_THREADEV_ADD, H.id, t.version + 1, NULL);
	IT_EQ(th_event(W.fd, T1, &ev), PARLEY_E_THREAD_EVENT_INVALID);
	/* its own MAY_PAY is ignored */
	IT_EQ(th_send_full(W.fd, T1, t.version, 1, NULL, NULL), PARLEY_E_PAYMENT_NOT_ALLOWED);
	/* it lists its own threads, not the entity's */
	IT_EQ(th_list(W.fd, "acme", NULL), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_EQ(th_list(W.fd, NULL, &n), PARLEY_OK);
	IT_EQ(n, 5);
	/* never an admin, never the primary */
	IT_EQ(sm_member(P.fd, &acme, &W, 0, 0, acme.version + 1, NULL), PARLEY_E_ALREADY_MEMBER);
	IT_EQ(sm_member(P.fd, &acme, &W, 0, 1, acme.version + 1, NULL), PARLEY_E_NEW_PRIMARY_NOT_ADMIN);
	/* the customer of its thread closes it; the next message from NUM1 opens a new one */
	IT_EQ(th_get(W.fd, T1, &t, NULL), PARLEY_OK);
	ev = ev_by(&W, &acme, T1, WIRE_THREADEV_CLOSE, 0, t.version + 1, NULL);
	IT_EQ(th_event(W.fd, T1, &ev), PARLEY_OK);
	ev = chan_ev(SMS, NUM1);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, NUM1, &ev, &t), PARLEY_OK);
	IT_CHECK(t.id != T1);
	T1 = t.id;
}

static void test_routing(void)
{
	tinfo t;

	IT_EQ(th_get(W.fd, T1, &t, NULL), PARLEY_OK);
	/* drain what the set-up left queued */
	(void)queued(S.port, &P, 1, NULL, T1, NULL);
	(void)queued(S.port, &G, 1, NULL, T1, NULL);
	(void)queued(S.port, &H, 1, NULL, T1, NULL);
	(void)queued(S.port, &W, 1, NULL, T1, NULL);
	IT_EQ(th_send(W.fd, T1, t.version), PARLEY_OK);
	IT_EQ(queued(S.port, &P, 1, NULL, T1, NULL), 1);
	IT_EQ(queued(S.port, &A2, 1, NULL, T1, NULL), 1);
	IT_EQ(queued(S.port, &G, 1, NULL, T1, NULL), 1);
	IT_EQ(queued(S.port, &H, 1, NULL, T1, NULL), 0);
	/* the staff's answer reaches the gateway */
	IT_EQ(th_send(G.fd, T1, t.version), PARLEY_OK);
	IT_EQ(queued(S.port, &W, 1, NULL, T1, NULL), 1);
}

static void test_removal(void)
{
	tinfo t;
	tev ev;

	ent_remove(&P, &acme, &W);
	/* still the customer of its threads: it reads them and the staff still write to it */
	IT_EQ(th_get(W.fd, T1, &t, NULL), PARLEY_OK);
	IT_CHECK(has_member(&t, W.id));
	IT_EQ(th_send(P.fd, T1, t.version), PARLEY_OK);
	IT_EQ(queued(S.port, &W, 1, NULL, T1, NULL), 1);
	/* but opens no channel thread any more */
	ev = chan_ev(SMS, NUM2);
	IT_EQ(th_open_channel(W.fd, "acme", NULL, SMS, NUM2, &ev, NULL), PARLEY_E_NOT_ENTITY_GATEWAY);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	setup();
	IT_RUN(test_enrol);
	IT_RUN(test_open);
	IT_RUN(test_refusals);
	IT_RUN(test_signed);
	IT_RUN(test_never_staff);
	IT_RUN(test_routing);
	IT_RUN(test_removal);
	IT_EQ(srv_stop(&S), 0);
	srv_cleanup(&S);
	return it_failures ? 1 : 0;
}
