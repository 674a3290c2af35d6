/* parley — command-line client. Global options, the command table and shared helpers. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"

/* PARLEY_MESSAGE_MAX as a string literal, for the help texts */
#define STR_(x) #x
#define STR(x) STR_(x)
#define MESSAGE_MAX STR(PARLEY_MESSAGE_MAX)

static const cli_command commands[] = {
	{"register", cmd_register, "HANDLE [--device-name NAME]", "create an account with this device",
	 "Creates the account HANDLE on the server with this device as its first device, and saves it in\n"
	 "the state directory. A handle has 3 to 32 characters from a-z, 0-9, '.', '_' and '-', and\n"
	 "starts with a letter a-z. The device name defaults to \"primary\".\n"
	 "Fails if this device already has an account."},
	{"devices", cmd_devices, "[link|add LINK_CODE [NAME] | remove ID | transfer-key ID]",
	 "list, add or remove devices; move the account key",
	 "parley devices               list the account's devices: id, added, last seen (UTC), name;\n"
	 "                             '*' marks this device\n"
	 "parley devices link CODE [NAME]  on the device holding the account key: add the device whose\n"
	 "                             link code (from `parley device-key HANDLE` on that device, valid 10\n"
	 "                             minutes) is CODE and sign the next device list with it; prints the\n"
	 "                             new device id (`devices add` is the same command)\n"
	 "parley devices remove ID     remove device ID from the account (and from the signed list)\n"
	 "parley devices transfer-key ID  on the device holding the account key: send it (and every entity\n"
	 "                             key this device holds) end-to-end encrypted to device ID of the\n"
	 "                             account (named by the signed list). Device ID imports them when it\n"
	 "                             next receives (`parley listen`) and confirms; this device wipes its\n"
	 "                             copy when that confirmation arrives (`parley listen` here). One\n"
	 "                             transfer at a time; removing device ID cancels a pending one"},
	{"device-key", cmd_device_key, "[HANDLE [--qr] [--png FILE]]",
	 "print this device's public key, or its link code for HANDLE",
	 "Without HANDLE: prints this device's Ed25519 public key in base64, creating the key on first use.\n"
	 "With HANDLE: prints this device's link code for joining account HANDLE (its key, the time and\n"
	 "its signature over both and HANDLE: the proof that it holds the key). Give the code to the device\n"
	 "of the account that holds the account key (`parley devices link CODE`) within 10 minutes, then\n"
	 "run `parley link HANDLE ID` here. --qr also prints the code as a QR code to scan, --png FILE\n"
	 "writes it as a PNG image."},
	{"link", cmd_link, "HANDLE DEVICE_ID", "join an account whose device added this one",
	 "Authenticates for the first time as device DEVICE_ID of HANDLE (another device added this\n"
	 "device's key with `parley devices add`) and saves the account."},
	{"whoami", cmd_whoami, "", "print this device's handle, account id and device id",
	 "Prints \"HANDLE ACCOUNT_ID DEVICE_ID\" from the local state (no network)."},
	{"send", cmd_send, "[-q] HANDLE TEXT... | [-q] HANDLE - | ENTITY TEXT... --channel NAME --as USER",
	 "send an end-to-end encrypted message (at most " MESSAGE_MAX " bytes)",
	 "Encrypts TEXT (several arguments are joined with spaces) for every device of HANDLE and for this\n"
	 "account's other devices, and hands it to the server, which stores it until each device fetches\n"
	 "it. With - instead of TEXT, the message is read from standard input (one trailing newline is\n"
	 "dropped): echo hi | parley send bob -\n"
	 "A message has 1 to " MESSAGE_MAX " bytes; a longer one is refused whole, never cut (exit 1 from\n"
	 "standard input, 2 from arguments). Sending to your own handle reaches your other devices.\n"
	 "On success prints one line, \"sent to HANDLE at HH:MM:SS (id N)\": the time and id that the\n"
	 "receipts in `parley listen` refer to; -q, --quiet prints nothing. Options go before TEXT; --\n"
	 "ends them.\n"
	 "To an entity, TEXT goes to your thread with it (opened if none). A gateway of the entity (see\n"
	 "`parley entity code ENTITY --gateway`) writes for one channel customer with --channel NAME\n"
	 "(webchat, sms, waba, byoc) --as USER (sms, waba: +E.164): parley send acme hi --channel sms --as\n"
	 "+15551234567 (docs/channels.md).\n"
	 "Fails with UNTRUSTED_IDENTITY if a device of HANDLE has a new identity key (see\n"
	 "`parley safety-number` and `parley trust`)."},
	{"listen", cmd_listen, "[--count N] [--timeout SECONDS] [--open]",
	 "print incoming messages until Ctrl-C (or --count/--timeout)",
	 "Connects and prints each message as it arrives (first the ones waiting on the server):\n"
	 "  HH:MM:SS alice: hi                  a message to you\n"
	 "  HH:MM:SS alice -> bob: hi           (as alice) a copy of what your other device sent\n"
	 "  HH:MM:SS bob delivered|read your message of HH:MM:SS (id N)   receipts\n"
	 "  (a message request: ...)            after the first message from someone you never wrote\n"
	 "                                      to nor accepted: they get no receipts (parley accept)\n"
	 "  ENTITY: join request N from HANDLE (agent)   to an entity's admins (parley entity requests)\n"
	 "  ENTITY: staff list changed (version N)        to its members; or: you were removed ...\n"
	 "  ENTITY: your join request N was denied        to the candidate\n"
	 "  ENTITY asks you to sign in with NAME: URL (request N, expires HH:MM:SS)\n"
	 "                                      to a thread's customer (docs/auth.md); --open opens URL\n"
	 "                                      with xdg-open; a one-time code or JWT request names the\n"
	 "                                      `parley auth answer` to run\n"
	 "  #THREAD: customer authenticated by NAME until YYYY-MM-DD HH:MM:SS UTC   to the thread's\n"
	 "                                      members; or: authentication request N failed: ERROR,\n"
	 "                                      authentication expired, now LEVEL\n"
	 "Displayed messages are marked read (an accepted sender gets a read receipt). It does not exit on its\n"
	 "own: it runs (and reconnects after a lost connection) until you press Ctrl-C (SIGINT) or it gets\n"
	 "SIGTERM, unless --count N (exit after N messages) or --timeout SECONDS (exit after that long)\n"
	 "is given; with both, exits 1 if the timeout comes first. Messages not shown stay on the server\n"
	 "for the next listen."},
	{"safety-number", cmd_safety_number, "HANDLE [--accept]", "show the safety number with HANDLE",
	 "Prints the 60-digit safety number of this device and HANDLE's device (one line per device when\n"
	 "HANDLE has several), identical to Signal's: compare it with HANDLE in person. --accept also\n"
	 "accepts HANDLE's changed identity key (same as `parley trust HANDLE`)."},
	{"trust", cmd_trust, "HANDLE [--list | --device N --key DIGITS]", "accept HANDLE's changed identity key",
	 "After HANDLE's identity key changed (listen and send warn), and only once you compared the new\n"
	 "safety number, accepts the new key: held (quarantined) messages then decrypt on the next listen.\n"
	 "When a device of HANDLE has several pending keys (someone may be claiming identities that are\n"
	 "not HANDLE's), nothing is accepted: each pending key is listed with its safety number (also with\n"
	 "--list), and --device N --key DIGITS accepts the one whose safety number you verified (DIGITS:\n"
	 "the 60 digits, spaces allowed if quoted)."},
	{"quarantine", cmd_quarantine, "", "list received messages that could not be decrypted",
	 "Messages that could not be decrypted when they arrived (changed identity key, no session, failed\n"
	 "authentication...) are acknowledged to the server and kept here, so that they cannot block the\n"
	 "messages behind them. One line each, oldest first:\n"
	 "  YYYY-MM-DD HH:MM:SS SENDER device N: REASON [retry]\n"
	 "then \"N dropped\" if the bounds (50 per sender, 1000 in all) pushed older ones out. Accepting\n"
	 "a key of the sender with `parley trust` retries its messages on the next listen."},
	{"history", cmd_history, "HANDLE [--last N]", "show this device's history of the conversation with HANDLE",
	 "The last N messages (default 20, at most 1000) this device received from or sent to HANDLE,\n"
	 "including what this account sent from its other devices, oldest first, one line each:\n"
	 "  HH:MM:SS SENDER: TEXT\n"
	 "Read from this device only (no network). The history is sealed at rest under history.key in the\n"
	 "state directory, or under a passphrase when PARLEY_STORAGE_PASSPHRASE is set (chosen at first use:\n"
	 "always the same one afterwards). It keeps 10000 messages per conversation."},
	{"accept", cmd_accept, "HANDLE", "accept a message request from HANDLE",
	 "Someone who writes to you first is a message request: you see the messages, but they get no\n"
	 "delivery or read receipts, no presence and cannot show typing to you. Replying to HANDLE or\n"
	 "this command accepts them; presence and typing then flow once both of you accepted."},
	{"block", cmd_block, "HANDLE", "withdraw your acceptance of HANDLE",
	 "Stops receipts, presence and typing between you and HANDLE (until you write to or accept\n"
	 "HANDLE again). Messages from HANDLE still arrive."},
	{"presence", cmd_presence, "on|off", "share your online state with accepted contacts or not",
	 "off: your accepted contacts see you offline from now on; on: they see when you are online\n"
	 "(the default unless the server's operator changed it)."},
	{"entity", cmd_entity, "SUBCOMMAND ENTITY [ARGS]", "businesses: create, admins, agents, codes, rules",
	 "An entity is a business on parley: a handle, a display name, admins and agents, and an entity key\n"
	 "(kept by the device that created it) that signs its staff list. docs/entities.md walks through it.\n"
	 "parley entity create ENTITY NAME...        create ENTITY; you are its primary admin\n"
	 "parley entity show ENTITY                  display name, staff version, rules, admins and agents\n"
	 "parley entity admins|agents ENTITY         one line per member: handle, role, devices, rules\n"
	 "                                           (agents lists bots and gateways too, by role)\n"
	 "parley entity add-admin ENTITY HANDLE      (primary admin) make account HANDLE an admin\n"
	 "parley entity remove-admin ENTITY HANDLE   (primary admin) remove an admin (never the primary)\n"
	 "parley entity transfer-primary ENTITY HANDLE\n"
	 "                                           (primary admin, on the device holding the entity key)\n"
	 "                                           make admin HANDLE the primary admin; the entity key\n"
	 "                                           follows end to end to HANDLE's devices\n"
	 "parley entity code ENTITY [--ttl S] [--bot|--gateway] [--png FILE]\n"
	 "                                           (admins) a one-time enrolment code, as text and as a QR\n"
	 "                                           code (and a PNG with --png); valid 15 minutes or --ttl S;\n"
	 "                                           --gateway: for parley-gateway's account (never staff:\n"
	 "                                           docs/channels.md)\n"
	 "parley entity requests ENTITY              (admins) pending join requests: ID HANDLE ROLE ...\n"
	 "parley entity approve|deny ENTITY ID       (admins) decide a request; approving on the device\n"
	 "                                           holding the entity key signs a new staff list; on\n"
	 "                                           another admin device it signs an approval that the\n"
	 "                                           key holder checks and completes when next connected\n"
	 "parley entity remove-agent ENTITY HANDLE   (admins) remove an agent, bot or gateway at once\n"
	 "parley entity rules ENTITY [--agent HANDLE] [default-agent=on|off] [may-initiate=on|off]\n"
	 "                   [may-pay=on|off] [may-transfer=on|off] [show-name=on|off]\n"
	 "                   [lock=none|first-responder] [admins-exempt=on|off]\n"
	 "                                           show, or change and show, the entity's rules or one\n"
	 "                                           agent's (=inherit drops an agent's override)\n"
	 "parley entity devices ENTITY               the devices a customer's client would encrypt to: those\n"
	 "                                           in each member's signed device list; others are left out\n"
	 "parley entity safety-number ENTITY [--customer HANDLE]\n"
	 "                                           the safety number of your account key and ENTITY's key:\n"
	 "                                           compare it with the business; with --customer, the same\n"
	 "                                           number as the business sees it with HANDLE\n"
	 "Errors name the refusal, e.g. NOT_ENTITY_ADMIN, ENTITY_KEY_REQUIRED, PRIMARY_ADMIN_FIXED,\n"
	 "STAFF_LIST_ROLLBACK (the server served an older staff list than one already seen)."},
	{"agent", cmd_agent, "join ENTITY CODE", "ask to join ENTITY as an agent with an enrolment code",
	 "Sends a join request to ENTITY's admins with CODE (from `parley entity code`, case and dashes\n"
	 "ignored; the QR payload parley:join?entity=ENTITY&code=CODE works too) and this account's key and\n"
	 "signed device list. An admin approves or denies it (`parley listen` shows the staff change).\n"
	 "Errors: ENROL_CODE_UNKNOWN, ENROL_CODE_EXPIRED, ENROL_CODE_USED, ENROL_CODE_DENIED,\n"
	 "ENROL_RATE_LIMITED (too many wrong codes: wait), ALREADY_MEMBER, REQUEST_PENDING."},
	{"threads", cmd_threads, "[ENTITY]", "list business threads: yours as a customer, or ENTITY's (staff)",
	 "Lists threads, newest first, one a line: #ID, the entity's name, the customer, the status (open,\n"
	 "locked, closed), the handling agent (staff only; '-' for none) and the unread count; a channel\n"
	 "thread adds \"sms +15551234567 via GATEWAY, E2E ends at the gateway, LEVEL\" (an unverified channel\n"
	 "when its gateway is not in the verified staff list). Without ENTITY:\n"
	 "your threads as a customer; with ENTITY: that entity's threads (you must be its staff)."},
	{"thread", cmd_thread, "show|send|open|add|remove|lock|unlock|close|handback|forward|auth ...",
	 "read, answer and manage one business thread",
	 "parley thread show ID [--limit N]   this device's history of thread ID (oldest first), marks it read\n"
	 "parley thread send ID TEXT... [--payment]  a message to every member (encrypted once with your\n"
	 "                             sender key; --payment: a payment request, staff with may_pay only)\n"
	 "parley thread open ENTITY CUSTOMER  staff with may_initiate: a new thread toward CUSTOMER\n"
	 "parley thread add|remove ID HANDLE  admin: add or remove a staff member (signed event); after a\n"
	 "                             removal every member starts a new sender key\n"
	 "parley thread lock|unlock ID  take the lock (staff member) / release it (admin or holder)\n"
	 "parley thread close ID       close for good (admin, handling agent or the customer)\n"
	 "parley thread handback ID [HANDLE]  handling agent: back to HANDLE or the admins' queue\n"
	 "parley thread auth ID COMPONENT  staff member: send the customer an authorization request\n"
	 "                             component (its id or name; `parley auth component list`); the\n"
	 "                             customer signs in or answers; `parley auth status ID` shows it\n"
	 "parley thread forward ID AGENT [--note TEXT] [--history N]  admin (or the handling agent with\n"
	 "                             may-transfer): hand the thread to AGENT with its keys, the note and\n"
	 "                             your last N messages of it (default 100)\n"
	 "A customer writes with `parley send ENTITY TEXT` (it opens or continues the thread); incoming\n"
	 "thread messages and changes show in `parley listen` as \"HH:MM:SS #ID SENDER: TEXT\"."},
	{"auth", cmd_auth,
	 "component create|edit|activate|deactivate|list ... | status THREAD | answer REQUEST ... | email THREAD ...",
	 "customer authentication: the entity's components, a thread's status, answers, known emails",
	 "parley auth component create ENTITY NAME --type oidc|oauth2|otp|jwt [OPTIONS]\n"
	 "                             (admins) a new component, a draft: \"component N NAME (TYPE, draft)\"\n"
	 "parley auth component edit ENTITY ID [--name NAME] [OPTIONS]\n"
	 "                             (admins) change what the options name (not while active)\n"
	 "  OPTIONS: --issuer URL --discovery URL --authorize URL --token URL --jwks URL --userinfo URL\n"
	 "           --client-id ID --secret-ref file:NAME --scopes \"openid email\"\n"
	 "           --binding none|sub|phone|email --ttl SECONDS (default 3600)\n"
	 "           the secret reference is resolved by parleyd when used; the secret never travels\n"
	 "parley auth component activate|deactivate ENTITY ID   (admins) only active ones can be sent\n"
	 "parley auth component list ENTITY   one a line: ID NAME TYPE STATE ISSUER BINDING TTL\n"
	 "                             (admins: all; other staff: the active ones)\n"
	 "parley auth status THREAD    the thread's level (\"authenticated by NAME until ... UTC\",\n"
	 "                             channel-verified, unverified), the bound claims and known emails\n"
	 "                             (staff), then its\n"
	 "                             requests newest first: request N COMPONENT STATUS [ERROR]; to the\n"
	 "                             customer, an open request's sign-in URL too (a prompt reaches the\n"
	 "                             devices online when it is sent; this finds it later)\n"
	 "parley auth answer REQUEST --otp CODE | --jwt TOKEN|-\n"
	 "                             the customer (or a channel's gateway) answers a one-time code or\n"
	 "                             JWT request; --jwt - reads the token from standard input\n"
	 "parley auth email THREAD [ADDRESS] [--remove]\n"
	 "                             (staff of the thread, admins) record or remove an email the entity\n"
	 "                             knows for the thread's customer (the email binding compares the\n"
	 "                             sign-in's verified email with them); prints them all, one a line\n"
	 "Staff send a component with `parley thread auth THREAD COMPONENT`; `parley listen` shows the\n"
	 "prompts and results. docs/auth.md walks through configuring an identity provider."},
	{"bot", cmd_bot, "[--timeout S] --exec PROGRAM [ARGS...] | --webhook URL --secret-file FILE [OPTIONS]",
	 "run this account as a bot driven by a program or a webhook",
	 "Runs this account (a bot or agent of an entity: `parley agent join`) until stopped, passing its\n"
	 "threads' events on and carrying out the answers. docs/bots.md has the schema and examples.\n"
	 "--exec PROGRAM [ARGS...]  starts PROGRAM (no shell) and writes one JSON event per line to its\n"
	 "                   standard input: {\"type\":\"message\"|\"forwarded\"|\"changed\"|\"error\",...};\n"
	 "                   reads actions from its standard output, one per line:\n"
	 "                   {\"type\":\"reply\",\"thread\":ID,\"body\":TEXT}\n"
	 "                   {\"type\":\"handback\",\"thread\":ID,\"to\":\"admin\"|HANDLE}\n"
	 "                   {\"type\":\"close\",\"thread\":ID}\n"
	 "                   A failed action comes back as {\"type\":\"error\",\"thread\":ID,\"code\":N,\n"
	 "                   \"error\":NAME,\"message\":TEXT}. The bot ends when PROGRAM exits, with its status.\n"
	 "--webhook URL      POSTs each event (application/json) to URL, signed: X-Parley-Timestamp (Unix\n"
	 "                   seconds) and X-Parley-Signature: sha256=HEX, the HMAC-SHA256 under the secret\n"
	 "                   of \"TIMESTAMP.BODY\"; the response body holds action lines. Options:\n"
	 "  --secret-file FILE        the shared secret (the file's bytes, final newline dropped)\n"
	 "  --webhook-ca-file FILE    CA certificates (PEM) to verify an https:// URL\n"
	 "  --webhook-timeout S       one attempt (default 10 s); --attempts N per event (default 5):\n"
	 "                            network errors, 5xx and 429 are retried with backoff\n"
	 "--timeout S        stop after S seconds. SIGTERM or Ctrl-C stop cleanly (acknowledgements sent;\n"
	 "                   the program's input is closed and its last answers carried out)."},
	{"help", NULL, "[COMMAND]", "show help for parley or one command", "Shows the help of COMMAND."},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: parley [--server URL] [--home DIR] [--ca-file FILE] [--timeout MS] COMMAND [ARGS]\n"
		   "\n"
		   "Commands:\n");
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n"
		   "Options:\n"
		   "  --server URL    server WebSocket URL (ws:// or wss://); env PARLEY_SERVER; default: the\n"
		   "                  server this device registered with, else " PARLEY_DEFAULT_SERVER_URL "\n"
		   "  --home DIR      state directory; env PARLEY_HOME; default $XDG_DATA_HOME/parley or\n"
		   "                  ~/.local/share/parley\n"
		   "  --ca-file FILE  CA certificates (PEM) for wss:// servers\n"
		   "  --timeout MS    connect and request timeout in milliseconds (default 10000)\n"
		   "  -h, --help      show this help;  -V, --version  show the version\n"
		   "\n"
		   "Environment: PARLEY_STORAGE_PASSPHRASE seals the local history under a passphrase instead of\n"
		   "the key file history.key (see 'parley help history').\n"
		   "\n"
		   "Run 'parley help COMMAND' for a command's help.\n"
		   "\n"
		   "Exit status: 0 success, 1 error (network, server refusal, local state), 2 usage error.\n");
}

