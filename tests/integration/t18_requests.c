/* t18: receipts and message requests against a real parleyd, with real libparley clients (security items
 * 2, 12 and 17 of issue 8). Each function performs the attack or the fault, then checks the positive
 * case in the same run, so a check cannot pass by seeing nothing.
 *
 *   forged_cleartext_receipt     (17) a third party pushes a cleartext "delivered" for alice's message
 *                                to bob: refused by the server, never shown; bob's real receipts still
 *                                arrive (delivered and read).
 *   forged_encrypted_receipt     (17) the same forgery inside a real end-to-end session: alice shows a
 *                                receipt only from the account the message went to.
 *   refused_receipt_keeps_session (12) the sender's device has no keys on the server: the recipient's
 *                                automatic receipt is refused (extra device), yet the sender's next
 *                                messages still decrypt; so does a refused reply.
 *   stranger_gets_nothing        (2) a stranger who wrote once gets no receipt, no presence, and its
 *                                typing is dropped (both directions); after the victim replies both
 *                                get presence and typing, and receipts flow; an explicit accept does
 *                                the same, a decline undoes it; the presence opt-out stops presence.
 *   contacts_pruned              (2) presence_share_default=false hides presence until an account opts
 *                                in; acceptances unused for contact_ttl_s are pruned by the periodic
 *                                purge: rows gone, typing and presence dropped again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/error.h>

#include "client/client_internal.h"
#include "harness.h"


static srv s;
static char url[128];

static parley_client *client(const char *name)
{
	parley_client *c = it_client_at(s.dir, name, url, 5000);
	IT_CHECK(c != NULL);
	return c;
}

static parley_client *user(const char *handle)
{
	parley_client *c = client(handle);
	IT_EQ(parley_register(c, handle, NULL), PARLEY_OK);
	return c;
}

/* ---- what a client saw while its events were on ---- */

typedef struct seen {
	int messages;
	int requests;           /* messages flagged as message requests */
	char last_body[64];
	int decrypt_errors;
	int receipts;           /* receipt callbacks */
	int delivered, read;    /* ids in them */
	char receipt_from[PARLEY_HANDLE_MAX + 1];
	uint64_t receipt_ts;
	int typing;
	int online, offline;    /* presence pushes */
} seen;

static void on_message(parley_client *c, const parley_message *m, void *user)
{
	seen *v = user;
	v->messages++;
	v->requests += m->request != 0;
	snprintf(v->last_body, sizeof v->last_body, "%.*s", (int)m->body_len, (const char *)m->body);
}

static void on_receipt(parley_client *c, const char *handle, uint32_t device, parley_receipt_kind kind,
		       const uint64_t *ts, size_t n, void *user)
{
	seen *v = user;
	v->receipts++;
	snprintf(v->receipt_from, sizeof v->receipt_from, "%s", handle);
	v->receipt_ts = ts[0];
	if (kind == PARLEY_RECEIPT_READ)
		v->read += (int)n;
	else
		v->delivered += (int)n;
}

static void on_typing(parley_client *c, const char *handle, uint32_t device, int started, void *user)
{
	((seen *)user)->typing += started != 0;
}

static void on_presence(parley_client *c, const char *handle, int online, void *user)
{
	seen *v = user;
	if (online)
		v->online++;
	else
		v->offline++;
}

static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	fprintf(stderr, "# %s/%u: %s\n", handle, (unsigned)device, parley_errname(err));
	((seen *)user)->decrypt_errors++;
}

/* Events on (into v, cleared), connected. */
static void watch(parley_client *c, seen *v)
{
	parley_events ev;
	memset(v, 0, sizeof *v);
	memset(&ev, 0, sizeof ev);
	ev.on_message = on_message;
	ev.on_receipt = on_receipt;
	ev.on_typing = on_typing;
	ev.on_presence = on_presence;
	ev.on_error = on_error;
	ev.user = v;
	parley_client_disconnect(c); /* a new connection: the server pushes what is queued */
	parley_client_set_events(c, &ev);
	IT_EQ(parley_connect(c), PARLEY_OK);
}

/* Runs every client's loop in turns for about ms. */
static void pump(parley_client *const *cs, size_t n, int ms)
{
	for (int t = 0; t < ms; t += 20)
		for (size_t i = 0; i < n; i++)
			parley_client_run(cs[i], 10);
}

static void pump2(parley_client *a, parley_client *b, int ms)
{
	parley_client *cs[2] = {a, b};
	pump(cs, 2, ms);
}

/* Events off (acks and receipts owed are sent), disconnected. */
static void unwatch(parley_client *c)
{
	parley_client_set_events(c, NULL);
	parley_client_run(c, 200);
	parley_client_disconnect(c);
}

