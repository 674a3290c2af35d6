/* t39: the three-node scenario (issue 12): one PostgreSQL cluster (tests/tools/pg.sh) and one
 * nats-server (tests/tools/nats.sh) of this test's own, three parleyd nodes sharing the database, the
 * people of a business thread on different nodes through real libparley clients, a load from
 * parley-bench across the nodes.
 *
 *   conversation  acme: alice the admin (node 2), bob agent A (node 3), dave agent B (node 1); carol
 *                 the customer (node 1) opens a thread and writes; alice gets it live (her connection
 *                 on node 2, woken over the bus) and forwards the thread to bob (node 3), who reads the
 *                 history and answers; carol reads the answer; dave is added; carol, bob and dave
 *                 write across all three nodes.
 *   node_kill     node 3 (bob's) is SIGKILLed mid-conversation: carol and dave go on writing (each
 *                 send acknowledged, i.e. stored); alice, bob's contact, sees him go offline; bob's
 *                 client is pointed at node 2 (a load balancer would do that), receives everything
 *                 acknowledged meanwhile, and alice sees him online again. Node 3 restarts and rejoins
 *                 (dave moves to it).
 *   pg_restart    parley-bench sends across the three nodes (receivers offline) while PostgreSQL gets
 *                 a fast restart (pg.sh restart: the nodes are ready again and a send goes through),
 *                 then a crash (pg.sh kill) held down for a while and a restart: during the held
 *                 outage carol's send fails at once with the server's error (STORE, no hang) and
 *                 /readyz of every node says 503; afterwards /readyz is 200,
 *                 every node still runs (none restarted), carol's next send succeeds and reaches every
 *                 member, and parley-bench --phase verify finds every acknowledged message delivered
 *                 once and intact.
 *   exactly_once  every member's client received every acknowledged thread message meant for it, in
 *                 the order sent, exactly once (the unacknowledged one at most once).
 *
 * Everything this test starts is stopped at exit (atexit), on a failed check or a bail-out too, and on
 * SIGTERM/SIGINT/SIGHUP (meson's timeout); parley-bench and the nodes also die with it (PDEATHSIG).
 * Exit 77 when PostgreSQL 15, nats-server or parley-bench are missing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/entity.h>
#include <parley/error.h>
#include <parley/thread.h>

#include "harness.h"

#define NODES 3
#define MAX_MSGS 64
#define BODY_MAX 64

static srv node[NODES]; /* node[0] is "node 1" */
static char url[NODES][128];
static char pg_dir[256], pg_url[512], nats_dir[256], nats_url[256];
static const char *pg_sh, *nats_sh, *bench;
static char work[200]; /* the clients' state and parley-bench's files */
static pid_t bench_pid;  /* parley-bench's send phase while it runs */

/* ---- what was sent (acknowledged or not) and who must get it ---- */

typedef struct person {
	const char *handle;
	parley_client *c;
	int node; /* index of the node its connection goes to */
	int member; /* 1 once in the thread: must receive what others send from then on */
	/* every thread message body received, in order */
	char got[MAX_MSGS][BODY_MAX];
	int n_got;
	int online, offline; /* presence events about others */
	char presence_of[32];
} person;

enum { CAROL, ALICE, BOB, DAVE, PEOPLE };
static person P[PEOPLE] = {
	[CAROL] = {.handle = "carol", .node = 0},
	[ALICE] = {.handle = "alice", .node = 1},
	[BOB] = {.handle = "bob", .node = 2},
	[DAVE] = {.handle = "dave", .node = 0},
};

typedef struct sent {
	char body[BODY_MAX];
	int from;
	int acked;
	int to[PEOPLE]; /* the members other than the sender when it was sent */
} sent;
static sent log_[MAX_MSGS];
static int n_log;
static uint64_t tid;
static int handling = -1; /* the thread's handling agent (after the forward) */

