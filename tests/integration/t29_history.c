/* t29: the local history (docs/history.md), against a real parleyd with real libparley clients.
 *
 *  exchange:   alice (a1, and a2 linked) and bob exchange messages: bob's history with alice and
 *              alice's with bob list both directions newest first; a2 lists alice's message (a sent
 *              copy: outgoing, from device 1) and bob's reply.
 *  restart:    a new parley_client on bob's directory lists the same history.
 *  at rest:    a unique marker sent as a body is in none of bob's files (client.db, signal.db, their
 *              -wal while open, history.key); positive controls: the same scan finds it in the listed
 *              body in memory and in a SQLite file that holds it unsealed.
 *  passphrase: carol's history is sealed under a passphrase (no key file); a new client with a wrong
 *              passphrase, or none, gets STORAGE_KEY for listing and sending, and a message sent to
 *              it meanwhile stays on the server (on_error STORAGE_KEY, nothing handed over) until the
 *              right passphrase receives it.
 *  retention:  dave keeps 5 rows per conversation: after 8 messages his history holds exactly the 5
 *              newest; alice (default bound) keeps all of hers.
 *  crash:      erin's process dies inside on_message (fork, _exit): the redelivered envelope is a
 *              DUPLICATE for the Signal session, and the message is handed over from the history,
 *              exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/error.h>
#include <sodium.h>
#include <sqlite3.h>

#include "harness.h"
#include "scan.h"

static srv s;
static char url[128];
static char marker[48];

#define MUST(cond) IT_MUST(&s, cond)

typedef struct tally {
	int messages, storage_errors;
	char last[128];
} tally;

static void on_msg(parley_client *c, const parley_message *m, void *user)
{
	tally *t = user;
	t->messages++;
	snprintf(t->last, sizeof t->last, "%s", (const char *)m->body);
}
static void on_err(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	printf("# error %s from %s.%u: %s\n", parley_errname(err), handle, (unsigned)device, parley_client_errmsg(c));
	if (err == PARLEY_E_STORAGE_KEY)
		((tally *)user)->storage_errors++;
}

static void listen_with(parley_client *c, tally *t)
{
	parley_events ev = {0};
	memset(t, 0, sizeof(*t));
	ev.on_message = on_msg;
	ev.on_error = on_err;
	ev.user = t;
	parley_client_set_events(c, &ev);
}

static tally last_receive;

/* Receives until n messages (or storage errors) came, at most ~5 s; returns the messages (the tally
 * stays in last_receive). */
static int receive(parley_client *c, int n)
{
	tally *tp = &last_receive, t;
	listen_with(c, tp);
	(void)parley_connect(c);
	for (int i = 0; i < 50 && tp->messages + tp->storage_errors < n; i++)
		(void)parley_client_run(c, 100);
	(void)parley_client_run(c, 200); /* the acks */
	parley_client_set_events(c, NULL);
	(void)parley_client_run(c, 0);
	parley_client_disconnect(c);
	t = *tp;
	return t.messages;
}

static parley_client *client_with(const char *name, const char *passphrase, unsigned max)
{
	char path[512];
	parley_client_options o;
	parley_client *c = NULL;

	snprintf(path, sizeof path, "%s/%s", s.dir, name);
	parley_client_options_init(&o);
	o.state_dir = path;
	o.server_url = url;
	o.connect_timeout_ms = o.request_timeout_ms = 5000;
	o.storage_passphrase = passphrase;
	o.history_max_per_conversation = max;
	MUST(parley_client_new(&o, &c) == PARLEY_OK);
	return c;
}

static parley_client *alice, *a2, *bob;

/* One listed entry is (outgoing, sender, device, body). */
static void expect(const parley_history_entry *e, int outgoing, const char *sender, uint32_t device, const char *body)
{
	IT_EQ(e->outgoing, outgoing);
	IT_CHECK(strcmp(e->sender, sender) == 0);
	IT_EQ(e->sender_device, device);
	IT_EQ(e->body_len, strlen(body));
	IT_CHECK(e->body != NULL && strcmp((const char *)e->body, body) == 0);
	IT_CHECK(e->timestamp_ms != 0 && e->server_timestamp_ms != 0);
}