/* Connects afresh, collects for ms (or until `want` messages), stops. */
static void listen_once(parley_client *c, seen *v, int want, int ms)
{
	parley_client_disconnect(c);
	watch(c, v);
	for (int t = 0; t < ms && (want == 0 || v->messages < want); t += 50)
		parley_client_run(c, 50);
	unwatch(c);
}

/* ---- item 17 ---- */

/* A third party over the raw protocol: a well-formed cleartext Receipt envelope to every device of
 * `to`, with the right registration ids (from a bundle). Returns the server's status. */
static int push_cleartext_receipt(const char *to, uint64_t ts)
{
	uint8_t pk[32], sk[64], packed[64];
	int fd = -1;
	wire_frame f;
	IT_EQ(pw_register(s.port, "mallory", pk, sk, &fd), PARLEY_OK);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetBundlesRequest g = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
	req.id = 1;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
	req.get_bundles = &g;
	g.handle = (char *)to;
	memset(&f, 0, sizeof f);
	IT_EQ(pw_call(fd, &req, &f), PARLEY_OK);
	if (f.frame == NULL || f.frame->response->get_bundles == NULL || f.frame->response->get_bundles->n_bundles != 1) {
		IT_CHECK(0);
		close(fd);
		return -1;
	}
	uint32_t regid = f.frame->response->get_bundles->bundles[0]->registration_id;
	uint32_t device = f.frame->response->get_bundles->bundles[0]->device_id;
	wire__frame_free(&f);

	Parley__Wire__Receipt r = PARLEY__WIRE__RECEIPT__INIT;
	r.kind = PARLEY__WIRE__RECEIPT__KIND__DELIVERY;
	r.n_timestamps = 1;
	r.timestamps = &ts;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *omp = &om;
	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	om.device_id = device;
	om.registration_id = regid;
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_RECEIPT;
	om.content.data = packed;
	om.content.len = parley__wire__receipt__pack(&r, packed);
	sm.recipient = (char *)to;
	sm.timestamp = ts + 1;
	sm.n_messages = 1;
	sm.messages = &omp;
	parley__wire__request__init(&req);
	req.id = 2;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	int rc = pw_call(fd, &req, NULL);
	close(fd);
	return rc;
}

static parley_client *alice, *bob;

static void forged_cleartext_receipt(void)
{
	seen v;
	uint64_t ts = 0;
	alice = user("alice");
	bob = user("bob");
	IT_EQ(parley_accept(bob, "alice"), PARLEY_OK);
	IT_EQ(parley_send_bytes(alice, "bob", (const uint8_t *)"for bob", 7, &ts), PARLEY_OK);

	/* the forgery: refused by the server with its own error */
	IT_EQ(push_cleartext_receipt("alice", ts), PARLEY_E_RECEIPT_IN_CLEAR);
	listen_once(alice, &v, 0, 1000);
	IT_EQ(v.receipts, 0);
	IT_CHECK(strcmp(v.receipt_from, "mallory") != 0);

	/* the genuine ones: bob's delivery receipt, then his read receipt, end to end */
	listen_once(bob, &v, 1, 3000);
	IT_EQ(v.messages, 1);
	IT_EQ(parley_mark_read(bob, "alice", &ts, 1), PARLEY_OK);
	parley_client_run(bob, 300);
	listen_once(alice, &v, 0, 2000);
	IT_EQ(v.delivered, 1);
	IT_EQ(v.read, 1);
	IT_CHECK(strcmp(v.receipt_from, "bob") == 0 && v.receipt_ts == ts);
	IT_EQ(v.decrypt_errors, 0);
}

static void forged_encrypted_receipt(void)
{
	seen v;
	uint64_t ts = 0;
	parley_client *eve = user("eve");
	/* eve writes, alice answers: they have sessions and accepted each other */
	IT_EQ(parley_send(eve, "alice", "hi alice"), PARLEY_OK);
	listen_once(alice, &v, 1, 3000);
	IT_EQ(v.messages, 1);
	IT_EQ(parley_send_bytes(alice, "bob", (const uint8_t *)"to bob only", 11, &ts), PARLEY_OK);
	IT_EQ(parley_send(alice, "eve", "hi eve"), PARLEY_OK);
	/* eve gets "hi eve" (her client sends a genuine delivery receipt for it), then claims "read" for
	 * alice's message to bob, properly encrypted: what a modified client can do */
	listen_once(eve, &v, 1, 3000);
	IT_EQ(v.messages, 1);
	IT_EQ(client__send_receipt(eve, "alice", PARLEY_RECEIPT_READ, &ts, 1), PARLEY_OK);
	parley_client_run(eve, 500);
	listen_once(alice, &v, 0, 2000);
	IT_EQ(v.read, 0);      /* the forgery: not shown */
	IT_EQ(v.delivered, 1); /* eve's genuine receipt for "hi eve" */
	IT_CHECK(strcmp(v.receipt_from, "eve") == 0 && v.receipt_ts != ts);
	IT_EQ(v.decrypt_errors, 0);
	parley_client_free(eve);
}

