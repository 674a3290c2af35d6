/* t32: forwarding a thread to an agent through libparley against a real parleyd (issue 10 item 3,
 * docs/protocol.md §13.5). acme: alice primary admin, bob and dave agents; carol the customer; eve a
 * stranger to acme.
 *
 *   forged_bundles     before any forward: a well-formed bundle sent pairwise by eve (no staff) and by
 *                      dave (a plain agent) is refused by bob's client with FORWARD_INVALID, and no
 *                      sender key of it is imported.
 *   refusals           forward by a non-admin (dave), to a non-member (eve), over a thread of another
 *                      entity (alice's globex thread to bob): nothing stored, nothing received.
 *   forward            carol writes; alice answers, adds bob (a new epoch of every key), carol's key to
 *                      bob is deleted from his queue; alice forwards (HANDLING alone) with a note and
 *                      history 10: bob gets the note and the 5 messages (complete) in his thread history,
 *                      and reads carol's next message with the bundle's key, nothing from carol; the
 *                      server's files hold neither note nor history.
 *   chunk_other_device a history chunk of that forward sent by eve: refused, nothing added.
 *   admin_bad_keys     bundles from alice's (admin) device with the thread's real events but a sender key
 *                      of a non-member, of another thread, or for bob's own device: refused, nothing
 *                      imported.
 *   kill9              parleyd SIGKILLed right after a forward went out: after the restart the forward is
 *                      wholly there or wholly absent (handling agent, bundle envelope), and a retry
 *                      completes it.
 *   forward_newcomer   the story's forward to an agent not in the thread (ADD + HANDLING).
 *   transfer           the handling agent (dave) forwards on to bob (issue 10 item 3, "if rules allow
 *                      transfer"): without MAY_TRANSFER his client refuses (NOT_ENTITY_ADMIN) and a bundle
 *                      he sends pairwise with the thread's real events is refused by bob's client
 *                      (FORWARD_INVALID: no may-transfer); with it, the same bundle is still refused (he
 *                      did not hand the thread to bob), and parley_thread_forward goes through: the server
 *                      records bob, bob's client imports the bundle (the note).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/entity.h>
#include <parley/error.h>
#include <parley/signal_group.h>
#include <parley/thread.h>
#include <sqlite3.h>

#include "client/client_internal.h"
#include "client/thread_internal.h"
#include "harness.h"
#include "signal/sender_key.h"
#include "wire/forward.h"

static srv s;
static char url[128];
static parley_client *alice, *bob, *carol, *dave, *eve;
static uint64_t thread_id;

/* ---- events ---- */

typedef struct seen {
	int forward_invalid;
	int forwarded;     /* bundles (history 0) */
	size_t history;    /* the last count reported */
	int complete;
	char note[PARLEY_THREAD_NOTE_MAX + 1];
	int messages;
	char last[256];
} seen;
static seen bob_seen, alice_seen, dave_seen;

static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	seen *w = user;
	if (err == PARLEY_E_FORWARD_INVALID)
		w->forward_invalid++;
	fprintf(stderr, "# %s from %s/%u: %s\n", parley_strerror(err), handle, (unsigned)device, parley_client_errmsg(c));
}

static void on_message(parley_client *c, const parley_message *m, void *user)
{
}

static void on_thread_message(parley_client *c, const parley_thread_message *m, void *user)
{
	seen *w = user;
	w->messages++;
	snprintf(w->last, sizeof w->last, "%.*s", (int)m->body_len, (const char *)m->body);
}

static void on_forwarded(parley_client *c, const parley_thread_forwarded *f, void *user)
{
	seen *w = user;
	if (f->history == 0 && f->note[0] != '\0') {
		w->forwarded++;
		snprintf(w->note, sizeof w->note, "%s", f->note);
	} else if (f->history == 0) {
		w->forwarded++;
	}
	w->history = f->history;
	w->complete = f->history_complete;
}

