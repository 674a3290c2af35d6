/* t38: two parleyd nodes sharing one store, linked by one nats-server (tests/tools/nats.sh), with real
 * libparley clients on different nodes.
 *
 *   live_across_nodes      alice (node 1) sends to bob, connected to node 2 beforehand: bob gets it
 *                          live, on the connection he already had (the bus woke node 2), and the bus
 *                          metrics of both nodes moved.
 *   presence_across_nodes  once they accepted each other, bob (node 2) sees alice (node 1) go offline
 *                          and come online again.
 *   node_death             node 1 is killed (SIGKILL) with alice connected: after bus_node_timeout_ms
 *                          node 2 forgets it and bob is told alice is offline, once.
 *   config_refused         a bus that is not nats://, or a node timeout not above the heartbeat, stops
 *                          parleyd at start-up with the reason.
 *
 * The store: in the integration-pg pass, the harness's PostgreSQL database of node 1, shared by node 2
 * (the production topology). In the SQLite pass, both nodes open one SQLite file (WAL, busy timeout):
 * not a supported deployment, but the bus does not care where the rows are, and this keeps the
 * cross-node path in the default suite. Exit 77 when nats-server is not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/error.h>

#include "harness.h"

static srv n1, n2;
static char url1[128], url2[128];
static char nats_dir[256], nats_url[256];

typedef struct seen {
	int messages;
	char last_body[64];
	int online, offline;
} seen;

static void on_message(parley_client *c, const parley_message *m, void *user)
{
	seen *v = user;
	(void)c;
	v->messages++;
	snprintf(v->last_body, sizeof v->last_body, "%.*s", (int)m->body_len, (const char *)m->body);
}

static void on_presence(parley_client *c, const char *handle, int online, void *user)
{
	seen *v = user;
	(void)c;
	(void)handle;
	if (online)
		v->online++;
	else
		v->offline++;
}

/* events into v (cleared), on a new connection */
static void watch(parley_client *c, seen *v)
{
	parley_events ev;
	memset(v, 0, sizeof *v);
	memset(&ev, 0, sizeof ev);
	ev.on_message = on_message;
	ev.on_presence = on_presence;
	ev.user = v;
	parley_client_disconnect(c);
	parley_client_set_events(c, &ev);
	IT_EQ(parley_connect(c), PARLEY_OK);
}

static void pump2(parley_client *a, parley_client *b, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		parley_client_run(a, 10);
		parley_client_run(b, 10);
	}
}

/* pumps until *counter reaches want or ms pass */
static void pump_until(parley_client *a, parley_client *b, const int *counter, int want, int ms)
{
	for (int t = 0; t < ms && *counter < want; t += 20) {
		parley_client_run(a, 10);
		parley_client_run(b, 10);
	}
}

static parley_client *alice, *bob;
static seen av, bv;

static void live_across_nodes(void)
{
	alice = it_user(&n1, url1, "alice");
	bob = it_user(&n2, url2, "bob");
	IT_MUST(&n1, alice != NULL && bob != NULL);
	watch(bob, &bv);
	pump2(alice, bob, 500); /* bob's queue read (empty) is over: from now on only a push brings news */
	uint64_t pub1 = metric_value(n1.port, "parley_bus_published_total");
	uint64_t rec2 = metric_value(n2.port, "parley_bus_received_total");
	IT_EQ(parley_send(alice, "bob", "hello across"), PARLEY_OK);
	pump_until(alice, bob, &bv.messages, 1, 5000);
	IT_EQ(bv.messages, 1);
	IT_CHECK(strcmp(bv.last_body, "hello across") == 0);
	IT_CHECK(metric_value(n1.port, "parley_bus_published_total") > pub1);
	IT_CHECK(metric_value(n2.port, "parley_bus_received_total") > rec2);
	IT_EQ(metric_value(n2.port, "parley_bus_dropped_total"), 0);
}

static void presence_across_nodes(void)
{
	if (alice == NULL || bob == NULL)
		return;
	/* bob replies: they accepted each other, so each may see the other's presence */
	watch(alice, &av);
	IT_EQ(parley_send(bob, "alice", "hi alice"), PARLEY_OK);
	pump_until(alice, bob, &av.messages, 1, 5000);
	IT_EQ(av.messages, 1);

	int off = bv.offline, on = bv.online;
	parley_client_disconnect(alice);
	pump_until(bob, bob, &bv.offline, off + 1, 5000);
	IT_EQ(bv.offline, off + 1);
	IT_EQ(parley_connect(alice), PARLEY_OK);
	pump_until(alice, bob, &bv.online, on + 1, 5000);
	IT_EQ(bv.online, on + 1);
}

