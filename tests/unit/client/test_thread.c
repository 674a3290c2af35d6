/* The client's thread core without a server (lib/client/thread_state.c, thread.c): the verified replay
 * of signed thread events against a staff list signed here, the rules of docs/protocol.md §13.3 as the
 * client applies them, the rotation flag, the distribution id and the kind-6 bound; a channel thread's
 * customer taken from the gateway's signed OPEN, never from the server's ThreadInfo (thread_channel.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <parley/signal_group.h>

#include "../test.h"
#include "client/thread_core.h"
#include "common/alloc.h"
#include "crypto/crypto.h"

/* An account with one device: account key (XEdDSA, signs its device list) and device key (Ed25519). */
typedef struct tacct {
	const char *handle;
	uint64_t id;
	crypto_keypair ak;
	uint8_t dpk[32], dsk[64];
	uint8_t *list;
	size_t list_len;
} tacct;

static void make_acct(tacct *a, const char *handle, uint64_t id)
{
	wire_devlist l;
	crypto_keypair ik;
	dynbuf b;

	parley__free(a->list); /* test_channel makes the accounts of test_replay again */
	memset(a, 0, sizeof(*a));
	a->handle = handle;
	a->id = id;
	TEST_EQ_INT(crypto__keypair_generate(&a->ak), PARLEY_OK);
	TEST_EQ_INT(crypto__keypair_generate(&ik), PARLEY_OK);
	crypto_sign_keypair(a->dpk, a->dsk);
	memset(&l, 0, sizeof(l));
	l.account_id = id;
	snprintf(l.handle, sizeof(l.handle), "%s", handle);
	crypto__pubkey_serialize(l.account_key, a->ak.pub);
	l.version = 1;
	l.timestamp_ms = 1000;
	l.n = 1;
	l.dev[0].device_id = 1;
	crypto__pubkey_serialize(l.dev[0].identity_key, ik.pub);
	memcpy(l.dev[0].device_key, a->dpk, 32);
	dynbuf__init(&b, 4096);
	TEST_EQ_INT(wire__devlist_sign(&l, a->ak.priv, &b), PARLEY_OK);
	a->list = dynbuf__take(&b, &a->list_len);
}

static tacct adam, agnes, carol, gwen; /* admin, agent, customer, gateway (test_channel) */

static parley_client *client_for(char *dir)
{
	parley_client_options o;
	parley_client *c = NULL;
	client_account a;

	TEST_CHECK(mkdtemp(dir) != NULL);
	parley_client_options_init(&o);
	o.state_dir = dir;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_OK);
	TEST_EQ_INT(client__ensure_key(c, 1), PARLEY_OK);
	memset(&a, 0, sizeof a);
	snprintf(a.handle, sizeof a.handle, "viewer");
	a.account_id = 99;
	a.device_id = 1;
	snprintf(a.server_url, sizeof a.server_url, "ws://127.0.0.1:1/v1/websocket");
	TEST_EQ_INT(client__state_save_account(c->state, &a, c->errmsg, sizeof c->errmsg), PARLEY_OK);
	return c;
}

/* The staff list of acme (adam admin, agnes agent and default agent, gwen gateway when `gateway`),
 * verified and kept by c. */
static void keep_list(parley_client *c, int gateway)
{
	crypto_keypair ek;
	wire_stafflist l;
	wire_staff_member m[3];
	Parley__Wire__Entity w = PARLEY__WIRE__ENTITY__INIT;
	parley_entity *e = NULL;
	dynbuf b;

	TEST_EQ_INT(crypto__keypair_generate(&ek), PARLEY_OK);
	memset(&l, 0, sizeof(l));
	memset(m, 0, sizeof(m));
	l.entity_id = 7;
	snprintf(l.handle, sizeof(l.handle), "acme");
	snprintf(l.display_name, sizeof(l.display_name), "Acme");
	crypto__pubkey_serialize(l.entity_key, ek.pub);
	l.version = 2;
	l.timestamp_ms = 2000;
	l.n = gateway ? 3 : 2;
	l.members = m;
	const tacct *who[3] = {&adam, &agnes, &gwen};
	for (size_t i = 0; i < l.n; i++) {
		m[i].account_id = who[i]->id;
		snprintf(m[i].handle, sizeof(m[i].handle), "%s", who[i]->handle);
		m[i].role = i == 0 ? WIRE_ROLE_ADMIN : i == 1 ? WIRE_ROLE_AGENT : WIRE_ROLE_GATEWAY;
		m[i].flags = i == 0 ? WIRE_STAFF_PRIMARY : 0;
		/* with a gateway, agnes may initiate too (a staff OPEN that only the channel rule refuses) */
		m[i].rules_mask = i == 1 ? WIRE_RULE_DEFAULT_AGENT | (gateway ? WIRE_RULE_MAY_INITIATE : 0) : 0;
		m[i].rules_values = m[i].rules_mask;
		crypto__pubkey_serialize(m[i].account_key, who[i]->ak.pub);
		m[i].devlist = who[i]->list;
		m[i].devlist_len = who[i]->list_len;
	}
	dynbuf__init(&b, 65536);
	TEST_EQ_INT(wire__stafflist_sign(&l, ek.priv, &b), PARLEY_OK);
	w.entity_id = 7;
	w.signed_staff_list.data = dynbuf__take(&b, &w.signed_staff_list.len);
	TEST_EQ_INT(client__entity_verify(c, "acme", &w, &e), PARLEY_OK);
	parley_entity_free(e);
	free(w.signed_staff_list.data);
}

