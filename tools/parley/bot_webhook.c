/* `parley bot --webhook`: each event is POSTed to an HTTP(S) endpoint, signed; the response body holds
 * the actions (docs/bots.md).
 *
 * Signature: X-Parley-Timestamp is the Unix time in seconds when the attempt starts, and
 * X-Parley-Signature is "sha256=" and the hex HMAC-SHA256 under the shared secret of
 * "TIMESTAMP.BODY". Signing the time with the body lets the endpoint refuse a captured request replayed
 * later (it checks the time is recent), and a retry is signed afresh. X-Parley-Delivery is random per
 * event and the same on its retries, so an endpoint can drop a duplicate (an attempt that reached it
 * but whose answer was lost).
 *
 * One event at a time, in order, through libcurl's multi interface so that the caller keeps running the
 * parley client between waits (a blocking POST would stall its connection). TLS is verified (libcurl's
 * default, never turned off; --webhook-ca-file names the CA bundle); only http and https, no redirects
 * (a redirect would send the signed events somewhere the operator did not name). Attempts are bounded
 * in time and number; network errors, 5xx and 429 are retried with exponential backoff, anything else
 * is final (a 401 is the endpoint rejecting the signature: retrying cannot help).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "bot.h"

#define DELIVERY_ID_BYTES 16

struct bot_webhook {
	CURLM *multi;
	CURL *easy; /* reused between attempts and events: keeps the connection alive */
	struct curl_slist *headers;
	char *url, *ca_file;
	uint8_t *secret;
	size_t secret_len;
	unsigned timeout_s, attempts_max;
	/* the event being delivered */
	int busy, in_flight;
	char *body;
	size_t body_len;
	char delivery[DELIVERY_ID_BYTES * 2 + 1];
	unsigned attempt;
	uint64_t next_at_ms; /* backoff: the next attempt not before this (monotonic) */
	char *resp;
	size_t resp_len, resp_cap;
	int resp_overflow;
	long status;
	char why[256];
	char errbuf[CURL_ERROR_SIZE];
};

uint64_t bot__mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void bot__sign(const uint8_t *secret, size_t secret_len, const char *timestamp, const char *body, size_t body_len,
	       char out[BOT_SIGNATURE_LEN + 1])
{
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)timestamp, strlen(timestamp));
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)body, body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "sha256=", 7);
	sodium_bin2hex(out + 7, BOT_SIGNATURE_LEN + 1 - 7, mac, sizeof(mac));
	sodium_memzero(&st, sizeof(st));
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	bot_webhook *w = user;
	size_t len = size * n;

	if (len > BOT_WEBHOOK_RESPONSE_MAX - w->resp_len) {
		w->resp_overflow = 1;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (w->resp_len + len + 1 > w->resp_cap) {
		size_t cap = w->resp_cap ? w->resp_cap : 4096;
		char *p;
		while (cap < w->resp_len + len + 1)
			cap *= 2;
		p = realloc(w->resp, cap);
		if (p == NULL)
			return 0;
		w->resp = p;
		w->resp_cap = cap;
	}
	memcpy(w->resp + w->resp_len, data, len);
	w->resp_len += len;
	w->resp[w->resp_len] = '\0';
	return len;
}

int bot__webhook_new(const bot_webhook_options *o, bot_webhook **out, char *err, size_t errlen)
{
	bot_webhook *w;

	*out = NULL;
	if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
		snprintf(err, errlen, "the webhook URL must start with http:// or https://");
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl did not initialise");
		return -1;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto nomem;
	w->url = strdup(o->url);
	w->ca_file = o->ca_file != NULL ? strdup(o->ca_file) : NULL;
	w->secret = malloc(o->secret_len > 0 ? o->secret_len : 1);
	w->multi = curl_multi_init();
	w->easy = curl_easy_init();
	if (w->url == NULL || (o->ca_file != NULL && w->ca_file == NULL) || w->secret == NULL || w->multi == NULL ||
	    w->easy == NULL)
		goto nomem;
	memcpy(w->secret, o->secret, o->secret_len);
	w->secret_len = o->secret_len;
	w->timeout_s = o->timeout_s ? o->timeout_s : BOT_WEBHOOK_TIMEOUT_S;
	w->attempts_max = o->attempts ? o->attempts : BOT_WEBHOOK_ATTEMPTS;
	*out = w;
	return 0;
nomem:
	bot__webhook_free(w);
	snprintf(err, errlen, "out of memory");
	return -1;
}

void bot__webhook_free(bot_webhook *w)
{
	if (w == NULL)
		return;
	if (w->in_flight)
		curl_multi_remove_handle(w->multi, w->easy);
	curl_easy_cleanup(w->easy);
	curl_multi_cleanup(w->multi);
	curl_slist_free_all(w->headers);
	if (w->secret != NULL)
		sodium_memzero(w->secret, w->secret_len);
	free(w->secret);
	free(w->url);
	free(w->ca_file);
	free(w->body);
	free(w->resp);
	free(w);
	curl_global_cleanup();
}

int bot__webhook_busy(const bot_webhook *w)
{
	return w->busy;
}

int bot__webhook_post(bot_webhook *w, const char *body, size_t len)
{
	uint8_t id[DELIVERY_ID_BYTES];

	if (w->busy)
		return -1;
	w->body = malloc(len > 0 ? len : 1);
	if (w->body == NULL)
		return -1;
	memcpy(w->body, body, len);
	w->body_len = len;
	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(w->delivery, sizeof(w->delivery), id, sizeof(id));
	w->attempt = 0;
	w->next_at_ms = 0;
	w->busy = 1;
	return 0;
}