static void listen_as(parley_client *c, seen *w)
{
	parley_events ev;
	parley_thread_events tev;

	memset(&ev, 0, sizeof ev);
	ev.on_error = on_error;
	ev.on_message = on_message;
	ev.user = w;
	parley_client_set_events(c, &ev);
	memset(&tev, 0, sizeof tev);
	tev.on_thread_message = on_thread_message;
	tev.on_thread_forwarded = on_forwarded;
	tev.user = w;
	parley_thread_set_events(c, &tev);
}

static void run(parley_client *c, int rounds)
{
	for (int i = 0; i < rounds; i++)
		(void)parley_client_run(c, 100);
}

/* ---- helpers ---- */

static uint64_t account_id(const char *handle)
{
	it_db *db = it_db_open(&s);
	long long id = it_db_int(db, "SELECT id FROM accounts WHERE handle = ?", "t", handle);
	it_db_close(db);
	return id > 0 ? (uint64_t)id : 0;
}

static int64_t db_int(const char *sql)
{
	return it_srv_int(&s, sql);
}

/* the thread's handling agent on the server */
static uint64_t handling_agent(void)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT handling_agent FROM threads WHERE id = %llu", (unsigned long long)thread_id);
	return (uint64_t)db_int(sql);
}

/* 1 if c holds a sender key of (handle, device) for the thread */
static int holds_key(parley_client *c, const char *handle, uint32_t device)
{
	uint8_t did[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], out[PARLEY_GROUP_DISTRIBUTION_MAX];
	parley_signal_address a = {handle, device};
	size_t n = 0;

	client__thread_distribution_id(thread_id, did);
	return sender_key__export_distribution(&c->sigstore, &a, did, out, sizeof out, &n) == PARLEY_OK;
}

static size_t thread_history(parley_client *c)
{
	parley_history_entry e[16];
	size_t n = 0;
	IT_EQ(parley_thread_history(c, thread_id, 0, 16, e, &n), PARLEY_OK);
	parley_history_entries_free(e, n);
	return n;
}

static int sent_status;
static int sent_done;
static void on_sent(parley_client *c, parley_err status, void *user)
{
	sent_status = status;
	sent_done = 1;
}

/* A Content of kind `kind` with payload sent pairwise from `from` to every device of bob. */
static int send_raw(parley_client *from, int kind, const uint8_t *payload, size_t len)
{
	client_content ct;

	memset(&ct, 0, sizeof ct);
	ct.kind = kind;
	ct.payload = payload;
	ct.payload_len = len;
	sent_done = 0;
	IT_EQ(client__send_content(from, "bob", 0, &ct, on_sent, NULL), PARLEY_OK);
	for (int i = 0; i < 100 && !sent_done; i++)
		(void)parley_client_run(from, 50);
	return sent_done ? sent_status : -1;
}

/* ---- setup ---- */

static void join(const char *entity, parley_client *who, parley_entity_role role)
{
	char code[PARLEY_ENROL_CODE_MAX + 1];
	uint64_t req = 0;

	IT_EQ(parley_entity_code(alice, entity, 0, role, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(who, entity, code, &req), PARLEY_OK);
	IT_EQ(parley_entity_decide(alice, entity, req, 1), PARLEY_OK);
}

static void setup(void)
{
	uint64_t id = 0;

	alice = it_user(&s, url, "alice");
	bob = it_user(&s, url, "bob");
	carol = it_user(&s, url, "carol");
	dave = it_user(&s, url, "dave");
	eve = it_user(&s, url, "eve");
	IT_MUST(&s, alice != NULL && bob != NULL && carol != NULL && dave != NULL && eve != NULL);
	IT_EQ(parley_entity_create(alice, "acme", "Acme Support", &id), PARLEY_OK);
	join("acme", bob, PARLEY_ROLE_AGENT);
	join("acme", dave, PARLEY_ROLE_AGENT);
	listen_as(bob, &bob_seen);
	IT_EQ(parley_thread_send_entity(carol, "acme", (const uint8_t *)"hello acme 1", 12, &thread_id), PARLEY_OK);
	IT_MUST(&s, thread_id != 0);
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"hello acme 2", 12, 0), PARLEY_OK);
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"hello acme 3", 12, 0), PARLEY_OK);
	/* alice learns of the thread first (its events verified), then reads what carol wrote */
	parley_thread_info info;
	IT_EQ(parley_thread_get(alice, thread_id, &info), PARLEY_OK);
	listen_as(alice, &alice_seen);
	parley_client_disconnect(alice); /* the next connection (this get's) receives the backlog */
	IT_EQ(parley_thread_get(alice, thread_id, &info), PARLEY_OK);
	for (int i = 0; i < 50 && thread_history(alice) < 3; i++)
		run(alice, 1);
	IT_EQ(thread_history(alice), 3);
}

