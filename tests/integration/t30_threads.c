/* t30: threads, the group server (docs/protocol.md §13), against a real parleyd driven on the wire (raw
 * sockets; staff lists and thread events signed here with lib/wire's codecs).
 *
 *   open          a customer opens (members: customer + admins + default agents, from the signed staff
 *                 list), again (the same thread back), with a bad event (THREAD_EVENT_INVALID); staff
 *                 opens toward a customer only with MAY_INITIATE; thread_max_open_per_customer.
 *   fanout        one ThreadSend: one envelope per member device but the sender's (the customer's
 *                 second device included, a non-member none), durable: parleyd is killed -9 right after
 *                 the ack and every envelope is there after the restart; stale membership.
 *   payments      PAYMENT_NOT_ALLOWED without MAY_PAY; with it, a PAYMENT_REQUEST envelope.
 *   events        each kind allowed and refused by role, with the membership version chain; a close
 *                 ends sends and events.
 *   locking       first responder (lock_mode 1): the LOCK event with the first staff send, others
 *                 THREAD_LOCKED, admins exempt, the customer never locked out; unlock.
 *   removal       a staff member removed from the entity leaves its threads at once: no envelope.
 *   auth_table    every thread call x every role, one table of expected statuses.
 *   forward       an admin hands a thread to an agent: ADD + HANDLING + one payload per agent device in
 *                 one transaction; a non-admin, a non-staff agent, missing events, the wrong devices or
 *                 a stale registration id change nothing.
 *   lock_event    `thread lock` (ThreadEvent LOCK): a staff member of the thread locks an open thread;
 *                 the customer, an outsider, another entity's admin, a second lock: refused.
 *   routing       with a handling agent, the customer's message reaches that agent, the admins and the
 *                 customer's other device, not another member agent; a staff message reaches all.
 *   transfer      the handling agent forwards the thread on only with MAY_TRANSFER and only in a
 *                 ThreadForward (NOT_ENTITY_ADMIN without the rule, or for a member agent that does not
 *                 handle it; its HANDLING as a plain ThreadEvent: THREAD_EVENT_INVALID); with it, to a
 *                 member (HANDLING alone) and to a non-member (its ADD + HANDLING).
 *   rate_limit    ThreadSend takes from SendMessage's per-account bucket: SEND_RATE_LIMITED for both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "harness.h"
#include "staffmodel.h"
#include "threadwire.h"
#include "wire/stafflist.h"
#include "wire/threadev.h"

#define RATE_BURST 40 /* the server's send_rate_burst */
#define STR(x) #x
#define XSTR(x) STR(x)

/* ---- accounts and the staff model (staffmodel.h, shared with t23; threadwire.h, with t35) ---- */

static srv S;

/* ---- the cast ---- */

static tacct P, A2, G, H, C, O, R, Q; /* primary, admin, agents (default / plain / to remove), customer,
				       * other user, pending candidate */
static uint8_t c2_pk[32], c2_sk[64];
static uint32_t c2_dev;
static model acme, lockco;

static void reconnect(tacct *a)
{
	close(a->fd);
	a->fd = it_connect_as(S.port, a->handle, 1, a->sk);
	IT_CHECK(a->fd >= 0);
}

static void setup(void)
{
	/* a send bucket this test can empty (rate_limit), far above what the other tests send per account */
	const char *extra[] = {"--thread_max_open_per_customer=2", "--send_rate_burst=" XSTR(RATE_BURST),
			       "--send_rate_per_min=60", NULL};
	uint32_t regid;
	srv_start(&S, extra);
	sm_mk_many(S.port, 1, "pat ada gus hal cleo otto rex quinn", (tacct *[]){&P, &A2, &G, &H, &C, &O, &R, &Q});
	/* the customer's second device */
	crypto_sign_keypair(c2_pk, c2_sk);
	IT_EQ(it_add_device(C.fd, C.handle, c2_pk, c2_sk, &c2_dev), PARLEY_OK);
	int fd2 = it_connect_as(S.port, C.handle, c2_dev, c2_sk);
	IT_CHECK(fd2 >= 0);
	IT_EQ(pw_upload_keys(fd2, &regid, 1, 1), PARLEY_OK);
	close(fd2);

	ent_create(&P, &acme, "acme", 0);
	ent_add(&P, &acme, &A2, WIRE_ROLE_ADMIN, 0);
	ent_add(&P, &acme, &G, WIRE_ROLE_AGENT, WIRE_RULE_DEFAULT_AGENT | WIRE_RULE_MAY_PAY | WIRE_RULE_MAY_INITIATE);
	ent_add(&P, &acme, &H, WIRE_ROLE_AGENT, 0);
	ent_add(&P, &acme, &R, WIRE_ROLE_AGENT, WIRE_RULE_DEFAULT_AGENT);
	ent_create(&P, &lockco, "lockco", 1);
	ent_add(&P, &lockco, &G, WIRE_ROLE_AGENT, WIRE_RULE_DEFAULT_AGENT);
	ent_add(&P, &lockco, &H, WIRE_ROLE_AGENT, WIRE_RULE_DEFAULT_AGENT);
	/* Q: a pending join request on acme (never decided) */
	{
		char code[32];
		IT_EQ(sm_code(P.fd, acme.handle, 0, code, sizeof(code)), PARLEY_OK);
		IT_EQ(sm_join(Q.fd, acme.handle, code, NULL, NULL, NULL), PARLEY_OK);
	}
}

