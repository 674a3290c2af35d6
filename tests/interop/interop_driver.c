/* Interop tests: parley's C Signal implementation against Signal's own libsignal-client 0.24.0.
 *
 * usage: interop_driver <node> <peer.js> <scenario>|all
 *
 * The Node peer only executes libsignal calls; every scenario, message order and expected result is
 * decided here. The C side keeps its state in parley's SQLite store (one file per C user in a
 * temporary directory), so these tests also exercise that store under the real session layer.
 * Output is TAP-like; the exit status is the number of failed checks (capped at 100).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <parley/error.h>
#include <parley/fingerprint.h>
#include <parley/signal.h>
#include <parley/signal_group.h>
#include <parley/signal_sqlite.h>

#include "interop_peer.h"

static int failures, checks;
static peer P;
static char tmpdir[128];

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		checks++;                                                                          \
		if (!(cond)) {                                                                     \
			failures++;                                                                \
			fprintf(stderr, "not ok - %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

/* ---------------------------------------------------------------- C users */

typedef struct cuser {
	const char *name;
	parley_signal_address addr;
	parley_signal_sqlite *db;
	parley_signal_store store;
	parley_signal_ctx *ctx;
	parley_keypair identity;
	uint32_t reg_id;
} cuser;

static int cuser_new(cuser *u, const char *name)
{
	char path[256];
	memset(u, 0, sizeof *u);
	u->name = name;
	u->addr.name = name;
	u->addr.device_id = 1;
	snprintf(path, sizeof path, "%s/%s.db", tmpdir, name);
	unlink(path);
	if (parley_signal_sqlite_open(&u->db, path) != PARLEY_OK)
		return -1;
	parley_signal_sqlite_store(u->db, &u->store);
	if (parley_signal_keypair_generate(&u->identity) != PARLEY_OK ||
		parley_signal_registration_id_generate(&u->reg_id) != PARLEY_OK ||
		parley_signal_sqlite_set_identity(u->db, &u->identity, u->reg_id) != PARLEY_OK ||
		parley_signal_ctx_new(&u->ctx, &u->store) != PARLEY_OK)
		return -1;
	return 0;
}

static void cuser_free(cuser *u)
{
	parley_signal_ctx_free(u->ctx);
	parley_signal_sqlite_close(u->db);
	parley_signal_keypair_wipe(&u->identity);
	memset(u, 0, sizeof *u);
}

/* Publish a bundle for C user u (one-time prekey pk_id unless 0) in the peer's argument format. */
static int cuser_bundle_args(cuser *u, uint32_t pk_id, uint32_t spk_id, char *out, size_t cap)
{
	parley_prekey pk;
	parley_signed_prekey spk;
	char pkid[16] = "-";
	const char *pkpub = "-";

	if (pk_id != 0) {
		if (parley_signal_prekey_generate(&pk, pk_id) != PARLEY_OK || u->store.store_prekey(u->store.user, &pk))
			return -1;
		snprintf(pkid, sizeof pkid, "%u", pk_id);
		pkpub = b64(pk.key.pub, sizeof pk.key.pub);
	}
	if (parley_signal_signed_prekey_generate(&spk, &u->identity, spk_id, 1700000000000ull) != PARLEY_OK ||
		u->store.store_signed_prekey(u->store.user, &spk) != PARLEY_OK)
		return -1;
	snprintf(out, cap, "%u\t1\t%s\t%s\t%u\t%s\t%s\t%s", u->reg_id, pkid, pkpub, spk_id,
		b64(spk.key.pub, sizeof spk.key.pub), b64(spk.signature, sizeof spk.signature),
		b64(u->identity.pub, sizeof u->identity.pub));
	return 0;
}

