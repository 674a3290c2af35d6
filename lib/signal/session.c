/* Public session API: context, X3DH from a bundle, session cipher, identity trust.
 * Mirrors libsignal's session.rs / session_cipher.rs semantics (see docs/signal.md, "Behaviour that mirrors libsignal"). */
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "common/alloc.h"
#include "common/dynbuf.h"
#include "signal/message.h"
#include "signal/state.h"

/* a record of 41 states each with 5 chains of 2000 skipped keys is ~37 MB: the hard ceiling */
#define RECORD_MAX ((size_t)64 * 1024 * 1024)

struct parley_signal_ctx {
	parley_signal_store store;
	int have_identity;
	crypto_keypair identity;
	uint8_t identity_pub[CRYPTO_SIGNAL_PUBKEY_LEN];
	uint32_t registration_id;
	dynbuf scratch; /* serialised record, reused between calls; wiped after each use */
};

int parley_signal_ctx_new(parley_signal_ctx **out, const parley_signal_store *store)
{
	parley_signal_ctx *ctx;
	int rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	if (store == NULL || store->get_identity_keypair == NULL || store->load_session == NULL ||
	    store->store_session == NULL || store->is_trusted_identity == NULL || store->save_identity == NULL)
		return PARLEY_E_INVAL;
	rc = crypto__init();
	if (rc != PARLEY_OK)
		return rc;
	ctx = parley__calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return PARLEY_E_NOMEM;
	ctx->store = *store;
	dynbuf__init(&ctx->scratch, RECORD_MAX);
	*out = ctx;
	return PARLEY_OK;
}

void parley_signal_ctx_free(parley_signal_ctx *ctx)
{
	if (ctx == NULL)
		return;
	dynbuf__free_secure(&ctx->scratch);
	crypto__wipe(ctx, sizeof(*ctx));
	parley__free(ctx);
}

static int load_identity(parley_signal_ctx *ctx)
{
	parley_keypair kp;
	int rc;

	if (ctx->have_identity)
		return PARLEY_OK;
	rc = ctx->store.get_identity_keypair(ctx->store.user, &kp);
	if (rc == PARLEY_E_NOT_FOUND)
		rc = PARLEY_E_NO_IDENTITY;
	if (rc == PARLEY_OK)
		rc = crypto__pubkey_parse(ctx->identity.pub, kp.pub, sizeof(kp.pub));
	if (rc == PARLEY_OK) {
		memcpy(ctx->identity.priv, kp.priv, 32);
		crypto__clamp(ctx->identity.priv);
		memcpy(ctx->identity_pub, kp.pub, sizeof(ctx->identity_pub));
		rc = ctx->store.get_local_registration_id != NULL
			     ? ctx->store.get_local_registration_id(ctx->store.user, &ctx->registration_id)
			     : PARLEY_OK;
	}
	crypto__wipe(&kp, sizeof(kp));
	if (rc == PARLEY_OK)
		ctx->have_identity = 1;
	else
		crypto__wipe(&ctx->identity, sizeof(ctx->identity));
	return rc;
}

static int check_addr(const parley_signal_address *addr)
{
	if (addr == NULL || addr->name == NULL || strnlen(addr->name, PARLEY_SIGNAL_MAX_NAME_LEN + 1) >
							     PARLEY_SIGNAL_MAX_NAME_LEN)
		return PARLEY_E_INVAL;
	return PARLEY_OK;
}

/* Load and parse addr's record; *found = 0 with an empty record when the store has none. */
static int load_record(parley_signal_ctx *ctx, const parley_signal_address *addr, sig_record *r, int *found)
{
	const uint8_t *data = NULL;
	size_t len = 0;
	int rc = ctx->store.load_session(ctx->store.user, addr, &data, &len);

	*found = 0;
	if (rc == PARLEY_E_NOT_FOUND) {
		sig__record_init(r);
		return PARLEY_OK;
	}
	if (rc != PARLEY_OK)
		return rc;
	if (len > RECORD_MAX)
		return PARLEY_E_INVALID_MESSAGE;
	rc = sig__record_decode(r, data, len);
	if (rc == PARLEY_OK)
		*found = 1;
	return rc;
}

