/* t22: signed device lists (issue 9 item 1) against a real parleyd with real libparley clients.
 *
 *  link:      bob links a second device with its code; the account key signs list v2; alice, who saw
 *             v1, sends again, verifies v2 and gets on_devices_changed (1 added).
 *  injection: the test writes a device row for bob straight into the server's SQLite database while
 *             parleyd runs (WAL); that device (a libparley client holding the key the test wrote)
 *             authenticates and uploads its own Signal keys. alice's send to bob then fails with
 *             DEVICE_NOT_LISTED and on_error fires; nothing reaches bob. A message the injected device
 *             sends to alice lands in alice's quarantine with DEVICE_NOT_LISTED.
 *  rollback:  the test writes bob's saved list v1 back into the server database: alice refuses it
 *             with DEVICE_LIST_ROLLBACK.
 *  safety:    the number (over the two account keys) is the same on both sides, unchanged by linking a
 *             device; a list signed by another account key (the account registered again) is
 *             UNTRUSTED_IDENTITY with a changed safety number until parley_trust.
 *  server:    uploads signed by another key (DEVICE_LIST_INVALID), with a lower or equal version
 *             (DEVICE_LIST_ROLLBACK), naming an unknown device or a wrong device key
 *             (DEVICE_LIST_INVALID); SetAccountKey on an account with a key (ACCOUNT_KEY_SET);
 *             GetDeviceList serves the latest; a device without the account key cannot add another
 *             (NO_ACCOUNT_KEY).
 *  legacy:    an account without a key (erased in the server database) gets one from its registering
 *             device at the next authentication (SetAccountKey with a first list). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/client.h>
#include <parley/error.h>
#include <sodium.h>

#include "client/client_internal.h"
#include "crypto/crypto.h"
#include "harness.h"
#include "wire/devlist.h"

static srv s;
static char url[128];

#define MUST(cond) IT_MUST(&s, cond)

static parley_client *client(const char *name)
{
	return it_client_must(&s, url, name);
}

/* events of alice */
static int changed_calls, changed_added, errors_not_listed;
static void on_changed(parley_client *c, const char *handle, uint64_t version, size_t added, size_t removed,
		       void *user)
{
	changed_calls++;
	changed_added += (int)added;
	printf("# notice: %s's device list v%llu: %zu added, %zu removed\n", handle, (unsigned long long)version,
	       added, removed);
}
static int delivered;
static void on_message(parley_client *c, const parley_message *m, void *user)
{
	delivered++;
	printf("# alice got from %s device %u: %.*s\n", m->sender, (unsigned)m->sender_device, (int)m->body_len,
	       (const char *)m->body);
}
static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	if (err == PARLEY_E_DEVICE_NOT_LISTED)
		errors_not_listed++;
}

static it_db *server_db(void)
{
	it_db *db = it_db_open(&s);
	MUST(db != NULL);
	return db;
}

/* bob's list as the server holds it (bytes, version) */
static size_t saved_list(uint8_t *out, size_t cap, int64_t *version)
{
	it_db *db = server_db();
	size_t n = 0, len;
	it_rows *r = it_db_query(db, "SELECT l.list, l.version FROM device_lists l JOIN accounts a ON a.id = l.account_id"
				     " WHERE a.handle = 'bob'", NULL);
	MUST(r != NULL);
	if (it_rows_next(r)) {
		const void *b = it_rows_blob(r, 0, &len);
		if (len <= cap) {
			n = len;
			memcpy(out, b, n);
			*version = it_rows_int(r, 1);
		}
	}
	it_rows_free(r);
	it_db_close(db);
	return n;
}

static void run_briefly(parley_client *c)
{
	for (int i = 0; i < 10; i++)
		(void)parley_client_run(c, 100);
}

static parley_client *alice, *bob1, *bob2, *evil;
static char sn_before[PARLEY_SAFETY_NUMBER_LEN + 1];
static uint8_t list_v1[WIRE_DEVLIST_MAX_BYTES];
static size_t list_v1_len;