int cli_print_command_help(const char *name)
{
	size_t i;
	for (i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0) {
			printf("usage: parley %s %s\n\n%s\n", commands[i].name, commands[i].usage, commands[i].help);
			return CLI_EXIT_OK;
		}
	}
	fprintf(stderr, "parley: help: unknown command '%s'\n", name);
	return CLI_EXIT_USAGE;
}

int cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

parley_client *cli_client(cli_ctx *ctx)
{
	parley_err rc;

	if (ctx->client != NULL)
		return ctx->client;
	rc = parley_client_new(&ctx->opts, &ctx->client);
	if (rc != PARLEY_OK) {
		fprintf(stderr, "parley: %s: %s (%s)\n", ctx->command, parley_strerror(rc), parley_errname(rc));
		return NULL;
	}
	return ctx->client;
}

int cli_fail(cli_ctx *ctx, parley_err err)
{
	const char *detail = ctx->client != NULL ? parley_client_errmsg(ctx->client) : "";
	const char *msg = parley_strerror(err);

	/* The detail repeats the message when the server sent parley_strerror(status) itself. */
	if (detail[0] != '\0' && strcmp(detail, msg) != 0)
		fprintf(stderr, "parley: %s: %s (%s): %s\n", ctx->command, msg, parley_errname(err), detail);
	else
		fprintf(stderr, "parley: %s: %s (%s)\n", ctx->command, msg, parley_errname(err));
	return CLI_EXIT_ERROR;
}

