/* server/net readiness over real loopback sockets: /livez always 200; /readyz 200 only when not draining,
 * the handler's health is good and every registered check passes, else 503 with the first failing
 * reason (JSON-escaped); /healthz keeps its old meaning; the check list's bounds; after stop_accepting
 * the public listener refuses while the admin one still answers /readyz 503 "draining". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <parley/error.h>

#include "base/log.h"
#include "net/server.h"
#include "test.h"

static atomic_int storage_full, bus_up = 1;

static int health(void *ctx, char *reason, size_t cap)
{
	(void)ctx;
	if (!storage_full) {
		reason[0] = '\0';
		return 0;
	}
	snprintf(reason, cap, "storage full: new data refused");
	return 1;
}

static int bus_check(void *arg, char *reason, size_t cap)
{
	TEST_CHECK(arg == &bus_up);
	if (atomic_load((atomic_int *)arg))
		return 1;
	/* a library's message may hold quotes and control bytes: the body must stay valid JSON */
	snprintf(reason, cap, "nats: \"connection refused\"\n");
	return 0;
}

static int always(void *arg, char *reason, size_t cap)
{
	(void)arg, (void)reason, (void)cap;
	return 1;
}

static int silent_no(void *arg, char *reason, size_t cap)
{
	(void)reason, (void)cap;
	return !atomic_load((atomic_int *)arg);
}

/* GET path on port: the status (-1 if no answer) and the body in body. */
static int get(uint16_t port, const char *path, char *body, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 5};
	char req[128], resp[4096];
	size_t got = 0;
	body[0] = '\0';
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	(void)send(fd, req, (size_t)n, MSG_NOSIGNAL);
	for (ssize_t r; got < sizeof resp - 1 && (r = recv(fd, resp + got, sizeof resp - 1 - got, 0)) > 0;)
		got += (size_t)r;
	close(fd);
	resp[got] = '\0';
	int status = -1;
	if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
		return -1;
	const char *b = strstr(resp, "\r\n\r\n");
	snprintf(body, cap, "%s", b != NULL ? b + 4 : "");
	return status;
}

/* the answer on both listeners must be the same */
static void expect(net_server *s, const char *path, int status, const char *body)
{
	uint16_t ports[2] = {net__server_port(s), net__server_admin_port(s)};
	for (int i = 0; i < 2; i++) {
		char got[1024];
		TEST_EQ_INT(get(ports[i], path, got, sizeof got), status);
		if (strcmp(got, body) != 0)
			fprintf(stderr, "# %s on %s: %s (want %s)\n", path, i ? "admin" : "public", got, body);
		TEST_EQ_STR(got, body);
	}
}

int main(void)
{
	static const net_handler h = {.health = health};
	net_config cfg;
	int err = -1;
	char body[1024];
	log__setup(LOG_LEVEL_ERROR, 0, 2);
	net__config_defaults(&cfg);
	cfg.port = 0;
	net_server *s = net__server_new(&cfg, &h, &err);
	TEST_EQ_INT(err, PARLEY_OK);
	if (s == NULL)
		return 1;

	/* registration: before start, bad arguments refused */
	TEST_EQ_INT(net__add_ready_check(s, "bus", bus_check, &bus_up), PARLEY_OK);
	TEST_EQ_INT(net__add_ready_check(s, "x", NULL, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(net__add_ready_check(s, "", always, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(net__server_start(s), PARLEY_OK);
	TEST_CHECK(net__server_admin_port(s) != 0);

	expect(s, "/livez", 200, "{\"status\":\"live\"}");
	expect(s, "/readyz", 200, "{\"status\":\"ready\"}");
	expect(s, "/healthz", 200, "{\"status\":\"ok\"}");

	/* a failing check: 503 with its name and its (escaped) reason; /healthz does not change */
	bus_up = 0;
	expect(s, "/readyz", 503, "{\"status\":\"unready\",\"reason\":\"bus: nats: \\\"connection refused\\\"\\u000a\"}");
	expect(s, "/healthz", 200, "{\"status\":\"ok\"}");
	expect(s, "/livez", 200, "{\"status\":\"live\"}");
	TEST_EQ_INT(net__server_ready(s, body, sizeof body), 0);
	bus_up = 1;
	expect(s, "/readyz", 200, "{\"status\":\"ready\"}");

	/* the handler's health (storage full) comes before the checks, and /healthz says it too */
	storage_full = 1;
	bus_up = 0;
	expect(s, "/readyz", 503, "{\"status\":\"unready\",\"reason\":\"storage full: new data refused\"}");
	expect(s, "/healthz", 503, "{\"status\":\"degraded\",\"reason\":\"storage full: new data refused\"}");
	storage_full = 0;
	bus_up = 1;

	/* checks added after start are seen by the next probe, in order, up to NET_MAX_READY_CHECKS */
	static atomic_int no = 1;
	TEST_EQ_INT(net__add_ready_check(s, "quiet", silent_no, &no), PARLEY_OK);
	expect(s, "/readyz", 503, "{\"status\":\"unready\",\"reason\":\"quiet: not ready\"}");
	no = 0;
	for (int i = 2; i < NET_MAX_READY_CHECKS; i++)
		TEST_EQ_INT(net__add_ready_check(s, "more", always, NULL), PARLEY_OK);
	TEST_EQ_INT(net__add_ready_check(s, "one too many", always, NULL), PARLEY_E_TOO_LARGE);
	expect(s, "/readyz", 200, "{\"status\":\"ready\"}");
	TEST_EQ_INT(net__server_ready(s, body, sizeof body), 1);

	/* draining wins over everything; live stays live */
	net__server_set_unready(s);
	expect(s, "/readyz", 503, "{\"status\":\"unready\",\"reason\":\"draining\"}");
	expect(s, "/livez", 200, "{\"status\":\"live\"}");

	/* stop accepting: the public listener goes, the admin one keeps answering until the drain ends */
	uint16_t port = net__server_port(s), admin = net__server_admin_port(s);
	net__server_stop_accepting(s);
	int refused = 0;
	for (int i = 0; i < 100 && !refused; i++) {
		refused = get(port, "/livez", body, sizeof body) == -1;
		if (!refused)
			usleep(10000);
	}
	TEST_CHECK(refused);
	TEST_EQ_INT(get(admin, "/readyz", body, sizeof body), 503);
	TEST_EQ_STR(body, "{\"status\":\"unready\",\"reason\":\"draining\"}");
	TEST_EQ_INT(net__server_drain(s, 1000), PARLEY_OK);
	TEST_EQ_INT(get(admin, "/readyz", body, sizeof body), -1);
	net__server_free(s);
	TEST_EXIT();
}
