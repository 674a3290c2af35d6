/* `parley bot`: an agent account driven by a program (--exec) or an HTTP endpoint (--webhook).
 *
 * cmd_bot.c runs the client and the queue of events; bot_json.c maps thread events to JSON lines and
 * JSON lines to actions (the schema is docs/bots.md); bot_webhook.c signs and POSTs events (libcurl).
 * Nothing here trusts what the program or the endpoint sends: every line is bounded, parsed by jansson
 * (which checks UTF-8), and refused with a one-line reason when it is not an action this bot knows.
 */
#ifndef PARLEY_CLI_BOT_H
#define PARLEY_CLI_BOT_H
#include <stddef.h>
#include <stdint.h>

#include <parley/parley.h>
#include <parley/thread.h>

/* The longest JSON line either way, in bytes without its newline. An event always fits: an 8192-byte
 * body escaped as \u00XX is at most 49152 bytes. */
#define BOT_LINE_MAX 65536

/* ---- bot_json.c ---- */

typedef enum bot_action_kind {
	BOT_ACTION_REPLY = 1,    /* {"type":"reply","thread":ID,"body":S} */
	BOT_ACTION_HANDBACK = 2, /* {"type":"handback","thread":ID,"to":"admin"|HANDLE} */
	BOT_ACTION_CLOSE = 3,    /* {"type":"close","thread":ID} */
} bot_action_kind;

typedef struct bot_action {
	bot_action_kind kind;
	uint64_t thread;
	char to[PARLEY_HANDLE_MAX + 1];       /* handback: a staff handle; "" = the admins' queue */
	uint8_t body[PARLEY_MESSAGE_MAX + 1]; /* reply: body_len (1..PARLEY_MESSAGE_MAX) bytes and a NUL */
	size_t body_len;
} bot_action;

/* Parses one line (len bytes, no newline) into *out. 0, or -1 with a one-line reason in err (for
 * stderr: it quotes nothing of the line, so it is safe to print). Unknown fields are ignored. */
int bot__parse_action(const char *line, size_t len, bot_action *out, char *err, size_t errlen);

/* Event lines: allocated (free()), NUL-terminated, ending in '\n'; *len counts the newline, not the
 * NUL. NULL when out of memory. Text that is not well-formed UTF-8 is carried with U+FFFD in place of
 * each ill-formed part (a JSON string must be UTF-8). */
char *bot__event_message(const parley_thread_message *m, size_t *len);
char *bot__event_forwarded(const parley_thread_forwarded *f, size_t *len);
char *bot__event_changed(const parley_thread_change *ch, size_t *len);
/* The outcome of a failed action: {"type":"error","thread":ID,"code":N,"error":"NAME","message":S}. */
char *bot__event_error(uint64_t thread, int code, const char *message, size_t *len);

/* Splits a byte stream into lines of at most BOT_LINE_MAX bytes. fn gets each line without its "\n"
 * (and without a "\r" before it); a longer line is skipped up to its newline and reported once with
 * too_long = 1 (line NULL). lineno counts from 1. */
typedef void (*bot_line_fn)(void *user, unsigned long lineno, const char *line, size_t len, int too_long);
typedef struct bot_lines {
	char buf[BOT_LINE_MAX + 1];
	size_t len;
	int discarding;
	unsigned long lineno;
} bot_lines;
void bot__lines_feed(bot_lines *l, const char *data, size_t n, bot_line_fn fn, void *user);
/* End of the stream: a last line without a newline is still a line. */
void bot__lines_finish(bot_lines *l, bot_line_fn fn, void *user);

/* ---- bot_exec.c: the program of --exec ---- */