/* Parse the peer's bundle reply (fields 1..8) into a parley bundle. */
static int bundle_from_peer(parley_prekey_bundle *b)
{
	memset(b, 0, sizeof *b);
	if (P.nfields < 9)
		return -1;
	b->registration_id = (uint32_t)strtoul(P.field[1], NULL, 10);
	b->device_id = (uint32_t)strtoul(P.field[2], NULL, 10);
	if (strcmp(P.field[3], "-") != 0) {
		b->has_prekey = 1;
		b->prekey_id = (uint32_t)strtoul(P.field[3], NULL, 10);
		if (unb64(b->prekey_pub, sizeof b->prekey_pub, P.field[4]) != 33)
			return -1;
	}
	b->signed_prekey_id = (uint32_t)strtoul(P.field[5], NULL, 10);
	if (unb64(b->signed_prekey_pub, 33, P.field[6]) != 33 || unb64(b->signed_prekey_sig, 64, P.field[7]) != 64 ||
		unb64(b->identity_key, 33, P.field[8]) != 33)
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- 1:1 message helpers */

typedef struct wmsg {
	int type;
	uint8_t b[4096];
	size_t len;
} wmsg;

static int c_encrypt(cuser *u, const char *to, const char *text, wmsg *m)
{
	parley_signal_address a = {to, 1};
	return parley_signal_encrypt(u->ctx, &a, (const uint8_t *)text, strlen(text), m->b, sizeof m->b, &m->len,
		&m->type);
}

static int c_decrypt(cuser *u, const char *from, const wmsg *m, char *out, size_t cap)
{
	parley_signal_address a = {from, 1};
	size_t n = 0;
	int rc = m->type == PARLEY_SIGNAL_MSG_PREKEY
			 ? parley_signal_decrypt_prekey(u->ctx, &a, m->b, m->len, (uint8_t *)out, cap - 1, &n)
			 : parley_signal_decrypt_signal(u->ctx, &a, m->b, m->len, (uint8_t *)out, cap - 1, &n);
	out[rc == PARLEY_OK ? n : 0] = '\0';
	return rc;
}

/* Node user `from` encrypts text for `to`. */
static int n_encrypt(const char *from, const char *to, const char *text, wmsg *m)
{
	if (peer_call(&P, "encrypt\t%s\t%s\t%s", from, to, b64((const uint8_t *)text, strlen(text))) != 1)
		return -1;
	m->type = strcmp(P.field[1], "3") == 0 ? 3 : 2; /* field is "2" or "3" */
	long n = unb64(m->b, sizeof m->b, P.field[2]);
	if (n < 0)
		return -1;
	m->len = (size_t)n;
	return 0;
}

/* Node user `to` decrypts; returns 1 and the text, or 0 with the error name in err. */
static int n_decrypt(const char *to, const char *from, const wmsg *m, char *out, size_t cap, char *err,
	size_t errcap)
{
	int ok = peer_call(&P, "decrypt\t%s\t%s\t%d\t%s", to, from, m->type, b64(m->b, m->len));
	out[0] = err[0] = '\0';
	if (ok == 1) {
		long n = unb64((uint8_t *)out, cap - 1, P.field[1]);
		out[n < 0 ? 0 : n] = '\0';
		return 1;
	}
	snprintf(err, errcap, "%s: %s", P.nfields > 1 ? P.field[1] : "?", P.nfields > 2 ? P.field[2] : "?");
	return 0;
}

/* ---------------------------------------------------------------- session setup scenarios */

static cuser alice;    /* C */
static int have_alice; /* session alice(C) <-> bob(node) established */

/* C initiates to a libsignal bundle; the session then works both ways. */
static void scenario_c_initiates(void)
{
	parley_prekey_bundle b;
	parley_signal_address bob = {"bob", 1};
	wmsg m;
	char out[256], err[256];
	int before = failures;

	CHECK(cuser_new(&alice, "alice") == 0, "C user");
	CHECK(peer_call(&P, "user\tbob\t%u", 9u) == 1, "node user");
	CHECK(peer_call(&P, "bundle\tbob\t11\t22") == 1, "node bundle");
	CHECK(bundle_from_peer(&b) == 0, "parse bundle");
	int rc = parley_signal_process_bundle(alice.ctx, &bob, &b);
	CHECK(rc == PARLEY_OK, "process_bundle: %s", parley_errname(rc));
	rc = c_encrypt(&alice, "bob", "hello from C", &m);
	CHECK(rc == PARLEY_OK && m.type == PARLEY_SIGNAL_MSG_PREKEY, "encrypt: %s type %d", parley_errname(rc), m.type);
	CHECK(n_decrypt("bob", "alice", &m, out, sizeof out, err, sizeof err) == 1, "libsignal decrypt: %s", err);
	CHECK(strcmp(out, "hello from C") == 0, "plaintext '%s'", out);
	CHECK(n_encrypt("bob", "alice", "hello from libsignal", &m) == 0, "node encrypt");
	CHECK(m.type == PARLEY_SIGNAL_MSG_WHISPER, "reply type %d", m.type);
	rc = c_decrypt(&alice, "bob", &m, out, sizeof out);
	CHECK(rc == PARLEY_OK, "C decrypt reply: %s", parley_errname(rc));
	CHECK(strcmp(out, "hello from libsignal") == 0, "plaintext '%s'", out);
	/* after the reply, C sends plain SignalMessages */
	rc = c_encrypt(&alice, "bob", "second", &m);
	CHECK(rc == PARLEY_OK && m.type == PARLEY_SIGNAL_MSG_WHISPER, "second type %d", m.type);
	CHECK(n_decrypt("bob", "alice", &m, out, sizeof out, err, sizeof err) == 1, "decrypt second: %s", err);
	have_alice = failures == before;
}

/* libsignal initiates to a C bundle (with and without a one-time prekey). */
static void scenario_node_initiates(void)
{
	static const char *names[2] = {"carol", "dave"};
	for (int with_pk = 1; with_pk >= 0; with_pk--) {
		cuser c;
		char args[1024], out[256], err[256];
		wmsg m;
		const char *nn = names[with_pk];
		uint32_t left = 99;

		CHECK(cuser_new(&c, with_pk ? "carol-c" : "dave-c") == 0, "C user");
		CHECK(peer_call(&P, "user\t%s\t%u", nn, 77u) == 1, "node user");
		CHECK(cuser_bundle_args(&c, with_pk ? 31 : 0, 41, args, sizeof args) == 0, "C bundle");
		CHECK(peer_call(&P, "process_bundle\t%s\t%s\t%s", nn, c.name, args) == 1, "libsignal process_bundle: %s",
			P.nfields > 2 ? P.field[2] : "?");
		CHECK(n_encrypt(nn, c.name, "hi C, this is libsignal", &m) == 0 && m.type == 3, "node prekey msg");
		int rc = c_decrypt(&c, nn, &m, out, sizeof out);
		CHECK(rc == PARLEY_OK, "C decrypt_prekey (one-time prekey %d): %s", with_pk, parley_errname(rc));
		CHECK(strcmp(out, "hi C, this is libsignal") == 0, "plaintext '%s'", out);
		CHECK(parley_signal_sqlite_prekey_count(c.db, &left) == PARLEY_OK && left == 0, "prekey consumed");
		/* a second PreKeySignalMessage of the same session (Bob hasn't answered yet) reuses it */
		CHECK(n_encrypt(nn, c.name, "again", &m) == 0 && m.type == 3, "2nd prekey msg");
		rc = c_decrypt(&c, nn, &m, out, sizeof out);
		CHECK(rc == PARLEY_OK && strcmp(out, "again") == 0, "2nd prekey msg: %s", parley_errname(rc));
		rc = c_encrypt(&c, nn, "hi libsignal", &m);
		CHECK(rc == PARLEY_OK && m.type == PARLEY_SIGNAL_MSG_WHISPER, "C reply: %s", parley_errname(rc));
		CHECK(n_decrypt(nn, c.name, &m, out, sizeof out, err, sizeof err) == 1, "libsignal decrypt: %s", err);
		CHECK(strcmp(out, "hi libsignal") == 0, "plaintext '%s'", out);
		CHECK(n_encrypt(nn, c.name, "now whisper", &m) == 0 && m.type == 2, "node whisper after reply");
		rc = c_decrypt(&c, nn, &m, out, sizeof out);
		CHECK(rc == PARLEY_OK && strcmp(out, "now whisper") == 0, "C decrypt whisper: %s", parley_errname(rc));
		cuser_free(&c);
	}
}

static void need_session(void)
{
	if (!have_alice)
		scenario_c_initiates();
}

/* 1,000 messages; the sending side switches in bursts of 1..4, so nearly every switch is a DH
 * ratchet step on both sides. */
static void scenario_thousand(void)
{
	char text[64], out[256], err[256];
	wmsg m;
	int from_c = 1, burst = 0, bad = 0, steps = 0;

	need_session();
	for (int i = 0; i < 1000 && bad < 5; i++) {
		if (burst == 0) {
			from_c = !from_c;
			burst = 1 + (int)randombytes_uniform(4);
			steps++;
		}
		burst--;
		snprintf(text, sizeof text, "message %d from %s", i, from_c ? "C" : "libsignal");
		if (from_c) {
			int rc = c_encrypt(&alice, "bob", text, &m);
			int ok = rc == PARLEY_OK && n_decrypt("bob", "alice", &m, out, sizeof out, err, sizeof err) == 1 &&
				 strcmp(out, text) == 0;
			CHECK(ok, "msg %d C->libsignal: %s %s", i, parley_errname(rc), err);
			bad += !ok;
		} else {
			int rc = n_encrypt("bob", "alice", text, &m) == 0 ? c_decrypt(&alice, "bob", &m, out, sizeof out) : -1;
			int ok = rc == PARLEY_OK && strcmp(out, text) == 0;
			CHECK(ok, "msg %d libsignal->C: %s", i, parley_errname(rc));
			bad += !ok;
		}
	}
	printf("# 1000 messages, %d direction changes (ratchet steps)\n", steps);
}

static void shuffle(int *v, int n)
{
	for (int i = n - 1; i > 0; i--) {
		int j = (int)randombytes_uniform((uint32_t)i + 1), t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

/* Out-of-order delivery and drops, both directions, across a ratchet step (old chain messages
 * delivered after the new chain's). */
static void scenario_out_of_order(void)
{
	enum { N = 24 };
	static wmsg ms[2 * N];
	int order[2 * N];
	char text[64], out[256], err[256];

	need_session();
	/* libsignal -> C: chain 1 (N messages), C answers (ratchet), chain 2 (N messages) */
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "ooo %d", i);
		CHECK(n_encrypt("bob", "alice", text, &ms[i]) == 0, "enc");
	}
	wmsg r;
	CHECK(c_encrypt(&alice, "bob", "ratchet", &r) == PARLEY_OK, "C enc");
	/* libsignal only steps its ratchet once it has read C's new chain */
	CHECK(n_decrypt("bob", "alice", &r, out, sizeof out, err, sizeof err) == 1, "node dec: %s", err);
	for (int i = N; i < 2 * N; i++) {
		snprintf(text, sizeof text, "ooo %d", i);
		CHECK(n_encrypt("bob", "alice", text, &ms[i]) == 0, "enc");
	}
	for (int i = 0; i < 2 * N; i++)
		order[i] = i;
	shuffle(order, 2 * N);
	for (int k = 0; k < 2 * N; k++) {
		int i = order[k];
		if (i % 5 == 3)
			continue; /* dropped: never delivered */
		snprintf(text, sizeof text, "ooo %d", i);
		int rc = c_decrypt(&alice, "bob", &ms[i], out, sizeof out);
		CHECK(rc == PARLEY_OK && strcmp(out, text) == 0, "libsignal->C #%d (pos %d): %s", i, k, parley_errname(rc));
	}
	/* C -> libsignal, same pattern */
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "ooo %d", i);
		CHECK(c_encrypt(&alice, "bob", text, &ms[i]) == PARLEY_OK, "C enc");
	}
	CHECK(n_encrypt("bob", "alice", "ratchet", &r) == 0, "node enc");
	CHECK(c_decrypt(&alice, "bob", &r, out, sizeof out) == PARLEY_OK, "C dec");
	for (int i = N; i < 2 * N; i++) {
		snprintf(text, sizeof text, "ooo %d", i);
		CHECK(c_encrypt(&alice, "bob", text, &ms[i]) == PARLEY_OK, "C enc");
	}
	shuffle(order, 2 * N);
	for (int k = 0; k < 2 * N; k++) {
		int i = order[k];
		if (i % 5 == 1)
			continue;
		snprintf(text, sizeof text, "ooo %d", i);
		int ok = n_decrypt("bob", "alice", &ms[i], out, sizeof out, err, sizeof err);
		CHECK(ok == 1 && strcmp(out, text) == 0, "C->libsignal #%d (pos %d): %s", i, k, err);
	}
}

