/* parley send | listen | safety-number (trust: cmd_trust.c) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define LISTEN_SLICE_MS 200   /* how often the loop looks at signals and deadlines */
#define RECONNECT_DELAY_MS 1000
#define MAX_PEER_DEVICES 64

/* ---- send ---- */

/* HH:MM:SS, local time, of a Unix time in ms. */
static void print_clock(uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[16];

	if (localtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%H:%M:%S", &tm) == 0)
		snprintf(buf, sizeof(buf), "--:--:--");
	fputs(buf, stdout);
}

/* The message from standard input: up to PARLEY_MESSAGE_MAX bytes, and one more byte means it is too
 * large (refused whole: cutting a message short would send something the user did not write). One
 * trailing newline, which `echo` and editors add, is not part of the message. */
static int read_stdin(cli_ctx *ctx, char *buf, size_t *len)
{
	size_t n = 0, r;

	if (isatty(STDIN_FILENO))
		fprintf(stderr, "parley: %s: type the message, then press Ctrl-D on a new line\n", ctx->command);
	do {
		r = fread(buf + n, 1, PARLEY_MESSAGE_MAX + 1 - n, stdin);
		n += r;
	} while (r != 0 && n <= PARLEY_MESSAGE_MAX);
	if (ferror(stdin)) {
		fprintf(stderr, "parley: %s: cannot read standard input: %s\n", ctx->command, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	if (n > PARLEY_MESSAGE_MAX) {
		fprintf(stderr,
			"parley: %s: the message on standard input is longer than %d bytes, the limit for one "
			"message; nothing was sent\n",
			ctx->command, PARLEY_MESSAGE_MAX);
		return CLI_EXIT_ERROR;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	*len = n;
	return CLI_EXIT_OK;
}

/* TEXT words joined with spaces, as `echo` would. */
static int join_words(cli_ctx *ctx, char **words, int n, char *buf, size_t *len)
{
	size_t k = 0;
	int i;

	for (i = 0; i < n; i++) {
		size_t w = strlen(words[i]);
		if (k + w + (i > 0) > PARLEY_MESSAGE_MAX)
			return cli_usage(ctx, "the message is longer than %d bytes, the limit for one message",
					 PARLEY_MESSAGE_MAX);
		if (i > 0)
			buf[k++] = ' ';
		memcpy(buf + k, words[i], w);
		k += w;
	}
	*len = k;
	return CLI_EXIT_OK;
}

/* --channel NAME: "webchat", "sms", "waba" or "byoc" (docs/channels.md) */
static int parse_channel(cli_ctx *ctx, const char *name, parley_channel *out)
{
	for (int ch = PARLEY_CHANNEL_WEBCHAT; ch <= PARLEY_CHANNEL_BYOC; ch++)
		if (strcmp(name, parley_channel_name(ch)) == 0) {
			*out = (parley_channel)ch;
			return CLI_EXIT_OK;
		}
	return cli_usage(ctx, "--channel: webchat, sms, waba or byoc, not '%s'", name);
}

/* A gateway's option pair (--channel NAME, --as USER) at argv[i], if it is one: *used = 2. */
static int channel_option(cli_ctx *ctx, int argc, char **argv, int i, parley_channel *channel, const char **as,
			  int *used)
{
	*used = 0;
	if (i + 1 >= argc || (strcmp(argv[i], "--channel") != 0 && strcmp(argv[i], "--as") != 0))
		return CLI_EXIT_OK;
	*used = 2;
	if (strcmp(argv[i], "--as") == 0) {
		*as = argv[i + 1];
		return CLI_EXIT_OK;
	}
	return parse_channel(ctx, argv[i + 1], channel);
}

int cmd_send(cli_ctx *ctx, int argc, char **argv)
{
	char text[PARLEY_MESSAGE_MAX + 2];
	const char *handle = NULL, *as = NULL;
	parley_channel channel = PARLEY_CHANNEL_NATIVE;
	uint64_t id = 0;
	size_t len = 0;
	parley_client *c;
	parley_err rc;
	int i, quiet = 0, used = 0, r, dashes = 0;

	/* Options come before the first TEXT word ("--" ends them), so a message may start with '-'. A
	 * gateway's --channel NAME --as USER may also close the line (`parley send ENTITY TEXT --channel
	 * sms --as +15551234567`), unless "--" came first. */
	for (i = 1; i < argc; i++) {
		if ((r = channel_option(ctx, argc, argv, i, &channel, &as, &used)) != CLI_EXIT_OK)
			return r;
		if (used > 0) {
			i += used - 1;
		} else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
			quiet = 1;
		} else if (strcmp(argv[i], "--") == 0) {
			dashes = 1;
			i++;
			if (handle == NULL && i < argc)
				handle = argv[i++];
			break;
		} else if (handle == NULL && argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage(ctx, "unknown option '%s'", argv[i]);
		} else if (handle == NULL) {
			handle = argv[i];
		} else {
			break;
		}
	}
	while (!dashes && argc - i >= 3) { /* the trailing pairs */
		if ((r = channel_option(ctx, argc, argv, argc - 2, &channel, &as, &used)) != CLI_EXIT_OK)
			return r;
		if (used == 0)
			break;
		argc -= 2;
	}
	if (handle == NULL || i >= argc)
		return cli_usage(ctx, handle == NULL ? "missing HANDLE and TEXT"
						     : "missing TEXT (or - to read it from standard input)");
	if ((channel != PARLEY_CHANNEL_NATIVE) != (as != NULL))
		return cli_usage(ctx, "--channel NAME and --as USER go together (a gateway's send)");
	if (argc - i == 1 && strcmp(argv[i], "-") == 0)
		rc = (parley_err)read_stdin(ctx, text, &len);
	else
		rc = (parley_err)join_words(ctx, argv + i, argc - i, text, &len);
	if (rc != CLI_EXIT_OK)
		return (int)rc;
	if (len == 0)
		return cli_usage(ctx, "the message is empty");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	/* an entity's handle: the message goes to this account's thread with it (opened if none) */
	parley_entity *ent = NULL;
	rc = parley_entity_get(c, handle, &ent);
	parley_entity_free(ent);
	if (rc == PARLEY_OK) {
		rc = as != NULL ? parley_thread_send_channel(c, handle, channel, as, (const uint8_t *)text, len, &id)
				: parley_thread_send_entity(c, handle, (const uint8_t *)text, len, &id);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		if (!quiet) {
			fputs("sent to ", stdout);
			cli_print_safe(handle);
			printf(" (thread #%llu)\n", (unsigned long long)id);
		}
		return CLI_EXIT_OK;
	}
	if (rc != PARLEY_E_NO_SUCH_ENTITY)
		return cli_fail(ctx, rc);
	if (as != NULL)
		return cli_usage(ctx, "--channel goes to an entity; %s is none", handle);
	rc = parley_send_bytes(c, handle, (const uint8_t *)text, len, &id);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	/* The same "HH:MM:SS (id N)" as the receipts `parley listen` prints for this message. */
	if (!quiet) {
		fputs("sent to ", stdout);
		cli_print_safe(handle);
		fputs(" at ", stdout);
		print_clock(id);
		printf(" (id %llu)\n", (unsigned long long)id);
	}
	return CLI_EXIT_OK;
}

/* ---- listen ---- */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

typedef struct listen_state {
	cli_ctx *ctx;
	long count;      /* messages to show before exiting; 0 = no limit */
	long shown;
	int disconnected;
	int connecting;
	parley_err last_err;
	char why[256];   /* the library's one-line reason for the last loss */
	char hinted[PARLEY_HANDLE_MAX + 1]; /* the last sender told about message requests */
	/* (handle, device) already warned about a changed key: a stranger's hundred forged messages
	 * make one warning, not a hundred */
	char warned[16][PARLEY_HANDLE_MAX + 1];
	uint32_t warned_dev[16];
	unsigned nwarned;
} listen_state;

static void note_loss(listen_state *ls, parley_client *c, parley_err err)
{
	ls->disconnected = 1;
	ls->last_err = err;
	snprintf(ls->why, sizeof(ls->why), "%s", parley_client_errmsg(c));
}

/* The time at the start of each line of listen's output. */
static void print_time(uint64_t ms)
{
	print_clock(ms);
	putchar(' ');
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One more message shown (a pairwise one or a thread's): --count may end the listen. */
static void shown_one(parley_client *c, void *user)
{
	listen_state *ls = user;

	ls->shown++;
	if (ls->count > 0 && ls->shown >= ls->count) {
		/* Stop taking messages now: the rest stay on the server for the next listen. */
		parley_client_set_events(c, NULL);
		parley_client_stop(c);
	}
}

static void ev_message(parley_client *c, const parley_message *m, void *user)
{
	listen_state *ls = user;

	print_time(m->timestamp_ms);
	cli_print_safe(m->sender);
	if (m->destination != NULL) {
		fputs(" -> ", stdout);
		cli_print_safe(m->destination);
	}
	fputs(": ", stdout);
	cli_write_safe(stdout, m->body, m->body_len);
	putchar('\n');
	/* Once per sender and listen: why this sender gets no receipts, and what to do about it. */
	if (m->request && strcmp(ls->hinted, m->sender) != 0) {
		char h[PARLEY_HANDLE_MAX + 1];
		cli_safe_handle(m->sender, h);
		printf("  (a message request: %s gets no receipts, presence or typing from you until you reply or "
		       "run: parley accept %s)\n", h, h);
		snprintf(ls->hinted, sizeof(ls->hinted), "%s", m->sender);
	}
	fflush(stdout);
	/* Shown on the terminal = read. */
	if (m->destination == NULL)
		parley_mark_read(c, m->sender, &m->timestamp_ms, 1);
	shown_one(c, ls);
}

static void ev_receipt(parley_client *c, const char *handle, uint32_t device, parley_receipt_kind kind,
		       const uint64_t *ts, size_t n, void *user)
{
	size_t i;
	for (i = 0; i < n; i++) {
		print_time(now_ms());
		cli_print_safe(handle);
		printf(" %s your message of ", kind == PARLEY_RECEIPT_READ ? "read" : "delivered");
		print_clock(ts[i]);
		printf(" (id %llu)\n", (unsigned long long)ts[i]);
	}
	fflush(stdout);
}

static void ev_typing(parley_client *c, const char *handle, uint32_t device, int started, void *user)
{
	if (!started)
		return;
	print_time(now_ms());
	cli_print_safe(handle);
	fputs(" is typing...\n", stdout);
	fflush(stdout);
}

static void ev_presence(parley_client *c, const char *handle, int online, void *user)
{
	print_time(now_ms());
	cli_print_safe(handle);
	printf(" is %s\n", online ? "online" : "offline");
	fflush(stdout);
}

/* A peer's (or this account's) signed device list changed: say so, as a messenger does. */
static void ev_devices_changed(parley_client *c, const char *from, uint64_t version, size_t added, size_t removed,
			       void *user)
{
	char buf[PARLEY_HANDLE_MAX + 1];
	const char *handle = cli_safe_handle(from, buf);
	if (added > 0)
		printf("* %s linked %zu new device%s (device list version %llu)\n", handle, added, added == 1 ? "" : "s",
		       (unsigned long long)version);
	if (removed > 0)
		printf("* %s removed %zu device%s (device list version %llu)\n", handle, removed,
		       removed == 1 ? "" : "s", (unsigned long long)version);
	fflush(stdout);
}

static void ev_identity(parley_client *c, const char *from, uint32_t device, void *user)
{
	listen_state *ls = user;
	char buf[PARLEY_HANDLE_MAX + 1];
	const char *handle = cli_safe_handle(from, buf);

	for (unsigned i = 0; i < ls->nwarned; i++)
		if (ls->warned_dev[i] == device && strcmp(ls->warned[i], handle) == 0)
			return;
	if (ls->nwarned < sizeof(ls->warned) / sizeof(ls->warned[0])) {
		snprintf(ls->warned[ls->nwarned], sizeof(ls->warned[0]), "%s", handle);
		ls->warned_dev[ls->nwarned++] = device;
	}
	fprintf(stderr,
		"parley: %s: WARNING: the identity key of %s (device %u) has CHANGED.\n"
		"  Someone may be intercepting the conversation, or %s reinstalled parley.\n"
		"  Its messages are held aside (parley quarantine). Compare the safety number with %s in\n"
		"  person:  parley safety-number %s\n"
		"  and only if it matches, accept the new key with:  parley trust %s\n",
		ls->ctx->command, handle, (unsigned)device, handle, handle, handle, handle);
}

static void ev_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	listen_state *ls = user;
	char buf[PARLEY_HANDLE_MAX + 1];

	fprintf(stderr, "parley: %s: a message from %s (device %u) could not be read: %s (%s)\n", ls->ctx->command,
		cli_safe_handle(handle, buf), (unsigned)device, parley_strerror(err), parley_errname(err));
}

static void ev_disconnect(parley_client *c, parley_err err, void *user)
{
	note_loss(user, c, err);
}

static void on_connected(parley_client *c, parley_err status, void *user)
{
	listen_state *ls = user;
	ls->connecting = 0;
	if (status != PARLEY_OK)
		note_loss(ls, c, status);
}

int cmd_listen(cli_ctx *ctx, int argc, char **argv)
{
	struct sigaction sa;
	listen_state ls;
	parley_events ev;
	parley_client *c;
	parley_err rc;
	long timeout_s = 0;
	unsigned long long n;
	int open_urls = 0;
	uint64_t deadline = 0, retry_at = 0;
	int i;

	memset(&ls, 0, sizeof(ls));
	ls.ctx = ctx;
	for (i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if ((strcmp(opt, "--count") == 0 || strcmp(opt, "--timeout") == 0) && i + 1 >= argc)
			return cli_usage(ctx, "%s needs a value", opt);
		if (strcmp(opt, "--count") == 0) {
			if (cli_parse_number(argv[++i], 1000000000u, &n) != 0)
				return cli_usage(ctx, "--count: expected a positive number, got '%s'", argv[i]);
			ls.count = (long)n;
		} else if (strcmp(opt, "--open") == 0) {
			open_urls = 1;
		} else if (strcmp(opt, "--timeout") == 0) {
			if (cli_parse_number(argv[++i], 31536000u, &n) != 0)
				return cli_usage(ctx, "--timeout: expected seconds (1 or more), got '%s'", argv[i]);
			timeout_s = (long)n;
		} else {
			return cli_usage(ctx, "unexpected argument '%s'", opt);
		}
	}
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (timeout_s > 0)
		deadline = now_ms() + (uint64_t)timeout_s * 1000u;

	memset(&ev, 0, sizeof(ev));
	ev.on_message = ev_message;
	ev.on_receipt = ev_receipt;
	ev.on_typing = ev_typing;
	ev.on_presence = ev_presence;
	ev.on_identity_changed = ev_identity;
	ev.on_error = ev_error;
	ev.on_disconnect = ev_disconnect;
	ev.on_devices_changed = ev_devices_changed;
	ev.on_entity_join_requested = cli_ev_join_requested;
	ev.on_entity_staff_changed = cli_ev_staff_changed;
	ev.on_entity_join_decided = cli_ev_join_decided;
	ev.on_keys_moved = cli_ev_keys_moved;
	ev.user = &ls;
	parley_client_set_events(c, &ev);
	cli_listen_threads(c, shown_one, &ls);
	cli_listen_auth(c, open_urls);
	rc = parley_connect(c);
	if (rc != PARLEY_OK) {
		parley_client_set_events(c, NULL);
		return cli_fail(ctx, rc);
	}
	ls.disconnected = 0;
	/* Someone trying it out sees a silent terminal otherwise and may think it hangs. */
	if (ls.count == 0 && timeout_s == 0 && isatty(STDERR_FILENO))
		fprintf(stderr, "parley: %s: waiting for messages; press Ctrl-C to stop\n", ctx->command);
	while (!got_signal && (ls.count == 0 || ls.shown < ls.count)) {
		uint64_t now = now_ms();
		if (deadline != 0 && now >= deadline)
			break;
		if (ls.disconnected && !ls.connecting && now >= retry_at) {
			/* The server went away: keep listening, as a chat client would. */
			/* the library's reason names the cause (lost without a close frame, refused, ...);
			 * it comes from the network, so it is printed through the terminal-safe filter */
			fprintf(stderr, "parley: %s: ", ctx->command);
			const char *why = ls.why[0] ? ls.why : parley_strerror(ls.last_err);
			cli_write_safe(stderr, why, strlen(why));
			fprintf(stderr, "; reconnecting\n");
			retry_at = now + RECONNECT_DELAY_MS;
			ls.disconnected = 0;
			ls.connecting = parley_connect_start(c, on_connected, &ls) == PARLEY_OK;
			if (!ls.connecting)
				ls.disconnected = 1;
			continue;
		}
		if (ls.disconnected && retry_at == 0)
			retry_at = now; /* first loss: retry at once */
		parley_client_run(c, LISTEN_SLICE_MS);
	}
	/* Stop taking messages, then send what is owed for those shown (acks, receipts). */
	parley_client_set_events(c, NULL);
	parley_client_run(c, 0);
	if (got_signal)
		return CLI_EXIT_OK;
	if (ls.count > 0 && ls.shown < ls.count) {
		fprintf(stderr, "parley: %s: timed out after %ld s with %ld of %ld messages\n", ctx->command, timeout_s,
			ls.shown, ls.count);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* ---- safety numbers ---- */

void cli_print_digits(const char *d)
{
	int i;
	for (i = 0; i < PARLEY_SAFETY_NUMBER_LEN; i += 5)
		printf("%.5s%s", d + i, i + 5 < PARLEY_SAFETY_NUMBER_LEN ? " " : "\n");
}

int cmd_safety_number(cli_ctx *ctx, int argc, char **argv)
{
	char digits[MAX_PEER_DEVICES][PARLEY_SAFETY_NUMBER_LEN + 1];
	uint32_t devs[MAX_PEER_DEVICES];
	int changed[MAX_PEER_DEVICES];
	const char *handle = NULL;
	parley_client *c;
	parley_err rc;
	size_t i, n;
	int accept = 0, any_changed = 0;

	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--accept") == 0)
			accept = 1;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return cli_usage(ctx, "unknown option '%s'", argv[i]);
		else if (handle == NULL)
			handle = argv[i];
		else
			return cli_usage(ctx, "unexpected argument '%s'", argv[i]);
	}
	if (handle == NULL)
		return cli_usage(ctx, "missing HANDLE");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	for (n = 0; n < MAX_PEER_DEVICES; n++) {
		rc = parley_safety_number(c, handle, n, &devs[n], &changed[n], digits[n]);
		if (rc == PARLEY_E_NOT_FOUND && n > 0)
			break;
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		any_changed |= changed[n];
	}
	for (i = 0; i < n; i++) {
		/* One device (the usual case): just the number, as Signal shows it. */
		if (n > 1 || changed[i])
			printf("device %u%s: ", (unsigned)devs[i], changed[i] ? " (NEW KEY)" : "");
		cli_print_digits(digits[i]);
	}
	if (accept)
		return cli_trust(ctx, c, handle);
	if (any_changed)
		fprintf(stderr,
			"parley: %s: the identity key of %s has CHANGED. Compare this number with %s, then accept\n"
			"  it with: parley trust %s  (or parley safety-number --accept %s)\n",
			ctx->command, handle, handle, handle, handle);
	return CLI_EXIT_OK;
}
