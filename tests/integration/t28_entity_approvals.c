/* t28: the entity key on one device, and everything around it (docs/protocol.md §12.5, §12.6):
 *
 *   approval_pushed       an admin without the entity key approves: the request stays pending with
 *                         approved_by; a second approval is ALREADY_APPROVED; the key holder, connected,
 *                         hears it (push) and signs the list by itself: the candidate is a member.
 *   approval_at_connect   the key holder was away while another admin approved: its next connection
 *                         signs the list.
 *   approval_forged       the server (the test writing its database) copies a valid approval onto
 *                         another request, and writes one signed by a key that is no admin device's:
 *                         the key holder signs the valid request only, and reports APPROVAL_INVALID
 *                         for the two others, which stay out.
 *   denied_pushed         a candidate connected when an admin denies its request hears it.
 *   primary_transfer      to an agent: NEW_PRIMARY_NOT_ADMIN; to an admin: the list names it primary at
 *                         once, the old primary's primary-only calls are refused, the entity key
 *                         reaches the new primary's device, which then signs, and the old device wipes
 *                         its copy when the new one confirms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/entity.h>
#include <parley/error.h>
#include <sodium.h>

#include "client/client_internal.h"
#include "harness.h"
#include "wire/approval.h"

static srv s;
static char url[128];
static parley_client *alice, *dave, *carol; /* primary admin (entity key), admin, observer */

static parley_client *user(const char *handle)
{
	return it_user(&s, url, handle);
}


/* The member `handle` as carol's client verifies the staff list now (0 if not a member). */
static int member(const char *handle, parley_entity_member *out)
{
	parley_entity *e = NULL;
	parley_entity_member m;
	int found = 0;

	if (parley_entity_get(carol, "acme", &e) != PARLEY_OK)
		return 0;
	for (size_t i = 0; i < parley_entity_member_count(e); i++)
		if (parley_entity_member_get(e, i, &m) == PARLEY_OK && strcmp(m.handle, handle) == 0) {
			found = 1;
			if (out != NULL)
				*out = m;
		}
	parley_entity_free(e);
	return found;
}

/* Runs c's loop (pushes, background work) until `handle` is a member, at most ~5 s. */
static int wait_member(parley_client *c, const char *handle)
{
	for (int i = 0; i < 50; i++) {
		if (member(handle, NULL))
			return 1;
		parley_client_run(c, 100);
	}
	return member(handle, NULL);
}

/* A candidate with a code made by dave (an admin without the key); its request id. */
static uint64_t candidate(parley_client *who, const char *handle)
{
	char code[PARLEY_ENROL_CODE_MAX + 1];
	uint64_t req = 0;

	IT_EQ(parley_entity_code(dave, "acme", 0, PARLEY_ROLE_AGENT, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(who, "acme", code, &req), PARLEY_OK);
	(void)handle;
	return req;
}

static int invalid_approvals;
static char invalid_names[256];

static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	if (err != PARLEY_E_APPROVAL_INVALID)
		return;
	invalid_approvals++;
	size_t l = strlen(invalid_names);
	snprintf(invalid_names + l, sizeof invalid_names - l, "%s ", handle);
}

static void on_message(parley_client *c, const parley_message *m, void *user)
{
}

static void listen_with_errors(parley_client *c)
{
	parley_events ev;
	memset(&ev, 0, sizeof ev);
	ev.on_error = on_error;
	ev.on_message = on_message;
	parley_client_set_events(c, &ev);
}

static void setup(void)
{
	uint64_t id = 0;

	alice = user("alice");
	dave = user("dave");
	carol = user("carol");
	IT_EQ(parley_entity_create(alice, "acme", "Acme Support", &id), PARLEY_OK);
	IT_EQ(parley_entity_add_admin(alice, "acme", "dave"), PARLEY_OK);
	listen_with_errors(alice);
}

