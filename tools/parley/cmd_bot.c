/* `parley bot`: an account (a bot or agent of an entity) driven by a program over JSON lines
 * (--exec) or by an HTTP endpoint (--webhook). docs/bots.md has the schema and the examples.
 *
 * One thread does everything: slices of the client's loop (parley_client_run, BOT_SLICE_MS) alternate
 * with waits on the program's pipes (poll) or on the webhook's sockets (libcurl multi), so nothing
 * spins and neither side starves the other.
 *
 * Events (thread messages, changes, forwards) are turned into lines and queued; the library
 * acknowledges an event to the server once its callback returned, i.e. once it is queued here.
 * Backpressure: a program that does not read, or an endpoint that is slow, must not make the bot grow
 * without bound. Beyond QUEUE_HIGH events (or QUEUE_HIGH_BYTES) the bot stops receiving (the
 * server keeps the rest, unacknowledged); once the queue is down to QUEUE_LOW it receives again, on a
 * new connection (the server pushes a backlog once per connection). Actions are bounded the same way:
 * while ACTIONS_MAX are in flight, no more lines are read from the program (and no more events are
 * posted to the endpoint), so its own writes block instead.
 *
 * Ending: the program exiting ends the bot with its exit status (its last actions are carried out
 * first). SIGTERM or SIGINT stop receiving, hand the queued events to the program for a moment, close
 * its input (a program should exit at end of input), carry out what it answered, and send every
 * acknowledgement owed; events the program never read are lost to it but kept in the bot's local
 * history (parley thread show).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "bot.h"
#include "cli.h"

#define BOT_SLICE_MS 50
#define QUEUE_HIGH 64
#define QUEUE_HIGH_BYTES (4u * 1024 * 1024)
#define QUEUE_LOW 16
#define ACTIONS_MAX 32
#define RECONNECT_DELAY_MS 1000
#define DRAIN_MS 2000      /* after a signal: time to hand the program what is queued */
#define CHILD_GRACE_MS 5000 /* then: time for it to exit at end of input */
#define SECRET_MAX 4096

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

typedef struct bot_event {
	struct bot_event *next;
	size_t len, off; /* off: bytes already written to the program */
	uint64_t thread;
	char *line;
} bot_event;

typedef struct bot_state {
	cli_ctx *ctx;
	parley_client *c;
	char self[PARLEY_HANDLE_MAX + 1];
	parley_events ev;
	parley_thread_events tev;
	/* the queue of event lines */
	bot_event *head, *tail;
	size_t queued, queued_bytes;
	int paused;
	/* the connection */
	int disconnected, connecting;
	uint64_t retry_at;
	unsigned inflight; /* actions started and not completed */
	/* one of the two sinks */
	int exec;
	bot_child child;
	bot_webhook *hook;
	bot_lines lines; /* the program's output, or one response */
} bot_state;

/* ---- the queue ---- */

/* line: an event line from bot_json.c (NUL-terminated, no NUL inside: JSON escapes it), or NULL. */
static void push(bot_state *st, char *line, uint64_t thread)
{
	bot_event *e;

	if (line == NULL || (e = calloc(1, sizeof(*e))) == NULL) {
		free(line);
		fprintf(stderr, "parley: %s: out of memory: an event of thread %llu was dropped\n", st->ctx->command,
			(unsigned long long)thread);
		return;
	}
	e->line = line;
	e->len = strlen(line);
	e->thread = thread;
	if (st->tail != NULL)
		st->tail->next = e;
	else
		st->head = e;
	st->tail = e;
	st->queued++;
	st->queued_bytes += e->len;
	if (!st->paused && (st->queued >= QUEUE_HIGH || st->queued_bytes >= QUEUE_HIGH_BYTES)) {
		/* stop receiving now, from inside the callback: nothing more is handed to us (or
		 * acknowledged) until the queue drains */
		st->paused = 1;
		parley_client_set_events(st->c, NULL);
	}
}

static void pop(bot_state *st)
{
	bot_event *e = st->head;

	if (e == NULL)
		return;
	st->head = e->next;
	if (st->head == NULL)
		st->tail = NULL;
	st->queued--;
	st->queued_bytes -= e->len;
	free(e->line);
	free(e);
}

