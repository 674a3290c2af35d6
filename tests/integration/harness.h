/* Black-box test harness: starts a real parleyd on an ephemeral loopback port and talks to it with
 * raw sockets that send exact bytes (mosquitto test/broker habit), plus protobuf helpers. */
#ifndef PARLEY_IT_HARNESS_H
#define PARLEY_IT_HARNESS_H
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/types.h>

#include <parley/client.h>

#include "scan.h"
#include "wire/wire.h"

typedef struct srv {
	pid_t pid;
	int port;
	char dir[256];
	char extra[16][160]; /* extra --name=value flags kept for restarts */
	int nextra;
	int admin_port;  /* the admin listener (/metrics); 0 = none */
	long nofile[2];  /* RLIMIT_NOFILE soft, hard set in the child before exec; 0 = inherited */
	char dbname[64]; /* PostgreSQL mode: this server's database (kept across restarts), else "" */
	char store[512]; /* PostgreSQL mode: its URL, passed as --store */
} srv;

/* srv_start with RLIMIT_NOFILE set to soft:hard in parleyd (as `prlimit --nofile=soft:hard` would). */
void srv_start_nofile(srv *s, const char *const *extra, long soft, long hard);
/* Start parleyd ($PARLEYD) with a fresh data dir (or the same one on restart) and the given extra flags
 * (NULL-terminated). Fails the test process on error. */
void srv_start(srv *s, const char *const *extra);
/* A node of peer's cluster: like srv_start, but with peer's auth_otp.key copied into the new data dir
 * first (every node of one database must use one OTP key: a node with another refuses to start on
 * PostgreSQL), and no database of its own: pass peer's store in extra (--store=, --database=). */
void srv_start_peer(srv *s, const srv *peer, const char *const *extra);
void srv_restart(srv *s);
int srv_stop(srv *s);      /* SIGTERM; returns the exit status (0 = clean), -1 on timeout */
void srv_kill9(srv *s);
int srv_signal(srv *s, int sig);
/* Whole log so far (stderr of parleyd); caller frees. */
char *srv_log(srv *s);
void srv_cleanup(srv *s); /* rm -rf the data dir; in PostgreSQL mode, drop its database */

int tcp_connect(int port);
/* From a given loopback source address (e.g. "127.0.0.2": the whole 127/8 is local on Linux), so a test
 * can be several clients for a per-address limit. */
int tcp_connect_from(int port, const char *src_ip);
/* VmRSS of a process in KiB (from /proc/<pid>/status), -1 if unreadable. */
long proc_rss_kb(pid_t pid);
/* The admin port of the parleyd listening on public port `port` (0 if it has none). */
int srv_admin_port(int port);
int tcp_connect_small_rcvbuf(int port, int rcvbuf);
int send_all(int fd, const void *buf, size_t len);
/* Read until `len` bytes or timeout/EOF; returns bytes read. */
ssize_t recv_exact(int fd, void *buf, size_t len, int timeout_ms);
/* Read an HTTP response header+body until close or Content-Length satisfied. Returns status or -1. */
int http_request(int port, const char *raw_request, char *resp, size_t cap);
int http_get(int port, const char *path, char *resp, size_t cap);

/* WebSocket over a raw socket. ws_open performs the upgrade; returns fd or -1. */
int ws_open(int port);
/* The same from a given loopback source address ("127.0.0.9"), for per-address limits. */
int ws_open_from(int port, const char *src);
/* One frame: opcode, FIN bit, masked or not, payload. */
int ws_send_frame(int fd, int opcode, int fin, int masked, const void *payload, size_t len);
/* Read one server frame; returns payload length, sets *opcode; -1 on EOF/timeout. Payload cap-limited. */
ssize_t ws_recv_frame(int fd, int *opcode, uint8_t *buf, size_t cap, int timeout_ms);
/* Read frames until a close frame; returns its status code (1005 if none), or -1 if the socket closed or
 * timed out first. Skips other frames. */
int ws_expect_close(int fd, int timeout_ms);
/* Open a WebSocket and read the challenge push; nonce (32 bytes) copied out. */
int pw_connect(int port, uint8_t nonce[32]);
int pw_connect_from(int port, const char *src, uint8_t nonce[32]);
/* Send one Frame{Request} (masked binary). */
int pw_send_request(int fd, Parley__Wire__Request *req);
/* Read the next Frame (skipping pings); decoded into *out (wire__frame_free after). 0 on success. */
int pw_recv(int fd, wire_frame *out, int timeout_ms);
/* Send a request and wait for its Response (same id): returns the status, -1 on error; if keep is
 * non-NULL the response frame is kept there (wire__frame_free it). */
