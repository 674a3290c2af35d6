/* parley-gateway state and outbound worker against a fake provider (fake_provider.c): inbound
 * idempotency and queue bound, outbox dedupe, delivery with basic auth, a provider outage (503s) that
 * loses nothing and duplicates nothing, a 4xx dead-lettered at once, the retry cap, and a restart of the
 * worker with entries still queued. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../unit/test.h"
#include "fake_provider.h"
#include "gw.h"
#include "sender.h"
#include "store.h"

static int pick_outage(fake_provider *f, const fake_req *r)
{
	if (strstr(r->body, "reject"))
		return 400;
	if (f->fail_left > 0) {
		f->fail_left--;
		return 503;
	}
	return 201;
}

static int pick_down(fake_provider *f, const fake_req *r)
{
	(void)f;
	(void)r;
	return 503;
}

static void setup(gw_config *c, const char *dir, unsigned short port)
{
	config__defaults(c);
	snprintf(c->db, sizeof(c->db), "%s/gw.db", dir);
	snprintf(c->twilio_account_sid, sizeof(c->twilio_account_sid), "AC123");
	snprintf(c->twilio_auth_token, sizeof(c->twilio_auth_token), "tok");
	snprintf(c->twilio_from, sizeof(c->twilio_from), "+15550001111");
	snprintf(c->twilio_api_base, sizeof(c->twilio_api_base), "http://127.0.0.1:%u", port);
	c->retry_base_ms = 20;
	c->retry_cap_ms = 80;
	c->http_timeout_s = 5;
}

static void queue(gw_store *st, const char *dedupe, const char *text)
{
	gw_out o = {.channel = PARLEY_CHANNEL_SMS, .kind = GW_OUT_TEXT, .text = (char *)text};
	snprintf(o.user, sizeof(o.user), "+15557654321");
	TEST_EQ_INT(store__outbox_add(st, dedupe, &o), PARLEY_OK);
}

/* Waits until nothing is queued (or 15 s). */
static void drain(gw_store *st)
{
	unsigned q = 1, s, d;
	for (int i = 0; i < 1500 && q; i++) {
		store__outbox_counts(st, &q, &s, &d);
		if (q)
			usleep(10000);
	}
	TEST_EQ_INT(q, 0);
}