/* Replays are refused on both sides, with the duplicate-specific error. */
static void scenario_duplicates(void)
{
	wmsg m;
	char out[256], err[256];

	need_session();
	CHECK(n_encrypt("bob", "alice", "once", &m) == 0, "enc");
	CHECK(c_decrypt(&alice, "bob", &m, out, sizeof out) == PARLEY_OK, "first delivery");
	int rc = c_decrypt(&alice, "bob", &m, out, sizeof out);
	CHECK(rc == PARLEY_E_DUPLICATE_MESSAGE, "C on replay: %s", parley_errname(rc));
	CHECK(c_encrypt(&alice, "bob", "once", &m) == PARLEY_OK, "C enc");
	CHECK(n_decrypt("bob", "alice", &m, out, sizeof out, err, sizeof err) == 1, "first: %s", err);
	CHECK(n_decrypt("bob", "alice", &m, out, sizeof out, err, sizeof err) == 0 && strstr(err, "DuplicatedMessage"),
		"libsignal on replay: '%s'", err);
}

/* A flipped MAC bit is refused on both sides and does not disturb the session. */
static void scenario_tampered_mac(void)
{
	wmsg m, bad;
	char out[256], err[256];

	need_session();
	CHECK(n_encrypt("bob", "alice", "integrity", &m) == 0, "enc");
	bad = m;
	bad.b[bad.len - 1] ^= 0x01;
	int rc = c_decrypt(&alice, "bob", &bad, out, sizeof out);
	CHECK(rc == PARLEY_E_BAD_MAC, "C on tampered MAC: %s", parley_errname(rc));
	bad = m;
	bad.b[bad.len - 12] ^= 0x80; /* ciphertext byte: the MAC catches it too */
	rc = c_decrypt(&alice, "bob", &bad, out, sizeof out);
	CHECK(rc == PARLEY_E_BAD_MAC, "C on tampered body: %s", parley_errname(rc));
	rc = c_decrypt(&alice, "bob", &m, out, sizeof out);
	CHECK(rc == PARLEY_OK && strcmp(out, "integrity") == 0, "genuine after tamper: %s", parley_errname(rc));
	CHECK(c_encrypt(&alice, "bob", "integrity", &m) == PARLEY_OK, "C enc");
	bad = m;
	bad.b[bad.len - 1] ^= 0x01;
	CHECK(n_decrypt("bob", "alice", &bad, out, sizeof out, err, sizeof err) == 0, "libsignal accepted a bad MAC");
	CHECK(n_decrypt("bob", "alice", &m, out, sizeof out, err, sizeof err) == 1, "genuine: %s", err);
}

