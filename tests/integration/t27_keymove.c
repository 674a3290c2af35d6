/* t27: moving keys between devices (docs/protocol.md §11.4) and devices vouched for by a trusted signed
 * list after an account registered again, against a real parleyd with real libparley clients.
 *
 *  transfer:   alice (account key on a1, an entity "alicecorp" created there) links a2. Transfers to a
 *              device that does not exist (NO_SUCH_DEVICE), to a device the server injected into its
 *              database (DEVICE_NOT_LISTED) and to a1 itself are refused; to a2 it goes, and a second
 *              one while it waits is KEY_TRANSFER_PENDING. a2 imports (on_keys_moved, received 1) and
 *              confirms; a1 wipes (received 0) and then cannot add a device (NO_ACCOUNT_KEY); a2 links
 *              a3, and bob's send to alice reaches a3.
 *  entity:     a2 holds the entity key of alicecorp (parley_entity_key_here), a1 no longer does.
 *  forgery:    KeyTransfers built with the internal API: from a2 to a3 one whose private half does not
 *              derive the account key, one with a consistent key pair that is not alice's account key,
 *              and from bob one carrying alice's REAL account key pair: all KEY_TRANSFER_INVALID on
 *              a3, which still holds no private half; entity keys from bob for alicecorp that are not
 *              its verified key, or whose private half does not match, likewise. A confirm with a
 *              made-up id wipes nothing.
 *  confirm:    a2 moves the key on to a3 while a1 listens (it gets the filler: nothing imported);
 *              confirms of that id from bob, from a1 and of another id from a3 wipe nothing; a3's
 *              real confirm makes a2 wipe both keys.
 *  reregister: bob (b1, b2) registers again from scratch under the same handle (the old account is
 *              deleted from the server database, as an operator freeing the handle would): alice gets
 *              UNTRUSTED_IDENTITY until parley_trust(bob), then sends to both new devices and receives
 *              from both with no further trust step; a device the test injects into the server for the
 *              new bob is still DEVICE_NOT_LISTED. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/client.h>
#include <parley/entity.h>
#include <parley/error.h>
#include <sodium.h>
#include <sqlite3.h>

#include "client/client_internal.h"
#include "crypto/crypto.h"
#include "harness.h"

static srv s;
static char url[128];

#define MUST(cond) IT_MUST(&s, cond)

static parley_client *client(const char *name)
{
	return it_client_must(&s, url, name);
}

/* What each client saw (user = its tally). */
typedef struct tally {
	const char *name;
	int imported, wiped, invalid, messages, identity_changed;
	char last_from[PARLEY_HANDLE_MAX + 1];
	uint32_t from_devices; /* bit per sender device of the messages */
} tally;

static void on_moved(parley_client *c, const char *handle, int received, const char *what, void *user)
{
	tally *t = user;
	printf("# %s: keys moved (%s %s, %s)\n", t->name, received ? "imported from" : "wiped after the confirm of",
	       handle, what);
	if (received)
		t->imported++;
	else
		t->wiped++;
}
static void on_err(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	tally *t = user;
	printf("# %s: error %s from %s.%u: %s\n", t->name, parley_strerror(err), handle, (unsigned)device,
	       parley_client_errmsg(c));
	if (err == PARLEY_E_KEY_TRANSFER_INVALID)
		t->invalid++;
}
static void on_ident(parley_client *c, const char *handle, uint32_t device, void *user)
{
	((tally *)user)->identity_changed++;
}
static void on_msg(parley_client *c, const parley_message *m, void *user)
{
	tally *t = user;
	t->messages++;
	snprintf(t->last_from, sizeof t->last_from, "%s", m->sender);
	if (m->sender_device < 32)
		t->from_devices |= 1u << m->sender_device;
}

static void listen_with(parley_client *c, tally *t, const char *name)
{
	parley_events ev = {0};
	memset(t, 0, sizeof(*t));
	t->name = name;
	ev.on_message = on_msg;
	ev.on_error = on_err;
	ev.on_keys_moved = on_moved;
	ev.on_identity_changed = on_ident;
	ev.user = t;
	parley_client_set_events(c, &ev);
}