static uint64_t T;  /* the customer's acme thread */
static uint64_t TO; /* a thread G opened toward O */
static uint64_t L;  /* the customer's lockco thread */

static void test_open(void)
{
	tinfo t, t2;
	tev ev = ev_by(&C, &acme, 0, WIRE_THREADEV_OPEN, C.id, 1, NULL);

	IT_EQ(th_open(C.fd, "acme", NULL, &ev, &t), PARLEY_OK);
	T = t.id;
	IT_CHECK(T != 0);
	IT_EQ(t.version, 1);
	IT_EQ(t.status, PARLEY__WIRE__THREAD_STATUS__THREAD_OPEN);
	/* the customer first, then the admins and the default agents of the signed list; not H */
	IT_EQ(t.n_members, 5);
	IT_EQ(t.members[0], C.id);
	IT_CHECK(has_member(&t, P.id) && has_member(&t, A2.id) && has_member(&t, G.id) && has_member(&t, R.id));
	IT_CHECK(!has_member(&t, H.id));
	/* idempotent: the same thread back */
	IT_EQ(th_open(C.fd, "acme", NULL, &ev, &t2), PARLEY_OK);
	IT_EQ(t2.id, T);
	size_t n = 0;
	IT_EQ(th_get(C.fd, T, NULL, &n), PARLEY_OK);
	IT_EQ(n, 1); /* the OPEN event, stored as signed */

	/* events that do not hold */
	tev bad = ev_by(&O, &acme, 0, WIRE_THREADEV_OPEN, O.id, 1, C.sk); /* signed with another key */
	IT_EQ(th_open(O.fd, "acme", NULL, &bad, NULL), PARLEY_E_THREAD_EVENT_INVALID);
	bad = ev_by(&O, &acme, 0, WIRE_THREADEV_OPEN, C.id, 1, NULL); /* another customer as subject */
	IT_EQ(th_open(O.fd, "acme", NULL, &bad, NULL), PARLEY_E_THREAD_EVENT_INVALID);
	acme.version--; /* an older staff list */
	bad = ev_by(&O, &acme, 0, WIRE_THREADEV_OPEN, O.id, 1, NULL);
	acme.version++;
	IT_EQ(th_open(O.fd, "acme", NULL, &bad, NULL), PARLEY_E_THREAD_EVENT_INVALID);
	bad = ev_by(&O, &lockco, 0, WIRE_THREADEV_OPEN, O.id, 1, NULL); /* names another entity */
	IT_EQ(th_open(O.fd, "acme", NULL, &bad, NULL), PARLEY_E_THREAD_EVENT_INVALID);
	bad = ev_by(&O, &acme, 0, WIRE_THREADEV_OPEN, O.id, 1, NULL);
	IT_EQ(th_open(O.fd, "nosuch", NULL, &bad, NULL), PARLEY_E_NO_SUCH_ENTITY);
	/* a staff member is not a customer of its own entity */
	bad = ev_by(&H, &acme, 0, WIRE_THREADEV_OPEN, H.id, 1, NULL);
	IT_EQ(th_open(H.fd, "acme", NULL, &bad, NULL), PARLEY_E_THREAD_EVENT_INVALID);

	/* staff-initiated: MAY_INITIATE only, and at most thread_max_open_per_customer (2) */
	tev hi = ev_by(&H, &acme, 0, WIRE_THREADEV_OPEN, O.id, 1, NULL);
	IT_EQ(th_open(H.fd, "acme", "otto", &hi, NULL), PARLEY_E_NOT_ALLOWED_TO_INITIATE);
	tev gi = ev_by(&G, &acme, 0, WIRE_THREADEV_OPEN, O.id, 1, NULL);
	IT_EQ(th_open(G.fd, "acme", "otto", &gi, &t), PARLEY_OK);
	TO = t.id;
	IT_EQ(t.members[0], O.id);
	IT_CHECK(has_member(&t, G.id));
	IT_EQ(th_open(G.fd, "acme", "otto", &gi, &t2), PARLEY_OK);
	IT_CHECK(t2.id != t.id);
	IT_EQ(th_open(G.fd, "acme", "otto", &gi, NULL), PARLEY_E_TOO_MANY_THREADS);
	IT_EQ(th_open(C.fd, "acme", "otto", &gi, NULL), PARLEY_E_NOT_ENTITY_MEMBER); /* a customer initiates nothing */
	tev ni = ev_by(&G, &acme, 0, WIRE_THREADEV_OPEN, 9999, 1, NULL);
	IT_EQ(th_open(G.fd, "acme", "nobody", &ni, NULL), PARLEY_E_NO_SUCH_ACCOUNT);
}

