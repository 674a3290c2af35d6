/* The gateway's small helpers: a bounded buffer, the urlencoded form codec, the HMAC-SHA256 signature
 * headers, inbound/outbox record helpers. Pure functions over buffers (unit tests, fuzz harness). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gw.h"

void gwbuf__init(gw_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void gwbuf__free(gw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int reserve(gw_buf *b, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return PARLEY_E_TOO_LARGE;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p)
			return PARLEY_E_NOMEM;
		b->data = p;
		b->cap = cap;
	}
	return PARLEY_OK;
}

int gwbuf__append(gw_buf *b, const void *p, size_t n)
{
	int rc = reserve(b, n);
	if (rc != PARLEY_OK)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return PARLEY_OK;
}

int gwbuf__puts(gw_buf *b, const char *s)
{
	return gwbuf__append(b, s, strlen(s));
}

int gwbuf__printf(gw_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[512];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return PARLEY_E_INTERNAL;
	if ((size_t)n < sizeof(small))
		return gwbuf__append(b, small, (size_t)n);
	int rc = reserve(b, (size_t)n);
	if (rc != PARLEY_OK)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return PARLEY_OK;
}

int gwbuf__urlencode(gw_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3];
		int rc;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~') {
			rc = gwbuf__append(b, s, 1);
		} else if (c == ' ') {
			rc = gwbuf__append(b, "+", 1);
		} else {
			e[0] = '%';
			e[1] = hex[c >> 4];
			e[2] = hex[c & 15];
			rc = gwbuf__append(b, e, 3);
		}
		if (rc != PARLEY_OK)
			return rc;
	}
	return PARLEY_OK;
}

/* ---- form ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes [s, s+n) into out (NUL-terminated); returns the bytes written or -1. */
static long decode(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			if (c == '\0')
				return -1; /* a NUL would cut the value short where the signature saw all of it */
			i += 2;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return (long)o;
}

int form__parse(const char *s, size_t len, gw_form *out)
{
	memset(out, 0, sizeof(*out));
	/* every field decodes to at most its own bytes plus two NULs */
	out->buf = malloc(len + 2 * GW_FORM_MAX_FIELDS + 2);
	if (!out->buf)
		return PARLEY_E_NOMEM;
	char *w = out->buf;
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && s[j] != '&')
			j++;
		if (j > i) {
			if (out->n == GW_FORM_MAX_FIELDS)
				goto bad;
			size_t eq = i;
			while (eq < j && s[eq] != '=')
				eq++;
			long a = decode(s + i, eq - i, w);
			if (a < 0)
				goto bad;
			out->f[out->n].name = w;
			w += a + 1;
			long b = eq < j ? decode(s + eq + 1, j - eq - 1, w) : decode("", 0, w);
			if (b < 0)
				goto bad;
			out->f[out->n].value = w;
			w += b + 1;
			out->n++;
		}
		i = j + 1;
	}
	return PARLEY_OK;
bad:
	form__free(out);
	return PARLEY_E_CHANNEL_INVALID;
}

void form__free(gw_form *f)
{
	free(f->buf);
	f->buf = NULL;
	f->n = 0;
}

const char *form__get(const gw_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->f[i].name, name) == 0)
			return f->f[i].value;
	return NULL;
}

/* ---- signatures ---- */

/* "sha256=" + hex HMAC-SHA256(key, [ts "."] body). */
static void mac_header(const uint8_t *key, size_t key_len, const char *ts, const void *body, size_t len,
		       char out[GW_SHA256_HEADER_LEN + 1])
{
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_init(&st, key, key_len);
	if (ts) {
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)ts, strlen(ts));
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)".", 1);
	}
	crypto_auth_hmacsha256_update(&st, body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "sha256=", 7);
	sodium_bin2hex(out + 7, GW_SHA256_HEADER_LEN + 1 - 7, mac, sizeof(mac));
	sodium_memzero(&st, sizeof(st));
}

void sig__sha256_header(const uint8_t *key, size_t key_len, const void *body, size_t len,
			char out[GW_SHA256_HEADER_LEN + 1])
{
	mac_header(key, key_len, NULL, body, len, out);
}

void sig__sha256_ts_header(const uint8_t *key, size_t key_len, const char *ts, const void *body, size_t len,
			   char out[GW_SHA256_HEADER_LEN + 1])
{
	mac_header(key, key_len, ts, body, len, out);
}

int sig__streq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return 0;
	return sodium_memcmp(a, b, la) == 0;
}

static int mac_check(const uint8_t *key, size_t key_len, const char *ts, const void *body, size_t len,
		     const char *header)
{
	char want[GW_SHA256_HEADER_LEN + 1], got[GW_SHA256_HEADER_LEN + 1];
	if (!header || strlen(header) != GW_SHA256_HEADER_LEN)
		return PARLEY_E_CHANNEL_SIGNATURE;
	/* providers send lowercase hex; accept uppercase too (the MAC, not its spelling, is the secret) */
	for (size_t i = 0; i <= GW_SHA256_HEADER_LEN; i++)
		got[i] = (char)((header[i] >= 'A' && header[i] <= 'F') ? header[i] - 'A' + 'a' : header[i]);
	mac_header(key, key_len, ts, body, len, want);
	return sig__streq(want, got) ? PARLEY_OK : PARLEY_E_CHANNEL_SIGNATURE;
}

int sig__sha256_check(const uint8_t *key, size_t key_len, const void *body, size_t len, const char *header)
{
	return mac_check(key, key_len, NULL, body, len, header);
}

int sig__sha256_ts_check(const uint8_t *key, size_t key_len, const char *ts, const void *body, size_t len,
			 const char *header)
{
	return mac_check(key, key_len, ts, body, len, header);
}

/* ---- freshness ---- */

int64_t inbound__parse_ts(const char *s)
{
	int64_t v = 0;
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 12) /* 12 digits: beyond the year 33000, and no overflow */
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int inbound__fresh(int64_t ts, int64_t now, unsigned max_age_s)
{
	if (ts > now + GW_FUTURE_SKEW_S)
		return PARLEY_E_TOO_FAR_AHEAD;
	if (ts < now - (int64_t)max_age_s)
		return PARLEY_E_TIMEOUT;
	return PARLEY_OK;
}

/* ---- records ---- */

void inbound__list_free(gw_inbound_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].text);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int inbound__is_e164(const char *s)
{
	size_t n = 0;
	if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return 0;
	for (s++; *s; s++, n++)
		if (*s < '0' || *s > '9')
			return 0;
	return n >= 2 && n <= 15;
}

int inbound__user_valid(const char *s)
{
	size_t n = 0;
	if (!s)
		return 0;
	for (; *s; s++, n++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return n >= 1 && n <= PARLEY_CHANNEL_USER_MAX;
}

void request__init(gw_request *r, size_t max_body)
{
	memset(r, 0, sizeof(*r));
	gwbuf__init(&r->body, max_body);
}

void request__free(gw_request *r)
{
	gwbuf__free(&r->body);
}

void out__free(gw_out *o)
{
	free(o->text);
	free(o->url);
	free(o->otp);
	free(o->entity);
	memset(o, 0, sizeof(*o));
}

void log__line(const char *fmt, ...)
{
	char line[1024];
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s parley-gateway: %s\n", ts, line);
}
