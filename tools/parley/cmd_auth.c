/* parley auth: authorization request components (admins), the status of a thread's authentication,
 * the customer's answer; `parley thread auth` (the agent's Authenticate); listen's auth lines
 * (docs/auth.md). The lines themselves: auth_lines.c.
 */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"

#define COMPONENTS_MAX 64
#define TTL_DEFAULT_S 3600 /* a create without --ttl: an hour, capped by the token's own expiry */

extern char **environ;

static int parse_id(cli_ctx *ctx, const char *s, const char *what, uint64_t *id)
{
	unsigned long long v;
	if (s[0] == '#')
		s++;
	if (cli_parse_number(s, UINT64_MAX, &v) != 0)
		return cli_usage(ctx, "'%s' is no %s", s, what);
	*id = v;
	return CLI_EXIT_OK;
}

/* The components of entity the caller may see (admins: all). */
static int list_components(cli_ctx *ctx, parley_client *c, const char *entity, parley_auth_component *out, size_t *n)
{
	parley_err rc = parley_auth_component_list(c, entity, out, COMPONENTS_MAX, n);
	return rc == PARLEY_OK ? CLI_EXIT_OK : cli_fail(ctx, rc);
}

/* create ENTITY NAME --type T [options] | edit ENTITY ID [options] */
static int component_put(cli_ctx *ctx, parley_client *c, int create, int argc, char **argv)
{
	static parley_auth_component list[COMPONENTS_MAX];
	parley_auth_component comp, out;
	char err[160];
	uint64_t id = 0;
	size_t n = 0;
	int have_type = 0, r;

	memset(&comp, 0, sizeof(comp));
	if (argc < 2)
		return cli_usage(ctx, create ? "expected: auth component create ENTITY NAME --type TYPE [OPTIONS]"
					     : "expected: auth component edit ENTITY ID [OPTIONS]");
	if (create) {
		if (strlen(argv[1]) >= sizeof(comp.name) || argv[1][0] == '\0')
			return cli_usage(ctx, "a component's name has 1 to %d bytes", PARLEY_AUTH_NAME_MAX);
		snprintf(comp.name, sizeof(comp.name), "%s", argv[1]);
		comp.credential_ttl_s = TTL_DEFAULT_S;
	} else {
		if ((r = parse_id(ctx, argv[1], "component id", &id)) != CLI_EXIT_OK)
			return r;
		/* an edit starts from the component as it is: the options change only what they name */
		if ((r = list_components(ctx, c, argv[0], list, &n)) != CLI_EXIT_OK)
			return r;
		for (size_t i = 0; i < n && comp.component_id == 0; i++)
			if (list[i].component_id == id)
				comp = list[i];
		if (comp.component_id == 0)
			return cli_fail(ctx, PARLEY_E_NO_SUCH_COMPONENT);
		have_type = 1;
	}
	if (strlen(argv[0]) >= sizeof(comp.entity))
		return cli_usage(ctx, "'%s' is no entity handle", argv[0]);
	snprintf(comp.entity, sizeof(comp.entity), "%s", argv[0]);
	if (cli_auth_parse_options(argc - 2, argv + 2, &comp, &have_type, err, sizeof(err)) != 0)
		return cli_usage(ctx, "%s", err);
	if (!have_type)
		return cli_usage(ctx, "--type oidc|oauth2|otp|jwt is required");
	parley_err rc = parley_auth_component_put(c, &comp, &out);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	cli_auth_print_component(stdout, &out);
	return CLI_EXIT_OK;
}

