/* Safety numbers, following libsignal's fingerprint.rs (v0.24.0) byte for byte.
 *
 * The scannable form is a three-field protobuf (CombinedFingerprints { 1 version, 2 local, 3 remote },
 * each side a LogicalFingerprint { 1 content }). Its encoding is fixed, so it is written directly;
 * the decoder (over signal/pb.h) follows prost's rules (unknown fields skipped, last scalar wins,
 * repeated sub-messages merge) so that anything libsignal accepts we accept and vice versa.
 */
#include <string.h>

#include <sodium.h>

#include <parley/error.h>
#include <parley/fingerprint.h>

#include "common/alloc.h"
#include "signal/pb.h"

#define FP_KEY_LEN 33
#define FP_HASH_LEN 64
#define FP_SCAN_HASH_LEN 32
/* version varint (<= 5 bytes) + 2 * (tag, len, tag, len, 32 bytes) + tag */
#define FP_SCAN_MAX (1 + 5 + 2 * (4 + FP_SCAN_HASH_LEN))

struct parley_fingerprint {
	uint32_t version;
	uint8_t local[FP_HASH_LEN];
	uint8_t remote[FP_HASH_LEN];
	char display[PARLEY_FINGERPRINT_DISPLAY_LEN + 1];
	uint8_t scannable[FP_SCAN_MAX];
	size_t scannable_len;
};

static int check_key(const uint8_t *key, size_t len)
{
	if (key == NULL || len < FP_KEY_LEN || key[0] != 0x05)
		return PARLEY_E_INVALID_KEY;
	return PARLEY_OK;
}

/* H0 = SHA-512(0x0000 || key || id || key); Hi = SHA-512(H(i-1) || key). The two leading zero bytes
 * are libsignal's fixed "fingerprint version", unrelated to the scannable version number. */
static void hash_side(uint8_t out[FP_HASH_LEN], uint32_t iterations, const uint8_t *id, size_t id_len,
	const uint8_t *key)
{
	static const uint8_t zero2[2] = {0, 0};
	crypto_hash_sha512_state st;

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, zero2, sizeof zero2);
	crypto_hash_sha512_update(&st, key, FP_KEY_LEN);
	crypto_hash_sha512_update(&st, id, id_len);
	crypto_hash_sha512_update(&st, key, FP_KEY_LEN);
	crypto_hash_sha512_final(&st, out);
	for (uint32_t i = 1; i < iterations; i++) {
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, out, FP_HASH_LEN);
		crypto_hash_sha512_update(&st, key, FP_KEY_LEN);
		crypto_hash_sha512_final(&st, out);
	}
	sodium_memzero(&st, sizeof st);
}