/* A libsignal peer that comes back with a new identity key is refused until the C side accepts it. */
static void scenario_identity_change(void)
{
	cuser c;
	parley_prekey_bundle b;
	parley_signal_address fr = {"frank", 1};
	wmsg m;
	char out[256], err[256];

	CHECK(cuser_new(&c, "ic-c") == 0, "C user");
	CHECK(peer_call(&P, "user\tfrank\t5") == 1 && peer_call(&P, "bundle\tfrank\t1\t1") == 1, "node frank");
	CHECK(bundle_from_peer(&b) == 0, "bundle");
	CHECK(parley_signal_process_bundle(c.ctx, &fr, &b) == PARLEY_OK, "first bundle");
	CHECK(c_encrypt(&c, "frank", "before", &m) == PARLEY_OK, "enc");
	CHECK(n_decrypt("frank", c.name, &m, out, sizeof out, err, sizeof err) == 1, "dec: %s", err);
	/* frank reinstalls: same address, new identity key */
	CHECK(peer_call(&P, "user\tfrank\t6") == 1 && peer_call(&P, "bundle\tfrank\t2\t2") == 1, "new frank");
	CHECK(bundle_from_peer(&b) == 0, "bundle");
	int rc = parley_signal_process_bundle(c.ctx, &fr, &b);
	CHECK(rc == PARLEY_E_UNTRUSTED_IDENTITY, "changed identity: %s", parley_errname(rc));
	/* the new frank's own messages are refused too */
	char args[1024];
	CHECK(cuser_bundle_args(&c, 7, 8, args, sizeof args) == 0, "C bundle");
	CHECK(peer_call(&P, "process_bundle\tfrank\t%s\t%s", c.name, args) == 1, "frank processes C bundle");
	CHECK(n_encrypt("frank", c.name, "new me", &m) == 0, "enc");
	rc = c_decrypt(&c, "frank", &m, out, sizeof out);
	CHECK(rc == PARLEY_E_UNTRUSTED_IDENTITY, "prekey msg from changed identity: %s", parley_errname(rc));
	/* after the user accepts the new key, the same message decrypts */
	CHECK(parley_signal_trust_identity(c.ctx, &fr, b.identity_key) == PARLEY_OK, "trust");
	rc = c_decrypt(&c, "frank", &m, out, sizeof out);
	CHECK(rc == PARLEY_OK && strcmp(out, "new me") == 0, "after trust: %s", parley_errname(rc));
	cuser_free(&c);
}

