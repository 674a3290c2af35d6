/* The Content codec (plaintext inside ciphertexts): round trip, padding, and refusal of every
 * malformed shape with a specific error. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "client/client_internal.h"
#include "common/alloc.h"

static void test_round_trip(void)
{
	client_content in, out;
	uint8_t *buf = NULL;
	size_t len = 0;

	memset(&in, 0, sizeof(in));
	in.kind = CONTENT_KIND_SENT_COPY;
	in.timestamp = 0x0102030405060708ull;
	in.body = (const uint8_t *)"hello";
	in.body_len = 5;
	snprintf(in.destination, sizeof(in.destination), "bob");
	TEST_EQ_INT(client__content_encode(&in, &buf, &len), PARLEY_OK);
	TEST_EQ_INT(len % 160, 0);
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_OK);
	TEST_EQ_INT(out.kind, CONTENT_KIND_SENT_COPY);
	TEST_CHECK(out.timestamp == in.timestamp);
	TEST_CHECK(out.body_len == 5 && memcmp(out.body, "hello", 5) == 0);
	TEST_EQ_STR(out.destination, "bob");

	/* every truncation is refused, none crashes */
	for (size_t n = 0; n < 30; n++)
		TEST_CHECK(client__content_decode(buf, n, &out) != PARLEY_OK);
	buf[0] = 2;
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_E_BAD_VERSION);
	parley__free(buf);

	/* the largest body fits; one more byte is refused */
	in.kind = CONTENT_KIND_MESSAGE;
	in.destination[0] = '\0';
	in.body_len = PARLEY_MESSAGE_MAX;
	in.body = calloc(1, PARLEY_MESSAGE_MAX + 1);
	TEST_EQ_INT(client__content_encode(&in, &buf, &len), PARLEY_OK);
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_OK);
	TEST_EQ_INT(out.body_len, PARLEY_MESSAGE_MAX);
	parley__free(buf);
	in.body_len = PARLEY_MESSAGE_MAX + 1;
	TEST_EQ_INT(client__content_encode(&in, &buf, &len), PARLEY_E_TOO_LARGE);
	free((void *)in.body);
}

