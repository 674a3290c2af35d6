/* The entity calls of lib/client (entity.c) without a server: each call's op is taken off the client's
 * queue, built (the request it would send is checked: the staff list it carries verifies, has the next
 * version and exactly the call's change), and completed with a response made here, the way a honest or
 * a lying server would answer. Covers create (key saved, list v1 with the creator as primary), get
 * (verification, entity-key pin, version pin: STAFF_LIST_ROLLBACK, UNTRUSTED_IDENTITY,
 * STAFF_LIST_INVALID), the business's devices (a device the server adds is left out and reported), approve (the candidate's devices signed in, a candidate list under another key
 * refused and nothing sent), remove (never the primary), rules, and a non-admin refused locally. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "client/entity_internal.h"
#include "crypto/crypto.h"

typedef struct test_acct {
	parley_client *c;
	uint64_t id;
	char handle[16];
	uint8_t ak[33];
	uint8_t devlist[WIRE_DEVLIST_MAX_BYTES];
	size_t devlist_len;
} test_acct;

static char root[] = "/tmp/parley-entops-XXXXXX";

/* A client with a saved account, an account key and its signed device list (one device). */
static void make_acct(test_acct *a, const char *handle, uint64_t id)
{
	parley_client_options o;
	client_account ca;
	char dir[300];
	uint8_t priv[32];
	int have = 0;
	wire_devlist l;
	dynbuf b;

	memset(a, 0, sizeof *a);
	snprintf(a->handle, sizeof a->handle, "%s", handle);
	a->id = id;
	snprintf(dir, sizeof dir, "%s/%s", root, handle);
	parley_client_options_init(&o);
	o.state_dir = dir;
	TEST_EQ_INT(parley_client_new(&o, &a->c), PARLEY_OK);
	TEST_EQ_INT(client__ensure_key(a->c, 1), PARLEY_OK);
	memset(&ca, 0, sizeof ca);
	snprintf(ca.handle, sizeof ca.handle, "%s", handle);
	ca.account_id = id;
	ca.device_id = 1;
	snprintf(ca.server_url, sizeof ca.server_url, "ws://127.0.0.1:1/v1/websocket");
	TEST_EQ_INT(client__state_save_account(a->c->state, &ca, a->c->errmsg, sizeof a->c->errmsg), PARLEY_OK);
	TEST_EQ_INT(client__entity_ready(a->c), PARLEY_OK);
	TEST_EQ_INT(client__akey_generate(a->c, a->ak), PARLEY_OK);
	TEST_EQ_INT(client__akey_load(a->c, a->ak, priv, &have), PARLEY_OK);
	TEST_EQ_INT(have, 1);
	memset(&l, 0, sizeof l);
	l.account_id = id;
	snprintf(l.handle, sizeof l.handle, "%s", handle);
	memcpy(l.account_key, a->ak, 33);
	l.version = 1;
	l.n = 1;
	l.dev[0].device_id = 1;
	l.dev[0].identity_key[0] = 0x05;
	dynbuf__init(&b, sizeof a->devlist);
	TEST_EQ_INT(wire__devlist_sign(&l, priv, &b), PARLEY_OK);
	memcpy(a->devlist, b.data, b.len);
	a->devlist_len = b.len;
	dynbuf__free(&b);
	crypto__wipe(priv, sizeof priv);
}

/* The next queued op (unlinked), built into *req. NULL if none. */
static client_op *take(parley_client *c, Parley__Wire__Request *req)
{
	client_op *op = c->queued;
	if (op == NULL)
		return NULL;
	c->queued = op->next;
	op->next = NULL;
	parley__wire__request__init(req);
	TEST_EQ_INT(op->vt->build(c, op, req), PARLEY_OK);
	return op;
}

/* ---- results the callbacks leave ---- */
static parley_err last_status;
static int calls;
static uint64_t last_id;
static parley_entity *last_entity;

static void on_id(parley_client *c, parley_err st, uint64_t id, void *user)
{
	last_status = st;
	last_id = id;
	calls++;
}

static void on_done(parley_client *c, parley_err st, void *user)
{
	last_status = st;
	calls++;
}