static void link_with_signature(void)
{
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES];
	uint32_t id = 0;
	int64_t v = 0;
	parley_events ev = {0};

	alice = client("alice");
	bob1 = client("bob1");
	bob2 = client("bob2");
	MUST(parley_register(alice, "alice", NULL) == PARLEY_OK);
	MUST(parley_register(bob1, "bob", NULL) == PARLEY_OK);
	list_v1_len = saved_list(list_v1, sizeof list_v1, &v);
	IT_EQ(v, 1); /* register uploaded version 1 */
	IT_CHECK(list_v1_len > 0);
	ev.on_devices_changed = on_changed;
	ev.on_error = on_error;
	ev.on_message = on_message;
	parley_client_set_events(alice, &ev);
	IT_EQ(parley_send(alice, "bob", "before the link"), PARLEY_OK); /* pins bob's key and v1 */
	IT_EQ(changed_calls, 0);
	/* safety numbers are over the two account keys: the same on both sides */
	char sn_bob[PARLEY_SAFETY_NUMBER_LEN + 1];
	int changed = 1;
	IT_EQ(parley_safety_number(alice, "bob", 0, NULL, &changed, sn_before), PARLEY_OK);
	IT_EQ(changed, 0);
	IT_EQ(parley_safety_number(bob1, "alice", 0, NULL, NULL, sn_bob), PARLEY_OK);
	IT_CHECK(strcmp(sn_before, sn_bob) == 0);

	/* a code without the identity proof (its last byte changed) is refused before the server */
	MUST(parley_device_link_code(bob2, "bob", code) == PARLEY_OK);
	code[PARLEY_DEVICE_LINK_CODE_BYTES - 1] ^= 1;
	IT_EQ(parley_device_add(bob1, code, "phone", &id), PARLEY_E_BAD_SIGNATURE);
	code[PARLEY_DEVICE_LINK_CODE_BYTES - 1] ^= 1;
	IT_EQ(parley_device_add(bob1, code, "phone", &id), PARLEY_OK);
	IT_EQ(id, 2);
	IT_EQ(parley_link(bob2, "bob", id), PARLEY_OK);
	uint8_t tmp[WIRE_DEVLIST_MAX_BYTES];
	IT_CHECK(saved_list(tmp, sizeof tmp, &v) > 0);
	IT_EQ(v, 2);

	/* bob2 does not hold the account key: it cannot add devices */
	parley_client *x = client("x");
	MUST(parley_device_link_code(x, "bob", code) == PARLEY_OK);
	IT_EQ(parley_device_add(bob2, code, "x", &id), PARLEY_E_NO_ACCOUNT_KEY);
	parley_client_free(x);

	/* alice: the server says bob has a new device; its bundle is in the newer signed list */
	IT_EQ(parley_send(alice, "bob", "after the link"), PARLEY_OK);
	IT_EQ(changed_calls, 1);
	IT_EQ(changed_added, 1);
	/* linking a device does not change the safety number */
	char sn_after[PARLEY_SAFETY_NUMBER_LEN + 1];
	IT_EQ(parley_safety_number(alice, "bob", 1, NULL, NULL, sn_after), PARLEY_OK);
	IT_CHECK(strcmp(sn_before, sn_after) == 0);
}

