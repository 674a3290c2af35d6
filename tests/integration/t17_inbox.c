/* t17: inbox lock (security item 1). A stranger must never be able to hold a victim's delivery window.
 *
 * The attack, against a real parleyd with real libparley clients: stranger S sends the victim V one
 * valid PreKeySignalMessage with identity X (so X is pinned for S), then 100 PreKeySignalMessages that
 * claim other identities (each a real X3DH from a fresh identity: V can only refuse them as untrusted).
 * A client that leaves those unacknowledged holds all 100 slots of the server's in-flight window, and
 * every reconnect starts again from the oldest: the legitimate user L's 5 messages never arrive.
 * Checked: all 5 arrive, and S's envelopes sit in V's quarantine, visible through the public API.
 *
 * Second attack: a forged PreKeySignalMessage (bad MAC) with identity X2 must not pin X2, so S2's next,
 * valid message with identity Z2 decrypts (nothing is saved before a decrypt succeeds).
 *
 * Third: after `trust`, the quarantined envelopes of the accepted key are decrypted and delivered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/error.h>
#include <parley/signal.h>
#include <parley/signal_store.h>
#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"
#include "harness.h"



#define N_FORGED 100
#define N_LEGIT 5

static srv s;
static char url[128];

#define MUST(cond) IT_MUST(&s, cond)

static parley_client *client(const char *name)
{
	return it_client_must(&s, url, name);
}

/* A raw-protocol sender: crafts its PreKeySignalMessages with a fresh in-memory Signal identity each. */
typedef struct stranger {
	int fd;
	uint64_t next_id;
	parley_prekey_bundle b; /* the victim's bundle (no one-time prekey, so it can be reused) */
} stranger;

static void stranger_open(stranger *st, const char *handle, const char *victim)
{
	uint8_t pk[32], sk[64];
	wire_frame f;
	memset(st, 0, sizeof *st);
	MUST(pw_register(s.port, handle, pk, sk, &st->fd) == PARLEY_OK);
	st->next_id = 100;
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetBundlesRequest g = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
	req.id = st->next_id++;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
	req.get_bundles = &g;
	g.handle = (char *)victim;
	g.device_id = 1;
	MUST(pw_call(st->fd, &req, &f) == PARLEY_OK);
	Parley__Wire__GetBundlesResponse *r = f.frame->response->get_bundles;
	MUST(r != NULL && r->n_bundles == 1);
	const Parley__Wire__PreKeyBundle *pb = r->bundles[0];
	MUST(pb->identity_key.len == 33 && pb->signed_prekey != NULL);
	st->b.registration_id = pb->registration_id;
	st->b.device_id = pb->device_id;
	memcpy(st->b.identity_key, pb->identity_key.data, 33);
	st->b.signed_prekey_id = pb->signed_prekey->id;
	memcpy(st->b.signed_prekey_pub, pb->signed_prekey->public_key.data, 33);
	memcpy(st->b.signed_prekey_sig, pb->signed_prekey->signature.data, 64);
	wire__frame_free(&f);
}

/* A PreKeySignalMessage from a fresh identity (pub copied to identity if non-NULL) carrying a real
 * Content with timestamp ts; mangle: flip the MAC's last byte. *out allocated. */
static size_t craft(stranger *st, const char *victim, uint64_t ts, int mangle, uint8_t identity[33], uint8_t **out)
{
	parley_keypair id;
	parley_signal_store store;
	parley_signal_ctx *ctx = NULL;
	parley_signal_address a = {victim, 1};
	uint32_t regid = 0;
	uint8_t *pt = NULL;
	size_t pt_len = 0, n = 0;
	int type = 0;
	client_content ct;

	MUST(parley_signal_keypair_generate(&id) == PARLEY_OK);
	MUST(parley_signal_registration_id_generate(&regid) == PARLEY_OK);
	MUST(parley_signal_mem_store_new(&store, &id, regid) == PARLEY_OK);
	MUST(parley_signal_ctx_new(&ctx, &store) == PARLEY_OK);
	MUST(parley_signal_process_bundle(ctx, &a, &st->b) == PARLEY_OK);
	memset(&ct, 0, sizeof ct);
	ct.kind = CONTENT_KIND_MESSAGE;
	ct.timestamp = ts;
	ct.body = (const uint8_t *)"hello from a stranger";
	ct.body_len = strlen((const char *)ct.body);
	MUST(client__content_encode(&ct, &pt, &pt_len) == PARLEY_OK);
	*out = malloc(PARLEY_SIGNAL_CIPHERTEXT_MAX(pt_len));
	MUST(*out != NULL);
	MUST(parley_signal_encrypt(ctx, &a, pt, pt_len, *out, PARLEY_SIGNAL_CIPHERTEXT_MAX(pt_len), &n, &type) ==
	     PARLEY_OK);
	MUST(type == PARLEY_SIGNAL_MSG_PREKEY);
	if (mangle)
		(*out)[n - 1] ^= 1;
	if (identity != NULL)
		memcpy(identity, id.pub, 33);
	parley__free(pt);
	parley_signal_ctx_free(ctx);
	parley_signal_mem_store_free(&store);
	parley_signal_keypair_wipe(&id);
	return n;
}

