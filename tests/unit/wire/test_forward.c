/* The forward codec (lib/wire/forward.c): round trip of a bundle and a chunk; every bound refused one
 * past it and accepted at it; every truncation refused; the sender's chunk split keeps each chunk under
 * WIRE_FORWARD_CHUNK_BYTES and covers every entry once. `test-forward --seed FILE` writes the fuzz
 * corpus seed (tests/fuzz/corpus/wire-forward/valid). */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <parley/signal_group.h>
#include <parley/thread.h>

#include "common/alloc.h"
#include "test.h"
#include "wire/forward.h"
#include "wire/threadev.h"

#define INVALID PARLEY_E_FORWARD_INVALID
#define NKEYS 3

static uint8_t ev_bytes[2][WIRE_THREADEV_MAX_BYTES + 1]; /* + 1: the one-too-long event reads inside it */
static uint8_t dist[PARLEY_GROUP_DISTRIBUTION_MAX + 1];
static ProtobufCBinaryData events[WIRE_FORWARD_MAX_EVENTS + 1];
static Parley__Wire__ForwardSenderKey keys[WIRE_FORWARD_MAX_KEYS + 1];
static Parley__Wire__ForwardSenderKey *keyp[WIRE_FORWARD_MAX_KEYS + 1];
static char key_handles[WIRE_FORWARD_MAX_KEYS + 1][16];
static char note[PARLEY_THREAD_NOTE_MAX + 2];
static Parley__Wire__ForwardBundle b;

static void make_bundle(void)
{
	parley__wire__forward_bundle__init(&b);
	b.forward_id = 0x1122334455667788ull;
	b.thread_id = 42;
	b.entity = (char *)"acme";
	b.staff_version = 3;
	memset(ev_bytes, 0xab, sizeof ev_bytes);
	for (size_t i = 0; i <= WIRE_FORWARD_MAX_EVENTS; i++) {
		events[i].data = ev_bytes[i % 2];
		events[i].len = 150;
	}
	b.n_events = 2;
	b.events = events;
	memset(dist, 0x33, sizeof dist);
	for (size_t i = 0; i <= WIRE_FORWARD_MAX_KEYS; i++) {
		parley__wire__forward_sender_key__init(&keys[i]);
		snprintf(key_handles[i], sizeof key_handles[i], "member%zu", i);
		keys[i].handle = key_handles[i];
		keys[i].device = 1;
		keys[i].distribution.data = dist;
		keys[i].distribution.len = 90;
		keyp[i] = &keys[i];
	}
	b.n_sender_keys = NKEYS;
	b.sender_keys = keyp;
	snprintf(note, sizeof note, "please take this one \xc3\xa9");
	b.note = note;
	b.history_total = 10;
	b.history_chunks = 2;
}

/* b packed, then decoded: the expected status (and, on success, the same fields back) */
static int round_trip(void)
{
	size_t len = parley__wire__forward_bundle__get_packed_size(&b);
	uint8_t *buf = malloc(len + 1);
	Parley__Wire__ForwardBundle *out = NULL;
	char err[256] = "";
	int rc;

	parley__wire__forward_bundle__pack(&b, buf);
	rc = wire__forward_bundle_decode(buf, len, &out, err, sizeof err);
	if (rc == PARLEY_OK) {
		TEST_EQ_INT(out->forward_id, b.forward_id);
		TEST_EQ_INT(out->n_sender_keys, b.n_sender_keys);
		TEST_EQ_STR(out->note, b.note);
		TEST_EQ_INT(wire__forward_bundle_check(&b, NULL, 0), PARLEY_OK);
	} else {
		TEST_CHECK(out == NULL);
		TEST_CHECK(err[0] != '\0'); /* a specific message */
		/* the sender's check refuses the same thing (unless only the packed size broke a bound) */
		TEST_EQ_INT(wire__forward_bundle_check(&b, NULL, 0), rc);
	}
	wire__forward_bundle_free(out);
	free(buf);
	return rc;
}

static void test_bundle_round_trip(void)
{
	make_bundle();
	TEST_EQ_INT(round_trip(), PARLEY_OK);
	b.note = (char *)"";
	b.history_total = b.history_chunks = 0;
	b.n_sender_keys = 0;
	TEST_EQ_INT(round_trip(), PARLEY_OK);
}

