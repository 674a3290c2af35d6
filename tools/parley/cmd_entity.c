/* `parley entity ...` and `parley agent join`: businesses with admins and agents (docs/entities.md).
 * Every subcommand is one blocking libparley call (include/parley/entity.h) and prints stable lines.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define MAX_LISTED 200 /* a staff list's most members; requests are bounded by it too */

static void print_utc(uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ms);
	printf("%s UTC", buf);
}

static const char *onoff(unsigned rules, unsigned bit)
{
	return (rules & bit) ? "on" : "off";
}

static void print_rules(unsigned rules)
{
	printf("default-agent=%s may-initiate=%s may-pay=%s may-transfer=%s show-name=%s",
	       onoff(rules, PARLEY_RULE_DEFAULT_AGENT), onoff(rules, PARLEY_RULE_MAY_INITIATE),
	       onoff(rules, PARLEY_RULE_MAY_PAY), onoff(rules, PARLEY_RULE_MAY_TRANSFER),
	       onoff(rules, PARLEY_RULE_SHOW_NAME));
}

/* Members of one kind (admins: role admin; agents: agents, bots and gateways), one line each. A gateway
 * is listed with the agents for its removal, but it is never staff: no rule applies to it. */
static void print_members(const parley_entity *e, int admins)
{
	size_t i, shown = 0;

	for (i = 0; i < parley_entity_member_count(e); i++) {
		parley_entity_member m;
		char h[PARLEY_HANDLE_MAX + 1];

		if (parley_entity_member_get(e, i, &m) != PARLEY_OK || (m.role == PARLEY_ROLE_ADMIN) != admins)
			continue;
		printf("%s %s%s devices %zu ", cli_safe_handle(m.handle, h), parley_entity_role_name(m.role),
		       m.primary ? " (primary)" : "", m.n_devices);
		if (m.role == PARLEY_ROLE_GATEWAY)
			printf("(never staff: the customer side of its channel threads)");
		else
			print_rules(m.rules);
		putchar('\n');
		shown++;
	}
	if (shown == 0)
		printf("(no %s)\n", admins ? "admins" : "agents");
}

static int get(cli_ctx *ctx, parley_client *c, const char *entity, parley_entity **e)
{
	parley_err rc = parley_entity_get(c, entity, e);
	return rc == PARLEY_OK ? CLI_EXIT_OK : cli_fail(ctx, rc);
}

static int show(cli_ctx *ctx, parley_client *c, const char *entity, int what)
{
	parley_entity *e = NULL;
	int lock = 0, exempt = 0, rc = get(ctx, c, entity, &e);
	unsigned defaults = 0;

	if (rc != CLI_EXIT_OK)
		return rc;
	if (what == 0) {
		parley_entity_rules(e, &lock, &exempt, &defaults);
		printf("entity %s (", parley_entity_handle(e));
		cli_print_safe(parley_entity_display_name(e));
		printf(") id %llu staff version %llu\n", (unsigned long long)parley_entity_id(e),
		       (unsigned long long)parley_entity_staff_version(e));
		printf("rules: lock=%s admins-exempt=%s ", lock == PARLEY_LOCK_FIRST_RESPONDER ? "first-responder" : "none",
		       exempt ? "on" : "off");
		print_rules(defaults);
		printf("\nentity key: %s\n", parley_entity_key_here(e) ? "held by this device" : "not on this device");
		printf("admins:\n");
		print_members(e, 1);
		printf("agents:\n");
		print_members(e, 0);
	} else {
		print_members(e, what == 1);
	}
	parley_entity_free(e);
	return CLI_EXIT_OK;
}

static int parse_id(cli_ctx *ctx, const char *s, uint64_t *out)
{
	unsigned long long v;
	if (cli_parse_number(s, UINT64_MAX, &v) != 0)
		return cli_usage(ctx, "expected a request id (a positive number), got '%s'", s);
	*out = v;
	return CLI_EXIT_OK;
}

