/* The join approval codec (lib/wire/approval.c): round trip; every flipped byte and every truncation
 * or extension refused; a signature by another device key refused; the field rules refused by the
 * signer as by the verifier. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "test.h"
#include "wire/approval.h"

static uint8_t pk[32], sk[64];
static wire_approval base;

static void make(void)
{
	memset(&base, 0, sizeof base);
	snprintf(base.entity, sizeof base.entity, "acme");
	base.request_id = 7;
	base.candidate_id = 42;
	base.candidate_key[0] = 0x05;
	base.candidate_key[32] = 9;
	base.role = WIRE_ROLE_AGENT;
	wire__approval_devlist_hash((const uint8_t *)"list", 4, base.devlist_hash);
	base.approver_id = 3;
	base.approver_device = 2;
	base.timestamp_ms = 1700000000000ull;
}

static void test_round_trip(void)
{
	uint8_t buf[WIRE_APPROVAL_MAX_BYTES + 1];
	size_t len = 0;
	wire_approval a;

	make();
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf, &len), PARLEY_OK);
	TEST_EQ_INT(len, WIRE_APPROVAL_MAGIC_LEN + 1 + 4 + 102 + 64);
	TEST_EQ_INT(wire__approval_verify(buf, len, pk, &a), PARLEY_OK);
	TEST_EQ_MEM(&a, &base, sizeof a);
	/* every flipped byte: refused, and the output zeroed */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x20;
		TEST_EQ_INT(wire__approval_verify(buf, len, pk, &a), PARLEY_E_APPROVAL_INVALID);
		TEST_EQ_INT(a.request_id, 0);
		buf[i] ^= 0x20;
	}
	/* every truncation and one extra byte */
	for (size_t l = 0; l < len; l++)
		TEST_EQ_INT(wire__approval_verify(buf, l, pk, &a), PARLEY_E_APPROVAL_INVALID);
	buf[len] = 0;
	TEST_EQ_INT(wire__approval_verify(buf, len + 1, pk, &a), PARLEY_E_APPROVAL_INVALID);
	/* another device's key */
	uint8_t pk2[32], sk2[64];
	crypto_sign_keypair(pk2, sk2);
	TEST_EQ_INT(wire__approval_verify(buf, len, pk2, &a), PARLEY_E_APPROVAL_INVALID);
	/* parse alone does not look at the signature */
	buf[len - 1] ^= 1;
	TEST_EQ_INT(wire__approval_parse(buf, len, &a), PARLEY_OK);
	TEST_EQ_INT(a.approver_device, 2);
}

static void test_rules(void)
{
	uint8_t buf[WIRE_APPROVAL_MAX_BYTES];
	size_t len;

	make();
	base.role = 1; /* admins are added by the primary, not by an approval */
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf, &len), PARLEY_E_APPROVAL_INVALID);
	make();
	base.role = WIRE_ROLE_GATEWAY + 1;
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf, &len), PARLEY_E_APPROVAL_INVALID);
	make();
	base.role = WIRE_ROLE_GATEWAY; /* a gateway is approved like an agent (issue 11) */
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf, &len), PARLEY_OK);
	make();
	base.request_id = 0;
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf, &len), PARLEY_E_APPROVAL_INVALID);
	make();
	base.approver_device = 0;
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf, &len), PARLEY_E_APPROVAL_INVALID);
	make();
	base.candidate_key[0] = 0x04;
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf, &len), PARLEY_E_APPROVAL_INVALID);
	make();
	snprintf(base.entity, sizeof base.entity, "Bad Handle");
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf, &len), PARLEY_E_APPROVAL_INVALID);
	make();
	TEST_EQ_INT(wire__approval_sign(&base, sk, buf, sizeof buf - 1, &len), PARLEY_E_INVAL);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	TEST_RUN(test_round_trip);
	TEST_RUN(test_rules);
	TEST_EXIT();
}