static void stranger_send(stranger *st, const char *victim, uint64_t ts, const uint8_t *content, size_t len)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *omp = &om;
	req.id = st->next_id++;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	sm.recipient = (char *)victim;
	sm.timestamp = ts;
	sm.n_messages = 1;
	sm.messages = &omp;
	om.device_id = 1;
	om.registration_id = st->b.registration_id;
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PREKEY_MESSAGE;
	om.content.data = (uint8_t *)content;
	om.content.len = len;
	MUST(pw_call(st->fd, &req, NULL) == PARLEY_OK);
}

static void stranger_craft_send(stranger *st, const char *victim, uint64_t ts, int mangle, uint8_t identity[33])
{
	uint8_t *m = NULL;
	size_t n = craft(st, victim, ts, mangle, identity, &m);
	stranger_send(st, victim, ts, m, n);
	free(m);
}

typedef struct inbox {
	int from_legit, from_stranger, changed, errors;
} inbox;

static void on_message(parley_client *c, const parley_message *m, void *user)
{
	inbox *in = user;
	if (strcmp(m->sender, "legit") == 0)
		in->from_legit++;
	else
		in->from_stranger++;
}

static void on_identity_changed(parley_client *c, const char *handle, uint32_t device, void *user)
{
	((inbox *)user)->changed++;
}

static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	((inbox *)user)->errors++;
}

/* V receives over one connection until `until` says done or 15 s pass; returns after the acks left. */
static void receive(parley_client *v, inbox *in, int want_legit, int want_stranger)
{
	parley_events ev;
	memset(&ev, 0, sizeof ev);
	ev.on_message = on_message;
	ev.on_identity_changed = on_identity_changed;
	ev.on_error = on_error;
	ev.user = in;
	parley_client_set_events(v, &ev);
	MUST(parley_connect(v) == PARLEY_OK);
	for (int i = 0; i < 300 && (in->from_legit < want_legit || in->from_stranger < want_stranger); i++)
		parley_client_run(v, 50);
	parley_client_run(v, 300); /* the acks go out */
	parley_client_set_events(v, NULL);
	parley_client_run(v, 100);
	parley_client_disconnect(v);
	parley_client_run(v, 100);
}

static parley_client *victim, *legit;

