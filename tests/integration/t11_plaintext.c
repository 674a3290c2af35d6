/* 11: no message text in clear at rest, with scans that can fail.
 *
 * Real libparley clients send a marker (random per run) to a recipient that is offline, and the
 * server's files are scanned WHILE it runs with those envelopes still queued: parley.db, parley.db-wal
 * (it must exist and hold data) and parley.db-shm, and the debug log; then again after delivery, and
 * after a clean stop. The clients' state files are scanned too (message text is not stored there). The
 * scanner looks for the marker raw, in hex, base64, base64url and UTF-16 (scan.c).
 *
 * Positive controls, so a scan that cannot see anything cannot pass:
 *   - the scanner finds the marker in every encoding the test itself writes to a file, at every
 *     alignment, and reports a missing file as missing;
 *   - envelopes whose content is another marker in clear, or in base64 (sent over the raw protocol: the
 *     server cannot tell ciphertext from text), are found by the same live scan of the same files.
 *
 * Output is TAP (meson protocol 'tap'): the plaintext checks are "ok"/"not ok" lines and the program
 * exits 0 after a complete run; anything else that goes wrong is "Bail out!" with exit 99, and a crash
 * or a sanitizer report is a non-zero exit: meson calls all of those ERROR, never an "expected
 * failure". So the leak variant (it-t11_plaintext_leak, whose libparley puts the text in clear next to
 * the ciphertext: send.c, PARLEY_TEST_PLAINTEXT_LEAK) is registered with should_fail and passes only
 * when the plaintext checks themselves fail.
 *
 * On PostgreSQL (suite integration-pg) the server's files are a dump of its tables taken at each scan in
 * COPY's binary format (values as their bytes, as in SQLite's file): the same rows, the same positive controls.
 *
 * By hand, with the whole libparley leaking (the CLI too):
 *   meson setup build-leak -Dtest_plaintext_leak=true && ninja -C build-leak
 *   meson test -C build-leak integration-t11_plaintext integration-t10_messaging client-e2e
 * t11 is then an expected failure, and t10 and client-e2e fail at their plaintext scans only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/error.h>
#include <sodium.h>

#include "harness.h"
#include "scan.h"

#define N_MSG 4

static srv s;
static char url[128];
static char marker[64];  /* in the messages libparley encrypts */
static char control[64]; /* sent in clear over the raw protocol: the scan must find it */
static char control64[64]; /* sent base64-encoded the same way: found too */

static int tap_n;

static void tap(int ok, const char *what)
{
	printf("%s %d - %s\n", ok ? "ok" : "not ok", ++tap_n, what);
	fflush(stdout);
}

static void bail_at(int line, const char *what)
{
	printf("Bail out! t11_plaintext.c:%d: %s\n", line, what);
	fflush(stdout);
	srv_cleanup(&s);
	exit(99);
}
/* Not a plaintext check: anything else failing is an error (exit 99), so it can never count as the
 * expected failure of the leak variant. */
