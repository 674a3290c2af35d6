/* The registration proof of work (docs/protocol.md §5.3): a cost a client pays per account, bound to
 * the connection's challenge (so it cannot be computed ahead or reused) and to the handle and key it
 * registers. Shared by parleyd (check) and libparley (solve) so they cannot drift apart. */
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "wire/wire.h"

#define POW_DOMAIN "parley-register-pow-v1"

/* BLAKE2b-256(domain\0 || nonce || u8 len(handle) || handle || key || pow) */
static int pow_hash(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle, const uint8_t key[WIRE_KEY_LEN],
		    const uint8_t *pow, size_t pow_len, uint8_t out[32])
{
	crypto_generichash_state st;
	size_t hl = strlen(handle);
	uint8_t l = (uint8_t)hl;
	if (hl > 255)
		return PARLEY_E_INVAL;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)POW_DOMAIN, sizeof(POW_DOMAIN));
	crypto_generichash_update(&st, nonce, WIRE_NONCE_LEN);
	crypto_generichash_update(&st, &l, 1);
	crypto_generichash_update(&st, (const uint8_t *)handle, hl);
	crypto_generichash_update(&st, key, WIRE_KEY_LEN);
	crypto_generichash_update(&st, pow, pow_len);
	crypto_generichash_final(&st, out, 32);
	return PARLEY_OK;
}

static int leading_zero_bits_at_least(const uint8_t h[32], unsigned bits)
{
	unsigned i = 0;
	for (; bits >= 8; bits -= 8, i++)
		if (h[i] != 0)
			return 0;
	return bits == 0 || (h[i] >> (8 - bits)) == 0;
}

int wire__register_pow_check(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle,
			     const uint8_t key[WIRE_KEY_LEN], const uint8_t *pow, size_t pow_len, unsigned bits)
{
	uint8_t h[32];
	if (bits == 0)
		return 1;
	if (handle == NULL || pow_len == 0 || pow_len > WIRE_POW_MAX_LEN || bits > WIRE_POW_MAX_BITS ||
	    pow_hash(nonce, handle, key, pow, pow_len, h) != PARLEY_OK)
		return 0;
	return leading_zero_bits_at_least(h, bits);
}

int wire__register_pow_solve(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle,
			     const uint8_t key[WIRE_KEY_LEN], unsigned bits, uint8_t pow[WIRE_POW_LEN])
{
	uint8_t h[32];
	if (handle == NULL || bits > WIRE_POW_MAX_BITS)
		return PARLEY_E_UNSUPPORTED;
	/* expected 2^bits tries; the 64-bit counter cannot run out first */
	for (uint64_t n = 0;; n++) {
		for (int i = 0; i < WIRE_POW_LEN; i++)
			pow[i] = (uint8_t)(n >> (8 * i));
		int rc = pow_hash(nonce, handle, key, pow, WIRE_POW_LEN, h);
		if (rc != PARLEY_OK)
			return rc;
		if (leading_zero_bits_at_least(h, bits))
			return PARLEY_OK;
	}
}