static int save_record(parley_signal_ctx *ctx, const parley_signal_address *addr, const sig_record *r)
{
	int rc;
	dynbuf__reset(&ctx->scratch);
	rc = sig__record_encode(r, &ctx->scratch);
	if (rc == PARLEY_OK)
		rc = ctx->store.store_session(ctx->store.user, addr, ctx->scratch.data, ctx->scratch.len);
	crypto__wipe(ctx->scratch.data, ctx->scratch.len);
	return rc;
}

static int check_trusted(parley_signal_ctx *ctx, const parley_signal_address *addr,
			 const uint8_t key[CRYPTO_SIGNAL_PUBKEY_LEN], parley_signal_direction dir)
{
	int trusted = 0;
	int rc = ctx->store.is_trusted_identity(ctx->store.user, addr, key, dir, &trusted);
	if (rc != PARLEY_OK)
		return rc;
	return trusted ? PARLEY_OK : PARLEY_E_UNTRUSTED_IDENTITY;
}

static int save_identity(parley_signal_ctx *ctx, const parley_signal_address *addr,
			 const uint8_t key[CRYPTO_SIGNAL_PUBKEY_LEN])
{
	int replaced = 0;
	return ctx->store.save_identity(ctx->store.user, addr, key, &replaced);
}

/* ---------------------------------------------------------------- X3DH initiator */

int parley_signal_process_bundle(parley_signal_ctx *ctx, const parley_signal_address *addr,
				 const parley_prekey_bundle *b)
{
	uint8_t their_ik[32], spk[32], opk[32];
	crypto_keypair base, ratchet;
	sig_state st;
	sig_record rec;
	int rc, found = 0;

	memset(&st, 0, sizeof(st));
	sig__record_init(&rec);
	memset(&base, 0, sizeof(base));
	memset(&ratchet, 0, sizeof(ratchet));
	if (ctx == NULL || b == NULL || check_addr(addr) != PARLEY_OK)
		return PARLEY_E_INVAL;
	rc = load_identity(ctx);
	if (rc != PARLEY_OK)
		return rc;
	rc = crypto__pubkey_parse(their_ik, b->identity_key, sizeof(b->identity_key));
	if (rc == PARLEY_OK)
		rc = crypto__pubkey_parse(spk, b->signed_prekey_pub, sizeof(b->signed_prekey_pub));
	if (rc == PARLEY_OK && b->has_prekey)
		rc = crypto__pubkey_parse(opk, b->prekey_pub, sizeof(b->prekey_pub));
	if (rc != PARLEY_OK)
		return rc;
	rc = check_trusted(ctx, addr, b->identity_key, PARLEY_SIGNAL_SENDING);
	if (rc != PARLEY_OK)
		return rc;
	/* the signature covers the 33-byte serialised signed prekey */
	rc = crypto__xeddsa_verify(their_ik, b->signed_prekey_pub, sizeof(b->signed_prekey_pub),
				   b->signed_prekey_sig);
	if (rc != PARLEY_OK)
		return rc;

	rc = crypto__keypair_generate(&base);
	if (rc == PARLEY_OK)
		rc = crypto__keypair_generate(&ratchet);
	if (rc == PARLEY_OK)
		rc = sig__init_alice(&st, &ctx->identity, &base, their_ik, spk, b->has_prekey ? opk : NULL, spk,
				     &ratchet);
	if (rc != PARLEY_OK)
		goto out;
	st.local_reg = ctx->registration_id;
	st.remote_reg = b->registration_id;
	st.has_pending = 1;
	st.pending_has_prekey = b->has_prekey ? 1 : 0;
	st.pending_prekey_id = b->has_prekey ? b->prekey_id : 0;
	st.pending_spk_id = b->signed_prekey_id;
	memcpy(st.pending_base, base.pub, 32);
	st.has_alice_base = 1;
	memcpy(st.alice_base, base.pub, 32);

	rc = load_record(ctx, addr, &rec, &found);
	if (rc == PARLEY_OK)
		rc = sig__record_promote_new(&rec, &st);
	if (rc == PARLEY_OK)
		rc = save_record(ctx, addr, &rec);
	if (rc == PARLEY_OK)
		rc = save_identity(ctx, addr, b->identity_key);
out:
	sig__state_clear(&st);
	sig__record_free(&rec);
	crypto__keypair_wipe(&base);
	crypto__keypair_wipe(&ratchet);
	crypto__scrub_thread();
	return rc;
}