static int cmd_component(cli_ctx *ctx, parley_client *c, int argc, char **argv)
{
	static parley_auth_component list[COMPONENTS_MAX];
	const char *sub = argc > 0 ? argv[0] : "";
	parley_auth_component out;
	uint64_t id = 0;
	size_t n = 0;
	int r;

	if (strcmp(sub, "create") == 0 || strcmp(sub, "edit") == 0)
		return component_put(ctx, c, sub[0] == 'c', argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 && argc == 2) {
		if ((r = list_components(ctx, c, argv[1], list, &n)) != CLI_EXIT_OK)
			return r;
		for (size_t i = 0; i < n; i++)
			cli_auth_print_component_row(stdout, &list[i]);
		return CLI_EXIT_OK;
	}
	if ((strcmp(sub, "activate") == 0 || strcmp(sub, "deactivate") == 0) && argc == 3) {
		if ((r = parse_id(ctx, argv[2], "component id", &id)) != CLI_EXIT_OK)
			return r;
		parley_err rc = parley_auth_component_set_state(
			c, argv[1], id, sub[0] == 'a' ? PARLEY_COMPONENT_ACTIVE : PARLEY_COMPONENT_INACTIVE, &out);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		cli_auth_print_component(stdout, &out);
		return CLI_EXIT_OK;
	}
	return cli_usage(ctx, "expected: auth component create|edit|activate|deactivate|list ...");
}

/* A JWT given as "-" is read from standard input: a token on the command line is visible in ps. */
static int read_jwt(cli_ctx *ctx, char *buf, size_t size)
{
	size_t n = fread(buf, 1, size - 1, stdin);
	int more = fgetc(stdin) != EOF;

	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (more || n == 0 || n > PARLEY_AUTH_JWT_MAX)
		return cli_usage(ctx, "the JWT on standard input has 1 to %d bytes", PARLEY_AUTH_JWT_MAX);
	return CLI_EXIT_OK;
}

static int cmd_answer(cli_ctx *ctx, parley_client *c, int argc, char **argv)
{
	static char jwt[PARLEY_AUTH_JWT_MAX + 2];
	const char *otp = NULL, *tok = NULL;
	uint64_t id = 0;
	int r;

	if (argc != 3 || (strcmp(argv[1], "--otp") != 0 && strcmp(argv[1], "--jwt") != 0))
		return cli_usage(ctx, "expected: auth answer REQUEST --otp CODE | --jwt TOKEN|-");
	if ((r = parse_id(ctx, argv[0], "request id", &id)) != CLI_EXIT_OK)
		return r;
	if (argv[1][2] == 'o') {
		otp = argv[2];
	} else if (strcmp(argv[2], "-") == 0) {
		if ((r = read_jwt(ctx, jwt, sizeof(jwt))) != CLI_EXIT_OK)
			return r;
		tok = jwt;
	} else {
		tok = argv[2];
	}
	parley_err rc = parley_auth_answer(c, id, otp, tok);
	sodium_memzero(jwt, sizeof(jwt)); /* a bearer credential: not left in memory */
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("request %llu: accepted\n", (unsigned long long)id);
	return CLI_EXIT_OK;
}

/* email THREAD [ADDRESS] [--remove]: the arguments are checked before connecting (usage: exit 2) */
static int cmd_email(cli_ctx *ctx, int argc, char **argv)
{
	static parley_auth_emails list;
	const char *addr = NULL;
	parley_client *c;
	uint64_t id = 0;
	int remove = 0, r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--remove") == 0 && !remove)
			remove = 1;
		else if (addr == NULL && argv[i][0] != '-')
			addr = argv[i];
		else
			argc = 0; /* an unknown option or a second address */
	}
	if (argc < 1 || (remove && addr == NULL))
		return cli_usage(ctx, "expected: auth email THREAD [ADDRESS] [--remove]");
	if ((r = parse_id(ctx, argv[0], "thread id", &id)) != CLI_EXIT_OK)
		return r;
	if ((c = cli_client(ctx)) == NULL)
		return CLI_EXIT_ERROR;
	parley_err rc = parley_auth_known_email(c, id, addr, remove, &list);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	cli_auth_print_emails(stdout, &list);
	return CLI_EXIT_OK;
}

