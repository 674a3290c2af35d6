/* t26: entities through libparley against a real parleyd, for what the walkthrough (docs/entities.md,
 * test entities-walkthrough) does not show. The server's database is written directly to play a
 * malicious or compromised server; each check has its positive case in the same run.
 *
 *   staff_list_rollback   a customer verified version 3; the server serves version 2 again (the test writes
 *                         it back into the entities table): STAFF_LIST_ROLLBACK; a client that never saw
 *                         the entity accepts it (nothing to compare with).
 *   entity_key_pinned     the server serves a well-formed list signed by another key (a re-created or
 *                         forged entity): UNTRUSTED_IDENTITY until parley_entity_trust; a flipped byte
 *                         in the list: STAFF_LIST_INVALID.
 *   injected_device       a device row and keys written straight into the server database for an agent:
 *                         parley_entity_devices leaves it out (listed = 0, left_out 1), fires on_error
 *                         with DEVICE_NOT_LISTED and names it; before the injection nothing is left out.
 *   removed_while_connected  an admin's connection that created a code loses the right on the same
 *                         connection once the primary removes it, and is told (staff changed, removed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/entity.h>
#include <parley/error.h>

#include "client/client_internal.h"
#include "crypto/crypto.h"
#include "harness.h"
#include "wire/stafflist.h"

static srv s;
static char url[128];
static parley_client *alice, *bob, *carol; /* primary admin, agent, customer */

static parley_client *user(const char *handle)
{
	return it_user(&s, url, handle);
}

/* The stored staff list of acme (version, bytes); *len 0 if none. */
static uint8_t *stored_list(uint64_t *version, size_t *len)
{
	it_db *db = it_db_open(&s);
	it_rows *r = it_db_query(db, "SELECT staff_version, staff_list FROM entities WHERE handle = 'acme'", NULL);
	uint8_t *out = NULL;

	*len = 0;
	IT_CHECK(r != NULL);
	if (it_rows_next(r)) {
		const void *b = it_rows_blob(r, 1, len);
		*version = (uint64_t)it_rows_int(r, 0);
		out = malloc(*len + 1);
		if (out != NULL && *len > 0)
			memcpy(out, b, *len);
	}
	it_rows_free(r);
	it_db_close(db);
	return out;
}

/* The server now serves `list` for acme (as an operator with the database could make it). */
static void serve_list(const uint8_t *list, size_t len, uint64_t version)
{
	it_db *db = it_db_open(&s);
	IT_EQ(it_db_exec(db, "UPDATE entities SET staff_list = ?, staff_version = ? WHERE handle = 'acme'", "bi", list,
			 len, (long long)version),
	      1);
	it_db_close(db);
}

static void setup(void)
{
	char code[PARLEY_ENROL_CODE_MAX + 1];
	uint64_t id = 0, req = 0;

	alice = user("alice");
	bob = user("bob");
	carol = user("carol");
	IT_EQ(parley_entity_create(alice, "acme", "Acme Support", &id), PARLEY_OK);
	IT_CHECK(id != 0);
	IT_EQ(parley_entity_code(alice, "acme", 0, PARLEY_ROLE_AGENT, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(bob, "acme", code, &req), PARLEY_OK);
	IT_EQ(parley_entity_decide(alice, "acme", req, 1), PARLEY_OK); /* version 2 */
}

static void staff_list_rollback(void)
{
	parley_rules_change ch;
	parley_entity *e = NULL;
	parley_client *fresh;
	uint64_t v2 = 0, v3 = 0;
	size_t len2 = 0, len3 = 0;
	uint8_t *l2 = stored_list(&v2, &len2), *l3;

	IT_EQ(v2, 2);
	parley_rules_change_init(&ch);
	ch.may_pay = 1;
	IT_EQ(parley_entity_set_rules(alice, "acme", NULL, &ch), PARLEY_OK); /* version 3 */
	IT_EQ(parley_entity_get(carol, "acme", &e), PARLEY_OK);
	IT_EQ(parley_entity_staff_version(e), 3);
	parley_entity_free(e);
	l3 = stored_list(&v3, &len3);
	IT_EQ(v3, 3);

	serve_list(l2, len2, 2); /* the replay */
	e = NULL;
	IT_EQ(parley_entity_get(carol, "acme", &e), PARLEY_E_STAFF_LIST_ROLLBACK);
	IT_CHECK(e == NULL);
	IT_CHECK(strstr(parley_client_errmsg(carol), "older") != NULL);
	fresh = user("dora"); /* never saw acme: version 2 is all it can know */
	IT_EQ(parley_entity_get(fresh, "acme", &e), PARLEY_OK);
	IT_EQ(parley_entity_staff_version(e), 2);
	parley_entity_free(e);
	parley_client_free(fresh);

	serve_list(l3, len3, 3); /* back to the truth: accepted again */
	IT_EQ(parley_entity_get(carol, "acme", &e), PARLEY_OK);
	parley_entity_free(e);
	free(l2);
	free(l3);
}

static void entity_key_pinned(void)
{
	crypto_keypair kp;
	wire_stafflist l;
	dynbuf forged;
	parley_entity *e = NULL;
	uint64_t v = 0;
	size_t len = 0;
	uint8_t *cur = stored_list(&v, &len);

	IT_CHECK(cur != NULL && wire__stafflist_verify(cur, len, &l) == PARLEY_OK);
	if (cur == NULL)
		return;
	/* the same list, one version up, signed by a key the server made */
	IT_EQ(crypto__keypair_generate(&kp), PARLEY_OK);
	crypto__pubkey_serialize(l.entity_key, kp.pub);
	l.version++;
	dynbuf__init(&forged, WIRE_STAFFLIST_MAX_BYTES);
	IT_EQ(wire__stafflist_sign(&l, kp.priv, &forged), PARLEY_OK);
	serve_list(forged.data, forged.len, l.version);
	IT_EQ(parley_entity_get(carol, "acme", &e), PARLEY_E_UNTRUSTED_IDENTITY);
	IT_CHECK(e == NULL);
	/* a flipped byte of the real list: its signature fails */
	cur[len / 2] ^= 1;
	serve_list(cur, len, v);
	IT_EQ(parley_entity_get(carol, "acme", &e), PARLEY_E_STAFF_LIST_INVALID);
	cur[len / 2] ^= 1;
	serve_list(cur, len, v);
	IT_EQ(parley_entity_get(carol, "acme", &e), PARLEY_OK);
	parley_entity_free(e);
	e = NULL;
	/* after the user compared the new safety number: the forged key is accepted (the decision is hers) */
	serve_list(forged.data, forged.len, l.version);
	IT_EQ(parley_entity_trust(carol, "acme"), PARLEY_OK);
	IT_EQ(parley_entity_get(carol, "acme", &e), PARLEY_OK);
	parley_entity_free(e);
	serve_list(cur, len, v);
	IT_EQ(parley_entity_trust(carol, "acme"), PARLEY_OK);
	dynbuf__free(&forged);
	wire__stafflist_free(&l);
	crypto__keypair_wipe(&kp);
	free(cur);
}

static int not_listed_events;
static uint32_t not_listed_device;

static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	if (err == PARLEY_E_DEVICE_NOT_LISTED && strcmp(handle, "bob") == 0) {
		not_listed_events++;
		not_listed_device = device;
	}
}