/* ---------------------------------------------------------------- encrypt */

int parley_signal_encrypt(parley_signal_ctx *ctx, const parley_signal_address *addr, const uint8_t *plaintext,
			  size_t len, uint8_t *out, size_t out_cap, size_t *out_len, int *type)
{
	sig_record rec;
	int rc, found = 0;

	if (ctx == NULL || check_addr(addr) != PARLEY_OK || (plaintext == NULL && len > 0) || out == NULL ||
	    out_len == NULL || type == NULL)
		return PARLEY_E_INVAL;
	if (len > PARLEY_SIGNAL_MAX_PLAINTEXT)
		return PARLEY_E_TOO_LARGE;
	rc = load_record(ctx, addr, &rec, &found);
	if (rc != PARLEY_OK)
		return rc;
	if (!found || !rec.has_current || !rec.states[0].has_sender) {
		rc = PARLEY_E_NO_SESSION;
		goto out;
	}
	rc = check_trusted(ctx, addr, rec.states[0].remote_ik, PARLEY_SIGNAL_SENDING);
	if (rc != PARLEY_OK)
		goto out;
	rc = sig__state_encrypt(&rec.states[0], plaintext, len, out, out_cap, out_len, type);
	if (rc != PARLEY_OK)
		goto out;
	rc = save_identity(ctx, addr, rec.states[0].remote_ik);
	if (rc == PARLEY_OK)
		rc = save_record(ctx, addr, &rec);
out:
	sig__record_free(&rec);
	crypto__scrub_thread();
	return rc;
}

/* ---------------------------------------------------------------- decrypt */

/* Try the current state, then each archived one (libsignal's decrypt_message_with_record); a state
 * that works is promoted to current. A duplicate stops the search at once (the key was used, trying
 * other sessions cannot help). Otherwise the current state's error is reported, as it is the one the
 * peer most likely used.
 *
 * Work bound (security item 11): the first state gets libsignal's limits, the archived ones the
 * tighter ones of sig__state_decrypt. Before, a forged message with an unknown ratchet key and a
 * counter near MAX_FORWARD_JUMPS cost every one of 41 states a DH step and ~25,000 chain steps; now
 * the archived states together cost at most 40 x MAX_ARCHIVED_JUMP steps, and none at all where the
 * peer could not have turned its ratchet. Genuine traffic on an archived state (a session both sides
 * started at once) is a short, recent exchange and passes. */
static int decrypt_with_record(sig_record *rec, const sig_msg *m, uint8_t *out, size_t cap, size_t *out_len)
{
	int first_err = PARLEY_E_NO_SESSION;

	for (uint32_t i = 0; i < rec->n_states; i++) {
		int rc = sig__state_decrypt(&rec->states[i], m, i > 0, out, cap, out_len);
		if (rc == PARLEY_OK) {
			sig__record_promote(rec, i);
			return PARLEY_OK;
		}
		if (rc == PARLEY_E_DUPLICATE_MESSAGE || rc == PARLEY_E_NOMEM)
			return rc;
		if (i == 0)
			first_err = rc;
	}
	return first_err;
}