static void test_fanout(void)
{
	uint64_t v = 0;
	uint32_t type = 0;
	/* a stale membership is refused with the current version */
	IT_EQ(th_send_full(C.fd, T, 7, 0, NULL, &v), PARLEY_E_STALE_MEMBERSHIP);
	IT_EQ(v, 1);
	IT_EQ(th_send_full(C.fd, T, 1, 0, NULL, &v), PARLEY_OK);
	IT_EQ(v, 1);
	/* acked means durable: kill -9 now, every envelope is there after the restart */
	srv_kill9(&S);
	srv_restart(&S);
	IT_EQ(queued(S.port, &C, 1, NULL, T, NULL), 0); /* the sending device keeps its own */
	IT_EQ(queued(S.port, &C, c2_dev, c2_sk, T, &type), 1);
	IT_EQ(type, PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_GROUP_MESSAGE);
	IT_EQ(queued(S.port, &P, 1, NULL, T, NULL), 1);
	IT_EQ(queued(S.port, &A2, 1, NULL, T, NULL), 1);
	IT_EQ(queued(S.port, &G, 1, NULL, T, NULL), 1);
	IT_EQ(queued(S.port, &R, 1, NULL, T, NULL), 1);
	IT_EQ(queued(S.port, &H, 1, NULL, T, NULL), 0); /* not a member */
	IT_EQ(queued(S.port, &O, 1, NULL, T, NULL), 0);
	tacct *all[] = {&P, &A2, &G, &H, &C, &O, &R, &Q};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		reconnect(all[i]);
	/* live: a connected member device is pushed the envelope at once */
	IT_EQ(th_send(G.fd, T, 1), PARLEY_OK);
	IT_CHECK(got_push(P.fd, PARLEY__WIRE__PUSH__BODY_ENVELOPE, T));
	IT_EQ(queued(S.port, &C, 1, NULL, T, NULL), 1);
	/* a non-member sends nothing */
	IT_EQ(th_send(H.fd, T, 1), PARLEY_E_NOT_THREAD_MEMBER);
	IT_EQ(th_send(C.fd, 424242, 1), PARLEY_E_NO_SUCH_THREAD);
}

static void test_payments(void)
{
	uint32_t type = 0;
	IT_EQ(th_send_full(C.fd, T, 1, 1, NULL, NULL), PARLEY_E_PAYMENT_NOT_ALLOWED);
	IT_EQ(th_send_full(R.fd, T, 1, 1, NULL, NULL), PARLEY_E_PAYMENT_NOT_ALLOWED); /* no MAY_PAY */
	IT_EQ(th_send_full(G.fd, T, 1, 1, NULL, NULL), PARLEY_OK);
	IT_EQ(queued(S.port, &C, 1, NULL, T, &type), 1);
	IT_EQ(type, PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PAYMENT_REQUEST);
}

