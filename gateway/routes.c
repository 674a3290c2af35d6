/* parley-gateway's HTTP routes: the providers' webhooks.
 *   POST /sms/twilio   Twilio Messaging webhook (form, X-Twilio-Signature)   -> 200 empty TwiML
 *   GET  /waba         the WhatsApp-style verification handshake            -> 200 the challenge
 *   POST /waba         WhatsApp-style webhook (JSON, X-Hub-Signature-256)     -> 200
 *   POST /byoc         bring-your-own-channel webhook (X-Parley-Timestamp,
 *                      X-Parley-Signature over timestamp "." body)            -> 200 {"ok":true}
 *   GET  /webchat/, /webchat/ws                                               (webchat/webchat.c)
 *   GET  /healthz                                                             -> 200 ok
 * A refused signature is 403 (PARLEY_E_CHANNEL_SIGNATURE, logged); a malformed body 400; a message is
 * answered 200 only once it is committed in SQLite (or known already: a retried webhook is not sent
 * twice); 503 when queue_max messages wait for parley (the provider retries later).
 * Replays older than the dedupe window: a WABA message older than webhook_max_age_s is dropped (logged,
 * answered 200), a BYOC call whose signed timestamp is outside byoc.window_s is 401. Twilio signs no
 * timestamp: its MessageSid dedupe (dedupe_days) is the protection (docs/channels.md "Replays"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include "app.h"

/* A 401 must name how to authenticate (RFC 9110 §15.5.2): our own scheme, the signed timestamp. Only
 * BYOC answers 401 (a stale or missing X-Parley-Timestamp). */
#define BYOC_CHALLENGE "WWW-Authenticate: Parley-HMAC-SHA256 headers=\"X-Parley-Timestamp X-Parley-Signature\""

/* The refusal's status and a one-line text/plain body saying why (for the operator reading the
 * provider's delivery log: never a secret, never the message). */
static void answer_error(gw_conn *c, const char *route, int err)
{
	int status = err == PARLEY_E_CHANNEL_SIGNATURE			 ? 403
		     : err == PARLEY_E_TIMEOUT || err == PARLEY_E_TOO_FAR_AHEAD ? 401
		     : err == PARLEY_E_BUSY					 ? 503
		     : err == PARLEY_E_TOO_LARGE					 ? 413
		     : err == PARLEY_E_CHANNEL_INVALID				 ? 400
											 : 500;
	const char *why = err == PARLEY_E_TIMEOUT	   ? "timestamp too old: outside the freshness window"
			  : err == PARLEY_E_TOO_FAR_AHEAD ? "timestamp in the future: outside the freshness window"
							   : parley_strerror(err);
	if (status == 403 || status == 401)
		log__line("%s: refused: %s", route, why);
	else if (status >= 500)
		log__line("%s: %s", route, why);
	http__respond_hdr(c, status, status == 401 ? BYOC_CHALLENGE : NULL, "text/plain", why, strlen(why));
}

/* Stores one message: OK for a new one and for a known one (idempotency). */
static int accept_one(gw_app *app, int channel, const gw_inbound *in)
{
	int rc = store__inbound_add(app->store, channel, in, app->cfg->queue_max);
	return rc == PARLEY_E_EXISTS ? PARLEY_OK : rc;
}