int parley_signal_decrypt_signal(parley_signal_ctx *ctx, const parley_signal_address *addr, const uint8_t *msg,
				 size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
	sig_msg m;
	sig_record rec;
	int rc, found = 0;

	if (ctx == NULL || check_addr(addr) != PARLEY_OK || msg == NULL || out == NULL || out_len == NULL)
		return PARLEY_E_INVAL;
	rc = sig__msg_decode(&m, msg, len);
	if (rc != PARLEY_OK)
		return rc;
	rc = load_record(ctx, addr, &rec, &found);
	if (rc != PARLEY_OK)
		return rc;
	if (!found || rec.n_states == 0) {
		rc = PARLEY_E_NO_SESSION;
		goto out;
	}
	rc = decrypt_with_record(&rec, &m, out, out_cap, out_len);
	if (rc != PARLEY_OK)
		goto out;
	/* trust is checked after decryption, as libsignal does; on failure nothing is stored */
	rc = check_trusted(ctx, addr, rec.states[0].remote_ik, PARLEY_SIGNAL_RECEIVING);
	if (rc == PARLEY_OK)
		rc = save_identity(ctx, addr, rec.states[0].remote_ik);
	if (rc == PARLEY_OK)
		rc = save_record(ctx, addr, &rec);
	if (rc != PARLEY_OK)
		crypto__wipe(out, *out_len);
out:
	sig__record_free(&rec);
	crypto__scrub_thread();
	return rc;
}

/* X3DH as responder: reuse the state built from this base key if we already have it, else build
 * Bob's state from the prekeys the message names. *used_prekey tells the caller what to delete once
 * decryption succeeded. */
static int process_prekey(parley_signal_ctx *ctx, sig_record *rec, const sig_prekey_msg *pm, int *used_prekey)
{
	parley_signed_prekey spk;
	parley_prekey opk;
	crypto_keypair spk_kp, opk_kp;
	uint8_t their_ik[32];
	sig_state st;
	int rc;

	*used_prekey = 0;
	for (uint32_t i = 0; i < rec->n_states; i++) {
		const sig_state *s = &rec->states[i];
		if (s->version == SIG_SESSION_VERSION && s->has_alice_base &&
		    memcmp(s->alice_base, pm->base_key, 32) == 0)
			return PARLEY_OK; /* a repeated PreKeySignalMessage of a session we already built */
	}
	memset(&st, 0, sizeof(st));
	memset(&spk, 0, sizeof(spk));
	memset(&opk, 0, sizeof(opk));
	memset(&spk_kp, 0, sizeof(spk_kp));
	memset(&opk_kp, 0, sizeof(opk_kp));
	if (ctx->store.load_signed_prekey == NULL || ctx->store.load_prekey == NULL)
		return PARLEY_E_INVAL;
	rc = ctx->store.load_signed_prekey(ctx->store.user, pm->signed_prekey_id, &spk);
	if (rc == PARLEY_E_NOT_FOUND)
		rc = PARLEY_E_INVALID_KEY_ID;
	if (rc == PARLEY_OK)
		rc = crypto__pubkey_parse(spk_kp.pub, spk.key.pub, sizeof(spk.key.pub));
	if (rc != PARLEY_OK)
		goto out;
	memcpy(spk_kp.priv, spk.key.priv, 32);
	crypto__clamp(spk_kp.priv);
	if (pm->has_prekey_id) {
		rc = ctx->store.load_prekey(ctx->store.user, pm->prekey_id, &opk);
		if (rc == PARLEY_E_NOT_FOUND)
			rc = PARLEY_E_INVALID_KEY_ID;
		if (rc == PARLEY_OK)
			rc = crypto__pubkey_parse(opk_kp.pub, opk.key.pub, sizeof(opk.key.pub));
		if (rc != PARLEY_OK)
			goto out;
		memcpy(opk_kp.priv, opk.key.priv, 32);
		crypto__clamp(opk_kp.priv);
	}
	rc = crypto__pubkey_parse(their_ik, pm->identity_key, sizeof(pm->identity_key));
	if (rc == PARLEY_OK)
		rc = sig__init_bob(&st, &ctx->identity, &spk_kp, pm->has_prekey_id ? &opk_kp : NULL, &spk_kp, their_ik,
				   pm->base_key);
	if (rc != PARLEY_OK)
		goto out;
	st.local_reg = ctx->registration_id;
	st.remote_reg = pm->registration_id;
	st.has_alice_base = 1;
	memcpy(st.alice_base, pm->base_key, 32);
	rc = sig__record_promote_new(rec, &st);
	if (rc == PARLEY_OK)
		*used_prekey = pm->has_prekey_id;
out:
	sig__state_clear(&st);
	crypto__wipe(&spk, sizeof(spk));
	crypto__wipe(&opk, sizeof(opk));
	crypto__keypair_wipe(&spk_kp);
	crypto__keypair_wipe(&opk_kp);
	return rc;
}

