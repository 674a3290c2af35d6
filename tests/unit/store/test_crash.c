/* Durability across simulated power cuts: nothing acknowledged is lost (docs/testing.md).
 *
 * The relay's scenario, in process: the store opened through the power-cut VFS (crashvfs.h), a store
 * client on a uv loop, alice sending to bob's two devices through relay__send with a window of jobs in
 * flight (so group commits hold several jobs), bob's device 1 acknowledging half of them through
 * relay__ack, a clean restart of the store halfway (checkpoint, WAL deleted, WAL created again), and a
 * low checkpoint threshold so checkpoints and WAL restarts happen during the run. At one point per run
 * the power is cut: on the k-th fsync (it never happens), during the k-th write (torn), after the n-th
 * acknowledgement (from the loop, wherever the store thread is), or at the end. Completions that run
 * after the cut are not acknowledgements: the process is dead by then. Then the store is closed (its
 * writes go nowhere), the database is reopened through SQLite's default VFS by store__open (which must
 * succeed), and checked: every acknowledged envelope is there exactly once unless its acknowledged ack
 * deleted it, an acknowledged ack's envelope is gone, nothing is duplicated, each queue counter matches
 * its queue, and the accounts made before the runs exist.
 *
 * Exit status: 0 nothing lost, 1 a durability violation (what the weakened builds must produce: meson
 * runs their copies with should_fail), 99 the harness itself failed (meson reports an error even
 * under should_fail, so the weakened build cannot "fail" for a wrong reason). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include <parley/error.h>

#include "base/log.h"
#include "crashvfs.h"
#include "relay/relay.h"
#include "store/store.h"
#include "store_loop.h"
#include "test.h"

#define PHASE_SENDS 40        /* per phase; two phases around a clean restart */
#define N_SENDS (2 * PHASE_SENDS)
#define WINDOW 8              /* jobs in flight */
#define CONTENT_LEN 900       /* bytes per envelope: a send is about half a page per device */
#define CKPT_PAGES 12         /* idle checkpoint threshold: several checkpoints per run */
#define BOB_DEVICES 2
#define SYNC_POINTS 80        /* cuts on a sync (all of them when a run has fewer) */
#define WRITE_POINTS 80       /* cuts during a write, spread over a run's writes */
#define ACK_POINTS 40         /* cuts after n acknowledgements, spread over a run's acknowledgements */
#define DRY_RUNS 3            /* runs without an early cut, to count a run's syncs and writes */
#define RESTART_SYNCS 4       /* cuts on each first sync from the clean close, and from the reopening */
#define RESTART_WRITES 12     /* the same for writes */

/* Where the count of a cut starts. The clean restart gets cuts of its own: a few syncs and writes
 * hold the checkpoint of the close, the WAL's deletion and its re-creation, and a cut spread over a
 * whole run rarely lands there. */
enum cut_from {
	FROM_NOWHERE, /* no early cut: the power fails after the last completion */
	FROM_START,   /* the k-th sync or write after the set-up */
	FROM_CLOSE,   /* the k-th sync or write from the clean close on (checkpoint, WAL deleted) */
	FROM_REOPEN,  /* the k-th sync or write from the reopening on (new WAL, first commits) */
	AFTER_ACKS,   /* after the k-th acknowledgement, from the loop thread */
	FROM__COUNT
};
static const char *const from_name[FROM__COUNT] = {"at the end", "from the start", "from the close",
						   "from the reopening", "after acknowledgements"};

struct cut_point {
	enum cut_from from;
	enum crashvfs_event ev; /* FROM_START, FROM_CLOSE, FROM_REOPEN */
	unsigned k;
	crashvfs_damage d;
};

struct send_state {
	int acked;                 /* completion OK before the cut */
	uint64_t ids[BOB_DEVICES]; /* server ids, when acked */
	int ack_sent, ack_acked;   /* bob's device 1 acknowledged ids[0]; that ack was acknowledged */
};

static struct {
	struct send_state sends[N_SENDS];
	unsigned acks;     /* acknowledgements (sends and acks) seen before the cut */
	unsigned cut_after; /* CUT_AFTER_ACKS: cut when acks reaches it */
	int cut_armed;
	crashvfs_damage d;
	unsigned inflight;
} run;

static struct {
	unsigned points, per_from[FROM__COUNT], early;
	unsigned lost, resurrected, duplicated, bad_counters, bad_setup, reopen_failed;
	unsigned acked_sends, acked_acks;
	unsigned undone, kept, files_removed, files_restored; /* what the cuts did (crashvfs_stats) */
} total;

