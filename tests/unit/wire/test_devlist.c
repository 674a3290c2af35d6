/* lib/wire/devlist: the signed device list record (docs/protocol.md §11.1). Round trip, and every way a
 * record can be wrong is refused with PARLEY_E_DEVICE_LIST_INVALID: each byte flipped, each truncation,
 * unsorted or duplicate ids, n 0 or 65, a bad handle, trailing bytes, a different signer. */
#include <string.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "test.h"
#include "wire/devlist.h"

static crypto_keypair ak;

static void make_list(wire_devlist *l, size_t n)
{
	memset(l, 0, sizeof(*l));
	l->account_id = 0x0102030405060708ull;
	memcpy(l->handle, "alice", 6);
	crypto__pubkey_serialize(l->account_key, ak.pub);
	l->version = 7;
	l->timestamp_ms = 1764000000000ull;
	l->n = n;
	for (size_t i = 0; i < n; i++) {
		l->dev[i].device_id = (uint32_t)(i * 3 + 1);
		l->dev[i].identity_key[0] = 0x05;
		memset(l->dev[i].identity_key + 1, (int)(0x10 + i), 32);
		memset(l->dev[i].device_key, (int)(0x80 + i), 32);
	}
}

static void test_round_trip(void)
{
	wire_devlist l, v;
	dynbuf b;
	make_list(&l, 3);
	dynbuf__init(&b, WIRE_DEVLIST_MAX_BYTES);
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_OK);
	TEST_EQ_INT(b.len, WIRE_DEVLIST_MAGIC_LEN + 8 + 1 + 5 + 33 + 8 + 8 + 1 + 3 * 69 + 64);
	TEST_EQ_INT(wire__devlist_verify(b.data, b.len, &v), PARLEY_OK);
	TEST_EQ_INT(v.account_id, l.account_id);
	TEST_EQ_STR(v.handle, "alice");
	TEST_EQ_MEM(v.account_key, l.account_key, 33);
	TEST_EQ_INT(v.version, 7);
	TEST_EQ_INT(v.timestamp_ms, l.timestamp_ms);
	TEST_EQ_INT(v.n, 3);
	TEST_EQ_MEM(v.dev, l.dev, 3 * sizeof(l.dev[0]));
	TEST_CHECK(wire__devlist_find(&v, 4) == &v.dev[1]);
	TEST_CHECK(wire__devlist_find(&v, 1) == &v.dev[0]);
	TEST_CHECK(wire__devlist_find(&v, 7) == &v.dev[2]);
	TEST_CHECK(wire__devlist_find(&v, 2) == NULL);
	TEST_CHECK(wire__devlist_find(&v, 0) == NULL);
	TEST_CHECK(wire__devlist_find(&v, 99) == NULL);
	TEST_CHECK(wire__devlist_find(NULL, 1) == NULL);

	/* the largest list fits WIRE_DEVLIST_MAX_BYTES exactly (a 32-byte handle, 64 devices) */
	make_list(&l, WIRE_DEVLIST_MAX);
	memcpy(l.handle, "abcdefghijklmnopqrstuvwxyz012345", 33);
	dynbuf__reset(&b);
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_OK);
	TEST_EQ_INT(b.len, WIRE_DEVLIST_MAX_BYTES);
	TEST_EQ_INT(wire__devlist_verify(b.data, b.len, &v), PARLEY_OK);
	TEST_CHECK(wire__devlist_find(&v, 63 * 3 + 1) == &v.dev[63]);
	dynbuf__free(&b);
}

static void test_every_byte_flipped(void)
{
	wire_devlist l, v;
	dynbuf b;
	make_list(&l, 2);
	dynbuf__init(&b, WIRE_DEVLIST_MAX_BYTES);
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_OK);
	size_t bad = 0;
	for (size_t i = 0; i < b.len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			b.data[i] ^= (uint8_t)(1u << bit);
			if (wire__devlist_verify(b.data, b.len, &v) == PARLEY_E_DEVICE_LIST_INVALID)
				bad++;
			b.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	TEST_EQ_INT(bad, b.len * 8);
	TEST_EQ_INT(wire__devlist_verify(b.data, b.len, &v), PARLEY_OK);
	dynbuf__free(&b);
}

static void test_truncated_and_trailing(void)
{
	wire_devlist l, v;
	dynbuf b;
	make_list(&l, 4);
	dynbuf__init(&b, WIRE_DEVLIST_MAX_BYTES + 1);
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_OK);
	size_t bad = 0;
	for (size_t n = 0; n < b.len; n++)
		if (wire__devlist_verify(b.data, n, &v) == PARLEY_E_DEVICE_LIST_INVALID)
			bad++;
	TEST_EQ_INT(bad, b.len);
	TEST_EQ_INT(v.n, 0); /* zeroed on failure */
	uint8_t z = 0;
	TEST_EQ_INT(dynbuf__append(&b, &z, 1), PARLEY_OK);
	TEST_EQ_INT(wire__devlist_verify(b.data, b.len, &v), PARLEY_E_DEVICE_LIST_INVALID);
	TEST_EQ_INT(wire__devlist_verify(NULL, 0, &v), PARLEY_E_DEVICE_LIST_INVALID);
	TEST_EQ_INT(wire__devlist_verify(b.data, b.len, NULL), PARLEY_E_INVAL);
	dynbuf__free(&b);
}