static void on_tmsg(parley_client *c, const parley_thread_message *m, void *user)
{
	person *p = user;
	(void)c;
	if (p->n_got < MAX_MSGS)
		snprintf(p->got[p->n_got++], BODY_MAX, "%.*s", (int)m->body_len, (const char *)m->body);
}

static void on_presence(parley_client *c, const char *handle, int online, void *user)
{
	person *p = user;
	(void)c;
	if (strcmp(handle, p->presence_of) != 0)
		return;
	if (online)
		p->online++;
	else
		p->offline++;
}

static void on_error(parley_client *c, parley_err e, const char *h, uint32_t d, void *user)
{
	person *p = user;
	fprintf(stderr, "# %s: on_error %s from %s/%u: %s\n", p->handle, parley_strerror(e), h, (unsigned)d,
		parley_client_errmsg(c));
}

static void on_changed(parley_client *c, const parley_thread_change *ch, void *user)
{
	person *p = user;
	(void)c;
	fprintf(stderr, "# %s: thread change kind %d by %s of %s, version %llu\n", p->handle, ch->kind, ch->actor,
		ch->subject, (unsigned long long)ch->membership_version);
}

static void on_pairwise(parley_client *c, const parley_message *m, void *user)
{
	(void)c;
	(void)m;
	(void)user;
}

static void listen_as(person *p)
{
	parley_events ev;
	parley_thread_events tev;
	memset(&ev, 0, sizeof ev);
	ev.on_message = on_pairwise;
	ev.on_presence = on_presence;
	ev.on_error = on_error;
	ev.user = p;
	parley_client_set_events(p->c, &ev);
	memset(&tev, 0, sizeof tev);
	tev.on_thread_message = on_tmsg;
	tev.on_thread_changed = on_changed;
	tev.user = p;
	parley_thread_set_events(p->c, &tev);
}

/* runs every connected client for ms */
static void pump_all(int ms)
{
	for (int t = 0; t < ms; t += 10 * PEOPLE)
		for (int i = 0; i < PEOPLE; i++)
			if (P[i].c != NULL)
				(void)parley_client_run(P[i].c, 10);
}

/* pumps every client until *counter >= want or ms pass; 1 if reached */
static int pump_until(const int *counter, int want, int ms)
{
	for (int t = 0; t < ms && *counter < want; t += 10 * PEOPLE)
		pump_all(10 * PEOPLE);
	return *counter >= want;
}

/* has p received body (how many times) */
static int got_count(const person *p, const char *body)
{
	int n = 0;
	for (int i = 0; i < p->n_got; i++)
		n += strcmp(p->got[i], body) == 0;
	return n;
}

/* every member other than the sender has it (or ms passed) */
static int delivered_to_all(const sent *m, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		int all = 1;
		for (int i = 0; i < PEOPLE; i++)
			if (m->to[i] && got_count(&P[i], m->body) == 0)
				all = 0;
		if (all)
			return 1;
		pump_all(50);
	}
	return 0;
}

/* a thread message from p: logged with its recipients; returns the status */
static parley_err say(int who, const char *body)
{
	IT_MUST(&node[0], n_log < MAX_MSGS);
	sent *m = &log_[n_log++];
	snprintf(m->body, sizeof m->body, "%s", body);
	m->from = who;
	/* with a handling agent set, a customer's message goes to it and the admins only (docs/threads.md):
	 * the other agents of the thread must not get it */
	for (int i = 0; i < PEOPLE; i++)
		m->to[i] = P[i].member && i != who &&
			   (who != CAROL || handling < 0 || i == ALICE || i == handling);
	parley_err rc = tid == 0 ? parley_thread_send_entity(P[who].c, "acme", (const uint8_t *)body, strlen(body), &tid)
				 : parley_thread_send(P[who].c, tid, (const uint8_t *)body, strlen(body), 0);
	m->acked = rc == PARLEY_OK;
	return rc;
}

