/* The signed staff list codec (lib/wire/stafflist.c): round trip; every flipped byte and every
 * truncation refused; the structural rules (order, exactly one primary who is an admin, bounds) refused
 * by the signer as by the verifier; the effective rules. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "test.h"
#include "wire/stafflist.h"

static crypto_keypair ek;
static wire_staff_member mem[3];
static wire_stafflist base;
static const uint8_t fake_devlist[40] = {1, 2, 3};

static void make(void)
{
	const char *h[3] = {"alice", "bob", "carol"};

	memset(&base, 0, sizeof base);
	memset(mem, 0, sizeof mem);
	base.entity_id = 9;
	snprintf(base.handle, sizeof base.handle, "acme");
	snprintf(base.display_name, sizeof base.display_name, "Acme Support");
	crypto__pubkey_serialize(base.entity_key, ek.pub);
	base.version = 4;
	base.timestamp_ms = 1700000000000ull;
	base.default_flags = WIRE_RULE_MAY_INITIATE;
	base.lock_mode = 1;
	base.n = 3;
	base.members = mem;
	for (int i = 0; i < 3; i++) {
		mem[i].account_id = (uint64_t)(10 * (i + 1));
		snprintf(mem[i].handle, sizeof mem[i].handle, "%s", h[i]);
		mem[i].role = i == 0 ? WIRE_ROLE_ADMIN : WIRE_ROLE_AGENT;
		mem[i].account_key[0] = 0x05;
		mem[i].account_key[1] = (uint8_t)i;
	}
	mem[0].flags = WIRE_STAFF_PRIMARY;
	mem[1].devlist = fake_devlist;
	mem[1].devlist_len = sizeof fake_devlist;
	mem[2].rules_mask = WIRE_RULE_MAY_INITIATE | WIRE_RULE_MAY_PAY;
	mem[2].rules_values = WIRE_RULE_MAY_PAY;
}

static void test_round_trip(void)
{
	dynbuf b;
	wire_stafflist l;

	make();
	dynbuf__init(&b, WIRE_STAFFLIST_MAX_BYTES);
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_OK);
	TEST_EQ_INT(wire__stafflist_verify(b.data, b.len, &l), PARLEY_OK);
	TEST_EQ_INT(l.entity_id, 9);
	TEST_EQ_STR(l.handle, "acme");
	TEST_EQ_STR(l.display_name, "Acme Support");
	TEST_EQ_INT(l.version, 4);
	TEST_EQ_INT(l.n, 3);
	TEST_EQ_STR(l.members[2].handle, "carol");
	TEST_EQ_INT(l.members[1].devlist_len, sizeof fake_devlist);
	TEST_CHECK(l.members[1].devlist >= b.data && l.members[1].devlist < b.data + b.len);
	TEST_EQ_MEM(l.members[1].devlist, fake_devlist, sizeof fake_devlist);
	TEST_CHECK(wire__stafflist_find(&l, 20) == &l.members[1]);
	TEST_CHECK(wire__stafflist_find(&l, 21) == NULL);
	/* carol: may_initiate overridden off, may_pay on; bob: the defaults */
	TEST_EQ_INT(wire__stafflist_effective_rules(&l, &l.members[2]), WIRE_RULE_MAY_PAY);
	TEST_EQ_INT(wire__stafflist_effective_rules(&l, &l.members[1]), WIRE_RULE_MAY_INITIATE);
	wire__stafflist_free(&l);
	/* every flipped byte and every truncation is refused */
	int bad = 0;
	for (size_t i = 0; i < b.len; i++) {
		b.data[i] ^= 0x01;
		bad += wire__stafflist_verify(b.data, b.len, &l) != PARLEY_E_STAFF_LIST_INVALID;
		b.data[i] ^= 0x01;
	}
	for (size_t n = 0; n < b.len; n++)
		bad += wire__stafflist_verify(b.data, n, &l) != PARLEY_E_STAFF_LIST_INVALID;
	TEST_EQ_INT(bad, 0);
	TEST_EQ_INT(l.n, 0); /* zeroed on failure */
	dynbuf__free(&b);
}