/* Runs c until *what > before (at most ~5 s). */
static void run_until(parley_client *c, const int *what, int before)
{
	for (int i = 0; i < 50 && *what <= before; i++)
		(void)parley_client_run(c, 100);
}

/* A device row for handle written straight into the server's database (an operator adding a device to
 * someone's account), then a client linked as it: it authenticates and uploads its own keys. */
static parley_client *inject_device(const char *handle, uint32_t id, const char *name)
{
	parley_client *x = client(name);
	uint8_t pk[32];
	it_db *db = it_db_open(&s);

	MUST(parley_device_public_key(x, pk) == PARLEY_OK);
	IT_EQ(it_db_exec(db,
			 "INSERT INTO devices(account_id, device_id, name, pubkey, created_ms, last_seen_ms)"
			 " SELECT id, ?1, 'injected', ?2, 0, 0 FROM accounts WHERE handle = ?3",
			 "ibt", (long long)id, pk, sizeof pk, handle),
	      1);
	it_db_close(db);
	IT_EQ(parley_link(x, handle, id), PARLEY_OK);
	return x;
}

static void drop_device(const char *handle, uint32_t id)
{
	/* it_db_open turns SQLite's foreign keys on: the delete cascades as on PostgreSQL */
	it_db *db = it_db_open(&s);
	IT_EQ(it_db_exec(db,
			 "DELETE FROM devices WHERE device_id = ?1 AND account_id ="
			 " (SELECT id FROM accounts WHERE handle = ?2)",
			 "it", (long long)id, handle),
	      1);
	it_db_close(db);
}

/* A new device of handle added by `by` (which holds the account key) and linked. */
static parley_client *link_device(parley_client *by, const char *handle, const char *name, uint32_t *id)
{
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES];
	parley_client *x = client(name);
	MUST(parley_device_link_code(x, handle, code) == PARLEY_OK);
	MUST(parley_device_add(by, code, name, id) == PARLEY_OK);
	MUST(parley_link(x, handle, *id) == PARLEY_OK);
	return x;
}

static int holds_account_key(parley_client *c)
{
	uint8_t pub[33];
	int have = 0;
	MUST(client__account_key(c, pub, &have) == PARLEY_OK);
	return have;
}

static int entity_key_here(parley_client *c, const char *entity)
{
	parley_entity *e = NULL;
	int here = -1;
	if (parley_entity_get(c, entity, &e) == PARLEY_OK)
		here = parley_entity_key_here(e);
	parley_entity_free(e);
	return here;
}

static parley_client *a1, *a2, *a3, *bob;
static tally ta1, ta2, ta3, tbob;