/* Six 5-byte big-endian chunks, each mod 100000, as 5 zero-padded digits: 30 digits. */
static void encode_side(char out[30], const uint8_t hash[FP_HASH_LEN])
{
	for (int c = 0; c < 6; c++) {
		uint64_t x = 0;
		for (int b = 0; b < 5; b++)
			x = (x << 8) | hash[c * 5 + b];
		x %= 100000;
		for (int d = 4; d >= 0; d--) {
			out[c * 5 + d] = (char)('0' + x % 10);
			x /= 10;
		}
	}
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static size_t put_logical(uint8_t *p, uint8_t tag, const uint8_t hash[FP_SCAN_HASH_LEN])
{
	p[0] = tag;
	p[1] = 2 + FP_SCAN_HASH_LEN;
	p[2] = 0x0a; /* LogicalFingerprint.content, field 1, length-delimited */
	p[3] = FP_SCAN_HASH_LEN;
	memcpy(p + 4, hash, FP_SCAN_HASH_LEN);
	return 4 + FP_SCAN_HASH_LEN;
}

int parley_fingerprint_new(parley_fingerprint **out, uint32_t version, uint32_t iterations,
	const uint8_t *local_id, size_t local_id_len, const uint8_t *local_key, size_t local_key_len,
	const uint8_t *remote_id, size_t remote_id_len, const uint8_t *remote_key, size_t remote_key_len)
{
	parley_fingerprint *fp;
	char l[30], r[30];
	size_t n = 0;
	int rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	if (iterations <= 1 || iterations > 1000000)
		return PARLEY_E_INVAL;
	if ((local_id == NULL && local_id_len > 0) || (remote_id == NULL && remote_id_len > 0) ||
		local_id_len > PARLEY_FINGERPRINT_MAX_ID || remote_id_len > PARLEY_FINGERPRINT_MAX_ID)
		return PARLEY_E_INVAL;
	rc = check_key(local_key, local_key_len);
	if (rc == PARLEY_OK)
		rc = check_key(remote_key, remote_key_len);
	if (rc != PARLEY_OK)
		return rc;
	fp = parley__calloc(1, sizeof *fp);
	if (fp == NULL)
		return PARLEY_E_NOMEM;

	fp->version = version;
	hash_side(fp->local, iterations, local_id ? local_id : (const uint8_t *)"", local_id_len, local_key);
	hash_side(fp->remote, iterations, remote_id ? remote_id : (const uint8_t *)"", remote_id_len,
		remote_key);

	/* Both users must print the same number, so the smaller 30-digit half always comes first. */
	encode_side(l, fp->local);
	encode_side(r, fp->remote);
	if (memcmp(l, r, 30) < 0) {
		memcpy(fp->display, l, 30);
		memcpy(fp->display + 30, r, 30);
	} else {
		memcpy(fp->display, r, 30);
		memcpy(fp->display + 30, l, 30);
	}
	fp->display[PARLEY_FINGERPRINT_DISPLAY_LEN] = '\0';

	/* prost writes every set optional field in tag order, version included even when it is 0. */
	fp->scannable[n++] = 0x08;
	n += put_varint(fp->scannable + n, version);
	n += put_logical(fp->scannable + n, 0x12, fp->local);
	n += put_logical(fp->scannable + n, 0x1a, fp->remote);
	fp->scannable_len = n;
	*out = fp;
	return PARLEY_OK;
}

const char *parley_fingerprint_display(const parley_fingerprint *fp)
{
	return fp ? fp->display : "";
}

const uint8_t *parley_fingerprint_scannable(const parley_fingerprint *fp, size_t *len)
{
	if (fp == NULL) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = fp->scannable_len;
	return fp->scannable;
}

void parley_fingerprint_free(parley_fingerprint *fp)
{
	if (fp == NULL)
		return;
	sodium_memzero(fp, sizeof *fp);
	parley__free(fp);
}

/* --- scannable decoding (prost semantics over signal/pb.h) --- */

typedef struct pb_span {
	const uint8_t *p;
	size_t len;
	int set;
} pb_span;

/* LogicalFingerprint: keep the last `content` (merging with what an earlier occurrence set). */
static int parse_logical(const uint8_t *buf, size_t len, pb_span *content)
{
	pb_reader r;
	pb_field f;
	int rc;

	pb__reader_init(&r, buf, len);
	while ((rc = pb__next(&r, &f)) == 1) {
		if (f.num != 1)
			continue;
		if (f.wire != PB_LEN)
			return -1;
		content->p = f.data;
		content->len = f.len;
		content->set = 1;
	}
	return rc;
}

typedef struct combined {
	int has_version;
	uint32_t version;
	int has_local, has_remote;
	pb_span local, remote;
} combined;

static int parse_combined(const uint8_t *buf, size_t len, combined *c)
{
	pb_reader r;
	pb_field f;
	int rc;

	memset(c, 0, sizeof *c);
	pb__reader_init(&r, buf, len);
	while ((rc = pb__next(&r, &f)) == 1) {
		if (f.num == 1) {
			if (f.wire != PB_VARINT)
				return -1;
			c->has_version = 1;
			c->version = (uint32_t)f.v; /* prost truncates a wider varint to u32 */
		} else if (f.num == 2 || f.num == 3) {
			if (f.wire != PB_LEN)
				return -1;
			if (parse_logical(f.data, f.len, f.num == 2 ? &c->local : &c->remote) != 0)
				return -1;
			if (f.num == 2)
				c->has_local = 1;
			else
				c->has_remote = 1;
		}
	}
	return rc;
}

static int ct_equal(pb_span s, const uint8_t *ours, size_t n)
{
	if (!s.set || s.len != n)
		return 0;
	return sodium_memcmp(s.p, ours, n) == 0;
}

int parley_fingerprint_compare(const parley_fingerprint *fp, const uint8_t *theirs, size_t theirs_len,
	int *match)
{
	combined c;
	int same1, same2;

	if (match == NULL)
		return PARLEY_E_INVAL;
	*match = 0;
	if (fp == NULL || (theirs == NULL && theirs_len > 0))
		return PARLEY_E_INVAL;
	if (parse_combined(theirs, theirs_len, &c) != 0)
		return PARLEY_E_INVALID_MESSAGE;
	/* libsignal treats a missing version as 0, then insists on equality. */
	if ((c.has_version ? c.version : 0) != fp->version)
		return PARLEY_E_BAD_VERSION;
	if (!c.has_local || !c.has_remote || !c.local.set || !c.remote.set)
		return PARLEY_E_INVALID_MESSAGE;
	same1 = ct_equal(c.local, fp->remote, FP_SCAN_HASH_LEN);
	same2 = ct_equal(c.remote, fp->local, FP_SCAN_HASH_LEN);
	*match = same1 & same2;
	return PARLEY_OK;
}
