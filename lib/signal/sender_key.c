/* Group cipher over sender keys (libsignal group_cipher.rs, v0.24.0): ties the wire codecs and the
 * record state machine to the application's store.
 *
 * Every operation loads the record, works on that private copy and stores it back only when the whole
 * operation succeeded, so a forged, replayed or undecryptable message never changes stored state.
 */
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>
#include <parley/signal_group.h>

#include "common/alloc.h"
#include "crypto/crypto.h"
#include "signal/sender_key.h"

/* Ciphertexts up to this size are built on the stack; larger ones are allocated. */
#define SK_STACK_CT 2048

static int check_addr(const parley_signal_store *store, const parley_signal_address *a)
{
	if (store == NULL || store->load_sender_key == NULL || store->store_sender_key == NULL || a == NULL ||
		a->name == NULL || strnlen(a->name, PARLEY_SIGNAL_MAX_NAME_LEN + 1) > PARLEY_SIGNAL_MAX_NAME_LEN)
		return PARLEY_E_INVAL;
	return PARLEY_OK;
}

/* *found = 0 and an empty record when the store has nothing for (addr, dist). A stored record we
 * cannot parse is a storage fault, not a protocol error. */
static int load_record(const parley_signal_store *store, const parley_signal_address *addr,
	const uint8_t dist[SK_UUID_LEN], sk_record *r, int *found)
{
	const uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	sender_key__record_init(r);
	*found = 0;
	rc = store->load_sender_key(store->user, addr, dist, &data, &len);
	if (rc == PARLEY_E_NOT_FOUND)
		return PARLEY_OK;
	if (rc != PARLEY_OK)
		return rc;
	rc = sender_key__record_decode(r, data, len);
	if (rc == PARLEY_E_NOMEM)
		return rc;
	if (rc != PARLEY_OK)
		return PARLEY_E_STORE;
	*found = 1;
	return PARLEY_OK;
}

static int save_record(const parley_signal_store *store, const parley_signal_address *addr,
	const uint8_t dist[SK_UUID_LEN], const sk_record *r)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = sender_key__record_encode(r, &buf, &len);
	if (rc != PARLEY_OK)
		return rc;
	rc = store->store_sender_key(store->user, addr, dist, buf, len);
	crypto__wipe(buf, len);
	parley__free(buf);
	return rc;
}

/* A fresh own state (random 31-bit chain id, random chain key, new signing key pair) added to rec. */
static int add_fresh_state(sk_record *rec)
{
	crypto_keypair kp;
	uint8_t ck[SK_CHAIN_KEY_LEN], pub[PARLEY_SIGNAL_PUBKEY_LEN];
	uint32_t chain_id;
	int rc;

	memset(&kp, 0, sizeof kp);
	/* libsignal-protocol-java uses 31-bit chain ids; libsignal keeps that for compatibility */
	crypto__random(&chain_id, sizeof chain_id);
	chain_id >>= 1;
	crypto__random(ck, sizeof ck);
	rc = crypto__keypair_generate(&kp);
	if (rc == PARLEY_OK) {
		crypto__pubkey_serialize(pub, kp.pub);
		rc = sender_key__record_add_state(rec, SK_VERSION, chain_id, 0, ck, pub, kp.priv);
	}
	crypto__keypair_wipe(&kp);
	crypto__wipe(ck, sizeof ck);
	return rc;
}

int sender_key__rotate_own(const parley_signal_store *store, const parley_signal_address *self,
	const uint8_t distribution_id[SK_UUID_LEN])
{
	sk_record rec;
	int rc;

	rc = check_addr(store, self);
	if (rc != PARLEY_OK || distribution_id == NULL)
		return PARLEY_E_INVAL;
	rc = crypto__init();
	if (rc != PARLEY_OK)
		return rc;
	/* a record with the new state ONLY: the old chains (which removed members hold) are never used
	 * again, and keeping their signing keys here would serve no one */
	sender_key__record_init(&rec);
	rc = add_fresh_state(&rec);
	if (rc == PARLEY_OK)
		rc = save_record(store, self, distribution_id, &rec);
	sender_key__record_clear(&rec);
	return rc;
}

/* The SKDM of state s at its CURRENT position (chain key and iteration as kept): whoever processes it
 * derives the keys of the iterations from there on, never of earlier ones (a late joiner, or a forward's
 * agent, reads only what follows). */