/* ---- tests ---- */

/* A bundle as eve or dave could build it: the thread's id and entity, one made-up event, a sender key
 * for carol's device 1 of the thread's distribution id. */
static uint8_t *forged_bundle(size_t *len)
{
	static uint8_t ev[150];
	uint8_t did[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], skdm[PARLEY_GROUP_DISTRIBUTION_MAX];
	parley_signal_address carol1 = {"carol", 1};
	size_t skdm_len = 0;
	ProtobufCBinaryData evs[1] = {{sizeof ev, ev}};
	Parley__Wire__ForwardSenderKey k = PARLEY__WIRE__FORWARD_SENDER_KEY__INIT, *kp[1] = {&k};
	Parley__Wire__ForwardBundle b = PARLEY__WIRE__FORWARD_BUNDLE__INIT;
	uint8_t *out;

	/* a key "of carol" made in eve's own store: whoever imports it believes a forgery */
	client__thread_distribution_id(thread_id, did);
	IT_EQ(parley_group_create_distribution(&eve->sigstore, &carol1, did, skdm, sizeof skdm, &skdm_len), PARLEY_OK);
	memset(ev, 0x42, sizeof ev);
	b.forward_id = 77;
	b.thread_id = thread_id;
	b.entity = (char *)"acme";
	b.staff_version = 3;
	b.events = evs;
	b.n_events = 1;
	k.handle = (char *)"carol";
	k.device = 1;
	k.distribution.data = skdm;
	k.distribution.len = skdm_len;
	b.sender_keys = kp;
	b.n_sender_keys = 1;
	b.note = (char *)"forged";
	*len = parley__wire__forward_bundle__get_packed_size(&b);
	out = malloc(*len);
	parley__wire__forward_bundle__pack(&b, out);
	IT_EQ(wire__forward_bundle_check(&b, NULL, 0), PARLEY_OK); /* well-formed: only WHO sent it is wrong */
	return out;
}

static void forged_bundles(void)
{
	size_t len = 0;
	uint8_t *bundle = forged_bundle(&len);

	IT_CHECK(!holds_key(bob, "carol", 1));
	IT_EQ(send_raw(eve, CONTENT_KIND_FORWARD, bundle, len), PARLEY_OK);
	for (int i = 0; i < 50 && bob_seen.forward_invalid < 1; i++)
		run(bob, 1);
	IT_EQ(bob_seen.forward_invalid, 1);
	IT_CHECK(strstr(parley_client_errmsg(bob), "no device of an admin") != NULL);
	IT_EQ(send_raw(dave, CONTENT_KIND_FORWARD, bundle, len), PARLEY_OK);
	for (int i = 0; i < 50 && bob_seen.forward_invalid < 2; i++)
		run(bob, 1);
	IT_EQ(bob_seen.forward_invalid, 2);
	IT_EQ(bob_seen.forwarded, 0);
	IT_CHECK(!holds_key(bob, "carol", 1)); /* nothing imported */
	free(bundle);
}