static void test_malformed(void)
{
	client_content out;
	/* version, kind, timestamp */
	static const uint8_t ok[] = {1, 1, 0, 1, 1, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9};
	static const uint8_t no_ts[] = {1, 1, 0, 1, 1};
	static const uint8_t dup_kind[] = {1, 1, 0, 1, 1, 1, 0, 1, 1, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9};
	static const uint8_t bad_ts_len[] = {1, 1, 0, 1, 1, 2, 0, 7, 0, 0, 0, 0, 0, 0, 9};
	static const uint8_t overrun[] = {1, 1, 0, 1, 1, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9, 3, 0xff, 0xff, 'x'};
	static const uint8_t copy_no_dest[] = {1, 1, 0, 1, 2, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9};
	static const uint8_t unknown_tag[] = {1, 1, 0, 1, 1, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9, 77, 0, 2, 'z', 'z'};

	TEST_EQ_INT(client__content_decode(ok, sizeof(ok), &out), PARLEY_OK);
	TEST_EQ_INT(out.body_len, 0);
	TEST_CHECK(out.timestamp == 9);
	TEST_EQ_INT(client__content_decode(no_ts, sizeof(no_ts), &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(client__content_decode(dup_kind, sizeof(dup_kind), &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(client__content_decode(bad_ts_len, sizeof(bad_ts_len), &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(client__content_decode(overrun, sizeof(overrun), &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(client__content_decode(copy_no_dest, sizeof(copy_no_dest), &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(client__content_decode(unknown_tag, sizeof(unknown_tag), &out), PARLEY_OK);
	TEST_EQ_INT(client__content_decode(ok, 0, &out), PARLEY_E_INVALID_MESSAGE);
}

/* A receipt (kind 3) carries its Receipt record; a receipt without one, or a record on another kind,
 * is refused. */
static void test_receipt(void)
{
	static const uint8_t rcpt[] = {0x08, 0x01, 0x12, 0x01, 0x05}; /* Receipt{DELIVERY, [5]} */
	client_content in, out;
	uint8_t *buf = NULL;
	size_t len = 0;

	memset(&in, 0, sizeof(in));
	in.kind = CONTENT_KIND_RECEIPT;
	in.timestamp = 42;
	in.receipt = rcpt;
	in.receipt_len = sizeof(rcpt);
	TEST_EQ_INT(client__content_encode(&in, &buf, &len), PARLEY_OK);
	TEST_EQ_INT(len % 160, 0); /* padded like a message: same lengths on the wire */
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_OK);
	TEST_EQ_INT(out.kind, CONTENT_KIND_RECEIPT);
	TEST_CHECK(out.receipt_len == sizeof(rcpt) && memcmp(out.receipt, rcpt, sizeof(rcpt)) == 0);
	buf[1 + 3] = CONTENT_KIND_MESSAGE; /* the kind byte: a message with a receipt record */
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_E_INVALID_MESSAGE);
	parley__free(buf);
	in.receipt = NULL;
	in.receipt_len = 0;
	TEST_EQ_INT(client__content_encode(&in, &buf, &len), PARLEY_OK);
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_E_INVALID_MESSAGE); /* no record */
	parley__free(buf);
}

/* A key transfer (kind 4) carries a KeyTransfer record, or none (the filler the other devices of the
 * account get); the filler with a body of the transfer's length pads to the same size. A transfer
 * record on another kind, an empty one or one over the limit is refused. */
static void test_key_transfer(void)
{
	uint8_t transfer[300], *buf = NULL, *filler = NULL;
	client_content in, out;
	size_t len = 0, flen = 0;

	for (size_t i = 0; i < sizeof(transfer); i++)
		transfer[i] = (uint8_t)(i * 7 + 1);
	memset(&in, 0, sizeof(in));
	in.kind = CONTENT_KIND_KEY_TRANSFER;
	in.timestamp = 43;
	in.transfer = transfer;
	in.transfer_len = sizeof(transfer);
	TEST_EQ_INT(client__content_encode(&in, &buf, &len), PARLEY_OK);
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_OK);
	TEST_EQ_INT(out.kind, CONTENT_KIND_KEY_TRANSFER);
	TEST_CHECK(out.transfer_len == sizeof(transfer) && memcmp(out.transfer, transfer, sizeof(transfer)) == 0);
	TEST_EQ_INT(out.body_len, 0);
	/* the filler: no record, a zero body as long as the transfer: the same padded size */
	static const uint8_t zero[sizeof(transfer)];
	in.transfer = NULL;
	in.transfer_len = 0;
	in.body = zero;
	in.body_len = sizeof(zero);
	TEST_EQ_INT(client__content_encode(&in, &filler, &flen), PARLEY_OK);
	TEST_EQ_INT(flen, len);
	TEST_EQ_INT(client__content_decode(filler, flen, &out), PARLEY_OK);
	TEST_CHECK(out.kind == CONTENT_KIND_KEY_TRANSFER && out.transfer == NULL);
	parley__free(filler);
	/* the record on a message is refused (kind byte after version, tag, length) */
	buf[1 + 3] = CONTENT_KIND_MESSAGE;
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_E_INVALID_MESSAGE);
	parley__free(buf);
	/* an empty record, and one over the limit */
	static const uint8_t empty[] = {1, 1, 0, 1, 4, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9, 6, 0, 0};
	TEST_EQ_INT(client__content_decode(empty, sizeof(empty), &out), PARLEY_E_INVALID_MESSAGE);
	uint8_t *big = calloc(1, CONTENT_TRANSFER_MAX + 1);
	in.body = NULL;
	in.body_len = 0;
	in.transfer = big;
	in.transfer_len = CONTENT_TRANSFER_MAX + 1;
	TEST_EQ_INT(client__content_encode(&in, &buf, &len), PARLEY_E_TOO_LARGE);
	in.transfer_len = CONTENT_TRANSFER_MAX;
	TEST_EQ_INT(client__content_encode(&in, &buf, &len), PARLEY_OK);
	TEST_EQ_INT(client__content_decode(buf, len, &out), PARLEY_OK);
	parley__free(buf);
	free(big);
	/* decoding a record one byte over the limit */
	size_t n = 16 + 3 + CONTENT_TRANSFER_MAX + 1;
	uint8_t *over = calloc(1, n);
	memcpy(over, empty, 16);
	over[16] = 6;
	over[17] = (uint8_t)((CONTENT_TRANSFER_MAX + 1) >> 8);
	over[18] = (uint8_t)(CONTENT_TRANSFER_MAX + 1);
	TEST_EQ_INT(client__content_decode(over, n, &out), PARLEY_E_INVALID_MESSAGE);
	over[18] = (uint8_t)CONTENT_TRANSFER_MAX;
	TEST_EQ_INT(client__content_decode(over, n - 1, &out), PARLEY_OK);
	free(over);
}

/* Thread kinds: the thread record exactly on 5, 6, 9 (nonzero), the payload exactly on 5, 7, 8.
 * The decoded Content points into the encoded buffer: kept until the next call (or enc_dec_done). */
static uint8_t *enc_buf;

static void enc_dec_done(void)
{
	parley__free(enc_buf);
	enc_buf = NULL;
}

static int enc_dec(int kind, uint64_t thread, const uint8_t *payload, size_t plen, client_content *out)
{
	client_content in;
	size_t len = 0;
	int rc;

	enc_dec_done();

	memset(&in, 0, sizeof(in));
	in.kind = kind;
	in.timestamp = 7;
	in.thread_id = thread;
	in.payload = payload;
	in.payload_len = plen;
	rc = client__content_encode(&in, &enc_buf, &len);
	if (rc != PARLEY_OK)
		return rc;
	return client__content_decode(enc_buf, len, out);
}

static void test_thread_kinds(void)
{
	static const uint8_t skdm[] = {0x33, 1, 2, 3};
	client_content out;
	uint8_t *big = calloc(1, CONTENT_PAYLOAD_MAX + 1);

	TEST_EQ_INT(enc_dec(CONTENT_KIND_SENDER_KEY, 0x0102030405060708ull, skdm, sizeof(skdm), &out), PARLEY_OK);
	TEST_CHECK(out.thread_id == 0x0102030405060708ull);
	TEST_CHECK(out.payload_len == sizeof(skdm) && memcmp(out.payload, skdm, sizeof(skdm)) == 0);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_SENDER_KEY, 0, skdm, sizeof(skdm), &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_SENDER_KEY, 5, NULL, 0, &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_SENDER_KEY_REQUEST, 5, NULL, 0, &out), PARLEY_OK);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_SENDER_KEY_REQUEST, 5, skdm, 1, &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_THREAD_MESSAGE, 9, NULL, 0, &out), PARLEY_OK);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_THREAD_MESSAGE, 0, NULL, 0, &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_FORWARD, 0, skdm, sizeof(skdm), &out), PARLEY_OK);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_FORWARD, 3, skdm, sizeof(skdm), &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_FORWARD_HISTORY, 0, NULL, 0, &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_MESSAGE, 4, NULL, 0, &out), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_MESSAGE, 0, skdm, 1, &out), PARLEY_E_INVALID_MESSAGE);
	/* the largest payload fits, one more byte is refused */
	big[0] = 1;
	TEST_EQ_INT(enc_dec(CONTENT_KIND_FORWARD, 0, big, CONTENT_PAYLOAD_MAX, &out), PARLEY_OK);
	TEST_EQ_INT(out.payload_len, CONTENT_PAYLOAD_MAX);
	TEST_EQ_INT(enc_dec(CONTENT_KIND_FORWARD, 0, big, CONTENT_PAYLOAD_MAX + 1, &out), PARLEY_E_TOO_LARGE);
	enc_dec_done();
	free(big);
}

int main(void)
{
	TEST_RUN(test_thread_kinds);
	TEST_RUN(test_round_trip);
	TEST_RUN(test_malformed);
	TEST_RUN(test_receipt);
	TEST_RUN(test_key_transfer);
	TEST_EXIT();
}
