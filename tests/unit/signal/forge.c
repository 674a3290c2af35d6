#include "forge.h"

#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "crypto/crypto.h"
#include "signal/message.h"
#include "signal/state.h"

static int party_init(forge_party *p, const char *name)
{
	int rc;
	memset(p, 0, sizeof *p);
	rc = parley_signal_keypair_generate(&p->ik);
	if (rc == PARLEY_OK)
		rc = parley_signal_registration_id_generate(&p->reg);
	if (rc == PARLEY_OK)
		rc = parley_signal_mem_store_new(&p->store, &p->ik, p->reg);
	if (rc == PARLEY_OK)
		rc = parley_signal_ctx_new(&p->ctx, &p->store);
	if (rc == PARLEY_OK)
		rc = parley_signal_signed_prekey_generate(&p->spk, &p->ik, 7, 1700000000000ull);
	if (rc == PARLEY_OK)
		rc = p->store.store_signed_prekey(p->store.user, &p->spk);
	p->addr.name = name;
	p->addr.device_id = 1;
	return rc;
}

static void party_free(forge_party *p)
{
	parley_signal_ctx_free(p->ctx);
	parley_signal_mem_store_free(&p->store);
	parley_signal_keypair_wipe(&p->ik);
}

/* One more session: the peer processes the victim's bundle and writes; the victim reads and replies. */
static int one_session(forge_env *e, uint32_t k)
{
	parley_prekey_bundle b;
	uint8_t msg[FORGE_MSG_MAX], pt[FORGE_MSG_MAX];
	const uint8_t *rec;
	size_t len = 0, n = 0;
	int type, rc;

	memset(&b, 0, sizeof b);
	b.registration_id = e->victim.reg;
	b.device_id = 1;
	b.signed_prekey_id = e->victim.spk.id;
	memcpy(b.signed_prekey_pub, e->victim.spk.key.pub, 33);
	memcpy(b.signed_prekey_sig, e->victim.spk.signature, 64);
	memcpy(b.identity_key, e->victim.ik.pub, 33);
	rc = parley_signal_process_bundle(e->peer.ctx, &e->victim.addr, &b);
	if (rc == PARLEY_OK)
		rc = parley_signal_encrypt(e->peer.ctx, &e->victim.addr, (const uint8_t *)"hi", 2, msg, sizeof msg, &len,
					   &type);
	if (rc == PARLEY_OK)
		rc = parley_signal_decrypt_prekey(e->victim.ctx, &e->peer.addr, msg, len, pt, sizeof pt, &n);
	if (rc == PARLEY_OK)
		rc = parley_signal_encrypt(e->victim.ctx, &e->peer.addr, (const uint8_t *)"yo", 2, e->reply[k],
					   sizeof e->reply[k], &e->reply_len[k], &type);
	if (rc == PARLEY_OK)
		rc = e->peer.store.load_session(e->peer.store.user, &e->victim.addr, &rec, &len);
	if (rc != PARLEY_OK)
		return rc;
	e->peer_rec[k] = parley__malloc(len);
	if (e->peer_rec[k] == NULL)
		return PARLEY_E_NOMEM;
	memcpy(e->peer_rec[k], rec, len);
	e->peer_rec_len[k] = len;
	return PARLEY_OK;
}

int forge_env_init(forge_env *e, uint32_t n)
{
	int rc;
	memset(e, 0, sizeof *e);
	if (n == 0 || n > FORGE_STATES)
		return PARLEY_E_INVAL;
	rc = party_init(&e->victim, "victim");
	if (rc == PARLEY_OK)
		rc = party_init(&e->peer, "peer");
	for (uint32_t k = 0; rc == PARLEY_OK && k < n; k++) {
		rc = one_session(e, k);
		e->n = k + 1;
	}
	return rc;
}

void forge_env_free(forge_env *e)
{
	for (uint32_t k = 0; k < FORGE_STATES; k++)
		parley__free(e->peer_rec[k]);
	party_free(&e->victim);
	party_free(&e->peer);
	memset(e, 0, sizeof *e);
}

size_t forge_message(uint8_t *out, size_t cap, const uint8_t *ratchet, uint32_t counter)
{
	uint8_t key[32];
	size_t ct_len = 16, hdr = sig__msg_header_len(counter, 0, ct_len);

	if (cap < hdr + ct_len + SIG_MAC_LEN)
		return 0;
	if (ratchet != NULL)
		memcpy(key, ratchet, 32);
	else
		crypto__random(key, sizeof key);
	if (sig__msg_write_header(out, key, counter, 0, ct_len) != hdr)
		return 0;
	crypto__random(out + hdr, ct_len + SIG_MAC_LEN);
	return hdr + ct_len + SIG_MAC_LEN;
}

int forge_known_ratchet(forge_env *e, uint8_t out[32])
{
	const uint8_t *data;
	size_t len;
	sig_record r;
	int rc = e->victim.store.load_session(e->victim.store.user, &e->peer.addr, &data, &len);

	if (rc != PARLEY_OK)
		return rc;
	rc = sig__record_decode(&r, data, len);
	if (rc != PARLEY_OK)
		return rc;
	if (r.n_states == 0 || r.states[0].n_recv == 0)
		rc = PARLEY_E_STATE;
	else
		memcpy(out, r.states[0].recv[r.states[0].n_recv - 1].ratchet_pub, 32);
	sig__record_free(&r);
	return rc;
}

int forge_decrypt(forge_env *e, const uint8_t *msg, size_t len)
{
	uint8_t pt[FORGE_MSG_MAX];
	size_t n = 0;
	return parley_signal_decrypt_signal(e->victim.ctx, &e->peer.addr, msg, len, pt, sizeof pt, &n);
}

int forge_genuine_on(forge_env *e, uint32_t k, uint32_t count, uint8_t *out, size_t cap, size_t *len)
{
	uint8_t pt[FORGE_MSG_MAX];
	size_t n = 0;
	int type, rc;

	if (k >= e->n || count == 0)
		return PARLEY_E_INVAL;
	rc = e->peer.store.store_session(e->peer.store.user, &e->victim.addr, e->peer_rec[k], e->peer_rec_len[k]);
	if (rc == PARLEY_OK)
		rc = parley_signal_decrypt_signal(e->peer.ctx, &e->victim.addr, e->reply[k], e->reply_len[k], pt,
						  sizeof pt, &n);
	for (uint32_t i = 0; rc == PARLEY_OK && i < count; i++)
		rc = parley_signal_encrypt(e->peer.ctx, &e->victim.addr, (const uint8_t *)"again", 5, out, cap, len,
					   &type);
	if (rc == PARLEY_OK && type != PARLEY_SIGNAL_MSG_WHISPER)
		rc = PARLEY_E_STATE;
	return rc;
}

size_t forge_victim_record(forge_env *e, uint8_t *buf, size_t cap)
{
	const uint8_t *d;
	size_t n;
	if (e->victim.store.load_session(e->victim.store.user, &e->peer.addr, &d, &n) != PARLEY_OK || n > cap)
		return 0;
	memcpy(buf, d, n);
	return n;
}