static void on_entity(parley_client *c, parley_err st, parley_entity *e, void *user)
{
	last_status = st;
	parley_entity_free(last_entity);
	last_entity = e;
	calls++;
}

static test_acct alice, bob, carol;
static uint8_t list_v[4][WIRE_STAFFLIST_MAX_BYTES > 8192 ? 8192 : WIRE_STAFFLIST_MAX_BYTES]; /* v1..v3 as sent */
static size_t list_len[4];

/* The server's answer to an EntityGet: the list of version v as this test kept it. */
static void answer_get(test_acct *a, const uint8_t *list, size_t len)
{
	Parley__Wire__Request req;
	Parley__Wire__Response resp;
	Parley__Wire__EntityGetResponse g;
	Parley__Wire__Entity e;
	client_op *op = take(a->c, &req);

	TEST_CHECK(op != NULL);
	if (op == NULL)
		return;
	TEST_EQ_INT(req.body_case, PARLEY__WIRE__REQUEST__BODY_ENTITY_GET);
	parley__wire__response__init(&resp);
	parley__wire__entity_get_response__init(&g);
	parley__wire__entity__init(&e);
	e.handle = (char *)"acme";
	e.entity_id = 7;
	e.signed_staff_list.data = (uint8_t *)list;
	e.signed_staff_list.len = len;
	g.entity = &e;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_ENTITY_GET;
	resp.entity_get = &g;
	op->vt->complete(a->c, op, PARLEY_OK, &resp);
}

/* Keeps the staff list a call carries as version v, verified; returns it parsed (free it). */
static void keep_list(const ProtobufCBinaryData *b, uint64_t v, wire_stafflist *out)
{
	TEST_EQ_INT(wire__stafflist_verify(b->data, b->len, out), PARLEY_OK);
	TEST_EQ_INT(out->version, v);
	if (b->len <= sizeof list_v[0] && v < 4) {
		memcpy(list_v[v], b->data, b->len);
		list_len[v] = b->len;
	}
}

static void answer_ok(test_acct *a, client_op *op, int body_case)
{
	Parley__Wire__Response resp;
	Parley__Wire__EntityCreateResponse cr;

	parley__wire__response__init(&resp);
	parley__wire__entity_create_response__init(&cr);
	cr.entity_id = 7;
	resp.body_case = body_case;
	resp.entity_create = &cr; /* the union member's pointer: any kind's empty answer */
	op->vt->complete(a->c, op, PARLEY_OK, &resp);
}

static void test_create(void)
{
	Parley__Wire__Request req;
	Parley__Wire__Response resp;
	Parley__Wire__GetDeviceListResponse dl;
	wire_stafflist l;
	client_op *op;
	uint8_t pub[33], priv[32];

	TEST_EQ_INT(parley_entity_create_start(alice.c, "acme", "Acme Support", on_id, NULL), PARLEY_OK);
	op = take(alice.c, &req);
	TEST_EQ_INT(req.body_case, PARLEY__WIRE__REQUEST__BODY_GET_DEVICE_LIST);
	TEST_EQ_STR(req.get_device_list->handle, "alice");
	parley__wire__response__init(&resp);
	parley__wire__get_device_list_response__init(&dl);
	dl.account_id = alice.id;
	dl.signed_device_list.data = alice.devlist;
	dl.signed_device_list.len = alice.devlist_len;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_GET_DEVICE_LIST;
	resp.get_device_list = &dl;
	op->vt->complete(alice.c, op, PARLEY_OK, &resp);
	/* the key is saved before the create goes out */
	TEST_EQ_INT(client__entity_key_load(alice.c, "acme", pub, priv), PARLEY_OK);
	op = take(alice.c, &req);
	TEST_CHECK(op != NULL);
	if (op == NULL)
		return;
	TEST_EQ_INT(req.body_case, PARLEY__WIRE__REQUEST__BODY_ENTITY_CREATE);
	TEST_EQ_MEM(req.entity_create->entity_key.data, pub, 33);
	keep_list(&req.entity_create->signed_staff_list, 1, &l);
	TEST_EQ_INT(l.n, 1);
	TEST_EQ_INT(l.members[0].account_id, alice.id);
	TEST_EQ_INT(l.members[0].role, WIRE_ROLE_ADMIN);
	TEST_EQ_INT(l.members[0].flags, WIRE_STAFF_PRIMARY);
	TEST_EQ_MEM(l.members[0].account_key, alice.ak, 33);
	TEST_EQ_INT(l.members[0].devlist_len, alice.devlist_len);
	TEST_EQ_MEM(l.entity_key, pub, 33);
	wire__stafflist_free(&l);
	crypto__wipe(priv, sizeof priv);
	answer_ok(&alice, op, PARLEY__WIRE__RESPONSE__BODY_ENTITY_CREATE);
	TEST_EQ_INT(last_status, PARLEY_OK);
	TEST_EQ_INT(last_id, 7);
	TEST_CHECK(alice.c->queued == NULL);
}

