/* Size and presence checks of the thread messages (lib/wire/wire_threads.c) through the real decoder:
 * each request body decodes when well formed and is refused with the precise code when a required
 * field is missing or a bounded one is too large. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "common/dynbuf.h"
#include "test.h"
#include "wire/threadev.h"
#include "wire/wire_threads.h"

static uint8_t big[WIRE_THREAD_MAX_CIPHERTEXT + 1];

/* encodes req and decodes it back: the decoder's status */
static int codec_round(Parley__Wire__Request *req)
{
	dynbuf out;
	wire_frame f;
	int rc;

	dynbuf__init(&out, WIRE_DEFAULT_MAX_FRAME);
	req->id = 1;
	if (wire__encode_request(req, &out) != PARLEY_OK) {
		dynbuf__free(&out);
		return -1;
	}
	rc = wire__decode_frame(out.data, out.len, NULL, &f);
	wire__frame_free(&f);
	dynbuf__free(&out);
	return rc;
}

static void test_send(void)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadSendRequest s = PARLEY__WIRE__THREAD_SEND_REQUEST__INIT;

	req.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_SEND;
	req.thread_send = &s;
	s.thread_id = 5;
	s.ciphertext.data = big;
	s.ciphertext.len = 10;
	TEST_EQ_INT(codec_round(&req), PARLEY_OK);
	s.ciphertext.len = WIRE_THREAD_MAX_CIPHERTEXT + 1;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_FIELD_TOO_LARGE);
	s.ciphertext.len = 0;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_MISSING_FIELD);
	s.ciphertext.len = 10;
	s.thread_id = 0;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_MISSING_FIELD);
	s.thread_id = 5;
	s.lock_event.data = big;
	s.lock_event.len = WIRE_THREADEV_MAX_BYTES + 1;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_FIELD_TOO_LARGE);
}

static void test_open_event_get_list(void)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadOpenRequest o = PARLEY__WIRE__THREAD_OPEN_REQUEST__INIT;
	Parley__Wire__ThreadEventRequest e = PARLEY__WIRE__THREAD_EVENT_REQUEST__INIT;
	Parley__Wire__ThreadGetRequest g = PARLEY__WIRE__THREAD_GET_REQUEST__INIT;
	Parley__Wire__ThreadListRequest li = PARLEY__WIRE__THREAD_LIST_REQUEST__INIT;

	req.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_OPEN;
	req.thread_open = &o;
	o.entity = (char *)"acme";
	o.event.data = big;
	o.event.len = WIRE_THREADEV_MAX_BYTES;
	TEST_EQ_INT(codec_round(&req), PARLEY_OK);
	o.event.len = WIRE_THREADEV_MAX_BYTES + 1;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_FIELD_TOO_LARGE);
	o.event.len = 0;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_MISSING_FIELD);
	o.event.len = 10;
	o.entity = (char *)"";
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_MISSING_FIELD);

	req.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_EVENT;
	req.thread_event = &e;
	e.event.data = big;
	e.event.len = 10;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_MISSING_FIELD); /* no thread */
	e.thread_id = 3;
	TEST_EQ_INT(codec_round(&req), PARLEY_OK);

	req.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_GET;
	req.thread_get = &g;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_MISSING_FIELD);
	g.thread_id = 3;
	TEST_EQ_INT(codec_round(&req), PARLEY_OK);

	req.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_LIST;
	req.thread_list = &li;
	li.limit = WIRE_THREAD_LIST_MAX;
	TEST_EQ_INT(codec_round(&req), PARLEY_OK);
	li.limit = WIRE_THREAD_LIST_MAX + 1;
	TEST_EQ_INT(codec_round(&req), PARLEY_E_PROTO_FIELD_TOO_LARGE);
}

/* Channel identities (docs/protocol.md §13.6): E.164 for sms and waba, 1..64 printable ASCII for the
 * others, never for the native channel; and the frame bounds of the new fields. */
static void test_channels(void)
{
	char s65[66];

	TEST_EQ_INT(wire__channel_valid(2, "+15551234567"), 1);
	TEST_EQ_INT(wire__channel_valid(3, "+441234567890"), 1);
	TEST_EQ_INT(wire__channel_valid(2, "+123456"), 1);           /* 6 digits */
	TEST_EQ_INT(wire__channel_valid(2, "+12345"), 0);            /* 5 */
	TEST_EQ_INT(wire__channel_valid(2, "+1234567890123456"), 0); /* 16 */
	TEST_EQ_INT(wire__channel_valid(2, "15551234567"), 0);       /* no + */
	TEST_EQ_INT(wire__channel_valid(2, "+1555123456a"), 0);
	TEST_EQ_INT(wire__channel_valid(3, "+1555 1234567"), 0);
	TEST_EQ_INT(wire__channel_valid(1, "session 42/abc"), 1);
	TEST_EQ_INT(wire__channel_valid(4, "x"), 1);
	TEST_EQ_INT(wire__channel_valid(1, ""), 0);
	TEST_EQ_INT(wire__channel_valid(1, "tab\there"), 0);
	TEST_EQ_INT(wire__channel_valid(4, "caf\xc3\xa9"), 0);          /* not ASCII */
	TEST_EQ_INT(wire__channel_valid(0, "x"), 0);                  /* native has none */
	TEST_EQ_INT(wire__channel_valid(5, "x"), 0);
	TEST_EQ_INT(wire__channel_valid(1, NULL), 0);
	memset(s65, 'a', sizeof s65);
	s65[64] = '\0';
	TEST_EQ_INT(wire__channel_valid(1, s65), 1);
	s65[64] = 'a';
	s65[65] = '\0';
	TEST_EQ_INT(wire__channel_valid(1, s65), 0);
	TEST_EQ_INT(wire__channel_baseline(0), 0);
	TEST_EQ_INT(wire__channel_baseline(1), 0);
	TEST_EQ_INT(wire__channel_baseline(2), 1);
	TEST_EQ_INT(wire__channel_baseline(3), 1);
	TEST_EQ_INT(wire__channel_baseline(4), 0);
}

int main(void)
{
	TEST_RUN(test_send);
	TEST_RUN(test_open_event_get_list);
	TEST_RUN(test_channels);
	TEST_EXIT();
}