static void refusals(void)
{
	uint64_t globex = 0, other = 0;

	/* a plain agent may not forward (the server's rule; bob's client would refuse it too): dave is not
	 * even in the thread, then a member of it */
	IT_EQ(parley_thread_forward(dave, thread_id, "bob", NULL, 0), PARLEY_E_NOT_THREAD_MEMBER);
	IT_EQ(parley_thread_add(alice, thread_id, "dave"), PARLEY_OK);
	IT_EQ(parley_thread_forward(dave, thread_id, "bob", NULL, 0), PARLEY_E_NOT_ENTITY_ADMIN);
	/* to someone who is not staff of acme */
	IT_EQ(parley_thread_forward(alice, thread_id, "eve", NULL, 0), PARLEY_E_NOT_ENTITY_MEMBER);
	/* a thread of another entity: alice's globex thread, to acme's agent who is no globex staff */
	IT_EQ(parley_entity_create(alice, "globex", "Globex", &globex), PARLEY_OK);
	IT_EQ(parley_thread_send_entity(carol, "globex", (const uint8_t *)"hi globex", 9, &other), PARLEY_OK);
	IT_EQ(parley_thread_forward(alice, other, "bob", NULL, 0), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_EQ(handling_agent(), 0);
	run(bob, 5);
	IT_EQ(bob_seen.forwarded, 0);
}

/* Deletes carol's pairwise envelopes (her sender key) from bob's queue; how many. */
/* Deletes carol's pairwise envelopes (her sender keys among them) from who's queue on the server. */
static int64_t drop_carols_keys_to(const char *who)
{
	char sql[256];
	int64_t n;

	snprintf(sql, sizeof sql,
		 "DELETE FROM messages WHERE account_id = %llu AND sender_handle = 'carol' AND type IN (1, 2)",
		 (unsigned long long)account_id(who));
	n = it_srv_exec(&s, sql);
	IT_CHECK(n >= 0);
	return n;
}

static void bob_connects(void)
{
	parley_thread_info info;
	IT_EQ(parley_thread_get(bob, thread_id, &info), PARLEY_OK);
}

/* bob is a member already (ADDed), carol's key never reaches him (deleted from his queue); then the
 * forward (HANDLING alone) carries it, at alice's position: carol's NEXT message is read with it, with
 * nothing from carol. */
static void forward(void)
{
	static const char note[] = "note-for-bob-7f3a: VIP customer, refund approved";

	/* alice answers once: her own sender key exists and goes into the bundle too */
	IT_EQ(parley_thread_send(alice, thread_id, (const uint8_t *)"we are on it", 12, 0), PARLEY_OK);
	IT_EQ(parley_thread_add(alice, thread_id, "bob"), PARLEY_OK);
	parley_client_disconnect(bob); /* nothing pushed to him until he connects again */
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"before the forward", 18, 0), PARLEY_OK);
	IT_EQ(drop_carols_keys_to("bob"), 1);
	for (int i = 0; i < 50 && thread_history(alice) < 5; i++)
		run(alice, 1);
	IT_EQ(thread_history(alice), 5);

	IT_EQ(parley_thread_forward(alice, thread_id, "bob", note, 10), PARLEY_OK);
	IT_EQ(handling_agent(), account_id("bob"));
	bob_connects();
	for (int i = 0; i < 80 && !bob_seen.complete; i++)
		run(bob, 1);
	IT_EQ(bob_seen.forwarded, 1);
	IT_CHECK(strcmp(bob_seen.note, note) == 0);
	IT_EQ(bob_seen.history, 5);
	IT_EQ(bob_seen.complete, 1);
	IT_EQ(thread_history(bob), 5); /* "before the forward" too: he could not decrypt it, the history has it */
	IT_CHECK(holds_key(bob, "carol", 1));
	IT_CHECK(holds_key(bob, "alice", 1));

	/* carol writes again: bob got "her key" for this epoch as far as her client knows, so nothing more
	 * comes from her; whatever pairwise envelope of hers there is goes too */
	parley_client_disconnect(bob);
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"after the forward", 17, 0), PARLEY_OK);
	fprintf(stderr, "# carol's pairwise envelopes deleted after the forward: %lld\n",
		(long long)drop_carols_keys_to("bob"));
	bob_connects();
	for (int i = 0; i < 50 && strcmp(bob_seen.last, "after the forward") != 0; i++)
		run(bob, 1);
	IT_CHECK(strcmp(bob_seen.last, "after the forward") == 0);

	/* the server's files: neither the note nor a history body in clear */
	IT_EQ(srv_scan(&s, note, strlen(note), 1), SCAN_CLEAN);
	IT_EQ(srv_scan(&s, "hello acme 2", 12, 1), SCAN_CLEAN);
}

