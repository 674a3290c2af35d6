/* `parley auth`: the component options and every line the auth commands and `parley listen` print
 * (pure functions on a FILE, so tests/unit/client/test_cli_auth.c checks the exact text). Text that
 * comes from the server or the business (names, URLs, claims) goes through cli_write_safe.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* "HH:MM:SS" local time (the clock listen's lines use), or "YYYY-MM-DD HH:MM:SS UTC". */
static void fmt_time(uint64_t ms, int utc, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	struct tm *ok = utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm);

	if (ok == NULL || strftime(out, outlen, utc ? "%Y-%m-%d %H:%M:%S UTC" : "%H:%M:%S", &tm) == 0)
		snprintf(out, outlen, "%s", utc ? "----------" : "--:--:--");
}

static void put_safe(FILE *f, const char *s)
{
	cli_write_safe(f, s, strlen(s));
}

/* ---- options of `auth component create|edit` ---- */

static int set_field(char *dst, size_t size, const char *opt, const char *val, char *err, size_t errlen)
{
	size_t n = strlen(val);
	if (n >= size) {
		snprintf(err, errlen, "%s: at most %zu bytes", opt, size - 1);
		return -1;
	}
	memcpy(dst, val, n + 1);
	return 0;
}

static int lookup(const char *const *names, int from, int to, const char *val)
{
	for (int i = from; i <= to; i++)
		if (names[i] != NULL && strcmp(names[i], val) == 0)
			return i;
	return -1;
}

int cli_auth_parse_options(int argc, char **argv, parley_auth_component *comp, int *have_type, char *err,
			   size_t errlen)
{
	static const struct {
		const char *opt;
		size_t off, size;
	} fields[] = {
#define F(o, m) {o, offsetof(parley_auth_component, m), sizeof(((parley_auth_component *)0)->m)}
		F("--name", name),
		F("--issuer", issuer),
		F("--discovery", discovery_url),
		F("--authorize", authorization_endpoint),
		F("--token", token_endpoint),
		F("--jwks", jwks_uri),
		F("--userinfo", userinfo_endpoint),
		F("--client-id", client_id),
		F("--secret-ref", secret_ref),
		F("--scopes", scopes),
#undef F
	};
	static const char *const types[] = {NULL, "oidc", "oauth2", "otp", "jwt"};
	static const char *const bindings[] = {"none", "sub", "phone", "email", "phone_number"};

	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		size_t k;
		int v;

		if (strncmp(opt, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s'", opt);
			return -1;
		}
		if (val == NULL) {
			snprintf(err, errlen, "%s needs a value", opt);
			return -1;
		}
		i++;
		for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
			if (strcmp(opt, fields[k].opt) == 0)
				break;
		if (k < sizeof(fields) / sizeof(fields[0])) {
			if (set_field((char *)comp + fields[k].off, fields[k].size, opt, val, err, errlen) != 0)
				return -1;
		} else if (strcmp(opt, "--type") == 0) {
			if ((v = lookup(types, 1, 4, val)) < 0) {
				snprintf(err, errlen, "--type: oidc, oauth2, otp or jwt, not '%s'", val);
				return -1;
			}
			comp->type = (parley_auth_type)v;
			*have_type = 1;
		} else if (strcmp(opt, "--binding") == 0) {
			if ((v = lookup(bindings, 0, 4, val)) < 0) {
				snprintf(err, errlen, "--binding: none, sub, phone or email, not '%s'", val);
				return -1;
			}
			comp->binding = v == 4 ? PARLEY_BINDING_PHONE : (parley_auth_binding)v;
		} else if (strcmp(opt, "--ttl") == 0) {
			unsigned long long ttl;
			if (cli_parse_number(val, UINT32_MAX, &ttl) != 0) {
				snprintf(err, errlen, "--ttl: expected seconds (1 or more), got '%s'", val);
				return -1;
			}
			comp->credential_ttl_s = (uint32_t)ttl;
		} else {
			snprintf(err, errlen, "unknown option '%s'", opt);
			return -1;
		}
	}
	return 0;
}

/* ---- output ---- */

void cli_auth_print_component(FILE *f, const parley_auth_component *c)
{
	fprintf(f, "component %llu ", (unsigned long long)c->component_id);
	put_safe(f, c->name);
	fprintf(f, " (%s, %s)\n", parley_auth_type_name(c->type), parley_component_state_name(c->state));
}

void cli_auth_print_component_row(FILE *f, const parley_auth_component *c)
{
	fprintf(f, "%llu\t", (unsigned long long)c->component_id);
	put_safe(f, c->name);
	fprintf(f, "\t%s\t%s\t", parley_auth_type_name(c->type), parley_component_state_name(c->state));
	put_safe(f, c->issuer[0] != '\0' ? c->issuer : "-");
	fprintf(f, "\t%s\t", parley_auth_binding_name(c->binding));
	if (c->credential_ttl_s != 0)
		fprintf(f, "%lus\n", (unsigned long)c->credential_ttl_s);
	else
		fputs("-\n", f);
}