static void keep_staff_list(parley_client *c)
{
	keep_list(c, 0);
}

/* an OPEN by actor for subject naming a channel customer */
static size_t sign_open(const tacct *actor, uint64_t subject, uint32_t channel, const char *user, uint8_t *out)
{
	wire_threadev ev;
	size_t len = 0;

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.entity, sizeof(ev.entity), "acme");
	ev.version = 1;
	ev.kind = WIRE_THREADEV_OPEN;
	ev.subject = subject;
	ev.actor = actor->id;
	ev.actor_device = 1;
	ev.staff_version = 2;
	ev.timestamp_ms = 3001;
	ev.channel = channel;
	snprintf(ev.channel_user, sizeof(ev.channel_user), "%s", user);
	TEST_EQ_INT(wire__threadev_sign(&ev, actor->dsk, out, WIRE_THREADEV_MAX_BYTES, &len), PARLEY_OK);
	return len;
}

static size_t sign(const tacct *actor, uint64_t thread_id, uint64_t version, int kind, uint64_t subject, uint8_t *out)
{
	wire_threadev ev;
	size_t len = 0;

	memset(&ev, 0, sizeof(ev));
	ev.thread_id = thread_id;
	snprintf(ev.entity, sizeof(ev.entity), "acme");
	ev.version = version;
	ev.kind = (uint8_t)kind;
	ev.subject = subject;
	ev.actor = actor->id;
	ev.actor_device = 1;
	ev.staff_version = 2;
	ev.timestamp_ms = 3000 + version;
	TEST_EQ_INT(wire__threadev_sign(&ev, actor->dsk, out, WIRE_THREADEV_MAX_BYTES, &len), PARLEY_OK);
	return len;
}

static int apply1(parley_client *c, const uint8_t *ev, size_t len)
{
	return client__thread_apply_events(c, "acme", 5, &ev, &len, 1);
}

static size_t members(parley_client *c)
{
	thread_member m[THREAD_MEMBERS_MAX];
	size_t n = 0;
	TEST_EQ_INT(client__thread_members(c, 5, m, THREAD_MEMBERS_MAX, &n), PARLEY_OK);
	return n;
}

