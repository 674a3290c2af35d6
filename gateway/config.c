/* parley-gateway configuration (config.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <parley/error.h>
#include <sodium.h>

#include "config.h"

void config__defaults(gw_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->bind, sizeof(c->bind), "127.0.0.1");
	c->port = 8780;
	c->max_body = 64 * 1024;
	c->queue_max = 1000;
	c->outbox_max = 10000;
	c->retry_max = 10;
	c->retry_base_ms = 1000;
	c->retry_cap_ms = 300000;
	c->http_timeout_s = 15;
	c->dedupe_days = 7;
	c->max_conns = 256;
	c->byoc_window_s = 300;
	c->webchat_sessions_per_min = 30;
	c->webchat_sessions_per_ip = 20;
	c->webchat_msgs_per_s = 2;
	c->webchat_msg_burst = 10;
	c->webchat_max_msg = 16384;
	snprintf(c->twilio_api_base, sizeof(c->twilio_api_base), "https://api.twilio.com");
	snprintf(c->waba_api_base, sizeof(c->waba_api_base), "https://graph.facebook.com");
	snprintf(c->waba_template_lang, sizeof(c->waba_template_lang), "en_US");
}

static int fail(char *err, size_t errlen, const char *key, const char *why)
{
	snprintf(err, errlen, "%s: %s", key, why);
	return PARLEY_E_CONFIG;
}

static int set_str(char *dst, size_t cap, const char *key, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	if (n >= cap)
		return fail(err, errlen, key, "too long");
	memcpy(dst, v, n + 1);
	return PARLEY_OK;
}

static int set_uint(unsigned *dst, unsigned lo, unsigned hi, const char *key, const char *v, char *err,
		    size_t errlen)
{
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || x < lo || x > hi) {
		char why[96];
		snprintf(why, sizeof(why), "expected an integer in %u..%u", lo, hi);
		return fail(err, errlen, key, why);
	}
	*dst = (unsigned)x;
	return PARLEY_OK;
}

/* env:NAME or file:/abs/path -> the secret (trailing newline dropped). A literal secret is refused: it
 * would sit in a config file or in argv, where ps shows it to everyone. */
static int set_secret(char *dst, size_t cap, const char *key, const char *v, char *err, size_t errlen)
{
	if (strncmp(v, "env:", 4) == 0) {
		const char *s = getenv(v + 4);
		if (!s || !*s)
			return fail(err, errlen, key, "environment variable unset or empty");
		return set_str(dst, cap, key, s, err, errlen);
	}
	if (strncmp(v, "file:/", 6) == 0) {
		struct stat st;
		FILE *f = fopen(v + 5, "r");
		if (!f)
			return fail(err, errlen, key, "cannot open the secret file");
		if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077)) {
			fclose(f);
			return fail(err, errlen, key, "the secret file must not be readable by group or others");
		}
		size_t n = fread(dst, 1, cap - 1, f);
		int more = fgetc(f) != EOF;
		fclose(f);
		if (more)
			return fail(err, errlen, key, "secret too long");
		dst[n] = '\0';
		while (n && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
			dst[--n] = '\0';
		if (!n)
			return fail(err, errlen, key, "empty secret");
		return PARLEY_OK;
	}
	return fail(err, errlen, key, "a secret is given as env:NAME or file:/abs/path");
}

#define STR(name, field) {name, 0, offsetof(gw_config, field), sizeof(((gw_config *)0)->field), 0, 0}
#define SECRET(name, field) {name, 1, offsetof(gw_config, field), sizeof(((gw_config *)0)->field), 0, 0}
#define UINT(name, field, lo, hi) {name, 2, offsetof(gw_config, field), 0, lo, hi}
static const struct key {
	const char *name;
	int type; /* 0 string, 1 secret, 2 unsigned, 3 size_t */
	size_t off, cap;
	unsigned lo, hi;
} keys[] = {
	STR("entity", entity),
	STR("home", home),
	STR("server", server),
	STR("ca_file", ca_file),
	STR("db", db),
	STR("bind", bind),
	UINT("port", port, 0, 65535),
	STR("port_file", port_file),
	STR("public_url", public_url),
	{"max_body", 3, offsetof(gw_config, max_body), 0, 1024, 1024 * 1024},
	UINT("queue_max", queue_max, 1, 1000000),
	UINT("outbox_max", outbox_max, 1, 10000000),
	UINT("retry_max", retry_max, 1, 100),
	UINT("retry_base_ms", retry_base_ms, 10, 3600000),
	UINT("retry_cap_ms", retry_cap_ms, 10, 86400000),
	UINT("http_timeout_s", http_timeout_s, 1, 600),
	UINT("dedupe_days", dedupe_days, 1, 365),
	UINT("webhook_max_age_s", webhook_max_age_s, 60, 365u * 86400u),
	UINT("max_conns", max_conns, 1, 100000),
	STR("twilio.account_sid", twilio_account_sid),
	SECRET("twilio.auth_token", twilio_auth_token),
	STR("twilio.from", twilio_from),
	STR("twilio.api_base", twilio_api_base),
	SECRET("waba.verify_token", waba_verify_token),
	SECRET("waba.app_secret", waba_app_secret),
	SECRET("waba.token", waba_token),
	STR("waba.phone_number_id", waba_phone_number_id),
	STR("waba.api_base", waba_api_base),
	STR("waba.otp_template", waba_otp_template),
	STR("waba.template_lang", waba_template_lang),
	SECRET("byoc.secret", byoc_secret),
	STR("byoc.url", byoc_url),
	UINT("byoc.window_s", byoc_window_s, 10, 3600),
	UINT("webchat", webchat, 0, 1),
	STR("webchat_origins", webchat_origins),
	STR("webchat_trusted_proxies", webchat_trusted_proxies),
	UINT("webchat_sessions_per_min", webchat_sessions_per_min, 1, 100000),
	UINT("webchat_sessions_per_ip", webchat_sessions_per_ip, 1, 100000),
	UINT("webchat_msgs_per_s", webchat_msgs_per_s, 1, 1000),
	UINT("webchat_msg_burst", webchat_msg_burst, 1, 10000),
	UINT("webchat_max_msg", webchat_max_msg, 256, 1024 * 1024),
};