/* ---- item 12 ---- */

static void db_exec(const char *sql)
{
	IT_CHECK(it_srv_exec(&s, sql) >= 0);
}

static int db_count(const char *sql)
{
	long long n = it_srv_int(&s, sql);
	IT_CHECK(n >= 0);
	return (int)n;
}

static void refused_receipt_keeps_session(void)
{
	seen v;
	parley_client *sam = user("sam"), *rita = user("rita");
	/* sam writes, rita replies: rita accepted sam (she sends him receipts) and both have sessions */
	IT_EQ(parley_send(sam, "rita", "m1"), PARLEY_OK);
	listen_once(rita, &v, 1, 3000);
	IT_EQ(v.messages, 1);
	IT_EQ(parley_send(rita, "sam", "r1"), PARLEY_OK);
	listen_once(sam, &v, 1, 3000);
	IT_EQ(v.messages, 1);
	/* sam stays connected, its key check after authentication done: nothing re-uploads his keys */
	IT_EQ(parley_connect(sam), PARLEY_OK);
	parley_client_run(sam, 500);

	/* the fault: sam's device has no keys on the server any more */
	db_exec("DELETE FROM device_keys WHERE account_id = (SELECT id FROM accounts WHERE handle = 'sam')");
	IT_EQ(parley_send(sam, "rita", "m2"), PARLEY_OK);
	listen_once(rita, &v, 1, 3000); /* her automatic receipt to sam is refused: extra device */
	IT_EQ(v.messages, 1);
	IT_EQ(v.decrypt_errors, 0);
	IT_EQ(parley_send(sam, "rita", "m3"), PARLEY_OK);
	listen_once(rita, &v, 1, 3000);
	IT_EQ(v.messages, 1); /* before the fix: INVALID_KEY_ID, the conversation lost */
	IT_CHECK(strcmp(v.last_body, "m3") == 0);
	IT_EQ(v.decrypt_errors, 0);
	IT_EQ(db_count("SELECT count(*) FROM device_keys WHERE account_id = (SELECT id FROM accounts WHERE handle = 'sam')"),
	      0); /* the fault was there all along */
	/* a refused message (sam cannot receive) keeps the session too */
	int rc = parley_send(rita, "sam", "r2");
	fprintf(stderr, "# rita -> sam: %s (%s)\n", parley_errname(rc), parley_client_errmsg(rita));
	IT_CHECK(rc != PARLEY_OK);
	IT_EQ(parley_send(sam, "rita", "m4"), PARLEY_OK);
	listen_once(rita, &v, 1, 3000);
	IT_CHECK(v.messages == 1 && strcmp(v.last_body, "m4") == 0);
	IT_EQ(v.decrypt_errors, 0);
	parley_client_free(sam);
	parley_client_free(rita);
}

/* ---- item 2 ---- */

/* `who` reconnects while `obs` watches: how many online pushes about it did obs see? */
static int presence_seen(parley_client *obs, seen *ov, parley_client *who)
{
	int before = ov->online;
	parley_client_disconnect(who);
	pump2(obs, who, 300);
	IT_EQ(parley_connect(who), PARLEY_OK);
	pump2(obs, who, 700);
	return ov->online - before;
}

/* `from` starts typing to `to` (watched in tv): did it arrive? */
static int typing_arrives(parley_client *from, parley_client *to, seen *tv, const char *to_handle)
{
	int before = tv->typing;
	IT_EQ(parley_typing(from, to_handle, 1), PARLEY_OK);
	pump2(from, to, 700);
	return tv->typing - before;
}