/* ---- the services this test runs ---- */

static int run_script(const char *script, const char *cmd, const char *dir, const char *out)
{
	char line[1024];
	snprintf(line, sizeof line, "'%s' %s '%s' >%s 2>&1", script, cmd, dir, out);
	int rc = system(line);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

static int read_line(const char *dir, const char *name, char *out, size_t cap)
{
	char path[320];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	out[0] = '\0';
	int ok = f != NULL && fgets(out, (int)cap, f) != NULL;
	if (f)
		fclose(f);
	out[strcspn(out, "\n")] = '\0';
	return ok;
}

static void teardown(void)
{
	if (bench_pid > 0) {
		kill(bench_pid, SIGKILL);
		waitpid(bench_pid, NULL, 0);
		bench_pid = 0;
	}
	for (int i = 0; i < PEOPLE; i++) {
		parley_client_free(P[i].c);
		P[i].c = NULL;
	}
	for (int i = 0; i < NODES; i++)
		if (node[i].dir[0])
			srv_cleanup(&node[i]);
	if (nats_dir[0])
		(void)run_script(nats_sh, "stop", nats_dir, "/dev/null");
	if (pg_dir[0])
		(void)run_script(pg_sh, "stop", pg_dir, "/dev/null");
	if (work[0] && getenv("PARLEY_IT_KEEP") == NULL) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
		(void)system(cmd);
	}
}

/* the node's log holds needle at least nth times (a restarted node appends to its log), within 10 s */
static int log_has(srv *s, const char *needle, int nth)
{
	for (int i = 0; i < 1000; i++) {
		char *log = srv_log(s);
		int n = 0;
		for (const char *p = log; p != NULL && (p = strstr(p, needle)) != NULL; p++)
			n++;
		free(log);
		if (n >= nth)
			return 1;
		usleep(10000);
	}
	return 0;
}

static int bus_connected(srv *s, int nth)
{
	return log_has(s, "connected to NATS", nth);
}

/* meson's timeout (SIGTERM) or Ctrl-C: the cluster, nats-server and nodes must not outlive the test
 * (the nodes would die with it, PR_SET_PDEATHSIG, but PostgreSQL and nats-server are daemons). Not
 * async-signal-safe: acceptable in a test process that ends here anyway. */
static void on_signal(int sig)
{
	teardown();
	_exit(128 + sig);
}

static void start_node(int i)
{
	static char a_bus[300], a_store[560];
	snprintf(a_bus, sizeof a_bus, "--bus=%s", nats_url);
	snprintf(a_store, sizeof a_store, "--store=%s", pg_url);
	const char *extra[] = {a_bus, a_store, "--bus_heartbeat_ms=100", "--bus_node_timeout_ms=1000", NULL};
	if (i == 0)
		srv_start(&node[i], extra);
	else /* node 1's OTP key: every node of one database must use one key, or it refuses to start */
		srv_start_peer(&node[i], &node[0], extra);
	snprintf(url[i], sizeof url[i], "ws://127.0.0.1:%d/v1/websocket", node[i].port);
}

static int readyz(int i)
{
	char resp[2048];
	return http_get(node[i].port, "/readyz", resp, sizeof resp);
}

/* polls every node's /readyz until all answer want (or ms pass) */
static int all_ready_is(int want, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		int all = 1;
		for (int i = 0; i < NODES; i++)
			if (readyz(i) != want)
				all = 0;
		if (all)
			return 1;
		usleep(50000);
	}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the scenario ---- */

static void client_on(int who, int n)
{
	person *p = &P[who];
	parley_client_free(p->c);
	p->node = n;
	/* the same state directory: the same account and device, only the URL differs */
	p->c = it_client_at(work, p->handle, url[n], 5000);
	IT_MUST(&node[0], p->c != NULL);
	listen_as(p);
	IT_EQ(parley_connect(p->c), PARLEY_OK);
}

