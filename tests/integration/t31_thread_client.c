/* t31: the client's thread core through libparley against a real parleyd (docs/protocol.md §13.4).
 *
 *   customer_admin   a customer writes to the entity: the thread opens (signed OPEN), the admin and the
 *                    default agent receive and decrypt it; the admin answers: the customer decrypts it
 *                    and sees the entity's handle as the sender, never the admin's.
 *   add_member       an added agent (signed ADD) reads the next messages: the customer, offline during
 *                    the ADD, sends at the old version and retries after STALE_MEMBERSHIP; the agent
 *                    misses the customer's key (the test drops it on the server): the message waits,
 *                    the agent asks (kind 6), the customer answers, it decrypts.
 *   remove_rekey     after a REMOVE the remaining members rotate: every later group envelope, copied
 *                    into the removed device's queue in the server database together with the old
 *                    sender keys it had, decrypts for nobody there.
 *   forged_event     an event signed by a non-admin, pushed as the server could: THREAD_EVENT_INVALID,
 *                    the membership unchanged.
 *   payment          a payment request from a member without MAY_PAY (written into the server
 *                    database): dropped by the receiver with PAYMENT_NOT_ALLOWED.
 *   show_name        the customer sees bob's own handle only once bob's SHOW_NAME is set in the signed
 *                    staff list (before: the entity's handle); alice, without it, stays "acme".
 *   no_plaintext     the server's files hold none of the message texts.
 *   staff_removed    a staff member removed from the entity: the next sender rotates, the removed
 *                    device decrypts none of the copies the test gives it.
 *   channel          (issue 11) a gateway enrolled with a gateway code writes for an sms customer: the
 *                    default agent reads it and sees the number, the gateway and gateway_verified; it
 *                    answers and the gateway reads the entity's answer as a customer does; the same
 *                    number continues the thread, another opens another; a customer's channel send,
 *                    a malformed number and the gateway's native send are refused.
 *   channel_lies     the server's ThreadInfo names another number or channel, or dresses a native thread
 *                    up as an sms one: staff (first view or kept) and the gateway show what the OPEN
 *                    signs, with channel_disputed and no level; a gateway given back a thread signed for
 *                    another number sends nothing (PROTO_MALFORMED).
 *   channel_removed  the gateway removed from the staff list: the agent's client shows the thread as an
 *                    unverified channel (no number, no gateway, level unverified).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/entity.h>
#include <parley/error.h>
#include <parley/auth.h>
#include <parley/thread.h>

#include "client/thread_core.h"
#include "wire/threadev.h"
#include "harness.h"
#include "scan.h"

static srv s;
static char url[128];
static parley_client *admin, *agent, *agent2, *cust, *gw;
static uint64_t tid;

typedef struct inbox {
	int n;
	char last[256];
	char last_sender[64];
	int errors, last_error, payments;
	char all[8192]; /* every body, one a line */
} inbox;
static inbox in_admin, in_agent, in_agent2, in_cust, in_gw;

static void on_msg(parley_client *c, const parley_message *m, void *user)
{
	(void)c;
	(void)m;
	(void)user;
}

static void on_err(parley_client *c, parley_err e, const char *h, uint32_t d, void *user)
{
	inbox *b = user;
	b->errors++;
	b->last_error = e;
	fprintf(stderr, "# on_error %d from %s/%u: %s\n", (int)e, h, (unsigned)d, parley_client_errmsg(c));
}

static void on_tmsg(parley_client *c, const parley_thread_message *m, void *user)
{
	inbox *b = user;
	(void)c;
	b->n++;
	b->payments += m->payment;
	snprintf(b->last, sizeof b->last, "%s", (const char *)m->body);
	size_t used = strlen(b->all);
	snprintf(b->all + used, sizeof b->all - used, "%s\n", (const char *)m->body);
	snprintf(b->last_sender, sizeof b->last_sender, "%s", m->sender);
}

static void listen_on(parley_client *c, inbox *b)
{
	parley_events ev;
	parley_thread_events tev;

	memset(&ev, 0, sizeof ev);
	ev.on_message = on_msg;
	ev.on_error = on_err;
	ev.user = b;
	parley_client_set_events(c, &ev);
	memset(&tev, 0, sizeof tev);
	tev.on_thread_message = on_tmsg;
	tev.user = b;
	parley_thread_set_events(c, &tev);
}

/* Runs c until it has n thread messages (or ~5 s). */
static int pump(parley_client *c, inbox *b, int n)
{
	(void)parley_connect(c);
	for (int i = 0; i < 50 && b->n < n; i++)
		(void)parley_client_run(c, 100);
	(void)parley_client_run(c, 200);
	return b->n;
}