/* ---------------------------------------------------------------- groups */

static const uint8_t DIST[16] = {0x8f, 0x6b, 0x2a, 0x3c, 0x11, 0x11, 0x42, 0x22,
				 0x83, 0x33, 0x94, 0x44, 0x55, 0x55, 0x66, 0x66};
static const char *DIST_S = "8f6b2a3c-1111-4222-8333-944455556666";

/* C sender, two libsignal receivers; out-of-order delivery to one of them. */
static void scenario_group_c_sender(void)
{
	cuser g;
	uint8_t skdm[PARLEY_GROUP_DISTRIBUTION_MAX];
	size_t n;
	enum { N = 30 };
	static wmsg ms[N];
	int order[N];
	char text[64], out[256];

	CHECK(cuser_new(&g, "gsender-c") == 0, "C user");
	CHECK(peer_call(&P, "user\tgr1\t1") == 1 && peer_call(&P, "user\tgr2\t2") == 1, "node users");
	int rc = parley_group_create_distribution(&g.store, &g.addr, DIST, skdm, sizeof skdm, &n);
	CHECK(rc == PARLEY_OK, "create SKDM: %s", parley_errname(rc));
	for (int r = 1; r <= 2; r++)
		CHECK(peer_call(&P, "skdm_process\tgr%d\t%s\t%s", r, g.name, b64(skdm, n)) == 1, "libsignal SKDM: %s",
			P.nfields > 2 ? P.field[2] : "?");
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "group %d from C", i);
		rc = parley_group_encrypt(&g.store, &g.addr, DIST, (const uint8_t *)text, strlen(text), ms[i].b,
			sizeof ms[i].b, &ms[i].len);
		CHECK(rc == PARLEY_OK, "group encrypt: %s", parley_errname(rc));
		order[i] = i;
	}
	shuffle(order, N);
	for (int k = 0; k < N; k++) {
		for (int r = 1; r <= 2; r++) {
			int i = r == 1 ? k : order[k];
			snprintf(text, sizeof text, "group %d from C", i);
			int ok = peer_call(&P, "group_decrypt\tgr%d\t%s\t%s", r, g.name, b64(ms[i].b, ms[i].len));
			long ol = ok == 1 ? unb64((uint8_t *)out, sizeof out - 1, P.field[1]) : 0;
			out[ol < 0 ? 0 : ol] = '\0';
			CHECK(ok == 1 && strcmp(out, text) == 0, "gr%d #%d: %s", r, i, ok == 1 ? out : P.field[2]);
		}
	}
	CHECK(peer_call(&P, "group_decrypt\tgr1\t%s\t%s", g.name, b64(ms[3].b, ms[3].len)) == 0 &&
		      strstr(P.field[1], "DuplicatedMessage"),
		"libsignal replay: %s", P.field[1]);
	cuser_free(&g);
}