static void approval_pushed(void)
{
	parley_client *bob = user("bob");
	parley_join_request reqs[4];
	size_t n = 0;
	uint64_t req = candidate(bob, "bob");

	IT_EQ(parley_connect(alice), PARLEY_OK); /* online: it gets the push */
	IT_EQ(parley_entity_decide(dave, "acme", req, 1), PARLEY_OK);
	IT_EQ(parley_entity_decide(dave, "acme", req, 1), PARLEY_E_ALREADY_APPROVED);
	IT_EQ(parley_entity_requests(dave, "acme", reqs, 4, &n), PARLEY_OK);
	if (n == 1) { /* the key holder has not run yet: pending, approved by dave */
		IT_EQ(reqs[0].request_id, req);
		IT_EQ(reqs[0].approved_by, dave->account.account_id);
	}
	IT_CHECK(wait_member(alice, "bob"));
	IT_EQ(invalid_approvals, 0);
	parley_client_free(bob);
}

static void approval_at_connect(void)
{
	parley_client *frank = user("frank");
	uint64_t req = candidate(frank, "frank");

	parley_client_disconnect(alice);
	IT_EQ(parley_entity_decide(dave, "acme", req, 1), PARLEY_OK);
	usleep(300 * 1000);
	IT_CHECK(!member("frank", NULL)); /* nobody signed yet */
	IT_EQ(parley_connect(alice), PARLEY_OK);
	IT_CHECK(wait_member(alice, "frank"));
	parley_client_free(frank);
}

/* Writes approval bytes onto request `req` in the server's database (what an operator could do). */
static void write_approval(uint64_t req, const uint8_t *a, size_t len)
{
	it_db *db = it_db_open(&s);

	/* an upsert both dialects read the same way (request_id is the key) */
	IT_EQ(it_db_exec(db,
			 "INSERT INTO entity_approvals (request_id, approval, approver, created_ms)"
			 " SELECT ?2, ?1, id, 0 FROM accounts WHERE handle = 'dave'"
			 " ON CONFLICT (request_id) DO UPDATE SET approval = excluded.approval,"
			 " approver = excluded.approver, created_ms = excluded.created_ms",
			 "bi", a, len, (long long)req),
	      1);
	it_db_close(db);
}

static size_t read_approval(uint64_t req, uint8_t *out, size_t cap)
{
	it_db *db = it_db_open(&s);
	long long len = it_db_blob(db, out, cap, "SELECT approval FROM entity_approvals WHERE request_id = ?", "i",
				   (long long)req);
	it_db_close(db);
	return len > 0 ? (size_t)len : 0;
}

static void approval_forged(void)
{
	parley_client *gina = user("gina"), *hank = user("hank"), *ivan = user("ivan");
	uint64_t rg = candidate(gina, "gina"), rh = candidate(hank, "hank"), ri = candidate(ivan, "ivan");
	uint8_t a[WIRE_APPROVAL_MAX_BYTES], pk[32], sk[64];
	wire_approval w;
	size_t len;

	parley_client_disconnect(alice);
	IT_EQ(parley_entity_decide(dave, "acme", rg, 1), PARLEY_OK);
	len = read_approval(rg, a, sizeof a);
	IT_CHECK(len > 0);
	write_approval(rh, a, len); /* gina's approval on hank's request */
	/* one for ivan's request, right in every field, signed by a key no admin device has */
	IT_EQ(wire__approval_parse(a, len, &w), PARLEY_OK);
	w.request_id = ri;
	w.candidate_id = ivan->account.account_id;
	IT_EQ(client__account_key(ivan, w.candidate_key, NULL), PARLEY_OK);
	crypto_sign_keypair(pk, sk);
	/* its list hash is the real one: the test reads it back from the server below */
	{
		it_db *db = it_db_open(&s);
		it_rows *r = it_db_query(db, "SELECT devlist FROM entity_requests WHERE id = ?", "i", (long long)ri);
		IT_CHECK(r != NULL);
		if (it_rows_next(r)) {
			size_t n;
			const void *b = it_rows_blob(r, 0, &n);
			wire__approval_devlist_hash(b, n, w.devlist_hash);
		}
		it_rows_free(r);
		it_db_close(db);
	}
	IT_EQ(wire__approval_sign(&w, sk, a, sizeof a, &len), PARLEY_OK);
	write_approval(ri, a, len);

	invalid_approvals = 0;
	invalid_names[0] = '\0';
	IT_EQ(parley_connect(alice), PARLEY_OK);
	IT_CHECK(wait_member(alice, "gina"));
	for (int i = 0; i < 20 && invalid_approvals < 2; i++)
		parley_client_run(alice, 100);
	IT_CHECK(invalid_approvals >= 2);
	IT_CHECK(strstr(invalid_names, "hank") != NULL && strstr(invalid_names, "ivan") != NULL);
	IT_CHECK(!member("hank", NULL));
	IT_CHECK(!member("ivan", NULL));
	parley_client_free(gina);
	parley_client_free(hank);
	parley_client_free(ivan);
}

