/* t33: the webhook delivery of `parley bot` (tools/parley/bot_webhook.c, compiled in) against t33's
 * endpoint ($T33_WEBHOOK, a real HTTP server process on loopback that checks the signature):
 *
 *   retried     the endpoint answers 503 twice: the third attempt delivers, and the reply line the
 *               endpoint answers comes back;
 *   rejected    a wrong secret: 401 from the endpoint, reported (the reason names it), never retried;
 *   unreachable nobody listens: every attempt fails, exactly `attempts` of them, with backoff between;
 *   bad_url     only http:// and https:// are accepted.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tools/parley/bot.h"

static char dir[] = "/tmp/parley-t33w-XXXXXX";
static char url[128];
static pid_t server;

typedef struct result {
	int done, ok;
	long status;
	unsigned attempts;
	char why[256], response[512];
} result;

static void on_done(void *user, const bot_webhook_result *r)
{
	result *res = user;
	res->done = 1;
	res->ok = r->ok;
	res->status = r->http_status;
	res->attempts = r->attempts;
	snprintf(res->why, sizeof res->why, "%s", r->why);
	snprintf(res->response, sizeof res->response, "%.*s", (int)r->response_len, r->response);
}

/* One event through a webhook with this secret and URL; the result, and the time it took in ms. */
static result deliver(const char *to, const char *secret, unsigned attempts, uint64_t *ms)
{
	static const char ev[] = "{\"type\":\"message\",\"thread\":5,\"entity\":\"shop\",\"from\":\"carol\","
				 "\"role\":\"customer\",\"body\":\"hi\",\"payment\":false,\"ts\":1}\n";
	bot_webhook_options o;
	bot_webhook *w = NULL;
	result r;
	char err[128];
	uint64_t t0 = bot__mono_ms();

	memset(&r, 0, sizeof r);
	memset(&o, 0, sizeof o);
	o.url = to;
	o.secret = (const uint8_t *)secret;
	o.secret_len = strlen(secret);
	o.timeout_s = 5;
	o.attempts = attempts;
	IT_EQ(bot__webhook_new(&o, &w, err, sizeof err), 0);
	if (w == NULL)
		return r;
	IT_EQ(bot__webhook_post(w, ev, sizeof ev - 1), 0);
	IT_EQ(bot__webhook_post(w, ev, sizeof ev - 1), -1); /* one at a time */
	while (!r.done && bot__mono_ms() - t0 < 30000)
		bot__webhook_pump(w, 50, on_done, &r);
	IT_CHECK(!bot__webhook_busy(w));
	bot__webhook_free(w);
	*ms = bot__mono_ms() - t0;
	return r;
}

static char *read_log(void)
{
	static char buf[8192];
	char path[256];
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "%s/log", dir);
	buf[0] = '\0';
	f = fopen(path, "r");
	if (f == NULL)
		return buf;
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void retried(void)
{
	uint64_t ms = 0;
	result r = deliver(url, "sekrit", 5, &ms);

	IT_EQ(r.ok, 1);
	IT_EQ(r.status, 200);
	IT_EQ(r.attempts, 3);
	IT_CHECK(strcmp(r.response, "{\"type\":\"reply\",\"thread\":5,\"body\":\"hook: got it\"}\n") == 0);
	/* backoff 500 ms then 1000 ms */
	IT_CHECK(ms >= 1400);
	IT_CHECK(strstr(read_log(), "failed on purpose\nfailed on purpose\n{\"type\":\"message\"") != NULL);
}

static void rejected(void)
{
	uint64_t ms = 0;
	result r = deliver(url, "not the secret", 5, &ms);

	IT_EQ(r.ok, 0);
	IT_EQ(r.status, 401);
	IT_EQ(r.attempts, 1);
	IT_CHECK(strstr(r.why, "HTTP 401: bad signature") != NULL);
	IT_CHECK(strstr(read_log(), "rejected\n") != NULL);
}

static void unreachable(void)
{
	uint64_t ms = 0;
	/* port 1 on loopback: refused at once */
	result r = deliver("http://127.0.0.1:1/hook", "sekrit", 3, &ms);

	IT_EQ(r.ok, 0);
	IT_EQ(r.status, 0);
	IT_EQ(r.attempts, 3);
	IT_CHECK(r.why[0] != '\0');
	IT_CHECK(ms >= 1400 && ms < 10000);
}

static void bad_url(void)
{
	bot_webhook_options o;
	bot_webhook *w = NULL;
	char err[128] = "";

	memset(&o, 0, sizeof o);
	o.url = "ftp://127.0.0.1/x";
	o.secret = (const uint8_t *)"k";
	o.secret_len = 1;
	IT_EQ(bot__webhook_new(&o, &w, err, sizeof err), -1);
	IT_CHECK(w == NULL && strstr(err, "http://") != NULL);
}

int main(void)
{
	const char *bin = getenv("T33_WEBHOOK");
	char port_file[256], secret_file[256], log_file[256], port[16] = "";
	FILE *f;
	int i;

	if (bin == NULL || mkdtemp(dir) == NULL) {
		fprintf(stderr, "Bail out! T33_WEBHOOK not set or no temporary directory\n");
		return 99;
	}
	snprintf(port_file, sizeof port_file, "%s/port", dir);
	snprintf(secret_file, sizeof secret_file, "%s/secret", dir);
	snprintf(log_file, sizeof log_file, "%s/log", dir);
	f = fopen(secret_file, "w");
	if (f != NULL) {
		fputs("sekrit\n", f);
		fclose(f);
	}
	server = fork();
	if (server == 0) {
		execl(bin, bin, port_file, secret_file, log_file, "2", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200 && port[0] == '\0'; i++) {
		usleep(25000);
		f = fopen(port_file, "r");
		if (f != NULL) {
			if (fgets(port, sizeof port, f) == NULL || strchr(port, '\n') == NULL)
				port[0] = '\0';
			fclose(f);
		}
	}
	port[strcspn(port, "\n")] = '\0';
	snprintf(url, sizeof url, "http://127.0.0.1:%s/hook", port);
	if (port[0] != '\0') {
		IT_RUN(retried);
		IT_RUN(rejected);
		IT_RUN(unreachable);
		IT_RUN(bad_url);
	} else {
		fprintf(stderr, "# the webhook endpoint did not start\n");
		it_failures++;
	}
	kill(server, SIGTERM);
	waitpid(server, NULL, 0);
	snprintf(port_file, sizeof port_file, "rm -rf '%s'", dir);
	if (system(port_file) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
	return it_failures > 100 ? 100 : it_failures;
}