static void setup(void)
{
	char code[PARLEY_ENROL_CODE_MAX + 1];
	uint64_t id = 0, req = 0;

	for (int i = 0; i < PEOPLE; i++) {
		person *p = &P[i];
		p->c = it_client_at(work, p->handle, url[p->node], 5000);
		IT_MUST(&node[0], p->c != NULL);
		IT_EQ(parley_register(p->c, p->handle, NULL), PARLEY_OK);
	}
	IT_EQ(parley_entity_create(P[ALICE].c, "acme", "Acme Support", &id), PARLEY_OK);
	for (int i = BOB; i <= DAVE; i++) {
		IT_EQ(parley_entity_code(P[ALICE].c, "acme", 0, PARLEY_ROLE_AGENT, code, sizeof code, NULL), PARLEY_OK);
		IT_EQ(parley_entity_join(P[i].c, "acme", code, &req), PARLEY_OK);
		IT_EQ(parley_entity_decide(P[ALICE].c, "acme", req, 1), PARLEY_OK);
	}
	for (int i = 0; i < PEOPLE; i++) {
		listen_as(&P[i]);
		IT_EQ(parley_connect(P[i].c), PARLEY_OK);
	}
	/* alice and bob accept each other (a pairwise exchange): presence flows between them */
	snprintf(P[ALICE].presence_of, sizeof P[ALICE].presence_of, "bob");
	IT_EQ(parley_send(P[ALICE].c, "bob", "t39 hello bob"), PARLEY_OK);
	pump_all(300);
	IT_EQ(parley_send(P[BOB].c, "alice", "t39 hello alice"), PARLEY_OK);
	pump_all(500);
	P[CAROL].member = P[ALICE].member = 1; /* the thread opens with the customer and the admins */
}

static void conversation(void)
{
	/* alice's queue read is over: from now on only a push over the bus brings her news */
	pump_all(300);
	uint64_t rec2 = metric_value(node[1].port, "parley_bus_received_total");
	IT_EQ(say(CAROL, "c1 hello acme, my order is late"), PARLEY_OK);
	IT_CHECK(tid != 0);
	IT_EQ(say(CAROL, "c2 order 4711"), PARLEY_OK);
	for (int t = 0; t < 5000 && P[ALICE].n_got < 2; t += 20)
		(void)parley_client_run(P[ALICE].c, 20); /* alice only, on the connection she had */
	IT_EQ(P[ALICE].n_got, 2);
	IT_CHECK(metric_value(node[1].port, "parley_bus_received_total") > rec2);

	/* the admin (node 2) forwards to agent A (node 3): ADD + HANDLING, history carried */
	IT_EQ(parley_thread_forward(P[ALICE].c, tid, "bob", "t39: late order", 10), PARLEY_OK);
	P[BOB].member = 1;
	handling = BOB;
	int seen_c1 = 0, seen_c2 = 0;
	for (int t = 0; t < 8000 && !(seen_c1 && seen_c2); t += 200) {
		pump_all(200);
		parley_history_entry h[16];
		size_t nh = 0;
		IT_EQ(parley_thread_history(P[BOB].c, tid, 0, 16, h, &nh), PARLEY_OK);
		seen_c1 = seen_c2 = 0;
		for (size_t i = 0; i < nh; i++) {
			seen_c1 += strcmp((const char *)h[i].body, log_[0].body) == 0;
			seen_c2 += strcmp((const char *)h[i].body, log_[1].body) == 0;
		}
		parley_history_entries_free(h, nh);
	}
	/* bob reads the history the forward carried (sent before he was in the thread), once each */
	IT_EQ(seen_c1, 1);
	IT_EQ(seen_c2, 1);

	IT_EQ(say(BOB, "b1 sorry, checking order 4711"), PARLEY_OK);
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 5000)); /* carol (node 1), alice (node 2) */

	/* agent B (node 1) joins the thread */
	IT_EQ(parley_thread_add(P[ALICE].c, tid, "dave"), PARLEY_OK);
	P[DAVE].member = 1;
	pump_all(500);
	IT_EQ(say(CAROL, "c3 thanks"), PARLEY_OK);
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 5000));
	IT_EQ(say(DAVE, "d1 dave here, refund issued"), PARLEY_OK);
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 5000));
	IT_EQ(say(BOB, "b2 confirmed"), PARLEY_OK);
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 5000));
}

