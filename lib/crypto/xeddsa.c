/* XEdDSA as libsignal 0.24 implements it (curve25519.rs calculate_signature / verify_signature).
 *
 * Signing uses only libsodium's constant-time Ed25519 scalar and base-point operations; it never
 * converts coordinates, because A = a·B is computed directly from the Montgomery private scalar.
 * Verification needs the Edwards y of the peer's Montgomery u, y = (u-1)/(u+1) mod p: that runs on
 * public data only, so OpenSSL BIGNUM (not constant time) is acceptable there, and the final check is
 * libsodium's Ed25519 verifier (stricter than libsignal on s >= L and small-order points, which honest
 * signers never produce).
 */
#include "crypto/crypto.h"

#include <string.h>

#include <openssl/bn.h>

#include <parley/error.h>

int crypto__xeddsa_sign_z(uint8_t sig[CRYPTO_SIG_LEN], const uint8_t priv[CRYPTO_KEY_LEN], const uint8_t *msg,
			  size_t msg_len, const uint8_t z[CRYPTO_XEDDSA_RANDOM_LEN])
{
	static const uint8_t prefix_fe = 0xFE;
	uint8_t prefix_ff[31];
	uint8_t k[CRYPTO_KEY_LEN], a_wide[64], a[32], A[32], digest[64], r[32], R[32], h[32], ha[32], s[32];
	crypto_hash_sha512_state st;
	uint8_t sign_bit;
	int rc = PARLEY_E_CRYPTO;

	memcpy(k, priv, sizeof(k));
	crypto__clamp(k); /* stored keys are clamped already; clamping again is a no-op, never a change */

	/* a = k taken as an integer, reduced mod L for the scalar arithmetic; A = a·B from the unreduced
	 * clamped bytes (k < 2^255, as base_noclamp requires). */
	memset(a_wide, 0, sizeof(a_wide));
	memcpy(a_wide, k, sizeof(k));
	crypto_core_ed25519_scalar_reduce(a, a_wide);
	if (crypto_scalarmult_ed25519_base_noclamp(A, k) != 0)
		goto out;
	sign_bit = A[31] & 0x80;

	/* r = SHA-512(0xFE || 0xFF*31 || k || M || Z) mod L: libsignal hashes the raw clamped bytes. */
	memset(prefix_ff, 0xFF, sizeof(prefix_ff));
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, &prefix_fe, 1);
	crypto_hash_sha512_update(&st, prefix_ff, sizeof(prefix_ff));
	crypto_hash_sha512_update(&st, k, sizeof(k));
	crypto_hash_sha512_update(&st, msg, msg_len);
	crypto_hash_sha512_update(&st, z, CRYPTO_XEDDSA_RANDOM_LEN);
	crypto_hash_sha512_final(&st, digest);
	crypto_core_ed25519_scalar_reduce(r, digest);
	if (crypto_scalarmult_ed25519_base_noclamp(R, r) != 0)
		goto out;

	/* h = SHA-512(R || A || M) mod L; s = h·a + r mod L */
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, R, sizeof(R));
	crypto_hash_sha512_update(&st, A, sizeof(A));
	crypto_hash_sha512_update(&st, msg, msg_len);
	crypto_hash_sha512_final(&st, digest);
	crypto_core_ed25519_scalar_reduce(h, digest);
	crypto_core_ed25519_scalar_mul(ha, h, a);
	crypto_core_ed25519_scalar_add(s, ha, r);

	memcpy(sig, R, 32);
	memcpy(sig + 32, s, 32);
	/* s < L < 2^253, so bit 255 is free to carry A's sign (libsignal never negates a) */
	sig[63] = (uint8_t)((sig[63] & 0x7F) | sign_bit);
	rc = PARLEY_OK;
out:
	crypto__wipe(k, sizeof(k));
	crypto__wipe(a_wide, sizeof(a_wide));
	crypto__wipe(a, sizeof(a));
	crypto__wipe(digest, sizeof(digest));
	crypto__wipe(r, sizeof(r));
	crypto__wipe(ha, sizeof(ha));
	crypto__wipe(&st, sizeof(st));
	return rc;
}