static void test_inbound(const char *dir)
{
	char path[512];
	gw_store *st;
	snprintf(path, sizeof(path), "%s/in.db", dir);
	TEST_EQ_INT(store__open(path, &st), PARLEY_OK);
	gw_inbound a = {.id = "SM1", .user = "+15557654321", .text = "one", .text_len = 3};
	gw_inbound b = {.id = "SM2", .user = "+15557654321", .text = "two", .text_len = 3};
	gw_inbound c = {.id = "SM3", .user = "+15557654321", .text = "three", .text_len = 5};
	TEST_EQ_INT(store__inbound_add(st, PARLEY_CHANNEL_SMS, &a, 2), PARLEY_OK);
	TEST_EQ_INT(store__inbound_add(st, PARLEY_CHANNEL_SMS, &a, 2), PARLEY_E_EXISTS); /* the retried webhook */
	TEST_EQ_INT(store__inbound_add(st, PARLEY_CHANNEL_WABA, &a, 2), PARLEY_OK);     /* ids are per channel */
	TEST_EQ_INT(store__inbound_add(st, PARLEY_CHANNEL_SMS, &b, 2), PARLEY_E_BUSY);  /* queue_max reached */
	gw_pending p;
	TEST_EQ_INT(store__inbound_next(st, &p), PARLEY_OK);
	TEST_EQ_STR(p.text, "one");
	TEST_EQ_INT(p.channel, PARLEY_CHANNEL_SMS);
	TEST_EQ_INT(store__inbound_done(st, p.rowid, 1, 77, 0), PARLEY_OK);
	free(p.text);
	TEST_EQ_INT(store__inbound_add(st, PARLEY_CHANNEL_SMS, &b, 2), PARLEY_OK);
	TEST_EQ_INT(store__inbound_add(st, PARLEY_CHANNEL_SMS, &a, 2), PARLEY_E_EXISTS); /* still known once sent */
	store__close(st);
	/* a restart: pending rows are still there, in order */
	TEST_EQ_INT(store__open(path, &st), PARLEY_OK);
	TEST_EQ_INT(store__inbound_pending(st), 2);
	TEST_EQ_INT(store__inbound_next(st, &p), PARLEY_OK);
	TEST_EQ_INT(p.channel, PARLEY_CHANNEL_WABA);
	free(p.text);
	TEST_EQ_INT(store__inbound_add(st, PARLEY_CHANNEL_SMS, &c, 2), PARLEY_E_BUSY);
	/* thread map */
	int ch = 0;
	char user[PARLEY_CHANNEL_USER_MAX + 1];
	TEST_EQ_INT(store__thread_get(st, 77, &ch, user), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(store__thread_put(st, 77, PARLEY_CHANNEL_SMS, "+15557654321"), PARLEY_OK);
	TEST_EQ_INT(store__thread_get(st, 77, &ch, user), PARLEY_OK);
	TEST_EQ_INT(ch, PARLEY_CHANNEL_SMS);
	TEST_EQ_STR(user, "+15557654321");
	store__close(st);
}

static void test_outage(const char *dir)
{
	fake_provider f;
	gw_config c;
	gw_store *st;
	gw_sender *s;
	TEST_EQ_INT(fake_start(&f, pick_outage), 0);
	f.fail_left = 4;
	setup(&c, dir, f.port);
	TEST_EQ_INT(store__open(c.db, &st), PARLEY_OK);
	queue(st, "m1", "first");
	queue(st, "m2", "second");
	queue(st, "m3", "third");
	TEST_EQ_INT(store__outbox_add(st, "m1", &(gw_out){.channel = 2, .user = "+15557654321", .kind = 1}),
		    PARLEY_E_EXISTS);
	queue(st, "m4", "please reject");
	TEST_EQ_INT(sender__start(&c, &s), PARLEY_OK);
	drain(st);
	sender__stop(s);
	/* each message reached the provider exactly once with a success; the outage cost 4 x 503 */
	TEST_EQ_INT(fake_count(&f, 201, "Body=first"), 1);
	TEST_EQ_INT(fake_count(&f, 201, "Body=second"), 1);
	TEST_EQ_INT(fake_count(&f, 201, "Body=third"), 1);
	TEST_EQ_INT(fake_count(&f, 503, NULL), 4);
	/* the 4xx: tried once, dead-lettered */
	TEST_EQ_INT(fake_count(&f, 400, "reject"), 1);
	unsigned q, sent, dead;
	store__outbox_counts(st, &q, &sent, &dead);
	TEST_EQ_INT(sent, 3);
	TEST_EQ_INT(dead, 1);
	/* Twilio's request shape: path, basic auth, form body */
	TEST_CHECK(strstr(f.reqs[0].head, "POST /2010-04-01/Accounts/AC123/Messages.json ") != NULL);
	TEST_CHECK(strstr(f.reqs[0].head, "Authorization: Basic QUMxMjM6dG9r") != NULL); /* AC123:tok */
	TEST_CHECK(strstr(f.reqs[0].body, "To=%2B15557654321&From=%2B15550001111&Body=") == f.reqs[0].body);
	store__close(st);
	fake_stop(&f);
}

static void test_cap_and_restart(const char *dir)
{
	fake_provider f;
	gw_config c;
	gw_store *st;
	gw_sender *s;
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/r", dir);
	TEST_EQ_INT(mkdir(sub, 0700), 0);
	TEST_EQ_INT(fake_start(&f, pick_down), 0);
	setup(&c, sub, f.port);
	c.retry_max = 3;
	TEST_EQ_INT(store__open(c.db, &st), PARLEY_OK);
	queue(st, "x1", "capped");
	TEST_EQ_INT(sender__start(&c, &s), PARLEY_OK);
	drain(st);
	sender__stop(s);
	TEST_EQ_INT(fake_count(&f, 503, "capped"), 3); /* exactly retry_max attempts, then dead */
	unsigned q, sent, dead;
	store__outbox_counts(st, &q, &sent, &dead);
	TEST_EQ_INT(dead, 1);

	/* a long outage with a stop in the middle: entries stay queued, a new worker delivers them */
	c.retry_max = 100;
	c.retry_cap_ms = 50;
	queue(st, "y1", "survivor");
	TEST_EQ_INT(sender__start(&c, &s), PARLEY_OK);
	for (int i = 0; i < 500 && fake_count(&f, 503, "survivor") < 3; i++)
		usleep(10000);
	sender__stop(s);
	TEST_CHECK(fake_count(&f, 503, "survivor") >= 3);
	store__outbox_counts(st, &q, &sent, &dead);
	TEST_EQ_INT(q, 1);
	f.pick = pick_outage; /* the provider is back */
	TEST_EQ_INT(sender__start(&c, &s), PARLEY_OK);
	drain(st);
	sender__stop(s);
	TEST_EQ_INT(fake_count(&f, 201, "survivor"), 1);
	store__close(st);
	fake_stop(&f);
}

/* A string member of o, "" when absent (so a missing member fails a comparison rather than crashing). */
static const char *js(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

/* A sign-in prompt on WhatsApp goes out as an interactive CTA URL button message (the Cloud API's
 * shape): checked on what the fake provider received, parsed as JSON. */
static void test_waba_cta(const char *dir)
{
	fake_provider f;
	gw_config c;
	gw_store *st;
	gw_sender *s;
	char sub[512];
	json_error_t e;
	snprintf(sub, sizeof(sub), "%s/w", dir);
	TEST_EQ_INT(mkdir(sub, 0700), 0);
	TEST_EQ_INT(fake_start(&f, pick_outage), 0);
	setup(&c, sub, f.port);
	snprintf(c.waba_app_secret, sizeof(c.waba_app_secret), "app");
	snprintf(c.waba_token, sizeof(c.waba_token), "bearer-w");
	snprintf(c.waba_phone_number_id, sizeof(c.waba_phone_number_id), "1055");
	snprintf(c.waba_api_base, sizeof(c.waba_api_base), "http://127.0.0.1:%u", f.port);
	TEST_EQ_INT(store__open(c.db, &st), PARLEY_OK);
	gw_out o = {.channel = PARLEY_CHANNEL_WABA, .kind = GW_OUT_AUTH, .text = "acme-sso",
		    .url = "https://parley.example/v1/auth/start?r=abc", .otp = "", .entity = "Acme Support"};
	snprintf(o.user, sizeof(o.user), "+16505551234");
	TEST_EQ_INT(store__outbox_add(st, "cta1", &o), PARLEY_OK);
	TEST_EQ_INT(sender__start(&c, &s), PARLEY_OK);
	drain(st);
	sender__stop(s);
	TEST_EQ_INT(fake_count(&f, 201, "cta_url"), 1);
	TEST_CHECK(strstr(f.reqs[0].head, "POST /v17.0/1055/messages ") != NULL);
	json_t *m = json_loads(f.reqs[0].body, 0, &e);
	json_t *in = json_object_get(m, "interactive");
	json_t *act = json_object_get(in, "action");
	json_t *par = json_object_get(act, "parameters");
	const char *body = js(json_object_get(in, "body"), "text");
	TEST_CHECK(m != NULL);
	TEST_EQ_STR(js(m, "messaging_product"), "whatsapp");
	TEST_EQ_STR(js(m, "to"), "16505551234");
	TEST_EQ_STR(js(m, "type"), "interactive");
	TEST_EQ_STR(js(in, "type"), "cta_url");
	TEST_EQ_STR(js(act, "name"), "cta_url");
	TEST_EQ_STR(js(par, "display_text"), "Sign in");
	TEST_EQ_STR(js(par, "url"), "https://parley.example/v1/auth/start?r=abc");
	TEST_CHECK(strstr(body, "Acme Support") && strstr(body, "acme-sso"));
	TEST_CHECK(strlen(body) <= 1024 && !strstr(body, "https://")); /* the link is the button's only */
	TEST_CHECK(strlen(js(par, "display_text")) <= 20);
	json_decref(m);
	store__close(st);
	fake_stop(&f);
}

int main(void)
{
	char dir[] = "/tmp/parley-gw-outbox-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_inbound(dir);
	printf("ok - inbound\n");
	test_outage(dir);
	printf("ok - outage\n");
	test_cap_and_restart(dir);
	printf("ok - cap and restart\n");
	test_waba_cta(dir);
	printf("ok - waba cta\n");
	curl_global_cleanup();
	test_remove_tree(dir);
	TEST_EXIT();
}