static void node_kill(void)
{
	int off = P[ALICE].offline, on = P[ALICE].online;
	srv_kill9(&node[2]);
	/* meanwhile carol (node 1) and dave (node 1) write, alice (node 2) too: each acknowledged */
	IT_EQ(say(CAROL, "c4 are you there?"), PARLEY_OK);
	IT_EQ(say(DAVE, "d2 bob is away, I am on it"), PARLEY_OK);
	IT_EQ(say(ALICE, "a1 admin note"), PARLEY_OK);
	IT_EQ(say(CAROL, "c5 ok"), PARLEY_OK);
	/* bob's contact sees him go offline once node 3 is declared dead (bus_node_timeout_ms) */
	IT_CHECK(pump_until(&P[ALICE].offline, off + 1, 5000));
	IT_EQ(P[ALICE].offline, off + 1);

	/* bob's client reconnects to node 2: everything acknowledged meanwhile, exactly once.
	 * Only once node 2 itself has forgotten node 3: the "offline" above came from the survivor with the
	 * smallest node id, and until node 2's own timeout fires it still counts bob online at node 3, so a
	 * connection of his to node 2 in that window is no cluster-wide edge and his contacts are never
	 * told he is back (a race of the cluster's presence, reported; the test waits it out). */
	IT_CHECK(log_has(&node[1], "its accounts count as offline", 1));
	client_on(BOB, 1);
	for (int i = n_log - 4; i < n_log; i++)
		IT_CHECK(delivered_to_all(&log_[i], 8000));
	IT_CHECK(pump_until(&P[ALICE].online, on + 1, 5000));
	IT_EQ(P[ALICE].online, on + 1);
	IT_EQ(say(BOB, "b3 back, sorry"), PARLEY_OK);
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 5000));

	/* node 3 comes back and rejoins the cluster (same data_dir, new port); dave moves there */
	srv_restart(&node[2]);
	snprintf(url[2], sizeof url[2], "ws://127.0.0.1:%d/v1/websocket", node[2].port);
	IT_CHECK(bus_connected(&node[2], 2));
	client_on(DAVE, 2);
	IT_EQ(say(CAROL, "c6 still there?"), PARLEY_OK);
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 5000));
}

/* parley-bench relay, one phase; stdout (JSON) into work/<name>.json. Returns its pid (send, in the
 * background) or its exit status (verify). */