typedef struct bot_child {
	int pid;    /* pid_t */
	int to_fd;  /* its standard input (ours: non-blocking); -1 once closed */
	int from_fd; /* its standard output; -1 at end of file */
	int exited;
	int status; /* waitpid's, once exited */
} bot_child;
/* Starts argv[0] (looked up in PATH) with argv. 0, or -1 with the reason in err. */
int bot__child_spawn(bot_child *ch, char *const argv[], char *err, size_t errlen);
/* Non-blocking: bytes written (0: the pipe is full), or -1 when the program closed its input. */
long bot__child_write(bot_child *ch, const char *data, size_t len);
/* Non-blocking: bytes read (0: nothing yet), or -1 at end of file. */
long bot__child_read(bot_child *ch, char *buf, size_t cap);
/* Waits at most wait_ms until the input can take bytes (want_write) or the output has some (want_read). */
void bot__child_wait(bot_child *ch, int want_write, int want_read, unsigned wait_ms, int *can_write,
		     int *can_read);
/* 1 once the program exited (status set), without waiting. */
int bot__child_reap(bot_child *ch);
void bot__child_close_input(bot_child *ch);
/* Ends it: closes its input, waits grace_ms for it to exit, then SIGTERM (2 s), then SIGKILL. */
void bot__child_stop(bot_child *ch, unsigned grace_ms);
/* Its exit status, or 128 + the signal that killed it (the shell's convention). */
int bot__child_exit_code(const bot_child *ch);

/* ---- bot_webhook.c ---- */

/* A monotonic clock in ms. */
uint64_t bot__mono_ms(void);

/* "sha256=" and 64 hex digits of HMAC-SHA256(secret, timestamp "." body), and a NUL. */
#define BOT_SIGNATURE_LEN (7 + 64)
void bot__sign(const uint8_t *secret, size_t secret_len, const char *timestamp, const char *body, size_t body_len,
	       char out[BOT_SIGNATURE_LEN + 1]);

typedef struct bot_webhook_options {
	const char *url;        /* http:// or https:// */
	const char *ca_file;    /* PEM bundle for https; NULL = the system's store */
	const uint8_t *secret;  /* copied */
	size_t secret_len;
	unsigned timeout_s;     /* one attempt, whole; 0 = BOT_WEBHOOK_TIMEOUT_S */
	unsigned attempts;      /* per event, the first included; 0 = BOT_WEBHOOK_ATTEMPTS */
} bot_webhook_options;
#define BOT_WEBHOOK_TIMEOUT_S 10
#define BOT_WEBHOOK_ATTEMPTS 5
#define BOT_WEBHOOK_BACKOFF_MS 500    /* before the second attempt; doubles up to the cap */
#define BOT_WEBHOOK_BACKOFF_MAX_MS 8000
#define BOT_WEBHOOK_RESPONSE_MAX (1024 * 1024)

/* The result of one event's delivery. ok: a 2xx response, whose body (response, response_len bytes,
 * NUL-terminated) holds action lines. Otherwise why says what failed last (an HTTP status that is not
 * retried, e.g. 401 from an endpoint that rejected the signature, or the last network error / 5xx
 * after every attempt); http_status is 0 when no response came. */
typedef struct bot_webhook_result {
	int ok;
	long http_status;
	unsigned attempts;
	const char *response;
	size_t response_len;
	const char *why;
} bot_webhook_result;
typedef void (*bot_webhook_done_fn)(void *user, const bot_webhook_result *r);

typedef struct bot_webhook bot_webhook;
/* 0, or -1 with the reason in err (bad URL scheme, no memory, libcurl init). */
int bot__webhook_new(const bot_webhook_options *o, bot_webhook **out, char *err, size_t errlen);
void bot__webhook_free(bot_webhook *w);
/* 1 while an event is being delivered (attempts and backoff included). */
int bot__webhook_busy(const bot_webhook *w);
/* Starts delivering body (copied) with its signature; one at a time. 0, or -1 (busy, no memory). */
int bot__webhook_post(bot_webhook *w, const char *body, size_t len);
/* Drives the delivery for at most wait_ms (waiting on its sockets, never spinning); calls done once it
 * is over. Returns at once when idle. */
void bot__webhook_pump(bot_webhook *w, unsigned wait_ms, bot_webhook_done_fn done, void *user);

#endif