static void injected_device(void)
{
	parley_entity_device devs[16];
	parley_events ev;
	size_t n = 0, left = 9, i, listed = 0;
	uint8_t pk[32], ik[33], sig[64];
	it_db *db;

	memset(&ev, 0, sizeof ev);
	ev.on_error = on_error;
	parley_client_set_events(carol, &ev);
	IT_EQ(parley_entity_devices(carol, "acme", devs, 16, &n, &left), PARLEY_OK);
	IT_EQ(left, 0); /* the positive case: every device is listed */
	IT_EQ(n, 2);    /* alice's and bob's */

	crypto__random(pk, sizeof pk);
	crypto__random(ik, sizeof ik);
	ik[0] = 0x05;
	crypto__random(sig, sizeof sig);
	db = it_db_open(&s);
	IT_EQ(it_db_exec(db,
			 "INSERT INTO devices (account_id, device_id, name, pubkey, created_ms)"
			 " SELECT id, 7, 'injected', ?, 0 FROM accounts WHERE handle = 'bob'",
			 "b", pk, sizeof pk),
	      1);
	IT_EQ(it_db_exec(db,
			 "INSERT INTO device_keys (account_id, device_id, registration_id, identity_key, spk_id,"
			 " spk_pub, spk_sig) SELECT id, 7, 77, ?, 1, ?, ? FROM accounts WHERE handle = 'bob'",
			 "bbb", ik, sizeof ik, ik, sizeof ik, sig, sizeof sig),
	      1);
	it_db_close(db);

	IT_EQ(parley_entity_devices(carol, "acme", devs, 16, &n, &left), PARLEY_OK);
	IT_EQ(n, 3);
	IT_EQ(left, 1);
	for (i = 0; i < n && i < 16; i++) {
		listed += devs[i].listed != 0;
		if (devs[i].device_id == 7)
			IT_CHECK(strcmp(devs[i].handle, "bob") == 0 && !devs[i].listed);
	}
	IT_EQ(listed, 2);
	IT_EQ(not_listed_events, 1);
	IT_EQ(not_listed_device, 7);
	IT_CHECK(strstr(parley_client_errmsg(carol), "device 7 of bob") != NULL);
	parley_client_set_events(carol, NULL);
}

static int removed_pushes;

static void on_staff(parley_client *c, const char *entity, uint64_t version, int removed, void *user)
{
	removed_pushes += removed && strcmp(entity, "acme") == 0;
}

static void removed_while_connected(void)
{
	char code[PARLEY_ENROL_CODE_MAX + 1];
	parley_client *erin = user("erin");
	parley_events ev;

	if (erin == NULL)
		return;
	IT_EQ(parley_entity_add_admin(alice, "acme", "erin"), PARLEY_OK);
	memset(&ev, 0, sizeof ev);
	ev.on_entity_staff_changed = on_staff;
	parley_client_set_events(erin, &ev);
	IT_EQ(parley_connect(erin), PARLEY_OK);
	IT_EQ(parley_entity_code(erin, "acme", 60, PARLEY_ROLE_AGENT, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_remove(alice, "acme", "erin", PARLEY_ROLE_ADMIN), PARLEY_OK);
	/* the same connection (no reconnect in between: the server checks the role in each call) */
	IT_EQ(parley_entity_code(erin, "acme", 60, PARLEY_ROLE_AGENT, code, sizeof code, NULL),
	      PARLEY_E_NOT_ENTITY_ADMIN);
	for (int i = 0; i < 20 && removed_pushes == 0; i++)
		parley_client_run(erin, 100);
	IT_EQ(removed_pushes, 1);
	parley_client_free(erin);
}

int main(void)
{
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	setup();
	IT_RUN(staff_list_rollback);
	IT_RUN(entity_key_pinned);
	IT_RUN(injected_device);
	IT_RUN(removed_while_connected);
	parley_client_free(alice);
	parley_client_free(bob);
	parley_client_free(carol);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures > 0;
}