static void setup(void)
{
	char code[PARLEY_ENROL_CODE_MAX + 1];
	uint64_t id = 0, req = 0;
	parley_rules_change ch;

	admin = it_user(&s, url, "alice");
	agent = it_user(&s, url, "bob");
	agent2 = it_user(&s, url, "dave");
	cust = it_user(&s, url, "carol");
	IT_MUST(&s, admin && agent && agent2 && cust);
	IT_EQ(parley_entity_create(admin, "acme", "Acme Support", &id), PARLEY_OK);
	IT_EQ(parley_entity_code(admin, "acme", 0, PARLEY_ROLE_AGENT, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(agent, "acme", code, &req), PARLEY_OK);
	IT_EQ(parley_entity_decide(admin, "acme", req, 1), PARLEY_OK);
	IT_EQ(parley_entity_code(admin, "acme", 0, PARLEY_ROLE_AGENT, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(agent2, "acme", code, &req), PARLEY_OK);
	IT_EQ(parley_entity_decide(admin, "acme", req, 1), PARLEY_OK);
	/* bob is a default agent; dave is not (he joins threads only when added) */
	parley_rules_change_init(&ch);
	ch.default_agent = 1;
	IT_EQ(parley_entity_set_rules(admin, "acme", "bob", &ch), PARLEY_OK);
	listen_on(admin, &in_admin);
	listen_on(agent, &in_agent);
	listen_on(agent2, &in_agent2);
	listen_on(cust, &in_cust);
}

static void customer_admin(void)
{
	parley_thread_info info;
	const char *hello = "t31-hello-from-carol";

	IT_EQ(parley_thread_send_entity(cust, "acme", (const uint8_t *)hello, strlen(hello), &tid), PARLEY_OK);
	IT_CHECK(tid != 0);
	IT_EQ(pump(admin, &in_admin, 1), 1);
	IT_CHECK(strcmp(in_admin.last, hello) == 0);
	IT_CHECK(strcmp(in_admin.last_sender, "carol") == 0);
	IT_EQ(pump(agent, &in_agent, 1), 1); /* the default agent */
	IT_CHECK(strcmp(in_agent.last, hello) == 0);
	IT_EQ(pump(agent2, &in_agent2, 1), 0); /* not a member */

	const char *answer = "t31-answer-from-alice";
	IT_EQ(parley_thread_send(admin, tid, (const uint8_t *)answer, strlen(answer), 0), PARLEY_OK);
	IT_EQ(pump(cust, &in_cust, 1), 1);
	IT_CHECK(strcmp(in_cust.last, answer) == 0);
	IT_CHECK(strcmp(in_cust.last_sender, "acme") == 0); /* the entity, never "alice" */
	IT_EQ(parley_thread_get(cust, tid, &info), PARLEY_OK);
	IT_CHECK(strcmp(info.entity_name, "Acme Support") == 0);
	IT_CHECK(info.handling_agent[0] == '\0');
	IT_EQ(info.staff, 0);
	IT_EQ(info.member_count, 3);
	IT_EQ(info.unread, 1);
	IT_EQ(parley_thread_mark_read(cust, tid), PARLEY_OK);
	IT_EQ(parley_thread_get(cust, tid, &info), PARLEY_OK);
	IT_EQ(info.unread, 0);
	/* a second message continues the same thread */
	uint64_t again = 0;
	IT_EQ(parley_thread_send_entity(cust, "acme", (const uint8_t *)"t31-second", 10, &again), PARLEY_OK);
	IT_EQ(again, tid);
	IT_EQ(pump(admin, &in_admin, 2), 2);
}

static int exec_db(const char *sql);
static uint64_t account_id(const char *handle);

static void add_member(void)
{
	char sql[256];

	/* carol is offline while dave is added: no push tells her, her next send is at the old membership
	 * version, the server answers STALE_MEMBERSHIP, her client verifies the ADD, gives dave its key
	 * and sends again: dave reads it */
	parley_client_disconnect(cust);
	IT_EQ(parley_thread_add(admin, tid, "dave"), PARLEY_OK);
	IT_EQ(parley_thread_send(cust, tid, (const uint8_t *)"t31-after-add", 13, 0), PARLEY_OK);
	/* carol's sender key never reaches dave (the server drops the pairwise envelopes): the message
	 * waits in dave's quarantine, dave asks carol (kind 6), carol answers, the message decrypts */
	snprintf(sql, sizeof sql,
		 "DELETE FROM messages WHERE account_id = %llu AND id NOT IN (SELECT message_id FROM thread_envelopes)",
		 (unsigned long long)account_id("dave"));
	IT_CHECK(exec_db(sql) >= 1);
	parley_client_disconnect(agent2);
	IT_EQ(pump(agent2, &in_agent2, 1), 0);
	pump(cust, &in_cust, 99); /* carol gets the request and sends her key again */
	IT_EQ(pump(agent2, &in_agent2, 1), 1);
	IT_CHECK(strcmp(in_agent2.last, "t31-after-add") == 0);
	/* the admin writes too: dave now holds the sender keys of both (what a replay would give back) */
	IT_EQ(parley_thread_send(admin, tid, (const uint8_t *)"t31-admin-after-add", 19, 0), PARLEY_OK);
	IT_EQ(pump(agent2, &in_agent2, 2), 2);
	IT_CHECK(strcmp(in_agent2.last, "t31-admin-after-add") == 0);
}

/* Every group envelope queued for the account `to`, copied to the queue of (victim account, device 1):
 * what a server that kept the removed device in the fan-out would deliver. */
static int copy_queue_since(const char *to, const char *victim, uint64_t since_ms)
{
	it_db *db = it_db_open(&s);
	long long ids[256];
	int n = 0, copied = 0;

	if (db == NULL)
		return 0;
	/* the ids first, then a copy of each made by the database itself (every column as stored, NULLs
	 * included), the new id read back by RETURNING for its thread_envelopes row */
	it_rows *r = it_db_query(db,
				 "SELECT m.id FROM messages m JOIN thread_envelopes t ON t.message_id = m.id"
				 " WHERE m.account_id = (SELECT id FROM accounts WHERE handle = ?1) AND m.server_ts >= ?2"
				 " ORDER BY m.id",
				 "ti", to, (long long)since_ms);
	while (it_rows_next(r) && n < (int)(sizeof ids / sizeof ids[0]))
		ids[n++] = it_rows_int(r, 0);
	it_rows_free(r);
	for (int i = 0; i < n; i++) {
		long long id = it_db_int(db,
					 "INSERT INTO messages (account_id, device_id, sender_account, sender_device,"
					 " sender_handle, type, client_ts, server_ts, expires_ms, content)"
					 " SELECT (SELECT id FROM accounts WHERE handle = ?1), 1, sender_account, sender_device,"
					 " sender_handle, type, client_ts, server_ts, expires_ms, content FROM messages"
					 " WHERE id = ?2 RETURNING id",
					 "ti", victim, ids[i]);
		IT_CHECK(id > 0);
		if (id > 0 && it_db_exec(db,
					 "INSERT INTO thread_envelopes (message_id, thread_id)"
					 " SELECT ?1, thread_id FROM thread_envelopes WHERE message_id = ?2",
					 "ii", id, ids[i]) == 1)
			copied++;
	}
	it_db_close(db);
	return copied;
}

static int copy_queue(const char *to, const char *victim)
{
	return copy_queue_since(to, victim, 0);
}

static void remove_rekey(void)
{
	inbox before = in_agent2;
	int copied, bob_before;

	bob_before = pump(agent, &in_agent, 99); /* bob's queue drained: what is copied below is new */

	IT_EQ(parley_thread_remove(admin, tid, "dave"), PARLEY_OK);
	/* both the customer and the admin write after the removal: each rotated first */
	IT_EQ(parley_thread_send(cust, tid, (const uint8_t *)"t31-secret-after-remove", 23, 0), PARLEY_OK);
	IT_EQ(parley_thread_send(admin, tid, (const uint8_t *)"t31-admin-after-remove", 22, 0), PARLEY_OK);
	/* the server copies bob's envelopes (which carry both) into dave's queue */
	copied = copy_queue("bob", "dave");
	IT_CHECK(copied >= 2);
	/* a fresh connection: the server hands over its queue, the copies included */
	parley_client_disconnect(agent2);
	IT_EQ(pump(agent2, &in_agent2, before.n + 1), before.n); /* nothing new decrypts */
	IT_EQ(pump(agent, &in_agent, bob_before + 2), bob_before + 2); /* the member reads both */
	IT_CHECK(strcmp(in_agent.last, "t31-admin-after-remove") == 0);
}

static uint64_t account_id(const char *handle)
{
	it_db *db = it_db_open(&s);
	long long id = it_db_int(db, "SELECT id FROM accounts WHERE handle = ?", "t", handle);
	it_db_close(db);
	return id > 0 ? (uint64_t)id : 0;
}

static int exec_db(const char *sql)
{
	return (int)it_srv_exec(&s, sql);
}

/* A payment request from bob, who has no MAY_PAY: the server would refuse to send it, so the test turns
 * bob's queued group message for carol into one (type 5). Dropped by carol's client; with MAY_PAY in the
 * signed rules, a real one is shown as a payment. */
static void payment(void)
{
	parley_rules_change ch;
	int before = in_cust.n;
	char sql[256];

	pump(cust, &in_cust, 99); /* carol's queue drained */
	before = in_cust.n;
	in_cust.errors = 0;
	IT_EQ(parley_thread_send(agent, tid, (const uint8_t *)"t31-pay-100", 11, PARLEY_THREAD_SEND_PAYMENT),
	      PARLEY_E_PAYMENT_NOT_ALLOWED); /* refused before anything is sent */
	IT_EQ(parley_thread_send(agent, tid, (const uint8_t *)"t31-pay-101", 11, 0), PARLEY_OK);
	snprintf(sql, sizeof sql,
		 "UPDATE messages SET type = 5 WHERE account_id = %llu AND id IN (SELECT message_id FROM thread_envelopes)",
		 (unsigned long long)account_id("carol"));
	IT_EQ(exec_db(sql), 1);
	parley_client_disconnect(cust);
	IT_EQ(pump(cust, &in_cust, before + 1), before);
	IT_EQ(in_cust.last_error, PARLEY_E_PAYMENT_NOT_ALLOWED);

	parley_rules_change_init(&ch);
	ch.may_pay = 1;
	IT_EQ(parley_entity_set_rules(admin, "acme", "bob", &ch), PARLEY_OK);
	IT_EQ(parley_thread_send(agent, tid, (const uint8_t *)"t31-pay-102", 11, PARLEY_THREAD_SEND_PAYMENT), PARLEY_OK);
	sleep(6); /* past the client's refresh guard: the payment fetches the entity's new rules itself */
	IT_EQ(pump(cust, &in_cust, before + 1), before + 1);
	IT_EQ(in_cust.payments, 1);
	IT_CHECK(strcmp(in_cust.last, "t31-pay-102") == 0);
}

/* SHOW_NAME (issue 10 item 2): the customer's client names a staff sender by its own handle only when the
 * sender's effective rule in the staff list it verified says so; per member, not for the whole entity. */
static void show_name(void)
{
	parley_rules_change ch;
	parley_entity *e = NULL;
	int before;

	pump(cust, &in_cust, 999); /* carol's queue drained */
	before = in_cust.n;
	IT_EQ(parley_thread_send(agent, tid, (const uint8_t *)"t31-name-hidden", 15, 0), PARLEY_OK);
	IT_EQ(pump(cust, &in_cust, before + 1), before + 1);
	IT_CHECK(strcmp(in_cust.last, "t31-name-hidden") == 0);
	IT_CHECK(strcmp(in_cust.last_sender, "acme") == 0); /* no rule: the entity */

	parley_rules_change_init(&ch);
	ch.show_name = 1;
	IT_EQ(parley_entity_set_rules(admin, "acme", "bob", &ch), PARLEY_OK);
	IT_EQ(parley_entity_get(cust, "acme", &e), PARLEY_OK); /* carol verifies the new list */
	parley_entity_free(e);
	IT_EQ(parley_thread_send(agent, tid, (const uint8_t *)"t31-name-shown", 14, 0), PARLEY_OK);
	IT_EQ(pump(cust, &in_cust, before + 2), before + 2);
	IT_CHECK(strcmp(in_cust.last, "t31-name-shown") == 0);
	IT_CHECK(strcmp(in_cust.last_sender, "bob") == 0);
	IT_EQ(parley_thread_send(admin, tid, (const uint8_t *)"t31-name-admin", 14, 0), PARLEY_OK);
	IT_EQ(pump(cust, &in_cust, before + 3), before + 3);
	IT_CHECK(strcmp(in_cust.last, "t31-name-admin") == 0);
	IT_CHECK(strcmp(in_cust.last_sender, "acme") == 0); /* alice has no SHOW_NAME */
}

/* First responder: with lock_mode 1 the first staff answer takes the lock (signed LOCK); another agent
 * is then refused. */
static void first_responder(void)
{
	parley_rules_change ch;
	parley_thread_info info;
	uint64_t t2 = 0;

	parley_rules_change_init(&ch);
	ch.lock_mode = PARLEY_LOCK_FIRST_RESPONDER;
	ch.default_agent = 1;
	IT_EQ(parley_entity_set_rules(admin, "acme", NULL, &ch), PARLEY_OK);
	IT_EQ(parley_thread_close(cust, tid), PARLEY_OK);
	IT_EQ(parley_thread_send_entity(cust, "acme", (const uint8_t *)"t31-new-thread", 14, &t2), PARLEY_OK);
	IT_CHECK(t2 != 0 && t2 != tid);
	IT_EQ(parley_thread_send(agent, t2, (const uint8_t *)"t31-bob-first", 13, 0), PARLEY_OK);
	IT_EQ(parley_thread_get(agent, t2, &info), PARLEY_OK);
	IT_EQ(info.status, PARLEY_THREAD_LOCKED);
	IT_CHECK(strcmp(info.lock_holder, "bob") == 0);
	IT_EQ(parley_thread_send(agent2, t2, (const uint8_t *)"t31-dave-second", 15, 0), PARLEY_E_THREAD_LOCKED);
	tid = t2;
}

/* An event the server holds but no admin signed (bob, an agent, "removes" dave): the client refuses the
 * thread's chain; the same event signed by the admin passes. */
static void forged_event(void)
{
	parley_thread_info info, after;
	wire_threadev ev;
	uint8_t blob[WIRE_THREADEV_MAX_BYTES];
	size_t len = 0;
	parley_entity *e = NULL;
	it_db *db;

	IT_EQ(parley_thread_get(cust, tid, &info), PARLEY_OK);
	IT_EQ(parley_entity_get(cust, "acme", &e), PARLEY_OK);
	memset(&ev, 0, sizeof ev);
	ev.thread_id = tid;
	snprintf(ev.entity, sizeof ev.entity, "acme");
	ev.version = info.membership_version + 1;
	ev.kind = WIRE_THREADEV_REMOVE;
	ev.subject = account_id("dave");
	ev.actor = account_id("bob");
	ev.actor_device = 1;
	ev.staff_version = e != NULL ? parley_entity_staff_version(e) : 1;
	ev.timestamp_ms = it_now_ms();
	parley_entity_free(e);
	for (int round = 0; round < 2; round++) {
		parley_client *signer = round == 0 ? agent : admin;
		if (round == 1)
			ev.actor = account_id("alice");
		IT_EQ(wire__threadev_sign(&ev, signer->key.sk, blob, sizeof blob, &len), PARLEY_OK);
		db = it_db_open(&s);
		IT_CHECK(it_db_exec(db, "DELETE FROM thread_events WHERE thread_id = ?1 AND version = ?2", "ii",
				    (long long)tid, (long long)ev.version) >= 0);
		IT_EQ(it_db_exec(db, "INSERT INTO thread_events (thread_id, version, event) VALUES (?1, ?2, ?3)", "iib",
				 (long long)tid, (long long)ev.version, blob, len),
		      1);
		IT_EQ(it_db_exec(db, "UPDATE threads SET version = ?1 WHERE id = ?2", "ii", (long long)ev.version,
				 (long long)tid),
		      1);
		it_db_close(db);
		if (round == 0) {
			IT_EQ(parley_thread_get(cust, tid, &after), PARLEY_E_THREAD_EVENT_INVALID);
			IT_CHECK(strstr(parley_client_errmsg(cust), "admin") != NULL);
			IT_EQ(parley_thread_get(cust, tid, &after), PARLEY_E_THREAD_EVENT_INVALID); /* nothing kept */
		} else {
			IT_EQ(parley_thread_get(cust, tid, &after), PARLEY_OK); /* the control: an admin's event */
			IT_EQ(after.member_count, info.member_count - 1);
		}
	}
}

/* The server's files hold no message text: a message queued for every member is not in them, while
 * the same scan finds the customer's handle (the control: the scan reads those files). */
static void no_plaintext(void)
{
	const char *marker = "t31-marker-plaintext-7f3a";

	IT_EQ(parley_thread_send(cust, tid, (const uint8_t *)marker, strlen(marker), 0), PARLEY_OK);
	IT_EQ(srv_scan(&s, marker, strlen(marker), 1), SCAN_CLEAN);
	IT_CHECK(srv_scan(&s, "carol", 5, 1) & SCAN_FOUND);
}

/* A staff member removed from the entity (no thread event: the signed staff list changes) leaves the
 * thread in every client's view, and the next sender rotates: bob, removed, gets copies of what the
 * customer sends next and decrypts none. */
static void staff_removed(void)
{
	inbox before;
	uint64_t since;

	pump(agent, &in_agent, 99);
	before = in_agent;
	IT_EQ(parley_entity_remove(admin, "acme", "bob", PARLEY_ROLE_AGENT), PARLEY_OK);
	since = it_now_ms();
	IT_EQ(parley_thread_send(cust, tid, (const uint8_t *)"t31-after-bob-left", 18, 0), PARLEY_OK);
	IT_CHECK(copy_queue_since("alice", "bob", since) >= 1);
	parley_client_disconnect(agent);
	IT_EQ(pump(agent, &in_agent, before.n + 1), before.n);
	IT_EQ(pump(admin, &in_admin, 99) > 0, 1);
	IT_CHECK(strstr(in_admin.all, "t31-after-bob-left\n") != NULL); /* the admin reads it */
	IT_CHECK(strstr(in_agent.all, "t31-after-bob-left\n") == NULL);
}

#define NUM1 "+15551234567"
static uint64_t ctid; /* the gateway's sms thread for NUM1 */

static parley_err gw_send(parley_client *c, parley_channel ch, const char *user, const char *text, uint64_t *id)
{
	return parley_thread_send_channel(c, "acme", ch, user, (const uint8_t *)text, strlen(text), id);
}

static void channel(void)
{
	char code[PARLEY_ENROL_CODE_MAX + 1];
	uint64_t req = 0, id = 0, other = 0;
	parley_rules_change ch;
	parley_thread_info info;
	const char *text = "t31-sms-from-the-customer", *answer = "t31-agent-answers-sms";

	gw = it_user(&s, url, "gwen");
	IT_MUST(&s, gw != NULL);
	listen_on(gw, &in_gw);
	IT_EQ(parley_entity_code(admin, "acme", 0, PARLEY_ROLE_GATEWAY, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(gw, "acme", code, &req), PARLEY_OK);
	IT_EQ(parley_entity_decide(admin, "acme", req, 1), PARLEY_OK);
	parley_rules_change_init(&ch);
	ch.default_agent = 1;
	IT_EQ(parley_entity_set_rules(admin, "acme", "dave", &ch), PARLEY_OK);
	/* refused before anything is signed: a customer is no gateway; a malformed number; a gateway's
	 * native send */
	IT_EQ(gw_send(cust, PARLEY_CHANNEL_SMS, NUM1, text, &id), PARLEY_E_NOT_ENTITY_GATEWAY);
	IT_EQ(gw_send(gw, PARLEY_CHANNEL_SMS, "5551234567", text, &id), PARLEY_E_CHANNEL_INVALID);
	IT_EQ(gw_send(gw, PARLEY_CHANNEL_NATIVE, "x", text, &id), PARLEY_E_CHANNEL_INVALID);
	IT_EQ(parley_thread_send_entity(gw, "acme", (const uint8_t *)text, strlen(text), &id), PARLEY_E_CHANNEL_INVALID);

	int before = in_agent2.n;
	IT_EQ(gw_send(gw, PARLEY_CHANNEL_SMS, NUM1, text, &ctid), PARLEY_OK);
	IT_EQ(pump(agent2, &in_agent2, before + 1), before + 1);
	IT_CHECK(strcmp(in_agent2.last, text) == 0);
	IT_CHECK(strcmp(in_agent2.last_sender, "gwen") == 0);
	IT_EQ(parley_thread_get(agent2, ctid, &info), PARLEY_OK);
	IT_EQ(info.channel, PARLEY_CHANNEL_SMS);
	IT_EQ(info.gateway_verified, 1);
	IT_CHECK(strcmp(info.channel_user, NUM1) == 0);
	IT_CHECK(strcmp(info.gateway, "gwen") == 0);
	IT_CHECK(strcmp(info.customer, "gwen") == 0);
	IT_EQ(info.verification, PARLEY_VERIFICATION_CHANNEL);
	IT_EQ(info.staff, 1);
	/* the agent answers: the gateway reads it as a customer, from the entity */
	IT_EQ(parley_thread_send(agent2, ctid, (const uint8_t *)answer, strlen(answer), 0), PARLEY_OK);
	IT_EQ(pump(gw, &in_gw, 1), 1);
	IT_CHECK(strcmp(in_gw.last, answer) == 0);
	IT_CHECK(strcmp(in_gw.last_sender, "acme") == 0);
	IT_EQ(parley_thread_get(gw, ctid, &info), PARLEY_OK);
	IT_EQ(info.staff, 0);
	IT_CHECK(strcmp(info.channel_user, NUM1) == 0);
	/* the same number continues the thread; another opens another */
	IT_EQ(gw_send(gw, PARLEY_CHANNEL_SMS, NUM1, "t31-sms-second", &id), PARLEY_OK);
	IT_EQ(id, ctid);
	IT_EQ(gw_send(gw, PARLEY_CHANNEL_SMS, "+15557654321", "t31-sms-other", &other), PARLEY_OK);
	IT_CHECK(other != 0 && other != ctid);
	IT_EQ(pump(agent2, &in_agent2, before + 3), before + 3);
	IT_CHECK(strstr(in_agent2.all, "t31-sms-second\n") != NULL && strstr(in_agent2.all, "t31-sms-other\n") != NULL);
	IT_EQ(parley_thread_get(agent2, other, &info), PARLEY_OK);
	IT_CHECK(strcmp(info.channel_user, "+15557654321") == 0);
	IT_EQ(info.channel_disputed, 0);
	IT_EQ(parley_thread_get(agent2, ctid, &info), PARLEY_OK);
	IT_EQ(info.channel_disputed, 0); /* the control of channel_lies: the server told it as signed */
}

/* the gateway's auth prompts (channel_lies): how many, and the last one's channel customer */
static int n_gw_prompts;
static char gw_prompt_user[PARLEY_CHANNEL_USER_MAX + 1];

static void on_gw_prompt(parley_client *c, const parley_auth_prompt *p, void *user)
{
	(void)c;
	(void)user;
	n_gw_prompts++;
	snprintf(gw_prompt_user, sizeof gw_prompt_user, "%s", p->channel_user);
}

/* agent2 sends the one-time code component on thread; the gateway's prompts after it */
static int gw_prompts_after_start(uint64_t component, uint64_t thread)
{
	parley_auth_request req;
	int before = n_gw_prompts;
	IT_EQ(parley_auth_start(agent2, thread, component, &req), PARLEY_OK);
	(void)parley_connect(gw);
	for (int i = 0; i < 20 && n_gw_prompts == before; i++)
		(void)parley_client_run(gw, 100);
	return n_gw_prompts - before;
}

static int db_set(const char *set, uint64_t thread)
{
	char sql[200];
	snprintf(sql, sizeof sql, "UPDATE threads SET %s WHERE id = %llu", set, (unsigned long long)thread);
	return exec_db(sql);
}

/* The server lies in ThreadInfo (its own database changed under it): staff clients show the channel
 * customer the gateway signed in the OPEN, flag the thread, and believe no level of it; a gateway asking
 * for the number the server now files that thread under is not given it to write into. */
static void channel_lies(void)
{
	parley_thread_info info;
	uint64_t id = 0, other = 0;
	const char *lie = "+19998887777";
	int before;

	/* another number's thread, which the admin's client has not fetched yet */
	IT_EQ(gw_send(gw, PARLEY_CHANNEL_SMS, "+15550002222", "t31-sms-lied-about", &other), PARLEY_OK);
	IT_EQ(db_set("channel_user = '+19998887777'", other), 1);
	/* a device seeing the thread for the first time, and one that kept it (the gateway) */
	parley_client *views[] = {admin, gw};
	for (size_t i = 0; i < 2; i++) {
		IT_EQ(parley_thread_get(views[i], other, &info), PARLEY_OK);
		IT_EQ(info.channel, PARLEY_CHANNEL_SMS);
		IT_CHECK(strcmp(info.channel_user, "+15550002222") == 0);
		IT_EQ(info.gateway_verified, 1);
		IT_EQ(info.channel_disputed, 1);
		IT_EQ(info.verification, PARLEY_VERIFICATION_UNVERIFIED);
	}
	/* told right again later: still flagged (the server was caught once) */
	IT_EQ(db_set("channel_user = '+15550002222'", other), 1);
	IT_EQ(parley_thread_get(admin, other, &info), PARLEY_OK);
	IT_EQ(info.channel_disputed, 1);
	/* another channel for a number, on a device that kept the thread without dispute */
	IT_EQ(gw_send(gw, PARLEY_CHANNEL_SMS, "+15550003333", "t31-sms-third", &id), PARLEY_OK);
	IT_EQ(parley_thread_get(agent2, id, &info), PARLEY_OK);
	IT_EQ(info.channel_disputed, 0);
	IT_EQ(info.verification, PARLEY_VERIFICATION_CHANNEL);
	IT_EQ(db_set("channel = 3", id), 1);
	IT_EQ(parley_thread_get(agent2, id, &info), PARLEY_OK);
	IT_EQ(info.channel, PARLEY_CHANNEL_SMS);
	IT_CHECK(strcmp(info.channel_user, "+15550003333") == 0);
	IT_EQ(info.channel_disputed, 1);
	IT_EQ(info.verification, PARLEY_VERIFICATION_UNVERIFIED);
	/* a native customer's thread dressed up as an sms one: shown native, flagged */
	IT_EQ(db_set("channel = 2, channel_user = '+15551234567'", tid), 1);
	IT_EQ(parley_thread_get(agent2, tid, &info), PARLEY_OK);
	IT_EQ(info.channel, PARLEY_CHANNEL_NATIVE);
	IT_CHECK(info.channel_user[0] == '\0' && info.gateway[0] == '\0');
	IT_EQ(info.channel_disputed, 1);
	IT_EQ(db_set("channel = 0, channel_user = ''", tid), 1);
	/* the server files a thread under another number: the gateway writing for that number is given
	 * that thread back (its ThreadInfo even says that number) but its signed OPEN is another number's:
	 * nothing is sent */
	IT_EQ(db_set("channel_user = '+19998887777'", other), 1);
	before = in_agent2.n;
	IT_EQ(gw_send(gw, PARLEY_CHANNEL_SMS, lie, "t31-sms-for-the-other-number", &id), PARLEY_E_PROTO_MALFORMED);
	IT_CHECK(strstr(parley_client_errmsg(gw), "+15550002222") != NULL);
	IT_EQ(pump(agent2, &in_agent2, before + 1), before);
	IT_EQ(pump(admin, &in_admin, 99) >= 0, 1);
	IT_CHECK(strstr(in_admin.all, "t31-sms-for-the-other-number") == NULL);
	IT_EQ(db_set("channel_user = '+15550002222'", other), 1);

	/* an auth prompt is the server's word too: the gateway sends the code to the number the prompt
	 * names, so a prompt naming another number than the thread's signed OPEN is dropped (else a server
	 * could have a customer's one-time code texted to a number of its choosing) */
	parley_auth_component comp, got;
	parley_auth_events aev;
	memset(&comp, 0, sizeof comp);
	snprintf(comp.entity, sizeof comp.entity, "acme");
	snprintf(comp.name, sizeof comp.name, "t31 code");
	comp.type = PARLEY_AUTH_OTP;
	comp.binding = PARLEY_BINDING_NONE;
	comp.credential_ttl_s = 600;
	IT_EQ(parley_auth_component_put(admin, &comp, &got), PARLEY_OK);
	IT_EQ(parley_auth_component_set_state(admin, "acme", got.component_id, PARLEY_COMPONENT_ACTIVE, NULL), PARLEY_OK);
	memset(&aev, 0, sizeof aev);
	aev.on_auth_prompt = on_gw_prompt;
	parley_auth_set_events(gw, &aev);
	IT_EQ(gw_prompts_after_start(got.component_id, ctid), 1); /* the control: told as signed */
	IT_CHECK(strcmp(gw_prompt_user, "+15551234567") == 0);
	IT_EQ(db_set("channel_user = '+19998887777'", ctid), 1);
	IT_EQ(gw_prompts_after_start(got.component_id, ctid), 0);
	IT_EQ(db_set("channel = 3, channel_user = '+15551234567'", ctid), 1);
	IT_EQ(gw_prompts_after_start(got.component_id, ctid), 0);
	IT_EQ(db_set("channel = 2", ctid), 1);
	parley_auth_set_events(gw, NULL);
}

/* The gateway removed from the entity: nothing the agent's client verified vouches for the channel any
 * more, so it shows an unverified channel, whatever the server still says. */
static void channel_removed(void)
{
	parley_thread_info info;

	IT_EQ(parley_entity_remove(admin, "acme", "gwen", PARLEY_ROLE_GATEWAY), PARLEY_OK);
	IT_EQ(parley_thread_get(agent2, ctid, &info), PARLEY_OK);
	IT_EQ(info.channel, PARLEY_CHANNEL_SMS);
	IT_EQ(info.gateway_verified, 0);
	IT_EQ(info.channel_disputed, 0); /* the removal alone */
	IT_CHECK(info.channel_user[0] == '\0' && info.gateway[0] == '\0');
	IT_EQ(info.verification, PARLEY_VERIFICATION_UNVERIFIED);
}

int main(void)
{
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	setup();
	IT_RUN(customer_admin);
	IT_RUN(add_member);
	IT_RUN(remove_rekey);
	IT_RUN(payment);
	IT_RUN(show_name);
	IT_RUN(first_responder);
	IT_RUN(forged_event);
	IT_RUN(no_plaintext);
	IT_RUN(staff_removed);
	IT_RUN(channel);
	IT_RUN(channel_lies);
	IT_RUN(channel_removed);
	parley_client_free(gw);
	parley_client_free(admin);
	parley_client_free(agent);
	parley_client_free(agent2);
	parley_client_free(cust);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures > 0;
}