static void chunk_other_device(void)
{
	Parley__Wire__ForwardHistory h = PARLEY__WIRE__FORWARD_HISTORY__INIT;
	Parley__Wire__ForwardHistoryEntry e = PARLEY__WIRE__FORWARD_HISTORY_ENTRY__INIT, *ep[1] = {&e};
	sqlite3_stmt *st = NULL;
	uint8_t buf[256];
	size_t before = thread_history(bob);
	int invalid = bob_seen.forward_invalid;
	uint64_t fid = 0;

	/* the real forward's id, from bob's client.db */
	IT_EQ(sqlite3_prepare_v2(client__state_db(bob->state), "SELECT forward_id FROM forwards", -1, &st, NULL),
	      SQLITE_OK);
	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		fid = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	IT_CHECK(fid != 0);
	e.sender = (char *)"carol";
	e.sender_device = 1;
	e.timestamp = 1;
	e.body.data = (uint8_t *)"injected history";
	e.body.len = 16;
	h.forward_id = fid;
	h.thread_id = thread_id;
	h.seq = 0;
	h.entries = ep;
	h.n_entries = 1;
	IT_EQ(send_raw(eve, CONTENT_KIND_FORWARD_HISTORY, buf, parley__wire__forward_history__pack(&h, buf)),
	      PARLEY_OK);
	for (int i = 0; i < 50 && bob_seen.forward_invalid == invalid; i++)
		run(bob, 1);
	IT_EQ(bob_seen.forward_invalid, invalid + 1);
	IT_EQ(thread_history(bob), before);
}

/* An admin's own device sends bundles with the thread's real events but a bad sender key: for eve (no
 * member of the thread), for another thread's distribution id, for bob's own device. Each refused with
 * its reason, nothing of it imported (no key of eve; bob's own key untouched). */