int crypto__xeddsa_sign(uint8_t sig[CRYPTO_SIG_LEN], const uint8_t priv[CRYPTO_KEY_LEN], const uint8_t *msg,
			size_t msg_len)
{
	uint8_t z[CRYPTO_XEDDSA_RANDOM_LEN];
	int rc = crypto__init();

	if (rc != PARLEY_OK)
		return rc;
	crypto__random(z, sizeof(z));
	rc = crypto__xeddsa_sign_z(sig, priv, msg, msg_len, z);
	crypto__wipe(z, sizeof(z));
	return rc;
}

/* Edwards y (32 bytes little-endian, canonical) of the Montgomery u in `pub` (bit 255 ignored, value
 * reduced mod p). PARLEY_E_BAD_KEY_SIGNATURE if u = -1 (no Edwards image). */
static int mont_u_to_ed_y(uint8_t y_out[32], const uint8_t pub[CRYPTO_KEY_LEN])
{
	/* p = 2^255 - 19, big-endian */
	static const uint8_t p_be[32] = {
		0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xed,
	};
	uint8_t u_le[32];
	BN_CTX *bctx = NULL;
	BIGNUM *p, *u, *num, *den, *y;
	int rc = PARLEY_E_CRYPTO;

	memcpy(u_le, pub, 32);
	u_le[31] &= 0x7F;
	bctx = BN_CTX_new();
	if (bctx == NULL)
		return PARLEY_E_CRYPTO;
	BN_CTX_start(bctx);
	p = BN_CTX_get(bctx);
	u = BN_CTX_get(bctx);
	num = BN_CTX_get(bctx);
	den = BN_CTX_get(bctx);
	y = BN_CTX_get(bctx);
	if (y == NULL || BN_bin2bn(p_be, 32, p) == NULL || BN_lebin2bn(u_le, 32, u) == NULL)
		goto out;
	if (!BN_nnmod(u, u, p, bctx))
		goto out;
	/* num = u - 1, den = u + 1 (mod p) */
	if (!BN_mod_sub(num, u, BN_value_one(), p, bctx) || !BN_mod_add(den, u, BN_value_one(), p, bctx))
		goto out;
	if (BN_is_zero(den)) {
		rc = PARLEY_E_BAD_KEY_SIGNATURE;
		goto out;
	}
	if (BN_mod_inverse(den, den, p, bctx) == NULL || !BN_mod_mul(y, num, den, p, bctx))
		goto out;
	if (BN_bn2lebinpad(y, y_out, 32) != 32)
		goto out;
	rc = PARLEY_OK;
out:
	BN_CTX_end(bctx);
	BN_CTX_free(bctx);
	return rc;
}

int crypto__xeddsa_verify(const uint8_t pub[CRYPTO_KEY_LEN], const uint8_t *msg, size_t msg_len,
			  const uint8_t sig[CRYPTO_SIG_LEN])
{
	uint8_t ed_pub[32], s_sig[CRYPTO_SIG_LEN];
	int rc;

	rc = crypto__init();
	if (rc != PARLEY_OK)
		return rc;
	rc = mont_u_to_ed_y(ed_pub, pub);
	if (rc != PARLEY_OK)
		return rc;
	ed_pub[31] |= (uint8_t)(sig[63] & 0x80);
	memcpy(s_sig, sig, sizeof(s_sig));
	s_sig[63] &= 0x7F;
	/* libsignal refuses s >= 2^253 before anything else */
	if ((s_sig[63] & 0xE0) != 0)
		return PARLEY_E_BAD_KEY_SIGNATURE;
	if (crypto_sign_ed25519_verify_detached(s_sig, msg, msg_len, ed_pub) != 0)
		return PARLEY_E_BAD_KEY_SIGNATURE;
	return PARLEY_OK;
}