static void server_injection(void)
{
	uint8_t pk[32];
	it_db *db;

	/* the injected device: a libparley client whose device key the "server" writes in */
	evil = client("evil");
	MUST(parley_device_public_key(evil, pk) == PARLEY_OK);
	db = server_db();
	IT_EQ(it_db_exec(db,
			 "INSERT INTO devices(account_id, device_id, name, pubkey, created_ms, last_seen_ms)"
			 " SELECT id, 9, 'injected', ?1, 0, 0 FROM accounts WHERE handle = 'bob'",
			 "b", pk, sizeof pk),
	      1);
	it_db_close(db);
	/* it authenticates with the key the server holds and uploads its own Signal keys */
	IT_EQ(parley_link(evil, "bob", 9), PARLEY_OK);

	/* alice refuses to encrypt to it: nothing is sent, on_error names the error */
	errors_not_listed = 0;
	IT_EQ(parley_send(alice, "bob", "secret"), PARLEY_E_DEVICE_NOT_LISTED);
	IT_CHECK(strstr(parley_client_errmsg(alice), "device 9 of bob") != NULL);
	IT_EQ(errors_not_listed, 1);

	/* the injected device writes to alice: quarantined, never delivered */
	int erc = parley_send(evil, "alice", "hello from the server operator");
	printf("# the injected device's send: %s (%s)\n", parley_strerror(erc), parley_client_errmsg(evil));
	/* the envelope arrives, is quarantined, bob's list is fetched once, the retry still refuses it */
	parley_quarantine_entry q[8];
	size_t n = 0;
	int found = 0;
	for (int round = 0; round < 50 && !found; round++) {
		(void)parley_client_run(alice, 100);
		IT_EQ(parley_quarantine_list(alice, q, 8, &n, NULL), PARLEY_OK);
		for (size_t i = 0; i < n; i++)
			found |= strcmp(q[i].sender, "bob") == 0 && q[i].sender_device == 9 &&
				 q[i].reason == PARLEY_E_DEVICE_NOT_LISTED;
	}
	run_briefly(alice); /* and it stays there */
	printf("# alice's quarantine: %zu entries, delivered %d\n", n, delivered);
	IT_EQ(delivered, 0);
	IT_CHECK(found);
}

static void rollback(void)
{
	it_db *db = server_db();
	IT_EQ(it_db_exec(db, "UPDATE device_lists SET version = 1, list = ?1 WHERE account_id ="
			     " (SELECT id FROM accounts WHERE handle = 'bob')", "b", list_v1, list_v1_len),
	      1);
	it_db_close(db);
	/* device 9 is still there, so alice fetches bundles again and meets the older list */
	IT_EQ(parley_send(alice, "bob", "secret"), PARLEY_E_DEVICE_LIST_ROLLBACK);
}

/* bob "registered again" as far as alice can tell: the server now holds a list of bob signed by another
 * account key (written straight into its database, with that key). alice refuses it until trust, and the
 * safety number changes. */
static void account_key_changed(void)
{
	crypto_keypair nk;
	wire_devlist l;
	dynbuf rec;
	char sn[PARLEY_SAFETY_NUMBER_LEN + 1];
	int changed = 0;
	size_t accepted = 0;

	MUST(crypto__keypair_generate(&nk) == PARLEY_OK);
	MUST(wire__devlist_verify(list_v1, list_v1_len, &l) == PARLEY_OK);
	crypto__pubkey_serialize(l.account_key, nk.pub);
	l.version = 5;
	dynbuf__init(&rec, WIRE_DEVLIST_MAX_BYTES);
	MUST(wire__devlist_sign(&l, nk.priv, &rec) == PARLEY_OK);
	it_db *db = server_db();
	IT_EQ(it_db_exec(db, "UPDATE device_lists SET version = 5, list = ?1 WHERE account_id ="
			     " (SELECT id FROM accounts WHERE handle = 'bob')", "b", rec.data, rec.len),
	      1);
	it_db_close(db);
	IT_EQ(parley_send(alice, "bob", "secret"), PARLEY_E_UNTRUSTED_IDENTITY);
	IT_EQ(parley_safety_number(alice, "bob", 0, NULL, &changed, sn), PARLEY_OK);
	IT_EQ(changed, 1);
	IT_CHECK(strcmp(sn, sn_before) != 0);
	IT_EQ(parley_trust(alice, "bob", &accepted), PARLEY_OK);
	IT_CHECK(accepted >= 1);
	/* trusted: the new key is pinned, its lists start over (device 9 is still not in it) */
	IT_EQ(parley_send(alice, "bob", "secret"), PARLEY_E_DEVICE_NOT_LISTED);
	dynbuf__free(&rec);
}

/* An account from before account keys: the server has no key and no list for carol (the test erases
 * them in its database, as migration 6 leaves old accounts). On its next authentication carol's
 * registering device makes a key and sets it with a first list (SetAccountKey); the server then holds
 * that key and a list naming the device. */