static char dir[] = "/tmp/parley-crash-XXXXXX";
static char path[128];
static uv_loop_t loop;
static relay_config rcfg;
static uint64_t alice, bob;

static void harness_fail(const char *what)
{
	fprintf(stderr, "harness error: %s\n", what);
	exit(99);
}

/* A crash is a harness error too, never the expected failure of a weakened build. */
static void on_fatal_signal(int sig)
{
	(void)sig;
	static const char msg[] = "harness error: fatal signal\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	_exit(99);
}

static void content_for(uint8_t *buf, unsigned send, unsigned dev)
{
	for (size_t i = 0; i < CONTENT_LEN; i++)
		buf[i] = (uint8_t)(send * 31u + dev * 7u + i);
	snprintf((char *)buf, 48, "send %04u device %u", send % 10000u, dev % 100u);
}

/* An acknowledgement, counted only while the power is on; the n-th one may cut it. */
static int acknowledged(int status)
{
	if (status != PARLEY_OK || crashvfs_dead())
		return 0;
	run.acks++;
	if (run.cut_armed && run.acks == run.cut_after)
		crashvfs_cut(&run.d);
	return 1;
}

static void on_ack(void *arg, int status, const void *result)
{
	struct send_state *s = arg;
	(void)result;
	run.inflight--;
	s->ack_acked = acknowledged(status);
}

static void submit_ack(store_client *sc, struct send_state *s)
{
	Parley__Wire__AckRequest rq = PARLEY__WIRE__ACK_REQUEST__INIT;
	rq.n_server_ids = 1;
	rq.server_ids = &s->ids[0];
	s->ack_sent = 1;
	run.inflight++;
	relay__ack(sc, bob, 1, &rq, on_ack, s);
}

struct send_ctx {
	store_client *sc;
	unsigned i;
};
static struct send_ctx ctxs[N_SENDS];

static void on_send(void *arg, int status, const void *result)
{
	struct send_ctx *c = arg;
	struct send_state *s = &run.sends[c->i];
	const store_job *j = result;
	run.inflight--;
	if (!acknowledged(status))
		return;
	s->acked = 1;
	for (size_t d = 0; d < BOB_DEVICES && d < j->relay.n_msgs; d++)
		s->ids[d] = j->relay.msgs[d].server_id;
	if (c->i % 2 == 0 && !crashvfs_dead())
		submit_ack(c->sc, s);
}

static void submit_send(store_client *sc, unsigned i)
{
	static uint8_t content[BOB_DEVICES][CONTENT_LEN];
	Parley__Wire__SendMessageRequest rq = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage m[BOB_DEVICES], *mp[BOB_DEVICES];
	for (unsigned d = 0; d < BOB_DEVICES; d++) {
		content_for(content[d], i, d + 1);
		parley__wire__outgoing_message__init(&m[d]);
		m[d].device_id = d + 1;
		m[d].registration_id = 20 + d + 1;
		m[d].type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
		m[d].content.data = content[d];
		m[d].content.len = CONTENT_LEN;
		mp[d] = &m[d];
	}
	rq.recipient = "bob";
	rq.timestamp = 1000 + i;
	rq.n_messages = BOB_DEVICES;
	rq.messages = mp;
	ctxs[i] = (struct send_ctx){sc, i};
	run.inflight++;
	relay__send(&rcfg, sc, alice, 1, "alice", &rq, 5000 + i, on_send, &ctxs[i]);
}

/* Sends [from, to) with WINDOW jobs in flight, until done or the power is cut; then waits for every
 * completion (after a cut they fail, or succeed too late to count). */
static void phase(store *s, unsigned from, unsigned to)
{
	test_store_client tsc;
	store_client *sc = NULL;
	if (test_store_client_open(&tsc, s, &loop, &sc) != PARLEY_OK)
		harness_fail("store client");
	unsigned next = from;
	while (!crashvfs_dead() && (next < to || run.inflight > 0)) {
		while (next < to && run.inflight < WINDOW && !crashvfs_dead())
			submit_send(sc, next++);
		uv_run(&loop, UV_RUN_ONCE);
	}
	test_store_client_close(&tsc);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (run.inflight != 0)
		harness_fail("completions missing");
}

static store *open_store(const char *vfs)
{
	store_config cfg = {.path = path, .vfs = vfs, .wal_checkpoint_pages = CKPT_PAGES};
	store *s = NULL;
	return store__open(&cfg, &s) == PARLEY_OK ? s : NULL;
}