/* libsignal sender, C receiver: order, replay and forgery handling. */
static void scenario_group_node_sender(void)
{
	cuser r;
	uint8_t buf[1024], out[256];
	enum { N = 30 };
	static wmsg ms[N];
	int order[N];
	char text[64];
	size_t ol;
	long n;

	CHECK(cuser_new(&r, "greceiver-c") == 0, "C user");
	CHECK(peer_call(&P, "user\tgs\t3") == 1, "node user");
	CHECK(peer_call(&P, "skdm_create\tgs\t%s", DIST_S) == 1, "libsignal SKDM");
	n = unb64(buf, sizeof buf, P.field[1]);
	uint8_t dist[16];
	parley_signal_address gs = {"gs", 1};
	int rc = parley_group_process_distribution(&r.store, &gs, buf, (size_t)n, dist);
	CHECK(rc == PARLEY_OK && memcmp(dist, DIST, 16) == 0, "C processes libsignal SKDM: %s", parley_errname(rc));
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "group %d from libsignal", i);
		CHECK(peer_call(&P, "group_encrypt\tgs\t%s\t%s", DIST_S, b64((const uint8_t *)text, strlen(text))) == 1,
			"libsignal group encrypt");
		n = unb64(ms[i].b, sizeof ms[i].b, P.field[1]);
		ms[i].len = n < 0 ? 0 : (size_t)n;
		order[i] = i;
	}
	shuffle(order, N);
	wmsg bad = ms[order[0]];
	bad.b[bad.len - 2] ^= 0x10; /* inside the signature */
	rc = parley_group_decrypt(&r.store, &gs, bad.b, bad.len, out, sizeof out, &ol);
	CHECK(rc == PARLEY_E_BAD_SIGNATURE, "C on forged group message: %s", parley_errname(rc));
	for (int k = 0; k < N; k++) {
		int i = order[k];
		snprintf(text, sizeof text, "group %d from libsignal", i);
		rc = parley_group_decrypt(&r.store, &gs, ms[i].b, ms[i].len, out, sizeof out, &ol);
		CHECK(rc == PARLEY_OK && ol == strlen(text) && memcmp(out, text, ol) == 0, "C group decrypt #%d: %s", i,
			parley_errname(rc));
	}
	rc = parley_group_decrypt(&r.store, &gs, ms[5].b, ms[5].len, out, sizeof out, &ol);
	CHECK(rc == PARLEY_E_DUPLICATE_MESSAGE, "C group replay: %s", parley_errname(rc));
	cuser_free(&r);
}