static void test_replay(void)
{
	char dir[] = "/tmp/parley-thr-XXXXXX";
	parley_client *c = client_for(dir);
	uint8_t open[WIRE_THREADEV_MAX_BYTES], ev[WIRE_THREADEV_MAX_BYTES], ev2[WIRE_THREADEV_MAX_BYTES];
	size_t ol, l, l2;
	wire_devlist dl;
	client_thread t;
	uint64_t epoch = 0;
	int rotate = -1;

	make_acct(&adam, "adam", 10);
	make_acct(&agnes, "agnes", 11);
	make_acct(&carol, "carol", 12);
	keep_staff_list(c);
	/* the customer's signed list, kept as peers.c keeps a fetched one */
	TEST_EQ_INT(client__peer_check_list(c, "carol", carol.list, carol.list_len, &dl), PARLEY_OK);

	/* the OPEN by the customer: members = carol + the admin + the default agent */
	ol = sign(&carol, 0, 1, WIRE_THREADEV_OPEN, carol.id, open);
	TEST_EQ_INT(apply1(c, open, ol), PARLEY_OK);
	TEST_EQ_INT(client__thread_load(c, 5, &t), PARLEY_OK);
	TEST_EQ_INT(t.membership_version, 1);
	TEST_EQ_INT(t.customer_account, carol.id);
	TEST_EQ_STR(t.customer, "carol");
	TEST_EQ_INT(members(c), 3);
	TEST_EQ_INT(client__thread_epoch(c, 5, &epoch, &rotate), PARLEY_OK);
	TEST_EQ_INT(rotate, 0);

	/* an agent removing the admin: not its right */
	l = sign(&agnes, 5, 2, WIRE_THREADEV_REMOVE, adam.id, ev);
	TEST_EQ_INT(apply1(c, ev, l), PARLEY_E_THREAD_EVENT_INVALID);
	TEST_CHECK(strstr(parley_client_errmsg(c), "admin") != NULL);
	/* a signature by another device than the actor's */
	l = sign(&adam, 5, 2, WIRE_THREADEV_REMOVE, agnes.id, ev);
	ev[l - 1] ^= 1;
	TEST_EQ_INT(apply1(c, ev, l), PARLEY_E_THREAD_EVENT_INVALID);
	/* a gap in the chain */
	l = sign(&adam, 5, 3, WIRE_THREADEV_REMOVE, agnes.id, ev);
	TEST_EQ_INT(apply1(c, ev, l), PARLEY_E_THREAD_EVENT_INVALID);
	TEST_EQ_INT(members(c), 3); /* nothing of the refused ones kept */

	/* the admin removes the agent: applied, and our sender key must rotate */
	l = sign(&adam, 5, 2, WIRE_THREADEV_REMOVE, agnes.id, ev);
	TEST_EQ_INT(apply1(c, ev, l), PARLEY_OK);
	TEST_EQ_INT(members(c), 2);
	TEST_EQ_INT(client__thread_epoch(c, 5, &epoch, &rotate), PARLEY_OK);
	TEST_EQ_INT(rotate, 1);
	/* the same event again is fine; another event for a kept version is not */
	TEST_EQ_INT(apply1(c, ev, l), PARLEY_OK);
	l2 = sign(&adam, 5, 2, WIRE_THREADEV_CLOSE, 0, ev2);
	TEST_EQ_INT(apply1(c, ev2, l2), PARLEY_E_THREAD_EVENT_INVALID);
	/* the rotation done, the admin adds the agent back: no new epoch for a newcomer (it gets our key at
	 * its current position; a forward's keys stay valid) */
	TEST_EQ_INT(client__thread_rotated(c, 5), PARLEY_OK);
	l2 = sign(&adam, 5, 3, WIRE_THREADEV_ADD, agnes.id, ev2);
	TEST_EQ_INT(apply1(c, ev2, l2), PARLEY_OK);
	TEST_EQ_INT(members(c), 3);
	TEST_EQ_INT(client__thread_epoch(c, 5, &epoch, &rotate), PARLEY_OK);
	TEST_EQ_INT(rotate, 0);
	TEST_EQ_INT(epoch, 2);
	/* the customer closes; nothing follows a close */
	l2 = sign(&carol, 5, 4, WIRE_THREADEV_CLOSE, 0, ev2);
	TEST_EQ_INT(apply1(c, ev2, l2), PARLEY_OK);
	TEST_EQ_INT(client__thread_load(c, 5, &t), PARLEY_OK);
	TEST_EQ_INT(t.status, PARLEY_THREAD_CLOSED);
	l2 = sign(&adam, 5, 5, WIRE_THREADEV_REMOVE, agnes.id, ev2);
	TEST_EQ_INT(apply1(c, ev2, l2), PARLEY_E_THREAD_EVENT_INVALID);

	/* the kept chain, as a forward bundle carries it */
	uint8_t **evs = NULL;
	size_t *lens = NULL, n = 0;
	TEST_EQ_INT(client__thread_events(c, 5, &evs, &lens, &n), PARLEY_OK);
	TEST_EQ_INT(n, 4);
	TEST_CHECK(n == 4 && lens[0] == ol && memcmp(evs[0], open, ol) == 0);
	client__thread_events_free(evs, lens, n);

	/* the sender keys held for the thread: none, then carol's device 1 (named by her kept list) */
	client_thread_sender snd[8];
	uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], skdm[PARLEY_GROUP_DISTRIBUTION_MAX];
	parley_signal_address ca = {"carol", 1};
	size_t ns = 9, sl = 0;
	TEST_EQ_INT(client__e2e_open(c), PARLEY_OK);
	TEST_EQ_INT(client__thread_senders(c, 5, snd, 8, &ns), PARLEY_OK);
	TEST_EQ_INT(ns, 0);
	client__thread_distribution_id(5, dist);
	TEST_EQ_INT(parley_group_create_distribution(&c->sigstore, &ca, dist, skdm, sizeof skdm, &sl), PARLEY_OK);
	TEST_EQ_INT(client__thread_senders(c, 5, snd, 8, &ns), PARLEY_OK);
	TEST_EQ_INT(ns, 1);
	TEST_CHECK(ns == 1 && strcmp(snd[0].handle, "carol") == 0 && snd[0].device == 1);
	parley_client_free(c);
	test_remove_tree(dir);
}

