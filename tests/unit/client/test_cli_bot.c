/* `parley bot`'s JSON mapping and webhook signature (tools/parley/bot_json.c, bot_webhook.c, compiled
 * in): the exact event lines, text that is not UTF-8, the bounds, every way an action line can be
 * wrong, the line splitter, and the HMAC against a vector computed by openssl. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/parley.h>
#include <parley/thread.h>

#include "../test.h"
#include "tools/parley/bot.h"

static void test_event_message(void)
{
	parley_thread_message m;
	static const uint8_t body[] = "hi \"x\"\n";
	size_t len = 0;
	char *s;

	memset(&m, 0, sizeof(m));
	m.thread_id = 7;
	m.entity = "shop";
	m.sender = "carol";
	m.sender_role = PARLEY_ROLE_NONE;
	m.timestamp_ms = 1700000000123ull;
	m.body = body;
	m.body_len = sizeof(body) - 1;
	s = bot__event_message(&m, &len);
	TEST_CHECK(s != NULL);
	if (s == NULL)
		return;
	TEST_EQ_STR(s, "{\"type\":\"message\",\"thread\":7,\"entity\":\"shop\",\"from\":\"carol\",\"role\":\"customer\","
		       "\"body\":\"hi \\\"x\\\"\\n\",\"payment\":false,\"ts\":1700000000123}\n");
	TEST_EQ_INT(len, strlen(s));
	free(s);

	/* staff roles and a payment request */
	m.sender_role = PARLEY_ROLE_BOT;
	m.payment = 1;
	s = bot__event_message(&m, &len);
	TEST_CHECK(s != NULL && strstr(s, "\"role\":\"bot\"") != NULL && strstr(s, "\"payment\":true") != NULL);
	free(s);
}

/* A body is the sender's bytes: ill-formed UTF-8 becomes U+FFFD (the event is not lost), a NUL is
 * carried as \u0000, and the largest body of control characters still fits one line. */
static void test_event_text(void)
{
	parley_thread_message m;
	static const uint8_t bad[] = {'a', 0xFF, 'b', 0xE2, 0x82, 'c', 0x00, 'd'};
	uint8_t *big;
	size_t len = 0;
	char *s;

	memset(&m, 0, sizeof(m));
	m.thread_id = 1;
	m.entity = "shop";
	m.sender = "carol";
	m.body = bad;
	m.body_len = sizeof(bad);
	s = bot__event_message(&m, &len);
	TEST_CHECK(s != NULL && strstr(s, "\"body\":\"a\xEF\xBF\xBD"
					  "b\xEF\xBF\xBD"
					  "c\\u0000d\"") != NULL);
	free(s);

	big = malloc(PARLEY_MESSAGE_MAX);
	TEST_CHECK(big != NULL);
	if (big == NULL)
		return;
	memset(big, 0x01, PARLEY_MESSAGE_MAX);
	m.body = big;
	m.body_len = PARLEY_MESSAGE_MAX;
	s = bot__event_message(&m, &len);
	TEST_CHECK(s != NULL && len > 6 * PARLEY_MESSAGE_MAX && len <= BOT_LINE_MAX);
	free(s);
	free(big);
}

static void test_event_others(void)
{
	parley_thread_forwarded f;
	parley_thread_change ch;
	size_t len = 0;
	char *s;

	memset(&f, 0, sizeof(f));
	f.thread_id = 9;
	f.entity = "shop";
	f.from = "ada";
	f.note = "VIP \xFF";
	f.history = 12;
	s = bot__event_forwarded(&f, &len);
	TEST_EQ_STR(s != NULL ? s : "", "{\"type\":\"forwarded\",\"thread\":9,\"entity\":\"shop\",\"from\":\"ada\","
					"\"note\":\"VIP \xEF\xBF\xBD\",\"history\":12,\"history_complete\":false}\n");
	free(s);

	memset(&ch, 0, sizeof(ch));
	ch.thread_id = 9;
	ch.entity = "shop";
	ch.kind = 8;
	ch.actor = "robo";
	ch.subject = "";
	s = bot__event_changed(&ch, &len);
	TEST_EQ_STR(s != NULL ? s : "", "{\"type\":\"changed\",\"thread\":9,\"entity\":\"shop\",\"kind\":\"handback\","
					"\"actor\":\"robo\",\"subject\":\"\"}\n");
	free(s);
	ch.kind = 2;
	s = bot__event_changed(&ch, &len);
	TEST_CHECK(s != NULL && strstr(s, "\"kind\":\"add\"") != NULL);
	free(s);
	ch.kind = 99; /* a kind this bot does not know is named, not dropped */
	ch.actor = NULL;
	s = bot__event_changed(&ch, &len);
	TEST_CHECK(s != NULL && strstr(s, "\"kind\":\"unknown\"") != NULL && strstr(s, "\"actor\":\"\"") != NULL);
	free(s);

	s = bot__event_error(9, PARLEY_E_THREAD_LOCKED, "locked by ada", &len);
	TEST_EQ_STR(s != NULL ? s : "", "{\"type\":\"error\",\"thread\":9,\"code\":602,\"error\":\"THREAD_LOCKED\","
					"\"message\":\"locked by ada\"}\n");
	free(s);
}