static void push_error(bot_state *st, uint64_t thread, parley_err err, const char *detail)
{
	char msg[512];
	size_t len = 0;
	char *line;

	if (detail != NULL && detail[0] != '\0' && strcmp(detail, parley_strerror(err)) != 0)
		snprintf(msg, sizeof(msg), "%s: %s", parley_strerror(err), detail);
	else
		snprintf(msg, sizeof(msg), "%s", parley_strerror(err));
	line = bot__event_error(thread, err, msg, &len);
	push(st, line, thread);
}

/* ---- events from the client ---- */

static void ev_thread_message(parley_client *c, const parley_thread_message *m, void *user)
{
	bot_state *st = user;
	size_t len = 0;

	/* its own messages (copies from another device of this account) would make a program answer
	 * itself */
	if (m->sender != NULL && strcmp(m->sender, st->self) == 0)
		return;
	push(st, bot__event_message(m, &len), m->thread_id);
}

static void ev_thread_changed(parley_client *c, const parley_thread_change *ch, void *user)
{
	bot_state *st = user;
	size_t len = 0;
	push(st, bot__event_changed(ch, &len), ch->thread_id);
}

static void ev_thread_forwarded(parley_client *c, const parley_thread_forwarded *f, void *user)
{
	bot_state *st = user;
	size_t len = 0;
	push(st, bot__event_forwarded(f, &len), f->thread_id);
}

/* Receiving needs on_message; a bot answers threads, so a direct message is only noted. */
static void ev_message(parley_client *c, const parley_message *m, void *user)
{
	bot_state *st = user;
	char h[PARLEY_HANDLE_MAX + 1];

	if (m->destination == NULL)
		fprintf(stderr, "parley: %s: a direct message from %s was not passed on (bots answer threads)\n",
			st->ctx->command, cli_safe_handle(m->sender, h));
}

static void ev_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	bot_state *st = user;
	char h[PARLEY_HANDLE_MAX + 1];

	const char *detail = parley_client_errmsg(c);

	fprintf(stderr, "parley: %s: a message from %s device %u: %s (%s)", st->ctx->command,
		cli_safe_handle(handle != NULL ? handle : "?", h), device, parley_strerror(err), parley_errname(err));
	if (detail[0] != '\0') {
		fputs(": ", stderr);
		cli_write_safe(stderr, detail, strlen(detail));
	}
	fputc('\n', stderr);
}

static void ev_disconnect(parley_client *c, parley_err err, void *user)
{
	bot_state *st = user;

	if (!st->disconnected) /* else: our own, to receive again after a pause */
		fprintf(stderr, "parley: %s: connection lost (%s); reconnecting\n", st->ctx->command,
			parley_errname(err));
	st->disconnected = 1;
}

static void on_connected(parley_client *c, parley_err status, void *user)
{
	bot_state *st = user;

	st->connecting = 0;
	if (status != PARLEY_OK)
		st->disconnected = 1;
}

static void start_receiving(bot_state *st)
{
	parley_thread_set_events(st->c, &st->tev);
	parley_client_set_events(st->c, &st->ev);
}

/* Reconnects after a loss, and receives again once a paused queue drained. */
static void keep_connected(bot_state *st)
{
	uint64_t now = bot__mono_ms();

	/* (not while actions are in flight: disconnecting fails them with PARLEY_E_CLOSED) */
	if (st->paused && st->queued <= QUEUE_LOW && st->inflight == 0) {
		st->paused = 0;
		start_receiving(st);
		/* what the server pushed while we did not receive comes again on a new connection */
		st->disconnected = 1;
		st->retry_at = 0;
		parley_client_disconnect(st->c);
	}
	if (!st->disconnected || st->connecting || now < st->retry_at)
		return;
	st->disconnected = 0;
	st->retry_at = now + RECONNECT_DELAY_MS;
	st->connecting = parley_connect_start(st->c, on_connected, st) == PARLEY_OK;
	if (!st->connecting)
		st->disconnected = 1;
}

/* ---- actions from the program or the endpoint ---- */

typedef struct action_ctx {
	bot_state *st;
	uint64_t thread;
} action_ctx;