static void list_two(parley_client *c, const char *conv, int first_out, const char *first_sender, uint32_t first_dev,
		     const char *first_body, int second_out, const char *second_sender, uint32_t second_dev,
		     const char *second_body)
{
	parley_history_entry e[4];
	size_t n = 0;

	IT_EQ(parley_history_list(c, conv, 0, 4, e, &n), PARLEY_OK);
	IT_EQ(n, 2);
	if (n == 2) {
		expect(&e[0], first_out, first_sender, first_dev, first_body);
		expect(&e[1], second_out, second_sender, second_dev, second_body);
		IT_CHECK(e[0].server_timestamp_ms >= e[1].server_timestamp_ms);
	}
	parley_history_entries_free(e, n);
}

static void test_exchange(void)
{
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES];
	uint32_t id = 0;
	char hello[128];

	alice = it_user(&s, url, "alice");
	bob = it_user(&s, url, "bob");
	MUST(alice != NULL && bob != NULL);
	a2 = it_client_must(&s, url, "a2");
	MUST(parley_device_link_code(a2, "alice", code) == PARLEY_OK);
	MUST(parley_device_add(alice, code, "a2", &id) == PARLEY_OK);
	MUST(parley_link(a2, "alice", id) == PARLEY_OK);
	MUST(id == 2);

	snprintf(hello, sizeof hello, "hello bob %s", marker);
	IT_EQ(parley_send(alice, "bob", hello), PARLEY_OK);
	IT_EQ(receive(bob, 1), 1);
	IT_EQ(parley_send(bob, "alice", "hi alice"), PARLEY_OK);
	IT_EQ(receive(alice, 1), 1);
	IT_EQ(receive(a2, 2), 2); /* the copy of hello and bob's reply */

	list_two(bob, "alice", 1, "bob", 1, "hi alice", 0, "alice", 1, hello);
	list_two(alice, "bob", 0, "bob", 1, "hi alice", 1, "alice", 1, hello);
	list_two(a2, "bob", 0, "bob", 1, "hi alice", 1, "alice", 1, hello);
	/* the at-rest scan while every file of bob is open, -wal included (test_at_rest has the controls) */
	IT_EQ(scan_client_dir(s.dir, "bob", marker, strlen(marker), 1), SCAN_CLEAN);
	/* nothing in other conversations; an invalid id is refused */
	{
		parley_history_entry e[1];
		size_t n = 9;
		IT_EQ(parley_history_list(bob, "carol", 0, 1, e, &n), PARLEY_OK);
		IT_EQ(n, 0);
		IT_EQ(parley_history_list(bob, "no spaces", 0, 1, e, &n), PARLEY_E_INVAL);
	}
}

static void test_restart(void)
{
	parley_client_free(bob);
	bob = client_with("bob", NULL, 0);
	char hello[128];
	snprintf(hello, sizeof hello, "hello bob %s", marker);
	list_two(bob, "alice", 1, "bob", 1, "hi alice", 0, "alice", 1, hello);
}