#define MUST(cond)                                                                                 \
	do {                                                                                       \
		if (!(cond))                                                                       \
			bail_at(__LINE__, #cond);                                                  \
	} while (0)

static void make_marker(char *out, size_t cap, const char *prefix)
{
	uint8_t r[10];
	char hex[21];
	randombytes_buf(r, sizeof r);
	sodium_bin2hex(hex, sizeof hex, r, sizeof r);
	snprintf(out, cap, "%s-%s-canary", prefix, hex);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	MUST(f != NULL);
	MUST(fwrite(data, 1, len, f) == len);
	MUST(fclose(f) == 0);
}

/* Same encoding, or one the scanner may name first because the two coincide here: base64url is base64
 * wherever no '+' or '/' appears, and a UTF-16BE text holds the UTF-16LE form shifted by one byte. */
static int same_encoding(const char *found, const char *written)
{
	return strcmp(found, written) == 0 || (strcmp(written, "base64url") == 0 && strcmp(found, "base64") == 0) ||
	       (strcmp(written, "utf16be") == 0 && strcmp(found, "utf16le") == 0);
}

/* One marker written by the test in each encoding, after 0, 1 and 2 bytes of something else (a base64
 * stream groups bytes by 3), must be found, named by its encoding. */
static void control_encodings(const uint8_t *m, size_t mlen)
{
	static const char *const encodings[] = {"raw", "hex", "HEX", "base64", "base64url", "utf16le", "utf16be"};
	char path[400];
	scan_hit hit;

	for (size_t e = 0; e < sizeof encodings / sizeof encodings[0]; e++)
		for (size_t k = 0; k < 3; k++) {
			uint8_t plain[128];
			char enc[512];
			size_t len;
			MUST(k + mlen + 8 <= sizeof plain);
			memset(plain, '#', k);
			memcpy(plain + k, m, mlen);
			memcpy(plain + k + mlen, " and so", 8);
			len = scan_encode(encodings[e], plain, k + mlen + 8, enc, sizeof enc);
			MUST(len > 0);
			snprintf(path, sizeof path, "%s/control-%s-%zu", s.dir, encodings[e], k);
			write_file(path, enc, len);
			MUST(scan_file(path, m, mlen, &hit) == SCAN_FOUND);
			MUST(same_encoding(hit.encoding, encodings[e]));
			MUST(unlink(path) == 0);
		}
}

/* The scanner itself: the text marker and a binary one whose base64 holds '/' at every alignment (so
 * base64 and base64url differ), in every encoding; another marker is not found; a file that is not
 * there is reported missing, not clean. */
static void scanner_controls(void)
{
	uint8_t bin[24];
	char path[400], other[64];
	scan_hit hit;

	control_encodings((const uint8_t *)marker, strlen(marker));
	randombytes_buf(bin, sizeof bin);
	memset(bin + 9, 0xff, 6);
	control_encodings(bin, sizeof bin);
	snprintf(path, sizeof path, "%s/control", s.dir);
	char b64[64], url64[64];
	MUST(scan_encode("base64", bin, sizeof bin, b64, sizeof b64) > 0);
	MUST(scan_encode("base64url", bin, sizeof bin, url64, sizeof url64) > 0);
	write_file(path, url64, strlen(url64));
	MUST(scan_file(path, bin, sizeof bin, &hit) == SCAN_FOUND && strcmp(hit.encoding, "base64url") == 0);
	write_file(path, b64, strlen(b64));
	MUST(scan_file(path, bin, sizeof bin, &hit) == SCAN_FOUND && strcmp(hit.encoding, "base64") == 0);
	make_marker(other, sizeof other, "other");
	MUST(scan_file(path, other, strlen(other), &hit) == SCAN_CLEAN);
	snprintf(path, sizeof path, "%s/no-such-file", s.dir);
	MUST(scan_file(path, marker, strlen(marker), &hit) == SCAN_MISSING);
	tap(1, "scanner_controls: every encoding found, another marker not, a missing file missing");
}

static parley_client *client(const char *name)
{
	parley_client *c = it_client_at(s.dir, name, url, 0);
	MUST(c != NULL);
	return c;
}

static uint64_t file_size(const char *rel)
{
	char path[400];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", s.dir, rel);
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* One plaintext check: the marker must not be anywhere in the server's files (all present) or in the
 * clients' state files. */
static void expect_clean(const char *when, int live, parley_client *open_a, parley_client *open_b)
{
	size_t len = strlen(marker);
	int r = srv_scan(&s, marker, len, live);
	r |= scan_client_dir(s.dir, "alice", marker, len, open_a != NULL);
	r |= scan_client_dir(s.dir, "bob", marker, len, open_b != NULL);
	/* checked after the scan of every file, so each hit is reported; a missing file is an error */
	if (r & SCAN_MISSING)
		bail_at(__LINE__, "a file to scan is missing");
	char what[160];
	snprintf(what, sizeof what, "no plaintext %s", when);
	tap(r == SCAN_CLEAN, what);
}

/* The second positive control: envelopes with the control markers in clear and in base64, queued for
 * bob next to alice's. Over the raw protocol, as a client that does not encrypt would send them. */
static void send_in_clear(void)
{
	char b64[128], plain[80];
	uint8_t pk[32], sk[64];
	int fd = -1;
	wire_frame f;
	MUST(pw_register(s.port, "mallory", pk, sk, &fd) == PARLEY_OK);

	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetBundlesRequest g = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
	req.id = 10;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
	req.get_bundles = &g;
	g.handle = "bob";
	g.device_id = 1;
	MUST(pw_call(fd, &req, &f) == PARLEY_OK);
	MUST(f.frame->response->get_bundles != NULL && f.frame->response->get_bundles->n_bundles == 1);
	uint32_t regid = f.frame->response->get_bundles->bundles[0]->registration_id;
	wire__frame_free(&f);

	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *omp = &om;
	parley__wire__request__init(&req);
	req.id = 11;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	sm.recipient = "bob";
	sm.timestamp = 1;
	sm.n_messages = 1;
	sm.messages = &omp;
	om.device_id = 1;
	om.registration_id = regid;
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	om.content.data = (uint8_t *)control;
	om.content.len = strlen(control);
	MUST(pw_call(fd, &req, NULL) == PARLEY_OK);
	/* "(" shifts the marker by one byte in the base64 grouping */
	snprintf(plain, sizeof plain, "(%s)", control64);
	MUST(scan_encode("base64", plain, strlen(plain), b64, sizeof b64) > 0);
	req.id = 12;
	sm.timestamp = 2;
	om.content.data = (uint8_t *)b64;
	om.content.len = strlen(b64);
	MUST(pw_call(fd, &req, NULL) == PARLEY_OK);
	close(fd);
}

typedef struct inbox {
	int n, mine, errors;
} inbox;

static void on_message(parley_client *c, const parley_message *m, void *user)
{
	inbox *in = user;
	in->n++;
	in->mine += strcmp(m->sender, "alice") == 0 && memmem(m->body, m->body_len, marker, strlen(marker)) != NULL;
}

static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	((inbox *)user)->errors++; /* mallory's envelopes are not Signal messages */
}

static void queued_then_delivered(void)
{
	char big[PARLEY_MESSAGE_MAX + 1], body[256];
	parley_client *alice = client("alice"), *bob = client("bob");
	MUST(parley_register(alice, "alice", NULL) == PARLEY_OK);
	MUST(parley_register(bob, "bob", NULL) == PARLEY_OK);
	parley_client_free(bob); /* offline from now until the scans below are done */

	/* the marker alone, inside a sentence, repeated to the largest message */
	MUST(parley_send(alice, "bob", marker) == PARLEY_OK);
	snprintf(body, sizeof body, "the code word is %s, do not tell", marker);
	MUST(parley_send(alice, "bob", body) == PARLEY_OK);
	size_t ml = strlen(marker), n = 0;
	while (n + ml + 1 <= PARLEY_MESSAGE_MAX) {
		memcpy(big + n, marker, ml);
		big[n + ml] = ' ';
		n += ml + 1;
	}
	MUST(parley_send_bytes(alice, "bob", (const uint8_t *)big, n, NULL) == PARLEY_OK);
	MUST(parley_send_bytes(alice, "bob", (const uint8_t *)marker, ml, NULL) == PARLEY_OK);

	/* queued, never fetched: the envelopes are in the WAL (or the main file) right now; on PostgreSQL,
	 * srv_scan reads a dump of the server's database instead of these files */
	if (!it_pg()) {
		MUST(file_size("data/parley.db-wal") > 0);
		MUST(file_size("data/parley.db-shm") > 0);
	}
	expect_clean("in the live server files with the messages queued", 1, alice, NULL);

	/* the same live scan finds a text that was sent in clear */
	send_in_clear();
	if (srv_scan(&s, control, strlen(control), 1) != SCAN_FOUND)
		bail_at(__LINE__, "the live scan missed a control marker queued in clear");
	if (srv_scan(&s, control64, strlen(control64), 1) != SCAN_FOUND)
		bail_at(__LINE__, "the live scan missed a control marker queued in base64");
	tap(1, "the live scan finds messages queued in clear and in base64");

	/* bob comes online and gets all of alice's messages (so they were real, deliverable messages) */
	bob = client("bob");
	inbox in = {0};
	parley_events ev;
	memset(&ev, 0, sizeof ev);
	ev.on_message = on_message;
	ev.on_error = on_error;
	ev.user = &in;
	parley_client_set_events(bob, &ev);
	MUST(parley_connect(bob) == PARLEY_OK);
	for (int i = 0; i < 100 && (in.mine < N_MSG || in.errors < 2); i++)
		parley_client_run(bob, 50);
	parley_client_run(bob, 300); /* the acks go out */
	parley_client_set_events(bob, NULL);
	parley_client_run(bob, 100);
	MUST(in.mine == N_MSG && in.n == N_MSG);
	MUST(in.errors == 2); /* mallory's two, which do not decrypt */
	expect_clean("in the live server files after delivery", 1, alice, bob);

	parley_client_free(alice);
	parley_client_free(bob);
	MUST(srv_stop(&s) == 0);
	expect_clean("after a clean stop", 0, NULL, NULL);
}

int main(void)
{
	const char *extra[] = {"--log_level=debug", NULL};
	make_marker(marker, sizeof marker, "zebra-quokka");
	make_marker(control, sizeof control, "in-clear");
	make_marker(control64, sizeof control64, "in-base64");
	srv_start(&s, extra);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	scanner_controls();
	queued_then_delivered();
	srv_cleanup(&s);
	printf("1..%d\n", tap_n);
	return 0;
}