static int run_sync(store *s, store_job *j)
{
	int rc = store__run_sync(s, j);
	store__job_free(j);
	return rc;
}

static int setup_device(store *s, uint64_t acc, uint32_t dev, uint8_t seed)
{
	store_job *j = store__job_new(STORE_OP_UPLOAD_KEYS);
	j->account_id = acc;
	j->device_id = dev;
	j->keys.registration_id = 20 + dev;
	memset(j->keys.identity, seed, sizeof(j->keys.identity));
	j->keys.has_spk = 1;
	j->keys.spk_id = 1;
	memset(j->keys.spk_pub, seed + 1, sizeof(j->keys.spk_pub));
	memset(j->keys.spk_sig, seed + 2, sizeof(j->keys.spk_sig));
	j->keys.pool_max = 100;
	return run_sync(s, j);
}

static uint64_t setup_account(store *s, const char *handle, unsigned devices, uint8_t seed)
{
	store_job *j = store__job_new(STORE_OP_CREATE_ACCOUNT);
	store__job_set_handle(j, handle);
	memset(j->acct.key, seed, sizeof(j->acct.key));
	if (store__run_sync(s, j) != PARLEY_OK)
		harness_fail("create account");
	uint64_t acc = j->account_id;
	store__job_free(j);
	for (unsigned d = 2; d <= devices; d++) {
		j = store__job_new(STORE_OP_ADD_DEVICE);
		j->account_id = acc;
		memset(j->acct.key, seed + d, sizeof(j->acct.key));
		if (run_sync(s, j) != PARLEY_OK)
			harness_fail("add device");
	}
	for (unsigned d = 1; d <= devices; d++)
		if (setup_device(s, acc, d, (uint8_t)(seed * 16 + d)) != PARLEY_OK)
			harness_fail("upload keys");
	return acc;
}

static void remove_files(void)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[160];
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		unlink(p);
	}
}

/* --- the check, on the reopened database --- */

