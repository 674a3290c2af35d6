/* NATS client protocol codec for parley-bench (see natsp.h). */
#include "natsp.h"

#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#define MAX_ARGS 6

/* Splits line[0..n) on spaces and tabs; returns the token count, or -1 if there are more than max. */
static int split(const char *line, size_t n, const char **tok, size_t *tl, int max)
{
	size_t i = 0, s;
	int k = 0;

	for (;;) {
		while (i < n && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == n)
			return k;
		if (k == max)
			return -1;
		s = i;
		while (i < n && line[i] != ' ' && line[i] != '\t')
			i++;
		tok[k] = line + s;
		tl[k] = i - s;
		k++;
	}
}

/* A decimal number of at most 19 digits (no sign, no overflow). */
static int to_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0 || n > 19)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return 0;
}

static int op_is(const char *tok, size_t tl, const char *name)
{
	size_t i, n = strlen(name);

	if (tl != n)
		return 0;
	for (i = 0; i < n; i++) {
		char c = tok[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != name[i])
			return 0;
	}
	return 1;
}

/* MSG <subject> <sid> [reply] <#bytes> / HMSG <subject> <sid> [reply] <#hdr> <#total>, then the
 * payload and CRLF after the control line (line_len bytes with its CRLF). */
static int parse_msg(const uint8_t *buf, size_t len, size_t line_len, const char **tok, const size_t *tl, int k,
		     size_t max_payload, natsp_op *op)
{
	int hdr = op->kind == NATSP_HMSG, nums = hdr ? 2 : 1;
	uint64_t total, hlen = 0;

	if (k != 3 + nums && k != 4 + nums)
		return PARLEY_E_PROTO_MALFORMED;
	op->subject = tok[1];
	op->subject_len = tl[1];
	if (to_u64(tok[2], tl[2], &op->sid) != 0)
		return PARLEY_E_PROTO_MALFORMED;
	if (k == 4 + nums) {
		op->reply = tok[3];
		op->reply_len = tl[3];
	}
	if (to_u64(tok[k - 1], tl[k - 1], &total) != 0 || (hdr && to_u64(tok[k - 2], tl[k - 2], &hlen) != 0))
		return PARLEY_E_PROTO_MALFORMED;
	if (hlen > total)
		return PARLEY_E_PROTO_MALFORMED;
	if (total > max_payload)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	op->len = line_len + (size_t)total + 2;
	if (len < op->len)
		return PARLEY_E_PROTO_TRUNCATED;
	if (buf[op->len - 2] != '\r' || buf[op->len - 1] != '\n')
		return PARLEY_E_PROTO_MALFORMED;
	op->hdr = buf + line_len;
	op->hdr_len = (size_t)hlen;
	op->payload = buf + line_len + hlen;
	op->payload_len = (size_t)(total - hlen);
	return PARLEY_OK;
}

int natsp__parse(const uint8_t *buf, size_t len, size_t max_line, size_t max_payload, natsp_op *op)
{
	const uint8_t *nl;
	const char *line = (const char *)buf, *tok[MAX_ARGS];
	size_t scan = len < max_line ? len : max_line, n, tl[MAX_ARGS];
	int k;

	memset(op, 0, sizeof(*op));
	nl = memchr(buf, '\n', scan);
	if (nl == NULL)
		return len >= max_line ? PARLEY_E_PROTO_FIELD_TOO_LARGE : PARLEY_E_PROTO_TRUNCATED;
	n = (size_t)(nl - buf);
	if (n == 0 || buf[n - 1] != '\r')
		return PARLEY_E_PROTO_MALFORMED;
	n--; /* the line without CRLF */
	op->len = n + 2;
	/* INFO and -ERR carry free text after the operation name: take it whole */
	if (n >= 5 && op_is(line, 4, "INFO") && (line[4] == ' ' || line[4] == '\t')) {
		op->kind = NATSP_INFO;
		op->arg = line + 5;
		op->arg_len = n - 5;
		return PARLEY_OK;
	}
	if (n >= 4 && memcmp(line, "-ERR", 4) == 0 && (n == 4 || line[4] == ' ')) {
		op->kind = NATSP_ERR;
		op->arg = n > 5 ? line + 5 : line + n;
		op->arg_len = n > 5 ? n - 5 : 0;
		return PARLEY_OK;
	}
	k = split(line, n, tok, tl, MAX_ARGS);
	if (k <= 0)
		return PARLEY_E_PROTO_MALFORMED;
	if (k == 1 && op_is(tok[0], tl[0], "PING"))
		op->kind = NATSP_PING;
	else if (k == 1 && op_is(tok[0], tl[0], "PONG"))
		op->kind = NATSP_PONG;
	else if (k == 1 && op_is(tok[0], tl[0], "+OK"))
		op->kind = NATSP_OK;
	else if (op_is(tok[0], tl[0], "MSG") || op_is(tok[0], tl[0], "HMSG")) {
		op->kind = tl[0] == 3 ? NATSP_MSG : NATSP_HMSG;
		return parse_msg(buf, len, n + 2, tok, tl, k, max_payload, op);
	} else
		return PARLEY_E_PROTO_MALFORMED;
	return PARLEY_OK;
}