static void admin_bad_keys(void)
{
	uint8_t **evs = NULL, did[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], skdm[3][PARLEY_GROUP_DISTRIBUTION_MAX];
	size_t *lens = NULL, nev = 0, skdm_len[3] = {0};
	parley_signal_address eve1 = {"eve", 1}, carol1 = {"carol", 1}, bob1 = {"bob", 1};
	static const char *const why[3] = {"no member", "not one of thread", "this very device"};
	int invalid = bob_seen.forward_invalid;
	uint8_t before[PARLEY_GROUP_DISTRIBUTION_MAX], after[PARLEY_GROUP_DISTRIBUTION_MAX];
	size_t before_len = 0, after_len = 0;

	/* the agent answers: his own sender key exists from now on */
	IT_EQ(parley_thread_send(bob, thread_id, (const uint8_t *)"bob here", 8, 0), PARLEY_OK);
	IT_EQ(client__thread_events(alice, thread_id, &evs, &lens, &nev), PARLEY_OK);
	client__thread_distribution_id(thread_id, did);
	IT_EQ(parley_group_create_distribution(&eve->sigstore, &eve1, did, skdm[0], sizeof skdm[0], &skdm_len[0]),
	      PARLEY_OK);
	client__thread_distribution_id(thread_id + 1000, did); /* another thread's id */
	IT_EQ(parley_group_create_distribution(&eve->sigstore, &carol1, did, skdm[1], sizeof skdm[1], &skdm_len[1]),
	      PARLEY_OK);
	client__thread_distribution_id(thread_id, did);
	IT_EQ(parley_group_create_distribution(&eve->sigstore, &bob1, did, skdm[2], sizeof skdm[2], &skdm_len[2]),
	      PARLEY_OK);
	IT_EQ(sender_key__export_distribution(&bob->sigstore, &bob1, did, before, sizeof before, &before_len),
	      PARLEY_OK);
	for (int k = 0; k < 3; k++) {
		ProtobufCBinaryData *pe = calloc(nev, sizeof(*pe));
		Parley__Wire__ForwardSenderKey key = PARLEY__WIRE__FORWARD_SENDER_KEY__INIT, *kp[1] = {&key};
		Parley__Wire__ForwardBundle b = PARLEY__WIRE__FORWARD_BUNDLE__INIT;
		uint8_t *buf;
		size_t len;

		for (size_t i = 0; i < nev; i++) {
			pe[i].data = evs[i];
			pe[i].len = lens[i];
		}
		b.forward_id = 900 + (uint64_t)k;
		b.thread_id = thread_id;
		b.entity = (char *)"acme";
		b.staff_version = 3;
		b.events = pe;
		b.n_events = nev;
		key.handle = (char *)(k == 0 ? "eve" : k == 1 ? "carol" : "bob");
		key.device = 1;
		key.distribution.data = skdm[k];
		key.distribution.len = skdm_len[k];
		b.sender_keys = kp;
		b.n_sender_keys = 1;
		b.note = (char *)"";
		len = parley__wire__forward_bundle__get_packed_size(&b);
		buf = malloc(len);
		parley__wire__forward_bundle__pack(&b, buf);
		IT_EQ(send_raw(alice, CONTENT_KIND_FORWARD, buf, len), PARLEY_OK);
		for (int i = 0; i < 50 && bob_seen.forward_invalid == invalid + k; i++)
			run(bob, 1);
		IT_EQ(bob_seen.forward_invalid, invalid + k + 1);
		IT_CHECK(strstr(parley_client_errmsg(bob), why[k]) != NULL);
		free(buf);
		free(pe);
	}
	IT_CHECK(!holds_key(bob, "eve", 1));
	IT_EQ(sender_key__export_distribution(&bob->sigstore, &bob1, did, after, sizeof after, &after_len), PARLEY_OK);
	IT_CHECK(before_len == after_len && memcmp(before, after, before_len) == 0);
	client__thread_events_free(evs, lens, nev);
}

static void kill9(void)
{
	uint64_t agent;
	int64_t before, bundles;
	char sql[256];
	int done;

	snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE account_id = %llu AND sender_handle = 'alice'",
		 (unsigned long long)account_id("dave"));
	before = db_int(sql);
	/* forward to dave; parleyd dies as soon as the request went out */
	sent_done = 0;
	IT_EQ(parley_thread_forward_start(alice, thread_id, "dave", "crash test", 0, on_sent, NULL), PARLEY_OK);
	for (int i = 0; i < 200 && !sent_done && alice->sent == NULL; i++)
		(void)parley_client_run_once(alice, NULL);
	srv_kill9(&s);
	for (int i = 0; i < 100 && !sent_done; i++)
		(void)parley_client_run(alice, 50);
	done = sent_done;
	srv_restart(&s); /* on a new port: alice's client moves with it */
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	parley_client_free(alice);
	alice = it_client_at(s.dir, "alice", url, 5000);
	IT_MUST(&s, alice != NULL);
	agent = handling_agent();
	bundles = db_int(sql) - before;
	fprintf(stderr, "# after SIGKILL: callback %d (%d), handling agent %llu, bundles queued for dave %lld\n", done,
		sent_status, (unsigned long long)agent, (long long)bundles);
	/* all or nothing: dave handles it exactly when his bundle is queued */
	IT_CHECK((agent == account_id("dave")) == (bundles == 1));
	if (agent != account_id("dave"))
		IT_EQ(parley_thread_forward(alice, thread_id, "dave", "crash test", 0), PARLEY_OK);
	IT_EQ(handling_agent(), account_id("dave"));
	IT_EQ(db_int(sql) - before, 1);
}

