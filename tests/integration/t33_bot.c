/* t33: `parley bot` (issue 10 item 7) with real processes on loopback: parleyd, the `parley` CLI
 * ($PARLEY) running the bot account "robo" of entity "shop", a POSIX sh program driving it, t33's
 * webhook endpoint ($T33_WEBHOOK), and libparley clients for the admin (ada) and the customer (carol).
 *
 *   default_agent   robo, enrolled with a bot code and made a default agent, answers carol's first
 *                   message (carol sees the entity's handle as the sender); the program's events are
 *                   the documented lines; a line of an unknown type is refused on stderr; an action
 *                   that fails comes back to the program as an "error" event.
 *   handback_refused  a hand-back by robo while it is not the handling agent: an "error" event.
 *   forwarded       ada forwards the thread to robo with a note: the program gets "forwarded", answers
 *                   and hands the thread back to the admins' queue; ada's view: two more events
 *                   (the forward's HANDLING, robo's HANDBACK) and no handling agent; no error this time.
 *   stop_cleanly    SIGTERM: the bot exits 0, in seconds (the program's input closed).
 *   exit_status     the program's exit status is the bot's.
 *   backpressure    a program that never reads: the bot stops receiving (the server keeps the rest);
 *                   a program that reads late: the bot pauses, drains, receives again, and every
 *                   message comes through once and in order.
 *   webhook         a wrong secret: the endpoint answers 401 and the bot reports it; the right one: the
 *                   endpoint's reply reaches carol.
 *   closed          forwarded again with the note "close it": the program closes the thread.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parley/parley.h>
#include <parley/thread.h>

#include "harness.h"

static srv s;
static char url[128], robo_home[512], bot_log[512], bot_err[512];
static const char *parley_bin, *webhook_bin;
static parley_client *ada, *carol;
static uint64_t thread_id;

/* The bot program (sh): logs every event, answers customers, hands back on request or after a
 * forward; its first answer also names a thread that does not exist (an error must come back). */
static const char bot_sh[] =
	"printf '{\"type\":\"dance\",\"thread\":1}\\n'\n"
	"first=1\n"
	"while IFS= read -r line; do\n"
	"  printf '%s\\n' \"$line\" >>\"$BOT_LOG\"\n"
	"  t=$(printf '%s\\n' \"$line\" | sed -n 's/.*\"thread\":\\([0-9]*\\).*/\\1/p')\n"
	"  case \"$line\" in\n"
	"  '{\"type\":\"message\"'*'\"role\":\"customer\"'*)\n"
	"    case \"$line\" in\n"
	"    *'\"body\":\"agent please\"'*) printf '{\"type\":\"handback\",\"thread\":%s,\"to\":\"admin\"}\\n' \"$t\" ;;\n"
	"    *) printf '{\"type\":\"reply\",\"thread\":%s,\"body\":\"robo: got it\"}\\n' \"$t\"\n"
	"       if [ $first = 1 ]; then first=0; printf "
	"'{\"type\":\"reply\",\"thread\":999999999,\"body\":\"lost\"}\\n'; fi ;;\n"
	"    esac ;;\n"
	"  '{\"type\":\"forwarded\"'*'\"note\":\"close it\"'*)\n"
	"    printf '{\"type\":\"close\",\"thread\":%s}\\n' \"$t\" ;;\n"
	"  '{\"type\":\"forwarded\"'*)\n"
	"    printf '{\"type\":\"reply\",\"thread\":%s,\"body\":\"robo: taking over\"}\\n' \"$t\"\n"
	"    printf '{\"type\":\"handback\",\"thread\":%s,\"to\":\"admin\"}\\n' \"$t\" ;;\n"
	"  esac\n"
	"done\n";

/* ---- carol's inbox ---- */

#define INBOX_MAX 512
static struct {
	char sender[PARLEY_HANDLE_MAX + 1];
	char body[64];
} inbox[INBOX_MAX];
static int inbox_n;

