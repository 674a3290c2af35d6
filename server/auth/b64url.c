/* base64url without padding (RFC 7515 §2), strict: one accepted encoding per byte string. A lenient
 * decoder would let two different token strings verify as the same signed bytes, which breaks every
 * "same token" comparison (credential hashes, replay keys) made on the string. */
#include "auth/jose.h"

#include <parley/error.h>
#include <pthread.h>
#include <string.h>

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int jose__b64url_encode(char *out, size_t cap, size_t *out_len, const uint8_t *in, size_t n)
{
	if (n > (SIZE_MAX - 4) / 4 * 3 || cap < JOSE_B64URL_LEN(n) + 1)
		return PARLEY_E_TOO_LARGE;
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url_alphabet[v >> 18];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (n - i == 1) {
		out[o++] = b64url_alphabet[in[i] >> 2];
		out[o++] = b64url_alphabet[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
		out[o++] = b64url_alphabet[v >> 10];
		out[o++] = b64url_alphabet[(v >> 4) & 63];
		out[o++] = b64url_alphabet[(v & 15) << 2];
	}
	out[o] = '\0';
	if (out_len)
		*out_len = o;
	return PARLEY_OK;
}

/* 6-bit values by character, -1 outside the url-safe alphabet (including '=', '+', '/'); built from the
 * alphabet at first use so the two directions cannot disagree. A table, not a chain of range tests:
 * decoding is a visible share of a token's verification (docs/benchmarks.md). */
static int8_t b64url_table[256];

static void b64url_table_init(void)
{
	memset(b64url_table, -1, sizeof(b64url_table));
	for (int i = 0; i < 64; i++)
		b64url_table[(unsigned char)b64url_alphabet[i]] = (int8_t)i;
}

int jose__b64url_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t n)
{
	if (n % 4 == 1)
		return PARLEY_E_INVAL; /* 6 bits cannot make a byte */
	size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (need > cap)
		return PARLEY_E_TOO_LARGE;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, b64url_table_init);
	size_t o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_table[(unsigned char)in[i]];
		if (v < 0)
			return PARLEY_E_INVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* the 2 or 4 leftover bits of a partial quantum must be zero (RFC 4648 §3.5 canonical form) */
	if (acc != 0)
		return PARLEY_E_INVAL;
	if (out_len)
		*out_len = o;
	return PARLEY_OK;
}
