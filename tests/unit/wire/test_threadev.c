/* The thread event codec (lib/wire/threadev.c): round trip; every flipped byte and every truncation or
 * extension refused; a signature by another device key refused; the field rules of every kind refused
 * by the signer, and by the parser even under a valid signature (a record signed by hand). A channel
 * OPEN (v2): the documented layout byte for byte, its round trip, and every malformed or misplaced
 * channel customer refused even when validly signed; a native event is still the v1 layout. */
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

/* ---- channel OPEN (v2) ---- */

/* A record written by hand from the documented layout (docs/protocol.md §13.1, §13.6), validly signed
 * by sk whatever its fields: magic, then base's fields, then (when ulen >= 0) channel and a channel user
 * of ulen bytes taken from user. Independent of the codec, so it pins the bytes the codec must produce
 * and lets a test send what a hostile signer could. */
static size_t by_hand(uint8_t *buf, const char *magic, const wire_threadev *e, int channel, int ulen, const char *user)
{
	uint8_t *q = buf;
	memcpy(q, magic, WIRE_THREADEV_MAGIC_LEN);
	q += WIRE_THREADEV_MAGIC_LEN;
	q = wire__put_be(q, e->thread_id, 8);
	*q++ = (uint8_t)strlen(e->entity);
	memcpy(q, e->entity, strlen(e->entity));
	q += strlen(e->entity);
	q = wire__put_be(q, e->version, 8);
	*q++ = e->kind;
	q = wire__put_be(q, e->subject, 8);
	q = wire__put_be(q, e->actor, 8);
	q = wire__put_be(q, e->actor_device, 4);
	q = wire__put_be(q, e->staff_version, 8);
	q = wire__put_be(q, e->timestamp_ms, 8);
	if (ulen >= 0) {
		*q++ = (uint8_t)channel;
		*q++ = (uint8_t)ulen;
		memcpy(q, user, (size_t)ulen);
		q += ulen;
	}
	crypto_sign_detached(q, NULL, buf, (size_t)(q - buf), sk);
	return (size_t)(q - buf) + 64;
}

static void open_channel(uint32_t channel, const char *user)
{
	make(WIRE_THREADEV_OPEN);
	base.subject = base.actor;
	base.channel = channel;
	snprintf(base.channel_user, sizeof base.channel_user, "%s", user);
}

static void test_channel_round_trip(void)
{
	static const struct {
		uint32_t channel;
		const char *user;
	} ok[] = {{1, "sess-42 / tab 1"}, {2, "+15551234567"}, {3, "+441234567890"}, {4, "x"}};
	uint8_t buf[WIRE_THREADEV_MAX_BYTES + 1], hand[WIRE_THREADEV_MAX_BYTES + 8];
	char u64[WIRE_CHANNEL_USER_MAX + 1];
	size_t len = 0, hlen;
	wire_threadev ev;

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		open_channel(ok[i].channel, ok[i].user);
		TEST_EQ_INT(sign_base(buf, &len), PARLEY_OK);
		TEST_EQ_INT(len, WIRE_THREADEV_FIXED + 4 + 2 + strlen(ok[i].user));
		/* the documented bytes, exactly (Ed25519 is deterministic) */
		hlen = by_hand(hand, WIRE_THREADEV_MAGIC_CHANNEL, &base, (int)ok[i].channel, (int)strlen(ok[i].user),
			       ok[i].user);
		TEST_EQ_INT(hlen, len);
		TEST_EQ_MEM(hand, buf, len);
		TEST_EQ_INT(wire__threadev_verify(buf, len, pk, &ev), PARLEY_OK);
		TEST_EQ_MEM(&ev, &base, sizeof ev);
	}
	/* the longest channel user and the longest handle: WIRE_THREADEV_MAX_BYTES */
	memset(u64, 'u', WIRE_CHANNEL_USER_MAX);
	u64[WIRE_CHANNEL_USER_MAX] = '\0';
	open_channel(1, u64);
	memset(base.entity, 'a', WIRE_MAX_HANDLE);
	base.entity[WIRE_MAX_HANDLE] = '\0';
	TEST_EQ_INT(sign_base(buf, &len), PARLEY_OK);
	TEST_EQ_INT(len, WIRE_THREADEV_MAX_BYTES);
	TEST_EQ_INT(wire__threadev_verify(buf, len, pk, &ev), PARLEY_OK);
	TEST_EQ_STR(ev.channel_user, u64);
	/* every flipped byte, every truncation, one extra byte: refused, output zeroed */
	open_channel(2, "+15551234567");
	TEST_EQ_INT(sign_base(buf, &len), PARLEY_OK);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x20;
		TEST_EQ_INT(wire__threadev_verify(buf, len, pk, &ev), INVALID);
		TEST_EQ_INT(ev.channel, 0);
		TEST_EQ_INT(ev.channel_user[0], 0);
		buf[i] ^= 0x20;
	}
	for (size_t l = 0; l < len; l++)
		TEST_EQ_INT(wire__threadev_verify(buf, l, pk, &ev), INVALID);
	buf[len] = 0;
	TEST_EQ_INT(wire__threadev_verify(buf, len + 1, pk, &ev), INVALID);
	/* a native event is the v1 layout, byte for byte, as before channels existed */
	for (uint8_t kind = WIRE_THREADEV_OPEN; kind <= WIRE_THREADEV_HANDBACK; kind++) {
		make(kind);
		TEST_EQ_INT(sign_base(buf, &len), PARLEY_OK);
		hlen = by_hand(hand, WIRE_THREADEV_MAGIC, &base, 0, -1, NULL);
		TEST_EQ_INT(hlen, len);
		TEST_EQ_MEM(hand, buf, len);
		TEST_EQ_INT(wire__threadev_verify(hand, hlen, pk, &ev), PARLEY_OK);
		TEST_EQ_INT(ev.channel, 0);
	}
}

