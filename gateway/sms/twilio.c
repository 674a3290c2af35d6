/* SMS through Twilio: the inbound webhook (form POST signed with X-Twilio-Signature) and the outbound
 * Messages resource (form POST with HTTP basic auth).
 *
 * Signature (Twilio "Validating requests"): base64(HMAC-SHA1(auth token, URL || for each POST parameter
 * sorted by name: name || value)), the URL being exactly the one Twilio called (public_url + the request
 * target, query included). Parameters with the same name are ordered by value too, as Twilio's own
 * helper libraries do, so the order the form came in cannot change the result. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "gw.h"

static int cmp_field(const void *a, const void *b)
{
	const gw_field *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

int twilio__signature(const char *auth_token, const char *url, const gw_form *params,
		      char out[TWILIO_SIGNATURE_LEN + 1])
{
	gw_field sorted[GW_FORM_MAX_FIELDS];
	gw_buf data;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	int rc;

	memcpy(sorted, params->f, params->n * sizeof(gw_field));
	qsort(sorted, params->n, sizeof(gw_field), cmp_field);
	gwbuf__init(&data, (size_t)1 << 24);
	rc = gwbuf__puts(&data, url);
	for (size_t i = 0; rc == PARLEY_OK && i < params->n; i++) {
		rc = gwbuf__puts(&data, sorted[i].name);
		if (rc == PARLEY_OK)
			rc = gwbuf__puts(&data, sorted[i].value);
	}
	if (rc == PARLEY_OK &&
	    !HMAC(EVP_sha1(), auth_token, (int)strlen(auth_token), (const unsigned char *)data.data, data.len, mac,
		  &mac_len))
		rc = PARLEY_E_CRYPTO;
	gwbuf__free(&data);
	if (rc != PARLEY_OK)
		return rc;
	EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len); /* 20 bytes -> 28 chars + NUL */
	return PARLEY_OK;
}

int twilio__check(const char *auth_token, const char *url, const gw_form *params, const char *header)
{
	char want[TWILIO_SIGNATURE_LEN + 1];
	if (!header || !*auth_token)
		return PARLEY_E_CHANNEL_SIGNATURE;
	if (twilio__signature(auth_token, url, params, want) != PARLEY_OK)
		return PARLEY_E_CHANNEL_SIGNATURE;
	return sig__streq(want, header) ? PARLEY_OK : PARLEY_E_CHANNEL_SIGNATURE;
}

int twilio__parse(const gw_form *f, const char *account_sid, gw_inbound *out)
{
	const char *sid = form__get(f, "MessageSid"), *from = form__get(f, "From"), *body = form__get(f, "Body");
	const char *media = form__get(f, "NumMedia"), *acct = form__get(f, "AccountSid");
	memset(out, 0, sizeof(*out));
	if (!sid)
		sid = form__get(f, "SmsSid"); /* the older name of the same id */
	if (!sid || !*sid || strlen(sid) > GW_MSGID_MAX || !inbound__user_valid(sid))
		return PARLEY_E_CHANNEL_INVALID;
	if (!inbound__is_e164(from))
		return PARLEY_E_CHANNEL_INVALID;
	if (account_sid && *account_sid && (!acct || strcmp(acct, account_sid) != 0))
		return PARLEY_E_CHANNEL_INVALID;
	if (!body || !*body) {
		/* an MMS without text still tells staff something arrived */
		if (!media || strcmp(media, "0") == 0 || !*media)
			return PARLEY_E_CHANNEL_INVALID;
		body = "[media]";
	}
	size_t n = strlen(body);
	if (n > PARLEY_MESSAGE_MAX)
		return PARLEY_E_TOO_LARGE;
	out->text = malloc(n + 1);
	if (!out->text)
		return PARLEY_E_NOMEM;
	memcpy(out->text, body, n + 1);
	out->text_len = n;
	memcpy(out->id, sid, strlen(sid) + 1);
	memcpy(out->user, from, strlen(from) + 1);
	return PARLEY_OK;
}

/* The words an auth prompt becomes on a text-only channel (sms, and waba's URL case). */
int twilio__prompt_text(const gw_out *o, gw_buf *b)
{
	const char *who = o->entity && *o->entity ? o->entity : "us";
	if (o->otp && *o->otp)
		return gwbuf__printf(b, "Your verification code for %s is %s. Do not share it.", who, o->otp);
	return gwbuf__printf(b, "%s asks you to sign in (%s): %s", who, o->text ? o->text : "",
			     o->url ? o->url : "");
}

int twilio__request(const gw_config *cfg, const gw_out *o, gw_request *r)
{
	gw_buf text;
	int rc;
	int n = snprintf(r->url, sizeof(r->url), "%s/2010-04-01/Accounts/%s/Messages.json", cfg->twilio_api_base,
			 cfg->twilio_account_sid);
	if (n < 0 || (size_t)n >= sizeof(r->url))
		return PARLEY_E_CONFIG;
	gwbuf__init(&text, PARLEY_MESSAGE_MAX + 1024);
	rc = o->kind == GW_OUT_AUTH ? twilio__prompt_text(o, &text) : gwbuf__puts(&text, o->text ? o->text : "");
	if (rc == PARLEY_OK)
		rc = gwbuf__puts(&r->body, "To=");
	if (rc == PARLEY_OK)
		rc = gwbuf__urlencode(&r->body, o->user);
	if (rc == PARLEY_OK)
		rc = gwbuf__puts(&r->body, "&From=");
	if (rc == PARLEY_OK)
		rc = gwbuf__urlencode(&r->body, cfg->twilio_from);
	if (rc == PARLEY_OK)
		rc = gwbuf__puts(&r->body, "&Body=");
	if (rc == PARLEY_OK)
		rc = gwbuf__urlencode(&r->body, text.data ? text.data : "");
	gwbuf__free(&text);
	if (rc != PARLEY_OK)
		return rc;
	r->content_type = "application/x-www-form-urlencoded";
	snprintf(r->basic_user, sizeof(r->basic_user), "%s", cfg->twilio_account_sid);
	r->basic_pass = cfg->twilio_auth_token;
	return PARLEY_OK;
}