static void node_death(void)
{
	if (alice == NULL || bob == NULL)
		return;
	int off = bv.offline;
	srv_kill9(&n1);
	pump_until(bob, bob, &bv.offline, off + 1, 5000);
	IT_EQ(bv.offline, off + 1);
	pump2(bob, bob, 500);
	IT_EQ(bv.offline, off + 1);
}

/* parleyd with these flags exits non-zero at start-up, saying `why` */
static void refused(const char *flags, const char *why)
{
	char dir[] = "/tmp/parley-t38-cfg-XXXXXX", cmd[1024], log[300];
	if (mkdtemp(dir) == NULL)
		return;
	snprintf(log, sizeof log, "%s/log", dir);
	snprintf(cmd, sizeof cmd, "'%s' --port=0 --admin_port=0 --data_dir='%s/d' %s >'%s' 2>&1", getenv("PARLEYD"),
		 dir, flags, log);
	int rc = system(cmd);
	IT_CHECK(!WIFEXITED(rc) || WEXITSTATUS(rc) != 0);
	char buf[8192] = "";
	FILE *f = fopen(log, "r");
	if (f != NULL) {
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	IT_CHECK(strstr(buf, why) != NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
}

static void config_refused(void)
{
	refused("--bus=http://127.0.0.1:4222", "is not a nats:// URL");
	refused("--bus=nats://127.0.0.1:1 --bus_heartbeat_ms=1000 --bus_node_timeout_ms=1000",
		"bus_node_timeout_ms (1000) must exceed bus_heartbeat_ms (1000)");
}

static int nats(const char *cmd)
{
	char line[768];
	const char *sh = getenv("NATS_SH");
	snprintf(line, sizeof line, "'%s' %s '%s'%s", sh ? sh : "tests/tools/nats.sh", cmd, nats_dir,
		 strcmp(cmd, "start") == 0 ? " >/dev/null" : "");
	int rc = system(line);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

/* the node's log says it reached NATS */
static int bus_connected(srv *s)
{
	for (int i = 0; i < 500; i++) {
		char *log = srv_log(s);
		int ok = log != NULL && strstr(log, "connected to NATS") != NULL;
		free(log);
		if (ok)
			return 1;
		usleep(10000);
	}
	return 0;
}

int main(void)
{
	snprintf(nats_dir, sizeof nats_dir, "/tmp/parley-t38-nats-%d", (int)getpid());
	int rc = nats("start");
	if (rc == 77) {
		printf("1..0 # SKIP nats-server not installed\n");
		return 77;
	}
	char path[300];
	snprintf(path, sizeof path, "%s/url", nats_dir);
	FILE *f = rc == 0 ? fopen(path, "r") : NULL;
	if (f == NULL || fgets(nats_url, sizeof nats_url, f) == NULL) {
		fprintf(stderr, "Bail out! nats-server did not start\n");
		nats("stop");
		return 99;
	}
	fclose(f);
	nats_url[strcspn(nats_url, "\n")] = '\0';

	char a_bus[320], a_shared[600];
	snprintf(a_bus, sizeof a_bus, "--bus=%s", nats_url);
	const char *extra1[] = {a_bus, "--bus_heartbeat_ms=100", "--bus_node_timeout_ms=1000", NULL};
	srv_start(&n1, extra1);
	if (it_pg())
		snprintf(a_shared, sizeof a_shared, "--store=%s", n1.store);
	else
		snprintf(a_shared, sizeof a_shared, "--database=%s/data/parley.db", n1.dir);
	const char *extra2[] = {a_bus, "--bus_heartbeat_ms=100", "--bus_node_timeout_ms=1000", a_shared, NULL};
	srv_start_peer(&n2, &n1, extra2); /* node 1's OTP key: one key per database */
	snprintf(url1, sizeof url1, "ws://127.0.0.1:%d/v1/websocket", n1.port);
	snprintf(url2, sizeof url2, "ws://127.0.0.1:%d/v1/websocket", n2.port);
	IT_CHECK(bus_connected(&n1));
	IT_CHECK(bus_connected(&n2));

	IT_RUN(live_across_nodes);
	IT_RUN(presence_across_nodes);
	IT_RUN(node_death);
	IT_RUN(config_refused);

	parley_client_free(alice);
	parley_client_free(bob);
	IT_EQ(srv_stop(&n2), 0);
	(void)srv_stop(&n1); /* killed already, unless a step bailed out before */
	srv_cleanup(&n2);
	srv_cleanup(&n1);
	nats("stop");
	printf("# %d failures\n", it_failures);
	return it_failures > 100 ? 100 : it_failures;
}
