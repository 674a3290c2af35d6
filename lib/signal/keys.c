/* Public key-generation helpers: identity / prekey / signed prekey / registration id, XEdDSA. */
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "crypto/crypto.h"

static int gen(parley_keypair *out)
{
	crypto_keypair kp;
	int rc = crypto__keypair_generate(&kp);
	if (rc == PARLEY_OK) {
		crypto__pubkey_serialize(out->pub, kp.pub);
		memcpy(out->priv, kp.priv, sizeof(out->priv));
	}
	crypto__keypair_wipe(&kp);
	return rc;
}

int parley_signal_keypair_generate(parley_keypair *out)
{
	if (out == NULL)
		return PARLEY_E_INVAL;
	return gen(out);
}

void parley_signal_keypair_wipe(parley_keypair *kp)
{
	if (kp != NULL)
		crypto__wipe(kp, sizeof(*kp));
}

int parley_signal_registration_id_generate(uint32_t *out)
{
	int rc;
	if (out == NULL)
		return PARLEY_E_INVAL;
	rc = crypto__init();
	if (rc != PARLEY_OK)
		return rc;
	/* libsignal's KeyHelper: 1..16380 */
	*out = 1 + randombytes_uniform(16380);
	return PARLEY_OK;
}

int parley_signal_prekey_generate(parley_prekey *out, uint32_t id)
{
	if (out == NULL)
		return PARLEY_E_INVAL;
	out->id = id;
	return gen(&out->key);
}

int parley_signal_sign(uint8_t sig[PARLEY_SIGNAL_SIGNATURE_LEN], const parley_keypair *key, const uint8_t *msg,
		       size_t len)
{
	if (sig == NULL || key == NULL || (msg == NULL && len > 0))
		return PARLEY_E_INVAL;
	return crypto__xeddsa_sign(sig, key->priv, msg, len);
}

int parley_signal_verify(const uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN], const uint8_t *msg, size_t len,
			 const uint8_t sig[PARLEY_SIGNAL_SIGNATURE_LEN])
{
	uint8_t raw[32];
	int rc;
	if (pub == NULL || sig == NULL || (msg == NULL && len > 0))
		return PARLEY_E_INVAL;
	rc = crypto__pubkey_parse(raw, pub, PARLEY_SIGNAL_PUBKEY_LEN);
	if (rc != PARLEY_OK)
		return rc;
	return crypto__xeddsa_verify(raw, msg, len, sig);
}

int parley_signal_signed_prekey_generate(parley_signed_prekey *out, const parley_keypair *identity, uint32_t id,
					 uint64_t timestamp_ms)
{
	int rc;
	if (out == NULL || identity == NULL)
		return PARLEY_E_INVAL;
	memset(out, 0, sizeof(*out));
	out->id = id;
	out->timestamp_ms = timestamp_ms;
	rc = gen(&out->key);
	if (rc == PARLEY_OK)
		rc = crypto__xeddsa_sign(out->signature, identity->priv, out->key.pub, sizeof(out->key.pub));
	if (rc != PARLEY_OK)
		crypto__wipe(out, sizeof(*out));
	return rc;
}