/* Patches a field of a signed record and re-signs it (the signature is valid, the structure is not). */
static int resign_verify(uint8_t *rec, size_t len)
{
	wire_devlist v;
	TEST_EQ_INT(crypto__xeddsa_sign(rec + len - 64, ak.priv, rec, len - 64), PARLEY_OK);
	return wire__devlist_verify(rec, len, &v);
}

static void test_structure(void)
{
	wire_devlist l;
	dynbuf b;
	dynbuf__init(&b, WIRE_DEVLIST_MAX_BYTES);

	/* the signer refuses what a verifier would refuse */
	make_list(&l, 3);
	l.dev[2].device_id = l.dev[1].device_id; /* duplicate */
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_E_DEVICE_LIST_INVALID);
	l.dev[2].device_id = 2; /* unsorted */
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_E_DEVICE_LIST_INVALID);
	make_list(&l, 0);
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_E_DEVICE_LIST_INVALID);
	make_list(&l, 2);
	l.n = WIRE_DEVLIST_MAX + 1;
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_E_DEVICE_LIST_INVALID);
	make_list(&l, 2);
	l.version = 0;
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_E_DEVICE_LIST_INVALID);
	const char *bad_handles[] = {"", "ab", "Alice", "1alice", "al ice", "abcdefghijklmnopqrstuvwxyz0123456"};
	for (size_t i = 0; i < sizeof(bad_handles) / sizeof(bad_handles[0]); i++) {
		make_list(&l, 2);
		memset(l.handle, 0, sizeof(l.handle));
		memcpy(l.handle, bad_handles[i], strlen(bad_handles[i]) < 32 ? strlen(bad_handles[i]) : 32);
		if (strlen(bad_handles[i]) > 32)
			memset(l.handle, 'a', sizeof(l.handle)); /* no terminator at all */
		TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_E_DEVICE_LIST_INVALID);
	}
	make_list(&l, 2);
	l.dev[0].identity_key[0] = 0x06;
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_E_DEVICE_LIST_INVALID);
	/* a key that is not the list's account key */
	crypto_keypair other;
	TEST_EQ_INT(crypto__keypair_generate(&other), PARLEY_OK);
	make_list(&l, 2);
	TEST_EQ_INT(wire__devlist_sign(&l, other.priv, &b), PARLEY_E_INVALID_KEY);
	TEST_EQ_INT(b.len, 0);

	/* the verifier refuses well-signed records that break the structure */
	make_list(&l, 3);
	TEST_EQ_INT(wire__devlist_sign(&l, ak.priv, &b), PARLEY_OK);
	uint8_t rec[WIRE_DEVLIST_MAX_BYTES];
	size_t len = b.len, ids = WIRE_DEVLIST_MAGIC_LEN + 8 + 1 + 5 + 33 + 8 + 8 + 1;
	memcpy(rec, b.data, len);
	TEST_EQ_INT(resign_verify(rec, len), PARLEY_OK); /* the patching itself is sound */
	memcpy(rec + ids + 69, rec + ids, 4);              /* id 2 == id 1: duplicate */
	TEST_EQ_INT(resign_verify(rec, len), PARLEY_E_DEVICE_LIST_INVALID);
	memcpy(rec, b.data, len);
	rec[ids + 69 + 3] = 0; /* id 2 < id 1: unsorted */
	TEST_EQ_INT(resign_verify(rec, len), PARLEY_E_DEVICE_LIST_INVALID);
	memcpy(rec, b.data, len);
	rec[WIRE_DEVLIST_MAGIC_LEN + 8 + 1] = 'A'; /* handle "Alice" */
	TEST_EQ_INT(resign_verify(rec, len), PARLEY_E_DEVICE_LIST_INVALID);
	memcpy(rec, b.data, len);
	memset(rec + ids - 17, 0, 8); /* version 0 */
	TEST_EQ_INT(resign_verify(rec, len), PARLEY_E_DEVICE_LIST_INVALID);
	/* n = 0 with no entries, n = 65 with 65 entries: each consistent in length, both refused */
	uint8_t big[WIRE_DEVLIST_MAX_BYTES + 2 * 69];
	memcpy(big, b.data, ids);
	big[ids - 1] = 0;
	TEST_EQ_INT(resign_verify(big, ids + 64), PARLEY_E_DEVICE_LIST_INVALID);
	big[ids - 1] = 65;
	for (uint32_t i = 0; i < 65; i++) {
		memcpy(big + ids + i * 69, b.data + ids, 69);
		big[ids + i * 69 + 3] = (uint8_t)(i + 1);
	}
	TEST_EQ_INT(resign_verify(big, ids + 65 * 69 + 64), PARLEY_E_DEVICE_LIST_INVALID);
	dynbuf__free(&b);
}

int main(void)
{
	TEST_CHECK(crypto__init() == PARLEY_OK);
	TEST_CHECK(crypto__keypair_generate(&ak) == PARLEY_OK);
	TEST_RUN(test_round_trip);
	TEST_RUN(test_every_byte_flipped);
	TEST_RUN(test_truncated_and_trailing);
	TEST_RUN(test_structure);
	TEST_EXIT();
}