static void inbox_not_locked(void)
{
	stranger st;
	stranger_open(&st, "stranger", "victim");
	/* one valid message: V pins identity X for the stranger */
	stranger_craft_send(&st, "victim", 1, 0, NULL);
	for (int i = 0; i < N_FORGED; i++)
		stranger_craft_send(&st, "victim", 100 + (uint64_t)i, 0, NULL);
	close(st.fd);
	for (int i = 0; i < N_LEGIT; i++)
		MUST(parley_send(legit, "victim", "a real message") == PARLEY_OK);

	/* two connections: whatever one leaves unacknowledged is pushed first again on the next */
	inbox in = {0};
	receive(victim, &in, N_LEGIT, 1);
	receive(victim, &in, N_LEGIT, 1);
	IT_EQ(in.from_legit, N_LEGIT);
	/* issue 9: the stranger (raw protocol) has no signed device list, so none of its envelopes is even
	 * decrypted: all wait in the quarantine as DEVICE_NOT_LISTED, and claim no identity key */
	IT_EQ(in.from_stranger, 0);
	/* S's envelopes are visible in the quarantine, bounded per sender with the rest counted */
	static parley_quarantine_entry q[256];
	size_t n = 0;
	uint64_t dropped = 0;
	IT_EQ(parley_quarantine_list(victim, q, 256, &n, &dropped), PARLEY_OK);
	size_t mine = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(q[i].sender, "stranger") == 0) {
			mine++;
			IT_EQ(q[i].sender_device, 1);
			IT_EQ(q[i].reason, PARLEY_E_DEVICE_NOT_LISTED);
			IT_CHECK(q[i].received_ms > 0);
		}
	IT_EQ(mine, PARLEY_QUARANTINE_PER_SENDER_DEFAULT);
	IT_EQ(dropped, N_FORGED + 1 - PARLEY_QUARANTINE_PER_SENDER_DEFAULT);
	/* refused before decryption: no key of the stranger is pending */
	static parley_pending_key pk[256];
	IT_EQ(parley_pending_keys(victim, "stranger", pk, 256, &n), PARLEY_OK);
	IT_EQ(n, 0);
}

/* Runs `parley --home <state dir of name> args` and returns how many output lines contain `needle`;
 * *status receives the exit status. */
static int cli_lines(const char *name, const char *args, const char *needle, int *status)
{
	char cmd[1024], line[512];
	const char *parley = getenv("PARLEY");
	int n = 0;
	MUST(parley != NULL);
	snprintf(cmd, sizeof cmd, "'%s' --home '%s/%s' --server '%s' %s 2>&1", parley, s.dir, name, url, args);
	FILE *p = popen(cmd, "r");
	MUST(p != NULL);
	while (fgets(line, sizeof line, p) != NULL)
		n += strstr(line, needle) != NULL;
	int st = pclose(p);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return n;
}

/* `parley quarantine` shows the same: sender, device, reason per line, and the dropped count. */
static void quarantine_cli(void)
{
	int st = -1;
	IT_EQ(cli_lines("victim", "quarantine",
			"stranger device 1: device not in its account's signed device list (DEVICE_NOT_LISTED)", &st),
	      PARLEY_QUARANTINE_PER_SENDER_DEFAULT);
	IT_EQ(st, 0);
	IT_EQ(cli_lines("victim", "quarantine", "51 dropped", &st), 1);
	/* issue 9: nothing of the stranger was decrypted, so no key of it is pending: trust has nothing
	 * to accept (an account key is what trust accepts now, and the stranger has none in a list) */
	IT_EQ(cli_lines("victim", "trust stranger", "no changed identity key of stranger to accept", &st), 1);
	IT_EQ(st, 0);
	IT_EQ(cli_lines("victim", "trust --list stranger", "no changed identity key of stranger is pending", &st), 1);
	IT_EQ(st, 0);
}

/* The total bound: a client with small bounds keeps at most quarantine_max entries, the oldest go. */
static void quarantine_bounds(void)
{
	char dir[400];
	parley_client_options o;
	parley_client *v2 = NULL;
	stranger a, b;
	inbox in = {0};
	static parley_quarantine_entry q[64];
	size_t n = 0, from_a = 0, from_b = 0;
	uint64_t dropped = 0;

	snprintf(dir, sizeof dir, "%s/victim2", s.dir);
	parley_client_options_init(&o);
	o.state_dir = dir;
	o.server_url = url;
	o.quarantine_per_sender = 5;
	o.quarantine_max = 8;
	MUST(parley_client_new(&o, &v2) == PARLEY_OK);
	MUST(parley_register(v2, "victim2", NULL) == PARLEY_OK);
	stranger_open(&a, "stranger4", "victim2");
	stranger_open(&b, "stranger5", "victim2");
	for (int i = 0; i < 10; i++)
		stranger_craft_send(&a, "victim2", 10 + (uint64_t)i, 1, NULL); /* bad MACs */
	for (int i = 0; i < 10; i++)
		stranger_craft_send(&b, "victim2", 10 + (uint64_t)i, 1, NULL);
	close(a.fd);
	close(b.fd);
	receive(v2, &in, 0, 0);
	/* issue 9: reported once each when the senders' lists were fetched (they have none); the twelve
	 * pushed out of the bounded quarantine before that are counted in `dropped` instead */
	IT_EQ(in.errors, 8);
	IT_EQ(parley_quarantine_list(v2, q, 64, &n, &dropped), PARLEY_OK);
	IT_EQ(n, 8);
	for (size_t i = 0; i < n; i++) {
		from_a += strcmp(q[i].sender, "stranger4") == 0;
		from_b += strcmp(q[i].sender, "stranger5") == 0;
		IT_CHECK(q[i].reason != PARLEY_E_UNTRUSTED_IDENTITY && q[i].reason != PARLEY_OK);
	}
	IT_EQ(from_a, 3);
	IT_EQ(from_b, 5);
	IT_EQ(dropped, 12);
	/* the newest are kept: stranger5's last five */
	IT_EQ(q[n - 1].timestamp_ms, 19);
	parley_client_free(v2);
}