/* Approve bob's request (v1 -> v2); first with a candidate list under another key: refused. */
static void test_approve(void)
{
	Parley__Wire__Request req;
	Parley__Wire__Response resp;
	Parley__Wire__EntityRequestsResponse rr;
	Parley__Wire__EntityJoinInfo ji, *jp = &ji;
	wire_stafflist l;
	client_op *op;

	for (int forged = 1; forged >= 0; forged--) {
		calls = 0;
		TEST_EQ_INT(parley_entity_decide_start(alice.c, "acme", 3, 1, on_done, NULL), PARLEY_OK);
		answer_get(&alice, list_v[1], list_len[1]);
		op = take(alice.c, &req);
		TEST_CHECK(op != NULL);
		if (op == NULL)
			return;
		TEST_EQ_INT(req.body_case, PARLEY__WIRE__REQUEST__BODY_ENTITY_REQUESTS);
		parley__wire__response__init(&resp);
		parley__wire__entity_requests_response__init(&rr);
		parley__wire__entity_join_info__init(&ji);
		ji.request_id = 3;
		ji.handle = bob.handle;
		ji.account_id = bob.id;
		ji.role = PARLEY__WIRE__ENTITY_ROLE__ROLE_AGENT;
		/* forged: the server claims bob's key is carol's, with bob's list */
		ji.account_key.data = forged ? carol.ak : bob.ak;
		ji.account_key.len = 33;
		ji.signed_device_list.data = bob.devlist;
		ji.signed_device_list.len = bob.devlist_len;
		rr.n_requests = 1;
		rr.requests = &jp;
		resp.body_case = PARLEY__WIRE__RESPONSE__BODY_ENTITY_REQUESTS;
		resp.entity_requests = &rr;
		op->vt->complete(alice.c, op, PARLEY_OK, &resp);
		if (forged) {
			TEST_EQ_INT(calls, 1);
			TEST_EQ_INT(last_status, PARLEY_E_DEVICE_LIST_INVALID);
			TEST_CHECK(alice.c->queued == NULL); /* nothing sent */
			continue;
		}
		op = take(alice.c, &req);
		TEST_CHECK(op != NULL);
		if (op == NULL)
			return;
		TEST_EQ_INT(req.body_case, PARLEY__WIRE__REQUEST__BODY_ENTITY_DECIDE);
		TEST_EQ_INT(req.entity_decide->request_id, 3);
		TEST_CHECK(req.entity_decide->approve);
		keep_list(&req.entity_decide->signed_staff_list, 2, &l);
		TEST_EQ_INT(l.entity_id, 7); /* version 1 carried 0: the id did not exist yet */
		TEST_EQ_INT(l.n, 2);
		TEST_EQ_INT(l.members[1].account_id, bob.id);
		TEST_EQ_INT(l.members[1].role, WIRE_ROLE_AGENT);
		TEST_EQ_INT(l.members[1].flags, 0);
		TEST_EQ_MEM(l.members[1].account_key, bob.ak, 33);
		TEST_EQ_INT(l.members[1].devlist_len, bob.devlist_len);
		TEST_EQ_INT(l.members[0].flags, WIRE_STAFF_PRIMARY); /* unchanged */
		wire__stafflist_free(&l);
		answer_ok(&alice, op, PARLEY__WIRE__RESPONSE__BODY_ENTITY_DECIDE);
		TEST_EQ_INT(last_status, PARLEY_OK);
	}
}

