/* t16: disk full (security item 16), against a real parleyd whose database lives on a small tmpfs.
 *
 * Sends fill the disk until the server answers STORAGE_FULL (not a generic storage error); /healthz
 * then says 503 degraded with the reason; the recipient can still receive and acknowledge everything
 * (acks delete, and must work on a full disk, or a full disk could never drain itself); once the
 * queue is drained the server notices the room and accepts sends again, /healthz back to 200.
 *
 * Mounting a tmpfs needs root (CI runs as root): otherwise the test is skipped (exit 77), and says so.
 * tests/unit/store/test_store.c covers the same path deterministically with max_page_count. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "harness.h"

#define CONTENT_BYTES 32000u
#define ACK_CHUNK 20 /* ids per AckRequest: each ack's WAL frames must fit in the released reserve */

static srv s;
static char mnt[64];
static uint32_t bob_regid;
static uint8_t sk_bob[64];

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int send_one(int fd, uint64_t id)
{
	static uint8_t content[CONTENT_BYTES];
	randombytes_buf(content, sizeof content); /* incompressible, not that tmpfs compresses */
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *omp = &om;
	req.id = id;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	sm.recipient = "bob";
	sm.timestamp = id;
	sm.n_messages = 1;
	sm.messages = &omp;
	om.device_id = 1;
	om.registration_id = bob_regid;
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	om.content.data = content;
	om.content.len = sizeof content;
	return pw_call(fd, &req, NULL);
}

/* GET /healthz: the HTTP status; the response (headers and body) in resp. */
static int healthz(char *resp, size_t cap)
{
	return http_get(s.port, "/healthz", resp, cap);
}

/* Receives every envelope queued for bob and acknowledges them ACK_CHUNK at a time. Returns the number
 * of ids acknowledged with an OK answer; *failed counts the acks answered with an error. */
static int receive_and_ack_all(int *failed)
{
	uint8_t nonce[32];
	uint64_t pending[200];
	int npending = 0, acked = 0, answers_due = 0, sent_ids[64] = {0};
	uint64_t next_req = 8000000;
	*failed = 0;
	int fd = pw_connect(s.port, nonce);
	if (fd < 0 || pw_auth(fd, nonce, "bob", 1, sk_bob) != PARLEY_OK)
		return -1;
	for (long quiet_since = now_ms(); now_ms() - quiet_since < 3000;) {
		wire_frame f;
		if (pw_recv(fd, &f, 300) != 0) {
			/* a pause in the pushes: acknowledge what came */
			while (npending > 0) {
				int n = npending < ACK_CHUNK ? npending : ACK_CHUNK;
				Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
				Parley__Wire__AckRequest ack = PARLEY__WIRE__ACK_REQUEST__INIT;
				req.id = next_req++;
				req.body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
				req.ack = &ack;
				ack.server_ids = pending + npending - n;
				ack.n_server_ids = (size_t)n;
				if (pw_send_request(fd, &req) != 0)
					goto out;
				sent_ids[(req.id - 8000000) % 64] = n;
				npending -= n;
				answers_due++;
			}
			continue;
		}
		quiet_since = now_ms();
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH &&
		    f.frame->push->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE && npending < 200) {
			pending[npending++] = f.frame->push->envelope->server_id;
		} else if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE && f.frame->response->id >= 8000000) {
			answers_due--;
			if (f.frame->response->status == PARLEY_OK) {
				acked += sent_ids[(f.frame->response->id - 8000000) % 64];
			} else {
				(*failed)++;
				fprintf(stderr, "# ack refused: %s\n", parley_errname((int)f.frame->response->status));
			}
		}
		wire__frame_free(&f);
	}
out:
	IT_EQ(answers_due, 0);
	IT_EQ(npending, 0);
	close(fd);
	return acked;
}