static void transfer(void)
{
	uint32_t id = 0;
	uint64_t eid = 0;
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES];

	a1 = client("a1");
	bob = client("bob");
	MUST(parley_register(a1, "alice", NULL) == PARLEY_OK);
	MUST(parley_register(bob, "bob", NULL) == PARLEY_OK);
	IT_EQ(parley_entity_create(a1, "alicecorp", "Alice Corp", &eid), PARLEY_OK);
	a2 = link_device(a1, "alice", "a2", &id);
	IT_EQ(id, 2);
	parley_client *evil = inject_device("alice", 9, "evil-a");
	listen_with(a1, &ta1, "a1");

	/* refused before anything leaves */
	IT_EQ(parley_account_key_transfer(a1, 7), PARLEY_E_NO_SUCH_DEVICE);
	IT_EQ(parley_account_key_transfer(a1, 1), PARLEY_E_NO_SUCH_DEVICE);
	IT_EQ(parley_account_key_transfer(a1, 9), PARLEY_E_DEVICE_NOT_LISTED);
	IT_EQ(parley_account_key_transfer(a2, 1), PARLEY_E_NO_ACCOUNT_KEY);
	/* the injected device goes again: while the server holds it, every send to alice is refused */
	parley_client_free(evil);
	drop_device("alice", 9);
	/* the transfer, and a second one while it waits */
	IT_EQ(parley_account_key_transfer(a1, 2), PARLEY_OK);
	IT_EQ(parley_account_key_transfer(a1, 2), PARLEY_E_KEY_TRANSFER_PENDING);
	IT_EQ(holds_account_key(a1), 1); /* kept until the confirm */

	/* a2 receives: imports the account key and the entity key, confirms */
	listen_with(a2, &ta2, "a2");
	IT_EQ(parley_connect(a2), PARLEY_OK);
	run_until(a2, &ta2.imported, 1);
	IT_EQ(ta2.imported, 2); /* "account key" and "alicecorp" */
	IT_EQ(ta2.invalid, 0);
	IT_EQ(ta2.messages, 0); /* keys never reach on_message */
	IT_EQ(holds_account_key(a2), 1);
	/* a1 gets the confirm and wipes its copies */
	IT_EQ(parley_connect(a1), PARLEY_OK);
	run_until(a1, &ta1.wiped, 1);
	IT_EQ(ta1.wiped, 2);
	IT_EQ(holds_account_key(a1), 0);
	parley_client *x = client("x");
	MUST(parley_device_link_code(x, "alice", code) == PARLEY_OK);
	IT_EQ(parley_device_add(a1, code, "x", &id), PARLEY_E_NO_ACCOUNT_KEY);
	parley_client_free(x);
	/* the pending transfer is gone with the confirm: a1 is refused for the key, not for the wait */
	IT_EQ(parley_account_key_transfer(a1, 2), PARLEY_E_NO_ACCOUNT_KEY);

	/* a2 signs lists now: it links a3, and bob's message reaches a3 */
	a3 = link_device(a2, "alice", "a3", &id);
	IT_EQ(id, 3);
	IT_EQ(parley_send(bob, "alice", "hello all three"), PARLEY_OK);
	listen_with(a3, &ta3, "a3");
	IT_EQ(parley_connect(a3), PARLEY_OK);
	run_until(a3, &ta3.messages, 0);
	IT_EQ(ta3.messages, 1);
}

static void entity_key_carried(void)
{
	IT_EQ(entity_key_here(a2, "alicecorp"), 1);
	IT_EQ(entity_key_here(a1, "alicecorp"), 0);
	/* and a2 can act as the entity's primary admin: only the key holder makes enrolment codes */
	char code[PARLEY_ENROL_CODE_MAX + 1];
	uint64_t exp = 0;
	IT_EQ(parley_entity_code(a2, "alicecorp", 0, PARLEY_ROLE_AGENT, code, sizeof code, &exp), PARLEY_OK);
}

static void send_raw(parley_client *from, const char *to, uint32_t device, const Parley__Wire__KeyTransfer *kt)
{
	uint8_t packed[512];
	client_sync sy = {0};
	size_t len = parley__wire__key_transfer__get_packed_size(kt);
	MUST(len <= sizeof packed);
	parley__wire__key_transfer__pack(kt, packed);
	IT_EQ(client__sync_wait(from, &sy, client__send_key_transfer(from, to, device, packed, len, client__sync_done,
								     &sy)),
	      PARLEY_OK);
}

