/* parley-gateway configuration: keys, ranges, secrets by env:/file: only (a literal refused, a file
 * readable by others refused), the channels' keys that go together, derived defaults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../unit/test.h"
#include "config.h"
#include "gw.h"

static void test_keys(void)
{
	gw_config c;
	char err[256];
	config__defaults(&c);
	TEST_EQ_INT(c.port, 8780);
	TEST_EQ_INT(c.max_body, 65536);
	TEST_EQ_INT(config__set(&c, "port", "9000", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(c.port, 9000);
	TEST_EQ_INT(config__set(&c, "port", "65536", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "port", "-1", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "port", "12x", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "max_body", "100", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "max_body", "2048", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(c.max_body, 2048);
	TEST_EQ_INT(config__set(&c, "queue_max", "0", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "nope", "1", err, sizeof err), PARLEY_E_CONFIG);
	TEST_CHECK(strstr(err, "unknown key") != NULL);
	char longv[1000];
	memset(longv, 'a', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	TEST_EQ_INT(config__set(&c, "home", longv, err, sizeof err), PARLEY_E_CONFIG);
}

static void test_secrets(const char *dir)
{
	gw_config c;
	char err[256], path[512], ref[600];
	config__defaults(&c);
	TEST_EQ_INT(config__set(&c, "byoc.secret", "literal", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "byoc.secret", "env:GW_TEST_UNSET_VAR", err, sizeof err), PARLEY_E_CONFIG);
	setenv("GW_TEST_SECRET", "from-env", 1);
	TEST_EQ_INT(config__set(&c, "byoc.secret", "env:GW_TEST_SECRET", err, sizeof err), PARLEY_OK);
	TEST_EQ_STR(c.byoc_secret, "from-env");
	snprintf(path, sizeof path, "%s/secret", dir);
	FILE *f = fopen(path, "w");
	fputs("from-file\n", f);
	fclose(f);
	snprintf(ref, sizeof ref, "file:%s", path);
	chmod(path, 0644);
	TEST_EQ_INT(config__set(&c, "twilio.auth_token", ref, err, sizeof err), PARLEY_E_CONFIG); /* readable */
	chmod(path, 0600);
	TEST_EQ_INT(config__set(&c, "twilio.auth_token", ref, err, sizeof err), PARLEY_OK);
	TEST_EQ_STR(c.twilio_auth_token, "from-file");
	TEST_EQ_INT(config__set(&c, "twilio.auth_token", "file:relative", err, sizeof err), PARLEY_E_CONFIG);
	config__wipe(&c);
	TEST_EQ_STR(c.twilio_auth_token, "");
	TEST_EQ_STR(c.byoc_secret, "");
}

static void test_finish(const char *dir)
{
	gw_config c;
	char err[256], path[512];
	config__defaults(&c);
	TEST_EQ_INT(config__finish(&c, err, sizeof err), PARLEY_E_CONFIG); /* entity */
	snprintf(path, sizeof path, "%s/gw.conf", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "# comment\nentity = acme\n  home = /var/lib/gw  \n\ntwilio.account_sid = AC1\n");
	fclose(f);
	TEST_EQ_INT(config__load_file(&c, path, err, sizeof err), PARLEY_OK);
	TEST_EQ_STR(c.home, "/var/lib/gw");
	TEST_EQ_INT(config__finish(&c, err, sizeof err), PARLEY_E_CONFIG); /* twilio keys go together */
	setenv("GW_TEST_SECRET", "t", 1);
	TEST_EQ_INT(config__set(&c, "twilio.auth_token", "env:GW_TEST_SECRET", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__set(&c, "twilio.from", "+15550001111", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__finish(&c, err, sizeof err), PARLEY_E_CONFIG); /* public_url */
	TEST_CHECK(strstr(err, "public_url") != NULL);
	TEST_EQ_INT(config__set(&c, "public_url", "https://gw.example/", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__finish(&c, err, sizeof err), PARLEY_OK);
	TEST_EQ_STR(c.public_url, "https://gw.example");
	TEST_EQ_STR(c.db, "/var/lib/gw/gateway.db");
	TEST_CHECK(config__sms_enabled(&c) && !config__waba_enabled(&c) && !config__byoc_enabled(&c));
	TEST_EQ_INT(config__set(&c, "retry_base_ms", "5000", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__set(&c, "retry_cap_ms", "1000", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__finish(&c, err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "retry_cap_ms", "5000", err, sizeof err), PARLEY_OK);
	/* freshness: derived from the dedupe retention (12 h less), and never at or past it */
	TEST_EQ_INT(c.webhook_max_age_s, 7 * 86400 - 43200);
	TEST_EQ_INT(c.byoc_window_s, 300);
	TEST_EQ_INT(config__set(&c, "dedupe_days", "2", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__set(&c, "webhook_max_age_s", "172800", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__finish(&c, err, sizeof err), PARLEY_E_CONFIG);
	TEST_CHECK(strstr(err, "webhook_max_age_s") != NULL);
	TEST_EQ_INT(config__set(&c, "webhook_max_age_s", "172500", err, sizeof err), PARLEY_OK); /* + skew = 2 d */
	TEST_EQ_INT(config__finish(&c, err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "webhook_max_age_s", "172499", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__finish(&c, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__set(&c, "webhook_max_age_s", "59", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "byoc.window_s", "3601", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "byoc.window_s", "60", err, sizeof err), PARLEY_OK);
	f = fopen(path, "w");
	fprintf(f, "entity acme\n");
	fclose(f);
	TEST_EQ_INT(config__load_file(&c, path, err, sizeof err), PARLEY_E_CONFIG);
	TEST_CHECK(strstr(err, ":1:") != NULL);
}

static void test_auth_events(void)
{
	gw_buf b;
	gw_out a = {.channel = PARLEY_CHANNEL_WEBCHAT, .kind = GW_OUT_AUTH, .text = "Bank login",
		    .url = "https://auth/x", .otp = "", .entity = "Acme"};
	gwbuf__init(&b, 4096);
	TEST_EQ_INT(byoc__event_json(&a, &b), PARLEY_OK);
	TEST_EQ_STR(b.data, "{\"component\":\"Bank login\",\"entity\":\"Acme\",\"otp\":\"\",\"type\":\"auth\","
			    "\"url\":\"https://auth/x\"}");
	gwbuf__free(&b);
}

int main(void)
{
	char dir[] = "/tmp/parley-gw-config-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	TEST_RUN(test_keys);
	test_secrets(dir);
	printf("ok - secrets\n");
	test_finish(dir);
	printf("ok - finish\n");
	TEST_RUN(test_auth_events);
	test_remove_tree(dir);
	TEST_EXIT();
}