static int parse(const char *line, bot_action *a, char *err, size_t errlen)
{
	return bot__parse_action(line, strlen(line), a, err, errlen);
}

static void test_parse_ok(void)
{
	bot_action a;
	char err[200];

	TEST_EQ_INT(parse("{\"type\":\"reply\",\"thread\":42,\"body\":\"h\\u00e9llo\\n\",\"extra\":[1,{\"x\":2}]}", &a,
			  err, sizeof(err)),
		    0);
	TEST_EQ_INT(a.kind, BOT_ACTION_REPLY);
	TEST_EQ_INT(a.thread, 42);
	TEST_EQ_INT(a.body_len, 7);
	TEST_CHECK(memcmp(a.body, "h\xC3\xA9llo\n", 8) == 0);

	TEST_EQ_INT(parse("{\"thread\":3,\"type\":\"handback\",\"to\":\"admin\"}", &a, err, sizeof(err)), 0);
	TEST_CHECK(a.kind == BOT_ACTION_HANDBACK && a.thread == 3 && a.to[0] == '\0');
	TEST_EQ_INT(parse("{\"type\":\"handback\",\"thread\":3}", &a, err, sizeof(err)), 0);
	TEST_CHECK(a.kind == BOT_ACTION_HANDBACK && a.to[0] == '\0');
	TEST_EQ_INT(parse("{\"type\":\"handback\",\"thread\":3,\"to\":null}", &a, err, sizeof(err)), 0);
	TEST_CHECK(a.to[0] == '\0');
	TEST_EQ_INT(parse(" {\"type\":\"handback\",\"thread\":3,\"to\":\"ada.b-c_9\"} \r", &a, err, sizeof(err)), 0);
	TEST_EQ_STR(a.to, "ada.b-c_9");
	TEST_EQ_INT(parse("{\"type\":\"close\",\"thread\":9223372036854775807}", &a, err, sizeof(err)), 0);
	TEST_CHECK(a.kind == BOT_ACTION_CLOSE && a.thread == 9223372036854775807ull);
}