static void test_events(void)
{
	uint64_t v = 1;
	tev e;
	tinfo t;

	e = ev_by(&H, &acme, T, WIRE_THREADEV_ADD, H.id, v + 1, NULL);
	IT_EQ(th_event(H.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* only an admin adds */
	e = ev_by(&P, &acme, T, WIRE_THREADEV_ADD, O.id, v + 1, NULL);
	IT_EQ(th_event(P.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* not staff */
	e = ev_by(&P, &acme, T, WIRE_THREADEV_ADD, H.id, v + 2, NULL);
	IT_EQ(th_event(P.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* not the next version */
	e = ev_by(&P, &acme, T, WIRE_THREADEV_ADD, H.id, v + 1, A2.sk);
	IT_EQ(th_event(P.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* not the caller's device key */
	e = ev_by(&P, &acme, T, WIRE_THREADEV_ADD, H.id, v + 1, NULL);
	IT_EQ(th_event(A2.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* another actor's event */
	IT_EQ(th_event(P.fd, T, &e), PARLEY_OK);
	v++;
	IT_CHECK(got_changed(H.fd)); /* the added member hears of it */
	IT_EQ(th_get(H.fd, T, &t, NULL), PARLEY_OK);
	IT_CHECK(has_member(&t, H.id));
	IT_EQ(t.version, v);
	e = ev_by(&A2, &acme, T, WIRE_THREADEV_ADD, H.id, v + 1, NULL);
	IT_EQ(th_event(A2.fd, T, &e), PARLEY_E_ALREADY_MEMBER);
	/* the old version is stale now */
	IT_EQ(th_send(C.fd, T, v - 1), PARLEY_E_STALE_MEMBERSHIP);
	IT_EQ(th_send(C.fd, T, v), PARLEY_OK);

	e = ev_by(&G, &acme, T, WIRE_THREADEV_HANDLING, G.id, v + 1, NULL);
	IT_EQ(th_event(G.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* only an admin sets it */
	e = ev_by(&P, &acme, T, WIRE_THREADEV_HANDLING, H.id, ++v, NULL);
	IT_EQ(th_event(P.fd, T, &e), PARLEY_OK);
	e = ev_by(&G, &acme, T, WIRE_THREADEV_HANDBACK, 0, v + 1, NULL);
	IT_EQ(th_event(G.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* not the handling agent */
	/* the handling agent holds the lock, then hands back: the lock goes with it */
	IT_EQ(th_get(H.fd, T, &t, NULL), PARLEY_OK);
	if (t.status == PARLEY__WIRE__THREAD_STATUS__THREAD_OPEN) {
		e = ev_by(&H, &acme, T, WIRE_THREADEV_LOCK, H.id, ++v, NULL);
		IT_EQ(th_event(H.fd, T, &e), PARLEY_OK);
		IT_EQ(th_get(H.fd, T, &t, NULL), PARLEY_OK);
	}
	IT_EQ(t.lock_holder, H.id);
	e = ev_by(&H, &acme, T, WIRE_THREADEV_HANDBACK, 0, ++v, NULL);
	IT_EQ(th_event(H.fd, T, &e), PARLEY_OK);
	IT_EQ(th_get(H.fd, T, &t, NULL), PARLEY_OK);
	IT_EQ(t.handling, 0);
	IT_EQ(t.lock_holder, 0);
	IT_EQ(t.status, PARLEY__WIRE__THREAD_STATUS__THREAD_OPEN);
	e = ev_by(&H, &acme, T, WIRE_THREADEV_REMOVE, G.id, v + 1, NULL);
	IT_EQ(th_event(H.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* an agent removes only itself */
	e = ev_by(&C, &acme, T, WIRE_THREADEV_REMOVE, C.id, v + 1, NULL);
	IT_EQ(th_event(C.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* the customer stays */
	e = ev_by(&H, &acme, T, WIRE_THREADEV_REMOVE, H.id, ++v, NULL);
	IT_EQ(th_event(H.fd, T, &e), PARLEY_OK);
	IT_EQ(th_send(H.fd, T, v), PARLEY_E_NOT_THREAD_MEMBER);
	IT_EQ(th_get(H.fd, T, NULL, NULL), PARLEY_E_NOT_THREAD_MEMBER);
	e = ev_by(&C, &acme, T, WIRE_THREADEV_LOCK, C.id, v + 1, NULL);
	IT_EQ(th_event(C.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* staff lock, not the customer */
	e = ev_by(&P, &acme, T, WIRE_THREADEV_UNLOCK, 0, v + 1, NULL);
	IT_EQ(th_event(P.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* not locked */
	e = ev_by(&G, &acme, T, WIRE_THREADEV_CLOSE, 0, v + 1, NULL);
	IT_EQ(th_event(G.fd, T, &e), PARLEY_E_THREAD_EVENT_INVALID); /* not admin, handling agent, customer */
	e = ev_by(&C, &acme, T, WIRE_THREADEV_CLOSE, 0, ++v, NULL);
	IT_EQ(th_event(C.fd, T, &e), PARLEY_OK);
	IT_EQ(th_send(C.fd, T, v), PARLEY_E_THREAD_CLOSED);
	e = ev_by(&P, &acme, T, WIRE_THREADEV_ADD, H.id, v + 1, NULL);
	IT_EQ(th_event(P.fd, T, &e), PARLEY_E_THREAD_CLOSED);
	size_t n = 0;
	IT_EQ(th_get(C.fd, T, &t, &n), PARLEY_OK);
	IT_EQ(n, v); /* every event, OPEN to CLOSE */
	IT_EQ(t.status, PARLEY__WIRE__THREAD_STATUS__THREAD_CLOSED);
}

static void test_locking(void)
{
	tinfo t;
	uint64_t v = 0;
	tev e = ev_by(&C, &lockco, 0, WIRE_THREADEV_OPEN, C.id, 1, NULL);
	IT_EQ(th_open(C.fd, "lockco", NULL, &e, &t), PARLEY_OK);
	L = t.id;
	IT_CHECK(has_member(&t, G.id) && has_member(&t, H.id));
	IT_EQ(th_send(C.fd, L, 1), PARLEY_OK); /* the customer never locks */
	IT_EQ(th_send(G.fd, L, 1), PARLEY_E_THREAD_EVENT_INVALID); /* a first response carries its LOCK */
	tev other = ev_by(&G, &lockco, L, WIRE_THREADEV_LOCK, G.id, 2, H.sk);
	IT_EQ(th_send_full(G.fd, L, 1, 0, &other, NULL), PARLEY_E_THREAD_EVENT_INVALID);
	tev lock = ev_by(&G, &lockco, L, WIRE_THREADEV_LOCK, G.id, 2, NULL);
	IT_EQ(th_send_full(G.fd, L, 1, 0, &lock, &v), PARLEY_OK);
	IT_EQ(v, 2);
	IT_EQ(th_get(C.fd, L, &t, NULL), PARLEY_OK);
	IT_EQ(t.lock_holder, G.id);
	IT_EQ(t.status, PARLEY__WIRE__THREAD_STATUS__THREAD_LOCKED);
	IT_EQ(th_send(H.fd, L, 2), PARLEY_E_THREAD_LOCKED);
	IT_EQ(th_send(G.fd, L, 2), PARLEY_OK);
	IT_EQ(th_send(P.fd, L, 2), PARLEY_OK); /* admins exempt on this entity */
	IT_EQ(th_send(C.fd, L, 2), PARLEY_OK);
	IT_EQ(th_send_full(G.fd, L, 2, 0, &lock, NULL), PARLEY_E_THREAD_EVENT_INVALID); /* no second lock */
	e = ev_by(&H, &lockco, L, WIRE_THREADEV_UNLOCK, 0, 3, NULL);
	IT_EQ(th_event(H.fd, L, &e), PARLEY_E_THREAD_EVENT_INVALID);
	e = ev_by(&G, &lockco, L, WIRE_THREADEV_UNLOCK, 0, 3, NULL);
	IT_EQ(th_event(G.fd, L, &e), PARLEY_OK);
	lock = ev_by(&H, &lockco, L, WIRE_THREADEV_LOCK, H.id, 4, NULL);
	IT_EQ(th_send_full(H.fd, L, 3, 0, &lock, &v), PARLEY_OK);
	IT_EQ(v, 4);
	IT_EQ(th_send(G.fd, L, 4), PARLEY_E_THREAD_LOCKED);
	e = ev_by(&P, &lockco, L, WIRE_THREADEV_UNLOCK, 0, 5, NULL);
	IT_EQ(th_event(P.fd, L, &e), PARLEY_OK); /* an admin unlocks */
	IT_EQ(th_get(C.fd, L, &t, NULL), PARLEY_OK);
	IT_EQ(t.lock_holder, 0);
}

static uint64_t T3; /* the customer's second acme thread, R removed from the entity meanwhile */

static void test_removal(void)
{
	tinfo t;
	tev e = ev_by(&C, &acme, 0, WIRE_THREADEV_OPEN, C.id, 1, NULL);
	IT_EQ(th_open(C.fd, "acme", NULL, &e, &t), PARLEY_OK); /* the first is closed: a new one */
	T3 = t.id;
	IT_CHECK(T3 != T && has_member(&t, R.id));
	IT_EQ(th_send(C.fd, T3, 1), PARLEY_OK);
	IT_EQ(queued(S.port, &R, 1, NULL, T3, NULL), 1);
	ent_remove(&P, &acme, &R);
	IT_EQ(th_send(C.fd, T3, 1), PARLEY_OK);
	IT_EQ(queued(S.port, &R, 1, NULL, T3, NULL), 0); /* nothing after the removal */
	IT_EQ(queued(S.port, &P, 1, NULL, T3, NULL), 2);
	IT_EQ(th_get(R.fd, T3, NULL, NULL), PARLEY_E_NOT_THREAD_MEMBER);
	IT_EQ(th_send(R.fd, T3, 1), PARLEY_E_NOT_THREAD_MEMBER);
	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	IT_CHECK(!has_member(&t, R.id));
}

/* ---- every thread call x every role ---- */

enum { R_ANON, R_OTHER, R_CUSTOMER, R_PENDING, R_AGENT, R_NONMEMBER, R_REMOVED, R_ADMIN, R_PRIMARY, NROLES };
enum { C_GET, C_LIST, C_SEND, C_HANDLING, C_OPEN_FOR, NCALLS };
static const char *const role_name[NROLES] = {"anonymous", "other", "customer", "pending", "agent",
					      "agent-not-member", "removed", "admin", "primary"};
static const char *const call_name[NCALLS] = {"get", "list", "send", "handling", "open_for"};

static void test_auth_table(void)
{
	/* T3: members C, P, A2, G; H is staff but not a member; R removed; Q pending; O nobody */
	const int U = PARLEY_E_UNAUTHENTICATED, NTM = PARLEY_E_NOT_THREAD_MEMBER, NEM = PARLEY_E_NOT_ENTITY_MEMBER,
		  BAD = PARLEY_E_THREAD_EVENT_INVALID, NI = PARLEY_E_NOT_ALLOWED_TO_INITIATE, OK = PARLEY_OK;
	static int want[NCALLS][NROLES];
	const int rows[NCALLS][NROLES] = {
		/*            anon other customer pending agent nonmember removed admin primary */
		[C_GET] = {U, NTM, OK, NTM, OK, NTM, NTM, OK, OK},
		[C_LIST] = {U, NEM, NEM, NEM, OK, OK, NEM, OK, OK},
		[C_SEND] = {U, NTM, OK, NTM, OK, NTM, NTM, OK, OK},
		[C_HANDLING] = {U, BAD, BAD, BAD, BAD, BAD, BAD, OK, OK}, /* admins only */
		[C_OPEN_FOR] = {U, NEM, NEM, NEM, OK, NI, NEM, NI, NI},
	};
	memcpy(want, rows, sizeof(want));
	uint8_t nonce[32];
	int anon = pw_connect(S.port, nonce);
	IT_CHECK(anon >= 0);
	const tacct *who[NROLES] = {NULL, &O, &C, &Q, &G, &H, &R, &A2, &P};
	tinfo t;
	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	for (int c = 0; c < NCALLS; c++)
		for (int r = 0; r < NROLES; r++) {
			const tacct *a = who[r];
			int fd = a != NULL ? a->fd : anon;
			const tacct *signer = a != NULL ? a : &O;
			int st;
			tev e;
			switch (c) {
			case C_GET:
				st = th_get(fd, T3, NULL, NULL);
				break;
			case C_LIST:
				st = th_list(fd, "acme", NULL);
				break;
			case C_SEND:
				st = th_send(fd, T3, t.version);
				break;
			case C_HANDLING:
				/* G becomes the handling agent (again): at the thread's next version */
				IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
				e = ev_by(signer, &acme, T3, WIRE_THREADEV_HANDLING, G.id, t.version + 1, NULL);
				st = th_event(fd, T3, &e);
				IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
				break;
			default: /* C_OPEN_FOR: a staff-initiated open toward cleo (one open thread: room for one) */
				e = ev_by(signer, &acme, 0, WIRE_THREADEV_OPEN, C.id, 1, NULL);
				st = th_open(fd, "acme", "cleo", &e, NULL);
				break;
			}
			if (st != want[c][r])
				fprintf(stderr, "# %s as %s: %d, want %d\n", call_name[c], role_name[r], st, want[c][r]);
			IT_EQ(st, want[c][r]);
		}
	close(anon);
}

/* ThreadForward of thread tid to `agent` by `by`: events (n of them) and one payload per listed device
 * (registration ids as given) */
/* an admin forwards T3 to H (not a member): ADD + HANDLING + one payload per H device, one transaction */
static void test_forward(void)
{
	tinfo t;
	tev ev[2];
	uint32_t dev1 = 1, wrong = 7;
	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	uint64_t v = t.version;
	IT_CHECK(!has_member(&t, H.id));
	ev[0] = ev_by(&G, &acme, T3, WIRE_THREADEV_ADD, H.id, v + 1, NULL);
	ev[1] = ev_by(&G, &acme, T3, WIRE_THREADEV_HANDLING, H.id, v + 2, NULL);
	IT_EQ(th_forward(&G, T3, &H, ev, 2, &dev1, &H.regid, 1), PARLEY_E_NOT_ENTITY_ADMIN);
	ev[0] = ev_by(&P, &acme, T3, WIRE_THREADEV_ADD, H.id, v + 1, NULL);
	ev[1] = ev_by(&P, &acme, T3, WIRE_THREADEV_HANDLING, H.id, v + 2, NULL);
	IT_EQ(th_forward(&P, T3, &O, ev, 2, &dev1, &O.regid, 1), PARLEY_E_NOT_ENTITY_MEMBER); /* not staff */
	IT_EQ(th_forward(&P, T3, &H, ev, 1, &dev1, &H.regid, 1), PARLEY_E_THREAD_EVENT_INVALID); /* no HANDLING */
	IT_EQ(th_forward(&P, T3, &H, ev, 2, &wrong, &H.regid, 1), PARLEY_E_MISMATCHED_DEVICES);
	uint32_t stale = H.regid + 1;
	IT_EQ(th_forward(&P, T3, &H, ev, 2, &dev1, &stale, 1), PARLEY_E_STALE_DEVICES);
	/* every refusal changed nothing: not a member, same version, nothing queued */
	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	IT_EQ(t.version, v);
	IT_CHECK(!has_member(&t, H.id));
	IT_EQ(queued(S.port, &H, 1, NULL, 0, NULL), 0);
	IT_EQ(th_forward(&P, T3, &H, ev, 2, &dev1, &H.regid, 1), PARLEY_OK);
	IT_EQ(th_get(H.fd, T3, &t, NULL), PARLEY_OK);
	IT_EQ(t.version, v + 2);
	IT_EQ(t.handling, H.id);
	IT_EQ(queued(S.port, &H, 1, NULL, 0, NULL), 1); /* the bundle, a pairwise envelope from P */
	/* to a member: the HANDLING alone */
	ev[0] = ev_by(&P, &acme, T3, WIRE_THREADEV_HANDLING, G.id, v + 3, NULL);
	IT_EQ(th_forward(&P, T3, &G, ev, 1, &dev1, &G.regid, 1), PARLEY_OK);
	IT_EQ(queued(S.port, &G, 1, NULL, 0, NULL), 1);
}


/* `thread lock` (ThreadEvent LOCK): a staff member of the thread takes the lock of an open thread; the
 * customer, an outsider, staff of another entity and a second lock are refused (a LOCK for someone
 * else does not even encode: lib/wire) */
static void test_lock_event(void)
{
	tinfo t;
	tev e;
	IT_EQ(th_get(C.fd, L, &t, NULL), PARLEY_OK);
	uint64_t v = t.version;
	IT_EQ(t.status, PARLEY__WIRE__THREAD_STATUS__THREAD_OPEN);
	e = ev_by(&C, &lockco, L, WIRE_THREADEV_LOCK, C.id, v + 1, NULL);
	IT_EQ(th_event(C.fd, L, &e), PARLEY_E_THREAD_EVENT_INVALID); /* the customer is not staff */
	e = ev_by(&O, &lockco, L, WIRE_THREADEV_LOCK, O.id, v + 1, NULL);
	IT_EQ(th_event(O.fd, L, &e), PARLEY_E_THREAD_EVENT_INVALID); /* nor is an outsider */
	e = ev_by(&A2, &lockco, L, WIRE_THREADEV_LOCK, A2.id, v + 1, NULL);
	IT_EQ(th_event(A2.fd, L, &e), PARLEY_E_THREAD_EVENT_INVALID); /* acme's admin: not lockco's staff */
	e = ev_by(&G, &lockco, L, WIRE_THREADEV_LOCK, G.id, v + 1, NULL);
	IT_EQ(th_event(G.fd, L, &e), PARLEY_OK);
	IT_EQ(th_get(C.fd, L, &t, NULL), PARLEY_OK);
	IT_EQ(t.version, v + 1);
	IT_EQ(t.lock_holder, G.id);
	IT_EQ(t.status, PARLEY__WIRE__THREAD_STATUS__THREAD_LOCKED);
	e = ev_by(&H, &lockco, L, WIRE_THREADEV_LOCK, H.id, v + 2, NULL);
	IT_EQ(th_event(H.fd, L, &e), PARLEY_E_THREAD_EVENT_INVALID); /* already locked */
	IT_EQ(th_send(H.fd, L, v + 1), PARLEY_E_THREAD_LOCKED);
	IT_EQ(th_send(G.fd, L, v + 1), PARLEY_OK); /* no lock_event: the lock is held */
	e = ev_by(&G, &lockco, L, WIRE_THREADEV_UNLOCK, 0, v + 2, NULL);
	IT_EQ(th_event(G.fd, L, &e), PARLEY_OK);
	/* the admin may lock too */
	e = ev_by(&P, &lockco, L, WIRE_THREADEV_LOCK, P.id, v + 3, NULL);
	IT_EQ(th_event(P.fd, L, &e), PARLEY_OK);
	IT_EQ(th_get(C.fd, L, &t, NULL), PARLEY_OK);
	IT_EQ(t.lock_holder, P.id);
}

/* With a handling agent (G, since the forward), the customer's message reaches G, the admins and the
 * customer's other device, not H (a member agent that does not handle it); a staff message reaches
 * every member device. */
static void test_routing(void)
{
	tinfo t;
	const tacct *staff[] = {&P, &A2, &G, &H};
	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	IT_EQ(t.handling, G.id);
	IT_CHECK(has_member(&t, H.id) && has_member(&t, A2.id));
	/* empty queues first */
	for (size_t i = 0; i < 4; i++)
		(void)queued(S.port, staff[i], 1, NULL, T3, NULL);
	(void)queued(S.port, &C, 1, NULL, T3, NULL);
	(void)queued(S.port, &C, c2_dev, c2_sk, T3, NULL);
	IT_EQ(th_send(C.fd, T3, t.version), PARLEY_OK);
	IT_EQ(queued(S.port, &G, 1, NULL, T3, NULL), 1);
	IT_EQ(queued(S.port, &P, 1, NULL, T3, NULL), 1);
	IT_EQ(queued(S.port, &A2, 1, NULL, T3, NULL), 1);
	IT_EQ(queued(S.port, &C, c2_dev, c2_sk, T3, NULL), 1);
	IT_EQ(queued(S.port, &H, 1, NULL, T3, NULL), 0);
	IT_EQ(th_send(H.fd, T3, t.version), PARLEY_OK); /* staff: to everyone */
	IT_EQ(queued(S.port, &G, 1, NULL, T3, NULL), 1);
	IT_EQ(queued(S.port, &P, 1, NULL, T3, NULL), 1);
	IT_EQ(queued(S.port, &C, 1, NULL, T3, NULL), 1);
	IT_EQ(queued(S.port, &C, c2_dev, c2_sk, T3, NULL), 1);
	IT_EQ(queued(S.port, &H, 1, NULL, T3, NULL), 0); /* not to the sending device */
}

/* A rules change: who's rules set (mask = values = rules), the list signed at the next version. */
static void ent_rules(const tacct *p, model *md, const tacct *who, int role, uint8_t rules)
{
	sm_model_set(md, who, role, 0, rules);
	IT_EQ(sm_staff(p->fd, md, md->version + 1), PARLEY_OK);
	md->version++;
}

/* The handling agent (G, since the forward) hands T3 on (issue 10: "or the handling agent, if rules allow
 * transfer"): only with MAY_TRANSFER, only as the handling agent, only inside a ThreadForward. */
static void test_transfer(void)
{
	tinfo t;
	tev ev[2];
	uint32_t dev1 = 1;

	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	uint64_t v = t.version;
	IT_EQ(t.handling, G.id);
	IT_CHECK(has_member(&t, H.id));
	(void)queued(S.port, &H, 1, NULL, 0, NULL);
	ev[0] = ev_by(&G, &acme, T3, WIRE_THREADEV_HANDLING, H.id, v + 1, NULL);
	IT_EQ(th_forward(&G, T3, &H, ev, 1, &dev1, &H.regid, 1), PARLEY_E_NOT_ENTITY_ADMIN); /* no rule */

	ent_rules(&P, &acme, &G, WIRE_ROLE_AGENT,
		  WIRE_RULE_DEFAULT_AGENT | WIRE_RULE_MAY_PAY | WIRE_RULE_MAY_INITIATE | WIRE_RULE_MAY_TRANSFER);
	ent_rules(&P, &acme, &H, WIRE_ROLE_AGENT, WIRE_RULE_MAY_TRANSFER);
	/* H has the rule but does not handle T3 */
	ev[0] = ev_by(&H, &acme, T3, WIRE_THREADEV_HANDLING, G.id, v + 1, NULL);
	IT_EQ(th_forward(&H, T3, &G, ev, 1, &dev1, &G.regid, 1), PARLEY_E_NOT_ENTITY_ADMIN);
	/* G's HANDLING outside a forward: a transfer always carries the bundle */
	ev[0] = ev_by(&G, &acme, T3, WIRE_THREADEV_HANDLING, H.id, v + 1, NULL);
	IT_EQ(th_event(G.fd, T3, &ev[0]), PARLEY_E_THREAD_EVENT_INVALID);
	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	IT_EQ(t.version, v);
	IT_EQ(t.handling, G.id);
	IT_EQ(queued(S.port, &H, 1, NULL, 0, NULL), 0);

	/* to a member: the HANDLING alone */
	IT_EQ(th_forward(&G, T3, &H, ev, 1, &dev1, &H.regid, 1), PARLEY_OK);
	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	IT_EQ(t.version, v + 1);
	IT_EQ(t.handling, H.id);
	IT_EQ(queued(S.port, &H, 1, NULL, 0, NULL), 1); /* the bundle, from G */
	/* G no longer handles it */
	ev[0] = ev_by(&G, &acme, T3, WIRE_THREADEV_HANDLING, G.id, v + 2, NULL);
	IT_EQ(th_forward(&G, T3, &G, ev, 1, &dev1, &G.regid, 1), PARLEY_E_NOT_ENTITY_ADMIN);
	/* to a non-member: G leaves (an admin's REMOVE), H hands it back to G with ADD + HANDLING */
	ev[0] = ev_by(&P, &acme, T3, WIRE_THREADEV_REMOVE, G.id, v + 2, NULL);
	IT_EQ(th_event(P.fd, T3, &ev[0]), PARLEY_OK);
	(void)queued(S.port, &G, 1, NULL, 0, NULL);
	ev[0] = ev_by(&H, &acme, T3, WIRE_THREADEV_ADD, G.id, v + 3, NULL);
	ev[1] = ev_by(&H, &acme, T3, WIRE_THREADEV_HANDLING, G.id, v + 4, NULL);
	IT_EQ(th_event(H.fd, T3, &ev[0]), PARLEY_E_THREAD_EVENT_INVALID); /* its ADD alone: no */
	IT_EQ(th_forward(&H, T3, &G, ev, 2, &dev1, &G.regid, 1), PARLEY_OK);
	IT_EQ(th_get(C.fd, T3, &t, NULL), PARLEY_OK);
	IT_EQ(t.version, v + 4);
	IT_EQ(t.handling, G.id);
	IT_CHECK(has_member(&t, G.id));
	IT_EQ(queued(S.port, &G, 1, NULL, 0, NULL), 1);
}

/* ThreadSend draws on the relay's per-account send bucket: O, customer of TO, empties it (RATE_BURST,
 * refilled at 1/s) with group sends, then both kinds of send are SEND_RATE_LIMITED. */
static void test_rate_limit(void)
{
	int st = PARLEY_OK, n = 0;
	while (n < 2 * RATE_BURST && (st = th_send(O.fd, TO, 1)) == PARLEY_OK)
		n++;
	IT_EQ(st, PARLEY_E_SEND_RATE_LIMITED);
	/* the burst (less O's earlier sends, plus the 1/s refill on a slow machine), never refused early */
	IT_CHECK(n >= RATE_BURST - 3 && n < 2 * RATE_BURST);
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__SendMessageRequest m = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage o = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *po = &o;
	static const uint8_t ct[] = "pairwise";
	o.device_id = 1;
	o.registration_id = G.regid;
	o.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	o.content.data = (uint8_t *)ct;
	o.content.len = sizeof(ct);
	m.recipient = G.handle;
	m.timestamp = it_now_ms();
	m.messages = &po;
	m.n_messages = 1;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	r.send_message = &m;
	IT_EQ(sm_call(O.fd, &r, NULL), PARLEY_E_SEND_RATE_LIMITED); /* the same bucket */
	IT_EQ(th_send(G.fd, TO, 1), PARLEY_OK); /* per account: G still sends */
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	setup();
	IT_RUN(test_open);
	IT_RUN(test_fanout);
	IT_RUN(test_payments);
	IT_RUN(test_events);
	IT_RUN(test_locking);
	IT_RUN(test_removal);
	IT_RUN(test_auth_table);
	IT_RUN(test_forward);
	IT_RUN(test_lock_event);
	IT_RUN(test_routing);
	IT_RUN(test_transfer);
	IT_RUN(test_rate_limit);
	IT_EQ(srv_stop(&S), 0);
	srv_cleanup(&S);
	return it_failures ? 1 : 0;
}