static void on_thread_message(parley_client *c, const parley_thread_message *m, void *user)
{
	if (inbox_n < INBOX_MAX) {
		snprintf(inbox[inbox_n].sender, sizeof inbox[0].sender, "%s", m->sender);
		snprintf(inbox[inbox_n].body, sizeof inbox[0].body, "%.*s", (int)m->body_len, (const char *)m->body);
		inbox_n++;
	}
}

static void on_message(parley_client *c, const parley_message *m, void *user)
{
}

/* Receives from now on (the backlog comes on a new connection). */
static void receive(parley_client *c)
{
	parley_events ev;
	parley_thread_events tev;

	memset(&ev, 0, sizeof ev);
	memset(&tev, 0, sizeof tev);
	ev.on_message = on_message;
	tev.on_thread_message = on_thread_message;
	parley_client_disconnect(c);
	parley_thread_set_events(c, &tev);
	parley_client_set_events(c, &ev);
	IT_EQ(parley_connect(c), PARLEY_OK);
}

/* 1 when carol got a message with this body within secs (its sender in *sender). */
static int carol_gets(const char *body, int secs, char sender[PARLEY_HANDLE_MAX + 1])
{
	int i, t;

	for (t = 0; t < secs * 10; t++) {
		for (i = 0; i < inbox_n; i++) {
			if (strcmp(inbox[i].body, body) == 0) {
				if (sender != NULL)
					snprintf(sender, PARLEY_HANDLE_MAX + 1, "%s", inbox[i].sender);
				return 1;
			}
		}
		parley_client_run(carol, 100);
	}
	return 0;
}

/* ---- the bot process ---- */

static pid_t bot_start(const char *const *args)
{
	const char *argv[32];
	int n = 0, i;
	pid_t p;

	argv[n++] = parley_bin;
	argv[n++] = "--server";
	argv[n++] = url;
	argv[n++] = "--home";
	argv[n++] = robo_home;
	argv[n++] = "bot";
	for (i = 0; args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	p = fork();
	if (p == 0) {
		FILE *f = freopen(bot_err, "a", stderr);
		(void)f;
		setenv("BOT_LOG", bot_log, 1);
		execv(parley_bin, (char *const *)argv);
		_exit(127);
	}
	return p;
}

/* The bot's exit code, or -1 if it did not exit within secs (then it is killed). */
static int bot_wait(pid_t p, int secs)
{
	int st, t;

	for (t = 0; t < secs * 20; t++) {
		if (waitpid(p, &st, WNOHANG) == p)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (carol != NULL)
			parley_client_run(carol, 50);
		else
			usleep(50000);
	}
	kill(p, SIGKILL);
	waitpid(p, &st, 0);
	return -1;
}

static int file_has(const char *path, const char *needle)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, needle) != NULL;
}

