/* WhatsApp Cloud API style: the GET verification handshake, the signed JSON webhook
 * (X-Hub-Signature-256 over the raw body, checked by the caller with sig__sha256_check before this
 * parser sees it) and the outbound messages call: text; a sign-in link (an oidc / oauth2 prompt) as an
 * interactive call-to-action URL button message ("cta_url": the customer taps "Sign in" rather than a
 * long opaque URL in the text, which WhatsApp users are rightly wary of); a one-time code as an
 * authentication template carrying the code in its body and its copy-code URL button, as the provider
 * requires for OTP templates.
 *
 * WhatsApp numbers come without '+' ("16505551234"); channel_user is E.164, so '+' is added inbound and
 * dropped outbound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gw.h"

#define WABA_CHALLENGE_MAX 256

int waba__verify(const char *query, const char *verify_token, char *out, size_t out_len)
{
	gw_form f;
	int rc;
	if (!query)
		return PARLEY_E_CHANNEL_INVALID;
	rc = form__parse(query, strlen(query), &f);
	if (rc != PARLEY_OK)
		return rc;
	const char *mode = form__get(&f, "hub.mode"), *tok = form__get(&f, "hub.verify_token");
	const char *ch = form__get(&f, "hub.challenge");
	rc = PARLEY_E_CHANNEL_INVALID;
	if (!mode || strcmp(mode, "subscribe") != 0 || !ch || !*ch || strlen(ch) > WABA_CHALLENGE_MAX ||
	    strlen(ch) >= out_len)
		goto done;
	for (const char *p = ch; *p; p++) /* echoed into our response body: printable ASCII only */
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			goto done;
	rc = PARLEY_E_CHANNEL_SIGNATURE;
	if (!tok || !*verify_token || !sig__streq(tok, verify_token))
		goto done;
	memcpy(out, ch, strlen(ch) + 1);
	rc = PARLEY_OK;
done:
	form__free(&f);
	return rc;
}

/* "16505551234" -> "+16505551234"; PARLEY_E_CHANNEL_INVALID when that is not E.164. */
static int user_from_wa(const char *wa, char out[PARLEY_CHANNEL_USER_MAX + 1])
{
	size_t n = strlen(wa);
	if (n + 2 > PARLEY_CHANNEL_USER_MAX + 1)
		return PARLEY_E_CHANNEL_INVALID;
	out[0] = '+';
	memcpy(out + 1, wa, n + 1);
	return inbound__is_e164(out) ? PARLEY_OK : PARLEY_E_CHANNEL_INVALID;
}

static int add_message(json_t *m, size_t max, gw_inbound_list *out)
{
	const char *id = json_string_value(json_object_get(m, "id"));
	const char *from = json_string_value(json_object_get(m, "from"));
	const char *type = json_string_value(json_object_get(m, "type"));
	int64_t ts = inbound__parse_ts(json_string_value(json_object_get(m, "timestamp")));
	const char *text = json_string_value(json_object_get(json_object_get(m, "text"), "body"));
	char placeholder[80];
	gw_inbound in;

	memset(&in, 0, sizeof(in));
	if (!id || !*id || strlen(id) > GW_MSGID_MAX || !from || !type || ts <= 0)
		return PARLEY_E_CHANNEL_INVALID;
	if (user_from_wa(from, in.user) != PARLEY_OK)
		return PARLEY_E_CHANNEL_INVALID;
	if (strcmp(type, "text") != 0 || !text) {
		/* an image, a location...: staff see that something came rather than nothing */
		snprintf(placeholder, sizeof(placeholder), "[%.64s]", type);
		text = placeholder;
	}
	size_t n = strlen(text);
	if (n == 0)
		return PARLEY_E_CHANNEL_INVALID;
	if (n > PARLEY_MESSAGE_MAX)
		return PARLEY_E_TOO_LARGE;
	if (out->n == max)
		return PARLEY_E_TOO_LARGE;
	memcpy(in.id, id, strlen(id) + 1);
	in.ts = ts;
	in.text = malloc(n + 1);
	if (!in.text)
		return PARLEY_E_NOMEM;
	memcpy(in.text, text, n + 1);
	in.text_len = n;
	gw_inbound *v = realloc(out->v, (out->n + 1) * sizeof(*v));
	if (!v) {
		free(in.text);
		return PARLEY_E_NOMEM;
	}
	out->v = v;
	out->v[out->n++] = in;
	return PARLEY_OK;
}

