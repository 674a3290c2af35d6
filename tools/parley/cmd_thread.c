/* parley threads / parley thread: business threads (docs/threads.md) through <parley/thread.h>, and the
 * thread lines of `parley listen`. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define THREADS_LIST_MAX 100
#define SHOW_DEFAULT 20
#define SHOW_MAX 1000

static const char *status_name(parley_thread_status s)
{
	switch (s) {
	case PARLEY_THREAD_OPEN:
		return "open";
	case PARLEY_THREAD_LOCKED:
		return "locked";
	case PARLEY_THREAD_CLOSED:
		return "closed";
	default:
		return "?";
	}
}

static const char *change_name(int kind)
{
	static const char *const names[] = {"?",      "opened",   "member added", "member removed", "handling agent set",
					    "locked", "unlocked", "closed",       "handed back"};
	return kind >= 1 && kind <= 8 ? names[kind] : names[0];
}

static void clock_of(uint64_t ms, char out[16])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL || strftime(out, 16, "%H:%M:%S", &tm) == 0)
		snprintf(out, 16, "--:--:--");
}

/* ---- parley listen ---- */

static cli_thread_counted_fn counted_fn;

static void ev_thread_message(parley_client *c, const parley_thread_message *m, void *user)
{
	char when[16], h[PARLEY_HANDLE_MAX + 1];

	clock_of(m->timestamp_ms, when);
	printf("%s #%llu %s: ", when, (unsigned long long)m->thread_id, cli_safe_handle(m->sender, h));
	if (m->payment)
		fputs("[payment request] ", stdout);
	cli_write_safe(stdout, m->body, m->body_len);
	putchar('\n');
	fflush(stdout);
	if (counted_fn != NULL)
		counted_fn(c, user);
}

static void ev_thread_changed(parley_client *c, const parley_thread_change *ch, void *user)
{
	char a[PARLEY_HANDLE_MAX + 1], s[PARLEY_HANDLE_MAX + 1];

	printf("#%llu %s: %s", (unsigned long long)ch->thread_id, cli_safe_handle(ch->entity, a), change_name(ch->kind));
	if (ch->subject[0] != '\0')
		printf(" %s", cli_safe_handle(ch->subject, s));
	if (ch->actor[0] != '\0')
		printf(" (by %s)", cli_safe_handle(ch->actor, a));
	if (ch->removed_self)
		fputs(": you were removed", stdout);
	putchar('\n');
	fflush(stdout);
}

void cli_listen_threads(parley_client *c, cli_thread_counted_fn counted, void *user)
{
	parley_thread_events tev;

	counted_fn = counted;
	memset(&tev, 0, sizeof(tev));
	tev.on_thread_message = ev_thread_message;
	tev.on_thread_changed = ev_thread_changed;
	tev.on_thread_forwarded = cli_on_forwarded;
	tev.user = user;
	parley_thread_set_events(c, &tev);
}

/* ---- channel threads (docs/channels.md) ---- */

/* "sms +15551234567 via acme-gw, E2E ends at the gateway, channel-verified" (a verified gateway), or
 * an unverified channel: the library leaves the number and the gateway out unless this device's
 * verified staff list names the thread's customer account as a gateway of the entity. Native: "".
 * The number is the one the gateway signed; "DISPUTED" first when the server said another. */
static void print_channel(const parley_thread_info *t, const char *sep)
{
	char h[PARLEY_HANDLE_MAX + 1];

	if (t->channel == PARLEY_CHANNEL_NATIVE && t->verification == PARLEY_VERIFICATION_UNVERIFIED &&
	    !t->channel_disputed)
		return;
	fputs(sep, stdout);
	/* the server described the thread otherwise than its signed OPEN: what follows is the signed one */
	if (t->channel_disputed)
		fputs("DISPUTED (the server named another channel customer than the signed one), ", stdout);
	if (t->channel != PARLEY_CHANNEL_NATIVE && t->gateway_verified) {
		printf("%s ", parley_channel_name((int)t->channel));
		cli_print_safe(t->channel_user);
		printf(" via %s, E2E ends at the gateway, ", cli_safe_handle(t->gateway, h));
	} else if (t->channel != PARLEY_CHANNEL_NATIVE) {
		printf("%s, unverified channel (its gateway is not in the verified staff list), E2E ends at a gateway, ",
		       parley_channel_name((int)t->channel));
	}
	fputs(parley_verification_name((int)t->verification), stdout);
	if (t->verification == PARLEY_VERIFICATION_AUTHENTICATED) {
		time_t until = (time_t)(t->verified_until_ms / 1000);
		struct tm tm;
		char when[32];
		if (localtime_r(&until, &tm) == NULL || strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm) == 0)
			snprintf(when, sizeof when, "?");
		printf(" until %s", when);
		if (t->verified_by[0] != '\0') {
			fputs(" by ", stdout);
			cli_print_safe(t->verified_by);
		}
	}
}

/* ---- parley threads ---- */

int cmd_threads(cli_ctx *ctx, int argc, char **argv)
{
	static parley_thread_info t[THREADS_LIST_MAX];
	const char *entity = NULL;
	char h1[PARLEY_HANDLE_MAX + 1], h2[PARLEY_HANDLE_MAX + 1];
	size_t n = 0;
	parley_client *c;
	parley_err rc;

	if (argc > 2)
		return cli_usage(ctx, "unexpected argument '%s'", argv[2]);
	if (argc == 2)
		entity = argv[1];
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = parley_thread_list(c, entity, t, THREADS_LIST_MAX, &n);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	for (size_t i = 0; i < n; i++) {
		printf("#%llu\t", (unsigned long long)t[i].thread_id);
		cli_print_safe(t[i].entity_name[0] ? t[i].entity_name : t[i].entity);
		printf("\t%s\t%s\t%s\tunread %u", cli_safe_handle(t[i].customer, h1), status_name(t[i].status),
		       t[i].handling_agent[0] ? cli_safe_handle(t[i].handling_agent, h2) : "-", t[i].unread);
		print_channel(&t[i], "\t");
		putchar('\n');
	}
	return CLI_EXIT_OK;
}