static int wait_file_has(const char *path, const char *needle, int secs)
{
	int t;
	for (t = 0; t < secs * 10; t++) {
		if (file_has(path, needle))
			return 1;
		parley_client_run(carol, 100);
	}
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	IT_CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

static void setup(void)
{
	char code[PARLEY_ENROL_CODE_MAX + 1], path[600];
	parley_rules_change ch;
	parley_client *robo;
	uint64_t id = 0, req = 0;

	ada = it_user(&s, url, "ada");
	carol = it_user(&s, url, "carol");
	robo = it_user(&s, url, "robo");
	IT_MUST(&s, ada != NULL && carol != NULL && robo != NULL);
	IT_EQ(parley_entity_create(ada, "shop", "Shop Support", &id), PARLEY_OK);
	IT_EQ(parley_entity_code(ada, "shop", 0, PARLEY_ROLE_BOT, code, sizeof code, NULL), PARLEY_OK);
	IT_EQ(parley_entity_join(robo, "shop", code, &req), PARLEY_OK);
	IT_EQ(parley_entity_decide(ada, "shop", req, 1), PARLEY_OK);
	parley_rules_change_init(&ch);
	ch.default_agent = 1;
	IT_EQ(parley_entity_set_rules(ada, "shop", "robo", &ch), PARLEY_OK);
	/* the bot process is robo's only client from now on */
	parley_client_free(robo);
	snprintf(robo_home, sizeof robo_home, "%s/robo", s.dir);
	snprintf(bot_log, sizeof bot_log, "%s/bot.log", s.dir);
	snprintf(bot_err, sizeof bot_err, "%s/bot.err", s.dir);
	snprintf(path, sizeof path, "%s/bot.sh", s.dir);
	write_file(path, bot_sh);
	receive(carol);
}

static pid_t exec_bot;

static void default_agent(void)
{
	char path[600], sender[PARLEY_HANDLE_MAX + 1] = "", want[128];
	const char *args[] = {"--exec", "/bin/sh", path, NULL};

	snprintf(path, sizeof path, "%s/bot.sh", s.dir);
	exec_bot = bot_start(args);
	IT_EQ(parley_thread_send_entity(carol, "shop", (const uint8_t *)"hello", 5, &thread_id), PARLEY_OK);
	IT_CHECK(thread_id != 0);
	IT_CHECK(carol_gets("robo: got it", 30, sender));
	/* the customer sees the entity, never the bot's own handle */
	IT_CHECK(strcmp(sender, "shop") == 0);
	snprintf(want, sizeof want, "{\"type\":\"message\",\"thread\":%llu,\"entity\":\"shop\",\"from\":\"carol\","
				    "\"role\":\"customer\",\"body\":\"hello\",\"payment\":false,\"ts\":",
		 (unsigned long long)thread_id);
	IT_CHECK(file_has(bot_log, want));
	IT_CHECK(wait_file_has(bot_err, "program line 1 refused: unknown type \"dance\"", 10));
	IT_CHECK(wait_file_has(bot_log, "{\"type\":\"error\",\"thread\":999999999,\"code\":", 10));
}

static void handback_refused(void)
{
	char want[64];

	snprintf(want, sizeof want, "{\"type\":\"error\",\"thread\":%llu,", (unsigned long long)thread_id);
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"agent please", 12, 0), PARLEY_OK);
	IT_CHECK(wait_file_has(bot_log, want, 20));
}

/* How many times needle occurs in the file. */
static int file_count(const char *path, const char *needle)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	const char *p = buf;
	size_t n;
	int k = 0;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	while ((p = strstr(p, needle)) != NULL) {
		k++;
		p += strlen(needle);
	}
	return k;
}

