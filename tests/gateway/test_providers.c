/* parley-gateway, pure parts: form codec, signatures (Twilio's documented example, HMAC-SHA256 headers),
 * the provider parsers and request builders, the outbox backoff schedule and classification. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/test.h"
#include "gw.h"

static gw_config cfg(void)
{
	gw_config c;
	config__defaults(&c);
	snprintf(c.twilio_account_sid, sizeof(c.twilio_account_sid), "AC123");
	snprintf(c.twilio_auth_token, sizeof(c.twilio_auth_token), "tok");
	snprintf(c.twilio_from, sizeof(c.twilio_from), "+15550001111");
	snprintf(c.twilio_api_base, sizeof(c.twilio_api_base), "http://127.0.0.1:9");
	snprintf(c.waba_token, sizeof(c.waba_token), "bearer-x");
	snprintf(c.waba_phone_number_id, sizeof(c.waba_phone_number_id), "1055");
	snprintf(c.waba_api_base, sizeof(c.waba_api_base), "http://w");
	snprintf(c.waba_otp_template, sizeof(c.waba_otp_template), "auth_code");
	snprintf(c.byoc_secret, sizeof(c.byoc_secret), "s3cret");
	snprintf(c.byoc_url, sizeof(c.byoc_url), "http://b/hook");
	return c;
}

static void test_form(void)
{
	gw_form f;
	const char *s = "a=1&b=x+y%21&empty=&flag&a=2&%41%62=%7e";
	TEST_EQ_INT(form__parse(s, strlen(s), &f), PARLEY_OK);
	TEST_EQ_INT(f.n, 6);
	TEST_EQ_STR(form__get(&f, "a"), "1");
	TEST_EQ_STR(form__get(&f, "b"), "x y!");
	TEST_EQ_STR(form__get(&f, "empty"), "");
	TEST_EQ_STR(form__get(&f, "flag"), "");
	TEST_EQ_STR(form__get(&f, "Ab"), "~");
	TEST_CHECK(form__get(&f, "zz") == NULL);
	form__free(&f);
	/* bad escapes, a decoded NUL: refused */
	TEST_EQ_INT(form__parse("a=%4", 4, &f), PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(form__parse("a=%zz", 5, &f), PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(form__parse("a=%00", 5, &f), PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(form__parse("a=%", 3, &f), PARLEY_E_CHANNEL_INVALID);
	/* too many fields */
	gw_buf b;
	gwbuf__init(&b, 1 << 16);
	for (int i = 0; i <= GW_FORM_MAX_FIELDS; i++)
		gwbuf__printf(&b, "k%d=v&", i);
	TEST_EQ_INT(form__parse(b.data, b.len, &f), PARLEY_E_CHANNEL_INVALID);
	/* round trip of the encoder */
	b.len = 0;
	gwbuf__urlencode(&b, "a b&c=d+é~");
	TEST_EQ_STR(b.data, "a+b%26c%3Dd%2B%C3%A9~");
	TEST_EQ_INT(form__parse(b.data, b.len, &f), PARLEY_OK);
	TEST_EQ_STR(f.f[0].name, "a b&c=d+é~");
	form__free(&f);
	gwbuf__free(&b);
}

/* Twilio's documented example ("Validating requests"): token 12345, this URL and these parameters sign
 * to RSOYDt4T1cUTdK1PDd93/VVr8B8=. The form is given in a scrambled order: the signature sorts. */
static void test_twilio_signature(void)
{
	const char *url = "https://mycompany.com/myapp.php?foo=1&bar=2";
	const char *body = "To=%2B18005551212&Digits=1234&CallSid=CA1234567890ABCDE&From=%2B14158675309&"
			   "Caller=%2B14158675309";
	char sig[TWILIO_SIGNATURE_LEN + 1];
	gw_form f;
	TEST_EQ_INT(form__parse(body, strlen(body), &f), PARLEY_OK);
	TEST_EQ_INT(twilio__signature("12345", url, &f, sig), PARLEY_OK);
	TEST_EQ_STR(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
	TEST_EQ_INT(twilio__check("12345", url, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), PARLEY_OK);
	TEST_EQ_INT(twilio__check("12346", url, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(twilio__check("12345", "https://mycompany.com/myapp.php?foo=1&bar=3", &f,
				  "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
		    PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(twilio__check("12345", url, &f, NULL), PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(twilio__check("12345", url, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8"), PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(twilio__check("", url, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), PARLEY_E_CHANNEL_SIGNATURE);
	form__free(&f);
	/* a changed parameter value breaks it */
	body = "To=%2B18005551212&Digits=1235&CallSid=CA1234567890ABCDE&From=%2B14158675309&Caller=%2B14158675309";
	TEST_EQ_INT(form__parse(body, strlen(body), &f), PARLEY_OK);
	TEST_EQ_INT(twilio__check("12345", url, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), PARLEY_E_CHANNEL_SIGNATURE);
	form__free(&f);
}

static void test_twilio_parse(void)
{
	gw_form f;
	gw_inbound in;
	const char *body = "ToCountry=US&NumMedia=0&Body=Hello+there%21&From=%2B15557654321&To=%2B15550001111&"
			   "MessageSid=SM0123456789abcdef&AccountSid=AC123&ApiVersion=2010-04-01";
	TEST_EQ_INT(form__parse(body, strlen(body), &f), PARLEY_OK);
	TEST_EQ_INT(twilio__parse(&f, "AC123", &in), PARLEY_OK);
	TEST_EQ_STR(in.id, "SM0123456789abcdef");
	TEST_EQ_STR(in.user, "+15557654321");
	TEST_EQ_STR(in.text, "Hello there!");
	free(in.text);
	TEST_EQ_INT(twilio__parse(&f, "AC999", &in), PARLEY_E_CHANNEL_INVALID); /* another account's */
	form__free(&f);
	const char *bad[] = {
		"Body=x&From=%2B15557654321",                      /* no sid */
		"MessageSid=SM1&Body=x&From=15557654321",          /* not E.164 */
		"MessageSid=SM1&Body=x&From=%2B0557654321",        /* leading 0 */
		"MessageSid=SM1&Body=&From=%2B15557654321&NumMedia=0", /* nothing */
		"MessageSid=SM+1&Body=x&From=%2B15557654321",     /* id not printable-without-space */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TEST_EQ_INT(form__parse(bad[i], strlen(bad[i]), &f), PARLEY_OK);
		TEST_EQ_INT(twilio__parse(&f, NULL, &in), PARLEY_E_CHANNEL_INVALID);
		form__free(&f);
	}
	body = "MessageSid=MM1&Body=&NumMedia=1&From=%2B15557654321";
	TEST_EQ_INT(form__parse(body, strlen(body), &f), PARLEY_OK);
	TEST_EQ_INT(twilio__parse(&f, NULL, &in), PARLEY_OK);
	TEST_EQ_STR(in.text, "[media]");
	free(in.text);
	form__free(&f);
}

static void test_twilio_request(void)
{
	gw_config c = cfg();
	gw_request r;
	gw_out o = {.channel = PARLEY_CHANNEL_SMS, .kind = GW_OUT_TEXT, .text = "Hi & bye"};
	snprintf(o.user, sizeof(o.user), "+15557654321");
	request__init(&r, 65536);
	TEST_EQ_INT(twilio__request(&c, &o, &r), PARLEY_OK);
	TEST_EQ_STR(r.url, "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages.json");
	TEST_EQ_STR(r.body.data, "To=%2B15557654321&From=%2B15550001111&Body=Hi+%26+bye");
	TEST_EQ_STR(r.basic_user, "AC123");
	TEST_EQ_STR(r.basic_pass, "tok");
	request__free(&r);
	/* an auth prompt: the URL in a short text; an otp: the code */
	gw_out a = {.channel = PARLEY_CHANNEL_SMS, .kind = GW_OUT_AUTH, .text = "Bank login", .url = "https://a/x",
		    .otp = "", .entity = "Acme"};
	snprintf(a.user, sizeof(a.user), "+15557654321");
	request__init(&r, 65536);
	TEST_EQ_INT(twilio__request(&c, &a, &r), PARLEY_OK);
	TEST_CHECK(strstr(r.body.data, "https%3A%2F%2Fa%2Fx") != NULL);
	request__free(&r);
	a.url = "";
	a.otp = "123456";
	request__init(&r, 65536);
	TEST_EQ_INT(twilio__request(&c, &a, &r), PARLEY_OK);
	TEST_CHECK(strstr(r.body.data, "123456") != NULL);
	request__free(&r);
}

static void test_waba(void)
{
	char ch[64];
	TEST_EQ_INT(waba__verify("hub.mode=subscribe&hub.verify_token=vt&hub.challenge=1158201444", "vt", ch,
				 sizeof(ch)),
		    PARLEY_OK);
	TEST_EQ_STR(ch, "1158201444");
	TEST_EQ_INT(waba__verify("hub.mode=subscribe&hub.verify_token=vx&hub.challenge=1", "vt", ch, sizeof(ch)),
		    PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(waba__verify("hub.mode=unsubscribe&hub.verify_token=vt&hub.challenge=1", "vt", ch, sizeof(ch)),
		    PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(waba__verify("hub.mode=subscribe&hub.verify_token=vt&hub.challenge=%3Cb%3E+x", "vt", ch,
				 sizeof(ch)),
		    PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(waba__verify("hub.mode=subscribe&hub.verify_token=&hub.challenge=1", "", ch, sizeof(ch)),
		    PARLEY_E_CHANNEL_SIGNATURE);

	const char *body =
		"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA_ID\",\"changes\":[{\"value\":"
		"{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550001111\","
		"\"phone_number_id\":\"1055\"},\"contacts\":[{\"profile\":{\"name\":\"Kim\"},\"wa_id\":"
		"\"16505551234\"}],\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.ID1\",\"timestamp\":"
		"\"1700000000\",\"text\":{\"body\":\"hello\"},\"type\":\"text\"},{\"from\":\"16505551234\",\"id\":"
		"\"wamid.ID2\",\"timestamp\":\"1700000001\",\"type\":\"image\",\"image\":{\"id\":\"m\"}}]},"
		"\"field\":\"messages\"}]}]}";
	gw_inbound_list l;
	TEST_EQ_INT(waba__parse(body, strlen(body), 10, &l), PARLEY_OK);
	TEST_EQ_INT(l.n, 2);
	if (l.n == 2) {
		TEST_EQ_STR(l.v[0].id, "wamid.ID1");
		TEST_EQ_STR(l.v[0].user, "+16505551234");
		TEST_EQ_STR(l.v[0].text, "hello");
		TEST_EQ_STR(l.v[1].text, "[image]");
	}
	inbound__list_free(&l);
	TEST_EQ_INT(waba__parse(body, strlen(body), 1, &l), PARLEY_E_TOO_LARGE);
	/* a status update only: no message, fine */
	const char *st = "{\"entry\":[{\"changes\":[{\"value\":{\"statuses\":[{\"id\":\"wamid.X\"}]}}]}]}";
	TEST_EQ_INT(waba__parse(st, strlen(st), 10, &l), PARLEY_OK);
	TEST_EQ_INT(l.n, 0);
	const char *bad[] = {"[]", "{\"entry\":1}", "{", "{\"entry\":[{\"changes\":[{\"value\":{\"messages\":[{"
							       "\"from\":\"x1\",\"id\":\"a\",\"type\":\"text\","
							       "\"text\":{\"body\":\"h\"}}]}}]}]}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TEST_EQ_INT(waba__parse(bad[i], strlen(bad[i]), 10, &l), PARLEY_E_CHANNEL_INVALID);

	gw_config c = cfg();
	gw_request r;
	gw_out o = {.channel = PARLEY_CHANNEL_WABA, .kind = GW_OUT_TEXT, .text = "yo"};
	snprintf(o.user, sizeof(o.user), "+16505551234");
	request__init(&r, 65536);
	TEST_EQ_INT(waba__request(&c, &o, &r), PARLEY_OK);
	TEST_EQ_STR(r.url, "http://w/v17.0/1055/messages");
	TEST_CHECK(strstr(r.body.data, "\"to\":\"16505551234\"") != NULL);
	TEST_CHECK(strstr(r.body.data, "\"type\":\"text\"") != NULL);
	TEST_CHECK(strstr(r.body.data, "\"body\":\"yo\"") != NULL);
	TEST_EQ_STR(r.bearer, "bearer-x");
	request__free(&r);
	gw_out a = {.channel = PARLEY_CHANNEL_WABA, .kind = GW_OUT_AUTH, .text = "c", .url = "", .otp = "654321"};
	snprintf(a.user, sizeof(a.user), "+16505551234");
	request__init(&r, 65536);
	TEST_EQ_INT(waba__request(&c, &a, &r), PARLEY_OK);
	TEST_CHECK(strstr(r.body.data, "\"type\":\"template\"") != NULL);
	TEST_CHECK(strstr(r.body.data, "\"name\":\"auth_code\"") != NULL);
	TEST_CHECK(strstr(r.body.data, "\"text\":\"654321\"") != NULL);
	TEST_CHECK(strstr(r.body.data, "\"sub_type\":\"url\"") != NULL);
	request__free(&r);
}

static void test_sha256_and_byoc(void)
{
	const char *body = "{\"id\":\"m1\",\"user\":\"sess-42\",\"text\":\"hi\"}";
	char h[GW_SHA256_HEADER_LEN + 1];
	sig__sha256_header((const uint8_t *)"key", 3, "The quick brown fox jumps over the lazy dog", 43, h);
	/* RFC 4231-style known answer (the Wikipedia HMAC example) */
	TEST_EQ_STR(h, "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
	sig__sha256_header((const uint8_t *)"s3cret", 6, body, strlen(body), h);
	TEST_EQ_INT(sig__sha256_check((const uint8_t *)"s3cret", 6, body, strlen(body), h), PARLEY_OK);
	TEST_EQ_INT(sig__sha256_check((const uint8_t *)"s3creT", 6, body, strlen(body), h),
		    PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(sig__sha256_check((const uint8_t *)"s3cret", 6, body, strlen(body) - 1, h),
		    PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(sig__sha256_check((const uint8_t *)"s3cret", 6, body, strlen(body), NULL),
		    PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(sig__sha256_check((const uint8_t *)"s3cret", 6, body, strlen(body), h + 7),
		    PARLEY_E_CHANNEL_SIGNATURE);

	gw_inbound in;
	TEST_EQ_INT(byoc__parse(body, strlen(body), &in), PARLEY_OK);
	TEST_EQ_STR(in.id, "m1");
	TEST_EQ_STR(in.user, "sess-42");
	TEST_EQ_STR(in.text, "hi");
	free(in.text);
	const char *bad[] = {"{\"id\":\"m1\",\"user\":\"a b\",\"text\":\"hi\"}", "{\"id\":\"m1\",\"text\":\"hi\"}",
			     "{\"id\":\"m1\",\"user\":\"u\",\"text\":\"\"}",
			     "{\"id\":\"m1\",\"user\":\"u\",\"text\":\"a\\u0000b\"}", "{\"id\":1,\"user\":\"u\",\"text\":\"x\"}",
			     "not json"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TEST_EQ_INT(byoc__parse(bad[i], strlen(bad[i]), &in), PARLEY_E_CHANNEL_INVALID);

	gw_config c = cfg();
	gw_request r;
	gw_out o = {.channel = PARLEY_CHANNEL_BYOC, .kind = GW_OUT_TEXT, .text = "answer"};
	snprintf(o.user, sizeof(o.user), "sess-42");
	request__init(&r, 65536);
	TEST_EQ_INT(byoc__request(&c, &o, &r), PARLEY_OK);
	TEST_EQ_STR(r.body.data, "{\"text\":\"answer\",\"type\":\"message\",\"user\":\"sess-42\"}");
	/* our events are signed like the calls we accept: over our timestamp "." the body */
	TEST_CHECK(strncmp(r.ts_header, "X-Parley-Timestamp: ", 20) == 0);
	TEST_CHECK(llabs(inbound__parse_ts(r.ts_header + 20) - (long long)time(NULL)) < 5);
	TEST_EQ_INT(byoc__check("s3cret", r.ts_header + 20, r.sig_header + 20, r.body.data, r.body.len, time(NULL), 300),
		    PARLEY_OK);
	sig__sha256_header((const uint8_t *)"s3cret", 6, r.body.data, r.body.len, h);
	TEST_CHECK(strstr(r.sig_header, h) == NULL); /* not the body alone */
	request__free(&r);
}

/* Freshness: timestamps, the WABA age check, the BYOC signed-timestamp window. */
static void test_freshness(void)
{
	TEST_EQ_INT(inbound__parse_ts("1700000000"), 1700000000);
	TEST_EQ_INT(inbound__parse_ts("0"), 0);
	TEST_EQ_INT(inbound__parse_ts(""), -1);
	TEST_EQ_INT(inbound__parse_ts(NULL), -1);
	TEST_EQ_INT(inbound__parse_ts("-5"), -1);
	TEST_EQ_INT(inbound__parse_ts("17e8"), -1);
	TEST_EQ_INT(inbound__parse_ts("1234567890123"), -1); /* 13 digits */
	TEST_EQ_INT(inbound__fresh(1000, 1000, 60), PARLEY_OK);
	TEST_EQ_INT(inbound__fresh(940, 1000, 60), PARLEY_OK);
	TEST_EQ_INT(inbound__fresh(939, 1000, 60), PARLEY_E_TIMEOUT);
	TEST_EQ_INT(inbound__fresh(1000 + GW_FUTURE_SKEW_S, 1000, 60), PARLEY_OK);
	TEST_EQ_INT(inbound__fresh(1001 + GW_FUTURE_SKEW_S, 1000, 60), PARLEY_E_TOO_FAR_AHEAD);

	/* a WABA message keeps its timestamp; one without is malformed */
	const char *ok = "{\"entry\":[{\"changes\":[{\"value\":{\"messages\":[{\"from\":\"16505551234\",\"id\":"
			 "\"w1\",\"timestamp\":\"1700000123\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}";
	const char *nots = "{\"entry\":[{\"changes\":[{\"value\":{\"messages\":[{\"from\":\"16505551234\",\"id\":"
			   "\"w1\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}";
	gw_inbound_list l;
	TEST_EQ_INT(waba__parse(ok, strlen(ok), 10, &l), PARLEY_OK);
	TEST_EQ_INT(l.n, 1);
	TEST_EQ_INT(l.v[0].ts, 1700000123);
	inbound__list_free(&l);
	TEST_EQ_INT(waba__parse(nots, strlen(nots), 10, &l), PARLEY_E_CHANNEL_INVALID);

	/* BYOC: the signature covers the timestamp */
	const char *body = "{\"id\":\"m1\",\"user\":\"u\",\"text\":\"hi\"}";
	char h[GW_SHA256_HEADER_LEN + 1];
	sig__sha256_ts_header((const uint8_t *)"k", 1, "1000", body, strlen(body), h);
	TEST_EQ_INT(byoc__check("k", "1000", h, body, strlen(body), 1000, 300), PARLEY_OK);
	TEST_EQ_INT(byoc__check("k", "1000", h, body, strlen(body), 1300, 300), PARLEY_OK);
	TEST_EQ_INT(byoc__check("k", "1000", h, body, strlen(body), 1301, 300), PARLEY_E_TIMEOUT);
	TEST_EQ_INT(byoc__check("k", "1000", h, body, strlen(body), 699, 300), PARLEY_E_TOO_FAR_AHEAD);
	/* a fresher timestamp on the captured signature: the MAC no longer matches */
	TEST_EQ_INT(byoc__check("k", "1200", h, body, strlen(body), 1301, 300), PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(byoc__check("j", "1000", h, body, strlen(body), 1000, 300), PARLEY_E_CHANNEL_SIGNATURE);
	TEST_EQ_INT(byoc__check("k", NULL, h, body, strlen(body), 1000, 300), PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(byoc__check("k", "10x0", h, body, strlen(body), 1000, 300), PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(byoc__check("k", "1000", NULL, body, strlen(body), 1000, 300), PARLEY_E_CHANNEL_SIGNATURE);
	sig__sha256_header((const uint8_t *)"k", 1, body, strlen(body), h); /* the body alone */
	TEST_EQ_INT(byoc__check("k", "1000", h, body, strlen(body), 1000, 300), PARLEY_E_CHANNEL_SIGNATURE);
}

/* The web chat's guards: the token bucket, sessions per address, the Origin check. */
static void test_guard(void)
{
	gw_bucket b = {0};
	for (int i = 0; i < 3; i++)
		TEST_EQ_INT(bucket__take(&b, 2, 3, 1000), 1); /* the burst */
	TEST_EQ_INT(bucket__take(&b, 2, 3, 1000), 0);
	TEST_EQ_INT(bucket__take(&b, 2, 3, 1400), 0);     /* 0.8 token */
	TEST_EQ_INT(bucket__take(&b, 2, 3, 1500), 1);     /* 1 token after 500 ms at 2/s */
	TEST_EQ_INT(bucket__take(&b, 2, 3, 1000), 0);     /* the clock went back: nothing refilled */
	TEST_EQ_INT(bucket__take(&b, 2, 3, 100000), 1);   /* refilled, but never beyond the burst */
	TEST_EQ_INT(bucket__take(&b, 2, 3, 100000), 1);
	TEST_EQ_INT(bucket__take(&b, 2, 3, 100000), 1);
	TEST_EQ_INT(bucket__take(&b, 2, 3, 100000), 0);

	gw_iplimits *t;
	TEST_EQ_INT(iplimits__new(3, &t), PARLEY_OK);
	/* 2 open at once, 4 new a minute */
	TEST_EQ_INT(iplimits__open(t, "10.0.0.1", 4, 2, 1000), PARLEY_OK);
	TEST_EQ_INT(iplimits__open(t, "10.0.0.1", 4, 2, 1000), PARLEY_OK);
	TEST_EQ_INT(iplimits__open(t, "10.0.0.1", 4, 2, 1000), PARLEY_E_TOO_MANY_CONNECTIONS);
	TEST_EQ_INT(iplimits__open(t, "10.0.0.2", 4, 2, 1000), PARLEY_OK); /* another address: its own */
	iplimits__close(t, "10.0.0.1");
	TEST_EQ_INT(iplimits__open(t, "10.0.0.1", 4, 2, 1000), PARLEY_OK);
	iplimits__close(t, "10.0.0.1");
	TEST_EQ_INT(iplimits__open(t, "10.0.0.1", 4, 2, 1000), PARLEY_OK); /* the 4th new one */
	iplimits__close(t, "10.0.0.1");
	TEST_EQ_INT(iplimits__open(t, "10.0.0.1", 4, 2, 1000), PARLEY_E_RATE_LIMITED);
	TEST_EQ_INT(iplimits__open(t, "10.0.0.1", 4, 2, 16000), PARLEY_OK); /* 15 s: one more */
	/* the table: 3 addresses; a 4th waits until one is forgettable (nothing open, bucket refilled) */
	TEST_EQ_INT(iplimits__open(t, "10.0.0.3", 4, 2, 16000), PARLEY_OK);
	TEST_EQ_INT(iplimits__open(t, "10.0.0.4", 4, 2, 16000), PARLEY_E_BUSY);
	iplimits__close(t, "10.0.0.3");
	TEST_EQ_INT(iplimits__open(t, "10.0.0.4", 4, 2, 30000), PARLEY_E_BUSY);  /* .3's bucket: not full yet */
	TEST_EQ_INT(iplimits__open(t, "10.0.0.4", 4, 2, 100000), PARLEY_OK);     /* .3 forgotten */
	iplimits__free(t);

	/* client addresses: IPv6 by /64, IPv4-mapped as IPv4; X-Forwarded-For only from a trusted proxy */
	char k[GW_IP_MAX + 1];
	TEST_EQ_INT(ip__key("192.0.2.7", k), PARLEY_OK);
	TEST_EQ_STR(k, "192.0.2.7");
	TEST_EQ_INT(ip__key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k), PARLEY_OK);
	TEST_EQ_STR(k, "2001:db8:1:2::");
	TEST_EQ_INT(ip__key("::ffff:192.0.2.7", k), PARLEY_OK);
	TEST_EQ_STR(k, "192.0.2.7");
	TEST_EQ_INT(ip__key("not-an-ip", k), PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(client__key("127.0.0.1", "198.51.100.1, 203.0.113.9", "", k), PARLEY_OK);
	TEST_EQ_STR(k, "127.0.0.1"); /* no trusted proxy: the header is the client's own words */
	TEST_EQ_INT(client__key("127.0.0.1", "198.51.100.1, 203.0.113.9", "10.0.0.1 127.0.0.1", k), PARLEY_OK);
	TEST_EQ_STR(k, "203.0.113.9"); /* the entry the proxy appended, not the first */
	TEST_EQ_INT(client__key("10.0.0.2", "203.0.113.9", "10.0.0.1,127.0.0.1", k), PARLEY_OK);
	TEST_EQ_STR(k, "10.0.0.2");
	TEST_EQ_INT(client__key("127.0.0.1", NULL, "127.0.0.1", k), PARLEY_OK);
	TEST_EQ_STR(k, "127.0.0.1");
	TEST_EQ_INT(client__key("127.0.0.1", "1.2.3.4, junk", "127.0.0.1", k), PARLEY_E_CHANNEL_INVALID);
	TEST_EQ_INT(client__key("127.0.0.1", "2001:db8::1", "127.0.0.1", k), PARLEY_OK);
	TEST_EQ_STR(k, "2001:db8::");

	/* Origin: missing (not a browser) passes; the list; public_url's origin; the Host fallback */
	TEST_EQ_INT(origin__allowed(NULL, "", "", "gw.example"), 1);
	TEST_EQ_INT(origin__allowed("https://shop.example", "https://a.example, https://shop.example", "", NULL), 1);
	TEST_EQ_INT(origin__allowed("https://SHOP.example", "https://shop.example/", "", NULL), 1);
	TEST_EQ_INT(origin__allowed("https://shop.example.evil", "https://shop.example", "", NULL), 0);
	TEST_EQ_INT(origin__allowed("https://shop.exampl", "https://shop.example", "", NULL), 0);
	TEST_EQ_INT(origin__allowed("http://shop.example", "https://shop.example", "", NULL), 0);
	TEST_EQ_INT(origin__allowed("https://gw.example", "https://shop.example", "https://gw.example", NULL), 0);
	TEST_EQ_INT(origin__allowed("https://gw.example", "", "https://gw.example", "evil.example"), 1);
	TEST_EQ_INT(origin__allowed("https://gw.example:8443", "", "https://gw.example", NULL), 0);
	TEST_EQ_INT(origin__allowed("https://evil.example", "", "https://gw.example", "evil.example"), 0);
	TEST_EQ_INT(origin__allowed("http://127.0.0.1:8780", "", "", "127.0.0.1:8780"), 1);
	TEST_EQ_INT(origin__allowed("https://127.0.0.1:8780", "", "", "127.0.0.1:8780"), 1);
	TEST_EQ_INT(origin__allowed("http://evil.example", "", "", "127.0.0.1:8780"), 0);
	TEST_EQ_INT(origin__allowed("http://127.0.0.1:8780", "", "", NULL), 0);
	TEST_EQ_INT(origin__allowed("null", "", "", "null"), 0); /* a sandboxed page's origin */
}

static void test_backoff(void)
{
	/* the delay doubles from base, is capped, and jitter keeps it within [d/2, d] */
	uint64_t prev_max = 0;
	for (unsigned a = 1; a <= 12; a++) {
		uint64_t d = 1000;
		for (unsigned i = 1; i < a; i++)
			d = d * 2 > 60000 ? 60000 : d * 2;
		uint64_t lo = outbox__backoff_ms(a, 1000, 60000, 0), hi = outbox__backoff_ms(a, 1000, 60000, UINT32_MAX);
		TEST_EQ_INT(lo, d / 2);
		TEST_EQ_INT(hi, d);
		TEST_CHECK(hi >= prev_max);
		prev_max = hi;
		uint64_t mid = outbox__backoff_ms(a, 1000, 60000, UINT32_MAX / 2);
		TEST_CHECK(mid > lo && mid < hi);
	}
	TEST_EQ_INT(outbox__backoff_ms(1, 1000, 60000, UINT32_MAX), 1000);
	TEST_EQ_INT(outbox__backoff_ms(7, 1000, 60000, UINT32_MAX), 60000);
	TEST_EQ_INT(outbox__backoff_ms(1000, 1000, 60000, UINT32_MAX), 60000); /* no overflow */

	TEST_EQ_INT(outbox__classify(1, 200), GW_SENT);
	TEST_EQ_INT(outbox__classify(1, 201), GW_SENT);
	TEST_EQ_INT(outbox__classify(0, 0), GW_RETRY);
	TEST_EQ_INT(outbox__classify(1, 500), GW_RETRY);
	TEST_EQ_INT(outbox__classify(1, 503), GW_RETRY);
	TEST_EQ_INT(outbox__classify(1, 429), GW_RETRY);
	TEST_EQ_INT(outbox__classify(1, 408), GW_RETRY);
	TEST_EQ_INT(outbox__classify(1, 400), GW_DEAD);
	TEST_EQ_INT(outbox__classify(1, 401), GW_DEAD);
	TEST_EQ_INT(outbox__classify(1, 404), GW_DEAD);
	TEST_EQ_INT(outbox__classify(1, 302), GW_DEAD);
}

static void test_e164(void)
{
	TEST_CHECK(inbound__is_e164("+15551234567"));
	TEST_CHECK(inbound__is_e164("+123"));
	TEST_CHECK(!inbound__is_e164("+1"));
	TEST_CHECK(!inbound__is_e164("+1234567890123456"));
	TEST_CHECK(!inbound__is_e164("15551234567"));
	TEST_CHECK(!inbound__is_e164("+1555a"));
	TEST_CHECK(!inbound__is_e164(NULL));
	TEST_CHECK(inbound__user_valid("abc"));
	TEST_CHECK(!inbound__user_valid(""));
	TEST_CHECK(!inbound__user_valid("a b"));
	TEST_CHECK(!inbound__user_valid("01234567890123456789012345678901234567890123456789012345678901234"));
}

int main(void)
{
	TEST_RUN(test_form);
	TEST_RUN(test_twilio_signature);
	TEST_RUN(test_twilio_parse);
	TEST_RUN(test_twilio_request);
	TEST_RUN(test_waba);
	TEST_RUN(test_sha256_and_byoc);
	TEST_RUN(test_freshness);
	TEST_RUN(test_guard);
	TEST_RUN(test_backoff);
	TEST_RUN(test_e164);
	TEST_EXIT();
}