static void stranger_gets_nothing(void)
{
	seen sv, vv, wv;
	parley_client *vera = user("vera"), *stan = user("stan"), *wendy = user("wendy");

	/* stan writes once; vera reads it, so a delivery receipt would go now if she sent one */
	IT_EQ(parley_send(stan, "vera", "hello vera"), PARLEY_OK);
	watch(vera, &vv);
	watch(stan, &sv);
	pump2(vera, stan, 1500);
	IT_EQ(vv.messages, 1);
	IT_EQ(vv.requests, 1);                          /* shown as a message request */
	IT_EQ(sv.receipts, 0);                          /* no receipt to a stranger */
	IT_EQ(parley_mark_read(vera, "stan", &sv.receipt_ts, 1), PARLEY_E_NOT_ACCEPTED);
	IT_EQ(presence_seen(stan, &sv, vera), 0);       /* stan gets no presence of vera */
	IT_EQ(typing_arrives(stan, vera, &vv, "vera"), 0); /* his typing is dropped */
	IT_EQ(typing_arrives(vera, stan, &sv, "stan"), 0); /* nor does vera's reach him before she replies */

	/* vera replies: both accepted each other */
	IT_EQ(parley_send(vera, "stan", "hi stan"), PARLEY_OK);
	pump2(vera, stan, 1000);
	IT_EQ(sv.messages, 1);
	IT_CHECK(presence_seen(stan, &sv, vera) >= 1);
	IT_CHECK(presence_seen(vera, &vv, stan) >= 1);
	IT_EQ(typing_arrives(stan, vera, &vv, "vera"), 1);
	IT_EQ(typing_arrives(vera, stan, &sv, "stan"), 1);
	IT_EQ(parley_send(stan, "vera", "second"), PARLEY_OK);
	pump2(vera, stan, 1500);
	IT_EQ(sv.delivered, 1);                         /* receipts now flow */
	IT_EQ(vv.messages, 2);
	IT_EQ(vv.requests, 1);                          /* and it is no request any more */
	IT_EQ(sv.requests, 0);                          /* vera's reply was none for stan: he wrote first */

	/* the presence opt-out: stan is told "offline" at once, then sees nothing */
	int off = sv.offline;
	IT_EQ(parley_presence_share(vera, 0), PARLEY_OK);
	pump2(vera, stan, 500);
	IT_CHECK(sv.offline > off);
	IT_EQ(presence_seen(stan, &sv, vera), 0);
	IT_CHECK(presence_seen(vera, &vv, stan) >= 1); /* stan still shares his */
	IT_EQ(parley_presence_share(vera, 1), PARLEY_OK);
	IT_CHECK(presence_seen(stan, &sv, vera) >= 1);

	/* explicit accept instead of a reply, then decline */
	IT_EQ(parley_send(wendy, "vera", "hello from wendy"), PARLEY_OK);
	watch(wendy, &wv);
	pump2(vera, wendy, 1000);
	IT_EQ(presence_seen(vera, &vv, wendy), 0);
	IT_EQ(parley_accept(vera, "wendy"), PARLEY_OK);
	IT_CHECK(presence_seen(vera, &vv, wendy) >= 1);
	IT_EQ(typing_arrives(wendy, vera, &vv, "vera"), 1);
	IT_EQ(parley_decline(vera, "wendy"), PARLEY_OK);
	IT_EQ(presence_seen(vera, &vv, wendy), 0);
	IT_EQ(typing_arrives(wendy, vera, &vv, "vera"), 0);
	IT_EQ(vv.decrypt_errors + sv.decrypt_errors + wv.decrypt_errors, 0);
	unwatch(vera);
	unwatch(stan);
	unwatch(wendy);
	parley_client_free(vera);
	parley_client_free(stan);
	parley_client_free(wendy);
}

/* With presence_share_default=false, and acceptances pruned after contact_ttl_s. */
static void contacts_pruned(void)
{
	seen av, bv;
	static const char *const extra[] = {"--contact_ttl_s=6", "--purge_interval_s=1",
					    "--presence_share_default=false", NULL};
	IT_EQ(srv_stop(&s), 0); /* clean exit (and no sanitizer report in a sanitized build) */
	srv_cleanup(&s);
	srv_start(&s, extra);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	parley_client *a = user("ann"), *b = user("ben");
	IT_EQ(parley_send(a, "ben", "hi ben"), PARLEY_OK);
	IT_EQ(parley_send(b, "ann", "hi ann"), PARLEY_OK);
	IT_EQ(db_count("SELECT count(*) FROM contacts"), 2);
	watch(a, &av);
	watch(b, &bv);
	pump2(a, b, 300);
	IT_EQ(typing_arrives(a, b, &bv, "ben"), 1);
	/* the operator's default hides presence until an account opts in */
	IT_EQ(presence_seen(a, &av, b), 0);
	int on = av.online;
	IT_EQ(parley_presence_share(b, 1), PARLEY_OK);
	pump2(a, b, 300);
	IT_CHECK(av.online > on);
	pump2(a, b, 7000); /* past contact_ttl_s, and a purge ran */
	IT_EQ(db_count("SELECT count(*) FROM contacts"), 0);
	IT_EQ(typing_arrives(a, b, &bv, "ben"), 0);
	IT_EQ(presence_seen(a, &av, b), 0);
	unwatch(a);
	unwatch(b);
	parley_client_free(a);
	parley_client_free(b);
}

int main(void)
{
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	IT_RUN(forged_cleartext_receipt);
	IT_RUN(forged_encrypted_receipt);
	IT_RUN(refused_receipt_keeps_session);
	IT_RUN(stranger_gets_nothing);
	parley_client_free(alice);
	parley_client_free(bob);
	IT_RUN(contacts_pruned);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures == 0 ? 0 : 1;
}