static void test_bundle_bounds(void)
{
	make_bundle();
	b.forward_id = 0;
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	b.thread_id = 0;
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	b.entity = (char *)"Acme";
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	b.staff_version = 0;
	TEST_EQ_INT(round_trip(), INVALID);
	/* events: 1..100, each 1..WIRE_THREADEV_MAX_BYTES */
	make_bundle();
	b.n_events = 0;
	TEST_EQ_INT(round_trip(), INVALID);
	b.n_events = WIRE_FORWARD_MAX_EVENTS;
	TEST_EQ_INT(round_trip(), PARLEY_OK);
	b.n_events = WIRE_FORWARD_MAX_EVENTS + 1;
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	events[1].len = WIRE_THREADEV_MAX_BYTES;
	TEST_EQ_INT(round_trip(), PARLEY_OK);
	events[1].len = WIRE_THREADEV_MAX_BYTES + 1;
	TEST_EQ_INT(round_trip(), INVALID);
	events[1].len = 0;
	TEST_EQ_INT(round_trip(), INVALID);
	/* sender keys: up to 500 (short distributions so the packed bound is not what refuses) */
	make_bundle();
	for (size_t i = 0; i <= WIRE_FORWARD_MAX_KEYS; i++)
		keys[i].distribution.len = 60;
	b.n_sender_keys = WIRE_FORWARD_MAX_KEYS;
	b.n_events = 1;
	TEST_EQ_INT(round_trip(), PARLEY_OK);
	b.n_sender_keys = WIRE_FORWARD_MAX_KEYS + 1;
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	keys[1].handle = (char *)"x";
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	keys[2].device = 0;
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	keys[0].distribution.len = PARLEY_GROUP_DISTRIBUTION_MAX;
	TEST_EQ_INT(round_trip(), PARLEY_OK);
	keys[0].distribution.len = PARLEY_GROUP_DISTRIBUTION_MAX + 1;
	TEST_EQ_INT(round_trip(), INVALID);
	keys[0].distribution.len = 0;
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	keys[2].handle = key_handles[0]; /* the same (handle, device) twice */
	TEST_EQ_INT(round_trip(), INVALID);
	keys[2].device = 2; /* another device of the same account: fine */
	TEST_EQ_INT(round_trip(), PARLEY_OK);
	/* note: <= 1024 bytes of UTF-8 */
	make_bundle();
	memset(note, 'n', PARLEY_THREAD_NOTE_MAX);
	note[PARLEY_THREAD_NOTE_MAX] = '\0';
	TEST_EQ_INT(round_trip(), PARLEY_OK);
	note[PARLEY_THREAD_NOTE_MAX] = 'n';
	note[PARLEY_THREAD_NOTE_MAX + 1] = '\0';
	TEST_EQ_INT(round_trip(), INVALID);
	/* not UTF-8: built directly (protobuf-c would pack it, and the decoder must refuse it) */
	make_bundle();
	snprintf(note, sizeof note, "bad \xc3 byte");
	TEST_EQ_INT(round_trip(), INVALID);
	/* history */
	make_bundle();
	b.history_total = PARLEY_THREAD_HISTORY_MAX;
	b.history_chunks = PARLEY_THREAD_HISTORY_MAX;
	TEST_EQ_INT(round_trip(), PARLEY_OK);
	b.history_total = PARLEY_THREAD_HISTORY_MAX + 1;
	TEST_EQ_INT(round_trip(), INVALID);
	make_bundle();
	b.history_chunks = 0;
	TEST_EQ_INT(round_trip(), INVALID);
	b.history_total = 0;
	b.history_chunks = 1;
	TEST_EQ_INT(round_trip(), INVALID);
	b.history_total = 3;
	b.history_chunks = 4;
	TEST_EQ_INT(round_trip(), INVALID);
}