static int64_t server_int(const char *sql)
{
	return it_srv_int(&s, sql);
}

static void legacy_migration(void)
{
	parley_client *carol = client("carol");
	uint8_t before[33], after[33];
	MUST(parley_register(carol, "carol", NULL) == PARLEY_OK);
	MUST(client__account_key(carol, before, NULL) == PARLEY_OK);
	parley_client_disconnect(carol);
	it_db *db = server_db();
	IT_EQ(it_db_exec(db, "UPDATE accounts SET account_key = NULL WHERE handle = 'carol'", NULL), 1);
	IT_EQ(it_db_exec(db, "DELETE FROM device_lists WHERE account_id = (SELECT id FROM accounts WHERE handle = 'carol')",
			 NULL),
	      1);
	it_db_close(db);
	IT_EQ(server_int("SELECT count(*) FROM accounts WHERE handle = 'carol' AND account_key IS NULL"), 1);
	IT_EQ(parley_connect(carol), PARLEY_OK);
	for (int i = 0; i < 30 && server_int("SELECT count(*) FROM device_lists l JOIN accounts a ON a.id = l.account_id"
					     " WHERE a.handle = 'carol'") != 1; i++)
		(void)parley_client_run(carol, 100);
	IT_EQ(server_int("SELECT count(*) FROM accounts WHERE handle = 'carol' AND length(account_key) = 33"), 1);
	IT_EQ(server_int("SELECT l.version FROM device_lists l JOIN accounts a ON a.id = l.account_id"
			 " WHERE a.handle = 'carol'"), 1);
	int have = 0;
	IT_EQ(client__account_key(carol, after, &have), PARLEY_OK);
	IT_EQ(have, 1);
	IT_CHECK(memcmp(before, after, 33) != 0); /* a new key, set once */
	/* alice can write to carol: the list verifies and names carol's device */
	IT_EQ(parley_send(alice, "carol", "welcome to account keys"), PARLEY_OK);
	parley_client_free(carol);
}

/* raw protocol: an account whose key the test holds */
static void upload(int fd, uint64_t id, const uint8_t *rec, size_t len, int expect)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__UploadDeviceListRequest u = PARLEY__WIRE__UPLOAD_DEVICE_LIST_REQUEST__INIT;
	req.id = id;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_UPLOAD_DEVICE_LIST;
	req.upload_device_list = &u;
	u.signed_device_list.data = (uint8_t *)rec;
	u.signed_device_list.len = len;
	IT_EQ(pw_call(fd, &req, NULL), expect);
}

static void sign(wire_devlist *l, const uint8_t priv[32], dynbuf *out)
{
	dynbuf__reset(out);
	MUST(wire__devlist_sign(l, priv, out) == PARLEY_OK);
}