static void forgery(void)
{
	Parley__Wire__KeyTransfer kt = PARLEY__WIRE__KEY_TRANSFER__INIT;
	uint8_t ak_pub[33], ak_priv[32], other_pub[33];
	crypto_keypair other;
	int have = 0;

	MUST(client__akey_load(a2, ak_pub, ak_priv, &have) == PARLEY_OK && have);
	MUST(crypto__keypair_generate(&other) == PARLEY_OK);
	crypto__pubkey_serialize(other_pub, other.pub);
	kt.transfer_id = 77;

	/* a2 -> a3: the account key's public half with another private half */
	kt.account_key.data = ak_pub;
	kt.account_key.len = 33;
	kt.account_key_private.data = other.priv;
	kt.account_key_private.len = 32;
	send_raw(a2, "alice", 3, &kt);
	run_until(a3, &ta3.invalid, 0);
	IT_EQ(ta3.invalid, 1);
	/* a consistent key pair that is not alice's account key */
	kt.account_key.data = other_pub;
	send_raw(a2, "alice", 3, &kt);
	run_until(a3, &ta3.invalid, 1);
	IT_EQ(ta3.invalid, 2);
	/* bob sends alice's real account key pair: only alice's own devices may move it */
	kt.account_key.data = ak_pub;
	kt.account_key_private.data = ak_priv;
	listen_with(bob, &tbob, "bob");
	send_raw(bob, "alice", 0, &kt);
	run_until(a3, &ta3.invalid, 2);
	IT_EQ(ta3.invalid, 3);
	IT_EQ(ta3.imported, 0);
	IT_EQ(holds_account_key(a3), 0);
	uint8_t pub_now[33];
	MUST(client__account_key(a3, pub_now, NULL) == PARLEY_OK);
	IT_CHECK(memcmp(pub_now, ak_pub, 33) == 0); /* nothing changed */

	/* entity keys from bob for alice's entity: a consistent pair that is not the entity's key, and the
	 * entity's real public key with another private half */
	Parley__Wire__KeyTransfer ek = PARLEY__WIRE__KEY_TRANSFER__INIT;
	Parley__Wire__EntityKeyTransfer et = PARLEY__WIRE__ENTITY_KEY_TRANSFER__INIT, *etp = &et;
	parley_entity *ent = NULL;
	uint8_t ent_pub[33];
	MUST(parley_entity_get(a3, "alicecorp", &ent) == PARLEY_OK);
	memcpy(ent_pub, parley_entity_key(ent), 33);
	parley_entity_free(ent);
	ek.transfer_id = 78;
	ek.n_entity_keys = 1;
	ek.entity_keys = &etp;
	et.entity = "alicecorp";
	et.entity_key.data = other_pub;
	et.entity_key.len = 33;
	et.private_key.data = other.priv;
	et.private_key.len = 32;
	send_raw(bob, "alice", 0, &ek);
	run_until(a3, &ta3.invalid, 3);
	IT_EQ(ta3.invalid, 4);
	et.entity_key.data = ent_pub;
	send_raw(bob, "alice", 0, &ek);
	run_until(a3, &ta3.invalid, 4);
	IT_EQ(ta3.invalid, 5);
	IT_EQ(ta3.imported, 0);
	IT_EQ(entity_key_here(a3, "alicecorp"), 0);

	/* a confirm nobody asked for wipes nothing on a2 */
	Parley__Wire__KeyTransfer cf = PARLEY__WIRE__KEY_TRANSFER__INIT;
	cf.transfer_id = 77;
	cf.confirm = 1;
	send_raw(a3, "alice", 2, &cf);
	for (int i = 0; i < 10; i++)
		(void)parley_client_run(a2, 100);
	IT_EQ(ta2.wiped, 0);
	IT_EQ(holds_account_key(a2), 1);
	sodium_memzero(ak_priv, sizeof ak_priv);
	crypto__keypair_wipe(&other);
}