static void fill_then_drain(void)
{
	char resp[4096], reserve[96];
	uint8_t pk[32], sk_alice[64];
	int alice, bob, sent = 0, st = PARLEY_OK, failed = 0;
	snprintf(reserve, sizeof reserve, "%s/parley.db.reserve", mnt);
	IT_CHECK(access(reserve, F_OK) == 0); /* allocated at start */
	IT_EQ(pw_register(s.port, "alice", pk, sk_alice, &alice), PARLEY_OK);
	IT_EQ(pw_register(s.port, "bob", pk, sk_bob, &bob), PARLEY_OK);
	IT_EQ(pw_upload_keys(bob, &bob_regid, 0, 1), PARLEY_OK);
	close(bob);
	IT_EQ(healthz(resp, sizeof resp), 200);

	/* fill: a 16 MiB disk holds a few hundred 32 kB messages */
	while (sent < 2000 && (st = send_one(alice, 100 + (uint64_t)sent)) == PARLEY_OK)
		sent++;
	printf("# %d sends accepted, then %s\n", sent, parley_errname(st));
	IT_EQ(st, PARLEY_E_STORAGE_FULL);
	IT_CHECK(sent > 50);
	IT_EQ(healthz(resp, sizeof resp), 503);
	IT_CHECK(strstr(resp, "\"status\":\"degraded\"") != NULL && strstr(resp, "storage full") != NULL);
	/* readiness too: a load balancer takes a full node out (t39 covers live/ready otherwise) */
	IT_EQ(http_get(s.port, "/readyz", resp, sizeof resp), 503);
	IT_CHECK(strstr(resp, "\"status\":\"unready\",\"reason\":\"storage full") != NULL);
	IT_EQ(http_get(s.port, "/livez", resp, sizeof resp), 200);
	IT_EQ(send_one(alice, 99999), PARLEY_E_STORAGE_FULL); /* still refused, quickly */

	/* the recipient drains the full disk */
	int acked = receive_and_ack_all(&failed);
	printf("# %d envelopes received and acknowledged on the full disk, %d acks refused\n", acked, failed);
	IT_EQ(acked, sent);
	IT_EQ(failed, 0);

	/* room again: healthy, sends accepted */
	int h = 0;
	for (long until = now_ms() + 15000; (h = healthz(resp, sizeof resp)) != 200 && now_ms() < until;)
		usleep(200 * 1000);
	IT_EQ(h, 200);
	char *body = strstr(resp, "\r\n\r\n");
	printf("# /healthz after the drain: %d %s; reserve %s\n", h, body != NULL ? body + 4 : "?",
	       access(reserve, F_OK) == 0 ? "re-created" : "missing");
	IT_EQ(http_get(s.port, "/readyz", resp, sizeof resp), 200);
	IT_EQ(send_one(alice, 100000), PARLEY_OK);
	close(alice);
	IT_CHECK(server_alive(s.port));
}

int main(void)
{
	if (it_pg()) {
		/* the reserve file and the database on a tmpfs are SQLite's; a PostgreSQL cluster's disk is
		 * the operator's (its own full-disk behaviour is PANIC and recovery, not this path) */
		printf("# SKIP: skipped on postgres: the disk-full reserve is the SQLite store's\n");
		return 77;
	}
	if (geteuid() != 0) {
		printf("# SKIP: needs root to mount a small tmpfs (CI runs as root)\n");
		return 77;
	}
	if (sodium_init() < 0)
		return 99;
	snprintf(mnt, sizeof mnt, "/tmp/parley-full-XXXXXX");
	if (mkdtemp(mnt) == NULL)
		return 99;
	/* 16 MiB: the database, a WAL of up to 4 MiB between checkpoints, the 1 MiB reserve */
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=16m,mode=0700") != 0) {
		printf("# SKIP: cannot mount a tmpfs here: %s\n", strerror(errno));
		rmdir(mnt);
		return 77;
	}
	char db[128];
	snprintf(db, sizeof db, "--database=%s/parley.db", mnt);
	const char *flags[] = {db, "--storage_reserve_bytes=1048576", "--queue_limit=100000", NULL};
	srv_start(&s, flags);
	IT_RUN(fill_then_drain);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	if (umount(mnt) != 0)
		fprintf(stderr, "# umount %s: %s\n", mnt, strerror(errno));
	rmdir(mnt);
	return it_failures ? 1 : 0;
}