static int content_type_is(const gw_http_req *r, const char *want)
{
	const char *ct = r->h[GW_H_CONTENT_TYPE];
	size_t n = strlen(want);
	return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void twilio_route(gw_app *app, gw_conn *c, const gw_http_req *r)
{
	const gw_config *cfg = app->cfg;
	gw_form f;
	gw_inbound in;
	char url[GW_CFG_STR + 2048 + 1];
	if (!content_type_is(r, "application/x-www-form-urlencoded")) {
		http__respond(c, 415, NULL, NULL, 0);
		return;
	}
	int rc = form__parse(r->body, r->body_len, &f);
	if (rc != PARLEY_OK) {
		answer_error(c, "sms", rc);
		return;
	}
	/* the URL Twilio called: our public base and the request target as sent */
	snprintf(url, sizeof(url), "%s%s", cfg->public_url, r->target);
	rc = twilio__check(cfg->twilio_auth_token, url, &f, r->h[GW_H_TWILIO_SIG]);
	if (rc == PARLEY_OK)
		rc = twilio__parse(&f, cfg->twilio_account_sid, &in);
	form__free(&f);
	if (rc == PARLEY_OK) {
		rc = accept_one(app, PARLEY_CHANNEL_SMS, &in);
		free(in.text);
	}
	if (rc != PARLEY_OK) {
		answer_error(c, "sms", rc);
		return;
	}
	http__respond(c, 200, "text/xml", TWILIO_EMPTY_TWIML, strlen(TWILIO_EMPTY_TWIML));
}

static void waba_route(gw_app *app, gw_conn *c, const gw_http_req *r)
{
	const gw_config *cfg = app->cfg;
	if (r->method == HTTP_GET) {
		char challenge[300];
		int rc = waba__verify(r->query, cfg->waba_verify_token, challenge, sizeof(challenge));
		if (rc != PARLEY_OK) {
			answer_error(c, "waba verify", rc);
			return;
		}
		http__respond(c, 200, "text/plain", challenge, strlen(challenge));
		return;
	}
	gw_inbound_list l = {0};
	int rc = sig__sha256_check((const uint8_t *)cfg->waba_app_secret, strlen(cfg->waba_app_secret), r->body,
				   r->body_len, r->h[GW_H_HUB_SIG]);
	if (rc == PARLEY_OK)
		rc = waba__parse(r->body, r->body_len, 100, &l);
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; rc == PARLEY_OK && i < l.n; i++) {
		/* A genuine but stale message (a replay past the dedupe window, or a delivery Meta kept retrying
		 * for longer than webhook_max_age_s) is dropped, and the webhook still answered 200: an error
		 * would only make Meta retry the same message, staler each time, for days, and a webhook that
		 * keeps failing gets flagged and eventually disabled by Meta, losing the fresh messages too. */
		int fresh = inbound__fresh(l.v[i].ts, now, cfg->webhook_max_age_s);
		if (fresh != PARLEY_OK) {
			log__line("waba: message %s dropped: %s (timestamp %lld, now %lld, webhook_max_age_s %u)",
				  l.v[i].id, fresh == PARLEY_E_TIMEOUT ? "too old" : "from the future",
				  (long long)l.v[i].ts, (long long)now, cfg->webhook_max_age_s);
			continue;
		}
		rc = accept_one(app, PARLEY_CHANNEL_WABA, &l.v[i]);
	}
	inbound__list_free(&l);
	if (rc != PARLEY_OK) {
		answer_error(c, "waba", rc);
		return;
	}
	http__respond(c, 200, "text/plain", "ok", 2);
}

static void byoc_route(gw_app *app, gw_conn *c, const gw_http_req *r)
{
	const gw_config *cfg = app->cfg;
	gw_inbound in;
	int rc = byoc__check(cfg->byoc_secret, r->h[GW_H_PARLEY_TS], r->h[GW_H_PARLEY_SIG], r->body, r->body_len,
			     (int64_t)time(NULL), cfg->byoc_window_s);
	if (rc == PARLEY_E_CHANNEL_INVALID) { /* no timestamp: not a malformed message, an unauthenticated call */
		static const char why[] = "X-Parley-Timestamp missing or malformed (unix seconds, signed)";
		log__line("byoc: refused: %s", why);
		http__respond_hdr(c, 401, BYOC_CHALLENGE, "text/plain", why, sizeof(why) - 1);
		return;
	}
	if (rc == PARLEY_OK)
		rc = byoc__parse(r->body, r->body_len, &in);
	if (rc == PARLEY_OK) {
		rc = accept_one(app, PARLEY_CHANNEL_BYOC, &in);
		free(in.text);
	}
	if (rc != PARLEY_OK) {
		answer_error(c, "byoc", rc);
		return;
	}
	http__respond(c, 200, "application/json", "{\"ok\":true}", 11);
}

void routes__handle(void *ctx, gw_conn *c, const gw_http_req *r)
{
	gw_app *app = ctx;
	const gw_config *cfg = app->cfg;
	int post = r->method == HTTP_POST, get = r->method == HTTP_GET;

	if (strcmp(r->path, "/healthz") == 0 && get)
		http__respond(c, 200, "text/plain", "ok", 2);
	else if (strcmp(r->path, "/sms/twilio") == 0 && config__sms_enabled(cfg))
		post ? twilio_route(app, c, r) : http__respond(c, 405, NULL, NULL, 0);
	else if (strcmp(r->path, "/waba") == 0 && config__waba_enabled(cfg))
		post || get ? waba_route(app, c, r) : http__respond(c, 405, NULL, NULL, 0);
	else if (strcmp(r->path, "/byoc") == 0 && config__byoc_enabled(cfg))
		post ? byoc_route(app, c, r) : http__respond(c, 405, NULL, NULL, 0);
	else if (strncmp(r->path, "/webchat/", 9) == 0 && app->webchat)
		get ? webchat__handle(app->webchat, c, r) : http__respond(c, 405, NULL, NULL, 0);
	else
		http__respond(c, 404, NULL, NULL, 0);
}