static void test_at_rest(void)
{
	parley_history_entry e[2];
	size_t n = 0;
	scan_hit hit;
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	/* bob is open (its -wal exists): the history was just read */
	IT_EQ(parley_history_list(bob, "alice", 0, 2, e, &n), PARLEY_OK);
	IT_EQ(n, 2);
	/* positive control 1: the scan sees the marker in the decrypted body */
	IT_CHECK(n == 2 && scan_buf(e[1].body, e[1].body_len, marker, strlen(marker), &hit) == 1);
	parley_history_entries_free(e, n);
	/* reopened: client.db and its -wal are open (signal.db not yet: test_exchange scanned it open) */
	IT_EQ(scan_client_dir(s.dir, "bob", marker, strlen(marker), 0), SCAN_CLEAN);
	IT_EQ(scan_path(s.dir, "bob/client.db-wal", marker, strlen(marker), 1), SCAN_CLEAN);
	IT_EQ(scan_path(s.dir, "bob/history.key", marker, strlen(marker), 1), SCAN_CLEAN);
	IT_EQ(scan_client_dir(s.dir, "a2", marker, strlen(marker), 0), SCAN_CLEAN);
	IT_EQ(scan_client_dir(s.dir, "alice", marker, strlen(marker), 0), SCAN_CLEAN);
	/* positive control 2: a SQLite file holding the body unsealed (what a history without sealing
	 * would be) is caught by the same file scan */
	snprintf(path, sizeof path, "%s/control.db", s.dir);
	MUST(sqlite3_open(path, &db) == SQLITE_OK);
	IT_EQ(sqlite3_exec(db, "CREATE TABLE history (body BLOB)", NULL, NULL, NULL), SQLITE_OK);
	IT_EQ(sqlite3_prepare_v2(db, "INSERT INTO history VALUES (?)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, marker, (int)strlen(marker), SQLITE_STATIC);
	IT_EQ(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	IT_EQ(scan_path(s.dir, "control.db", marker, strlen(marker), 1), SCAN_FOUND);
}

static void test_passphrase(void)
{
	parley_client *carol = client_with("carol", "carol's passphrase", 0), *x;
	parley_history_entry e[4];
	size_t n = 0;
	struct stat st;
	char path[512];
	tally t;

	MUST(parley_register(carol, "carol", NULL) == PARLEY_OK);
	IT_EQ(parley_send(alice, "carol", "to carol, sealed by passphrase"), PARLEY_OK);
	IT_EQ(receive(carol, 1), 1);
	IT_EQ(parley_history_list(carol, "alice", 0, 4, e, &n), PARLEY_OK);
	IT_EQ(n, 1);
	if (n == 1)
		expect(&e[0], 0, "alice", 1, "to carol, sealed by passphrase");
	parley_history_entries_free(e, n);
	snprintf(path, sizeof path, "%s/carol/history.key", s.dir);
	IT_CHECK(stat(path, &st) != 0); /* no key file in passphrase mode */
	parley_client_free(carol);

	/* wrong passphrase, then none: refused, nothing read, nothing sent */
	x = client_with("carol", "carol's passphrasE", 0);
	IT_EQ(parley_history_list(x, "alice", 0, 4, e, &n), PARLEY_E_STORAGE_KEY);
	IT_EQ(n, 0);
	IT_EQ(parley_send(x, "alice", "must not go"), PARLEY_E_STORAGE_KEY);
	/* a message arriving meanwhile is left on the server */
	IT_EQ(parley_send(alice, "carol", "second, waits for the right passphrase"), PARLEY_OK);
	listen_with(x, &t);
	(void)parley_connect(x);
	for (int i = 0; i < 30 && t.storage_errors == 0; i++)
		(void)parley_client_run(x, 100);
	IT_EQ(t.messages, 0);
	IT_CHECK(t.storage_errors >= 1);
	parley_client_free(x);
	x = client_with("carol", NULL, 0);
	IT_EQ(parley_history_list(x, "alice", 0, 4, e, &n), PARLEY_E_STORAGE_KEY);
	parley_client_free(x);

	carol = client_with("carol", "carol's passphrase", 0);
	IT_EQ(receive(carol, 1), 1);
	IT_EQ(parley_history_list(carol, "alice", 0, 4, e, &n), PARLEY_OK);
	IT_EQ(n, 2);
	if (n == 2)
		expect(&e[0], 0, "alice", 1, "second, waits for the right passphrase");
	parley_history_entries_free(e, n);
	parley_client_free(carol);
}

static void test_retention(void)
{
	parley_client *dave = client_with("dave", NULL, 5);
	parley_history_entry e[16];
	size_t n = 0, total = 0;
	char body[32];

	MUST(parley_register(dave, "dave", NULL) == PARLEY_OK);
	for (int i = 1; i <= 8; i++) {
		snprintf(body, sizeof body, "r%d", i);
		IT_EQ(parley_send(alice, "dave", body), PARLEY_OK);
	}
	IT_EQ(receive(dave, 8), 8);
	IT_EQ(parley_history_list(dave, "alice", 0, 16, e, &n), PARLEY_OK);
	IT_EQ(n, 5);
	for (size_t i = 0; i < n; i++) {
		snprintf(body, sizeof body, "r%d", 8 - (int)i);
		IT_CHECK(strcmp((const char *)e[i].body, body) == 0);
	}
	parley_history_entries_free(e, n);
	IT_EQ(parley_history_list(alice, "dave", 0, 16, e, &n), PARLEY_OK);
	IT_EQ(n, 8);
	parley_history_entries_free(e, n);
	/* clear */
	IT_EQ(parley_history_clear(dave, "alice", &total), PARLEY_OK);
	IT_EQ(total, 5);
	IT_EQ(parley_history_list(dave, "alice", 0, 16, e, &n), PARLEY_OK);
	IT_EQ(n, 0);
	parley_client_free(dave);
}

/* The crash window: erin's process dies inside on_message (after the decrypt saved the session and the
 * history row was written, before the message was marked handed and acknowledged). The server
 * redelivers; the session says DUPLICATE; the message is handed over from the history, once. */
static void die_in_callback(parley_client *c, const parley_message *m, void *user)
{
	_exit(42);
}

/* alice sends body; erin's process dies in on_message; a new erin gets it once, from the history. */
static void crash_once(const char *body)
{
	parley_client *erin;
	parley_events ev = {0};
	int status = 0;
	pid_t pid;

	IT_EQ(parley_send(alice, "erin", body), PARLEY_OK);
	fflush(NULL);
	pid = fork();
	MUST(pid >= 0);
	if (pid == 0) {
		parley_client *x = client_with("erin", NULL, 0);
		ev.on_message = die_in_callback;
		parley_client_set_events(x, &ev);
		(void)parley_connect(x);
		for (int i = 0; i < 50; i++)
			(void)parley_client_run(x, 100);
		_exit(1); /* never got it */
	}
	MUST(waitpid(pid, &status, 0) == pid);
	IT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
	erin = client_with("erin", NULL, 0);
	IT_EQ(receive(erin, 1), 1);
	IT_CHECK(strcmp(last_receive.last, body) == 0);
	IT_EQ(receive(erin, 1), 0); /* handed over once, acknowledged */
	parley_client_free(erin);
}

static void test_crash_window(void)
{
	parley_client *erin = client_with("erin", NULL, 0);
	parley_history_entry e[4];
	size_t n = 0;

	MUST(parley_register(erin, "erin", NULL) == PARLEY_OK);
	parley_client_free(erin);
	/* the first message waits in erin's quarantine for alice's device list (acked, retried from there:
	 * the death hits the retry), the second is decrypted as it arrives (the death hits the envelope,
	 * which the server then redelivers) */
	crash_once("lost in a crash? no");
	crash_once("nor the second one");
	erin = client_with("erin", NULL, 0);
	IT_EQ(parley_history_list(erin, "alice", 0, 4, e, &n), PARLEY_OK);
	IT_EQ(n, 2);
	parley_history_entries_free(e, n);
	parley_client_free(erin);
}

int main(void)
{
	uint8_t rnd[12];
	char hex[25];

	if (sodium_init() < 0)
		return 1;
	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
	snprintf(marker, sizeof marker, "HISTMARK-%s", hex);
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	IT_RUN(test_exchange);
	IT_RUN(test_restart);
	IT_RUN(test_at_rest);
	IT_RUN(test_passphrase);
	IT_RUN(test_retention);
	IT_RUN(test_crash_window);
	parley_client_free(alice);
	parley_client_free(a2);
	parley_client_free(bob);
	srv_stop(&s);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