/* The story's forward, to an agent who is not in the thread (ADD + HANDLING). An ADD starts no new
 * epoch, so the keys the bundle carries are the members' current ones: carol's next message reaches
 * dave and he reads it although every pairwise envelope of hers (her own handing of her key to him) is
 * deleted from his queue — the customer does not re-key for the agent. dave leaves first (a REMOVE:
 * everyone rotates) and carol writes once, so alice holds carol's new key when she forwards. */
static void forward_newcomer(void)
{
	size_t had;

	/* parleyd moved to a new port in kill9 */
	parley_client_free(carol);
	parley_client_free(dave);
	carol = it_client_at(s.dir, "carol", url, 5000);
	dave = it_client_at(s.dir, "dave", url, 5000);
	IT_MUST(&s, carol != NULL && dave != NULL);
	listen_as(alice, &alice_seen); /* her client was made anew in kill9 */
	IT_EQ(parley_thread_remove(alice, thread_id, "dave"), PARLEY_OK);
	had = thread_history(alice);
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"after dave left", 15, 0), PARLEY_OK);
	for (int i = 0; i < 50 && thread_history(alice) == had; i++)
		run(alice, 1);
	IT_EQ(thread_history(alice), had + 1);

	IT_EQ(parley_thread_forward(alice, thread_id, "dave", "newcomer", 0), PARLEY_OK);
	IT_EQ(handling_agent(), account_id("dave"));
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"to the newcomer", 15, 0), PARLEY_OK);
	IT_CHECK(drop_carols_keys_to("dave") >= 1);
	listen_as(dave, &dave_seen);
	{
		parley_thread_info info;
		IT_EQ(parley_thread_get(dave, thread_id, &info), PARLEY_OK);
	}
	for (int i = 0; i < 80 && strcmp(dave_seen.last, "to the newcomer") != 0; i++)
		run(dave, 1);
	IT_CHECK(dave_seen.forwarded >= 1);
	IT_CHECK(strcmp(dave_seen.last, "to the newcomer") == 0);
}

/* A well-formed bundle from `from`'s own view of the thread: its kept (real, signed) events and the
 * sender key of carol's device 1 that it holds; packed into *len bytes (free). */
static uint8_t *chain_bundle(parley_client *from, uint64_t forward_id, size_t *len)
{
	uint8_t **evs = NULL, did[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], skdm[PARLEY_GROUP_DISTRIBUTION_MAX];
	size_t *lens = NULL, nev = 0, skdm_len = 0;
	parley_signal_address carol1 = {"carol", 1};
	Parley__Wire__ForwardSenderKey key = PARLEY__WIRE__FORWARD_SENDER_KEY__INIT, *kp[1] = {&key};
	Parley__Wire__ForwardBundle b = PARLEY__WIRE__FORWARD_BUNDLE__INIT;
	ProtobufCBinaryData *pe;
	uint8_t *buf;

	IT_EQ(client__thread_events(from, thread_id, &evs, &lens, &nev), PARLEY_OK);
	client__thread_distribution_id(thread_id, did);
	IT_EQ(sender_key__export_distribution(&from->sigstore, &carol1, did, skdm, sizeof skdm, &skdm_len), PARLEY_OK);
	pe = calloc(nev > 0 ? nev : 1, sizeof(*pe));
	for (size_t i = 0; i < nev; i++) {
		pe[i].data = evs[i];
		pe[i].len = lens[i];
	}
	b.forward_id = forward_id;
	b.thread_id = thread_id;
	b.entity = (char *)"acme";
	b.staff_version = 3;
	b.events = pe;
	b.n_events = nev;
	key.handle = (char *)"carol";
	key.device = 1;
	key.distribution.data = skdm;
	key.distribution.len = skdm_len;
	b.sender_keys = kp;
	b.n_sender_keys = 1;
	b.note = (char *)"from the handling agent";
	*len = parley__wire__forward_bundle__get_packed_size(&b);
	buf = malloc(*len);
	parley__wire__forward_bundle__pack(&b, buf);
	free(pe);
	client__thread_events_free(evs, lens, nev);
	return buf;
}