static void on_action_done(parley_client *c, parley_err status, void *user)
{
	action_ctx *a = user;
	bot_state *st = a->st;

	st->inflight--;
	if (status != PARLEY_OK)
		push_error(st, a->thread, status, parley_client_errmsg(c));
	free(a);
}

static void start_action(bot_state *st, const bot_action *act)
{
	action_ctx *a = malloc(sizeof(*a));
	parley_err rc;

	if (a == NULL) {
		push_error(st, act->thread, PARLEY_E_NOMEM, NULL);
		return;
	}
	a->st = st;
	a->thread = act->thread;
	switch (act->kind) {
	case BOT_ACTION_REPLY:
		rc = parley_thread_send_start(st->c, act->thread, act->body, act->body_len, 0, on_action_done, a);
		break;
	case BOT_ACTION_HANDBACK:
		rc = parley_thread_handback_start(st->c, act->thread, act->to[0] != '\0' ? act->to : NULL,
						  on_action_done, a);
		break;
	default:
		rc = parley_thread_close_start(st->c, act->thread, on_action_done, a);
		break;
	}
	if (rc != PARLEY_OK) {
		/* refused before anything was queued: the callback will not run */
		free(a);
		push_error(st, act->thread, rc, parley_client_errmsg(st->c));
		return;
	}
	st->inflight++;
}

static void on_line(void *user, unsigned long lineno, const char *line, size_t len, int too_long)
{
	bot_state *st = user;
	static bot_action act; /* 8 KiB: not on the stack of a callback */
	char err[256];

	if (too_long) {
		fprintf(stderr, "parley: %s: %s line %lu: longer than %d bytes: ignored\n", st->ctx->command,
			st->exec ? "program" : "response", lineno, BOT_LINE_MAX);
		return;
	}
	if (len == 0)
		return; /* blank lines are allowed (a response may end with one) */
	if (bot__parse_action(line, len, &act, err, sizeof(err)) != 0) {
		fprintf(stderr, "parley: %s: %s line %lu refused: ", st->ctx->command, st->exec ? "program" : "response",
			lineno);
		cli_write_safe(stderr, err, strlen(err));
		fputc('\n', stderr);
		return;
	}
	start_action(st, &act);
}

/* ---- --exec ---- */

/* Hands queued lines to the program and reads its actions; waits at most wait_ms. */
static void pump_child(bot_state *st, unsigned wait_ms)
{
	static char buf[16384];
	int can_write, can_read;
	long n;

	bot__child_wait(&st->child, st->head != NULL, st->inflight < ACTIONS_MAX, wait_ms, &can_write, &can_read);
	while (can_write && st->head != NULL) {
		bot_event *e = st->head;
		n = bot__child_write(&st->child, e->line + e->off, e->len - e->off);
		if (n < 0) {
			fprintf(stderr, "parley: %s: the program closed its standard input; events are not passed on\n",
				st->ctx->command);
			while (st->head != NULL)
				pop(st);
			break;
		}
		if (n == 0)
			break;
		e->off += (size_t)n;
		if (e->off == e->len)
			pop(st);
	}
	if (st->child.to_fd < 0) /* closed: whatever comes is not passed on */
		while (st->head != NULL)
			pop(st);
	while (can_read && st->inflight < ACTIONS_MAX) {
		n = bot__child_read(&st->child, buf, sizeof(buf));
		if (n < 0) {
			bot__lines_finish(&st->lines, on_line, st);
			break;
		}
		if (n == 0)
			break;
		bot__lines_feed(&st->lines, buf, (size_t)n, on_line, st);
	}
}