static int query_int(sqlite3 *db, const char *sql, int64_t a, int64_t b, const void *blob, int blob_len)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, a);
		sqlite3_bind_int64(st, 2, b);
		if (blob != NULL)
			sqlite3_bind_blob(st, 3, blob, blob_len, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

/* Violations found in this run; details on stderr. */
static unsigned check(const struct cut_point *cp)
{
	unsigned bad = 0;
	sqlite3 *db = NULL;
	uint8_t content[CONTENT_LEN];
	const char *ev = cp->ev == CRASHVFS_ON_SYNC ? "sync" : cp->ev == CRASHVFS_ON_WRITE ? "write" : "ack";
	/* the server restarts on whatever the cut left: recovery and migrations must cope */
	store *s = open_store(NULL);
	if (s == NULL) {
		total.reopen_failed++;
		fprintf(stderr, "cut %s, %s %u: the store does not open after the cut\n", from_name[cp->from], ev,
			cp->k);
		return 1;
	}
	store__close(s);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		harness_fail("open for the check");
	if (query_int(db, "SELECT count(*) FROM devices WHERE account_id IN (?1, ?2)", alice, bob, NULL, 0) !=
	    1 + BOB_DEVICES) {
		total.bad_setup++;
		bad++;
	}
	if (query_int(db, "SELECT count(*) FROM device_keys k WHERE queue_len != (SELECT count(*) FROM messages m"
			  " WHERE m.account_id = k.account_id AND m.device_id = k.device_id)", 0, 0, NULL, 0) != 0) {
		total.bad_counters++;
		bad++;
	}
	for (unsigned i = 0; i < N_SENDS; i++) {
		const struct send_state *ss = &run.sends[i];
		total.acked_sends += (unsigned)ss->acked;
		total.acked_acks += (unsigned)ss->ack_acked;
		for (unsigned d = 1; d <= BOB_DEVICES; d++) {
			content_for(content, i, d);
			int n = query_int(db, "SELECT count(*) FROM messages WHERE account_id = ?1 AND device_id = ?2"
					  " AND content = ?3", (int64_t)bob, d, content, CONTENT_LEN);
			int same_id = ss->acked ? query_int(db, "SELECT count(*) FROM messages WHERE id = ?1 AND"
							" device_id = ?2", (int64_t)ss->ids[d - 1], d, NULL, 0) : n;
			int deleted = d == 1 && ss->ack_acked, maybe_deleted = d == 1 && ss->ack_sent;
			const char *what = NULL;
			if (n > 1 || n < 0) {
				total.duplicated++;
				what = "duplicated";
			} else if (deleted && n != 0) {
				total.resurrected++;
				what = "acknowledged ack undone";
			} else if (ss->acked && !maybe_deleted && (n != 1 || same_id != 1)) {
				total.lost++;
				what = "acknowledged envelope lost";
			}
			if (what != NULL) {
				bad++;
				if (bad <= 3)
					fprintf(stderr, "cut %s, %s %u: send %u device %u: %s\n", from_name[cp->from], ev,
						cp->k, i, d, what);
			}
		}
	}
	sqlite3_close(db);
	return bad;
}

static void arm_if(const struct cut_point *cp, enum cut_from now)
{
	if (cp->from == now)
		crashvfs_arm(cp->ev, cp->k, &cp->d);
}

/* One run with one cut. Returns the violations. */
static unsigned run_one(const struct cut_point *cp, crashvfs_stats *stats)
{
	memset(&run, 0, sizeof(run));
	if (crashvfs_reset() != 0)
		harness_fail("crash VFS still has open files");
	remove_files();
	store *s = open_store(CRASHVFS_NAME);
	if (s == NULL)
		harness_fail("open through the crash VFS");
	alice = setup_account(s, "alice", 1, 1);
	bob = setup_account(s, "bob", BOB_DEVICES, 2);
	run.d = cp->d;
	if (cp->from == AFTER_ACKS) {
		run.cut_armed = 1;
		run.cut_after = cp->k;
		if (cp->k == 0)
			crashvfs_cut(&cp->d);
	}
	arm_if(cp, FROM_START);
	phase(s, 0, PHASE_SENDS);
	if (!crashvfs_dead()) {
		/* a clean restart: checkpoint, WAL deleted, WAL created again */
		arm_if(cp, FROM_CLOSE);
		store__close(s);
		arm_if(cp, FROM_REOPEN);
		s = open_store(CRASHVFS_NAME);
		if (s != NULL)
			phase(s, PHASE_SENDS, N_SENDS);
	}
	total.early += (unsigned)crashvfs_dead();
	crashvfs_cut(&cp->d); /* no-op when the cut already happened */
	crashvfs_get_stats(stats);
	total.undone += stats->undone;
	total.kept += stats->kept;
	total.files_removed += stats->files_removed;
	total.files_restored += stats->files_restored;
	store__close(s);
	if (crashvfs_reset() != 0)
		harness_fail("crash VFS still has open files after close");
	total.points++;
	total.per_from[cp->from]++;
	return check(cp);
}

/* n values spread over [lo, hi] */
static unsigned spread(unsigned i, unsigned n, unsigned lo, unsigned hi)
{
	return n <= 1 || hi <= lo ? lo : lo + (unsigned)((uint64_t)(hi - lo) * i / (n - 1));
}

static unsigned min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

static void damage_for(crashvfs_damage *d, unsigned i);

static unsigned run_point(enum cut_from from, enum crashvfs_event ev, unsigned k, unsigned i)
{
	crashvfs_stats stats;
	struct cut_point cp = {.from = from, .ev = ev, .k = k};
	damage_for(&cp.d, i);
	return run_one(&cp, &stats);
}

static void damage_for(crashvfs_damage *d, unsigned i)
{
	/* rotate: nothing unsynced survives; a torn last write; torn and half the others; all survive */
	static const crashvfs_damage kinds[] = {{0, 0, 0}, {1, 0, 0}, {3, 50, 0}, {8, 100, 0}};
	*d = kinds[i % (sizeof(kinds) / sizeof(kinds[0]))];
	d->seed = 0x51ed270bu + i;
}

int main(void)
{
	struct timespec t0, t1;
	crashvfs_stats stats;
	unsigned bad = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* (a sanitizer's handler, when there is one, stays: it reports and exits 99 by crash_env) */
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		struct sigaction old, sa = {.sa_handler = on_fatal_signal};
		if (sigaction(fatal[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
			sigaction(fatal[i], &sa, NULL);
	}
	/* the store logs every I/O error after each cut; the checks below say what matters */
	log__level = getenv("PARLEY_TEST_VERBOSE") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR - 1;
#if defined(PARLEY_TEST_STORE_SYNC_OFF) || defined(PARLEY_TEST_STORE_SYNC_NORMAL)
	printf("# store compiled weakened (synchronous OFF or NORMAL): this run must lose acknowledged data\n");
#endif
	if (mkdtemp(dir) == NULL || uv_loop_init(&loop) != 0 || crashvfs_register() != SQLITE_OK)
		harness_fail("set-up");
	snprintf(path, sizeof(path), "%s/crash.db", dir);
	relay__config_defaults(&rcfg);

	/* runs without an early cut first: how many syncs, writes and acknowledgements a run has. Group
	 * commit batches differ from run to run (thread timing), so the k-th sync or write is not the same
	 * moment twice, and a run may have fewer than another: k is spread over the fewest seen, so that
	 * almost every armed cut fires (one that does not still cuts at the end) */
	unsigned syncs = UINT32_MAX, writes = UINT32_MAX, acks = 0;
	for (unsigned i = 0; i < DRY_RUNS; i++) {
		struct cut_point cp = {.from = FROM_NOWHERE};
		bad += run_one(&cp, &stats);
		syncs = min_u(syncs, stats.syncs);
		writes = min_u(writes, stats.writes);
		acks = run.acks;
		/* a run that acknowledges nothing would lose nothing: the test would pass for no reason */
		if (acks != N_SENDS + N_SENDS / 2)
			harness_fail("a run without an early cut did not acknowledge every send and ack");
	}
	printf("# runs without an early cut: at least %u syncs, %u writes; %u acknowledgements\n", syncs, writes,
	       acks);

	unsigned n = min_u(syncs, SYNC_POINTS);
	for (unsigned i = 0; i < n; i++)
		bad += run_point(FROM_START, CRASHVFS_ON_SYNC, spread(i, n, 1, syncs), i);
	n = min_u(writes, WRITE_POINTS);
	for (unsigned i = 0; i < n; i++)
		bad += run_point(FROM_START, CRASHVFS_ON_WRITE, spread(i, n, 1, writes), i);
	for (unsigned k = 1; k <= RESTART_SYNCS; k++) {
		bad += run_point(FROM_CLOSE, CRASHVFS_ON_SYNC, k, k);
		bad += run_point(FROM_REOPEN, CRASHVFS_ON_SYNC, k, k);
	}
	for (unsigned k = 1; k <= RESTART_WRITES; k++) {
		bad += run_point(FROM_CLOSE, CRASHVFS_ON_WRITE, k, k);
		bad += run_point(FROM_REOPEN, CRASHVFS_ON_WRITE, k, k);
	}
	n = min_u(acks + 1, ACK_POINTS);
	for (unsigned i = 0; i < n; i++)
		bad += run_point(AFTER_ACKS, CRASHVFS_NEVER, spread(i, n, 0, acks), i);

	/* most armed cuts must land inside their run, or the test only cuts finished runs (a loaded machine
	 * batches more, so a run has fewer syncs than the dry runs: about 85% land, this guard asks half) */
	if (total.early * 2 < total.points - DRY_RUNS)
		harness_fail("most armed cuts did not fire before the end of their run");

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("# %u power cuts (%u before the end of their run): %u counted from the start, %u from the clean"
	       " close, %u from the reopening, %u after n acknowledgements, %u at the end; %u acknowledged sends"
	       " and %u acknowledged acks checked; %.1f s\n", total.points, total.early, total.per_from[FROM_START],
	       total.per_from[FROM_CLOSE], total.per_from[FROM_REOPEN], total.per_from[AFTER_ACKS],
	       total.per_from[FROM_NOWHERE], total.acked_sends, total.acked_acks, secs);
	printf("# the cuts undid %u unsynced writes and truncations, let %u through (torn or surviving),"
	       " removed %u unsynced new files, brought back %u deleted ones\n", total.undone, total.kept,
	       total.files_removed, total.files_restored);
	printf("# lost %u acknowledged envelopes, %u acknowledged acks undone, %u duplicated, %u bad queue"
	       " counters, %u runs lost the accounts, %u runs could not reopen\n", total.lost, total.resurrected,
	       total.duplicated, total.bad_counters, total.bad_setup, total.reopen_failed);
	uv_loop_close(&loop);
	test_remove_tree(dir);
	TEST_CHECK(bad == 0);
	printf("%s - nothing acknowledged is lost across %u power cuts\n", bad ? "not ok" : "ok", total.points);
	printf("# %d checks, %d failed\n", test__checks, test__failures);
	return test__failures ? 1 : 0; /* never 99: that one means a harness error */
}