int config__set(gw_config *c, const char *key, const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		if (strcmp(k->name, key) != 0)
			continue;
		char *p = (char *)c + k->off;
		switch (k->type) {
		case 0:
			return set_str(p, k->cap, key, value, err, errlen);
		case 1:
			return set_secret(p, k->cap, key, value, err, errlen);
		case 2:
			return set_uint((unsigned *)(void *)p, k->lo, k->hi, key, value, err, errlen);
		default: {
			unsigned u;
			int rc = set_uint(&u, k->lo, k->hi, key, value, err, errlen);
			if (rc == PARLEY_OK)
				*(size_t *)(void *)p = u;
			return rc;
		}
		}
	}
	return fail(err, errlen, key, "unknown key");
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int config__load_file(gw_config *c, const char *path, char *err, size_t errlen)
{
	char line[1024];
	unsigned no = 0;
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open", path);
		return PARLEY_E_CONFIG;
	}
	while (fgets(line, sizeof(line), f)) {
		no++;
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%u: expected key = value", path, no);
			fclose(f);
			return PARLEY_E_CONFIG;
		}
		*eq = '\0';
		char sub[512];
		int rc = config__set(c, trim(s), trim(eq + 1), sub, sizeof(sub));
		if (rc != PARLEY_OK) {
			snprintf(err, errlen, "%s:%u: %s", path, no, sub);
			fclose(f);
			return rc;
		}
	}
	fclose(f);
	return PARLEY_OK;
}

int config__sms_enabled(const gw_config *c)
{
	return c->twilio_account_sid[0] && c->twilio_auth_token[0] && c->twilio_from[0];
}

int config__waba_enabled(const gw_config *c)
{
	return c->waba_app_secret[0] && c->waba_token[0] && c->waba_phone_number_id[0];
}

int config__byoc_enabled(const gw_config *c)
{
	return c->byoc_secret[0] && c->byoc_url[0];
}

int config__finish(gw_config *c, char *err, size_t errlen)
{
	if (!c->entity[0])
		return fail(err, errlen, "entity", "required");
	if (!c->home[0])
		return fail(err, errlen, "home", "required (the gateway account's parley state directory)");
	if (c->twilio_account_sid[0] && !config__sms_enabled(c))
		return fail(err, errlen, "twilio", "account_sid, auth_token and from go together");
	if (config__sms_enabled(c) && !c->public_url[0])
		return fail(err, errlen, "public_url", "required with sms (Twilio signs the URL it calls)");
	if ((c->waba_app_secret[0] || c->waba_phone_number_id[0]) && !config__waba_enabled(c))
		return fail(err, errlen, "waba", "app_secret, token and phone_number_id go together");
	if ((c->byoc_secret[0] != 0) != (c->byoc_url[0] != 0))
		return fail(err, errlen, "byoc", "secret and url go together");
	/* A replayed webhook is refused by one of two checks: its message id while the id is remembered
	 * (dedupe_days), its age after. They must overlap, or a replay in the gap between them would be
	 * taken as new: the oldest message accepted, counting a provider clock up to GW_FUTURE_SKEW_S ahead,
	 * must be younger than the retention. The derived default leaves 12 h of margin. (byoc.window_s, at
	 * most 3600, is always far inside the shortest retention, one day.) */
	uint64_t retention = (uint64_t)c->dedupe_days * 86400u;
	if (!c->webhook_max_age_s)
		c->webhook_max_age_s = (unsigned)(retention - 43200u);
	if ((uint64_t)c->webhook_max_age_s + GW_FUTURE_SKEW_S >= retention)
		return fail(err, errlen, "webhook_max_age_s",
			    "must be below dedupe_days x 86400 - 300 (a replay the dedupe forgot must be refused by age)");
	if (c->retry_cap_ms < c->retry_base_ms)
		return fail(err, errlen, "retry_cap_ms", "below retry_base_ms");
	if (!c->db[0] && snprintf(c->db, sizeof(c->db), "%s/gateway.db", c->home) >= (int)sizeof(c->db))
		return fail(err, errlen, "db", "path too long");
	size_t n = strlen(c->public_url);
	while (n && c->public_url[n - 1] == '/') /* the request target brings its own '/' */
		c->public_url[--n] = '\0';
	return PARLEY_OK;
}

void config__wipe(gw_config *c)
{
	sodium_memzero(c->twilio_auth_token, sizeof(c->twilio_auth_token));
	sodium_memzero(c->waba_verify_token, sizeof(c->waba_verify_token));
	sodium_memzero(c->waba_app_secret, sizeof(c->waba_app_secret));
	sodium_memzero(c->waba_token, sizeof(c->waba_token));
	sodium_memzero(c->byoc_secret, sizeof(c->byoc_secret));
}