static int code(cli_ctx *ctx, parley_client *c, int argc, char **argv)
{
	const char *entity = NULL, *png = NULL;
	char buf[PARLEY_ENROL_CODE_MAX + 1], payload[128], err[512];
	unsigned long long ttl = 0;
	parley_entity_role role = PARLEY_ROLE_AGENT;
	uint64_t expires = 0;
	parley_err rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
			if (cli_parse_number(argv[++i], 86400, &ttl) != 0)
				return cli_usage(ctx, "--ttl: seconds, 1 to 86400 (the server caps it)");
		} else if (strcmp(argv[i], "--bot") == 0) {
			role = PARLEY_ROLE_BOT;
		} else if (strcmp(argv[i], "--gateway") == 0) {
			role = PARLEY_ROLE_GATEWAY; /* parley-gateway's account: docs/channels.md */
		} else if (strcmp(argv[i], "--png") == 0 && i + 1 < argc) {
			png = argv[++i];
		} else if (argv[i][0] != '-' && entity == NULL) {
			entity = argv[i];
		} else {
			return cli_usage(ctx, "unexpected argument '%s'", argv[i]);
		}
	}
	if (entity == NULL)
		return cli_usage(ctx, "expected ENTITY");
	rc = parley_entity_code(c, entity, (unsigned)ttl, role, buf, sizeof(buf), &expires);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	snprintf(payload, sizeof(payload), PARLEY_JOIN_URI_PREFIX "%s&code=%s", entity, buf);
	printf("code: %s (%s, single use, expires ", buf, parley_entity_role_name(role));
	print_utc(expires);
	printf(")\njoin with: parley agent join %s %s\n", entity, buf);
	if (cli_qr_print(stdout, payload) != PARLEY_OK)
		fprintf(stderr, "parley: %s: cannot draw the QR code\n", ctx->command);
	if (png != NULL) {
		rc = (parley_err)cli_qr_png(png, payload, err, sizeof(err));
		if (rc != PARLEY_OK) {
			fprintf(stderr, "parley: %s: %s (%s): %s\n", ctx->command, parley_strerror(rc), parley_errname(rc),
				err);
			return CLI_EXIT_ERROR;
		}
		printf("QR code written to %s\n", png);
	}
	return CLI_EXIT_OK;
}

/* 1 when this device holds the entity key (it signs lists itself). */
static int key_here(parley_client *c, const char *entity)
{
	parley_entity *e = NULL;
	int here = parley_entity_get(c, entity, &e) == PARLEY_OK && parley_entity_key_here(e);
	parley_entity_free(e);
	return here;
}

/* The handle of member account_id as the verified staff list names it (into buf), else "account N". */
static const char *member_name(parley_client *c, const char *entity, uint64_t account_id,
			       char buf[PARLEY_HANDLE_MAX + 1])
{
	parley_entity *e = NULL;
	parley_entity_member m;

	snprintf(buf, PARLEY_HANDLE_MAX + 1, "account %llu", (unsigned long long)account_id);
	if (parley_entity_get(c, entity, &e) == PARLEY_OK)
		for (size_t i = 0; i < parley_entity_member_count(e); i++)
			if (parley_entity_member_get(e, i, &m) == PARLEY_OK && m.account_id == account_id)
				cli_safe_handle(m.handle, buf);
	parley_entity_free(e);
	return buf;
}

static int requests(cli_ctx *ctx, parley_client *c, const char *entity)
{
	static parley_join_request reqs[MAX_LISTED];
	size_t n = 0, i;
	char h[PARLEY_HANDLE_MAX + 1];
	parley_err rc = parley_entity_requests(c, entity, reqs, MAX_LISTED, &n);

	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	if (n == 0)
		printf("(no pending requests)\n");
	for (i = 0; i < n && i < MAX_LISTED; i++) {
		printf("%llu %s %s devices %zu asked ", (unsigned long long)reqs[i].request_id,
		       cli_safe_handle(reqs[i].handle, h), parley_entity_role_name(reqs[i].role), reqs[i].n_devices);
		print_utc(reqs[i].created_ms);
		putchar('\n');
		if (reqs[i].approved_by != 0)
			printf("  approved by %s: waiting for the device holding the entity key\n",
			       member_name(c, entity, reqs[i].approved_by, h));
		if (reqs[i].safety_number[0] != '\0') {
			fputs("  safety number: ", stdout);
			cli_print_digits(reqs[i].safety_number);
		}
	}
	return CLI_EXIT_OK;
}