void cli_auth_print_sent(FILE *f, const parley_auth_request *r)
{
	char when[32];
	fmt_time(r->expires_ms, 0, when, sizeof(when));
	fprintf(f, "auth request %llu sent to the customer (expires %s)\n", (unsigned long long)r->request_id, when);
}

static const char *request_status_name(parley_auth_request_status s)
{
	static const char *const names[] = {"?", "open", "done", "failed", "expired"};
	return s >= PARLEY_AUTH_REQUEST_OPEN && s <= PARLEY_AUTH_REQUEST_EXPIRED ? names[s] : names[0];
}

/* "authenticated by NAME until ... UTC", or the level's name. */
static void print_level(FILE *f, parley_verification v, const char *by, uint64_t until_ms)
{
	char when[40];

	if (v != PARLEY_VERIFICATION_AUTHENTICATED) {
		fputs(parley_verification_name(v), f);
		return;
	}
	fmt_time(until_ms, 1, when, sizeof(when));
	fputs("authenticated by ", f);
	put_safe(f, by[0] != '\0' ? by : "?");
	fprintf(f, " until %s", when);
}

void cli_auth_print_status(FILE *f, uint64_t thread_id, const parley_auth_status *s)
{
	fprintf(f, "thread %llu: ", (unsigned long long)thread_id);
	print_level(f, s->verification, s->verified_by, s->verified_until_ms);
	fputc('\n', f);
	for (size_t i = 0; i < s->n_claims; i++) {
		fputs("claim ", f);
		put_safe(f, s->claims[i].name);
		fputs(": ", f);
		put_safe(f, s->claims[i].value);
		fputc('\n', f);
	}
	for (size_t i = 0; i < s->n_known_emails; i++) {
		fputs("known email: ", f);
		put_safe(f, s->known_emails[i]);
		fputc('\n', f);
	}
	for (size_t i = 0; i < s->n_requests; i++) {
		const parley_auth_request *r = &s->requests[i];
		fprintf(f, "request %llu\t", (unsigned long long)r->request_id);
		put_safe(f, r->component);
		fprintf(f, "\t%s", request_status_name(r->status));
		if (r->status == PARLEY_AUTH_REQUEST_FAILED)
			fprintf(f, "\t%s", parley_errname(r->error));
		/* the customer's link of an open request: a prompt reaches online devices only */
		if (r->status == PARLEY_AUTH_REQUEST_OPEN && r->url[0] != '\0') {
			fputc('\t', f);
			put_safe(f, r->url);
		}
		fputc('\n', f);
	}
}

void cli_auth_print_emails(FILE *f, const parley_auth_emails *e)
{
	for (size_t i = 0; i < e->n; i++) {
		put_safe(f, e->emails[i]);
		fputc('\n', f);
	}
}

void cli_auth_print_prompt(FILE *f, const parley_auth_prompt *p)
{
	const parley_auth_request *r = p->request;
	char when[32], h[PARLEY_HANDLE_MAX + 1];

	fmt_time(r->expires_ms, 0, when, sizeof(when));
	/* a gateway's prompts are for its channel customers: say which one */
	if (p->channel != PARLEY_CHANNEL_NATIVE) {
		fprintf(f, "[%s:", parley_channel_name(p->channel));
		put_safe(f, p->channel_user);
		fputs("] ", f);
	}
	if (p->entity_name[0] != '\0')
		put_safe(f, p->entity_name);
	else
		fputs(cli_safe_handle(p->entity, h), f);
	if (r->url[0] != '\0') {
		fputs(" asks you to sign in with ", f);
		put_safe(f, r->component);
		fputs(": ", f);
		put_safe(f, r->url);
		fprintf(f, " (request %llu, expires %s)\n", (unsigned long long)r->request_id, when);
		return;
	}
	fprintf(f, " asks you for %s ", r->type == PARLEY_AUTH_JWT ? "a signed assertion of" : "the one-time code of");
	put_safe(f, r->component);
	fprintf(f, " (request %llu, expires %s)", (unsigned long long)r->request_id, when);
	if (p->otp[0] != '\0') {
		fputs(": send the customer the code ", f);
		put_safe(f, p->otp);
	} else {
		fprintf(f, ": parley auth answer %llu %s", (unsigned long long)r->request_id,
			r->type == PARLEY_AUTH_JWT ? "--jwt TOKEN" : "--otp CODE");
	}
	fputc('\n', f);
}

void cli_auth_print_result(FILE *f, const parley_auth_result *res)
{
	const parley_auth_request *r = res->request;

	fprintf(f, "#%llu: ", (unsigned long long)res->thread_id);
	if (r == NULL) {
		fputs("authentication expired, now ", f);
		print_level(f, res->verification, res->verified_by, res->verified_until_ms);
	} else if (r->status == PARLEY_AUTH_REQUEST_DONE) {
		fputs("customer ", f);
		print_level(f, res->verification, res->verified_by, res->verified_until_ms);
	} else if (r->status == PARLEY_AUTH_REQUEST_FAILED) {
		fprintf(f, "authentication request %llu failed: %s", (unsigned long long)r->request_id,
			parley_errname(r->error));
	} else {
		fprintf(f, "authentication request %llu %s", (unsigned long long)r->request_id,
			request_status_name(r->status));
	}
	fputc('\n', f);
}