/* validly signed by hand, still refused by parse and verify */
static void hand_refused(const char *magic, const wire_threadev *e, int channel, int ulen, const char *user)
{
	uint8_t buf[WIRE_THREADEV_MAX_BYTES + 300];
	wire_threadev ev;
	size_t len = by_hand(buf, magic, e, channel, ulen, user);
	TEST_EQ_INT(wire__threadev_parse(buf, len, &ev), INVALID);
	TEST_EQ_INT(wire__threadev_verify(buf, len, pk, &ev), INVALID);
	TEST_EQ_INT(ev.channel, 0);
}

static void test_channel_rules(void)
{
	uint8_t buf[WIRE_THREADEV_MAX_BYTES];
	char u65[WIRE_CHANNEL_USER_MAX + 2];
	size_t len;

	/* the signer: a channel only on an OPEN, only a valid channel customer, none on native */
	open_channel(2, "+15551234567");
	base.kind = WIRE_THREADEV_ADD;
	base.thread_id = 77;
	base.version = 5;
	TEST_EQ_INT(sign_base(buf, &len), INVALID);
	open_channel(2, "15551234567"); /* sms: E.164 */
	TEST_EQ_INT(sign_base(buf, &len), INVALID);
	open_channel(5, "x"); /* no such channel */
	TEST_EQ_INT(sign_base(buf, &len), INVALID);
	open_channel(1, "");
	TEST_EQ_INT(sign_base(buf, &len), INVALID);
	open_channel(0, "x"); /* native names no channel customer */
	TEST_EQ_INT(sign_base(buf, &len), INVALID);

	/* the parser, under valid signatures */
	make(WIRE_THREADEV_OPEN);
	base.subject = base.actor;
	hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 0, 1, "x");  /* v2 without a channel */
	hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 0, -1, NULL); /* v2 of v1's length */
	hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 6, 1, "x");  /* unknown channel */
	hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 2, 11, "15551234567");
	hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 1, 0, "");
	hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 1, 3, "a\0b");  /* a NUL inside */
	hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 1, 3, "a\tb");  /* not printable */
	memset(u65, 'u', sizeof u65);
	hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 1, WIRE_CHANNEL_USER_MAX + 1, u65);
	/* the length byte disagreeing with the record's length: shorter and longer */
	{
		uint8_t b[WIRE_THREADEV_MAX_BYTES + 8];
		wire_threadev ev;
		size_t l = by_hand(b, WIRE_THREADEV_MAGIC_CHANNEL, &base, 1, 4, "abcd");
		size_t at = WIRE_THREADEV_FIXED - 64 + 4 + 1; /* the length byte */
		for (int d = -1; d <= 1; d += 2) {
			b[at] = (uint8_t)(4 + d);
			crypto_sign_detached(b + l - 64, NULL, b, l - 64, sk);
			TEST_EQ_INT(wire__threadev_verify(b, l, pk, &ev), INVALID);
		}
	}
	/* the channel bytes under the v1 magic (an old record cannot grow a channel) */
	hand_refused(WIRE_THREADEV_MAGIC, &base, 2, 12, "+15551234567");
	/* a channel on any other kind */
	for (uint8_t kind = WIRE_THREADEV_ADD; kind <= WIRE_THREADEV_HANDBACK; kind++) {
		make(kind);
		hand_refused(WIRE_THREADEV_MAGIC_CHANNEL, &base, 2, 12, "+15551234567");
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	TEST_RUN(test_round_trip);
	TEST_RUN(test_rules);
	TEST_RUN(test_channel_round_trip);
	TEST_RUN(test_channel_rules);
	TEST_EXIT();
}