/* NAME=on|off into *v (0/1; member rules also accept "inherit"). 1 if arg is that name. */
static int rule_arg(const char *arg, const char *name, int member, int *v, int *bad)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0 || arg[n] != '=')
		return 0;
	arg += n + 1;
	if (strcmp(arg, "on") == 0)
		*v = 1;
	else if (strcmp(arg, "off") == 0)
		*v = 0;
	else if (member && strcmp(arg, "inherit") == 0)
		*v = PARLEY_RULE_INHERIT;
	else
		*bad = 1;
	return 1;
}

static int rules(cli_ctx *ctx, parley_client *c, int argc, char **argv)
{
	const char *entity = NULL, *agent = NULL;
	parley_rules_change ch;
	int changes = 0, bad = 0, i;
	parley_err rc;

	parley_rules_change_init(&ch);
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--agent") == 0 && i + 1 < argc) {
			agent = argv[++i];
			continue;
		}
		if (strncmp(a, "lock=", 5) == 0) {
			ch.lock_mode = strcmp(a + 5, "none") == 0		 ? PARLEY_LOCK_NONE
				       : strcmp(a + 5, "first-responder") == 0 ? PARLEY_LOCK_FIRST_RESPONDER
									 : (bad = 1, -1);
		} else if (!rule_arg(a, "default-agent", 1, &ch.default_agent, &bad) &&
			   !rule_arg(a, "may-initiate", 1, &ch.may_initiate, &bad) &&
			   !rule_arg(a, "may-pay", 1, &ch.may_pay, &bad) &&
			   !rule_arg(a, "may-transfer", 1, &ch.may_transfer, &bad) &&
			   !rule_arg(a, "show-name", 1, &ch.show_name, &bad) &&
			   !rule_arg(a, "admins-exempt", 0, &ch.admins_exempt, &bad)) {
			if (a[0] == '-' || entity != NULL)
				return cli_usage(ctx, "unexpected argument '%s'", a);
			entity = a;
			continue;
		}
		if (bad)
			return cli_usage(ctx, "bad rule '%s'", a);
		changes++;
	}
	if (entity == NULL)
		return cli_usage(ctx, "expected ENTITY");
	if (agent != NULL && (ch.lock_mode >= 0 || ch.admins_exempt >= 0))
		return cli_usage(ctx, "lock= and admins-exempt= are the entity's rules, not an agent's");
	if (agent == NULL && (ch.default_agent == PARLEY_RULE_INHERIT || ch.may_initiate == PARLEY_RULE_INHERIT ||
			      ch.may_pay == PARLEY_RULE_INHERIT || ch.may_transfer == PARLEY_RULE_INHERIT ||
			      ch.show_name == PARLEY_RULE_INHERIT))
		return cli_usage(ctx, "=inherit is for an agent's rules (--agent HANDLE)");
	if (changes > 0) {
		rc = parley_entity_set_rules(c, entity, agent, &ch);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
	}
	if (agent == NULL)
		return show(ctx, c, entity, 0);
	return show(ctx, c, entity, 2);
}

static int safety(cli_ctx *ctx, parley_client *c, int argc, char **argv)
{
	char digits[PARLEY_SAFETY_NUMBER_LEN + 1];
	parley_err rc;

	if (argc == 3 && strcmp(argv[1], "--customer") == 0)
		rc = parley_entity_safety_number_for(c, argv[0], argv[2], digits);
	else if (argc == 1)
		rc = parley_entity_safety_number(c, argv[0], digits);
	else
		return cli_usage(ctx, "expected ENTITY [--customer HANDLE]");

	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	cli_print_digits(digits);
	return CLI_EXIT_OK;
}