static pid_t bench_run(const char *phase, const char *name, int background)
{
	char state[300], out[300], urls[600], ready[300];
	snprintf(state, sizeof state, "%s/bench.state", work);
	snprintf(ready, sizeof ready, "%s/bench.ready", work);
	snprintf(out, sizeof out, "%s/%s.json", work, name);
	snprintf(urls, sizeof urls, "%s,%s,%s", url[0], url[1], url[2]);
	pid_t pid = fork();
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
		FILE *f = freopen(out, "w", stdout);
		(void)f;
		if (strcmp(phase, "send") == 0)
			execl(bench, bench, "relay", "--phase", "send", "--state", state, "--url", urls, "--cross-node",
			      "--connections", "12", "--senders", "6", "--rate", "300", "--duration", "10", "--drain", "15",
			      "--ready-file", ready, "--json", (char *)NULL);
		else
			execl(bench, bench, "relay", "--phase", "verify", "--state", state, "--url", urls, "--drain", "30",
			      "--json", (char *)NULL);
		_exit(127);
	}
	if (background || pid < 0) {
		bench_pid = pid;
		return pid;
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static long long json_int(const char *name, const char *key)
{
	char path[300], buf[65536], pat[80];
	snprintf(path, sizeof path, "%s/%s.json", work, name);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(buf, pat);
	if (p == NULL) {
		fprintf(stderr, "# %s.json has no %s:\n%s\n", name, key, buf);
		return -1;
	}
	return strtoll(p + strlen(pat), NULL, 10);
}

static void pg_restart(void)
{
	char out[300];
	snprintf(out, sizeof out, "%s/pg.out", work);
	pid_t send = bench_run("send", "send", 1);
	IT_MUST(&node[0], send > 0);
	/* its connections set up (12 registrations, keys): then it sends for 10 s */
	char line[64];
	for (int i = 0; i < 600 && !read_line(work, "bench.ready", line, sizeof line); i++)
		usleep(100000);
	IT_MUST(&node[0], read_line(work, "bench.ready", line, sizeof line));
	sleep(1);

	/* 1. a fast restart under load */
	IT_EQ(run_script(pg_sh, "restart", pg_dir, out), 0);
	IT_CHECK(all_ready_is(200, 10000));
	IT_EQ(say(DAVE, "d3 after the fast restart"), PARLEY_OK); /* on the node's next session */
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 8000));

	/* 2. a crash, held down: clients see errors, not a hang; nodes say they are not ready */
	IT_EQ(run_script(pg_sh, "kill", pg_dir, out), 0);
	uint64_t t0 = now_ms();
	parley_err rc = say(CAROL, "c7 during the outage");
	uint64_t took = now_ms() - t0;
	fprintf(stderr, "# send during the outage: %s after %llu ms\n", parley_strerror(rc), (unsigned long long)took);
	/* the server's answer, not the client's own timeout: the node refuses at once */
	IT_CHECK(rc == PARLEY_E_STORE || rc == PARLEY_E_SERVER_BUSY || rc == PARLEY_E_BUSY);
	IT_CHECK(took < 4000);
	IT_CHECK(all_ready_is(503, 5000));
	for (int i = 0; i < NODES; i++)
		IT_CHECK(server_alive(node[i].port));

	/* 3. back: ready again with no node restarted, sends go through */
	IT_EQ(run_script(pg_sh, "restart", pg_dir, out), 0);
	IT_CHECK(all_ready_is(200, 10000));
	for (int i = 0; i < NODES; i++) {
		IT_CHECK(kill(node[i].pid, 0) == 0);
		IT_CHECK(waitpid(node[i].pid, NULL, WNOHANG) == 0); /* the same process: never exited */
	}
	for (int i = 0; i < PEOPLE; i++)
		(void)parley_connect(P[i].c);
	IT_EQ(say(CAROL, "c8 after the outage"), PARLEY_OK);
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 8000));
	IT_EQ(say(DAVE, "d4 all good now"), PARLEY_OK);
	IT_CHECK(delivered_to_all(&log_[n_log - 1], 8000));

	/* the load: every message parley-bench got acknowledged arrives once, intact */
	int st = 0;
	waitpid(send, &st, 0);
	bench_pid = 0;
	int send_rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	long long acked = json_int("send", "acked"), errors = json_int("send", "errors");
	fprintf(stderr, "# parley-bench send: exit %d, acked %lld, errors %lld\n", send_rc, acked, errors);
	IT_EQ(send_rc, 2);    /* 2: sends were refused during the outage: the load saw it */
	IT_CHECK(errors > 0); /* (refused with an error status, not left unanswered) */
	IT_CHECK(acked > 500);
	IT_EQ(bench_run("verify", "verify", 0), 0);
	IT_EQ(json_int("verify", "lost"), 0);
	IT_EQ(json_int("verify", "duplicates"), 0);
	IT_EQ(json_int("verify", "corrupt"), 0);
}