static int run_exec(bot_state *st, char *const argv[], uint64_t deadline)
{
	char err[256];
	uint64_t until;

	if (bot__child_spawn(&st->child, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "parley: %s: %s\n", st->ctx->command, err);
		return CLI_EXIT_ERROR;
	}
	while (!got_signal && !bot__child_reap(&st->child) && (deadline == 0 || bot__mono_ms() < deadline)) {
		keep_connected(st);
		parley_client_run(st->c, BOT_SLICE_MS);
		pump_child(st, BOT_SLICE_MS);
	}
	/* stop receiving: what was handled is acknowledged; nothing new comes in */
	parley_client_set_events(st->c, NULL);
	if (!st->child.exited) {
		for (until = bot__mono_ms() + DRAIN_MS; st->head != NULL && bot__mono_ms() < until;) {
			parley_client_run(st->c, 10);
			pump_child(st, 10);
		}
		bot__child_close_input(&st->child);
		for (until = bot__mono_ms() + CHILD_GRACE_MS; !bot__child_reap(&st->child) && bot__mono_ms() < until;) {
			parley_client_run(st->c, 10);
			pump_child(st, 10);
		}
	}
	/* the program's last words: everything it wrote before exiting (bounded: a process it started
	 * may hold the pipe open) */
	for (until = bot__mono_ms() + DRAIN_MS; st->child.from_fd >= 0 && bot__mono_ms() < until;) {
		parley_client_run(st->c, 10);
		pump_child(st, 10);
	}
	bot__child_stop(&st->child, 0);
	parley_client_run(st->c, 0); /* the last actions and the acknowledgements */
	if (got_signal || !st->child.exited)
		return CLI_EXIT_OK;
	return bot__child_exit_code(&st->child);
}

/* ---- --webhook ---- */

static void on_delivered(void *user, const bot_webhook_result *r)
{
	bot_state *st = user;
	uint64_t thread = st->head != NULL ? st->head->thread : 0;

	pop(st);
	if (!r->ok) {
		fprintf(stderr, "parley: %s: the webhook did not take the event of thread %llu (%u attempt%s): ",
			st->ctx->command, (unsigned long long)thread, r->attempts, r->attempts == 1 ? "" : "s");
		cli_write_safe(stderr, r->why, strlen(r->why));
		fputc('\n', stderr);
		return;
	}
	memset(&st->lines, 0, sizeof(st->lines));
	bot__lines_feed(&st->lines, r->response, r->response_len, on_line, st);
	bot__lines_finish(&st->lines, on_line, st);
}

static void pump_hook(bot_state *st, unsigned wait_ms)
{
	if (!bot__webhook_busy(st->hook) && st->head != NULL && st->inflight < ACTIONS_MAX &&
	    bot__webhook_post(st->hook, st->head->line, st->head->len) != 0) {
		fprintf(stderr, "parley: %s: out of memory: an event was dropped\n", st->ctx->command);
		pop(st);
	}
	bot__webhook_pump(st->hook, wait_ms, on_delivered, st);
}

static int run_webhook(bot_state *st, uint64_t deadline)
{
	uint64_t until;

	while (!got_signal && (deadline == 0 || bot__mono_ms() < deadline)) {
		keep_connected(st);
		parley_client_run(st->c, bot__webhook_busy(st->hook) ? 10 : BOT_SLICE_MS);
		pump_hook(st, BOT_SLICE_MS);
	}
	parley_client_set_events(st->c, NULL);
	for (until = bot__mono_ms() + DRAIN_MS; (st->head != NULL || bot__webhook_busy(st->hook)) &&
						bot__mono_ms() < until;) {
		parley_client_run(st->c, 10);
		pump_hook(st, 10);
	}
	parley_client_run(st->c, 0);
	return CLI_EXIT_OK;
}

/* ---- the command ---- */

/* The shared secret: the file's bytes, without a final newline. Warns when others may read it. */
static int read_secret(cli_ctx *ctx, const char *path, uint8_t *out, size_t *len)
{
	struct stat sb;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "parley: %s: cannot open the secret file '%s'\n", ctx->command, path);
		return -1;
	}
	n = fread(out, 1, SECRET_MAX + 1, f);
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077) != 0)
		fprintf(stderr, "parley: %s: warning: '%s' is readable by other users (chmod 600 it)\n", ctx->command,
			path);
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	if (n == 0 || n > SECRET_MAX) {
		fprintf(stderr, "parley: %s: the secret in '%s' must have 1 to %d bytes\n", ctx->command, path,
			SECRET_MAX);
		return -1;
	}
	*len = n;
	return 0;
}

