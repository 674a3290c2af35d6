/* Forwarding a thread with N history messages (default 1,000 of ~100 bytes) from an admin to an agent
 * with one device, against a real parleyd on loopback: wall time of parley_thread_forward (ThreadGet,
 * bundle, the stored forward, every history chunk queued), time until the agent's client imported all
 * of it, chunks, and the bytes on the wire for the agent's device (the ciphertexts the server queued
 * for it from the admin: bundle + chunks). The history is written into the admin's local store
 * directly (the forward reads it from there; how it got there is not what is measured). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parley/client.h>
#include <parley/entity.h>
#include <parley/error.h>
#include <parley/thread.h>
#include <sqlite3.h>

#include "client/client_internal.h"
#include "harness.h"

static srv s;
static char url[128];
static size_t imported;
static int complete;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_forwarded(parley_client *c, const parley_thread_forwarded *f, void *user)
{
	imported = f->history;
	complete = f->history_complete;
}

static void on_message(parley_client *c, const parley_message *m, void *user)
{
}

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "forward_bench: %s failed\n", what);
		srv_stop(&s);
		srv_cleanup(&s);
		exit(1);
	}
}

static int64_t db_int(const char *sql)
{
	sqlite3 *db = it_server_db(&s);
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000;
	size_t body_len = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
	char code[PARLEY_ENROL_CODE_MAX + 1], sql[256], *body;
	parley_client *alice, *bob, *carol;
	parley_thread_info info;
	parley_events ev;
	parley_thread_events tev;
	uint64_t id = 0, req = 0, thread_id = 0, bob_id;
	int64_t msgs, bytes;
	double t0, t1, t2;

	if (n == 0 || n > PARLEY_THREAD_HISTORY_MAX || body_len == 0 || body_len > PARLEY_MESSAGE_MAX) {
		fprintf(stderr, "usage: forward_bench [MESSAGES 1..%d] [BODY_BYTES 1..%d]\n", PARLEY_THREAD_HISTORY_MAX,
			PARLEY_MESSAGE_MAX);
		return 2;
	}
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	alice = it_user(&s, url, "alice");
	bob = it_user(&s, url, "bob");
	carol = it_user(&s, url, "carol");
	must(alice && bob && carol, "accounts");
	must(parley_entity_create(alice, "acme", "Acme", &id) == PARLEY_OK, "entity");
	must(parley_entity_code(alice, "acme", 0, PARLEY_ROLE_AGENT, code, sizeof code, NULL) == PARLEY_OK, "code");
	must(parley_entity_join(bob, "acme", code, &req) == PARLEY_OK, "join");
	must(parley_entity_decide(alice, "acme", req, 1) == PARLEY_OK, "decide");
	must(parley_thread_send_entity(carol, "acme", (const uint8_t *)"hello", 5, &thread_id) == PARLEY_OK, "open");
	must(parley_thread_get(alice, thread_id, &info) == PARLEY_OK, "get");
	/* the history the forward carries, in alice's sealed store */
	body = malloc(body_len);
	must(body != NULL && client__history_ready(alice) == PARLEY_OK, "history");
	for (unsigned i = 0; i < n; i++) {
		snprintf(body, body_len, "history message %u ", i);
		memset(body + strlen(body), 'x', body_len - strlen(body));
		must(client__history_thread(alice, thread_id, i % 2 ? "carol" : "alice", 1, 1700000000000ull + i,
					    1700000000000ull + i, 0, 1, (const uint8_t *)body, body_len) == PARLEY_OK,
		     "history row");
	}
	free(body);

	t0 = now_s();
	must(parley_thread_forward(alice, thread_id, "bob", "bench", n) == PARLEY_OK, "forward");
	t1 = now_s();
	/* what alice's device queued for bob's device (bundle + chunks), before bob reads (and acks) it */
	bob_id = (uint64_t)db_int("SELECT id FROM accounts WHERE handle = 'bob'");
	snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE account_id = %llu AND sender_handle = 'alice'",
		 (unsigned long long)bob_id);
	msgs = db_int(sql);
	snprintf(sql, sizeof sql,
		 "SELECT sum(length(content)) FROM messages WHERE account_id = %llu AND sender_handle = 'alice'",
		 (unsigned long long)bob_id);
	bytes = db_int(sql);
	memset(&ev, 0, sizeof ev);
	ev.on_message = on_message;
	parley_client_set_events(bob, &ev);
	memset(&tev, 0, sizeof tev);
	tev.on_thread_forwarded = on_forwarded;
	parley_thread_set_events(bob, &tev);
	parley_client_disconnect(bob); /* the next connection receives */
	(void)parley_thread_get(bob, thread_id, &info); /* connects; bob is a member now */
	for (int i = 0; i < 600 && !complete; i++)
		(void)parley_client_run(bob, 50);
	t2 = now_s();
	must(complete && imported == n, "import");

	printf("forward of %u history messages of %zu bytes to 1 agent device\n", n, body_len);
	printf("  parley_thread_forward (get, bundle, stored forward, chunks queued): %.3f s\n", t1 - t0);
	printf("  agent imported everything after: %.3f s (from the forward's start: %.3f s)\n", t2 - t1, t2 - t0);
	printf("  pairwise messages to the agent device: %lld (the bundle + %lld history chunks); their ciphertexts:"
	       " %lld bytes (%.1f bytes per history message)\n",
	       (long long)msgs, (long long)msgs - 1, (long long)bytes, (double)bytes / n);
	parley_client_free(alice);
	parley_client_free(bob);
	parley_client_free(carol);
	srv_stop(&s);
	srv_cleanup(&s);
	return 0;
}