int cmd_auth(cli_ctx *ctx, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	parley_client *c;
	uint64_t id = 0;
	int r;

	if (strcmp(sub, "email") == 0)
		return cmd_email(ctx, argc - 2, argv + 2);
	if (strcmp(sub, "component") != 0 && strcmp(sub, "status") != 0 && strcmp(sub, "answer") != 0)
		return cli_usage(ctx, "expected: auth component|status|answer|email ...");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	if (sub[0] == 'c')
		return cmd_component(ctx, c, argc - 2, argv + 2);
	if (sub[0] == 'a')
		return cmd_answer(ctx, c, argc - 2, argv + 2);
	if (argc != 3)
		return cli_usage(ctx, "expected: auth status THREAD");
	if ((r = parse_id(ctx, argv[2], "thread id", &id)) != CLI_EXIT_OK)
		return r;
	static parley_auth_status st;
	parley_err rc = parley_auth_status_get(c, id, &st);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	cli_auth_print_status(stdout, id, &st);
	return CLI_EXIT_OK;
}

/* parley thread auth THREAD COMPONENT (argv[0] = "auth"): COMPONENT is an id or a name of the thread's
 * entity (resolved through the components this account may see: the active ones). */
int cli_thread_auth(cli_ctx *ctx, int argc, char **argv)
{
	static parley_auth_component list[COMPONENTS_MAX];
	parley_thread_info info;
	parley_auth_request req;
	parley_client *c;
	uint64_t thread_id = 0, comp_id = 0;
	unsigned long long v;
	size_t n = 0;
	parley_err rc;
	int r;

	if (argc != 3)
		return cli_usage(ctx, "expected: thread auth THREAD COMPONENT");
	if ((r = parse_id(ctx, argv[1], "thread id", &thread_id)) != CLI_EXIT_OK)
		return r;
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	if (cli_parse_number(argv[2], UINT64_MAX, &v) == 0) {
		comp_id = v;
	} else {
		if ((rc = parley_thread_get(c, thread_id, &info)) != PARLEY_OK)
			return cli_fail(ctx, rc);
		if ((r = list_components(ctx, c, info.entity, list, &n)) != CLI_EXIT_OK)
			return r;
		for (size_t i = 0; i < n && comp_id == 0; i++)
			if (strcmp(list[i].name, argv[2]) == 0)
				comp_id = list[i].component_id;
		if (comp_id == 0)
			return cli_fail(ctx, PARLEY_E_NO_SUCH_COMPONENT);
	}
	rc = parley_auth_start(c, thread_id, comp_id, &req);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	cli_auth_print_sent(stdout, &req);
	return CLI_EXIT_OK;
}

/* ---- parley listen ---- */

static int open_urls;

/* --open: the sign-in URL (http(s), printable: libparley checked it) in the desktop's browser, without
 * a shell; quietly nothing where xdg-open is missing. */
static void open_url(const char *url)
{
	char *args[] = {(char *)"xdg-open", (char *)url, NULL};
	pid_t pid;

	while (waitpid(-1, NULL, WNOHANG) > 0) /* the earlier xdg-opens */
		;
	if (posix_spawnp(&pid, "xdg-open", NULL, NULL, args, environ) != 0)
		return;
}

static void ev_prompt(parley_client *c, const parley_auth_prompt *p, void *user)
{
	cli_auth_print_prompt(stdout, p);
	fflush(stdout);
	if (open_urls && p->request->url[0] != '\0' && p->channel == PARLEY_CHANNEL_NATIVE)
		open_url(p->request->url);
}

static void ev_result(parley_client *c, const parley_auth_result *r, void *user)
{
	cli_auth_print_result(stdout, r);
	fflush(stdout);
}

void cli_listen_auth(parley_client *c, int open)
{
	parley_auth_events ev;

	open_urls = open;
	memset(&ev, 0, sizeof(ev));
	ev.on_auth_prompt = ev_prompt;
	ev.on_auth_result = ev_result;
	parley_auth_set_events(c, &ev);
}