static void test_rules(void)
{
	crypto_keypair other;
	dynbuf b;

	dynbuf__init(&b, WIRE_STAFFLIST_MAX_BYTES);
	make();
	mem[1].account_id = 5; /* not ascending */
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	mem[1].flags = WIRE_STAFF_PRIMARY; /* two primaries */
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	mem[0].flags = 0; /* none */
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	mem[0].role = WIRE_ROLE_AGENT; /* a primary agent */
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	mem[2].role = WIRE_ROLE_GATEWAY + 1;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	mem[2].role = WIRE_ROLE_GATEWAY; /* a gateway member (issue 11) is a valid role... */
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_OK);
	b.len = 0;
	make();
	mem[2].role = WIRE_ROLE_GATEWAY; /* ...but never the primary */
	mem[2].flags = WIRE_STAFF_PRIMARY;
	mem[0].flags = 0;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	base.version = 0;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	base.display_name[0] = '\0';
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	mem[1].devlist_len = WIRE_DEVLIST_MAX_BYTES + 1;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	base.n = 0;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	mem[2].rules_values |= WIRE_RULE_DEFAULT_AGENT; /* a value outside the member's mask */
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	crypto__keypair_generate(&other); /* not the listed key */
	TEST_EQ_INT(wire__stafflist_sign(&base, other.priv, &b), PARLEY_E_INVALID_KEY);
	TEST_EQ_INT(b.len, 0);
	dynbuf__free(&b);
}

/* The two rule bits of issue 10 (MAY_TRANSFER 8, SHOW_NAME 16) travel like the first three, as entity
 * defaults and as member overrides; a bit above PARLEY_RULE_ALL (32) is still refused in either place. */
static void test_transfer_show_name(void)
{
	dynbuf b;
	wire_stafflist l;

	dynbuf__init(&b, WIRE_STAFFLIST_MAX_BYTES);
	make();
	base.default_flags = WIRE_RULE_MAY_TRANSFER;
	mem[1].rules_mask = WIRE_RULE_MAY_TRANSFER | WIRE_RULE_SHOW_NAME; /* bob: transfer off, name on */
	mem[1].rules_values = WIRE_RULE_SHOW_NAME;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_OK);
	TEST_EQ_INT(wire__stafflist_verify(b.data, b.len, &l), PARLEY_OK);
	TEST_EQ_INT(l.default_flags, WIRE_RULE_MAY_TRANSFER);
	TEST_EQ_INT(wire__stafflist_effective_rules(&l, &l.members[1]), WIRE_RULE_SHOW_NAME);
	TEST_EQ_INT(wire__stafflist_effective_rules(&l, &l.members[0]), WIRE_RULE_MAY_TRANSFER);
	wire__stafflist_free(&l);
	make();
	base.default_flags = 32;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	make();
	mem[1].rules_mask = mem[1].rules_values = 32;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_E_STAFF_LIST_INVALID);
	dynbuf__free(&b);
}

/* A gateway (issue 11) is a member of the list but never staff: no rule applies to it, whatever the
 * entity defaults or its own overrides say, and the staff lookup does not find it. */
static void test_gateway(void)
{
	dynbuf b;
	wire_stafflist l;

	dynbuf__init(&b, WIRE_STAFFLIST_MAX_BYTES);
	make();
	base.default_flags = WIRE_RULE_ALL;
	mem[2].role = WIRE_ROLE_GATEWAY;
	mem[2].rules_mask = mem[2].rules_values = WIRE_RULE_DEFAULT_AGENT | WIRE_RULE_MAY_PAY;
	TEST_EQ_INT(wire__stafflist_sign(&base, ek.priv, &b), PARLEY_OK);
	TEST_EQ_INT(wire__stafflist_verify(b.data, b.len, &l), PARLEY_OK);
	TEST_EQ_INT(l.members[2].role, WIRE_ROLE_GATEWAY);
	TEST_EQ_INT(wire__stafflist_effective_rules(&l, &l.members[2]), 0);
	TEST_EQ_INT(wire__stafflist_effective_rules(&l, &l.members[1]), WIRE_RULE_ALL);
	TEST_CHECK(wire__stafflist_find(&l, 30) == &l.members[2]);
	TEST_CHECK(wire__stafflist_staff(&l, 30) == NULL);
	TEST_CHECK(wire__stafflist_staff(&l, 20) == &l.members[1]);
	wire__stafflist_free(&l);
	dynbuf__free(&b);
}

int main(void)
{
	crypto__init();
	crypto__keypair_generate(&ek);
	TEST_RUN(test_round_trip);
	TEST_RUN(test_rules);
	TEST_RUN(test_transfer_show_name);
	TEST_RUN(test_gateway);
	TEST_EXIT();
}