static int denials;

static void on_decided(parley_client *c, const char *entity, uint64_t request_id, int approved, void *user)
{
	denials += !approved && strcmp(entity, "acme") == 0 && request_id == *(uint64_t *)user;
}

static void denied_pushed(void)
{
	parley_client *jack = user("jack");
	parley_events ev;
	uint64_t req = candidate(jack, "jack");

	memset(&ev, 0, sizeof ev);
	ev.on_entity_join_decided = on_decided;
	ev.user = &req;
	parley_client_set_events(jack, &ev);
	IT_EQ(parley_connect(jack), PARLEY_OK);
	IT_EQ(parley_entity_decide(dave, "acme", req, 0), PARLEY_OK);
	for (int i = 0; i < 30 && denials == 0; i++)
		parley_client_run(jack, 100);
	IT_EQ(denials, 1);
	parley_client_free(jack);
}

static int key_here(parley_client *c)
{
	parley_entity *e = NULL;
	int here = parley_entity_get(c, "acme", &e) == PARLEY_OK && parley_entity_key_here(e);
	parley_entity_free(e);
	return here;
}

static void primary_transfer(void)
{
	parley_entity_member m;
	parley_client *kim = user("kim");

	IT_EQ(parley_entity_transfer_primary(alice, "acme", "bob"), PARLEY_E_NEW_PRIMARY_NOT_ADMIN);
	IT_EQ(parley_entity_transfer_primary(alice, "acme", "nobody"), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_CHECK(!key_here(dave));
	IT_EQ(parley_entity_transfer_primary(alice, "acme", "dave"), PARLEY_OK);
	IT_CHECK(member("dave", &m) && m.primary);
	IT_CHECK(member("alice", &m) && !m.primary && m.role == PARLEY_ROLE_ADMIN);
	/* the server: alice is no longer the primary admin; her client: dave is */
	IT_EQ(parley_entity_add_admin(alice, "acme", "kim"), PARLEY_E_NOT_PRIMARY_ADMIN);
	IT_EQ(parley_entity_remove(alice, "acme", "dave", PARLEY_ROLE_ADMIN), PARLEY_E_PRIMARY_ADMIN_FIXED);
	/* the key reaches dave's device (it receives), which can then sign */
	listen_with_errors(dave);
	IT_EQ(parley_connect(dave), PARLEY_OK);
	for (int i = 0; i < 50 && !key_here(dave); i++)
		parley_client_run(dave, 100);
	IT_CHECK(key_here(dave));
	IT_EQ(parley_entity_add_admin(dave, "acme", "kim"), PARLEY_OK);
	/* dave's confirm reaches alice: her copy is wiped */
	for (int i = 0; i < 50 && key_here(alice); i++)
		parley_client_run(alice, 100);
	IT_CHECK(!key_here(alice));
	IT_EQ(parley_entity_remove(alice, "acme", "kim", PARLEY_ROLE_ADMIN), PARLEY_E_ENTITY_KEY_REQUIRED);
	parley_client_free(kim);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	setup();
	IT_RUN(approval_pushed);
	IT_RUN(approval_at_connect);
	IT_RUN(approval_forged);
	IT_RUN(denied_pushed);
	IT_RUN(primary_transfer);
	parley_client_free(alice);
	parley_client_free(dave);
	parley_client_free(carol);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures > 0;
}
