/* `parley bot`: the JSON-lines mapping (schema: docs/bots.md).
 *
 * Events out (one compact JSON object per line) and actions in. jansson does the JSON: it refuses
 * ill-formed UTF-8, a NUL inside a string (JSON_ALLOW_NUL is not given: a body is text) and anything
 * after the object, so this file only checks the shape. A program or endpoint is not trusted: every
 * line is bounded (BOT_LINE_MAX), every field is type-checked, fields this bot does not know are
 * ignored (a newer program keeps working), and a "type" it does not know is refused, never guessed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bot.h"
#include "cli.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* A JSON string of len bytes of text. A string must be UTF-8, and a message body is whatever the
 * sender put in it: ill-formed parts become U+FFFD (one per maximal ill-formed subpart, like the
 * terminal output of text.c) instead of the whole event being lost. */
static json_t *text_n(const void *s, size_t len)
{
	const uint8_t *p = s;
	json_t *j;
	char *fixed;
	size_t i = 0, o = 0;

	j = json_stringn(s, len);
	if (j != NULL)
		return j;
	/* each ill-formed byte becomes at most 3 bytes */
	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	fixed = malloc(len * 3 + 1);
	if (fixed == NULL)
		return NULL;
	while (i < len) {
		uint32_t cp;
		size_t bad = 0, n = cli_utf8_next(p + i, len - i, &cp, &bad);
		if (n > 0) {
			memcpy(fixed + o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(fixed + o, REPLACEMENT, 3);
			o += 3;
			i += bad;
		}
	}
	j = json_stringn(fixed, o);
	free(fixed);
	return j;
}

static json_t *text(const char *s)
{
	return text_n(s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* A thread id or time as a JSON integer: jansson's are signed 64-bit; the server's ids and times are
 * far below 2^63 (an id above it would be a server bug, carried as its two's complement). */
static json_t *number(uint64_t v)
{
	return json_integer((json_int_t)v);
}

/* Sets the fields (name, value) pairs, the value owned by the object even on failure; then dumps it
 * as one line. Consumes obj. */
static char *finish(json_t *obj, int failed, size_t *len)
{
	char *s = NULL, *line;
	size_t n;

	if (obj != NULL && !failed)
		s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (s == NULL)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (line == NULL) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

/* json_object_set_new consumes the value even when it fails; a NULL value (no memory) fails. */
static int set(json_t *obj, const char *key, json_t *value)
{
	return obj == NULL || json_object_set_new(obj, key, value) != 0;
}

static const char *role_name(parley_entity_role r)
{
	switch (r) {
	case PARLEY_ROLE_ADMIN:
		return "admin";
	case PARLEY_ROLE_AGENT:
		return "agent";
	case PARLEY_ROLE_BOT:
		return "bot";
	default:
		return "customer";
	}
}

char *bot__event_message(const parley_thread_message *m, size_t *len)
{
	json_t *o = json_object();
	int bad = 0;

	bad |= set(o, "type", json_string("message"));
	bad |= set(o, "thread", number(m->thread_id));
	bad |= set(o, "entity", text(m->entity));
	bad |= set(o, "from", text(m->sender));
	bad |= set(o, "role", json_string(role_name(m->sender_role)));
	bad |= set(o, "body", text_n(m->body != NULL ? (const void *)m->body : "", m->body != NULL ? m->body_len : 0));
	bad |= set(o, "payment", json_boolean(m->payment));
	bad |= set(o, "ts", number(m->timestamp_ms));
	return finish(o, bad, len);
}

char *bot__event_forwarded(const parley_thread_forwarded *f, size_t *len)
{
	json_t *o = json_object();
	int bad = 0;

	bad |= set(o, "type", json_string("forwarded"));
	bad |= set(o, "thread", number(f->thread_id));
	bad |= set(o, "entity", text(f->entity));
	bad |= set(o, "from", text(f->from));
	bad |= set(o, "note", text(f->note));
	bad |= set(o, "history", number(f->history));
	bad |= set(o, "history_complete", json_boolean(f->history_complete));
	return finish(o, bad, len);
}

/* parley_thread_change.kind 1..8 */
static const char *const change_kinds[] = {NULL,   "open", "add",   "remove",  "handling",
					   "lock", "unlock", "close", "handback"};

char *bot__event_changed(const parley_thread_change *ch, size_t *len)
{
	json_t *o = json_object();
	int bad = 0;
	const char *kind = "unknown";

	if (ch->kind > 0 && (size_t)ch->kind < sizeof(change_kinds) / sizeof(change_kinds[0]))
		kind = change_kinds[ch->kind];
	bad |= set(o, "type", json_string("changed"));
	bad |= set(o, "thread", number(ch->thread_id));
	bad |= set(o, "entity", text(ch->entity));
	bad |= set(o, "kind", json_string(kind));
	bad |= set(o, "actor", text(ch->actor));
	bad |= set(o, "subject", text(ch->subject));
	if (ch->removed_self)
		bad |= set(o, "removed_self", json_true());
	return finish(o, bad, len);
}

char *bot__event_error(uint64_t thread, int code, const char *message, size_t *len)
{
	json_t *o = json_object();
	int bad = 0;

	bad |= set(o, "type", json_string("error"));
	bad |= set(o, "thread", number(thread));
	bad |= set(o, "code", json_integer(code));
	bad |= set(o, "error", json_string(parley_errname(code)));
	bad |= set(o, "message", text(message));
	return finish(o, bad, len);
}

/* ---- actions ---- */

/* The handle rule of <parley/client.h>: 3..32 of a-z 0-9 . _ -, the first a letter. Checked here too
 * so that the reason names the field, not a library error. */
static int is_handle(const char *s, size_t n)
{
	size_t i;

	if (n < 3 || n > PARLEY_HANDLE_MAX || s[0] < 'a' || s[0] > 'z')
		return 0;
	for (i = 1; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

static int fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

static int parse_object(json_t *o, bot_action *out, char *err, size_t errlen)
{
	json_t *type = json_object_get(o, "type"), *thread = json_object_get(o, "thread");
	const char *t;

	if (!json_is_string(type))
		return fail(err, errlen, "no \"type\" string");
	t = json_string_value(type);
	if (strcmp(t, "reply") == 0) {
		out->kind = BOT_ACTION_REPLY;
	} else if (strcmp(t, "handback") == 0) {
		out->kind = BOT_ACTION_HANDBACK;
	} else if (strcmp(t, "close") == 0) {
		out->kind = BOT_ACTION_CLOSE;
	} else {
		char shown[PARLEY_HANDLE_MAX + 1];
		size_t i, n = json_string_length(type);
		/* the type as sent may be anything: show at most 32 bytes, printable ASCII only */
		for (i = 0; i < n && i < sizeof(shown) - 1; i++)
			shown[i] = t[i] >= 0x20 && t[i] < 0x7F && t[i] != '"' ? t[i] : '?';
		shown[i] = '\0';
		snprintf(err, errlen, "unknown type \"%s\" (known: reply, handback, close)", shown);
		return -1;
	}
	if (!json_is_integer(thread) || json_integer_value(thread) <= 0)
		return fail(err, errlen, "\"thread\" must be a positive integer");
	out->thread = (uint64_t)json_integer_value(thread);
	if (out->kind == BOT_ACTION_REPLY) {
		json_t *body = json_object_get(o, "body");
		size_t n = json_string_length(body);
		if (!json_is_string(body) || n == 0 || n > PARLEY_MESSAGE_MAX)
			return fail(err, errlen, "\"body\" must be a string of 1 to " STRINGIFY(PARLEY_MESSAGE_MAX) " bytes");
		memcpy(out->body, json_string_value(body), n);
		out->body[n] = '\0';
		out->body_len = n;
	} else if (out->kind == BOT_ACTION_HANDBACK) {
		json_t *to = json_object_get(o, "to");
		/* absent, null or "admin": the admins' queue */
		if (to != NULL && !json_is_null(to)) {
			const char *s = json_string_value(to);
			size_t n = json_string_length(to);
			if (!json_is_string(to) || (strcmp(s, "admin") != 0 && !is_handle(s, n)))
				return fail(err, errlen, "\"to\" must be \"admin\" or a handle");
			if (strcmp(s, "admin") != 0) {
				memcpy(out->to, s, n);
				out->to[n] = '\0';
			}
		}
	}
	return 0;
}

int bot__parse_action(const char *line, size_t len, bot_action *out, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o;
	int rc;

	memset(out, 0, offsetof(bot_action, body));
	out->body[0] = '\0';
	out->body_len = 0;
	if (len > BOT_LINE_MAX)
		return fail(err, errlen, "longer than " STRINGIFY(BOT_LINE_MAX) " bytes");
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL) {
		/* je.text may quote the input: keep the column and jansson's words, printable ASCII only */
		char why[80];
		size_t i;
		for (i = 0; je.text[i] != '\0' && i < sizeof(why) - 1; i++)
			why[i] = je.text[i] >= 0x20 && je.text[i] < 0x7F ? je.text[i] : '?';
		why[i] = '\0';
		snprintf(err, errlen, "not JSON (column %d: %s)", je.column, why);
		return -1;
	}
	if (!json_is_object(o))
		rc = fail(err, errlen, "not a JSON object");
	else
		rc = parse_object(o, out, err, errlen);
	json_decref(o);
	return rc;
}

/* ---- lines ---- */

static void emit(bot_lines *l, const char *line, size_t n, bot_line_fn fn, void *user)
{
	l->lineno++;
	if (l->discarding) {
		l->discarding = 0;
		fn(user, l->lineno, NULL, 0, 1);
		return;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	fn(user, l->lineno, line, n, 0);
}

void bot__lines_feed(bot_lines *l, const char *data, size_t n, bot_line_fn fn, void *user)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl != NULL ? (size_t)(nl - data) : n;

		if (!l->discarding) {
			if (l->len + take > BOT_LINE_MAX) {
				/* too long: drop what we have and everything up to the next newline */
				l->discarding = 1;
				l->len = 0;
			} else {
				memcpy(l->buf + l->len, data, take);
				l->len += take;
			}
		}
		if (nl == NULL)
			return;
		l->buf[l->len] = '\0';
		emit(l, l->buf, l->len, fn, user);
		l->len = 0;
		data += take + 1;
		n -= take + 1;
	}
}

void bot__lines_finish(bot_lines *l, bot_line_fn fn, void *user)
{
	if (l->len > 0 || l->discarding) {
		l->buf[l->len] = '\0';
		emit(l, l->buf, l->len, fn, user);
	}
	l->len = 0;
	l->discarding = 0;
}