int cmd_bot(cli_ctx *ctx, int argc, char **argv)
{
	static uint8_t secret[SECRET_MAX + 1];
	bot_webhook_options wo;
	struct sigaction sa;
	bot_state *st;
	const char *secret_file = NULL;
	char **prog = NULL, err[256];
	unsigned long long v;
	uint64_t deadline = 0;
	int i, rc;

	memset(&wo, 0, sizeof(wo));
	for (i = 1; i < argc && prog == NULL; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--exec") == 0) {
			if (i + 1 >= argc)
				return cli_usage(ctx, "--exec needs a program");
			prog = argv + i + 1;
			break;
		}
		if (i + 1 >= argc)
			return cli_usage(ctx, "unexpected argument '%s'", o);
		if (strcmp(o, "--webhook") == 0) {
			wo.url = argv[++i];
		} else if (strcmp(o, "--secret-file") == 0) {
			secret_file = argv[++i];
		} else if (strcmp(o, "--webhook-ca-file") == 0) {
			wo.ca_file = argv[++i];
		} else if (strcmp(o, "--webhook-timeout") == 0 || strcmp(o, "--attempts") == 0 ||
			   strcmp(o, "--timeout") == 0) {
			if (cli_parse_number(argv[i + 1], o[2] == 'a' ? 20 : 31536000u, &v) != 0)
				return cli_usage(ctx, "%s: expected a positive number, got '%s'", o, argv[i + 1]);
			i++;
			if (o[2] == 'a')
				wo.attempts = (unsigned)v;
			else if (o[2] == 'w')
				wo.timeout_s = v > 600 ? 600 : (unsigned)v;
			else
				deadline = bot__mono_ms() + v * 1000u;
		} else {
			return cli_usage(ctx, "unexpected argument '%s'", o);
		}
	}
	if ((prog != NULL) == (wo.url != NULL))
		return cli_usage(ctx, "give either --exec PROGRAM [ARGS...] or --webhook URL --secret-file FILE");
	if (wo.url != NULL && secret_file == NULL)
		return cli_usage(ctx, "--webhook needs --secret-file FILE");
	if (prog != NULL && (secret_file != NULL || wo.ca_file != NULL || wo.timeout_s || wo.attempts))
		return cli_usage(ctx, "--secret-file and the --webhook-* options go with --webhook only");

	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return cli_fail(ctx, PARLEY_E_NOMEM);
	st->ctx = ctx;
	st->exec = prog != NULL;
	st->child.to_fd = st->child.from_fd = -1;
	rc = CLI_EXIT_ERROR;
	if (wo.url != NULL) {
		if (read_secret(ctx, secret_file, secret, &wo.secret_len) != 0)
			goto out;
		wo.secret = secret;
		if (bot__webhook_new(&wo, &st->hook, err, sizeof(err)) != 0) {
			fprintf(stderr, "parley: %s: %s\n", ctx->command, err);
			goto out;
		}
	}
	st->c = cli_client(ctx);
	if (st->c == NULL)
		goto out;
	if ((rc = parley_identity(st->c, st->self, sizeof(st->self), NULL, NULL)) != PARLEY_OK) {
		rc = cli_fail(ctx, rc);
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	st->ev.on_message = ev_message;
	st->ev.on_error = ev_error;
	st->ev.on_disconnect = ev_disconnect;
	st->ev.user = st;
	st->tev.on_thread_message = ev_thread_message;
	st->tev.on_thread_changed = ev_thread_changed;
	st->tev.on_thread_forwarded = ev_thread_forwarded;
	st->tev.user = st;
	start_receiving(st); /* before connecting: the backlog is pushed once per connection */
	if ((rc = parley_connect(st->c)) != PARLEY_OK) {
		parley_client_set_events(st->c, NULL);
		rc = cli_fail(ctx, rc);
		goto out;
	}
	rc = prog != NULL ? run_exec(st, prog, deadline) : run_webhook(st, deadline);
	memset(&st->tev, 0, sizeof(st->tev));
	parley_thread_set_events(st->c, &st->tev);
out:
	sodium_memzero(secret, sizeof(secret));
	while (st->head != NULL)
		pop(st);
	bot__webhook_free(st->hook);
	free(st);
	return rc;
}