/* Each malformed line is refused with a reason that names the problem. */
static void test_parse_refused(void)
{
	static const struct {
		const char *line, *reason;
	} cases[] = {
		{"", "not JSON"},
		{"hello", "not JSON"},
		{"{\"type\":\"reply\"", "not JSON"},
		{"{\"type\":\"close\",\"thread\":1} {}", "not JSON"},
		{"{\"type\":\"close\",\"thread\":1,\"thread\":2}", "not JSON"},
		{"[\"reply\"]", "not a JSON object"},
		{"42", "not JSON"},
		{"{\"thread\":1}", "no \"type\""},
		{"{\"type\":7,\"thread\":1}", "no \"type\""},
		{"{\"type\":\"delete_everything\",\"thread\":1}", "unknown type \"delete_everything\""},
		{"{\"type\":\"Reply\",\"thread\":1,\"body\":\"x\"}", "unknown type"},
		{"{\"type\":\"close\"}", "\"thread\" must be"},
		{"{\"type\":\"close\",\"thread\":0}", "\"thread\" must be"},
		{"{\"type\":\"close\",\"thread\":-5}", "\"thread\" must be"},
		{"{\"type\":\"close\",\"thread\":1.5}", "\"thread\" must be"},
		{"{\"type\":\"close\",\"thread\":\"7\"}", "\"thread\" must be"},
		{"{\"type\":\"close\",\"thread\":99999999999999999999}", "not JSON"},
		{"{\"type\":\"reply\",\"thread\":1}", "\"body\" must be"},
		{"{\"type\":\"reply\",\"thread\":1,\"body\":\"\"}", "\"body\" must be"},
		{"{\"type\":\"reply\",\"thread\":1,\"body\":5}", "\"body\" must be"},
		{"{\"type\":\"reply\",\"thread\":1,\"body\":\"a\\u0000b\"}", "not JSON"},
		{"{\"type\":\"reply\",\"thread\":1,\"body\":\"\xFF\"}", "not JSON"},
		{"{\"type\":\"reply\",\"thread\":1,\"body\":\"\\ud800\"}", "not JSON"},
		{"{\"type\":\"handback\",\"thread\":1,\"to\":\"Ada\"}", "\"to\" must be"},
		{"{\"type\":\"handback\",\"thread\":1,\"to\":\"ab\"}", "\"to\" must be"},
		{"{\"type\":\"handback\",\"thread\":1,\"to\":\"a\\u0000bc\"}", "not JSON"},
		{"{\"type\":\"handback\",\"thread\":1,\"to\":3}", "\"to\" must be"},
		{"{\"type\":\"handback\",\"thread\":1,\"to\":\"abcdefghijabcdefghijabcdefghijabc\"}", "\"to\" must be"},
	};
	bot_action a;
	char err[200];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		TEST_EQ_INT(parse(cases[i].line, &a, err, sizeof(err)), -1);
		if (strstr(err, cases[i].reason) == NULL)
			fprintf(stderr, "# case %zu: reason \"%s\", expected \"%s\"\n", i, err, cases[i].reason);
		TEST_CHECK(strstr(err, cases[i].reason) != NULL);
	}
}

/* The body bound is exact: 8192 bytes pass, 8193 do not; a line over BOT_LINE_MAX is refused unread. */
static void test_parse_bounds(void)
{
	size_t cap = BOT_LINE_MAX + 64, n;
	char *line = malloc(cap), err[200];
	bot_action a;

	TEST_CHECK(line != NULL);
	if (line == NULL)
		return;
	n = (size_t)snprintf(line, cap, "{\"type\":\"reply\",\"thread\":1,\"body\":\"");
	memset(line + n, 'x', PARLEY_MESSAGE_MAX);
	memcpy(line + n + PARLEY_MESSAGE_MAX, "\"}", 3);
	TEST_EQ_INT(bot__parse_action(line, strlen(line), &a, err, sizeof(err)), 0);
	TEST_EQ_INT(a.body_len, PARLEY_MESSAGE_MAX);
	memset(line + n, 'x', PARLEY_MESSAGE_MAX + 1);
	memcpy(line + n + PARLEY_MESSAGE_MAX + 1, "\"}", 3);
	TEST_EQ_INT(bot__parse_action(line, strlen(line), &a, err, sizeof(err)), -1);
	TEST_CHECK(strstr(err, "\"body\" must be") != NULL);

	memset(line, ' ', BOT_LINE_MAX + 1);
	memcpy(line, "{\"type\":\"close\",\"thread\":1}", 27);
	TEST_EQ_INT(bot__parse_action(line, BOT_LINE_MAX, &a, err, sizeof(err)), 0);
	TEST_EQ_INT(bot__parse_action(line, BOT_LINE_MAX + 1, &a, err, sizeof(err)), -1);
	TEST_CHECK(strstr(err, "longer than") != NULL);
	free(line);
}

/* Random and mutated lines: never a crash, never an action that breaks the bounds. */
static void test_parse_garbage(void)
{
	static const char *seeds[] = {"{\"type\":\"reply\",\"thread\":1,\"body\":\"hi\"}",
				      "{\"type\":\"handback\",\"thread\":2,\"to\":\"admin\"}", "{\"type\":\"close\",\"thread\":3}"};
	char line[128], err[200];
	bot_action a;
	unsigned seed = 12345, i, j;
	int bad = 0;

	for (i = 0; i < 20000; i++) {
		size_t n;
		snprintf(line, sizeof(line), "%s", seeds[i % 3]);
		n = strlen(line);
		for (j = 0; j < 1 + i % 4; j++) {
			seed = seed * 1103515245u + 12345u;
			line[(seed >> 8) % n] = (char)(seed >> 16);
		}
		if (bot__parse_action(line, n, &a, err, sizeof(err)) == 0 &&
		    (a.thread == 0 || a.kind < BOT_ACTION_REPLY || a.kind > BOT_ACTION_CLOSE ||
		     a.body_len > PARLEY_MESSAGE_MAX || strlen(a.to) > PARLEY_HANDLE_MAX))
			bad++;
	}
	TEST_EQ_INT(bad, 0);
}