int pw_call(int fd, Parley__Wire__Request *req, wire_frame *keep);
/* Send raw bytes as one masked binary message and return the Response status for id, or -(close code)
 * if the server closed instead (-1 on timeout). */
int pw_raw(int fd, const void *bytes, size_t len, uint64_t id);
/* Send a Ping request with id and wait for its response; 0 if answered OK. */
int pw_ping(int fd, uint64_t id);

/* Accounts: register handle with a new Ed25519 key on a fresh connection (fd returned authenticated).
 * Returns the response status; pk/sk filled. */
int pw_register(int port, const char *handle, uint8_t pk[32], uint8_t sk[64], int *fd_out);
/* The account key pw_register* sends (33 bytes); NULL (the default): a fixed key nobody can sign with. */
extern const uint8_t *pw_account_key;
/* Upload an identity, a signed prekey and n_otpk (<= 100) one-time prekeys numbered from first_id on an
 * authenticated connection; *regid gets the new registration id. Returns the response status. */
int pw_upload_keys(int fd, uint32_t *regid, int n_otpk, uint32_t first_id);
/* The same from source address src (NULL: any); *retry_after_ms (may be NULL) gets the response's. */
int pw_register_from(int port, const char *src, const char *handle, uint8_t pk[32], uint8_t sk[64], int *fd_out,
		     uint64_t *retry_after_ms);
int pw_auth(int fd, const uint8_t nonce[32], const char *handle, uint32_t device_id, const uint8_t sk[64]);

/* A fresh connection that can still do a ping round trip: proves the server keeps serving. */
int server_alive(int port);

/* The value of an unlabelled integer metric from /metrics (scraped from the admin listener of the
 * parleyd started on `port`). A metric that is missing (or not an
 * integer, or /metrics not answering) is a test failure, recorded here with the caller's line, and
 * reads as 0: a `>= N` or `> before` check cannot pass vacuously on it. */
uint64_t metric_value_at(const char *file, int line, int port, const char *name);
#define metric_value(port, name) metric_value_at(__FILE__, __LINE__, port, name)

/* Scans the server's files for marker (raw and encoded, see scan.h): data/parley.db, the log, and
 * parley.db-wal and -shm, which must exist when live (the server runs; after a clean stop they are
 * gone). In PostgreSQL mode, the log and a dump of its database taken now (it_pg_dump; the cluster's
 * files hold the same rows, and deleted ones until a vacuum, which no dump shows). Returns SCAN_CLEAN, or SCAN_FOUND and/or SCAN_MISSING (bits); each hit or missing file is
 * reported on stderr. */
int srv_scan(srv *s, const void *marker, size_t len, int live);

extern int it_failures;
#define IT_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			it_failures++;                                                             \
			fprintf(stderr, "not ok - %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
		}                                                                                  \
	} while (0)
#define IT_EQ(a, b)                                                                                \
	do {                                                                                       \
		long long it__a = (long long)(a), it__b = (long long)(b);                          \
		if (it__a != it__b) {                                                              \
			it_failures++;                                                             \
			fprintf(stderr, "not ok - %s:%d: %s == %s (%lld != %lld)\n", __FILE__,     \
				__LINE__, #a, #b, it__a, it__b);                                   \
		}                                                                                  \
	} while (0)
#define IT_RUN(fn)                                                                                 \
	do {                                                                                       \
		int it__before = it_failures;                                                      \
		fn();                                                                              \
		printf("%s - %s\n", it_failures == it__before ? "ok" : "not ok", #fn);             \
		fflush(stdout);                                                                    \
	} while (0)

/* A libparley client with its state in dir/name, talking to url; timeout_ms (0: the library's
 * defaults) bounds connecting and each request. NULL (after a "# " line on stderr) if it cannot be made. */
parley_client *it_client_at(const char *dir, const char *name, const char *url, int timeout_ms);
/* For steps a test cannot go on without: "Bail out!" (TAP) with the place, the server stopped and its
 * directory removed, exit 99. */
#define IT_MUST(srvp, cond)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "Bail out! %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
			srv_cleanup(srvp);                                                         \
			exit(99);                                                                  \
		}                                                                                  \
	} while (0)
