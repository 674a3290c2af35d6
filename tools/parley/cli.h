/* The `parley` command-line tool: shared definitions.
 *
 * The CLI uses only libparley's public API (<parley/parley.h>). Each command is one function in a file
 * grouped by area (cmd_account.c, cmd_devices.c, ...), registered in the table in main.c. Output on
 * stdout is meant to be stable and scriptable (no prompts, no colours); diagnostics go to stderr as
 * "parley: COMMAND: message".
 */
#ifndef PARLEY_CLI_H
#define PARLEY_CLI_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <parley/parley.h>

/* Exit codes (documented in --help). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2

typedef struct cli_ctx {
	parley_client_options opts;
	const char *command; /* name used in messages, e.g. "devices add" */
	parley_client *client; /* created on first need by cli_client() */
} cli_ctx;

typedef struct cli_command {
	const char *name;
	int (*run)(cli_ctx *ctx, int argc, char **argv); /* argv[0] is the command name */
	const char *usage;   /* arguments after the name */
	const char *summary; /* one line for the command list */
	const char *help;    /* paragraph for `parley help NAME` */
} cli_command;

/* Returns the client, creating it from ctx->opts; prints the error and returns NULL on failure. */
parley_client *cli_client(cli_ctx *ctx);

/* Prints "parley: COMMAND: <strerror> (<NAME>)[: detail]" and returns CLI_EXIT_ERROR. */
int cli_fail(cli_ctx *ctx, parley_err err);
/* Prints "parley: COMMAND: message" and "Try 'parley help COMMAND'." and returns CLI_EXIT_USAGE. */
int cli_usage(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 if arg is -h or --help. */
int cli_is_help(const char *arg);
/* Prints the help of one command (by name); returns CLI_EXIT_OK, or CLI_EXIT_USAGE if unknown. */
int cli_print_command_help(const char *name);

/* Parses a decimal number 1..max (no sign, no spaces, no junk). 0 on success. */
int cli_parse_number(const char *s, unsigned long long max, unsigned long long *out);
/* Parses a decimal device id (1..UINT32_MAX). 0 on success. */
int cli_parse_device_id(const char *s, uint32_t *out);
/* Base64 (standard or URL-safe, padding optional) of exactly PARLEY_DEVICE_KEY_BYTES bytes. 0 on success. */
int cli_parse_key(const char *s, uint8_t out[PARLEY_DEVICE_KEY_BYTES]);
/* The same for exactly n bytes. */
int cli_parse_b64(const char *s, uint8_t *out, size_t n);
/* Standard base64 with padding of n bytes; out has room for sodium_base64_ENCODED_LEN(n). */
void cli_format_b64(const uint8_t *in, size_t n, char *out, size_t outlen);
/* Writes len bytes of text to f so that text chosen by someone else cannot drive the terminal: control
 * characters (C0, DEL, C1, bidi overrides) become '?', ill-formed UTF-8 becomes U+FFFD (text.c). */
void cli_write_safe(FILE *f, const void *text, size_t len);
/* The well-formed UTF-8 sequence at s (len >= 1 bytes; Unicode Table 3-7): its length (1..4) and code
 * point, or 0 and in *bad the length of the ill-formed prefix to replace (at least 1). */
size_t cli_utf8_next(const uint8_t *s, size_t len, uint32_t *cp, size_t *bad);
/* cli_write_safe of a NUL-terminated string to stdout. */
void cli_print_safe(const char *s);
/* A handle the server sent, for a format string: characters outside the handle alphabet become '?' and
 * it is cut at PARLEY_HANDLE_MAX bytes (a server is not trusted with the user's terminal). Returns out. */
const char *cli_safe_handle(const char *handle, char out[PARLEY_HANDLE_MAX + 1]);

/* The 60 digits of a safety number in groups of five, and a newline (cmd_msg.c). */
void cli_print_digits(const char *digits);
/* parley_trust(handle) with its report on stdout; lists the choice when it is ambiguous (cmd_trust.c). */
int cli_trust(cli_ctx *ctx, parley_client *c, const char *handle);

/* `parley thread forward` (cmd_forward.c; argv[0] = "forward"), and the line listen prints for a forward
 * received (on_thread_forwarded). */
int cli_thread_forward(cli_ctx *ctx, int argc, char **argv);
void cli_on_forwarded(parley_client *c, const parley_thread_forwarded *f, void *user);

/* QR codes (qr.c): CLI_QR_QUIET modules of quiet zone around the symbol, CLI_QR_SCALE pixels per
 * module in a PNG. Errors: PARLEY_E_TOO_LARGE (empty payload or one that no QR version holds),
 * PARLEY_E_NOMEM, PARLEY_E_IO (output; err names the file). */
#define CLI_QR_QUIET 4
#define CLI_QR_SCALE 8
/* The symbol's width in modules (without the quiet zone). */
int cli_qr_modules(const char *payload, int *width);
/* The symbol in Unicode half blocks, two module rows per line, light modules as ink. */
int cli_qr_print(FILE *f, const char *payload);
/* The symbol as an 8-bit greyscale PNG at path (written to path.tmp, then renamed). */
int cli_qr_png(const char *path, const char *payload, char *err, size_t errlen);

/* Commands */
int cmd_register(cli_ctx *ctx, int argc, char **argv);
int cmd_link(cli_ctx *ctx, int argc, char **argv);
int cmd_device_key(cli_ctx *ctx, int argc, char **argv);
int cmd_whoami(cli_ctx *ctx, int argc, char **argv);
int cmd_devices(cli_ctx *ctx, int argc, char **argv);
int cmd_send(cli_ctx *ctx, int argc, char **argv);
int cmd_listen(cli_ctx *ctx, int argc, char **argv);
int cmd_safety_number(cli_ctx *ctx, int argc, char **argv);
int cmd_trust(cli_ctx *ctx, int argc, char **argv);
int cmd_accept(cli_ctx *ctx, int argc, char **argv);
int cmd_block(cli_ctx *ctx, int argc, char **argv);
int cmd_presence(cli_ctx *ctx, int argc, char **argv);
int cmd_quarantine(cli_ctx *ctx, int argc, char **argv);
int cmd_history(cli_ctx *ctx, int argc, char **argv);
int cmd_entity(cli_ctx *ctx, int argc, char **argv);
int cmd_agent(cli_ctx *ctx, int argc, char **argv);
/* business threads (cmd_thread.c) */
int cmd_threads(cli_ctx *ctx, int argc, char **argv);
int cmd_thread(cli_ctx *ctx, int argc, char **argv);
/* `parley listen` prints thread messages and changes too; counted(c, user) runs after each message. */
typedef void (*cli_thread_counted_fn)(parley_client *c, void *user);
void cli_listen_threads(parley_client *c, cli_thread_counted_fn counted, void *user);
int cmd_bot(cli_ctx *ctx, int argc, char **argv);
/* customer authentication (cmd_auth.c; the lines: auth_lines.c) */
int cmd_auth(cli_ctx *ctx, int argc, char **argv);
/* `parley thread auth THREAD COMPONENT` (argv[0] = "auth") */
int cli_thread_auth(cli_ctx *ctx, int argc, char **argv);
/* listen's auth lines (prompts to a customer, results to staff); open: prompts' URLs go to xdg-open */
void cli_listen_auth(parley_client *c, int open);
/* The options of `auth component create|edit` (--type, --issuer, ..., --ttl) into comp; -1 with err. */
int cli_auth_parse_options(int argc, char **argv, parley_auth_component *comp, int *have_type, char *err,
			   size_t errlen);
/* "component N NAME (TYPE, STATE)" */
void cli_auth_print_component(FILE *f, const parley_auth_component *c);
/* "ID\tNAME\tTYPE\tSTATE\tISSUER|-\tBINDING\tTTLs|-" */
void cli_auth_print_component_row(FILE *f, const parley_auth_component *c);
/* "auth request N sent to the customer (expires HH:MM:SS)" */
void cli_auth_print_sent(FILE *f, const parley_auth_request *r);
/* "thread N: LEVEL", the claims, then "request N\tCOMPONENT\tSTATUS[\tERROR]" newest first */
void cli_auth_print_status(FILE *f, uint64_t thread_id, const parley_auth_status *s);
/* `auth email`: the known emails, one a line */
void cli_auth_print_emails(FILE *f, const parley_auth_emails *e);
/* listen: a prompt (customer, gateway) and a result (staff, customer) */
void cli_auth_print_prompt(FILE *f, const parley_auth_prompt *p);
void cli_auth_print_result(FILE *f, const parley_auth_result *r);
/* listen's lines for the entity pushes (cmd_entity.c) */
void cli_ev_join_requested(parley_client *c, const char *entity, const parley_join_request *req, void *user);
void cli_ev_staff_changed(parley_client *c, const char *entity, uint64_t version, int removed, void *user);
void cli_ev_join_decided(parley_client *c, const char *entity, uint64_t request_id, int approved, void *user);
/* cmd_devices.c: on_keys_moved for listen */
void cli_ev_keys_moved(parley_client *c, const char *from, int received, const char *what, void *user);

#endif