static int devices(cli_ctx *ctx, parley_client *c, const char *entity)
{
	static parley_entity_device devs[MAX_LISTED];
	size_t n = 0, left = 0, i;
	char h[PARLEY_HANDLE_MAX + 1];
	parley_err rc = parley_entity_devices(c, entity, devs, MAX_LISTED, &n, &left);

	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	for (i = 0; i < n && i < MAX_LISTED; i++)
		printf("%s device %u%s\n", cli_safe_handle(devs[i].handle, h), (unsigned)devs[i].device_id,
		       devs[i].listed ? "" : " NOT LISTED: left out");
	if (left > 0)
		fprintf(stderr, "parley: %s: warning: %zu device(s) not in their member's signed device list were left "
				"out: %s\n",
			ctx->command, left, parley_client_errmsg(c));
	return CLI_EXIT_OK;
}

int cmd_entity(cli_ctx *ctx, int argc, char **argv)
{
	static char command[48];
	const char *sub, *entity;
	parley_client *c;
	uint64_t id = 0;
	parley_err rc;
	int r;

	if (argc < 3)
		return cli_usage(ctx, "expected a subcommand and ENTITY");
	sub = argv[1];
	entity = argv[2];
	snprintf(command, sizeof(command), "entity %s", sub);
	ctx->command = command;
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	if (strcmp(sub, "create") == 0) {
		char name[PARLEY_ENTITY_NAME_MAX + 2] = "";
		size_t len = 0;
		for (int i = 3; i < argc; i++) /* NAME may be several words */
			len += (size_t)snprintf(name + len, len < sizeof(name) ? sizeof(name) - len : 0, "%s%s",
						i > 3 ? " " : "", argv[i]);
		if (argc < 4)
			return cli_usage(ctx, "expected ENTITY NAME");
		if (len > PARLEY_ENTITY_NAME_MAX)
			return cli_usage(ctx, "a display name has at most %d bytes", PARLEY_ENTITY_NAME_MAX);
		rc = parley_entity_create(c, entity, name, &id);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		printf("created entity %s (id %llu); you are its primary admin and this device holds its entity key\n",
		       entity, (unsigned long long)id);
		return CLI_EXIT_OK;
	}
	if (strcmp(sub, "code") == 0)
		return code(ctx, c, argc - 2, argv + 2);
	if (strcmp(sub, "rules") == 0)
		return rules(ctx, c, argc - 2, argv + 2);
	if (strcmp(sub, "safety-number") == 0)
		return safety(ctx, c, argc - 2, argv + 2);
	if (argc > 4 || (argc == 4) != (strcmp(sub, "add-admin") == 0 || strcmp(sub, "remove-admin") == 0 ||
					strcmp(sub, "remove-agent") == 0 || strcmp(sub, "approve") == 0 ||
					strcmp(sub, "deny") == 0 || strcmp(sub, "transfer-primary") == 0))
		return cli_usage(ctx, "wrong number of arguments");
	if (strcmp(sub, "show") == 0)
		return show(ctx, c, entity, 0);
	if (strcmp(sub, "admins") == 0)
		return show(ctx, c, entity, 1);
	if (strcmp(sub, "agents") == 0)
		return show(ctx, c, entity, 2);
	if (strcmp(sub, "requests") == 0)
		return requests(ctx, c, entity);
	if (strcmp(sub, "devices") == 0)
		return devices(ctx, c, entity);
	if (strcmp(sub, "approve") == 0 || strcmp(sub, "deny") == 0) {
		int approve = sub[0] == 'a';
		r = parse_id(ctx, argv[3], &id);
		if (r != CLI_EXIT_OK)
			return r;
		rc = parley_entity_decide(c, entity, id, approve);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		printf("request %llu %s\n", (unsigned long long)id, approve ? "approved" : "denied");
		if (approve && !key_here(c, entity))
			printf("this device does not hold the entity key of %s: the device that does checks your "
			       "approval and adds the candidate when it is next connected\n",
			       entity);
		return CLI_EXIT_OK;
	}
	if (strcmp(sub, "transfer-primary") == 0) {
		rc = parley_entity_transfer_primary(c, entity, argv[3]);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		printf("%s is now the primary admin of %s; the entity key is on its way to %s's devices and this "
		       "device deletes its copy when one of them confirms (parley listen shows it)\n",
		       argv[3], entity, argv[3]);
		return CLI_EXIT_OK;
	}
	if (strcmp(sub, "add-admin") == 0) {
		rc = parley_entity_add_admin(c, entity, argv[3]);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		printf("%s is now an admin of %s\n", argv[3], entity);
		return CLI_EXIT_OK;
	}
	if (strcmp(sub, "remove-admin") == 0 || strcmp(sub, "remove-agent") == 0) {
		rc = parley_entity_remove(c, entity, argv[3],
					  strcmp(sub, "remove-admin") == 0 ? PARLEY_ROLE_ADMIN : PARLEY_ROLE_AGENT);
		if (rc != PARLEY_OK)
			return cli_fail(ctx, rc);
		printf("%s removed from %s\n", argv[3], entity);
		return CLI_EXIT_OK;
	}
	return cli_usage(ctx, "unknown subcommand '%s'", sub);
}