static int state_distribution(const sk_state *s, const uint8_t distribution_id[SK_UUID_LEN], uint8_t *out,
	size_t out_cap, size_t *out_len)
{
	sk_distribution d;
	int rc;

	memset(&d, 0, sizeof d);
	d.version = s->version ? s->version : SK_VERSION;
	memcpy(d.distribution_id, distribution_id, SK_UUID_LEN);
	d.chain_id = s->chain_id;
	d.iteration = s->iteration;
	memcpy(d.chain_key, s->chain_key, SK_CHAIN_KEY_LEN);
	memcpy(d.signing_key, s->signing_pub, PARLEY_SIGNAL_PUBKEY_LEN);
	rc = sender_key__distribution_encode(out, out_cap, out_len, &d);
	crypto__wipe(&d, sizeof d);
	return rc;
}

int parley_group_create_distribution(const parley_signal_store *store, const parley_signal_address *self,
	const uint8_t distribution_id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], uint8_t *out, size_t out_cap,
	size_t *out_len)
{
	sk_record rec;
	int found, rc;

	rc = check_addr(store, self);
	if (rc != PARLEY_OK || distribution_id == NULL || out == NULL || out_len == NULL)
		return PARLEY_E_INVAL;
	rc = crypto__init();
	if (rc != PARLEY_OK)
		return rc;
	rc = load_record(store, self, distribution_id, &rec, &found);
	if (rc != PARLEY_OK)
		goto out;
	if (!found || rec.nstates == 0) {
		rc = add_fresh_state(&rec);
		if (rc == PARLEY_OK)
			rc = save_record(store, self, distribution_id, &rec);
		if (rc != PARLEY_OK)
			goto out;
	}
	rc = state_distribution(&rec.states[0], distribution_id, out, out_cap, out_len);
out:
	sender_key__record_clear(&rec);
	return rc;
}

int sender_key__export_distribution(const parley_signal_store *store, const parley_signal_address *sender,
	const uint8_t distribution_id[SK_UUID_LEN], uint8_t *out, size_t out_cap, size_t *out_len)
{
	sk_record rec;
	int found, rc;

	sender_key__record_init(&rec);
	rc = check_addr(store, sender);
	if (rc != PARLEY_OK || distribution_id == NULL || out == NULL || out_len == NULL)
		return PARLEY_E_INVAL;
	rc = load_record(store, sender, distribution_id, &rec, &found);
	if (rc == PARLEY_OK && (!found || rec.nstates == 0))
		rc = PARLEY_E_NO_SENDER_KEY;
	/* the newest state: the one the sender encrypts with (ours) or sent us last (a member's) */
	if (rc == PARLEY_OK)
		rc = state_distribution(&rec.states[0], distribution_id, out, out_cap, out_len);
	sender_key__record_clear(&rec);
	return rc;
}

int parley_group_process_distribution(const parley_signal_store *store, const parley_signal_address *sender,
	const uint8_t *skdm, size_t len, uint8_t distribution_id_out[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN])
{
	sk_record rec;
	sk_distribution d;
	int found, rc;

	sender_key__record_init(&rec);
	rc = check_addr(store, sender);
	if (rc != PARLEY_OK || (skdm == NULL && len > 0))
		return PARLEY_E_INVAL;
	if (len > PARLEY_GROUP_DISTRIBUTION_MAX * 4)
		return PARLEY_E_INVALID_MESSAGE; /* far above any honest SKDM; refuse before parsing */
	rc = sender_key__distribution_decode(&d, skdm, len);
	if (rc != PARLEY_OK)
		goto out;
	rc = load_record(store, sender, d.distribution_id, &rec, &found);
	if (rc != PARLEY_OK)
		goto out;
	rc = sender_key__record_add_state(&rec, d.version, d.chain_id, d.iteration, d.chain_key, d.signing_key, NULL);
	if (rc == PARLEY_OK)
		rc = save_record(store, sender, d.distribution_id, &rec);
	if (rc == PARLEY_OK && distribution_id_out != NULL)
		memcpy(distribution_id_out, d.distribution_id, SK_UUID_LEN);
out:
	crypto__wipe(&d, sizeof d);
	sender_key__record_clear(&rec);
	return rc;
}