static void test_bundle_bytes(void)
{
	Parley__Wire__ForwardBundle *out = NULL;
	uint8_t *buf;
	size_t len;
	int refused = 1;

	make_bundle();
	len = parley__wire__forward_bundle__get_packed_size(&b);
	buf = malloc(len + 8);
	parley__wire__forward_bundle__pack(&b, buf);
	/* every truncation: refused, or (a cut between fields) a bundle that still passes every bound;
	 * none may crash; cutting the last field (the chunk count) leaves history without chunks: refused.
	 * (A pairwise Signal message cannot be cut unnoticed anyway: this is about the codec's rules.) */
	for (size_t cut = 0; cut < len; cut++) {
		int rc = wire__forward_bundle_decode(buf, cut, &out, NULL, 0);
		TEST_CHECK(rc == PARLEY_OK || rc == INVALID);
		TEST_CHECK(rc != PARLEY_OK || (out != NULL && wire__forward_bundle_check(out, NULL, 0) == PARLEY_OK));
		if (cut == len - 2 && rc == PARLEY_OK)
			refused = 0;
		wire__forward_bundle_free(out);
		out = NULL;
	}
	TEST_CHECK(refused);
	TEST_EQ_INT(wire__forward_bundle_decode(buf, 0, &out, NULL, 0), INVALID);
	TEST_EQ_INT(wire__forward_bundle_decode(NULL, 10, &out, NULL, 0), INVALID);
	/* a wrong wire type */
	buf[0] = 0x0f;
	TEST_EQ_INT(wire__forward_bundle_decode(buf, len, &out, NULL, 0), INVALID);
	free(buf);
	/* bigger than the payload bound: refused before unpacking */
	buf = calloc(1, WIRE_FORWARD_MAX_BYTES + 1);
	TEST_EQ_INT(wire__forward_bundle_decode(buf, WIRE_FORWARD_MAX_BYTES + 1, &out, NULL, 0), INVALID);
	free(buf);
	/* out of memory inside protobuf-c: refused (it cannot say why), nothing leaked (the sanitizer build
	 * checks the leak) */
	make_bundle();
	len = parley__wire__forward_bundle__get_packed_size(&b);
	buf = malloc(len);
	parley__wire__forward_bundle__pack(&b, buf);
	for (unsigned long n = 1; n < 20; n++) {
		parley__alloc_fail_after(n);
		int rc = wire__forward_bundle_decode(buf, len, &out, NULL, 0);
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == INVALID);
		wire__forward_bundle_free(out);
		out = NULL;
	}
	free(buf);
}

/* ---- history chunks ---- */

#define NENT 1000
static Parley__Wire__ForwardHistoryEntry ent[NENT];
static Parley__Wire__ForwardHistoryEntry *entp[NENT];
static uint8_t body[PARLEY_MESSAGE_MAX + 1];

static void make_entries(size_t body_len)
{
	memset(body, 'b', sizeof body);
	for (size_t i = 0; i < NENT; i++) {
		parley__wire__forward_history_entry__init(&ent[i]);
		ent[i].sender = (char *)(i % 2 ? "alice" : "acme.admin");
		ent[i].sender_device = 1 + (uint32_t)(i % 3);
		ent[i].timestamp = 1700000000000ull + i;
		ent[i].server_timestamp = 1700000000100ull + i;
		ent[i].body.data = body;
		ent[i].body.len = body_len;
		entp[i] = &ent[i];
	}
}

static int chunk_round_trip(size_t first, size_t n)
{
	Parley__Wire__ForwardHistory h = PARLEY__WIRE__FORWARD_HISTORY__INIT, *out = NULL;
	size_t len;
	uint8_t *buf;
	char err[256] = "";
	int rc;

	h.forward_id = 9;
	h.thread_id = 42;
	h.seq = 1;
	h.n_entries = n;
	h.entries = entp + first;
	len = parley__wire__forward_history__get_packed_size(&h);
	buf = malloc(len + 1);
	parley__wire__forward_history__pack(&h, buf);
	rc = wire__forward_history_decode(buf, len, &out, err, sizeof err);
	if (rc == PARLEY_OK) {
		TEST_EQ_INT(out->n_entries, n);
		TEST_EQ_INT(out->entries[0]->timestamp, ent[first].timestamp);
		TEST_EQ_INT(len <= WIRE_FORWARD_MAX_BYTES, 1);
	} else {
		TEST_CHECK(err[0] != '\0');
	}
	wire__forward_history_free(out);
	/* truncations never accepted as the whole chunk */
	for (size_t cut = 0; cut < len; cut += 1 + len / 300) {
		if (wire__forward_history_decode(buf, cut, &out, NULL, 0) == PARLEY_OK) {
			TEST_CHECK(out->n_entries < n);
			wire__forward_history_free(out);
			out = NULL;
		}
	}
	free(buf);
	return rc;
}