int cli_usage(cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "parley: %s: ", ctx->command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	/* "devices add" -> help of "devices" */
	fprintf(stderr, "\nTry 'parley help %.*s'.\n", (int)strcspn(ctx->command, " "), ctx->command);
	return CLI_EXIT_USAGE;
}

int cli_parse_number(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end = NULL;
	unsigned long long v;

	/* strtoull alone would accept " 5", "+5" and "-5" (negated into a huge value) */
	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_device_id(const char *s, uint32_t *out)
{
	unsigned long long v;
	if (cli_parse_number(s, UINT32_MAX, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cli_parse_key(const char *s, uint8_t out[PARLEY_DEVICE_KEY_BYTES])
{
	return cli_parse_b64(s, out, PARLEY_DEVICE_KEY_BYTES);
}

int cli_parse_b64(const char *s, uint8_t *out, size_t n)
{
	static const int variants[] = {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
				       sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
	size_t i, len;
	const char *end;

	for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		if (sodium_base642bin(out, n, s, strlen(s), NULL, &len, &end, variants[i]) == 0 && *end == '\0' &&
		    len == n)
			return 0;
	}
	return -1;
}

void cli_format_b64(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	sodium_bin2base64(out, outlen, in, n, sodium_base64_VARIANT_ORIGINAL);
}

static const cli_command *find_command(const char *name)
{
	size_t i;
	for (i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"server", required_argument, NULL, 's'}, {"home", required_argument, NULL, 'H'},
		{"ca-file", required_argument, NULL, 'c'}, {"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},          {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	cli_ctx ctx;
	const cli_command *cmd;
	const char *env;
	unsigned long long timeout;
	int opt, rc;

	/* A server that drops the connection must be an error code, not a SIGPIPE death. */
	signal(SIGPIPE, SIG_IGN);
	memset(&ctx, 0, sizeof(ctx));
	parley_client_options_init(&ctx.opts);
	ctx.command = "parley";
	env = getenv("PARLEY_SERVER");
	if (env != NULL && env[0] != '\0')
		ctx.opts.server_url = env;
	env = getenv("PARLEY_HOME");
	if (env != NULL && env[0] != '\0')
		ctx.opts.state_dir = env;
	/* an environment variable, not an option: a command line is visible to every user in ps */
	env = getenv("PARLEY_STORAGE_PASSPHRASE");
	if (env != NULL && env[0] != '\0')
		ctx.opts.storage_passphrase = env;
	opterr = 0;
	/* '+': stop at the command name; everything after it belongs to the command. */
	for (;;) {
		opt = getopt_long(argc, argv, "+hV", longopts, NULL);
		if (opt == -1)
			break;
		switch (opt) {
		case 's':
			ctx.opts.server_url = optarg;
			break;
		case 'H':
			ctx.opts.state_dir = optarg;
			break;
		case 'c':
			ctx.opts.ca_file = optarg;
			break;
		case 't':
			if (cli_parse_number(optarg, 600000, &timeout) != 0) {
				fprintf(stderr, "parley: --timeout: expected milliseconds, 1 to 600000\n");
				return CLI_EXIT_USAGE;
			}
			ctx.opts.connect_timeout_ms = ctx.opts.request_timeout_ms = (unsigned)timeout;
			break;
		case 'h':
			print_usage(stdout);
			return CLI_EXIT_OK;
		case 'V':
			printf("parley %s (libparley %s)\n", PARLEY_VERSION_STRING, parley_version());
			return CLI_EXIT_OK;
		default:
			fprintf(stderr, "parley: unknown option or missing value: '%s'\nTry 'parley --help'.\n",
				argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		print_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (ctx.opts.server_url != NULL && strncmp(ctx.opts.server_url, "ws://", 5) != 0 &&
	    strncmp(ctx.opts.server_url, "wss://", 6) != 0) {
		fprintf(stderr, "parley: server URL must start with ws:// or wss:// (got '%s')\n", ctx.opts.server_url);
		return CLI_EXIT_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (cmd == NULL) {
		fprintf(stderr, "parley: unknown command '%s'\nTry 'parley --help'.\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (cmd->run == NULL) { /* help */
		if (optind + 1 < argc)
			return cli_print_command_help(argv[optind + 1]);
		print_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (optind + 1 < argc && cli_is_help(argv[optind + 1]))
		return cli_print_command_help(cmd->name);
	ctx.command = cmd->name;
	rc = cmd->run(&ctx, argc - optind, argv + optind);
	/* Work the library started by itself finishes before the process goes (e.g. the entity key
	 * holder signing what another admin approved, after authenticating): each request is bounded by
	 * the request timeout. */
	if (ctx.client != NULL)
		(void)parley_client_run(ctx.client, 0);
	parley_client_free(ctx.client);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		fprintf(stderr, "parley: %s: cannot write output\n", ctx.command);
		rc = CLI_EXIT_ERROR;
	}
	return rc;
}