int parley_group_encrypt(const parley_signal_store *store, const parley_signal_address *self,
	const uint8_t distribution_id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], const uint8_t *plaintext, size_t len,
	uint8_t *out, size_t out_cap, size_t *out_len)
{
	sk_record rec;
	sk_keys keys;
	uint8_t stack_ct[SK_STACK_CT];
	uint8_t *ct = stack_ct;
	size_t ct_len = 0, ct_cap = CRYPTO_CBC_CIPHERTEXT_LEN(len);
	int found, rc;

	memset(&keys, 0, sizeof keys);
	sender_key__record_init(&rec);
	rc = check_addr(store, self);
	if (rc != PARLEY_OK || distribution_id == NULL || (plaintext == NULL && len > 0) || out == NULL ||
		out_len == NULL)
		return PARLEY_E_INVAL;
	if (len > PARLEY_GROUP_MAX_PLAINTEXT)
		return PARLEY_E_TOO_LARGE;
	if (out_cap < PARLEY_GROUP_CIPHERTEXT_MAX(len))
		return PARLEY_E_INVAL;
	rc = load_record(store, self, distribution_id, &rec, &found);
	if (rc != PARLEY_OK)
		goto out;
	if (!found || rec.nstates == 0) {
		rc = PARLEY_E_NO_SENDER_KEY;
		goto out;
	}
	sk_state *s = &rec.states[0];
	if (!s->has_priv) {
		rc = PARLEY_E_STATE;
		goto out;
	}
	rc = sender_key__state_next_keys(s, &keys);
	if (rc != PARLEY_OK)
		goto out;
	if (ct_cap > sizeof stack_ct) {
		ct = parley__malloc(ct_cap);
		if (ct == NULL) {
			rc = PARLEY_E_NOMEM;
			goto out;
		}
	}
	rc = crypto__aes256_cbc_encrypt(keys.cipher_key, keys.iv, plaintext, len, ct, ct_cap, &ct_len);
	if (rc != PARLEY_OK)
		goto out;
	rc = sender_key__message_encode(out, out_cap, out_len, distribution_id, s->chain_id, keys.iteration, ct,
		ct_len, s->signing_priv);
	if (rc != PARLEY_OK)
		goto out;
	rc = save_record(store, self, distribution_id, &rec);
out:
	if (ct != stack_ct)
		parley__free(ct);
	crypto__wipe(&keys, sizeof keys);
	sender_key__record_clear(&rec);
	crypto__scrub_thread(); /* the thread's cached HMAC state was keyed with chain keys */
	return rc;
}

int parley_group_decrypt(const parley_signal_store *store, const parley_signal_address *sender,
	const uint8_t *msg, size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
	sk_record rec;
	sk_message m;
	sk_keys keys;
	sk_state *s;
	int found, rc;

	memset(&keys, 0, sizeof keys);
	sender_key__record_init(&rec);
	rc = check_addr(store, sender);
	if (rc != PARLEY_OK || (msg == NULL && len > 0) || out == NULL || out_len == NULL)
		return PARLEY_E_INVAL;
	if (len > PARLEY_GROUP_MAX_MESSAGE)
		return PARLEY_E_INVALID_MESSAGE;
	rc = sender_key__message_decode(&m, msg, len);
	if (rc != PARLEY_OK)
		return rc;
	if (out_cap < m.ciphertext_len)
		return PARLEY_E_INVAL;
	rc = load_record(store, sender, m.distribution_id, &rec, &found);
	if (rc != PARLEY_OK)
		goto out;
	s = found ? sender_key__record_find(&rec, m.chain_id) : NULL;
	if (s == NULL) {
		rc = PARLEY_E_NO_SENDER_KEY;
		goto out;
	}
	if (m.version != (s->version ? s->version : SK_VERSION)) {
		rc = PARLEY_E_BAD_VERSION;
		goto out;
	}
	/* The signature is checked before any key is derived: a forged message must not be able to make
	 * us advance the chain (and drop skipped keys). */
	rc = crypto__xeddsa_verify(s->signing_pub + 1, m.signed_part, m.signed_len, m.signature);
	if (rc == PARLEY_E_BAD_KEY_SIGNATURE) {
		rc = PARLEY_E_BAD_SIGNATURE;
		goto out;
	}
	if (rc != PARLEY_OK)
		goto out;
	rc = sender_key__state_keys_for(s, m.iteration, &keys);
	if (rc != PARLEY_OK)
		goto out;
	rc = crypto__aes256_cbc_decrypt(keys.cipher_key, keys.iv, m.ciphertext, m.ciphertext_len, out, out_cap,
		out_len);
	if (rc != PARLEY_OK) {
		rc = PARLEY_E_INVALID_MESSAGE;
		goto out;
	}
	rc = save_record(store, sender, m.distribution_id, &rec);
	if (rc != PARLEY_OK)
		crypto__wipe(out, *out_len);
out:
	crypto__wipe(&keys, sizeof keys);
	sender_key__record_clear(&rec);
	crypto__scrub_thread(); /* the thread's cached HMAC state was keyed with chain keys */
	return rc;
}