/* body is the body of an acknowledged message of the log */
static int log_has_acked(const char *body)
{
	for (int j = 0; j < n_log; j++)
		if (log_[j].acked && strcmp(log_[j].body, body) == 0)
			return 1;
	return 0;
}

static void exactly_once(void)
{
	pump_all(1000);
	for (int i = 0; i < PEOPLE; i++) {
		person *p = &P[i];
		int k = 0; /* position in p's received list, skipping unacknowledged bodies */
		for (int j = 0; j < n_log; j++) {
			const sent *m = &log_[j];
			int n = got_count(p, m->body);
			if (!m->acked) {
				IT_CHECK(n <= 1);
				continue;
			}
			if (!m->to[i]) {
				IT_EQ(n, 0);
				continue;
			}
			if (n != 1)
				fprintf(stderr, "# %s got \"%s\" %d times\n", p->handle, m->body, n);
			IT_EQ(n, 1);
			while (k < p->n_got && !log_has_acked(p->got[k]))
				k++;
			if (k < p->n_got) {
				if (strcmp(p->got[k], m->body) != 0)
					fprintf(stderr, "# %s: #%d is \"%s\", expected \"%s\"\n", p->handle, k, p->got[k], m->body);
				IT_CHECK(strcmp(p->got[k], m->body) == 0); /* in order */
				k++;
			}
		}
	}
}

int main(void)
{
	pg_sh = getenv("PG_SH") ? getenv("PG_SH") : "tests/tools/pg.sh";
	nats_sh = getenv("NATS_SH") ? getenv("NATS_SH") : "tests/tools/nats.sh";
	bench = getenv("BENCH");
	if (bench == NULL || access(bench, X_OK) != 0) {
		printf("1..0 # SKIP parley-bench not built (BENCH)\n");
		return 77;
	}
	/* this test runs its own PostgreSQL (it restarts and kills it): the harness makes no database */
	setenv("PARLEY_TEST_PG", "0", 1);
	snprintf(work, sizeof work, "/tmp/parley-t39-XXXXXX");
	if (mkdtemp(work) == NULL)
		return 99;
	atexit(teardown);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	snprintf(pg_dir, sizeof pg_dir, "%s-pg", work);
	snprintf(nats_dir, sizeof nats_dir, "%s-nats", work);
	char out[300];
	snprintf(out, sizeof out, "%s/start.out", work);
	int rc = run_script(pg_sh, "start", pg_dir, out);
	if (rc == 77) {
		pg_dir[0] = '\0';
		printf("1..0 # SKIP PostgreSQL 15 not installed\n");
		return 77;
	}
	if (rc != 0 || !read_line(pg_dir, "url", pg_url, sizeof pg_url)) {
		fprintf(stderr, "Bail out! pg.sh start failed (%d)\n", rc);
		return 99;
	}
	rc = run_script(nats_sh, "start", nats_dir, out);
	if (rc == 77) {
		nats_dir[0] = '\0';
		printf("1..0 # SKIP nats-server not installed\n");
		return 77;
	}
	if (rc != 0 || !read_line(nats_dir, "url", nats_url, sizeof nats_url)) {
		fprintf(stderr, "Bail out! nats.sh start failed (%d)\n", rc);
		return 99;
	}
	for (int i = 0; i < NODES; i++) {
		start_node(i);
		IT_MUST(&node[i], bus_connected(&node[i], 1));
	}
	setup();
	IT_RUN(conversation);
	IT_RUN(node_kill);
	IT_RUN(pg_restart);
	IT_RUN(exactly_once);
	for (int i = 0; i < PEOPLE; i++) {
		parley_client_free(P[i].c);
		P[i].c = NULL;
	}
	for (int i = 0; i < NODES; i++)
		IT_EQ(srv_stop(&node[i]), 0);
	printf("# %d failures\n", it_failures);
	return it_failures > 100 ? 100 : it_failures;
}