/* it_client_at(s->dir, name, url, 0), or bail out (IT_MUST) when it cannot be made. */
parley_client *it_client_must(srv *s, const char *url, const char *name);
/* it_client_at(s->dir, handle, url, 5000) registered as handle (a failure counts, NULL if no client). */
parley_client *it_user(const srv *s, const char *url, const char *handle);
/* The running server's database (data/parley.db; WAL mode lets a test read and write it while parleyd
 * runs, as an operator could), with a 5 s busy timeout; a failure counts and returns NULL. SQLite only:
 * new code uses it_db_open, which works on both backends. */
struct sqlite3 *it_server_db(const srv *s);

/* --- the server's store on either backend (itdb.c) --- */
/* PostgreSQL mode: PARLEY_TEST_PG=1 (the integration-pg suite); the cluster's superuser URL is in
 * PARLEY_TEST_PG_URL (tests/tools/pg.sh). Each server gets a database of its own (srv_start), passed as
 * --store, kept across srv_restart, dropped by srv_cleanup. */
int it_pg(void);
/* "# skipped on postgres: what: why" on stdout, for a check that has no cheap PostgreSQL equivalent */
void it_pg_skip(const char *what, const char *why);
void it_pg_create(srv *s);
void it_pg_drop(srv *s);
/* every table of the server's database into path as COPY ... (FORMAT binary), values as their bytes
 * like SQLite's file: the at-rest scans read it where they read the SQLite files; 0 or -1 (no file) */
int it_pg_dump(const srv *s, const char *path);

/* A connection to the running server's store: data/parley.db (foreign keys on, 5 s busy timeout) or its
 * PostgreSQL database. SQL is one statement in the dialect both accept; placeholders ?N or ? (rewritten
 * to $N for PostgreSQL); parameters follow `types`: 'i' long long, 't' const char *, 'b' const void *
 * then size_t. A failure (open, prepare, step) prints "not ok - sql: error" and counts. */
typedef struct it_db it_db;
typedef struct it_rows it_rows;
it_db *it_db_open(const srv *s);
void it_db_close(it_db *db);
/* rows written, -1 on error */
long long it_db_exec(it_db *db, const char *sql, const char *types, ...);
/* the first column of the first row (bool: 0/1), -1 when there is no row, it is NULL, or on error;
 * also for INSERT ... RETURNING id */
long long it_db_int(it_db *db, const char *sql, const char *types, ...);
/* the first column of the first row copied into out: its length, -1 when no row, too long, or error */
long long it_db_blob(it_db *db, void *out, size_t cap, const char *sql, const char *types, ...);
/* several rows / columns: it_rows_next until 0; values valid until the next call; NULL on error */
it_rows *it_db_query(it_db *db, const char *sql, const char *types, ...);
int it_rows_next(it_rows *r);
int it_rows_null(it_rows *r, int col);
long long it_rows_int(it_rows *r, int col);
const char *it_rows_text(it_rows *r, int col);
const void *it_rows_blob(it_rows *r, int col, size_t *len);
long long it_rows_changes(it_rows *r);
void it_rows_free(it_rows *r);
/* open, one statement without parameters, close */
long long it_srv_int(const srv *s, const char *sql);
long long it_srv_exec(const srv *s, const char *sql);


/* --- helpers shared by the security tests (s04, s05, s10) --- */
/* Uploads a fresh Signal identity, a signed prekey (id 1) and n_otpk one-time prekeys with ids
 * first_id.. for the device authenticated on fd; *regid receives its registration id. Returns the
 * response status. */
int it_upload_keys(int fd, uint32_t *regid, int n_otpk, uint32_t first_id);
/* More one-time prekeys (ids first_id..) for the device of the last it_upload_keys (same identity). */
int it_upload_keys_more(int fd, int n_otpk, uint32_t first_id);
/* AddDevice on fd (authenticated as a device of an account) for the key pk, with the proof of
 * possession signed by sk over (handle, pk, ts_ms) (sk NULL: no proof). *id receives the new device id.
 * Returns the status. it_add_device: ts_ms = now. */
int it_add_device_at(int fd, const char *handle, const uint8_t pk[32], const uint8_t *sk, uint64_t ts_ms,
		     uint32_t *id);
int it_add_device(int fd, const char *handle, const uint8_t pk[32], const uint8_t *sk, uint32_t *id);
/* Wall-clock milliseconds (the server's time base for timestamps). */
uint64_t it_now_ms(void);
/* A fresh connection authenticated as device_id of handle; -1 on failure. */
int it_connect_as(int port, const char *handle, uint32_t device_id, const uint8_t sk[64]);

#endif
