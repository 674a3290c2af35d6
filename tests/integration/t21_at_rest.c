/* 21: old secrets do not stay at rest (security item 9), against a real parleyd with real libparley
 * clients. The files are scanned (tests/integration/scan.c: raw bytes and the usual encodings) while
 * the clients still hold them open, as a device imaged while the app runs or after a crash would
 * leave them, -wal included:
 *   (a) a retired signed prekey's private key is in none of the client's files once its grace period
 *       is over (and still there within it);
 *   (b) once a session moved on (new messages, DH steps), the old root and chain keys are in none of
 *       the client's files;
 *   (c) an acknowledged envelope's ciphertext is in none of parleyd's files after a clean stop (the
 *       store runs with secure_delete: the freed cell is zeroed, not left in the page).
 * Every negative scan has a positive control: the same scan finds the same bytes while they must
 * still be there, so a scan that cannot see cannot pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/error.h>
#include <sqlite3.h>

#include "harness.h"
#include "scan.h"
#include "signal/state.h"

#define DAY_MS (24ll * 3600 * 1000)

static srv s;
static char url[128];
static parley_client *alice, *bob;

static parley_client *client(const char *name)
{
	parley_client *c = it_client_at(s.dir, name, url, 5000);
	IT_CHECK(c != NULL);
	return c;
}

/* ---- a second connection to a database the client or the server holds open ---- */

static sqlite3 *db_open(const char *rel)
{
	char path[512];
	sqlite3 *db = NULL;
	snprintf(path, sizeof path, "%s/%s", s.dir, rel);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "# cannot open %s\n", path);
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* Runs sql (one statement, optional integer parameter ?1) on rel. Copies the first row's first column
 * into out when it is given (blob, up to cap bytes) and returns its length; otherwise returns the
 * column as an integer (or 0 when there is no row). -1 on error. */
static long long db_query(const char *rel, const char *sql, long long arg, uint8_t *out, size_t cap)
{
	sqlite3 *db = db_open(rel);
	sqlite3_stmt *st = NULL;
	long long r = -1;
	int rc;

	if (db == NULL)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, arg);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = out != NULL ? -1 : 0;
	} else if (rc == SQLITE_ROW && out == NULL) {
		r = sqlite3_column_int64(st, 0);
	} else if (rc == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) <= cap) {
		r = sqlite3_column_bytes(st, 0);
		memcpy(out, sqlite3_column_blob(st, 0), (size_t)r);
	}
out:
	if (r < 0)
		fprintf(stderr, "# %s on %s: %s\n", sql, rel, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db); /* not the last connection: no checkpoint, the -wal stays as the owner left it */
	return r;
}

/* Runs c until cond_sql on rel gives `want` or about 5 s passed; returns the last value. */
static long long run_until(parley_client *c, const char *rel, const char *cond_sql, long long want)
{
	long long v = -1;
	for (int i = 0; i < 100 && (v = db_query(rel, cond_sql, 0, NULL, 0)) != want; i++)
		parley_client_run(c, 50);
	return v;
}

/* A fresh connection of bob (a new client object: the key check runs once per client and connection). */
static void reconnect_bob(void)
{
	parley_client_free(bob);
	bob = client("bob");
	IT_EQ(parley_connect(bob), PARLEY_OK);
}

/* The client's files (-wal must exist: the client is open) and its journals, if any. */
static int scan_client(const char *name, const uint8_t *key, size_t len)
{
	static const char *const journals[] = {"client.db-journal", "signal.db-journal"};
	char rel[300];
	int r = scan_client_dir(s.dir, name, key, len, 1);
	for (size_t i = 0; i < sizeof journals / sizeof journals[0]; i++) {
		snprintf(rel, sizeof rel, "%s/%s", name, journals[i]);
		r |= scan_path(s.dir, rel, key, len, 0);
	}
	return r;
}

/* ---- (a) signed prekeys ---- */

static void test_signed_prekey_deleted(void)
{
	uint8_t old_priv[64];

	bob = client("bob");
	IT_EQ(parley_register(bob, "bob", NULL), PARLEY_OK);
	IT_EQ(db_query("bob/signal.db", "SELECT count(*) FROM signed_prekeys", 0, NULL, 0), 1);
	IT_EQ(db_query("bob/signal.db", "SELECT priv FROM signed_prekeys", 0, old_priv, sizeof old_priv), 32);

	/* a week later: the key check rotates (signed prekey 2); key 1 is kept for its grace period */
	IT_EQ(db_query("bob/client.db", "UPDATE e2e_meta SET spk_created_ms = spk_created_ms - ?1", 8 * DAY_MS, NULL, 0),
	      0);
	reconnect_bob();
	IT_EQ(run_until(bob, "bob/signal.db", "SELECT count(*) FROM signed_prekeys", 2), 2);
	parley_client_run(bob, 200);
	IT_EQ(db_query("bob/signal.db", "SELECT count(*) FROM signed_prekeys WHERE id = 1", 0, NULL, 0), 1);
	IT_EQ(scan_client("bob", old_priv, 32), SCAN_FOUND); /* positive control: the scan sees key 1 */

	/* key 2 has existed for longer than the grace: key 1 must go, from every file */
	IT_EQ(db_query("bob/signal.db", "UPDATE signed_prekeys SET timestamp_ms = timestamp_ms - ?1 WHERE id = 2",
		       31 * DAY_MS, NULL, 0),
	      0);
	reconnect_bob();
	IT_EQ(run_until(bob, "bob/signal.db", "SELECT count(*) FROM signed_prekeys", 1), 1);
	IT_EQ(db_query("bob/signal.db", "SELECT count(*) FROM signed_prekeys WHERE id = 2", 0, NULL, 0), 1);
	IT_EQ(scan_client("bob", old_priv, 32), SCAN_CLEAN);
}

