/* Set-up requests of parley-bench's parleyd connections (pwire.h). */
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "pwire.h"
#include "wire/wire.h"

static int encode(dynbuf *out, Parley__Wire__Request *req, uint64_t id)
{
	req->id = id;
	dynbuf__reset(out);
	return wire__encode_request(req, out);
}

int pwire__register(dynbuf *out, uint64_t id, const char *handle, const uint8_t nonce[32], uint8_t sk[64])
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__RegisterRequest r = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], dsk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
	static const uint8_t ak[33] = {0x05, 0x42};
	dynbuf m;
	int rc;

	crypto_sign_keypair(pk, dsk);
	dynbuf__init(&m, 4096);
	rc = wire__register_signed_bytes(nonce, handle, pk, PWIRE_DEVICE_NAME, &m);
	if (rc == PARLEY_OK)
		crypto_sign_detached(sig, NULL, m.data, m.len, dsk);
	dynbuf__free(&m);
	if (sk != NULL)
		memcpy(sk, dsk, sizeof(dsk));
	crypto__wipe(dsk, sizeof(dsk));
	if (rc != PARLEY_OK)
		return rc;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	req.register_ = &r;
	r.handle = (char *)handle;
	r.device_key.data = pk;
	r.device_key.len = sizeof(pk);
	r.device_name = PWIRE_DEVICE_NAME;
	r.signature.data = sig;
	r.signature.len = sizeof(sig);
	r.account_key.data = (uint8_t *)ak;
	r.account_key.len = sizeof(ak);
	return encode(out, &req, id);
}

int pwire__auth(dynbuf *out, uint64_t id, const char *handle, uint32_t device, const uint8_t nonce[32],
		const uint8_t sk[64])
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthRequest a = PARLEY__WIRE__AUTH_REQUEST__INIT;
	uint8_t sig[crypto_sign_BYTES];
	dynbuf m;
	int rc;

	dynbuf__init(&m, 4096);
	rc = wire__auth_signed_bytes(nonce, handle, device, &m);
	if (rc == PARLEY_OK)
		crypto_sign_detached(sig, NULL, m.data, m.len, sk);
	dynbuf__free(&m);
	if (rc != PARLEY_OK)
		return rc;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
	req.auth = &a;
	a.handle = (char *)handle;
	a.device_id = device;
	a.signature.data = sig;
	a.signature.len = sizeof(sig);
	return encode(out, &req, id);
}

int pwire__keys(dynbuf *out, uint64_t id, uint32_t regid)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__UploadKeysRequest u = PARLEY__WIRE__UPLOAD_KEYS_REQUEST__INIT;
	Parley__Wire__SignedPrekey spk = PARLEY__WIRE__SIGNED_PREKEY__INIT;
	crypto_keypair ik, sk;
	uint8_t ik33[CRYPTO_SIGNAL_PUBKEY_LEN], spk33[CRYPTO_SIGNAL_PUBKEY_LEN], sig[CRYPTO_SIG_LEN];
	int rc = crypto__keypair_generate(&ik);

	if (rc == PARLEY_OK)
		rc = crypto__keypair_generate(&sk);
	if (rc == PARLEY_OK) {
		crypto__pubkey_serialize(ik33, ik.pub);
		crypto__pubkey_serialize(spk33, sk.pub);
		rc = crypto__xeddsa_sign(sig, ik.priv, spk33, sizeof(spk33));
	}
	crypto__keypair_wipe(&ik);
	crypto__keypair_wipe(&sk);
	if (rc != PARLEY_OK)
		return rc;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS;
	req.upload_keys = &u;
	u.identity_key.data = ik33;
	u.identity_key.len = sizeof(ik33);
	u.registration_id = regid;
	u.signed_prekey = &spk;
	spk.id = 1;
	spk.public_key.data = spk33;
	spk.public_key.len = sizeof(spk33);
	spk.signature.data = sig;
	spk.signature.len = sizeof(sig);
	return encode(out, &req, id);
}
