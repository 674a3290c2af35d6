/* `parley auth`'s lines and options (tools/parley/auth_lines.c and text.c, compiled in): the exact text
 * of every line the auth commands and `parley listen` print, text from the server made terminal-safe,
 * and every way the component options can be wrong. TZ=UTC, so HH:MM:SS is predictable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parley/parley.h>

#include "../test.h"
#include "tools/parley/cli.h"

/* main.c's, which is not compiled in (it holds main): the same contract, for --ttl. */
int cli_parse_number(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end = NULL;
	unsigned long long v;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

#define T0 1700000000000ull /* 2023-11-14 22:13:20 UTC */

static char *out_buf;
static size_t out_len;

static FILE *out_open(void)
{
	free(out_buf);
	out_buf = NULL;
	return open_memstream(&out_buf, &out_len);
}

static const char *out_close(FILE *f)
{
	fclose(f);
	return out_buf != NULL ? out_buf : "";
}

static void comp_of(parley_auth_component *c)
{
	memset(c, 0, sizeof(*c));
	c->component_id = 3;
	snprintf(c->entity, sizeof(c->entity), "shop");
	snprintf(c->name, sizeof(c->name), "acme-sso");
	c->type = PARLEY_AUTH_OIDC;
	c->state = PARLEY_COMPONENT_DRAFT;
	snprintf(c->issuer, sizeof(c->issuer), "https://id.acme.example");
	c->binding = PARLEY_BINDING_SUB;
	c->credential_ttl_s = 3600;
}

static void test_component_lines(void)
{
	parley_auth_component c;
	FILE *f;

	comp_of(&c);
	f = out_open();
	cli_auth_print_component(f, &c);
	TEST_EQ_STR(out_close(f), "component 3 acme-sso (oidc, draft)\n");
	f = out_open();
	cli_auth_print_component_row(f, &c);
	c.state = PARLEY_COMPONENT_ACTIVE;
	c.type = PARLEY_AUTH_OTP;
	c.issuer[0] = '\0';
	c.binding = PARLEY_BINDING_PHONE;
	c.credential_ttl_s = 0;
	cli_auth_print_component_row(f, &c);
	TEST_EQ_STR(out_close(f), "3\tacme-sso\toidc\tdraft\thttps://id.acme.example\tsub\t3600s\n"
				  "3\tacme-sso\totp\tactive\t-\tphone_number\t-\n");
	/* a name with a terminal escape: shown harmless */
	snprintf(c.name, sizeof(c.name), "a\x1b[2Jb");
	f = out_open();
	cli_auth_print_component(f, &c);
	TEST_EQ_STR(out_close(f), "component 3 a?[2Jb (otp, active)\n");
}

static void test_sent_and_status(void)
{
	static parley_auth_status s;
	parley_auth_request r;
	FILE *f;

	memset(&r, 0, sizeof(r));
	r.request_id = 9;
	r.expires_ms = T0 + 600000;
	f = out_open();
	cli_auth_print_sent(f, &r);
	TEST_EQ_STR(out_close(f), "auth request 9 sent to the customer (expires 22:23:20)\n");

	memset(&s, 0, sizeof(s));
	f = out_open();
	cli_auth_print_status(f, 4, &s);
	s.verification = PARLEY_VERIFICATION_CHANNEL;
	cli_auth_print_status(f, 4, &s);
	TEST_EQ_STR(out_close(f), "thread 4: unverified\nthread 4: channel-verified\n");

	s.verification = PARLEY_VERIFICATION_AUTHENTICATED;
	s.verified_until_ms = T0 + 3600000;
	snprintf(s.verified_by, sizeof(s.verified_by), "acme-sso");
	s.n_claims = 1;
	snprintf(s.claims[0].name, sizeof(s.claims[0].name), "email");
	snprintf(s.claims[0].value, sizeof(s.claims[0].value), "carol@example.com");
	s.n_requests = 4;
	s.requests[0].request_id = 12;
	snprintf(s.requests[0].component, sizeof(s.requests[0].component), "acme-sso");
	s.requests[0].status = PARLEY_AUTH_REQUEST_DONE;
	s.requests[1].request_id = 11;
	snprintf(s.requests[1].component, sizeof(s.requests[1].component), "acme-otp");
	s.requests[1].status = PARLEY_AUTH_REQUEST_FAILED;
	s.requests[1].error = PARLEY_E_OTP_ATTEMPTS;
	s.requests[2].request_id = 10;
	snprintf(s.requests[2].component, sizeof(s.requests[2].component), "acme-sso");
	s.requests[2].status = PARLEY_AUTH_REQUEST_EXPIRED;
	snprintf(s.requests[2].url, sizeof(s.requests[2].url), "https://a.example/old"); /* not open: not shown */
	s.requests[3].request_id = 8;
	snprintf(s.requests[3].component, sizeof(s.requests[3].component), "acme-sso");
	s.requests[3].status = PARLEY_AUTH_REQUEST_OPEN;
	snprintf(s.requests[3].url, sizeof(s.requests[3].url), "https://a.example/v1/auth/start/t");
	f = out_open();
	cli_auth_print_status(f, 4, &s);
	TEST_EQ_STR(out_close(f), "thread 4: authenticated by acme-sso until 2023-11-14 23:13:20 UTC\n"
				  "claim email: carol@example.com\n"
				  "request 12\tacme-sso\tdone\n"
				  "request 11\tacme-otp\tfailed\tOTP_ATTEMPTS\n"
				  "request 10\tacme-sso\texpired\n"
				  "request 8\tacme-sso\topen\thttps://a.example/v1/auth/start/t\n");

	/* staff see the customer's known emails after the claims */
	s.n_requests = 0;
	s.n_known_emails = 2;
	snprintf(s.known_emails[0], sizeof(s.known_emails[0]), "carol@example.com");
	snprintf(s.known_emails[1], sizeof(s.known_emails[1]), "c.w@example.org");
	f = out_open();
	cli_auth_print_status(f, 4, &s);
	TEST_EQ_STR(out_close(f), "thread 4: authenticated by acme-sso until 2023-11-14 23:13:20 UTC\n"
				  "claim email: carol@example.com\n"
				  "known email: carol@example.com\n"
				  "known email: c.w@example.org\n");
}

/* `auth email`: the known emails, one a line, nothing for none */
static void test_email_lines(void)
{
	static parley_auth_emails e;
	FILE *f;

	memset(&e, 0, sizeof(e));
	f = out_open();
	cli_auth_print_emails(f, &e);
	TEST_EQ_STR(out_close(f), "");
	e.n = 2;
	snprintf(e.emails[0], sizeof(e.emails[0]), "alice@example.com");
	snprintf(e.emails[1], sizeof(e.emails[1]), "b\x1b[2J@example.com"); /* never from a valid server */
	f = out_open();
	cli_auth_print_emails(f, &e);
	TEST_EQ_STR(out_close(f), "alice@example.com\nb?[2J@example.com\n");
}

static void test_prompt_lines(void)
{
	parley_auth_request r;
	parley_auth_prompt p;
	FILE *f;

	memset(&r, 0, sizeof(r));
	r.request_id = 9;
	r.thread_id = 4;
	r.type = PARLEY_AUTH_OIDC;
	snprintf(r.component, sizeof(r.component), "acme-sso");
	snprintf(r.url, sizeof(r.url), "https://auth.shop.example/v1/auth/start/abc");
	r.expires_ms = T0 + 600000;
	memset(&p, 0, sizeof(p));
	p.entity = "acme-support";
	p.entity_name = "";
	p.request = &r;
	p.channel_user = "";
	p.otp = "";
	f = out_open();
	cli_auth_print_prompt(f, &p);
	p.entity_name = "Acme Support";
	cli_auth_print_prompt(f, &p);
	TEST_EQ_STR(out_close(f), "acme-support asks you to sign in with acme-sso: https://auth.shop.example/v1/auth/start/abc "
				  "(request 9, expires 22:23:20)\n"
				  "Acme Support asks you to sign in with acme-sso: https://auth.shop.example/v1/auth/start/abc "
				  "(request 9, expires 22:23:20)\n");

	/* a one-time code and a JWT request to a native customer: the command to answer */
	r.url[0] = '\0';
	r.type = PARLEY_AUTH_OTP;
	snprintf(r.component, sizeof(r.component), "acme-otp");
	p.entity_name = "";
	f = out_open();
	cli_auth_print_prompt(f, &p);
	r.type = PARLEY_AUTH_JWT;
	cli_auth_print_prompt(f, &p);
	TEST_EQ_STR(out_close(f), "acme-support asks you for the one-time code of acme-otp (request 9, expires 22:23:20): "
				  "parley auth answer 9 --otp CODE\n"
				  "acme-support asks you for a signed assertion of acme-otp (request 9, expires 22:23:20): "
				  "parley auth answer 9 --jwt TOKEN\n");

	/* to a gateway: the channel customer and the code to send out */
	r.type = PARLEY_AUTH_OTP;
	p.channel = PARLEY_CHANNEL_SMS;
	p.channel_user = "+15551234567";
	p.otp = "123456";
	f = out_open();
	cli_auth_print_prompt(f, &p);
	TEST_EQ_STR(out_close(f), "[sms:+15551234567] acme-support asks you for the one-time code of acme-otp (request 9, "
				  "expires 22:23:20): send the customer the code 123456\n");
}

static void test_result_lines(void)
{
	parley_auth_request r;
	parley_auth_result res;
	FILE *f;

	memset(&r, 0, sizeof(r));
	r.request_id = 9;
	r.thread_id = 4;
	memset(&res, 0, sizeof(res));
	res.thread_id = 4;
	res.request = &r;
	res.verified_by = "acme-sso";
	f = out_open();
	r.status = PARLEY_AUTH_REQUEST_DONE;
	res.verification = PARLEY_VERIFICATION_AUTHENTICATED;
	res.verified_until_ms = T0 + 3600000;
	cli_auth_print_result(f, &res);
	r.status = PARLEY_AUTH_REQUEST_FAILED;
	r.error = PARLEY_E_IDENTITY_MISMATCH;
	res.verification = PARLEY_VERIFICATION_UNVERIFIED;
	cli_auth_print_result(f, &res);
	r.status = PARLEY_AUTH_REQUEST_EXPIRED;
	cli_auth_print_result(f, &res);
	res.request = NULL;
	res.verification = PARLEY_VERIFICATION_CHANNEL;
	cli_auth_print_result(f, &res);
	TEST_EQ_STR(out_close(f), "#4: customer authenticated by acme-sso until 2023-11-14 23:13:20 UTC\n"
				  "#4: authentication request 9 failed: IDENTITY_MISMATCH\n"
				  "#4: authentication request 9 expired\n"
				  "#4: authentication expired, now channel-verified\n");
}

static int parse(const char *const *args, int n, parley_auth_component *c, int *have_type, char *err)
{
	char *argv[24];
	for (int i = 0; i < n; i++)
		argv[i] = (char *)args[i];
	return cli_auth_parse_options(n, argv, c, have_type, err, 160);
}

static void test_options(void)
{
	static const char *const ok[] = {"--type",     "oidc",          "--issuer",    "https://id.example",
					 "--discovery", "https://id.example/.well-known/openid-configuration",
					 "--authorize", "https://id.example/a", "--token",      "https://id.example/t",
					 "--jwks",      "https://id.example/k", "--userinfo",   "https://id.example/u",
					 "--client-id", "parley",        "--secret-ref", "file:acme-sso",
					 "--scopes",    "openid email",  "--binding",    "phone",
					 "--ttl",       "900"};
	static const struct {
		const char *args[3];
		int n;
		const char *err;
	} bad[] = {
		{{"--type", "saml"}, 2, "--type: oidc, oauth2, otp or jwt, not 'saml'"},
		{{"--binding", "tel"}, 2, "--binding: none, sub, phone or email, not 'tel'"},
		{{"--ttl", "0"}, 2, "--ttl: expected seconds (1 or more), got '0'"},
		{{"--ttl", "-5"}, 2, "--ttl: expected seconds (1 or more), got '-5'"},
		{{"--ttl", "4294967296"}, 2, "--ttl: expected seconds (1 or more), got '4294967296'"},
		{{"--issuer"}, 1, "--issuer needs a value"},
		{{"--colour", "red"}, 2, "unknown option '--colour'"},
		{{"stray"}, 1, "unexpected argument 'stray'"},
	};
	parley_auth_component c;
	char err[160], big[PARLEY_AUTH_FIELD_MAX + 2];
	int have_type = 0;

	memset(&c, 0, sizeof(c));
	TEST_EQ_INT(parse(ok, (int)(sizeof(ok) / sizeof(ok[0])), &c, &have_type, err), 0);
	TEST_EQ_INT(have_type, 1);
	TEST_EQ_INT(c.type, PARLEY_AUTH_OIDC);
	TEST_EQ_STR(c.issuer, "https://id.example");
	TEST_EQ_STR(c.discovery_url, "https://id.example/.well-known/openid-configuration");
	TEST_EQ_STR(c.authorization_endpoint, "https://id.example/a");
	TEST_EQ_STR(c.token_endpoint, "https://id.example/t");
	TEST_EQ_STR(c.jwks_uri, "https://id.example/k");
	TEST_EQ_STR(c.userinfo_endpoint, "https://id.example/u");
	TEST_EQ_STR(c.client_id, "parley");
	TEST_EQ_STR(c.secret_ref, "file:acme-sso");
	TEST_EQ_STR(c.scopes, "openid email");
	TEST_EQ_INT(c.binding, PARLEY_BINDING_PHONE);
	TEST_EQ_INT(c.credential_ttl_s, 900);
	/* every binding by its name (phone_number as the library names it too) */
	{
		static const char *const names[] = {"none", "sub", "phone", "email", "phone_number"};
		static const parley_auth_binding want[] = {PARLEY_BINDING_NONE, PARLEY_BINDING_SUB, PARLEY_BINDING_PHONE,
							   PARLEY_BINDING_EMAIL, PARLEY_BINDING_PHONE};
		for (size_t i = 0; i < 5; i++) {
			const char *a[] = {"--binding", names[i]};
			c.binding = 99;
			TEST_EQ_INT(parse(a, 2, &c, &have_type, err), 0);
			TEST_EQ_INT(c.binding, want[i]);
		}
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		TEST_EQ_INT(parse(bad[i].args, bad[i].n, &c, &have_type, err), -1);
		TEST_EQ_STR(err, bad[i].err);
	}
	/* the longest field fits; a longer one is refused, not cut */
	memset(big, 'x', PARLEY_AUTH_FIELD_MAX);
	big[PARLEY_AUTH_FIELD_MAX] = '\0';
	{
		const char *a[] = {"--client-id", big};
		TEST_EQ_INT(parse(a, 2, &c, &have_type, err), 0);
		TEST_EQ_INT(strlen(c.client_id), PARLEY_AUTH_FIELD_MAX);
		big[PARLEY_AUTH_FIELD_MAX] = 'x';
		big[PARLEY_AUTH_FIELD_MAX + 1] = '\0';
		TEST_EQ_INT(parse(a, 2, &c, &have_type, err), -1);
		TEST_EQ_STR(err, "--client-id: at most 512 bytes");
	}
	{
		const char *a[] = {"--name", "0123456789012345678901234567890123456789012345678901234567890123X"};
		TEST_EQ_INT(parse(a, 2, &c, &have_type, err), -1);
		TEST_EQ_STR(err, "--name: at most 64 bytes");
	}
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	TEST_RUN(test_component_lines);
	TEST_RUN(test_sent_and_status);
	TEST_RUN(test_email_lines);
	TEST_RUN(test_prompt_lines);
	TEST_RUN(test_result_lines);
	TEST_RUN(test_options);
	free(out_buf);
	TEST_EXIT();
}