typedef struct seen {
	char lines[8][64];
	int too_long[8];
	unsigned long lineno[8];
	int n;
} seen;

static void on_line(void *user, unsigned long lineno, const char *line, size_t len, int too_long)
{
	seen *s = user;
	if (s->n >= 8)
		return;
	snprintf(s->lines[s->n], sizeof(s->lines[0]), "%.*s", (int)len, line != NULL ? line : "");
	s->too_long[s->n] = too_long;
	s->lineno[s->n] = lineno;
	s->n++;
}

static void test_lines(void)
{
	static bot_lines l; /* 64 KiB: not on the stack */
	seen s;
	char *big = malloc(BOT_LINE_MAX + 10);

	memset(&l, 0, sizeof(l));
	memset(&s, 0, sizeof(s));
	bot__lines_feed(&l, "ab", 2, on_line, &s);
	TEST_EQ_INT(s.n, 0);
	bot__lines_feed(&l, "c\r\nd\n\nef", 8, on_line, &s);
	TEST_EQ_INT(s.n, 3);
	TEST_EQ_STR(s.lines[0], "abc");
	TEST_EQ_STR(s.lines[1], "d");
	TEST_EQ_STR(s.lines[2], "");
	TEST_CHECK(big != NULL);
	if (big == NULL)
		return;
	/* a line of BOT_LINE_MAX + 1 bytes (with "ef" before it), in two pieces: reported once, skipped */
	memset(big, 'x', BOT_LINE_MAX + 10);
	bot__lines_feed(&l, big, BOT_LINE_MAX - 1, on_line, &s);
	TEST_EQ_INT(s.n, 3);
	bot__lines_feed(&l, big, 5, on_line, &s);
	bot__lines_feed(&l, "yy\nok\nlast", 10, on_line, &s);
	TEST_EQ_INT(s.n, 5);
	TEST_EQ_INT(s.too_long[3], 1);
	TEST_EQ_INT(s.lineno[3], 4);
	TEST_EQ_STR(s.lines[4], "ok");
	TEST_EQ_INT(s.too_long[4], 0);
	bot__lines_finish(&l, on_line, &s);
	TEST_EQ_INT(s.n, 6);
	TEST_EQ_STR(s.lines[5], "last");
	/* exactly BOT_LINE_MAX bytes is a line */
	memset(&s, 0, sizeof(s));
	big[BOT_LINE_MAX] = '\n';
	bot__lines_feed(&l, big, BOT_LINE_MAX + 1, on_line, &s);
	TEST_EQ_INT(s.n, 1);
	TEST_EQ_INT(s.too_long[0], 0);
	free(big);
}

/* HMAC-SHA256(secret, "TIMESTAMP.BODY"), checked against
 * printf '%s' '1700000000.{"type":"message","thread":7}' | openssl dgst -sha256 -hmac sekrit */
static void test_signature(void)
{
	static const char body[] = "{\"type\":\"message\",\"thread\":7}";
	char sig[BOT_SIGNATURE_LEN + 1];

	bot__sign((const uint8_t *)"sekrit", 6, "1700000000", body, strlen(body), sig);
	TEST_EQ_STR(sig, "sha256=be5c2388f8b23f730ad9bcccdcd733b01efa82b2ea9262c45670f46ca8a9570f");
	/* the timestamp is signed: the same body at another time has another signature */
	bot__sign((const uint8_t *)"sekrit", 6, "1700000001", body, strlen(body), sig);
	TEST_CHECK(strcmp(sig, "sha256=be5c2388f8b23f730ad9bcccdcd733b01efa82b2ea9262c45670f46ca8a9570f") != 0);
}

int main(void)
{
	TEST_RUN(test_event_message);
	TEST_RUN(test_event_text);
	TEST_RUN(test_event_others);
	TEST_RUN(test_parse_ok);
	TEST_RUN(test_parse_refused);
	TEST_RUN(test_parse_bounds);
	TEST_RUN(test_parse_garbage);
	TEST_RUN(test_lines);
	TEST_RUN(test_signature);
	TEST_EXIT();
}
