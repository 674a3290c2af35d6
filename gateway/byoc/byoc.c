/* Bring your own channel: a JSON webhook {"id", "user", "text"} with X-Parley-Timestamp (unix seconds)
 * and X-Parley-Signature ("sha256=" + hex HMAC-SHA256(secret, timestamp "." raw body)), checked by
 * byoc__check: the signature covers the timestamp, so a captured call is refused once it is older than
 * the window (byoc.window_s), and within the window the message id's dedupe refuses it. Outbound events
 * are POSTed to the configured URL signed the same way, with our timestamp:
 *   {"type":"message","user":U,"text":T}
 *   {"type":"auth","user":U,"component":NAME,"url":URL,"otp":CODE}   (url or otp empty when unused)
 * The same events go to a web chat client (webchat/webchat.c), without "user". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "gw.h"

int byoc__parse(const char *body, size_t len, gw_inbound *out)
{
	json_error_t e;
	int rc = PARLEY_E_CHANNEL_INVALID;
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	const char *id = json_string_value(json_object_get(root, "id"));
	const char *user = json_string_value(json_object_get(root, "user"));
	json_t *jt = json_object_get(root, "text");
	const char *text = json_string_value(jt);
	size_t n = json_string_length(jt);
	if (!id || !*id || strlen(id) > GW_MSGID_MAX || !inbound__user_valid(id) || !inbound__user_valid(user) ||
	    !text || n == 0 || strlen(text) != n /* an embedded \u0000 */)
		goto done;
	rc = PARLEY_E_TOO_LARGE;
	if (n > PARLEY_MESSAGE_MAX)
		goto done;
	rc = PARLEY_E_NOMEM;
	out->text = malloc(n + 1);
	if (!out->text)
		goto done;
	memcpy(out->text, text, n + 1);
	out->text_len = n;
	memcpy(out->id, id, strlen(id) + 1);
	memcpy(out->user, user, strlen(user) + 1);
	rc = PARLEY_OK;
done:
	json_decref(root);
	return rc;
}

int byoc__check(const char *secret, const char *ts, const char *sig, const void *body, size_t len, int64_t now,
		unsigned window_s)
{
	int64_t t = inbound__parse_ts(ts);
	if (t < 0)
		return PARLEY_E_CHANNEL_INVALID;
	int rc = sig__sha256_ts_check((const uint8_t *)secret, strlen(secret), ts, body, len, sig);
	if (rc != PARLEY_OK)
		return rc;
	/* checked after the signature: a refusal for time then means a genuine call that is old (a replay,
	 * or a sender's clock that is wrong), which is what the operator needs to tell apart from a forgery */
	if (t > now + (int64_t)window_s)
		return PARLEY_E_TOO_FAR_AHEAD;
	if (t < now - (int64_t)window_s)
		return PARLEY_E_TIMEOUT;
	return PARLEY_OK;
}

static int event_json(const gw_out *o, int with_user, gw_buf *out)
{
	json_t *ev;
	if (o->kind == GW_OUT_AUTH)
		ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "auth", "component", o->text ? o->text : "",
			       "entity", o->entity ? o->entity : "", "url", o->url ? o->url : "", "otp",
			       o->otp ? o->otp : "");
	else
		ev = json_pack("{s:s, s:s}", "type", "message", "text", o->text ? o->text : "");
	if (!ev)
		return PARLEY_E_NOMEM;
	if (with_user && json_object_set_new(ev, "user", json_string(o->user)) != 0) {
		json_decref(ev);
		return PARLEY_E_NOMEM;
	}
	char *s = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(ev);
	if (!s)
		return PARLEY_E_NOMEM;
	int rc = gwbuf__puts(out, s);
	free(s);
	return rc;
}

int byoc__event_json(const gw_out *o, gw_buf *out)
{
	return event_json(o, 0, out);
}

int byoc__request(const gw_config *cfg, const gw_out *o, gw_request *r)
{
	char sig[GW_SHA256_HEADER_LEN + 1];
	if (snprintf(r->url, sizeof(r->url), "%s", cfg->byoc_url) >= (int)sizeof(r->url))
		return PARLEY_E_CONFIG;
	int rc = event_json(o, 1, &r->body);
	if (rc != PARLEY_OK)
		return rc;
	char ts[24];
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL)); /* at each attempt: a retry is fresh */
	sig__sha256_ts_header((const uint8_t *)cfg->byoc_secret, strlen(cfg->byoc_secret), ts, r->body.data,
			      r->body.len, sig);
	snprintf(r->sig_header, sizeof(r->sig_header), "X-Parley-Signature: %s", sig);
	snprintf(r->ts_header, sizeof(r->ts_header), "X-Parley-Timestamp: %s", ts);
	r->content_type = "application/json";
	return PARLEY_OK;
}
