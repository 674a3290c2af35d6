/* parley-gateway's HTTP routes: the providers' webhooks.
 *   POST /sms/twilio   Twilio Messaging webhook (form, X-Twilio-Signature)   -> 200 empty TwiML
 *   GET  /waba         the WhatsApp-style verification handshake            -> 200 the challenge
 *   POST /waba         WhatsApp-style webhook (JSON, X-Hub-Signature-256)     -> 200
 *   POST /byoc         bring-your-own-channel webhook (X-Parley-Signature)    -> 200 {"ok":true}
 *   GET  /webchat/, /webchat/ws                                               (webchat/webchat.c)
 *   GET  /healthz                                                             -> 200 ok
 * A refused signature is 403 (PARLEY_E_CHANNEL_SIGNATURE, logged); a malformed body 400; a message is
 * answered 200 only once it is committed in SQLite (or known already: a retried webhook is not sent
 * twice); 503 when queue_max messages wait for parley (the provider retries later). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "app.h"

static void answer_error(gw_conn *c, const char *route, int err)
{
	int status = err == PARLEY_E_CHANNEL_SIGNATURE ? 403
		     : err == PARLEY_E_BUSY	       ? 503
		     : err == PARLEY_E_TOO_LARGE	       ? 413
		     : err == PARLEY_E_CHANNEL_INVALID ? 400
						       : 500;
	if (err == PARLEY_E_CHANNEL_SIGNATURE)
		log__line("%s: refused: %s", route, parley_strerror(err));
	else if (status >= 500)
		log__line("%s: %s", route, parley_strerror(err));
	http__respond(c, status, NULL, NULL, 0);
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
	for (size_t i = 0; rc == PARLEY_OK && i < l.n; i++)
		rc = accept_one(app, PARLEY_CHANNEL_WABA, &l.v[i]);
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
	int rc = sig__sha256_check((const uint8_t *)cfg->byoc_secret, strlen(cfg->byoc_secret), r->body, r->body_len,
				   r->h[GW_H_PARLEY_SIG]);
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
