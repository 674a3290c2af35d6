/* parley-gateway end to end: a real parleyd, an entity (admin alice, default agent bob), a gateway
 * account enrolled with a gateway code, the parley-gateway process ($PARLEY_GATEWAY) for it, and a fake
 * provider (fake_provider.c) standing in for Twilio's API, the WABA API and a BYOC endpoint.
 *   sms      a signed Twilio webhook reaches bob as an sms thread with the number; his answer reaches
 *            the fake as Twilio's Messages call; a bad signature is 403 and nothing arrives; a replayed
 *            webhook is answered 200 and not delivered twice
 *   outage   the fake answers 503 for a while: the answer arrives once, after retries
 *   restart  the gateway is stopped with an answer still undelivered: the next gateway delivers it
 *   auth     an otp request on the sms thread: the code goes to the number through Twilio; the
 *            customer's texted answers (a wrong one, the right one) go to the server, not the staff
 *   waba     handshake, a signed webhook, the answer as a WABA messages call
 *   byoc     a signed webhook, a bad one, the answer signed with X-Parley-Signature; limits (413, 404)
 *   webchat  the WebSocket: a session id, a message acknowledged and not resent on a repeat, the answer
 *            kept while the page is closed and delivered when the same session comes back */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <netinet/in.h>
#include <unistd.h>

#include <parley/auth.h>
#include <parley/client.h>
#include <parley/entity.h>
#include <parley/thread.h>

#include "../integration/harness.h"
#include "fake_provider.h"
#include "gw.h"

#define NUM "+15551234567"
#define TOKEN "tw-test-token"
#define APP_SECRET "waba-app-secret"
#define BYOC_SECRET "byoc-secret"

static srv s;
static char url[128];
static parley_client *admin, *agent;
static fake_provider fake;
static pid_t gw_pid;
static int gw_port;

typedef struct inbox {
	int n;
	char all[16384];
	uint64_t last_thread;
} inbox;
static inbox in_agent;

static void on_tmsg(parley_client *c, const parley_thread_message *m, void *user)
{
	inbox *b = user;
	(void)c;
	b->n++;
	b->last_thread = m->thread_id;
	size_t used = strlen(b->all);
	snprintf(b->all + used, sizeof b->all - used, "%s\n", (const char *)m->body);
}

static void on_err(parley_client *c, parley_err e, const char *h, uint32_t d, void *user)
{
	(void)user;
	fprintf(stderr, "# agent on_error %s from %s/%u: %s\n", parley_errname(e), h, (unsigned)d, parley_client_errmsg(c));
}

static void on_msg(parley_client *c, const parley_message *m, void *user)
{
	(void)c;
	(void)m;
	(void)user;
}