/* A server that re-keys bob (a new account key and a list signed by it, self-consistent) after alice
 * pinned bob's key at the approval: refused like a message peer's changed key, nothing sent. */
static void test_approve_rekeyed(void)
{
	Parley__Wire__Request req;
	Parley__Wire__Response resp;
	Parley__Wire__EntityRequestsResponse rr;
	Parley__Wire__EntityJoinInfo ji, *jp = &ji;
	crypto_keypair k;
	wire_devlist l;
	dynbuf b;
	uint8_t ak[33];
	client_op *op;

	crypto__keypair_generate(&k);
	crypto__pubkey_serialize(ak, k.pub);
	memset(&l, 0, sizeof l);
	l.account_id = bob.id;
	snprintf(l.handle, sizeof l.handle, "bob");
	memcpy(l.account_key, ak, 33);
	l.version = 5;
	l.n = 1;
	l.dev[0].device_id = 9;
	l.dev[0].identity_key[0] = 0x05;
	dynbuf__init(&b, WIRE_DEVLIST_MAX_BYTES);
	TEST_EQ_INT(wire__devlist_sign(&l, k.priv, &b), PARLEY_OK);
	TEST_EQ_INT(parley_entity_decide_start(alice.c, "acme", 4, 1, on_done, NULL), PARLEY_OK);
	answer_get(&alice, list_v[1], list_len[1]);
	op = take(alice.c, &req);
	TEST_CHECK(op != NULL);
	if (op == NULL)
		return;
	parley__wire__response__init(&resp);
	parley__wire__entity_requests_response__init(&rr);
	parley__wire__entity_join_info__init(&ji);
	ji.request_id = 4;
	ji.handle = bob.handle;
	ji.account_id = bob.id;
	ji.account_key.data = ak;
	ji.account_key.len = 33;
	ji.signed_device_list.data = b.data;
	ji.signed_device_list.len = b.len;
	rr.n_requests = 1;
	rr.requests = &jp;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_ENTITY_REQUESTS;
	resp.entity_requests = &rr;
	op->vt->complete(alice.c, op, PARLEY_OK, &resp);
	TEST_EQ_INT(last_status, PARLEY_E_UNTRUSTED_IDENTITY);
	TEST_CHECK(alice.c->queued == NULL);
	dynbuf__free(&b);
}