int parley_signal_decrypt_prekey(parley_signal_ctx *ctx, const parley_signal_address *addr, const uint8_t *msg,
				 size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
	sig_prekey_msg pm;
	sig_record rec;
	int rc, found = 0, used_prekey = 0;

	if (ctx == NULL || check_addr(addr) != PARLEY_OK || msg == NULL || out == NULL || out_len == NULL)
		return PARLEY_E_INVAL;
	rc = sig__prekey_msg_decode(&pm, msg, len);
	if (rc != PARLEY_OK)
		return rc;
	rc = load_identity(ctx);
	if (rc != PARLEY_OK)
		return rc;
	rc = check_trusted(ctx, addr, pm.identity_key, PARLEY_SIGNAL_RECEIVING);
	if (rc != PARLEY_OK)
		return rc;
	rc = load_record(ctx, addr, &rec, &found);
	if (rc != PARLEY_OK)
		return rc;
	rc = process_prekey(ctx, &rec, &pm, &used_prekey);
	if (rc != PARLEY_OK)
		goto out;
	rc = decrypt_with_record(&rec, &pm.message, out, out_cap, out_len);
	if (rc != PARLEY_OK)
		goto out;
	/* The identity is saved only once the message proved to come from its key (as current libsignal
	 * does): saved before, a forged PreKeySignalMessage would pin any identity it names for this
	 * address (trust on first use), and the real peer's messages would then be refused as untrusted. */
	rc = save_identity(ctx, addr, pm.identity_key);
	if (rc == PARLEY_OK)
		rc = save_record(ctx, addr, &rec);
	if (rc == PARLEY_OK && used_prekey && ctx->store.remove_prekey != NULL)
		rc = ctx->store.remove_prekey(ctx->store.user, pm.prekey_id);
	if (rc != PARLEY_OK)
		crypto__wipe(out, *out_len);
out:
	sig__record_free(&rec);
	crypto__scrub_thread();
	return rc;
}

/* ---------------------------------------------------------------- session / identity management */

int parley_signal_session_exists(parley_signal_ctx *ctx, const parley_signal_address *addr, int *exists)
{
	sig_record rec;
	int rc, found = 0;

	if (ctx == NULL || check_addr(addr) != PARLEY_OK || exists == NULL)
		return PARLEY_E_INVAL;
	*exists = 0;
	rc = load_record(ctx, addr, &rec, &found);
	if (rc != PARLEY_OK)
		return rc;
	*exists = found && rec.has_current && rec.states[0].has_sender;
	sig__record_free(&rec);
	return PARLEY_OK;
}

int parley_signal_session_delete(parley_signal_ctx *ctx, const parley_signal_address *addr)
{
	int rc;
	if (ctx == NULL || check_addr(addr) != PARLEY_OK || ctx->store.delete_session == NULL)
		return PARLEY_E_INVAL;
	rc = ctx->store.delete_session(ctx->store.user, addr);
	return rc == PARLEY_E_NOT_FOUND ? PARLEY_OK : rc;
}

int parley_signal_remote_identity(parley_signal_ctx *ctx, const parley_signal_address *addr,
				  uint8_t out[PARLEY_SIGNAL_PUBKEY_LEN])
{
	if (ctx == NULL || check_addr(addr) != PARLEY_OK || out == NULL || ctx->store.get_identity == NULL)
		return PARLEY_E_INVAL;
	return ctx->store.get_identity(ctx->store.user, addr, out);
}

int parley_signal_trust_identity(parley_signal_ctx *ctx, const parley_signal_address *addr,
				 const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN])
{
	uint8_t raw[32];
	if (ctx == NULL || check_addr(addr) != PARLEY_OK || key == NULL)
		return PARLEY_E_INVAL;
	if (crypto__pubkey_parse(raw, key, PARLEY_SIGNAL_PUBKEY_LEN) != PARLEY_OK)
		return PARLEY_E_INVALID_KEY;
	return save_identity(ctx, addr, key);
}
