/* The thread event codec (lib/wire/threadev.c): round trip; every flipped byte and every truncation or
 * extension refused; a signature by another device key refused; the field rules of every kind refused
 * by the signer, and by the parser even under a valid signature (a record signed by hand). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "test.h"
#include "wire/be.h"
#include "wire/threadev.h"

#define INVALID PARLEY_E_THREAD_EVENT_INVALID

static uint8_t pk[32], sk[64];
static wire_threadev base;

static void make(uint8_t kind)
{
	memset(&base, 0, sizeof base);
	snprintf(base.entity, sizeof base.entity, "acme");
	base.kind = kind;
	base.thread_id = kind == WIRE_THREADEV_OPEN ? 0 : 77;
	base.version = kind == WIRE_THREADEV_OPEN ? 1 : 5;
	base.actor = 3;
	base.actor_device = 2;
	base.subject = kind == WIRE_THREADEV_UNLOCK || kind == WIRE_THREADEV_CLOSE ? 0
		       : kind == WIRE_THREADEV_LOCK                                ? 3
										   : 9;
	base.staff_version = 4;
	base.timestamp_ms = 1700000000000ull;
}

static int sign_base(uint8_t *buf, size_t *len)
{
	return wire__threadev_sign(&base, sk, buf, WIRE_THREADEV_MAX_BYTES, len);
}

static void test_round_trip(void)
{
	uint8_t buf[WIRE_THREADEV_MAX_BYTES + 1];
	size_t len = 0;
	wire_threadev ev;

	for (uint8_t kind = WIRE_THREADEV_OPEN; kind <= WIRE_THREADEV_HANDBACK; kind++) {
		make(kind);
		TEST_EQ_INT(sign_base(buf, &len), PARLEY_OK);
		TEST_EQ_INT(len, WIRE_THREADEV_FIXED + 4);
		TEST_EQ_INT(wire__threadev_verify(buf, len, pk, &ev), PARLEY_OK);
		TEST_EQ_MEM(&ev, &base, sizeof ev);
	}
	make(WIRE_THREADEV_ADD);
	TEST_EQ_INT(sign_base(buf, &len), PARLEY_OK);
	/* every flipped byte: refused, and the output zeroed */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x20;
		TEST_EQ_INT(wire__threadev_verify(buf, len, pk, &ev), INVALID);
		TEST_EQ_INT(ev.actor, 0);
		buf[i] ^= 0x20;
	}
	/* every truncation and one extra byte */
	for (size_t l = 0; l < len; l++)
		TEST_EQ_INT(wire__threadev_verify(buf, l, pk, &ev), INVALID);
	buf[len] = 0;
	TEST_EQ_INT(wire__threadev_verify(buf, len + 1, pk, &ev), INVALID);
	/* another device's key */
	uint8_t pk2[32], sk2[64];
	crypto_sign_keypair(pk2, sk2);
	TEST_EQ_INT(wire__threadev_verify(buf, len, pk2, &ev), INVALID);
	TEST_EQ_INT(wire__threadev_verify(buf, len, NULL, &ev), INVALID);
	/* parse alone does not look at the signature */
	buf[len - 1] ^= 1;
	TEST_EQ_INT(wire__threadev_parse(buf, len, &ev), PARLEY_OK);
	TEST_EQ_INT(ev.actor_device, 2);
	TEST_EQ_STR(wire__threadev_kind_name(WIRE_THREADEV_HANDBACK), "handback");
	TEST_EQ_STR(wire__threadev_kind_name(9), "unknown");
}

/* Signs `base` as it is, rules or not (what a hostile client could send), and checks the parser and
 * the verifier refuse it. */
static void refused_even_signed(void)
{
	wire_threadev ok = base, ev;
	uint8_t buf[WIRE_THREADEV_MAX_BYTES];
	size_t len;
	const uint8_t *p;

	/* a valid record of the same shape, then the broken fields written over it and signed again */
	ok.kind = WIRE_THREADEV_ADD;
	ok.thread_id = 1;
	ok.version = 2;
	ok.subject = ok.actor = 1;
	ok.actor_device = 1;
	ok.staff_version = 1;
	TEST_EQ_INT(wire__threadev_sign(&ok, sk, buf, sizeof buf, &len), PARLEY_OK);
	uint8_t *q = buf + WIRE_THREADEV_MAGIC_LEN;
	q = wire__put_be(q, base.thread_id, 8);
	q += 1 + strlen(base.entity);
	q = wire__put_be(q, base.version, 8);
	*q++ = base.kind;
	q = wire__put_be(q, base.subject, 8);
	q = wire__put_be(q, base.actor, 8);
	q = wire__put_be(q, base.actor_device, 4);
	q = wire__put_be(q, base.staff_version, 8);
	(void)q;
	p = buf;
	crypto_sign_detached(buf + len - 64, NULL, p, len - 64, sk);
	TEST_EQ_INT(wire__threadev_parse(buf, len, &ev), INVALID);
	TEST_EQ_INT(wire__threadev_verify(buf, len, pk, &ev), INVALID);
	TEST_EQ_INT(ev.kind, 0);
}

/* base breaks a rule: the signer refuses it, and so does the parser of a hand-signed copy */
static void broken(void)
{
	uint8_t buf[WIRE_THREADEV_MAX_BYTES];
	size_t len;
	TEST_EQ_INT(sign_base(buf, &len), INVALID);
	refused_even_signed();
}

static void test_rules(void)
{
	uint8_t buf[WIRE_THREADEV_MAX_BYTES];
	size_t len;

	make(WIRE_THREADEV_OPEN);
	base.thread_id = 5; /* the server assigns the id: an OPEN names none */
	broken();
	make(WIRE_THREADEV_OPEN);
	base.version = 2;
	broken();
	make(WIRE_THREADEV_OPEN);
	base.subject = 0;
	broken();
	make(WIRE_THREADEV_ADD);
	base.thread_id = 0;
	broken();
	make(WIRE_THREADEV_ADD);
	base.version = 1; /* only the OPEN is version 1 */
	broken();
	make(WIRE_THREADEV_ADD);
	base.subject = 0;
	broken();
	make(WIRE_THREADEV_REMOVE);
	base.subject = 0;
	broken();
	make(WIRE_THREADEV_HANDLING);
	base.subject = 0;
	broken();
	make(WIRE_THREADEV_LOCK);
	base.subject = 9; /* a lock is always the actor's own */
	broken();
	make(WIRE_THREADEV_UNLOCK);
	base.subject = 9;
	broken();
	make(WIRE_THREADEV_CLOSE);
	base.subject = 9;
	broken();
	make(WIRE_THREADEV_HANDBACK);
	base.subject = 0; /* back to the admins' queue: allowed */
	TEST_EQ_INT(sign_base(buf, &len), PARLEY_OK);
	for (unsigned k = 0; k < 256; k += (k == 0 ? 9 : 100)) {
		make(WIRE_THREADEV_ADD);
		base.kind = (uint8_t)k;
		broken();
	}
	make(WIRE_THREADEV_ADD);
	base.actor = 0;
	broken();
	make(WIRE_THREADEV_ADD);
	base.actor_device = 0;
	broken();
	make(WIRE_THREADEV_ADD);
	base.staff_version = 0;
	broken();
	make(WIRE_THREADEV_ADD);
	snprintf(base.entity, sizeof base.entity, "Bad_");
	TEST_EQ_INT(sign_base(buf, &len), INVALID);
	make(WIRE_THREADEV_ADD);
	TEST_EQ_INT(wire__threadev_sign(&base, sk, buf, sizeof buf - 1, &len), PARLEY_E_INVAL);
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