static int occurrences(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Runs the agent until its inbox holds `text` (or ~10 s). */
static int agent_sees(const char *text)
{
	(void)parley_connect(agent);
	for (int i = 0; i < 100 && !strstr(in_agent.all, text); i++)
		(void)parley_client_run(agent, 100);
	return strstr(in_agent.all, text) != NULL;
}

static int pick(fake_provider *f, const fake_req *r)
{
	(void)r;
	if (f->fail_left > 0) {
		f->fail_left--;
		return 503;
	}
	return f->fail_left < 0 ? 503 : 201; /* fail_left < 0: down until told */
}

static void set_fail(int n)
{
	pthread_mutex_lock(&fake.mu);
	fake.fail_left = n;
	pthread_mutex_unlock(&fake.mu);
}

/* Waits until the fake answered `status` to a request whose body has needle (or ~15 s). */
static int fake_got(int status, const char *needle, int n)
{
	for (int i = 0; i < 150 && fake_count(&fake, status, needle) < n; i++)
		usleep(100000);
	return fake_count(&fake, status, needle);
}

/* The port the gateway wrote to its --port-file (0 while there is none). */
static int read_port_file(const char *path)
{
	char buf[16] = "";
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (int)strtol(buf, NULL, 10);
}

/* Starts the gateway on a port of the system's choice (port 0 + --port-file: no race for a port) with
 * the common flags and `extra` (NULL-terminated, may be NULL), and waits until /healthz answers. */
static void gw_start_with(const char *const *extra)
{
	char a[40][340], pf[300];
	char *argv[42];
	int n = 0;
	const char *bin = getenv("PARLEY_GATEWAY");
	IT_MUST(&s, bin != NULL);
	snprintf(a[n++], sizeof a[0], "%s", bin);
	snprintf(a[n++], sizeof a[0], "--entity=acme");
	snprintf(a[n++], sizeof a[0], "--home=%s/gwen", s.dir);
	snprintf(a[n++], sizeof a[0], "--server=%s", url);
	snprintf(pf, sizeof pf, "%s/gw.port", s.dir);
	unlink(pf); /* the previous run's file (removed at a clean stop anyway) */
	snprintf(a[n++], sizeof a[0], "--port=0");
	snprintf(a[n++], sizeof a[0], "--port-file=%s", pf);
	snprintf(a[n++], sizeof a[0], "--public_url=http://gw.example");
	snprintf(a[n++], sizeof a[0], "--twilio.account_sid=AC123");
	snprintf(a[n++], sizeof a[0], "--twilio.auth_token=env:GW_TWILIO_TOKEN");
	snprintf(a[n++], sizeof a[0], "--twilio.from=+15550001111");
	snprintf(a[n++], sizeof a[0], "--twilio.api_base=http://127.0.0.1:%u", fake.port);
	snprintf(a[n++], sizeof a[0], "--waba.app_secret=env:GW_WABA_SECRET");
	snprintf(a[n++], sizeof a[0], "--waba.verify_token=env:GW_WABA_VERIFY");
	snprintf(a[n++], sizeof a[0], "--waba.token=env:GW_WABA_TOKEN");
	snprintf(a[n++], sizeof a[0], "--waba.phone_number_id=1055");
	snprintf(a[n++], sizeof a[0], "--waba.api_base=http://127.0.0.1:%u", fake.port);
	snprintf(a[n++], sizeof a[0], "--byoc.secret=env:GW_BYOC_SECRET");
	snprintf(a[n++], sizeof a[0], "--byoc.url=http://127.0.0.1:%u/byoc-hook", fake.port);
	snprintf(a[n++], sizeof a[0], "--retry_base_ms=100");
	snprintf(a[n++], sizeof a[0], "--retry_cap_ms=400");
	snprintf(a[n++], sizeof a[0], "--webchat=1");
	for (int i = 0; extra && extra[i] && n < 40; i++)
		snprintf(a[n++], sizeof a[0], "%s", extra[i]);
	for (int i = 0; i < n; i++)
		argv[i] = a[i];
	argv[n] = NULL;
	setenv("GW_TWILIO_TOKEN", TOKEN, 1);
	setenv("GW_WABA_SECRET", APP_SECRET, 1);
	setenv("GW_WABA_VERIFY", "vt-1", 1);
	setenv("GW_WABA_TOKEN", "waba-bearer", 1);
	setenv("GW_BYOC_SECRET", BYOC_SECRET, 1);
	gw_pid = fork();
	if (gw_pid == 0) {
		execv(bin, argv);
		_exit(127);
	}
	char resp[512];
	int up = 0;
	gw_port = 0;
	for (int i = 0; i < 200 && !gw_port; i++) {
		gw_port = read_port_file(pf);
		if (!gw_port)
			usleep(50000);
	}
	IT_MUST(&s, gw_port > 0);
	for (int i = 0; i < 100 && !up; i++) {
		up = http_get(gw_port, "/healthz", resp, sizeof resp) == 200;
		if (!up)
			usleep(50000);
	}
	IT_MUST(&s, up);
}

static void gw_start(void)
{
	gw_start_with(NULL);
}

static int gw_stop(void)
{
	int st = -1;
	kill(gw_pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(gw_pid, &st, WNOHANG) == gw_pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		usleep(100000);
	}
	kill(gw_pid, SIGKILL);
	waitpid(gw_pid, &st, 0);
	return -1;
}

/* POST path with body and one extra header line (may be ""); returns the status, resp filled. */
static int post(const char *path, const char *ctype, const char *hdr, const char *body, char *resp, size_t cap)
{
	static char req[100000];
	snprintf(req, sizeof req,
		 "POST %s HTTP/1.1\r\nHost: gw.example\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s",
		 path, ctype, hdr, strlen(body), body);
	return http_request(gw_port, req, resp, cap);
}

static int twilio_post(const char *sid, const char *text, int good_sig, char *resp, size_t cap)
{
	gw_buf b;
	gw_form f;
	char sig[TWILIO_SIGNATURE_LEN + 1], full[256], hdr[128];
	gwbuf__init(&b, 4096);
	gwbuf__printf(&b, "ToCountry=US&SmsMessageSid=%s&NumMedia=0&MessageSid=%s&AccountSid=AC123&From=", sid, sid);
	gwbuf__urlencode(&b, NUM);
	gwbuf__puts(&b, "&To=%2B15550001111&Body=");
	gwbuf__urlencode(&b, text);
	gwbuf__puts(&b, "&ApiVersion=2010-04-01");
	form__parse(b.data, b.len, &f);
	snprintf(full, sizeof full, "http://gw.example/sms/twilio");
	twilio__signature(good_sig ? TOKEN : "not-the-token", full, &f, sig);
	form__free(&f);
	snprintf(hdr, sizeof hdr, "X-Twilio-Signature: %s\r\n", sig);
	int st = post("/sms/twilio", "application/x-www-form-urlencoded", hdr, b.data, resp, cap);
	gwbuf__free(&b);
	return st;
}

static void setup(void)
{
	char code[PARLEY_ENROL_CODE_MAX + 1];
	uint64_t id = 0, req = 0;
	parley_rules_change ch;
	parley_events ev;
	parley_thread_events tev;

	admin = it_user(&s, url, "alice");
	agent = it_user(&s, url, "bob");
	parley_client *gw = it_user(&s, url, "gwen");
	IT_MUST(&s, admin && agent && gw);
	IT_EQ(parley_entity_create(admin, "acme", "Acme Support", &id), PARLEY_OK);
	IT_EQ(parley_entity_code(admin, "acme", 0, PARLEY_ROLE_AGENT, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(agent, "acme", code, &req), PARLEY_OK);
	IT_EQ(parley_entity_decide(admin, "acme", req, 1), PARLEY_OK);
	parley_rules_change_init(&ch);
	ch.default_agent = 1;
	IT_EQ(parley_entity_set_rules(admin, "acme", "bob", &ch), PARLEY_OK);
	IT_EQ(parley_entity_code(admin, "acme", 0, PARLEY_ROLE_GATEWAY, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(gw, "acme", code, &req), PARLEY_OK);
	IT_EQ(parley_entity_decide(admin, "acme", req, 1), PARLEY_OK);
	parley_client_free(gw); /* its state directory is the gateway process's from now on */
	memset(&ev, 0, sizeof ev);
	ev.on_error = on_err;
	ev.on_message = on_msg; /* receiving needs it: libparley receives pairwise messages only with one */
	parley_client_set_events(agent, &ev);
	memset(&tev, 0, sizeof tev);
	tev.on_thread_message = on_tmsg;
	tev.user = &in_agent;
	parley_thread_set_events(agent, &tev);
	parley_client_disconnect(agent); /* what was pushed while not receiving comes on the next connection */
	IT_MUST(&s, fake_start(&fake, pick) == 0);
	gw_start();
}

static uint64_t sms_thread;

static void sms(void)
{
	char resp[4096];
	parley_thread_info info;
	IT_EQ(twilio_post("SM0001", "it-gw hello by sms", 1, resp, sizeof resp), 200);
	IT_CHECK(strstr(resp, "<Response/>") != NULL);
	IT_CHECK(agent_sees("it-gw hello by sms"));
	sms_thread = in_agent.last_thread;
	IT_EQ(parley_thread_get(agent, sms_thread, &info), PARLEY_OK);
	IT_EQ(info.channel, PARLEY_CHANNEL_SMS);
	IT_CHECK(strcmp(info.channel_user, NUM) == 0);
	IT_EQ(info.gateway_verified, 1);
	/* bad signature: refused, nothing reaches the staff */
	IT_EQ(twilio_post("SM0002", "it-gw forged sms", 0, resp, sizeof resp), 403);
	/* no signature at all */
	IT_EQ(post("/sms/twilio", "application/x-www-form-urlencoded", "", "MessageSid=SM3&From=%2B15551234567&Body=x",
		   resp, sizeof resp),
	      403);
	/* the replay: answered 200, not delivered again */
	IT_EQ(twilio_post("SM0001", "it-gw hello by sms", 1, resp, sizeof resp), 200);
	IT_EQ(twilio_post("SM0004", "it-gw second sms", 1, resp, sizeof resp), 200);
	IT_CHECK(agent_sees("it-gw second sms"));
	(void)parley_client_run(agent, 500);
	IT_EQ(occurrences(in_agent.all, "it-gw hello by sms"), 1);
	IT_EQ(occurrences(in_agent.all, "it-gw forged sms"), 0);
	IT_EQ(in_agent.last_thread, sms_thread); /* the same number continues its thread */
	/* the agent answers: Twilio's Messages call reaches the fake */
	const char *ans = "it-gw answer one";
	IT_EQ(parley_thread_send(agent, sms_thread, (const uint8_t *)ans, strlen(ans), 0), PARLEY_OK);
	IT_EQ(fake_got(201, "Body=it-gw+answer+one", 1), 1);
	IT_CHECK(strstr(fake.reqs[fake.n - 1].head, "POST /2010-04-01/Accounts/AC123/Messages.json") != NULL);
	IT_CHECK(strstr(fake.reqs[fake.n - 1].body, "To=%2B15551234567&From=%2B15550001111") != NULL);
}

static void outage(void)
{
	const char *ans = "it-gw answer during outage";
	set_fail(3);
	IT_EQ(parley_thread_send(agent, sms_thread, (const uint8_t *)ans, strlen(ans), 0), PARLEY_OK);
	IT_EQ(fake_got(201, "it-gw+answer+during+outage", 1), 1);
	IT_EQ(fake_count(&fake, 503, "it-gw+answer+during+outage"), 3);
	usleep(500000);
	IT_EQ(fake_count(&fake, 201, "it-gw+answer+during+outage"), 1);
}

static void restart(void)
{
	const char *ans = "it-gw answer across restart";
	set_fail(-1);
	IT_EQ(parley_thread_send(agent, sms_thread, (const uint8_t *)ans, strlen(ans), 0), PARLEY_OK);
	IT_CHECK(fake_got(503, "it-gw+answer+across+restart", 1) >= 1);
	IT_EQ(gw_stop(), 0);
	char pf[300];
	snprintf(pf, sizeof pf, "%s/gw.port", s.dir);
	IT_CHECK(access(pf, F_OK) != 0); /* a stopped gateway's port is not advertised */
	set_fail(0);
	gw_start();
	IT_EQ(fake_got(201, "it-gw+answer+across+restart", 1), 1);
	/* and inbound still works after the restart, on the same thread */
	char resp[1024];
	IT_EQ(twilio_post("SM0005", "it-gw after restart", 1, resp, sizeof resp), 200);
	IT_CHECK(agent_sees("it-gw after restart"));
	IT_EQ(in_agent.last_thread, sms_thread);
}

/* The agent asks the sms customer for a one-time code: the gateway gets the prompt (with the code, as
 * the gateway of a channel thread) and sends the code to the number through Twilio. */
static int atoi_safe(const char *text)
{
	return (int)strtol(text, NULL, 10);
}

static void auth_prompt(void)
{
	parley_auth_component comp, out;
	parley_auth_request req;
	memset(&comp, 0, sizeof comp);
	snprintf(comp.entity, sizeof comp.entity, "acme");
	snprintf(comp.name, sizeof comp.name, "sms-code");
	comp.type = PARLEY_AUTH_OTP;
	comp.credential_ttl_s = 3600;
	IT_EQ(parley_auth_component_put(admin, &comp, &out), PARLEY_OK);
	IT_EQ(parley_auth_component_set_state(admin, "acme", out.component_id, PARLEY_COMPONENT_ACTIVE, &out), PARLEY_OK);
	IT_EQ(parley_auth_start(agent, sms_thread, out.component_id, &req), PARLEY_OK);
	IT_EQ(fake_got(201, "verification+code+for+Acme+Support+is+", 1), 1);
	char code[8] = "";
	for (int i = 0; i < fake.n; i++)
		if (strstr(fake.reqs[i].body, "verification+code")) {
			IT_CHECK(strstr(fake.reqs[i].body, "To=%2B15551234567&") != NULL);
			snprintf(code, sizeof code, "%.6s", strstr(fake.reqs[i].body, "+is+") + 4);
		}
	IT_EQ(strspn(code, "0123456789"), 6);
	/* the customer texts a wrong code, then the right one: the server judges; neither reaches the staff */
	char wrong[8], resp[1024];
	snprintf(wrong, sizeof wrong, "%06d", (atoi_safe(code) + 1) % 1000000);
	IT_EQ(twilio_post("SM0101", wrong, 1, resp, sizeof resp), 200);
	IT_EQ(twilio_post("SM0102", code, 1, resp, sizeof resp), 200);
	parley_auth_status st;
	memset(&st, 0, sizeof st);
	for (int i = 0; i < 100 && st.verification != PARLEY_VERIFICATION_AUTHENTICATED; i++) {
		usleep(100000);
		IT_EQ(parley_auth_status_get(agent, sms_thread, &st), PARLEY_OK);
	}
	IT_EQ(st.verification, PARLEY_VERIFICATION_AUTHENTICATED);
	IT_EQ(twilio_post("SM0103", "it-gw after the code", 1, resp, sizeof resp), 200);
	IT_CHECK(agent_sees("it-gw after the code"));
	IT_CHECK(strstr(in_agent.all, code) == NULL);
	IT_CHECK(strstr(in_agent.all, wrong) == NULL);
}

/* A WhatsApp-style webhook body with one text message of timestamp ts. */
static void waba_body(char *out, size_t cap, const char *id, long long ts, const char *text)
{
	snprintf(out, cap,
		 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"value\":"
		 "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"from\":\"16505551234\",\"id\":\"%s\","
		 "\"timestamp\":\"%lld\",\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]},\"field\":"
		 "\"messages\"}]}]}",
		 id, ts, text);
}

/* POSTs a signed WhatsApp webhook of one message; the status. */
static int waba_post(const char *id, long long ts, const char *text, char *resp, size_t cap)
{
	char body[1024], hdr[160], sig[GW_SHA256_HEADER_LEN + 1];
	waba_body(body, sizeof body, id, ts, text);
	sig__sha256_header((const uint8_t *)APP_SECRET, strlen(APP_SECRET), body, strlen(body), sig);
	snprintf(hdr, sizeof hdr, "X-Hub-Signature-256: %s\r\n", sig);
	return post("/waba", "application/json", hdr, body, resp, cap);
}

static void waba(void)
{
	char resp[4096], hdr[160], sig[GW_SHA256_HEADER_LEN + 1];
	IT_EQ(http_get(gw_port, "/waba?hub.mode=subscribe&hub.verify_token=vt-1&hub.challenge=8472", resp, sizeof resp),
	      200);
	IT_CHECK(strstr(resp, "\r\n\r\n8472") != NULL);
	IT_EQ(http_get(gw_port, "/waba?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=8472", resp, sizeof resp),
	      403);
	char body[1024];
	waba_body(body, sizeof body, "wamid.IT1", (long long)time(NULL), "it-gw hello by waba");
	sig__sha256_header((const uint8_t *)APP_SECRET, strlen(APP_SECRET), body, strlen(body), sig);
	snprintf(hdr, sizeof hdr, "X-Hub-Signature-256: %s\r\n", sig);
	/* signed with another secret: 403 */
	char bad[160], badsig[GW_SHA256_HEADER_LEN + 1];
	sig__sha256_header((const uint8_t *)"not-the-secret", 14, body, strlen(body), badsig);
	snprintf(bad, sizeof bad, "X-Hub-Signature-256: %s\r\n", badsig);
	IT_EQ(post("/waba", "application/json", bad, body, resp, sizeof resp), 403);
	IT_EQ(post("/waba", "application/json", "X-Hub-Signature-256: sha256=00\r\n", body, resp, sizeof resp), 403);
	IT_EQ(post("/waba", "application/json", hdr, body, resp, sizeof resp), 200);
	IT_CHECK(agent_sees("it-gw hello by waba"));
	uint64_t t = in_agent.last_thread;
	IT_CHECK(t != sms_thread);
	const char *ans = "it-gw waba answer";
	IT_EQ(parley_thread_send(agent, t, (const uint8_t *)ans, strlen(ans), 0), PARLEY_OK);
	IT_EQ(fake_got(201, "it-gw waba answer", 1), 1);
	for (int i = 0; i < fake.n; i++)
		if (strstr(fake.reqs[i].body, "it-gw waba answer")) {
			IT_CHECK(strstr(fake.reqs[i].head, "POST /v17.0/1055/messages") != NULL);
			IT_CHECK(strstr(fake.reqs[i].head, "Authorization: Bearer waba-bearer") != NULL);
			IT_CHECK(strstr(fake.reqs[i].body, "\"to\":\"16505551234\"") != NULL);
		}
	/* freshness: a genuine message older than webhook_max_age_s (a replay the dedupe has forgotten) or
	 * from beyond the clock skew is answered 200 (Meta must not retry it) and dropped; a fresh one next
	 * to them arrives. The default webhook_max_age_s is 7 days - 12 h. */
	long long now = (long long)time(NULL);
	IT_EQ(waba_post("wamid.OLD", now - 7 * 86400 + 43200 - 60, "it-gw stale waba", resp, sizeof resp), 200);
	IT_EQ(waba_post("wamid.FUT", now + 3600, "it-gw future waba", resp, sizeof resp), 200);
	IT_EQ(waba_post("wamid.EDGE", now - 6 * 86400, "it-gw six days old waba", resp, sizeof resp), 200);
	IT_CHECK(agent_sees("it-gw six days old waba"));
	(void)parley_client_run(agent, 300);
	IT_EQ(occurrences(in_agent.all, "it-gw stale waba"), 0);
	IT_EQ(occurrences(in_agent.all, "it-gw future waba"), 0);
	/* a message without its timestamp cannot be checked: malformed */
	const char *nots = "{\"entry\":[{\"changes\":[{\"value\":{\"messages\":[{\"from\":\"16505551234\",\"id\":"
			   "\"wamid.NOTS\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}";
	sig__sha256_header((const uint8_t *)APP_SECRET, strlen(APP_SECRET), nots, strlen(nots), sig);
	snprintf(hdr, sizeof hdr, "X-Hub-Signature-256: %s\r\n", sig);
	IT_EQ(post("/waba", "application/json", hdr, nots, resp, sizeof resp), 400);
}

/* The BYOC headers for body at time ts, signed with secret: X-Parley-Timestamp and X-Parley-Signature. */
static void byoc_headers(char *out, size_t cap, const char *secret, long long ts, const char *body)
{
	char t[24], sig[GW_SHA256_HEADER_LEN + 1];
	snprintf(t, sizeof t, "%lld", ts);
	sig__sha256_ts_header((const uint8_t *)secret, strlen(secret), t, body, strlen(body), sig);
	snprintf(out, cap, "X-Parley-Timestamp: %s\r\nX-Parley-Signature: %s\r\n", t, sig);
}

static void byoc(void)
{
	char resp[4096], hdr[200], sig[GW_SHA256_HEADER_LEN + 1];
	long long now = (long long)time(NULL);
	const char *body = "{\"id\":\"b-1\",\"user\":\"crm-user-7\",\"text\":\"it-gw hello by byoc\"}";
	byoc_headers(hdr, sizeof hdr, BYOC_SECRET, now, body);
	char bad[200];
	byoc_headers(bad, sizeof bad, "not-the-secret", now, body);
	IT_EQ(post("/byoc", "application/json", bad, body, resp, sizeof resp), 403);
	char t_only[64];
	snprintf(t_only, sizeof t_only, "X-Parley-Timestamp: %lld\r\nX-Parley-Signature: sha256=0\r\n", now);
	IT_EQ(post("/byoc", "application/json", t_only, body, resp, sizeof resp), 403);
	/* the signature of the body alone (the format before the timestamp): refused */
	char old_fmt[200];
	sig__sha256_header((const uint8_t *)BYOC_SECRET, strlen(BYOC_SECRET), body, strlen(body), sig);
	snprintf(old_fmt, sizeof old_fmt, "X-Parley-Timestamp: %lld\r\nX-Parley-Signature: %s\r\n", now, sig);
	IT_EQ(post("/byoc", "application/json", old_fmt, body, resp, sizeof resp), 403);
	/* no timestamp at all: 401, saying so */
	char no_ts[160];
	snprintf(no_ts, sizeof no_ts, "X-Parley-Signature: %s\r\n", sig);
	IT_EQ(post("/byoc", "application/json", no_ts, body, resp, sizeof resp), 401);
	IT_CHECK(strstr(resp, "X-Parley-Timestamp missing") != NULL);
	IT_CHECK(strstr(resp, "\r\nWWW-Authenticate: Parley-HMAC-SHA256 ") != NULL); /* a 401 names its scheme */
	/* genuinely signed, but outside the 300 s window (a replay once the window passed, or a wrong
	 * clock): 401, saying why; just inside it: accepted */
	char stale[200], ahead[200], inside[200];
	byoc_headers(stale, sizeof stale, BYOC_SECRET, now - 400, body);
	IT_EQ(post("/byoc", "application/json", stale, body, resp, sizeof resp), 401);
	IT_CHECK(strstr(resp, "timestamp too old") != NULL);
	IT_CHECK(strstr(resp, "\r\nWWW-Authenticate: Parley-HMAC-SHA256 ") != NULL);
	byoc_headers(ahead, sizeof ahead, BYOC_SECRET, now + 400, body);
	IT_EQ(post("/byoc", "application/json", ahead, body, resp, sizeof resp), 401);
	IT_CHECK(strstr(resp, "timestamp in the future") != NULL);
	const char *b2 = "{\"id\":\"b-2\",\"user\":\"crm-user-7\",\"text\":\"it-gw byoc inside the window\"}";
	byoc_headers(inside, sizeof inside, BYOC_SECRET, now - 200, b2);
	IT_EQ(post("/byoc", "application/json", inside, b2, resp, sizeof resp), 200);
	IT_EQ(post("/byoc", "application/json", hdr, body, resp, sizeof resp), 200);
	IT_CHECK(agent_sees("it-gw hello by byoc"));
	IT_CHECK(agent_sees("it-gw byoc inside the window"));
	uint64_t t = in_agent.last_thread;
	const char *ans = "it-gw byoc answer";
	IT_EQ(parley_thread_send(agent, t, (const uint8_t *)ans, strlen(ans), 0), PARLEY_OK);
	IT_EQ(fake_got(201, "it-gw byoc answer", 1), 1);
	for (int i = 0; i < fake.n; i++)
		if (strstr(fake.reqs[i].body, "it-gw byoc answer")) {
			/* our events carry the same freshness: X-Parley-Timestamp, signed with the body */
			const char *th = strstr(fake.reqs[i].head, "X-Parley-Timestamp: ");
			char ts[24] = "";
			IT_CHECK(th != NULL);
			if (th)
				snprintf(ts, sizeof ts, "%.*s", (int)strcspn(th + 20, "\r\n"), th + 20);
			IT_CHECK(llabs(strtoll(ts, NULL, 10) - (long long)time(NULL)) < 60);
			sig__sha256_ts_header((const uint8_t *)BYOC_SECRET, strlen(BYOC_SECRET), ts, fake.reqs[i].body,
					      strlen(fake.reqs[i].body), sig);
			IT_CHECK(strstr(fake.reqs[i].head, "POST /byoc-hook") != NULL);
			IT_CHECK(strstr(fake.reqs[i].head, sig) != NULL);
			IT_CHECK(strstr(fake.reqs[i].body, "\"user\":\"crm-user-7\"") != NULL);
		}
	/* limits: a body over max_body is 413 */
	char big[70000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	IT_EQ(post("/byoc", "application/json", hdr, big, resp, sizeof resp), 413);
	IT_EQ(http_get(gw_port, "/nowhere", resp, sizeof resp), 404);
	IT_EQ(http_get(gw_port, "/byoc", resp, sizeof resp), 405);
	IT_EQ(post("/sms/twilio", "application/json", "", "{}", resp, sizeof resp), 415);
	IT_EQ(http_request(gw_port, "BREW /pot HTTP/9\r\n\r\n", resp, sizeof resp), 400);
	/* a header section over the bound: 431, and the server goes on */
	char hugeh[20000];
	memset(hugeh, 'x', sizeof hugeh);
	memcpy(hugeh, "X-Junk: ", 8);
	memcpy(hugeh + sizeof hugeh - 3, "\r\n", 3);
	IT_EQ(post("/byoc", "application/json", hugeh, "{}", resp, sizeof resp), 431);
	/* a repeated signature header is ambiguous: 400 */
	char two[400];
	snprintf(two, sizeof two, "%s%s", hdr, hdr);
	IT_EQ(post("/byoc", "application/json", two, body, resp, sizeof resp), 400);
	IT_EQ(http_get(gw_port, "/healthz", resp, sizeof resp), 200);
	IT_EQ(http_get(gw_port, "/webchat/", resp, sizeof resp), 200);
	IT_CHECK(strstr(resp, "new WebSocket") != NULL);
}

/* A WebSocket upgrade to /webchat/ws from source address src (NULL: any) with an Origin header (NULL:
 * none) and an X-Forwarded-For header (NULL: none): the connected socket when the answer is 101 with RFC 6455's sample key's accept value, else -1;
 * *status gets the answer's status (0 when none) and body (may be NULL) its text. */
static int ws_upgrade_via(const char *src, const char *origin, const char *xff, int *status, char *body, size_t cap)
{
	int fd = src ? tcp_connect_from(gw_port, src) : tcp_connect(gw_port);
	char req[640], hdr[2048], org[300] = "";
	size_t n = 0;
	*status = 0;
	if (origin)
		snprintf(org, sizeof org, "Origin: %s\r\n", origin);
	if (xff)
		snprintf(org + strlen(org), sizeof org - strlen(org), "X-Forwarded-For: %s\r\n", xff);
	snprintf(req, sizeof req,
		 "GET /webchat/ws HTTP/1.1\r\nHost: gw.example\r\n%sUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n",
		 org);
	if (fd < 0 || send_all(fd, req, strlen(req)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	hdr[0] = '\0';
	while (n + 1 < sizeof hdr && recv_exact(fd, hdr + n, 1, 5000) == 1) {
		hdr[++n] = '\0';
		if (n >= 4 && memcmp(hdr + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	if (strncmp(hdr, "HTTP/1.1 ", 9) == 0)
		*status = (int)strtol(hdr + 9, NULL, 10);
	if (*status != 101 || !strstr(hdr, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
		if (body && cap) { /* the refusal's text (Content-Length bytes; the server closes after it) */
			const char *cl = strstr(hdr, "Content-Length: ");
			size_t len = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
			if (len >= cap)
				len = cap - 1;
			body[0] = '\0';
			if (len && recv_exact(fd, body, len, 5000) == (int)len)
				body[len] = '\0';
		}
		close(fd);
		return -1;
	}
	return fd;
}

static int ws_upgrade(const char *src, const char *origin, int *status, char *body, size_t cap)
{
	return ws_upgrade_via(src, origin, NULL, status, body, cap);
}

/* A WebSocket to /webchat/ws from the gateway's own origin (the default webchat_origins). */
static int webchat_open(void)
{
	int st;
	return ws_upgrade(NULL, "http://gw.example", &st, NULL, 0);
}

/* Reads frames until a close frame: its status code (-1 when the connection ends without one). */
static int ws_close_code(int fd)
{
	uint8_t buf[4096];
	for (int i = 0; i < 100; i++) {
		int op = 0;
		ssize_t n = ws_recv_frame(fd, &op, buf, sizeof buf, 5000);
		if (n < 0)
			return -1;
		if (op == 8)
			return n >= 2 ? (buf[0] << 8 | buf[1]) : 0;
	}
	return -1;
}

/* The next text frame holding needle (others skipped), copied into out; 0 if none within ~10 s. */
static int webchat_expect(int fd, const char *needle, char *out, size_t cap)
{
	for (int i = 0; i < 20; i++) {
		int op = 0;
		ssize_t n = ws_recv_frame(fd, &op, (uint8_t *)out, cap - 1, 10000);
		if (n < 0)
			return 0;
		out[n] = '\0';
		if (op == 1 && strstr(out, needle))
			return 1;
	}
	return 0;
}

static void webchat(void)
{
	char buf[4096], session[40] = "";
	int st;
	/* the Origin: by default only the gateway's own (public_url); none at all is not a browser */
	IT_EQ(ws_upgrade(NULL, "http://evil.example", &st, buf, sizeof buf), -1);
	IT_EQ(st, 403);
	IT_CHECK(strstr(buf, "origin not allowed") != NULL);
	IT_EQ(ws_upgrade(NULL, "https://gw.example.evil.example", &st, NULL, 0), -1);
	IT_EQ(st, 403);
	int nfd = ws_upgrade(NULL, NULL, &st, NULL, 0);
	IT_EQ(st, 101);
	if (nfd >= 0)
		close(nfd);
	int fd = webchat_open();
	IT_MUST(&s, fd >= 0);
	const char *hello = "{\"type\":\"hello\",\"session\":\"\"}";
	IT_EQ(ws_send_frame(fd, 1, 1, 1, hello, strlen(hello)), 0);
	IT_CHECK(webchat_expect(fd, "\"session\"", buf, sizeof buf));
	const char *p = strstr(buf, "\"session\":\"");
	if (p)
		snprintf(session, sizeof session, "%.32s", p + 11);
	IT_EQ(strlen(session), 32);
	const char *msg = "{\"type\":\"message\",\"id\":\"c1\",\"text\":\"it-gw hello by webchat\"}";
	IT_EQ(ws_send_frame(fd, 1, 1, 1, msg, strlen(msg)), 0);
	IT_CHECK(webchat_expect(fd, "\"ack\"", buf, sizeof buf));
	IT_EQ(ws_send_frame(fd, 1, 1, 1, msg, strlen(msg)), 0); /* the same id again: acknowledged, not resent */
	IT_CHECK(webchat_expect(fd, "\"ack\"", buf, sizeof buf));
	IT_CHECK(agent_sees("it-gw hello by webchat"));
	uint64_t t = in_agent.last_thread;
	parley_thread_info info;
	IT_EQ(parley_thread_get(agent, t, &info), PARLEY_OK);
	IT_EQ(info.channel, PARLEY_CHANNEL_WEBCHAT);
	IT_CHECK(strcmp(info.channel_user, session) == 0);
	/* the answer while the page is closed waits; the reopened page (same session) gets it */
	close(fd);
	const char *ans = "it-gw webchat answer";
	IT_EQ(parley_thread_send(agent, t, (const uint8_t *)ans, strlen(ans), 0), PARLEY_OK);
	(void)parley_client_run(agent, 300);
	fd = webchat_open();
	IT_MUST(&s, fd >= 0);
	char again[128];
	snprintf(again, sizeof again, "{\"type\":\"hello\",\"session\":\"%s\"}", session);
	IT_EQ(ws_send_frame(fd, 1, 1, 1, again, strlen(again)), 0);
	IT_CHECK(webchat_expect(fd, "it-gw webchat answer", buf, sizeof buf));
	IT_CHECK(strstr(buf, "\"type\":\"message\"") != NULL);
	(void)parley_client_run(agent, 300);
	IT_EQ(occurrences(in_agent.all, "it-gw hello by webchat"), 1);
	close(fd);
}

/* One client address's web chat limits, each reached: the gateway restarted with small ones. */
static void webchat_limits(void)
{
	const char *const extra[] = {"--webchat_origins=https://shop.example https://www.shop.example",
				     "--webchat_sessions_per_min=4", "--webchat_sessions_per_ip=3",
				     "--webchat_msgs_per_s=1", "--webchat_msg_burst=3", "--webchat_max_msg=1024",
				     "--webchat_trusted_proxies=127.0.0.4", NULL};
	char body[512];
	int st, fd[5], px[4];
	IT_EQ(gw_stop(), 0);
	gw_start_with(extra);
	/* origins: the configured ones only (the gateway's own is no longer among them) */
	IT_EQ(ws_upgrade("127.0.0.2", "http://gw.example", &st, NULL, 0), -1);
	IT_EQ(st, 403);
	fd[0] = ws_upgrade("127.0.0.2", "https://www.shop.example", &st, NULL, 0);
	IT_EQ(st, 101);
	/* at most 3 open at once from one address: the 4th is 429; another address is not affected */
	fd[1] = ws_upgrade("127.0.0.2", "https://shop.example", &st, NULL, 0);
	fd[2] = ws_upgrade("127.0.0.2", "https://shop.example", &st, NULL, 0);
	IT_EQ(st, 101);
	IT_EQ(ws_upgrade("127.0.0.2", "https://shop.example", &st, body, sizeof body), -1);
	IT_EQ(st, 429);
	IT_CHECK(strstr(body, "webchat_sessions_per_ip") != NULL);
	fd[3] = ws_upgrade("127.0.0.3", "https://shop.example", &st, NULL, 0);
	IT_EQ(st, 101);
	/* one closed: a place again (the 4th new session of the minute: the refused one cost nothing) */
	close(fd[0]);
	usleep(300000);
	fd[0] = ws_upgrade("127.0.0.2", "https://shop.example", &st, NULL, 0);
	IT_EQ(st, 101);
	/* and no 5th new session within the minute, even with room to keep it open */
	close(fd[0]);
	usleep(300000);
	IT_EQ(ws_upgrade("127.0.0.2", "https://shop.example", &st, body, sizeof body), -1);
	IT_EQ(st, 429);
	IT_CHECK(strstr(body, "webchat_sessions_per_min") != NULL);
	/* messages: a burst of 3 then 1 a second; the 4th at once closes the session with 1008 */
	const char *hello = "{\"type\":\"hello\",\"session\":\"\"}";
	for (int i = 0; i < 4; i++)
		IT_EQ(ws_send_frame(fd[1], 1, 1, 1, hello, strlen(hello)), 0);
	IT_EQ(ws_close_code(fd[1]), 1008);
	/* ... while a session within the rate is fine */
	char buf[1024];
	IT_EQ(ws_send_frame(fd[2], 1, 1, 1, hello, strlen(hello)), 0);
	IT_CHECK(webchat_expect(fd[2], "\"session\"", buf, sizeof buf));
	/* a message over webchat_max_msg: closed with 1009 */
	char big[2000];
	memset(big, 'x', sizeof big);
	IT_EQ(ws_send_frame(fd[3], 1, 1, 1, big, sizeof big), 0);
	IT_EQ(ws_close_code(fd[3]), 1009);
	close(fd[1]);
	close(fd[2]);
	close(fd[3]);
	/* behind a trusted proxy (127.0.0.4) the client is X-Forwarded-For's last entry: each client its
	 * own limits; from another peer the header is ignored */
	const char *a = "192.0.2.1, 198.51.100.7";
	for (int i = 0; i < 3; i++) {
		px[i] = ws_upgrade_via("127.0.0.4", "https://shop.example", a, &st, NULL, 0);
		IT_EQ(st, 101);
	}
	IT_EQ(ws_upgrade_via("127.0.0.4", "https://shop.example", a, &st, NULL, 0), -1);
	IT_EQ(st, 429);
	px[3] = ws_upgrade_via("127.0.0.4", "https://shop.example", "198.51.100.8", &st, NULL, 0);
	IT_EQ(st, 101);
	IT_EQ(ws_upgrade_via("127.0.0.4", "https://shop.example", "junk", &st, NULL, 0), -1);
	IT_EQ(st, 400);
	int other = ws_upgrade_via("127.0.0.5", "https://shop.example", "198.51.100.7", &st, NULL, 0);
	IT_EQ(st, 101); /* 198.51.100.7 is full, but 127.0.0.5 is no proxy of ours: its own address counts */
	if (other >= 0)
		close(other);
	for (int i = 0; i < 4; i++)
		if (px[i] >= 0)
			close(px[i]);
}

int main(void)
{
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	setup();
	IT_RUN(sms);
	IT_RUN(outage);
	IT_RUN(restart);
	IT_RUN(auth_prompt);
	IT_RUN(waba);
	IT_RUN(byoc);
	IT_RUN(webchat);
	IT_RUN(webchat_limits);
	IT_EQ(gw_stop(), 0);
	parley_client_free(agent);
	parley_client_free(admin);
	fake_stop(&fake);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	printf("# %d failures\n", it_failures);
	return it_failures ? 1 : 0;
}