static void test_get_pins(void)
{
	uint8_t forged[sizeof list_v[0]];
	wire_stafflist l;
	crypto_keypair other;
	dynbuf b;

	/* carol, a customer: first sight of v2 pins the key and version 2 */
	TEST_EQ_INT(parley_entity_get_start(carol.c, "acme", on_entity, NULL), PARLEY_OK);
	answer_get(&carol, list_v[2], list_len[2]);
	TEST_EQ_INT(last_status, PARLEY_OK);
	TEST_EQ_INT(parley_entity_member_count(last_entity), 2);
	TEST_EQ_INT(parley_entity_key_here(last_entity), 0);
	/* the replay of v1 */
	TEST_EQ_INT(parley_entity_get_start(carol.c, "acme", on_entity, NULL), PARLEY_OK);
	answer_get(&carol, list_v[1], list_len[1]);
	TEST_EQ_INT(last_status, PARLEY_E_STAFF_LIST_ROLLBACK);
	TEST_CHECK(last_entity == NULL);
	/* v3 under another key */
	TEST_EQ_INT(wire__stafflist_verify(list_v[2], list_len[2], &l), PARLEY_OK);
	crypto__keypair_generate(&other);
	crypto__pubkey_serialize(l.entity_key, other.pub);
	l.version = 3;
	dynbuf__init(&b, sizeof forged);
	TEST_EQ_INT(wire__stafflist_sign(&l, other.priv, &b), PARLEY_OK);
	TEST_EQ_INT(parley_entity_get_start(carol.c, "acme", on_entity, NULL), PARLEY_OK);
	answer_get(&carol, b.data, b.len);
	TEST_EQ_INT(last_status, PARLEY_E_UNTRUSTED_IDENTITY);
	/* a flipped byte */
	memcpy(forged, list_v[2], list_len[2]);
	forged[list_len[2] / 2] ^= 1;
	TEST_EQ_INT(parley_entity_get_start(carol.c, "acme", on_entity, NULL), PARLEY_OK);
	answer_get(&carol, forged, list_len[2]);
	TEST_EQ_INT(last_status, PARLEY_E_STAFF_LIST_INVALID);
	/* the list of another entity served for acme */
	snprintf(l.handle, sizeof l.handle, "other");
	dynbuf__reset(&b);
	TEST_EQ_INT(wire__stafflist_sign(&l, other.priv, &b), PARLEY_OK);
	TEST_EQ_INT(parley_entity_get_start(carol.c, "acme", on_entity, NULL), PARLEY_OK);
	answer_get(&carol, b.data, b.len);
	TEST_EQ_INT(last_status, PARLEY_E_STAFF_LIST_INVALID);
	dynbuf__free(&b);
	wire__stafflist_free(&l);
	/* the truth again */
	TEST_EQ_INT(parley_entity_get_start(carol.c, "acme", on_entity, NULL), PARLEY_OK);
	answer_get(&carol, list_v[2], list_len[2]);
	TEST_EQ_INT(last_status, PARLEY_OK);
}

/* ---- the business's devices ---- */
static size_t dev_n, dev_left, dev_unlisted_id, not_listed_events;

static void on_devices(parley_client *c, parley_err st, const parley_entity_device *d, size_t n, size_t left,
		       void *user)
{
	last_status = st;
	dev_n = n;
	dev_left = left;
	for (size_t i = 0; i < n; i++)
		if (!d[i].listed)
			dev_unlisted_id = d[i].device_id;
}

static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	not_listed_events += err == PARLEY_E_DEVICE_NOT_LISTED && strcmp(handle, "bob") == 0 && device == 7;
}

/* The server's bundles for a member: device 1 under the key its list names, and an extra device. */
static void answer_bundles(test_acct *a, const char *member, int extra)
{
	Parley__Wire__Request req;
	Parley__Wire__Response resp;
	Parley__Wire__GetBundlesResponse gb;
	Parley__Wire__PreKeyBundle b[2], *bp[2] = {&b[0], &b[1]};
	uint8_t listed_ik[33] = {0x05}, injected_ik[33] = {0x05, 0x77};
	client_op *op = take(a->c, &req);

	TEST_CHECK(op != NULL);
	if (op == NULL)
		return;
	TEST_EQ_INT(req.body_case, PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES);
	TEST_EQ_STR(req.get_bundles->handle, member);
	parley__wire__response__init(&resp);
	parley__wire__get_bundles_response__init(&gb);
	for (int i = 0; i < 2; i++) {
		parley__wire__pre_key_bundle__init(&b[i]);
		b[i].device_id = i == 0 ? 1 : 7;
		b[i].identity_key.data = i == 0 ? listed_ik : injected_ik;
		b[i].identity_key.len = 33;
	}
	gb.n_bundles = extra ? 2 : 1;
	gb.bundles = bp;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_GET_BUNDLES;
	resp.get_bundles = &gb;
	op->vt->complete(a->c, op, PARLEY_OK, &resp);
}

static void test_devices(void)
{
	parley_events ev;

	memset(&ev, 0, sizeof ev);
	ev.on_error = on_error;
	parley_client_set_events(carol.c, &ev);
	for (int injected = 0; injected <= 1; injected++) {
		last_status = -1;
		TEST_EQ_INT(parley_entity_devices_start(carol.c, "acme", on_devices, NULL), PARLEY_OK);
		answer_get(&carol, list_v[2], list_len[2]);
		answer_bundles(&carol, "alice", 0);
		answer_bundles(&carol, "bob", injected);
		TEST_EQ_INT(last_status, PARLEY_OK);
		TEST_EQ_INT(dev_n, 2 + (size_t)injected);
		TEST_EQ_INT(dev_left, (size_t)injected);
		TEST_CHECK(carol.c->queued == NULL);
	}
	TEST_EQ_INT(dev_unlisted_id, 7);
	TEST_EQ_INT(not_listed_events, 1);
	TEST_CHECK(strstr(parley_client_errmsg(carol.c), "device 7 of bob") != NULL);
	parley_client_set_events(carol.c, NULL);
}

