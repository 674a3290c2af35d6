/* The outbound worker (sender.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "sender.h"
#include "store.h"

struct gw_sender {
	const gw_config *cfg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, kicked, started;
	gw_store *store;
	CURL *curl;
};

static size_t discard(char *data, size_t size, size_t n, void *user)
{
	(void)data;
	(void)user;
	return size * n; /* the provider's answer body is not needed: its status says it all */
}

int sender__attempt(const gw_config *cfg, void *curl, const gw_out *o, long *status, char *why, size_t why_len)
{
	gw_request r;
	struct curl_slist *h = NULL;
	char auth[GW_SECRET_MAX + 32], ct[96];
	int rc;

	*status = 0;
	request__init(&r, PARLEY_MESSAGE_MAX * 4 + 4096);
	switch (o->channel) {
	case PARLEY_CHANNEL_SMS:
		rc = config__sms_enabled(cfg) ? twilio__request(cfg, o, &r) : PARLEY_E_CONFIG;
		break;
	case PARLEY_CHANNEL_WABA:
		rc = config__waba_enabled(cfg) ? waba__request(cfg, o, &r) : PARLEY_E_CONFIG;
		break;
	case PARLEY_CHANNEL_BYOC:
		rc = config__byoc_enabled(cfg) ? byoc__request(cfg, o, &r) : PARLEY_E_CONFIG;
		break;
	default:
		rc = PARLEY_E_CHANNEL_INVALID;
	}
	if (rc != PARLEY_OK) {
		snprintf(why, why_len, "cannot build the request: %s", parley_strerror(rc));
		request__free(&r);
		return rc;
	}
	CURL *c = curl;
	curl_easy_reset(c);
	snprintf(ct, sizeof(ct), "Content-Type: %s", r.content_type);
	h = curl_slist_append(h, ct);
	if (r.bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r.bearer);
		h = curl_slist_append(h, auth);
		sodium_memzero(auth, sizeof(auth));
	}
	if (r.sig_header[0])
		h = curl_slist_append(h, r.sig_header);
	if (r.ts_header[0])
		h = curl_slist_append(h, r.ts_header);
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	curl_easy_setopt(c, CURLOPT_URL, r.url);
	/* only http(s), no redirects: a redirect would carry the message somewhere the operator did not name */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)cfg->http_timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)cfg->http_timeout_s);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.body.data ? r.body.data : "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)r.body.len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	if (r.basic_user[0]) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, r.basic_user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, r.basic_pass);
	}
	CURLcode cc = curl_easy_perform(c);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		snprintf(why, why_len, "HTTP %ld", *status);
	} else {
		snprintf(why, why_len, "%s", curl_easy_strerror(cc));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	request__free(&r);
	return cc == CURLE_OK ? PARLEY_OK : PARLEY_E_CHANNEL_PROVIDER;
}

static void deliver(gw_sender *s, gw_out *o)
{
	const gw_config *cfg = s->cfg;
	char why[256];
	long status = 0;
	int rc = sender__attempt(cfg, s->curl, o, &status, why, sizeof(why));
	int outcome;
	uint64_t next = 0;
	if (rc == PARLEY_OK)
		outcome = outbox__classify(1, status);
	else if (rc == PARLEY_E_CHANNEL_PROVIDER)
		outcome = GW_RETRY;
	else
		outcome = GW_DEAD; /* cannot even be built (channel not configured): retrying will not help */
	if (outcome == GW_RETRY && o->attempts + 1 >= cfg->retry_max) {
		outcome = GW_DEAD;
		log__line("outbox %lld (%s): dead-lettered after %u attempts, last: %s", (long long)o->id,
			  parley_channel_name(o->channel), o->attempts + 1, why);
	} else if (outcome == GW_RETRY) {
		next = store__now_ms() +
		       outbox__backoff_ms(o->attempts + 1, cfg->retry_base_ms, cfg->retry_cap_ms, randombytes_random());
		log__line("outbox %lld (%s): attempt %u failed (%s), retried later", (long long)o->id,
			  parley_channel_name(o->channel), o->attempts + 1, why);
	} else if (outcome == GW_DEAD) {
		log__line("outbox %lld (%s): dead-lettered: the provider refused it (%s)", (long long)o->id,
			  parley_channel_name(o->channel), why);
	}
	if (store__outbox_result(s->store, o->id, outcome, next, why) != PARLEY_OK)
		log__line("outbox %lld: cannot record the outcome", (long long)o->id);
}

static void *run(void *arg)
{
	gw_sender *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		s->kicked = 0;
		pthread_mutex_unlock(&s->mu);
		gw_out o;
		uint64_t now = store__now_ms();
		int rc = store__outbox_due(s->store, now, 0, &o);
		if (rc == PARLEY_OK) {
			deliver(s, &o);
			out__free(&o);
			pthread_mutex_lock(&s->mu);
			continue;
		}
		uint64_t next = store__outbox_next_ms(s->store);
		pthread_mutex_lock(&s->mu);
		if (s->stop || s->kicked)
			continue;
		/* sleep until the next entry is due (at most a minute: a row another process added is seen) */
		uint64_t wait = next == UINT64_MAX ? 60000 : next > now ? next - now : 0;
		if (wait > 60000)
			wait = 60000;
		if (rc != PARLEY_E_NOT_FOUND && wait < 1000)
			wait = 1000; /* a store error: do not spin */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (wait % 1000) * 1000000u;
		ts.tv_sec += (time_t)(wait / 1000 + ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		if (wait)
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int sender__start(const gw_config *cfg, gw_sender **out)
{
	gw_sender *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return PARLEY_E_NOMEM;
	s->cfg = cfg;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	int rc = store__open(cfg->db, &s->store);
	if (rc == PARLEY_OK && !(s->curl = curl_easy_init()))
		rc = PARLEY_E_NOMEM;
	if (rc == PARLEY_OK && pthread_create(&s->thread, NULL, run, s) != 0)
		rc = PARLEY_E_INTERNAL;
	if (rc != PARLEY_OK) {
		sender__stop(s);
		return rc;
	}
	s->started = 1;
	*out = s;
	return PARLEY_OK;
}

void sender__wake(gw_sender *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->kicked = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void sender__stop(gw_sender *s)
{
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	if (s->curl)
		curl_easy_cleanup(s->curl);
	store__close(s->store);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}