static void server_checks(void)
{
	crypto_keypair ak, other;
	uint8_t akpub[33], pk[32], sk[64];
	wire_devlist l;
	dynbuf rec;
	int fd = -1;

	MUST(crypto__keypair_generate(&ak) == PARLEY_OK && crypto__keypair_generate(&other) == PARLEY_OK);
	crypto__pubkey_serialize(akpub, ak.pub);
	pw_account_key = akpub;
	MUST(pw_register(s.port, "dave", pk, sk, &fd) == PARLEY_OK);
	pw_account_key = NULL;
	dynbuf__init(&rec, WIRE_DEVLIST_MAX_BYTES);
	memset(&l, 0, sizeof l);
	snprintf(l.handle, sizeof l.handle, "dave");
	memcpy(l.account_key, akpub, 33);
	l.version = 2;
	l.n = 1;
	l.dev[0].device_id = 1;
	l.dev[0].identity_key[0] = 0x05;
	memcpy(l.dev[0].device_key, pk, 32);
	/* the account id: from GetDeviceList (empty list yet) */
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetDeviceListRequest g = PARLEY__WIRE__GET_DEVICE_LIST_REQUEST__INIT;
	wire_frame f;
	req.id = 50;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_DEVICE_LIST;
	req.get_device_list = &g;
	g.handle = "dave";
	MUST(pw_call(fd, &req, &f) == PARLEY_OK);
	l.account_id = f.frame->response->get_device_list->account_id;
	IT_EQ(f.frame->response->get_device_list->signed_device_list.len, 0);
	wire__frame_free(&f);

	/* signed by another key (its own key embedded, so the signature itself is valid) */
	crypto__pubkey_serialize(l.account_key, other.pub);
	sign(&l, other.priv, &rec);
	upload(fd, 51, rec.data, rec.len, PARLEY_E_DEVICE_LIST_INVALID);
	memcpy(l.account_key, akpub, 33);
	/* a device the account does not have, and a wrong device key */
	l.dev[0].device_id = 5;
	sign(&l, ak.priv, &rec);
	upload(fd, 52, rec.data, rec.len, PARLEY_E_DEVICE_LIST_INVALID);
	l.dev[0].device_id = 1;
	l.dev[0].device_key[0] ^= 1;
	sign(&l, ak.priv, &rec);
	upload(fd, 53, rec.data, rec.len, PARLEY_E_DEVICE_LIST_INVALID);
	l.dev[0].device_key[0] ^= 1;
	/* another account's id */
	l.account_id++;
	sign(&l, ak.priv, &rec);
	upload(fd, 54, rec.data, rec.len, PARLEY_E_DEVICE_LIST_INVALID);
	l.account_id--;
	/* a flipped byte of a good record */
	sign(&l, ak.priv, &rec);
	rec.data[rec.len - 1] ^= 1;
	upload(fd, 55, rec.data, rec.len, PARLEY_E_DEVICE_LIST_INVALID);
	/* the good one, then a lower and an equal version */
	sign(&l, ak.priv, &rec);
	upload(fd, 56, rec.data, rec.len, PARLEY_OK);
	l.version = 1;
	sign(&l, ak.priv, &rec);
	upload(fd, 57, rec.data, rec.len, PARLEY_E_DEVICE_LIST_ROLLBACK);
	l.version = 2;
	sign(&l, ak.priv, &rec);
	upload(fd, 58, rec.data, rec.len, PARLEY_E_DEVICE_LIST_ROLLBACK);
	/* GetDeviceList serves version 2 */
	req.id = 59;
	MUST(pw_call(fd, &req, &f) == PARLEY_OK);
	wire_devlist got;
	const Parley__Wire__GetDeviceListResponse *gr = f.frame->response->get_device_list;
	IT_EQ(wire__devlist_verify(gr->signed_device_list.data, gr->signed_device_list.len, &got), PARLEY_OK);
	IT_EQ(got.version, 2);
	wire__frame_free(&f);
	/* the account has a key: SetAccountKey is refused */
	Parley__Wire__SetAccountKeyRequest sk_req = PARLEY__WIRE__SET_ACCOUNT_KEY_REQUEST__INIT;
	l.version = 3;
	sign(&l, ak.priv, &rec);
	sk_req.account_key.data = akpub;
	sk_req.account_key.len = 33;
	sk_req.signed_device_list.data = rec.data;
	sk_req.signed_device_list.len = rec.len;
	req.id = 60;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SET_ACCOUNT_KEY;
	req.set_account_key = &sk_req;
	IT_EQ(pw_call(fd, &req, NULL), PARLEY_E_ACCOUNT_KEY_SET);
	/* a key that is not a Signal key */
	akpub[0] = 0x06;
	req.id = 61;
	IT_EQ(pw_call(fd, &req, NULL), PARLEY_E_INVALID_KEY);
	dynbuf__free(&rec);
	close(fd);
}

int main(void)
{
	MUST(crypto__init() == PARLEY_OK);
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	IT_RUN(link_with_signature);
	IT_RUN(server_injection);
	IT_RUN(rollback);
	IT_RUN(account_key_changed);
	IT_RUN(server_checks);
	IT_RUN(legacy_migration);
	parley_client_free(alice);
	parley_client_free(bob1);
	parley_client_free(bob2);
	parley_client_free(evil);
	srv_stop(&s);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