/* The transfer id a2 recorded for its pending transfer (client.db key_moves). */
static uint64_t pending_id(parley_client *c)
{
	sqlite3_stmt *st = NULL;
	uint64_t id = 0;
	MUST(sqlite3_prepare_v2(client__state_db(c->state), "SELECT transfer_id FROM key_moves WHERE entity = ''", -1,
				&st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

/* a2 moves the key on to a3: a1 (listening) gets only the filler; confirms of that id from the wrong
 * account, from the wrong device of the account and of another id wipe nothing; a3's real one does. */
static void confirm_rules(void)
{
	Parley__Wire__KeyTransfer cf = PARLEY__WIRE__KEY_TRANSFER__INIT;
	uint64_t id;

	listen_with(a1, &ta1, "a1");
	for (int i = 0; i < 10; i++) /* what forgery sent to every device of alice */
		(void)parley_client_run(a1, 100);
	listen_with(a1, &ta1, "a1");
	listen_with(a2, &ta2, "a2");
	/* a3 starts receiving only after its forged confirms below: a receiving a3 could take the real
	 * transfer (and confirm it) inside its own blocking sends */
	parley_client_set_events(a3, NULL);
	IT_EQ(parley_account_key_transfer(a2, 3), PARLEY_OK);
	id = pending_id(a2);
	IT_CHECK(id != 0);
	for (int i = 0; i < 10; i++)
		(void)parley_client_run(a1, 100);
	IT_EQ(ta1.imported, 0); /* the filler: no key, no error */
	IT_EQ(ta1.invalid, 0);
	IT_EQ(holds_account_key(a1), 0);
	cf.confirm = 1;
	cf.transfer_id = id;
	send_raw(bob, "alice", 0, &cf);  /* another account */
	send_raw(a1, "alice", 2, &cf);   /* the wrong device of alice */
	cf.transfer_id = id + 1;
	send_raw(a3, "alice", 2, &cf);   /* the right device, another id */
	for (int i = 0; i < 15; i++)
		(void)parley_client_run(a2, 100);
	IT_EQ(ta2.wiped, 0);
	IT_EQ(holds_account_key(a2), 1);
	IT_EQ(pending_id(a2), id);
	/* a3 imports and confirms: now a2 wipes (a reconnect: envelopes pushed while a3 was not
	 * receiving stay on the server until its next connection) */
	parley_client_disconnect(a3);
	listen_with(a3, &ta3, "a3");
	IT_EQ(parley_connect(a3), PARLEY_OK);
	run_until(a3, &ta3.imported, 1);
	IT_EQ(ta3.imported, 2);
	run_until(a2, &ta2.wiped, 1);
	IT_EQ(ta2.wiped, 2);
	IT_EQ(holds_account_key(a2), 0);
	IT_EQ(holds_account_key(a3), 1);
	IT_EQ(pending_id(a2), 0);
	IT_EQ(entity_key_here(a3, "alicecorp"), 1);
	IT_EQ(entity_key_here(a2, "alicecorp"), 0);

	/* the internal API other transfers use (an entity key to another account: any device of that
	 * handle may confirm): a confirm from another handle wipes nothing, one from that handle does */
	IT_EQ(client__keymove_pending_add(a3, 555, "alice", "alicecorp"), PARLEY_OK);
	cf.transfer_id = 555;
	send_raw(bob, "alice", 0, &cf);
	for (int i = 0; i < 15; i++)
		(void)parley_client_run(a3, 100);
	IT_EQ(entity_key_here(a3, "alicecorp"), 1);
	ta3.wiped = 0;
	send_raw(a1, "alice", 3, &cf);
	run_until(a3, &ta3.wiped, 0);
	IT_EQ(ta3.wiped, 1);
	IT_EQ(entity_key_here(a3, "alicecorp"), 0);
	IT_EQ(holds_account_key(a3), 1); /* only what the pending entry named */
}

/* The operator frees the handle: the account goes from the server database (cascading to its devices,
 * keys and lists) while parleyd runs (it reads accounts from the database per request). */
static void delete_account(const char *handle)
{
	it_db *db = it_db_open(&s);
	IT_EQ(it_db_exec(db, "DELETE FROM accounts WHERE handle = ?1", "t", handle), 1);
	it_db_close(db);
}

static void reregister(void)
{
	parley_client *alice = client("alice-r"), *erin = client("erin"), *b1 = client("b1"), *b2, *nb1, *nb2, *evil;
	tally ta, te, tb1, tb2;
	uint32_t id = 0;
	size_t accepted = 0;

	MUST(parley_register(alice, "carla", NULL) == PARLEY_OK);
	MUST(parley_register(erin, "erin", NULL) == PARLEY_OK);
	MUST(parley_register(b1, "dan", NULL) == PARLEY_OK);
	b2 = link_device(b1, "dan", "b2", &id);
	/* erin knows both of dan's devices from their messages (sessions they started) */
	listen_with(erin, &te, "erin");
	IT_EQ(parley_send(erin, "dan", "hi dan, erin here"), PARLEY_OK);
	IT_EQ(parley_send(b1, "erin", "hi erin from b1"), PARLEY_OK);
	IT_EQ(parley_send(b2, "erin", "hi erin from b2"), PARLEY_OK);
	run_until(erin, &te.messages, 1);
	IT_EQ(te.messages, 2);
	parley_client_disconnect(erin);
	/* sessions both ways with both of dan's devices */
	listen_with(alice, &ta, "carla");
	IT_EQ(parley_send(alice, "dan", "hi dan"), PARLEY_OK);
	IT_EQ(parley_send(b1, "carla", "hi from b1"), PARLEY_OK);
	IT_EQ(parley_send(b2, "carla", "hi from b2"), PARLEY_OK);
	run_until(alice, &ta.messages, 1);
	IT_EQ(ta.messages, 2);
	parley_client_free(b1);
	parley_client_free(b2);
	parley_client_disconnect(alice);

	/* dan again, from scratch: a new account key, devices 1 and 2 with new identity keys */
	delete_account("dan");
	nb1 = client("nb1");
	MUST(parley_register(nb1, "dan", NULL) == PARLEY_OK);
	nb2 = link_device(nb1, "dan", "nb2", &id);
	IT_EQ(id, 2);

	/* the account key changed: nothing is accepted before the user trusts it */
	IT_EQ(parley_send(alice, "dan", "who are you now?"), PARLEY_E_UNTRUSTED_IDENTITY);
	IT_EQ(parley_trust(alice, "dan", &accepted), PARLEY_OK);
	/* then both new devices, vouched for by the list the trusted key signed: no further trust step */
	IT_EQ(parley_send(alice, "dan", "welcome back"), PARLEY_OK);
	printf("# send after trust: %s\n", parley_client_errmsg(alice));
	listen_with(nb1, &tb1, "nb1");
	listen_with(nb2, &tb2, "nb2");
	IT_EQ(parley_connect(nb1), PARLEY_OK);
	IT_EQ(parley_connect(nb2), PARLEY_OK);
	run_until(nb1, &tb1.messages, 0);
	run_until(nb2, &tb2.messages, 0);
	IT_EQ(tb1.messages, 1);
	IT_EQ(tb2.messages, 1);
	/* and from them: prekey messages under the listed identity keys decrypt */
	memset(&ta, 0, sizeof ta);
	listen_with(alice, &ta, "carla");
	IT_EQ(parley_send(nb1, "carla", "from nb1"), PARLEY_OK);
	IT_EQ(parley_send(nb2, "carla", "from nb2"), PARLEY_OK);
	IT_EQ(parley_connect(alice), PARLEY_OK);
	run_until(alice, &ta.messages, 1);
	IT_EQ(ta.messages, 2);
	IT_EQ(ta.from_devices, (1u << 1) | (1u << 2));

	/* receive first: the new devices write to erin before she sends anything. Their prekey messages
	 * come under new identity keys for addresses she knew: quarantined while the account key is not
	 * trusted, decrypted after parley_trust(dan) with no per-device step */
	IT_EQ(parley_send(nb1, "erin", "new nb1 to erin"), PARLEY_OK);
	IT_EQ(parley_send(nb2, "erin", "new nb2 to erin"), PARLEY_OK);
	listen_with(erin, &te, "erin");
	IT_EQ(parley_connect(erin), PARLEY_OK);
	for (int i = 0; i < 20; i++)
		(void)parley_client_run(erin, 100);
	IT_EQ(te.messages, 0);
	IT_CHECK(te.identity_changed >= 1); /* the user hears of the new account key, not of unlisted devices */
	accepted = 0;
	IT_EQ(parley_trust(erin, "dan", &accepted), PARLEY_OK);
	IT_CHECK(accepted >= 1);
	for (int i = 0; i < 100 && te.messages < 2; i++)
		(void)parley_client_run(erin, 100);
	IT_EQ(te.messages, 2);
	IT_EQ(te.from_devices, (1u << 1) | (1u << 2));
	IT_EQ(parley_send(erin, "dan", "welcome back from erin"), PARLEY_OK);
	parley_client_free(erin);

	/* a device the new list does not name stays refused */
	evil = inject_device("dan", 9, "evil-d");
	IT_EQ(parley_send(alice, "dan", "secret"), PARLEY_E_DEVICE_NOT_LISTED);
	parley_client_free(evil);
	parley_client_free(nb1);
	parley_client_free(nb2);
	parley_client_free(alice);
}

int main(void)
{
	MUST(crypto__init() == PARLEY_OK);
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	IT_RUN(transfer);
	IT_RUN(entity_key_carried);
	IT_RUN(forgery);
	IT_RUN(confirm_rules);
	parley_client_free(a1);
	parley_client_free(a2);
	parley_client_free(a3);
	parley_client_free(bob);
	IT_RUN(reregister);
	srv_stop(&s);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