/* The customer's entity safety number and the business's with that customer are the same digits;
 * another customer's differs. */
static void test_safety_number(void)
{
	char mine[PARLEY_SAFETY_NUMBER_LEN + 1], theirs[PARLEY_SAFETY_NUMBER_LEN + 1];
	char other[PARLEY_SAFETY_NUMBER_LEN + 1];
	wire_devlist l;

	/* alice learnt carol's and bob's keys (as a message or a devices fetch would pin them) */
	TEST_EQ_INT(client__peer_check_list(alice.c, "carol", carol.devlist, carol.devlist_len, &l), PARLEY_OK);
	TEST_EQ_INT(parley_entity_safety_number(carol.c, "acme", mine), PARLEY_OK);
	TEST_EQ_INT(strlen(mine), PARLEY_SAFETY_NUMBER_LEN);
	TEST_EQ_INT(parley_entity_safety_number_for(alice.c, "acme", "carol", theirs), PARLEY_OK);
	TEST_EQ_STR(mine, theirs);
	TEST_EQ_INT(parley_entity_safety_number_for(alice.c, "acme", "bob", other), PARLEY_OK);
	TEST_CHECK(strcmp(other, mine) != 0);
}

static void test_remove_and_rules(void)
{
	Parley__Wire__Request req;
	parley_rules_change ch;
	wire_stafflist l;
	client_op *op;

	/* never the primary: refused here, nothing sent */
	TEST_EQ_INT(parley_entity_remove_start(alice.c, "acme", "alice", PARLEY_ROLE_ADMIN, on_done, NULL), PARLEY_OK);
	answer_get(&alice, list_v[2], list_len[2]);
	TEST_EQ_INT(last_status, PARLEY_E_PRIMARY_ADMIN_FIXED);
	TEST_CHECK(alice.c->queued == NULL);
	/* an agent named as an admin: not removed by a typo */
	TEST_EQ_INT(parley_entity_remove_start(alice.c, "acme", "bob", PARLEY_ROLE_ADMIN, on_done, NULL), PARLEY_OK);
	answer_get(&alice, list_v[2], list_len[2]);
	TEST_EQ_INT(last_status, PARLEY_E_NOT_FOUND);
	/* rules: may_pay on for the entity -> v3 with only that changed */
	parley_rules_change_init(&ch);
	ch.may_pay = 1;
	TEST_EQ_INT(parley_entity_rules_start(alice.c, "acme", NULL, &ch, on_done, NULL), PARLEY_OK);
	answer_get(&alice, list_v[2], list_len[2]);
	op = take(alice.c, &req);
	TEST_CHECK(op != NULL);
	if (op == NULL)
		return;
	TEST_EQ_INT(req.body_case, PARLEY__WIRE__REQUEST__BODY_ENTITY_STAFF);
	keep_list(&req.entity_staff->signed_staff_list, 3, &l);
	TEST_EQ_INT(l.default_flags, WIRE_RULE_MAY_PAY);
	TEST_EQ_INT(l.n, 2);
	wire__stafflist_free(&l);
	answer_ok(&alice, op, PARLEY__WIRE__RESPONSE__BODY_ENTITY_STAFF);
	/* bob's override: may_initiate and show_name on for him only (=inherit is for a member only) */
	parley_rules_change_init(&ch);
	ch.show_name = PARLEY_RULE_INHERIT;
	TEST_EQ_INT(parley_entity_rules_start(alice.c, "acme", NULL, &ch, on_done, NULL), PARLEY_E_INVAL);
	ch.may_initiate = 1;
	ch.show_name = 1;
	TEST_EQ_INT(parley_entity_rules_start(alice.c, "acme", "bob", &ch, on_done, NULL), PARLEY_OK);
	answer_get(&alice, list_v[3], list_len[3]);
	op = take(alice.c, &req);
	TEST_CHECK(op != NULL);
	if (op == NULL)
		return;
	TEST_EQ_INT(wire__stafflist_verify(req.entity_staff->signed_staff_list.data,
					   req.entity_staff->signed_staff_list.len, &l),
		    PARLEY_OK);
	TEST_EQ_INT(l.version, 4);
	TEST_EQ_INT(wire__stafflist_effective_rules(&l, &l.members[1]),
		    WIRE_RULE_MAY_PAY | WIRE_RULE_MAY_INITIATE | WIRE_RULE_SHOW_NAME);
	TEST_EQ_INT(wire__stafflist_effective_rules(&l, &l.members[0]), WIRE_RULE_MAY_PAY);
	wire__stafflist_free(&l);
	answer_ok(&alice, op, PARLEY__WIRE__RESPONSE__BODY_ENTITY_STAFF);
	/* remove bob (v3 -> v4 without him) */
	TEST_EQ_INT(parley_entity_remove_start(alice.c, "acme", "bob", PARLEY_ROLE_AGENT, on_done, NULL), PARLEY_OK);
	answer_get(&alice, list_v[3], list_len[3]);
	op = take(alice.c, &req);
	TEST_CHECK(op != NULL);
	if (op == NULL)
		return;
	TEST_EQ_INT(req.body_case, PARLEY__WIRE__REQUEST__BODY_ENTITY_MEMBER);
	TEST_CHECK(req.entity_member->remove);
	TEST_EQ_STR(req.entity_member->member, "bob");
	TEST_EQ_INT(req.entity_member->role, PARLEY__WIRE__ENTITY_ROLE__ROLE_AGENT);
	TEST_EQ_INT(wire__stafflist_verify(req.entity_member->signed_staff_list.data,
					   req.entity_member->signed_staff_list.len, &l),
		    PARLEY_OK);
	TEST_EQ_INT(l.version, 4);
	TEST_EQ_INT(l.n, 1);
	TEST_CHECK(wire__stafflist_find(&l, bob.id) == NULL);
	wire__stafflist_free(&l);
	answer_ok(&alice, op, PARLEY__WIRE__RESPONSE__BODY_ENTITY_MEMBER);
	TEST_EQ_INT(last_status, PARLEY_OK);
}