/* ---- (b) session keys ---- */

typedef struct inbox {
	int n;
} inbox;

static void on_message(parley_client *c, const parley_message *m, void *user)
{
	((inbox *)user)->n++;
}

/* Connects c afresh and receives until `want` messages arrived (about 5 s at most); acks go out. */
static int receive(parley_client *c, int want)
{
	inbox in = {0};
	parley_events ev;
	memset(&ev, 0, sizeof ev);
	ev.on_message = on_message;
	ev.user = &in;
	parley_client_disconnect(c);
	parley_client_set_events(c, &ev);
	IT_EQ(parley_connect(c), PARLEY_OK);
	for (int i = 0; i < 100 && in.n < want; i++)
		parley_client_run(c, 50);
	parley_client_run(c, 300); /* acks and receipts */
	parley_client_set_events(c, NULL);
	return in.n;
}

/* bob's current root key and newest receiving chain key for alice, from his stored record */
static int bob_session_keys(uint8_t root[32], uint8_t ck[32])
{
	static uint8_t rec[1 << 20];
	long long n = db_query("bob/signal.db", "SELECT record FROM sessions", 0, rec, sizeof rec);
	sig_record r;
	int ok = 0;

	if (n <= 0 || sig__record_decode(&r, rec, (size_t)n) != PARLEY_OK)
		return 0;
	if (r.n_states > 0 && r.states[0].n_recv > 0) {
		memcpy(root, r.states[0].root, 32);
		memcpy(ck, r.states[0].recv[r.states[0].n_recv - 1].ck, 32);
		ok = 1;
	}
	sig__record_free(&r);
	return ok;
}

static void test_session_keys_gone(void)
{
	uint8_t root0[32], ck0[32], root1[32], ck1[32];

	alice = client("alice");
	IT_EQ(parley_register(alice, "alice", NULL), PARLEY_OK);
	IT_EQ(parley_send(alice, "bob", "first"), PARLEY_OK);
	IT_EQ(receive(bob, 1), 1);
	IT_CHECK(bob_session_keys(root0, ck0));
	IT_EQ(scan_client("bob", ck0, 32), SCAN_FOUND); /* positive control */

	/* the conversation goes on: one more message on that chain (bob keeps the chain, with its key
	 * one step further), then two DH steps on bob's side and a new receiving chain */
	IT_EQ(parley_send(alice, "bob", "second"), PARLEY_OK);
	IT_EQ(receive(bob, 1), 1);
	IT_EQ(parley_send(bob, "alice", "reply"), PARLEY_OK);
	IT_EQ(receive(alice, 1), 1);
	IT_EQ(parley_send(alice, "bob", "third"), PARLEY_OK);
	IT_EQ(parley_send(alice, "bob", "fourth"), PARLEY_OK);
	IT_EQ(receive(bob, 2), 2);
	IT_CHECK(bob_session_keys(root1, ck1));
	IT_CHECK(memcmp(root0, root1, 32) != 0 && memcmp(ck0, ck1, 32) != 0);
	IT_EQ(scan_client("bob", root1, 32), SCAN_FOUND); /* the current keys are there */
	IT_EQ(scan_client("bob", root0, 32), SCAN_CLEAN);
	IT_EQ(scan_client("bob", ck0, 32), SCAN_CLEAN);
}

/* ---- (c) the server's copy of an acknowledged envelope ---- */

static void test_acked_ciphertext_gone(void)
{
	uint8_t content[4096], marker[48];
	long long n;

	parley_client_disconnect(bob);
	IT_EQ(parley_send(alice, "bob", "queued for bob"), PARLEY_OK);
	/* the envelope as parleyd stores it: its last bytes (ciphertext and MAC) are random, a marker */
	it_db *db = it_db_open(&s);
	n = it_db_blob(db, content, sizeof content,
		       "SELECT content FROM messages WHERE account_id = (SELECT id FROM accounts WHERE handle = 'bob')"
		       " ORDER BY id DESC LIMIT 1",
		       NULL);
	it_db_close(db);
	IT_CHECK(n >= (long long)sizeof marker);
	if (n < (long long)sizeof marker)
		return;
	memcpy(marker, content + n - (long long)sizeof marker, sizeof marker);
	IT_EQ(srv_scan(&s, marker, sizeof marker, 1), SCAN_FOUND); /* positive control: queued */

	IT_EQ(receive(bob, 1), 1);
	IT_EQ(it_srv_int(&s, "SELECT count(*) FROM messages WHERE account_id ="
			     " (SELECT id FROM accounts WHERE handle = 'bob')"),
	      0); /* acknowledged and deleted */
	parley_client_free(alice);
	parley_client_free(bob);
	alice = bob = NULL;
	IT_EQ(srv_stop(&s), 0);
	/* SQLite zeroes a deleted row's bytes (secure_delete). PostgreSQL leaves a dead tuple in the heap
	 * and the row in the WAL until VACUUM and segment recycling; a dump shows live rows only, so the
	 * scan would prove nothing there. */
	if (it_pg())
		it_pg_skip("acknowledged ciphertext gone from the files at rest",
			   "deleted rows stay in the cluster's heap and WAL files until VACUUM, beyond a dump's view");
	else
		IT_EQ(srv_scan(&s, marker, sizeof marker, 0), SCAN_CLEAN);
}

int main(void)
{
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	IT_RUN(test_signed_prekey_deleted);
	IT_RUN(test_session_keys_gone);
	IT_RUN(test_acked_ciphertext_gone);
	parley_client_free(alice);
	parley_client_free(bob);
	if (it_failures == 0)
		srv_cleanup(&s);
	else
		fprintf(stderr, "# kept %s for inspection\n", s.dir);
	return it_failures != 0;
}