/* ---- encoders ---- */

static int subject_ok(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > NATSP_MAX_SUBJECT)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return 0;
	return 1;
}

/* Appends the pieces in one go, or nothing. */
static int put(dynbuf *b, const char *line, size_t line_len, const uint8_t *payload, size_t len, int crlf)
{
	uint8_t *dst;
	size_t total = line_len + len + (crlf ? 2 : 0);
	int err = PARLEY_OK;

	dst = dynbuf__reserve(b, total, &err);
	if (dst == NULL)
		return err;
	memcpy(dst, line, line_len);
	if (len)
		memcpy(dst + line_len, payload, len);
	if (crlf)
		memcpy(dst + line_len + len, "\r\n", 2);
	b->len += total;
	return PARLEY_OK;
}

int natsp__connect(dynbuf *b, const char *name)
{
	char line[512];
	int n;

	if (strpbrk(name, "\"\\\r\n") != NULL)
		return PARLEY_E_INVAL;
	/* verbose off: no +OK per operation. headers on, no_responders on: a publish to a subject nobody
	 * serves (a JetStream stream that does not exist) gets a 503 status message at once instead of
	 * no answer at all. */
	n = snprintf(line, sizeof(line),
		     "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"%s\","
		     "\"lang\":\"c\",\"version\":\"parley-bench\",\"protocol\":1,\"headers\":true,"
		     "\"no_responders\":true}\r\n",
		     name);
	if (n < 0 || (size_t)n >= sizeof(line))
		return PARLEY_E_INVAL;
	return put(b, line, (size_t)n, NULL, 0, 0);
}

int natsp__sub(dynbuf *b, const char *subject, uint64_t sid)
{
	char line[NATSP_MAX_SUBJECT + 48];
	int n;

	if (!subject_ok(subject))
		return PARLEY_E_INVAL;
	n = snprintf(line, sizeof(line), "SUB %s %llu\r\n", subject, (unsigned long long)sid);
	return put(b, line, (size_t)n, NULL, 0, 0);
}

int natsp__pub(dynbuf *b, const char *subject, const char *reply, const uint8_t *payload, size_t len)
{
	char line[2 * NATSP_MAX_SUBJECT + 48];
	int n;

	if (!subject_ok(subject) || (reply != NULL && !subject_ok(reply)))
		return PARLEY_E_INVAL;
	n = snprintf(line, sizeof(line), "PUB %s%s%s %zu\r\n", subject, reply ? " " : "", reply ? reply : "", len);
	return put(b, line, (size_t)n, payload, len, 1);
}

int natsp__ping(dynbuf *b)
{
	return put(b, "PING\r\n", 6, NULL, 0, 0);
}

int natsp__pong(dynbuf *b)
{
	return put(b, "PONG\r\n", 6, NULL, 0, 0);
}

/* ---- JSON lookups ---- */

/* The first occurrence of "key" followed by optional blanks and ':'; returns the offset after ':'. */
static long find_member(const char *json, size_t len, const char *key)
{
	size_t kl = strlen(key), i, j;

	for (i = 0; i + kl + 2 < len; i++) {
		if (json[i] != '"' || memcmp(json + i + 1, key, kl) != 0 || json[i + 1 + kl] != '"')
			continue;
		j = i + 2 + kl;
		while (j < len && (json[j] == ' ' || json[j] == '\t'))
			j++;
		if (j < len && json[j] == ':')
			return (long)(j + 1);
	}
	return -1;
}

int natsp__json_error(const char *json, size_t len, char *why, size_t why_len)
{
	long at = find_member(json, len, "error"), d;
	size_t i, o = 0;

	if (why_len)
		why[0] = '\0';
	if (at < 0)
		return 0;
	d = find_member(json + at, len - (size_t)at, "description");
	if (d >= 0 && why_len) {
		i = (size_t)at + (size_t)d;
		while (i < len && json[i] != '"')
			i++;
		for (i++; i < len && json[i] != '"' && o + 1 < why_len; i++)
			why[o++] = json[i];
		why[o] = '\0';
	}
	return 1;
}

int natsp__json_u64(const char *json, size_t len, const char *key, uint64_t *v)
{
	long at = find_member(json, len, key);
	size_t i, s;

	if (at < 0)
		return -1;
	i = (size_t)at;
	while (i < len && (json[i] == ' ' || json[i] == '\t'))
		i++;
	s = i;
	while (i < len && json[i] >= '0' && json[i] <= '9')
		i++;
	return to_u64(json + s, i - s, v);
}

int natsp__subject_u64(const char *subject, size_t len, uint64_t *v)
{
	size_t i = len;

	while (i > 0 && subject[i - 1] != '.')
		i--;
	if (i == 0)
		return -1;
	return to_u64(subject + i, len - i, v);
}