/* bob (an agent, no entity key) cannot sign: refused before anything is sent */
static void test_not_admin(void)
{
	TEST_EQ_INT(parley_entity_decide_start(bob.c, "acme", 9, 1, on_done, NULL), PARLEY_OK);
	answer_get(&bob, list_v[2], list_len[2]);
	TEST_EQ_INT(last_status, PARLEY_E_NOT_ENTITY_ADMIN);
	TEST_CHECK(bob.c->queued == NULL);
	/* a deny carries no list: it goes straight to the server, which decides */
	TEST_EQ_INT(parley_entity_decide_start(bob.c, "acme", 9, 0, on_done, NULL), PARLEY_OK);
	TEST_CHECK(bob.c->queued != NULL);
}

int main(void)
{
	TEST_CHECK(mkdtemp(root) != NULL);
	crypto__init();
	make_acct(&alice, "alice", 1);
	make_acct(&bob, "bob", 2);
	make_acct(&carol, "carol", 3);
	TEST_RUN(test_create);
	TEST_RUN(test_approve);
	TEST_RUN(test_approve_rekeyed);
	TEST_RUN(test_get_pins);
	TEST_RUN(test_devices);
	TEST_RUN(test_safety_number);
	TEST_RUN(test_remove_and_rules);
	TEST_RUN(test_not_admin);
	parley_entity_free(last_entity);
	parley_client_free(alice.c);
	parley_client_free(bob.c);
	parley_client_free(carol.c);
	test_remove_tree(root);
	TEST_EXIT();
}