int waba__parse(const char *body, size_t len, size_t max, gw_inbound_list *out)
{
	json_error_t e;
	size_t i, j, k;
	json_t *entry, *change, *m;
	int rc = PARLEY_OK;

	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return PARLEY_E_CHANNEL_INVALID;
	}
	json_t *entries = json_object_get(root, "entry");
	if (!json_is_array(entries)) {
		rc = PARLEY_E_CHANNEL_INVALID;
		goto done;
	}
	json_array_foreach(entries, i, entry) {
		json_array_foreach(json_object_get(entry, "changes"), j, change) {
			json_t *msgs = json_object_get(json_object_get(change, "value"), "messages");
			json_array_foreach(msgs, k, m) {
				rc = add_message(m, max, out);
				if (rc != PARLEY_OK)
					goto done;
			}
		}
	}
done:
	json_decref(root);
	if (rc != PARLEY_OK)
		inbound__list_free(out);
	return rc;
}

/* The provider's bounds of a cta_url message: body.text 1024 characters, the button's label 20. */
#define WABA_CTA_BODY_MAX 1024
#define WABA_CTA_LABEL "Sign in"

/* The interactive CTA URL message of a sign-in prompt. The body names the business and the component
 * (bounded well under the provider's 1024: the entity's display name and the component's name are at
 * most a few hundred bytes, and %.*s caps them anyway); the URL goes only in the button. */
static json_t *cta_message(const char *to, const gw_out *o)
{
	char body[WABA_CTA_BODY_MAX];
	const char *who = o->entity && *o->entity ? o->entity : "We";
	snprintf(body, sizeof(body), "%.400s asks you to sign in (%.200s). Tap the button to continue.", who,
		 o->text ? o->text : "");
	return json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}, s:{s:s, s:{s:s, s:s}}}}", "messaging_product",
			 "whatsapp", "recipient_type", "individual", "to", to, "type", "interactive", "interactive",
			 "type", "cta_url", "body", "text", body, "action", "name", "cta_url", "parameters",
			 "display_text", WABA_CTA_LABEL, "url", o->url);
}

static json_t *param_text(const char *s)
{
	return json_pack("{s:s, s:s}", "type", "text", "text", s);
}

int waba__request(const gw_config *cfg, const gw_out *o, gw_request *r)
{
	json_t *msg;
	const char *to = o->user[0] == '+' ? o->user + 1 : o->user;
	int n = snprintf(r->url, sizeof(r->url), "%s/v17.0/%s/messages", cfg->waba_api_base, cfg->waba_phone_number_id);
	if (n < 0 || (size_t)n >= sizeof(r->url))
		return PARLEY_E_CONFIG;
	if (o->kind == GW_OUT_AUTH && o->otp && *o->otp && cfg->waba_otp_template[0]) {
		/* authentication template: the code in the body, and again as the copy-code button's parameter */
		msg = json_pack("{s:s, s:s, s:s, s:{s:s, s:{s:s}, s:[{s:s, s:[o]}, {s:s, s:s, s:s, s:[o]}]}}",
				"messaging_product", "whatsapp", "to", to, "type", "template", "template", "name",
				cfg->waba_otp_template, "language", "code", cfg->waba_template_lang, "components",
				"type", "body", "parameters", param_text(o->otp), "type", "button", "sub_type", "url",
				"index", "0", "parameters", param_text(o->otp));
	} else if (o->kind == GW_OUT_AUTH && o->url && *o->url) {
		msg = cta_message(to, o);
	} else {
		gw_buf text;
		gwbuf__init(&text, PARLEY_MESSAGE_MAX + 1024);
		int rc = o->kind == GW_OUT_AUTH ? twilio__prompt_text(o, &text)
						: gwbuf__puts(&text, o->text ? o->text : "");
		if (rc != PARLEY_OK) {
			gwbuf__free(&text);
			return rc;
		}
		msg = json_pack("{s:s, s:s, s:s, s:s, s:{s:b, s:s}}", "messaging_product", "whatsapp",
				"recipient_type", "individual", "to", to, "type", "text", "text", "preview_url",
				0 /* a code, or a staff message: no link card */, "body", text.data ? text.data : "");
		gwbuf__free(&text);
	}
	if (!msg)
		return PARLEY_E_NOMEM;
	char *s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!s)
		return PARLEY_E_NOMEM;
	int rc = gwbuf__puts(&r->body, s);
	free(s);
	r->content_type = "application/json";
	r->bearer = cfg->waba_token;
	return rc;
}