/* What the server's ThreadInfo claims of thread id: kept (compared) as a fetch or a listing keeps it. */
static void claim(parley_client *c, uint64_t id, uint32_t channel, const char *user, unsigned level)
{
	Parley__Wire__ThreadInfo ti = PARLEY__WIRE__THREAD_INFO__INIT;
	thread_chan ch;
	ti.thread_id = id;
	ti.channel = channel;
	ti.channel_user = (char *)user;
	ti.verification = (Parley__Wire__VerificationLevel)level;
	client__thread_chan_from(&ch, &ti);
	TEST_EQ_INT(client__thread_chan_keep(c, id, &ch), PARLEY_OK);
}

static void test_channel(void)
{
	char dir[] = "/tmp/parley-thr-XXXXXX";
	parley_client *c = client_for(dir);
	uint8_t ev[WIRE_THREADEV_MAX_BYTES];
	const uint8_t *p = ev;
	size_t l;
	wire_devlist dl;
	parley_thread_info info;

	make_acct(&adam, "adam", 10);
	make_acct(&agnes, "agnes", 11);
	make_acct(&carol, "carol", 12);
	make_acct(&gwen, "gwen", 13);
	keep_list(c, 1);
	/* the customers' signed lists, kept as a staff client keeps them before replaying (TS_CUSTOMER) */
	TEST_EQ_INT(client__peer_check_list(c, "carol", carol.list, carol.list_len, &dl), PARLEY_OK);
	TEST_EQ_INT(client__peer_check_list(c, "gwen", gwen.list, gwen.list_len, &dl), PARLEY_OK);

	/* the gateway's sms OPEN: the number is the signed one */
	l = sign_open(&gwen, gwen.id, PARLEY_CHANNEL_SMS, "+15551234567", ev);
	TEST_EQ_INT(client__thread_apply_events(c, "acme", 20, &p, &l, 1), PARLEY_OK);
	claim(c, 20, PARLEY_CHANNEL_SMS, "+15551234567", PARLEY_VERIFICATION_CHANNEL);
	TEST_EQ_INT(client__thread_info(c, 20, &info), PARLEY_OK);
	TEST_EQ_INT(info.channel, PARLEY_CHANNEL_SMS);
	TEST_EQ_STR(info.channel_user, "+15551234567");
	TEST_EQ_STR(info.gateway, "gwen");
	TEST_EQ_INT(info.gateway_verified, 1);
	TEST_EQ_INT(info.channel_disputed, 0);
	TEST_EQ_INT(info.verification, PARLEY_VERIFICATION_CHANNEL);
	/* the server names another number: not shown, the thread flagged, its level not believed; told
	 * right again, still flagged */
	claim(c, 20, PARLEY_CHANNEL_SMS, "+15550000000", PARLEY_VERIFICATION_AUTHENTICATED);
	TEST_EQ_INT(client__thread_info(c, 20, &info), PARLEY_OK);
	TEST_EQ_STR(info.channel_user, "+15551234567");
	TEST_EQ_INT(info.channel_disputed, 1);
	TEST_EQ_INT(info.verification, PARLEY_VERIFICATION_UNVERIFIED);
	claim(c, 20, PARLEY_CHANNEL_SMS, "+15551234567", PARLEY_VERIFICATION_CHANNEL);
	TEST_EQ_INT(client__thread_info(c, 20, &info), PARLEY_OK);
	TEST_EQ_INT(info.channel_disputed, 1);

	/* a webchat thread: CHANNEL is no level of an opaque session id, whatever the server says */
	l = sign_open(&gwen, gwen.id, PARLEY_CHANNEL_WEBCHAT, "sess-1", ev);
	TEST_EQ_INT(client__thread_apply_events(c, "acme", 21, &p, &l, 1), PARLEY_OK);
	claim(c, 21, PARLEY_CHANNEL_WEBCHAT, "sess-1", PARLEY_VERIFICATION_CHANNEL);
	TEST_EQ_INT(client__thread_info(c, 21, &info), PARLEY_OK);
	TEST_EQ_INT(info.channel_disputed, 0);
	TEST_EQ_INT(info.verification, PARLEY_VERIFICATION_UNVERIFIED);
	claim(c, 21, PARLEY_CHANNEL_WEBCHAT, "sess-1", PARLEY_VERIFICATION_AUTHENTICATED);
	TEST_EQ_INT(client__thread_info(c, 21, &info), PARLEY_OK);
	TEST_EQ_INT(info.verification, PARLEY_VERIFICATION_AUTHENTICATED); /* the control */

	/* a native customer's thread the server calls an sms one: native, flagged */
	l = sign(&carol, 0, 1, WIRE_THREADEV_OPEN, carol.id, ev);
	TEST_EQ_INT(client__thread_apply_events(c, "acme", 22, &p, &l, 1), PARLEY_OK);
	claim(c, 22, PARLEY_CHANNEL_SMS, "+15551234567", PARLEY_VERIFICATION_CHANNEL);
	TEST_EQ_INT(client__thread_info(c, 22, &info), PARLEY_OK);
	TEST_EQ_INT(info.channel, PARLEY_CHANNEL_NATIVE);
	TEST_EQ_STR(info.channel_user, "");
	TEST_EQ_INT(info.channel_disputed, 1);
	TEST_EQ_INT(info.verification, PARLEY_VERIFICATION_UNVERIFIED);

	/* a customer who is no gateway signing a channel OPEN: kept, but nothing vouches for it */
	l = sign_open(&carol, carol.id, PARLEY_CHANNEL_SMS, "+15551234567", ev);
	TEST_EQ_INT(client__thread_apply_events(c, "acme", 23, &p, &l, 1), PARLEY_OK);
	claim(c, 23, PARLEY_CHANNEL_SMS, "+15551234567", PARLEY_VERIFICATION_CHANNEL);
	TEST_EQ_INT(client__thread_info(c, 23, &info), PARLEY_OK);
	TEST_EQ_INT(info.gateway_verified, 0);
	TEST_EQ_STR(info.channel_user, "");
	TEST_EQ_INT(info.verification, PARLEY_VERIFICATION_UNVERIFIED);

	/* staff who may initiate opening a channel thread (for the gateway, or a customer): refused,
	 * nothing kept; the same OPEN without the channel is the control */
	l = sign_open(&agnes, carol.id, 0, "", ev);
	TEST_EQ_INT(client__thread_apply_events(c, "acme", 25, &p, &l, 1), PARLEY_OK);
	l = sign_open(&agnes, gwen.id, PARLEY_CHANNEL_SMS, "+15551234567", ev);
	TEST_EQ_INT(client__thread_apply_events(c, "acme", 24, &p, &l, 1), PARLEY_E_THREAD_EVENT_INVALID);
	TEST_CHECK(strstr(parley_client_errmsg(c), "gateway itself") != NULL);
	l = sign_open(&agnes, carol.id, PARLEY_CHANNEL_SMS, "+15551234567", ev);
	TEST_EQ_INT(client__thread_apply_events(c, "acme", 24, &p, &l, 1), PARLEY_E_THREAD_EVENT_INVALID);
	TEST_CHECK(strstr(parley_client_errmsg(c), "gateway itself") != NULL);
	TEST_EQ_INT(client__thread_info(c, 24, &info), PARLEY_E_NO_SUCH_THREAD);
	parley_client_free(c);
	test_remove_tree(dir);
}