/* ---------------------------------------------------------------- fingerprints */

static void scenario_fingerprints(void)
{
	parley_keypair a, b;
	parley_fingerprint *fa = NULL;
	const char *aid = "+14152222222", *bid = "c0ffee00-1234-4abc-9def-0123456789ab";
	size_t slen;

	CHECK(parley_signal_keypair_generate(&a) == PARLEY_OK && parley_signal_keypair_generate(&b) == PARLEY_OK, "keys");
	for (uint32_t version = 1; version <= 2; version++) {
		int rc = parley_fingerprint_new(&fa, version, PARLEY_FINGERPRINT_ITERATIONS, (const uint8_t *)aid,
			strlen(aid), a.pub, 33, (const uint8_t *)bid, strlen(bid), b.pub, 33);
		CHECK(rc == PARLEY_OK, "C fingerprint: %s", parley_errname(rc));
		/* libsignal computes Bob's view: local = b, remote = a */
		CHECK(peer_call(&P, "fingerprint\t%d\t%u\t%s\t%s\t%s\t%s", PARLEY_FINGERPRINT_ITERATIONS, version,
			      b64((const uint8_t *)bid, strlen(bid)), b64(b.pub, 33), b64((const uint8_t *)aid, strlen(aid)),
			      b64(a.pub, 33)) == 1,
			"libsignal fingerprint");
		CHECK(strcmp(P.field[1], parley_fingerprint_display(fa)) == 0, "display C %s vs libsignal %s",
			parley_fingerprint_display(fa), P.field[1]);
		uint8_t theirs[128];
		long tl = unb64(theirs, sizeof theirs, P.field[2]);
		int match = 0;
		rc = parley_fingerprint_compare(fa, theirs, (size_t)tl, &match);
		CHECK(rc == PARLEY_OK && match == 1, "C compares libsignal's scannable: %s %d", parley_errname(rc), match);
		const uint8_t *ours = parley_fingerprint_scannable(fa, &slen);
		CHECK(peer_call(&P, "fp_compare\t%d\t%u\t%s\t%s\t%s\t%s\t%s", PARLEY_FINGERPRINT_ITERATIONS, version,
			      b64((const uint8_t *)bid, strlen(bid)), b64(b.pub, 33), b64((const uint8_t *)aid, strlen(aid)),
			      b64(a.pub, 33), b64(ours, slen)) == 1 &&
			      strcmp(P.field[1], "1") == 0,
			"libsignal compares C's scannable: %s", P.field[1]);
		parley_fingerprint_free(fa);
	}
	parley_signal_keypair_wipe(&a);
	parley_signal_keypair_wipe(&b);
}