/* Headers of one attempt: a fresh timestamp and its signature. */
static int set_headers(bot_webhook *w)
{
	char ts[32], sig[BOT_SIGNATURE_LEN + 1], line[160];
	struct curl_slist *h = NULL, *n;

	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	bot__sign(w->secret, w->secret_len, ts, w->body, w->body_len, sig);
	curl_slist_free_all(w->headers);
	w->headers = NULL;
#define ADD(...)                                                                                   \
	do {                                                                                       \
		snprintf(line, sizeof(line), __VA_ARGS__);                                         \
		n = curl_slist_append(h, line);                                                    \
		if (n == NULL)                                                                     \
			goto fail;                                                                 \
		h = n;                                                                             \
	} while (0)
	ADD("Content-Type: application/json");
	ADD("X-Parley-Timestamp: %s", ts);
	ADD("X-Parley-Signature: %s", sig);
	ADD("X-Parley-Delivery: %s", w->delivery);
	/* no "Expect: 100-continue" round trip for the larger events */
	ADD("Expect:");
#undef ADD
	w->headers = h;
	return 0;
fail:
	curl_slist_free_all(h);
	return -1;
}

static int start_attempt(bot_webhook *w)
{
	CURL *e = w->easy;

	w->attempt++;
	w->resp_len = 0;
	w->resp_overflow = 0;
	w->status = 0;
	w->errbuf[0] = '\0';
	if (set_headers(w) != 0) {
		snprintf(w->why, sizeof(w->why), "out of memory");
		return -1;
	}
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, w->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, w->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->body_len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)w->timeout_s);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)(w->timeout_s < 5 ? w->timeout_s : 5));
	curl_easy_setopt(e, CURLOPT_USERAGENT, "parley-bot/" PARLEY_VERSION_STRING);
	if (w->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, w->ca_file);
	if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
		snprintf(w->why, sizeof(w->why), "libcurl refused the transfer");
		return -1;
	}
	w->in_flight = 1;
	return 0;
}

/* What is worth another attempt: the network, a server error, "too many requests". Not: a refusal,
 * a TLS certificate that does not verify, a bad URL. */
static int retryable(CURLcode rc, long status)
{
	if (rc == CURLE_OK)
		return status >= 500 || status == 429;
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* The first line of a refusal's body, printable ASCII only, for the reason. */
static void describe_refusal(bot_webhook *w)
{
	char first[100];
	size_t i, n = 0;

	for (i = 0; w->resp != NULL && i < w->resp_len && n < sizeof(first) - 1 && w->resp[i] != '\n'; i++)
		first[n++] = w->resp[i] >= 0x20 && w->resp[i] < 0x7F ? w->resp[i] : '?';
	first[n] = '\0';
	snprintf(w->why, sizeof(w->why), "HTTP %ld%s%s", w->status, n > 0 ? ": " : "", first);
}

static void finish(bot_webhook *w, int ok, bot_webhook_done_fn done, void *user)
{
	bot_webhook_result r;
	char *resp = w->resp;

	memset(&r, 0, sizeof(r));
	r.ok = ok;
	r.http_status = w->status;
	r.attempts = w->attempt;
	r.response = ok && resp != NULL ? resp : "";
	r.response_len = ok ? w->resp_len : 0;
	r.why = ok ? "" : w->why;
	/* done may post the next event at once: hand it a state that allows that */
	w->resp = NULL;
	w->resp_len = w->resp_cap = 0;
	free(w->body);
	w->body = NULL;
	w->busy = 0;
	done(user, &r);
	free(resp);
}

static void completed(bot_webhook *w, CURLcode rc, bot_webhook_done_fn done, void *user)
{
	curl_multi_remove_handle(w->multi, w->easy);
	w->in_flight = 0;
	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
	if (rc == CURLE_OK && w->status >= 200 && w->status < 300) {
		finish(w, 1, done, user);
		return;
	}
	if (rc == CURLE_OK)
		describe_refusal(w);
	else if (w->resp_overflow)
		snprintf(w->why, sizeof(w->why), "response longer than %d bytes", BOT_WEBHOOK_RESPONSE_MAX);
	else
		snprintf(w->why, sizeof(w->why), "%s", w->errbuf[0] ? w->errbuf : curl_easy_strerror(rc));
	if (retryable(rc, w->status) && w->attempt < w->attempts_max) {
		uint64_t delay = (uint64_t)BOT_WEBHOOK_BACKOFF_MS << (w->attempt - 1 < 16 ? w->attempt - 1 : 16);
		if (delay > BOT_WEBHOOK_BACKOFF_MAX_MS)
			delay = BOT_WEBHOOK_BACKOFF_MAX_MS;
		w->next_at_ms = bot__mono_ms() + delay;
		return;
	}
	finish(w, 0, done, user);
}

void bot__webhook_pump(bot_webhook *w, unsigned wait_ms, bot_webhook_done_fn done, void *user)
{
	CURLMsg *m;
	int running = 0, left;

	if (!w->busy)
		return;
	if (!w->in_flight) {
		uint64_t now = bot__mono_ms();
		if (now < w->next_at_ms) {
			uint64_t rest = w->next_at_ms - now;
			(void)poll(NULL, 0, (int)(rest < wait_ms ? rest : wait_ms));
			if (bot__mono_ms() < w->next_at_ms)
				return;
		}
		if (start_attempt(w) != 0) {
			finish(w, 0, done, user);
			return;
		}
	}
	curl_multi_perform(w->multi, &running);
	if (running > 0) {
		curl_multi_poll(w->multi, NULL, 0, (int)wait_ms, NULL);
		curl_multi_perform(w->multi, &running);
	}
	while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
		if (m->msg == CURLMSG_DONE && m->easy_handle == w->easy) {
			completed(w, m->data.result, done, user);
			return;
		}
	}
}
