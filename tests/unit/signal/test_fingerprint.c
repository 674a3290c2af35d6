/* Safety numbers: libsignal's own test vectors (fingerprint.rs, v0.24.0) and the error paths. */
#include <sodium.h>
#include <string.h>

#include <parley/error.h>
#include <parley/fingerprint.h>

#include "../test.h"

static const char *ALICE_IK = "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868";
static const char *BOB_IK = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b";
static const char *DISPLAY = "300354477692869396892869876765458257569162576843440918079131";
static const char *ALICE_SCAN_V1 = "080112220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61"
				   "df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d";
static const char *BOB_SCAN_V1 = "080112220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a"
				 "4d1a220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df";
static const char *ALICE_ID = "+14152222222";
static const char *BOB_ID = "+14153333333";

static uint8_t a_key[33], b_key[33];

static void unhex(uint8_t *out, size_t n, const char *hex)
{
	size_t got = 0;
	sodium_hex2bin(out, n, hex, strlen(hex), NULL, &got, NULL);
}

static parley_fingerprint *make(uint32_t version, int alice_local)
{
	parley_fingerprint *fp = NULL;
	const char *lid = alice_local ? ALICE_ID : BOB_ID, *rid = alice_local ? BOB_ID : ALICE_ID;
	const uint8_t *lk = alice_local ? a_key : b_key, *rk = alice_local ? b_key : a_key;
	int rc = parley_fingerprint_new(&fp, version, 5200, (const uint8_t *)lid, strlen(lid), lk, 33,
		(const uint8_t *)rid, strlen(rid), rk, 33);
	TEST_EQ_INT(rc, PARLEY_OK);
	return fp;
}

static void check_scan(const parley_fingerprint *fp, const char *hex, int version)
{
	uint8_t want[128];
	size_t want_len = 0, len = 0;
	sodium_hex2bin(want, sizeof want, hex, strlen(hex), NULL, &want_len, NULL);
	want[1] = (uint8_t)version; /* V1 and V2 vectors differ only in the version byte */
	const uint8_t *got = parley_fingerprint_scannable(fp, &len);
	TEST_EQ_INT(len, want_len);
	TEST_CHECK(got != NULL && len == want_len && memcmp(got, want, len) == 0);
}

static void test_vectors(void)
{
	for (int v = 1; v <= 2; v++) {
		parley_fingerprint *a = make((uint32_t)v, 1), *b = make((uint32_t)v, 0);
		TEST_EQ_STR(parley_fingerprint_display(a), DISPLAY);
		TEST_EQ_STR(parley_fingerprint_display(b), DISPLAY);
		check_scan(a, ALICE_SCAN_V1, v);
		check_scan(b, BOB_SCAN_V1, v);
		parley_fingerprint_free(a);
		parley_fingerprint_free(b);
	}
}

static void test_compare(void)
{
	parley_fingerprint *a = make(1, 1), *b = make(1, 0), *a2 = make(2, 1);
	size_t alen, blen;
	const uint8_t *as = parley_fingerprint_scannable(a, &alen), *bs = parley_fingerprint_scannable(b, &blen);
	int match = -1;

	TEST_EQ_INT(parley_fingerprint_compare(a, bs, blen, &match), PARLEY_OK);
	TEST_EQ_INT(match, 1);
	TEST_EQ_INT(parley_fingerprint_compare(b, as, alen, &match), PARLEY_OK);
	TEST_EQ_INT(match, 1);
	/* our own encoding is not "theirs": the halves are not crosswise */
	TEST_EQ_INT(parley_fingerprint_compare(a, as, alen, &match), PARLEY_OK);
	TEST_EQ_INT(match, 0);
	/* a different version is an error, not a mismatch */
	TEST_EQ_INT(parley_fingerprint_compare(a2, bs, blen, &match), PARLEY_E_BAD_VERSION);
	TEST_EQ_INT(match, 0);

	uint8_t bad[128];
	memcpy(bad, bs, blen);
	bad[blen - 1] ^= 1;
	TEST_EQ_INT(parley_fingerprint_compare(a, bad, blen, &match), PARLEY_OK);
	TEST_EQ_INT(match, 0);
	/* every truncation either fails to parse or lacks a field: never a match */
	for (size_t n = 0; n < blen; n++) {
		int rc = parley_fingerprint_compare(a, bs, n, &match);
		TEST_CHECK(rc != PARLEY_OK || match == 0);
	}
	/* unknown fields are skipped, as prost does */
	memcpy(bad, bs, blen);
	bad[blen] = 0x20; /* field 4, varint */
	bad[blen + 1] = 0x07;
	TEST_EQ_INT(parley_fingerprint_compare(a, bad, blen + 2, &match), PARLEY_OK);
	TEST_EQ_INT(match, 1);
	/* a length running past the end */
	const uint8_t overlong[] = {0x08, 0x01, 0x12, 0x7f, 0x0a};
	TEST_EQ_INT(parley_fingerprint_compare(a, overlong, sizeof overlong, &match), PARLEY_E_INVALID_MESSAGE);
	parley_fingerprint_free(a);
	parley_fingerprint_free(b);
	parley_fingerprint_free(a2);
}

static void test_errors(void)
{
	parley_fingerprint *fp = (parley_fingerprint *)1;
	uint8_t badkey[33];
	memcpy(badkey, a_key, 33);
	badkey[0] = 0x06;
	TEST_EQ_INT(parley_fingerprint_new(&fp, 1, 1, NULL, 0, a_key, 33, NULL, 0, b_key, 33), PARLEY_E_INVAL);
	TEST_CHECK(fp == NULL);
	TEST_EQ_INT(parley_fingerprint_new(&fp, 1, 1000001, NULL, 0, a_key, 33, NULL, 0, b_key, 33),
		PARLEY_E_INVAL);
	TEST_EQ_INT(parley_fingerprint_new(&fp, 1, 2, NULL, 0, badkey, 33, NULL, 0, b_key, 33),
		PARLEY_E_INVALID_KEY);
	TEST_EQ_INT(parley_fingerprint_new(&fp, 1, 2, NULL, 0, a_key, 32, NULL, 0, b_key, 33),
		PARLEY_E_INVALID_KEY);
	TEST_EQ_INT(parley_fingerprint_new(&fp, 1, 2, NULL, 0, a_key, 33, NULL, 0, b_key, 33), PARLEY_OK);
	TEST_EQ_INT(strlen(parley_fingerprint_display(fp)), 60);
	parley_fingerprint_free(fp);
	parley_fingerprint_free(NULL);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	unhex(a_key, 33, ALICE_IK);
	unhex(b_key, 33, BOB_IK);
	TEST_RUN(test_vectors);
	TEST_RUN(test_compare);
	TEST_RUN(test_errors);
	TEST_EXIT();
}