static void forwarded(void)
{
	parley_thread_info info;
	char want[160], err[64];
	uint64_t before;
	int t;

	IT_EQ(parley_thread_get(ada, thread_id, &info), PARLEY_OK);
	before = info.membership_version;
	IT_EQ(parley_thread_forward(ada, thread_id, "robo", "over to you", 10), PARLEY_OK);
	snprintf(want, sizeof want, "{\"type\":\"forwarded\",\"thread\":%llu,\"entity\":\"shop\",\"from\":\"ada\","
				    "\"note\":\"over to you\",",
		 (unsigned long long)thread_id);
	IT_CHECK(wait_file_has(bot_log, want, 20));
	IT_CHECK(carol_gets("robo: taking over", 20, NULL));
	/* the forward's HANDLING (robo was a member already), then robo's HANDBACK to the admins' queue */
	memset(&info, 0, sizeof info);
	for (t = 0; t < 100; t++) {
		IT_EQ(parley_thread_get(ada, thread_id, &info), PARLEY_OK);
		if (info.membership_version >= before + 2)
			break;
		parley_client_run(carol, 100);
	}
	IT_EQ(info.membership_version, before + 2);
	IT_CHECK(strcmp(info.handling_agent, "") == 0);
	/* this time the hand-back was allowed: still only the one error of handback_refused */
	snprintf(err, sizeof err, "{\"type\":\"error\",\"thread\":%llu,", (unsigned long long)thread_id);
	IT_EQ(file_count(bot_log, err), 1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void stop_cleanly(void)
{
	uint64_t t0 = now_ms(), ms;

	kill(exec_bot, SIGTERM);
	IT_EQ(bot_wait(exec_bot, 20), 0);
	ms = now_ms() - t0;
	IT_CHECK(ms < 10000);
}

static void exit_status(void)
{
	const char *args[] = {"--exec", "/bin/sh", "-c", "exit 7", NULL};
	IT_EQ(bot_wait(bot_start(args), 20), 7);
}

/* Messages "mNNN " + filler, 8000 bytes each, numbered from..to-1: a pipe holds about eight, the bot's
 * queue 64. */
static void send_numbered(int from, int to)
{
	static uint8_t body[8000];
	int i;

	memset(body, 'x', sizeof body);
	for (i = from; i < to; i++) {
		char num[16];
		snprintf(num, sizeof num, "m%03d ", i);
		memcpy(body, num, 5);
		IT_EQ(parley_thread_send(carol, thread_id, body, sizeof body, 0), PARLEY_OK);
	}
}

/* The numbers of the message events in a file of event lines, in order; how many. */
static int read_numbers(const char *path, int *out, int max)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *p;
	size_t cap = 0;
	int n = 0;

	if (f == NULL)
		return 0;
	while (getline(&line, &cap, f) > 0 && n < max) {
		p = strstr(line, "\"body\":\"m");
		if (p != NULL)
			out[n++] = (int)strtol(p + 9, NULL, 10);
	}
	free(line);
	fclose(f);
	return n;
}

/* A program that never reads: the bot stops receiving (the server keeps the rest). A program that
 * starts reading late: the bot pauses, drains, receives again on a new connection and hands over
 * everything, in order, each once. */
static void backpressure(void)
{
	static int got[400];
	char out[600], cmd[700];
	const char *sleeper[] = {"--exec", "/bin/sh", "-c", "exec sleep 60", NULL};
	const char *late[] = {"--timeout", "20", "--exec", "/bin/sh", "-c", cmd, NULL};
	pid_t p;
	int i, n, ordered = 1;

	p = bot_start(sleeper);
	send_numbered(0, 100);
	for (i = 0; i < 50; i++)
		parley_client_run(carol, 100);
	kill(p, SIGTERM);
	IT_EQ(bot_wait(p, 30), 0);
	/* what it did not take waits on the server; 100 more join it */
	send_numbered(100, 200);
	snprintf(out, sizeof out, "%s/taken", s.dir);
	snprintf(cmd, sizeof cmd, "sleep 3; exec cat >'%s'", out);
	IT_EQ(bot_wait(bot_start(late), 60), 0);
	n = read_numbers(out, got, 400);
	for (i = 1; i < n; i++)
		ordered &= got[i] == got[i - 1] + 1;
	fprintf(stderr, "# the first bot took %d of 100 messages; the second got %d (m%03d..m%03d)\n",
		n > 0 ? got[0] : -1, n, n > 0 ? got[0] : -1, n > 0 ? got[n - 1] : -1);
	/* the first took at most its queue and what the pipe held */
	IT_CHECK(n > 0 && got[0] >= 20 && got[0] <= 80);
	/* the second paused (more than 64 + a pipe were waiting) and still got every one, once, in order */
	IT_CHECK(n > 64 + 20 && ordered && got[n - 1] == 199);
}

static void webhook(void)
{
	char port_file[600], secret[600], wrong[600], log[600], hook_url[128], port[16] = "";
	const char *args[] = {"--webhook", hook_url, "--secret-file", secret, NULL};
	const char *bad[] = {"--webhook", hook_url, "--secret-file", wrong, NULL};
	pid_t server, bot;
	FILE *f;
	int i;

	snprintf(port_file, sizeof port_file, "%s/hook.port", s.dir);
	snprintf(secret, sizeof secret, "%s/hook.secret", s.dir);
	snprintf(wrong, sizeof wrong, "%s/hook.wrong", s.dir);
	snprintf(log, sizeof log, "%s/hook.log", s.dir);
	write_file(secret, "sekrit\n");
	write_file(wrong, "not the secret\n");
	chmod(secret, 0600);
	chmod(wrong, 0600);
	server = fork();
	if (server == 0) {
		execl(webhook_bin, webhook_bin, port_file, secret, log, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200 && strchr(port, '\n') == NULL; i++) {
		usleep(25000);
		f = fopen(port_file, "r");
		if (f != NULL) {
			if (fgets(port, sizeof port, f) == NULL)
				port[0] = '\0';
			fclose(f);
		}
	}
	port[strcspn(port, "\n")] = '\0';
	snprintf(hook_url, sizeof hook_url, "http://127.0.0.1:%s/hook", port);

	bot = bot_start(bad);
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"wrong secret", 12, 0), PARLEY_OK);
	IT_CHECK(wait_file_has(bot_err, "(1 attempt): HTTP 401: bad signature", 20));
	IT_CHECK(file_has(log, "rejected"));
	kill(bot, SIGTERM);
	IT_EQ(bot_wait(bot, 20), 0);

	bot = bot_start(args);
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"webhook?", 8, 0), PARLEY_OK);
	IT_CHECK(carol_gets("hook: got it", 30, NULL));
	IT_CHECK(file_has(log, "\"body\":\"webhook?\""));
	kill(bot, SIGTERM);
	IT_EQ(bot_wait(bot, 20), 0);
	kill(server, SIGTERM);
	waitpid(server, NULL, 0);
}