/* ---------------------------------------------------------------- main */

static const struct {
	const char *name;
	void (*fn)(void);
} SCENARIOS[] = {
	{"c-initiates", scenario_c_initiates},
	{"libsignal-initiates", scenario_node_initiates},
	{"thousand-messages", scenario_thousand},
	{"out-of-order", scenario_out_of_order},
	{"duplicates", scenario_duplicates},
	{"tampered-mac", scenario_tampered_mac},
	{"group-c-sender", scenario_group_c_sender},
	{"group-libsignal-sender", scenario_group_node_sender},
	{"fingerprints", scenario_fingerprints},
	{"identity-change", scenario_identity_change},
};

int main(int argc, char **argv)
{
	const char *which = argc > 3 ? argv[3] : "all";
	int ran = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: %s <node> <peer.js> [scenario|all]\n", argv[0]);
		return 2;
	}
	if (sodium_init() < 0)
		return 2;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/parley-interop-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 2;
	if (peer_start(&P, argv[1], argv[2]) != 0)
		return 1;
	for (size_t i = 0; i < sizeof SCENARIOS / sizeof SCENARIOS[0]; i++) {
		if (strcmp(which, "all") != 0 && strcmp(which, SCENARIOS[i].name) != 0)
			continue;
		int before = failures;
		SCENARIOS[i].fn();
		printf("%s - %s\n", failures == before ? "ok" : "not ok", SCENARIOS[i].name);
		ran++;
	}
	if (have_alice)
		cuser_free(&alice);
	peer_stop(&P);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", tmpdir);
	if (ran == 0) {
		fprintf(stderr, "unknown scenario %s\n", which);
		return 2;
	}
	printf("# %d checks, %d failed\n", checks, failures);
	return failures > 100 ? 100 : failures;
}