static void test_helpers(void)
{
	char dir[] = "/tmp/parley-thr-XXXXXX";
	parley_client *c = client_for(dir);
	uint8_t id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], h[32];
	uint8_t in[13 + 8] = "parley-thread";
	char conv[HISTORY_CONV_MAX + 1];
	int allowed = 0;

	in[13 + 7] = 42;
	crypto_hash_sha256(h, in, sizeof(in));
	client__thread_distribution_id(42, id);
	TEST_EQ_MEM(id, h, sizeof(id));
	client__thread_conversation(42, conv);
	TEST_EQ_STR(conv, "#42");
	/* one kind-6 request per sender device and thread per 10 minutes */
	TEST_EQ_INT(client__thread_request_allowed(c, 5, "carol", 1, &allowed), PARLEY_OK);
	TEST_EQ_INT(allowed, 1);
	TEST_EQ_INT(client__thread_request_allowed(c, 5, "carol", 1, &allowed), PARLEY_OK);
	TEST_EQ_INT(allowed, 0);
	TEST_EQ_INT(client__thread_request_allowed(c, 5, "carol", 2, &allowed), PARLEY_OK);
	TEST_EQ_INT(allowed, 1);
	parley_client_free(c);
	test_remove_tree(dir);
}

int main(void)
{
	TEST_RUN(test_helpers);
	TEST_RUN(test_replay);
	TEST_RUN(test_channel);
	TEST_EXIT();
}