/* CODE as typed, or the QR payload parley:join?entity=ENTITY&code=CODE (a scanned code pasted). */
int cmd_agent(cli_ctx *ctx, int argc, char **argv)
{
	const char *entity, *code;
	char from_uri[PARLEY_ENROL_CODE_MAX + 1];
	parley_client *c;
	uint64_t id = 0;
	parley_err rc;

	if (argc != 4 || strcmp(argv[1], "join") != 0)
		return cli_usage(ctx, "expected: join ENTITY CODE");
	ctx->command = "agent join";
	entity = argv[2];
	code = argv[3];
	if (strncmp(code, PARLEY_JOIN_URI_PREFIX, strlen(PARLEY_JOIN_URI_PREFIX)) == 0) {
		const char *e = code + strlen(PARLEY_JOIN_URI_PREFIX), *amp = strstr(e, "&code=");
		if (amp == NULL || (size_t)(amp - e) != strlen(entity) || strncmp(e, entity, strlen(entity)) != 0)
			return cli_usage(ctx, "the code is for another entity than %s", entity);
		snprintf(from_uri, sizeof(from_uri), "%s", amp + 6);
		code = from_uri;
	}
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = parley_entity_join(c, entity, code, &id);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("join request %llu sent to %s: an admin of %s must approve it\n", (unsigned long long)id, entity,
	       entity);
	return CLI_EXIT_OK;
}

/* listen's lines for the entity pushes */
void cli_ev_join_requested(parley_client *c, const char *entity, const parley_join_request *req, void *user)
{
	char h[PARLEY_HANDLE_MAX + 1], e[PARLEY_HANDLE_MAX + 1];

	cli_safe_handle(entity, e);
	cli_safe_handle(req->handle, h);
	printf("%s: join request %llu from %s (%s)%s: parley entity requests %s\n", e,
	       (unsigned long long)req->request_id, h, parley_entity_role_name(req->role),
	       req->approved_by != 0 ? " approved by another admin" : "", e);
	fflush(stdout);
}

void cli_ev_join_decided(parley_client *c, const char *entity, uint64_t request_id, int approved, void *user)
{
	char e[PARLEY_HANDLE_MAX + 1];

	cli_safe_handle(entity, e);
	printf("%s: your join request %llu was %s\n", e, (unsigned long long)request_id,
	       approved ? "approved" : "denied");
	fflush(stdout);
}

void cli_ev_staff_changed(parley_client *c, const char *entity, uint64_t version, int removed, void *user)
{
	char e[PARLEY_HANDLE_MAX + 1];

	cli_safe_handle(entity, e);
	if (removed)
		printf("%s: you were removed from the staff of %s\n", e, e);
	else
		printf("%s: staff list changed (version %llu)\n", e, (unsigned long long)version);
	fflush(stdout);
}