static void nothing_saved_before_decrypt(void)
{
	stranger st;
	inbox in = {0};
	stranger_open(&st, "stranger2", "victim");
	stranger_craft_send(&st, "victim", 1, 1, NULL); /* identity X2, bad MAC */
	stranger_craft_send(&st, "victim", 2, 0, NULL); /* identity Z2, valid */
	close(st.fd);
	receive(victim, &in, 0, 0);
	/* issue 9: neither is decrypted (no signed list names stranger2's device), so nothing of either
	 * identity is saved or pinned */
	IT_EQ(in.from_stranger, 0);
	IT_EQ(in.changed, 0);
	parley_pending_key pk[4];
	size_t n = 9;
	IT_EQ(parley_pending_keys(victim, "stranger2", pk, 4, &n), PARLEY_OK);
	IT_EQ(n, 0);
}

/* Before issue 9 a device's changed identity key waited for `trust`, which released its quarantined
 * messages. Now a device outside its account's signed list is refused before decryption whatever key it
 * claims: trust finds nothing to accept and the messages stay quarantined. (The account key's change is
 * what trust accepts now: tests/integration/t22.) */
static void trust_releases_quarantine(void)
{
	stranger st;
	inbox in = {0};
	uint8_t id_a[33], id_b[33];
	parley_pending_key pk[8];
	size_t n = 0, accepted = 9;

	stranger_open(&st, "stranger3", "victim");
	stranger_craft_send(&st, "victim", 1, 0, NULL);
	stranger_craft_send(&st, "victim", 2, 0, id_a);
	stranger_craft_send(&st, "victim", 3, 0, id_b);
	close(st.fd);
	receive(victim, &in, 0, 0);
	IT_EQ(in.from_stranger, 0);
	IT_EQ(parley_pending_keys(victim, "stranger3", pk, 8, &n), PARLEY_OK);
	IT_EQ(n, 0);
	IT_EQ(parley_trust(victim, "stranger3", &accepted), PARLEY_OK);
	IT_EQ(accepted, 0);
	receive(victim, &in, 0, 0);
	IT_EQ(in.from_stranger, 0);
	static parley_quarantine_entry q[256];
	uint64_t dropped = 0;
	IT_EQ(parley_quarantine_list(victim, q, 256, &n, &dropped), PARLEY_OK);
	size_t left = 0;
	for (size_t i = 0; i < n; i++)
		left += strcmp(q[i].sender, "stranger3") == 0 && q[i].reason == PARLEY_E_DEVICE_NOT_LISTED;
	IT_EQ(left, 3);
}

int main(void)
{
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	victim = client("victim");
	legit = client("legit");
	MUST(parley_register(victim, "victim", NULL) == PARLEY_OK);
	MUST(parley_register(legit, "legit", NULL) == PARLEY_OK);
	IT_RUN(inbox_not_locked);
	IT_RUN(quarantine_cli);
	IT_RUN(quarantine_bounds);
	IT_RUN(nothing_saved_before_decrypt);
	IT_RUN(trust_releases_quarantine);
	parley_client_free(victim);
	parley_client_free(legit);
	IT_EQ(srv_stop(&s), 0); /* a clean exit (and, in a sanitizer build, no report) */
	srv_cleanup(&s);
	return it_failures == 0 ? 0 : 1;
}