/* Forwarded again with the note "close it", the program closes the thread: closed for everyone. */
static void closed(void)
{
	char path[600];
	const char *args[] = {"--exec", "/bin/sh", path, NULL};
	parley_thread_info info;
	pid_t bot;
	int t;

	snprintf(path, sizeof path, "%s/bot.sh", s.dir);
	bot = bot_start(args);
	IT_EQ(parley_thread_forward(ada, thread_id, "robo", "close it", 0), PARLEY_OK);
	memset(&info, 0, sizeof info);
	for (t = 0; t < 200 && info.status != PARLEY_THREAD_CLOSED; t++) {
		IT_EQ(parley_thread_get(ada, thread_id, &info), PARLEY_OK);
		parley_client_run(carol, 100);
	}
	IT_EQ(info.status, PARLEY_THREAD_CLOSED);
	IT_EQ(parley_thread_send(carol, thread_id, (const uint8_t *)"hello?", 6, 0), PARLEY_E_THREAD_CLOSED);
	kill(bot, SIGTERM);
	IT_EQ(bot_wait(bot, 20), 0);
}

int main(void)
{
	parley_bin = getenv("PARLEY");
	webhook_bin = getenv("T33_WEBHOOK");
	if (parley_bin == NULL || webhook_bin == NULL) {
		fprintf(stderr, "Bail out! PARLEY and T33_WEBHOOK must be set\n");
		return 99;
	}
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	setup();
	IT_RUN(default_agent);
	if (getenv("T33_ONLY") != NULL) { kill(exec_bot, SIGTERM); bot_wait(exec_bot, 20); return 1; }
	IT_RUN(handback_refused);
	IT_RUN(forwarded);
	IT_RUN(stop_cleanly);
	IT_RUN(exit_status);
	IT_RUN(backpressure);
	IT_RUN(webhook);
	IT_RUN(closed);
	parley_client_free(ada);
	parley_client_free(carol);
	IT_EQ(srv_stop(&s), 0);
	if (it_failures == 0)
		srv_cleanup(&s);
	else
		fprintf(stderr, "# kept %s (bot.log, bot.err)\n", s.dir);
	return it_failures > 0;
}