static void test_history(void)
{
	make_entries(100);
	TEST_EQ_INT(chunk_round_trip(0, 10), PARLEY_OK);
	TEST_EQ_INT(chunk_round_trip(0, 0), INVALID);
	ent[3].sender = (char *)"NO";
	TEST_EQ_INT(chunk_round_trip(0, 10), INVALID);
	make_entries(100);
	ent[4].sender_device = 0;
	TEST_EQ_INT(chunk_round_trip(0, 10), INVALID);
	make_entries(100);
	ent[5].body.len = 0;
	TEST_EQ_INT(chunk_round_trip(0, 10), INVALID);
	make_entries(100);
	ent[5].body.len = PARLEY_MESSAGE_MAX;
	TEST_EQ_INT(chunk_round_trip(0, 6), PARLEY_OK);
	ent[5].body.len = PARLEY_MESSAGE_MAX + 1;
	TEST_EQ_INT(chunk_round_trip(0, 6), INVALID);
	/* more than the payload bound in one chunk */
	make_entries(PARLEY_MESSAGE_MAX);
	TEST_EQ_INT(chunk_round_trip(0, 8), INVALID);
}

static void check_split(size_t n, size_t body_len)
{
	size_t starts[NENT], k = 0;
	Parley__Wire__ForwardHistory h = PARLEY__WIRE__FORWARD_HISTORY__INIT;

	make_entries(body_len);
	TEST_EQ_INT(wire__forward_history_split(entp, n, starts, NENT, &k, NULL, 0), PARLEY_OK);
	TEST_CHECK(n == 0 ? k == 0 : k >= 1 && starts[0] == 0);
	h.forward_id = UINT64_MAX;
	h.thread_id = UINT64_MAX;
	for (size_t i = 0; i < k; i++) {
		size_t end = i + 1 < k ? starts[i + 1] : n;
		TEST_CHECK(end > starts[i]);
		h.seq = (uint32_t)i;
		h.entries = entp + starts[i];
		h.n_entries = end - starts[i];
		TEST_CHECK(parley__wire__forward_history__get_packed_size(&h) <= WIRE_FORWARD_CHUNK_BYTES);
		/* greedy: the next entry would not have fitted */
		if (i + 1 < k) {
			h.n_entries++;
			TEST_CHECK(parley__wire__forward_history__get_packed_size(&h) > WIRE_FORWARD_CHUNK_BYTES - 28);
		}
		TEST_EQ_INT(wire__forward_history_check(&h, NULL, 0), PARLEY_OK);
	}
}

static void test_split(void)
{
	size_t starts[4], k = 9;

	check_split(0, 100);
	check_split(1, 100);
	check_split(NENT, 100);               /* 1,000 x ~100 bytes: a handful of chunks */
	check_split(NENT, PARLEY_MESSAGE_MAX); /* two full bodies per chunk */
	make_entries(100);
	TEST_EQ_INT(wire__forward_history_split(entp, NENT, starts, 4, &k, NULL, 0), PARLEY_E_INVAL);
	ent[7].body.len = PARLEY_MESSAGE_MAX + 1;
	TEST_EQ_INT(wire__forward_history_split(entp, 10, starts, 4, &k, NULL, 0), INVALID);
	TEST_EQ_INT(k, 0);
}

/* --seed FILE: writes a valid packed bundle, the fuzz corpus seed */
static int write_seed(const char *path)
{
	FILE *f = fopen(path, "wb");
	size_t len;
	uint8_t *buf;

	make_bundle();
	len = parley__wire__forward_bundle__get_packed_size(&b);
	buf = malloc(len);
	parley__wire__forward_bundle__pack(&b, buf);
	/* the harness's first byte picks the decoder: 0 = bundle */
	if (f == NULL || fputc(0, f) == EOF || fwrite(buf, 1, len, f) != len) {
		free(buf);
		return 1;
	}
	free(buf);
	return fclose(f) != 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--seed") == 0)
		return write_seed(argv[2]);
	TEST_RUN(test_bundle_round_trip);
	TEST_RUN(test_bundle_bounds);
	TEST_RUN(test_bundle_bytes);
	TEST_RUN(test_history);
	TEST_RUN(test_split);
	TEST_EXIT();
}