/* ---- parley thread SUBCOMMAND ---- */

static int parse_id(cli_ctx *ctx, const char *s, uint64_t *id)
{
	unsigned long long v = 0;
	if (s[0] == '#')
		s++;
	if (cli_parse_number(s, UINT64_MAX, &v) != 0)
		return cli_usage(ctx, "'%s' is no thread id", s);
	*id = v;
	return CLI_EXIT_OK;
}

static int thread_show(cli_ctx *ctx, parley_client *c, uint64_t id, int argc, char **argv)
{
	static parley_history_entry e[SHOW_MAX];
	unsigned long long limit = SHOW_DEFAULT;
	char when[16], h[PARLEY_HANDLE_MAX + 1];
	size_t n = 0;
	parley_err rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (cli_parse_number(argv[++i], SHOW_MAX, &limit) != 0)
				return cli_usage(ctx, "--limit takes a number from 1 to %d", SHOW_MAX);
		} else {
			return cli_usage(ctx, "unexpected argument '%s'", argv[i]);
		}
	}
	/* a channel thread (or a verified customer) says so first; a native one prints its history only */
	parley_thread_info info;
	if (parley_thread_get(c, id, &info) == PARLEY_OK &&
	    (info.channel != PARLEY_CHANNEL_NATIVE || info.verification != PARLEY_VERIFICATION_UNVERIFIED)) {
		printf("#%llu", (unsigned long long)id);
		print_channel(&info, " ");
		putchar('\n');
	}
	rc = parley_thread_history(c, id, 0, (size_t)limit, e, &n);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	for (size_t i = n; i-- > 0;) { /* newest first from the library; oldest first on screen */
		clock_of(e[i].server_timestamp_ms, when);
		printf("%s %s: ", when, cli_safe_handle(e[i].sender, h));
		cli_write_safe(stdout, e[i].body, e[i].body_len);
		putchar('\n');
	}
	parley_history_entries_free(e, n);
	rc = parley_thread_mark_read(c, id);
	return rc == PARLEY_OK ? CLI_EXIT_OK : cli_fail(ctx, rc);
}

static int thread_send(cli_ctx *ctx, parley_client *c, uint64_t id, int argc, char **argv)
{
	char text[PARLEY_MESSAGE_MAX + 1];
	size_t len = 0;
	unsigned flags = 0;
	parley_err rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--payment") == 0) {
			flags |= PARLEY_THREAD_SEND_PAYMENT;
			continue;
		}
		size_t l = strlen(argv[i]);
		if (len + (len ? 1 : 0) + l > PARLEY_MESSAGE_MAX)
			return cli_usage(ctx, "the message is longer than %d bytes", PARLEY_MESSAGE_MAX);
		if (len)
			text[len++] = ' ';
		memcpy(text + len, argv[i], l);
		len += l;
	}
	if (len == 0)
		return cli_usage(ctx, "missing TEXT");
	rc = parley_thread_send(c, id, (const uint8_t *)text, len, flags);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("sent to #%llu\n", (unsigned long long)id);
	return CLI_EXIT_OK;
}

int cmd_thread(cli_ctx *ctx, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	parley_client *c;
	uint64_t id = 0;
	parley_err rc;
	int r;

	if (sub == NULL || argc < 3)
		return cli_usage(ctx, "expected: thread show|send|open|add|remove|lock|unlock|close|handback|forward|auth ...");
	if (strcmp(sub, "forward") == 0)
		return cli_thread_forward(ctx, argc - 1, argv + 1);
	if (strcmp(sub, "auth") == 0)
		return cli_thread_auth(ctx, argc - 1, argv + 1);
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	if (strcmp(sub, "open") == 0) {
		if (argc != 4)
			return cli_usage(ctx, "expected: thread open ENTITY CUSTOMER");
		rc = parley_thread_open(c, argv[2], argv[3], &id);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		printf("#%llu\n", (unsigned long long)id);
		return CLI_EXIT_OK;
	}
	if ((r = parse_id(ctx, argv[2], &id)) != CLI_EXIT_OK)
		return r;
	if (strcmp(sub, "show") == 0)
		return thread_show(ctx, c, id, argc - 3, argv + 3);
	if (strcmp(sub, "send") == 0)
		return thread_send(ctx, c, id, argc - 3, argv + 3);
	if ((strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0) && argc == 4)
		rc = sub[0] == 'a' ? parley_thread_add(c, id, argv[3]) : parley_thread_remove(c, id, argv[3]);
	else if ((strcmp(sub, "lock") == 0 || strcmp(sub, "unlock") == 0) && argc == 3)
		rc = parley_thread_lock(c, id, sub[0] == 'l');
	else if (strcmp(sub, "close") == 0 && argc == 3)
		rc = parley_thread_close(c, id);
	else if (strcmp(sub, "handback") == 0 && (argc == 3 || argc == 4))
		rc = parley_thread_handback(c, id, argc == 4 ? argv[3] : NULL);
	else
		return cli_usage(ctx, "unknown or incomplete subcommand '%s'", sub);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("#%llu: done\n", (unsigned long long)id);
	return CLI_EXIT_OK;
}