/* Sends dave's chain bundle to bob; 1 if bob's client refused it (FORWARD_INVALID) naming `why`. */
static int dave_bundle_refused(uint64_t forward_id, const char *why)
{
	size_t len = 0;
	uint8_t *buf = chain_bundle(dave, forward_id, &len);
	int invalid = bob_seen.forward_invalid, forwarded = bob_seen.forwarded;

	IT_EQ(send_raw(dave, CONTENT_KIND_FORWARD, buf, len), PARLEY_OK);
	for (int i = 0; i < 50 && bob_seen.forward_invalid == invalid; i++)
		run(bob, 1);
	free(buf);
	return bob_seen.forward_invalid == invalid + 1 && bob_seen.forwarded == forwarded &&
	       strstr(parley_client_errmsg(bob), why) != NULL;
}

static void transfer(void)
{
	parley_rules_change ch;
	parley_entity *e = NULL;
	int forwarded;

	/* parleyd moved to a new port in kill9: bob's client follows */
	parley_client_free(bob);
	bob = it_client_at(s.dir, "bob", url, 5000);
	IT_MUST(&s, bob != NULL);
	listen_as(bob, &bob_seen);
	bob_connects();
	IT_EQ(handling_agent(), account_id("dave"));

	/* without the rule: dave handles the thread, yet may not hand it on */
	IT_EQ(parley_thread_forward(dave, thread_id, "bob", "over to you", 0), PARLEY_E_NOT_ENTITY_ADMIN);
	IT_EQ(handling_agent(), account_id("dave"));
	IT_CHECK(dave_bundle_refused(1001, "may-transfer"));

	/* with it */
	parley_rules_change_init(&ch);
	ch.may_transfer = 1;
	IT_EQ(parley_entity_set_rules(alice, "acme", "dave", &ch), PARLEY_OK);
	IT_EQ(parley_entity_get(dave, "acme", &e), PARLEY_OK);
	parley_entity_free(e);
	/* a bundle outside a forward: the chain's last HANDLING is alice's to dave, not dave's to bob */
	IT_CHECK(dave_bundle_refused(1002, "not the handling agent who handed"));
	forwarded = bob_seen.forwarded;
	IT_EQ(parley_thread_forward(dave, thread_id, "bob", "over to you", 0), PARLEY_OK);
	IT_EQ(handling_agent(), account_id("bob"));
	for (int i = 0; i < 80 && bob_seen.forwarded == forwarded; i++)
		run(bob, 1);
	IT_EQ(bob_seen.forwarded, forwarded + 1);
	IT_CHECK(strcmp(bob_seen.note, "over to you") == 0);
	/* and the server now holds bob as the one who may (not) hand it on: dave no longer handles it */
	IT_EQ(parley_thread_forward(dave, thread_id, "alice", NULL, 0), PARLEY_E_NOT_ENTITY_ADMIN);
}

int main(void)
{
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	setup();
	IT_RUN(forged_bundles);
	IT_RUN(refusals);
	IT_RUN(forward);
	IT_RUN(chunk_other_device);
	IT_RUN(admin_bad_keys);
	IT_RUN(kill9);
	IT_RUN(forward_newcomer);
	IT_RUN(transfer);
	parley_client_free(alice);
	parley_client_free(bob);
	parley_client_free(carol);
	parley_client_free(dave);
	parley_client_free(eve);
	srv_stop(&s);
	srv_cleanup(&s);
	return it_failures > 100 ? 100 : it_failures;
}
