/* Unit tests for the configuration table: defaults, bounds, file syntax, environment, reload. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "base/config.h"
#include "base/log.h"
#include "wire/wire.h"
#include "test.h"

static void test_defaults(void)
{
	parleyd_config c;
	config__defaults(&c);
	TEST_EQ_STR(c.bind, "127.0.0.1");
	TEST_EQ_INT(c.port, 7600);
	TEST_EQ_INT(c.workers, 1);
	TEST_EQ_INT(c.log_level, LOG_LEVEL_INFO);
	TEST_EQ_INT(c.log_json, 0);
	TEST_EQ_INT(c.max_header_bytes, 8192);
	/* one frame limit on both sides: libparley's (the codec default) is parleyd's default */
	TEST_EQ_INT(c.max_message_bytes, WIRE_DEFAULT_MAX_FRAME);
	TEST_EQ_STR(c.ws_path, "/v1/websocket");
}

static void test_set_bounds(void)
{
	parleyd_config c;
	char err[256];
	config__defaults(&c);
	TEST_EQ_INT(config__set(&c, "port", "8080", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(c.port, 8080);
	TEST_EQ_INT(config__set(&c, "port", "65536", err, sizeof err), PARLEY_E_CONFIG);
	TEST_CHECK(strstr(err, "outside") != NULL);
	TEST_EQ_INT(c.port, 8080); /* unchanged on error */
	TEST_EQ_INT(config__set(&c, "port", "12abc", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "port", "", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "port", "99999999999999999999999", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "workers", "0", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "nonsense", "1", err, sizeof err), PARLEY_E_CONFIG);
	TEST_CHECK(strstr(err, "unknown option") != NULL);
	TEST_EQ_INT(config__set(&c, "log_level", "debug", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(c.log_level, LOG_LEVEL_DEBUG);
	TEST_EQ_INT(config__set(&c, "log_level", "loud", err, sizeof err), PARLEY_E_CONFIG);
	TEST_EQ_INT(config__set(&c, "log_format", "json", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(c.log_json, 1);

	char big[CONFIG_STR_MAX + 10];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	TEST_EQ_INT(config__set(&c, "data_dir", big, err, sizeof err), PARLEY_E_CONFIG);
}

static void test_file(void)
{
	parleyd_config c;
	char err[256];
	config__defaults(&c);
	const char *text = "# comment\n"
			   "\n"
			   "port 9000\n"
			   "  bind = ::1   # trailing comment\n"
			   "data_dir \"/tmp/with space # and hash\"\n"
			   "log_level\twarn\n";
	TEST_EQ_INT(config__parse_text(&c, text, strlen(text), "t.conf", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(c.port, 9000);
	TEST_EQ_STR(c.bind, "::1");
	TEST_EQ_STR(c.data_dir, "/tmp/with space # and hash");
	TEST_EQ_INT(c.log_level, LOG_LEVEL_WARN);

	const char *bad = "port 9001\nbogus 1\n";
	TEST_EQ_INT(config__parse_text(&c, bad, strlen(bad), "b.conf", err, sizeof err), PARLEY_E_CONFIG);
	TEST_CHECK(strstr(err, "b.conf:2") != NULL);

	const char *unterminated = "data_dir \"abc\n";
	TEST_EQ_INT(config__parse_text(&c, unterminated, strlen(unterminated), "u", err, sizeof err), PARLEY_E_CONFIG);

	const char *noname = "= 5\n";
	TEST_EQ_INT(config__parse_text(&c, noname, strlen(noname), "n", err, sizeof err), PARLEY_E_CONFIG);

	/* an embedded NUL must not truncate silently */
	const char nul[] = "port 9\0002\n";
	TEST_EQ_INT(config__parse_text(&c, nul, sizeof nul - 1, "z", err, sizeof err), PARLEY_E_CONFIG);

	/* no trailing newline */
	const char *last = "port 9100";
	TEST_EQ_INT(config__parse_text(&c, last, strlen(last), "l", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(c.port, 9100);
}

static void test_env(void)
{
	parleyd_config c;
	char err[256];
	config__defaults(&c);
	char *env[] = {"HOME=/root", "PARLEYD_PORT=7700", "PARLEYD_LOG_FORMAT=json", "PARLEYD_UNRELATED=x", NULL};
	TEST_EQ_INT(config__apply_env(&c, env, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(c.port, 7700);
	TEST_EQ_INT(c.log_json, 1);
	char *badenv[] = {"PARLEYD_WORKERS=1000", NULL};
	TEST_EQ_INT(config__apply_env(&c, badenv, err, sizeof err), PARLEY_E_CONFIG);
	TEST_CHECK(strstr(err, "PARLEYD_WORKERS") != NULL);
}

static void test_reload(void)
{
	parleyd_config live, fresh;
	char err[256];
	dynbuf changed;
	dynbuf__init(&changed, 4096);
	config__defaults(&live);
	config__defaults(&fresh);
	TEST_EQ_INT(config__set(&fresh, "log_level", "debug", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__set(&fresh, "port", "1234", err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(config__set(&fresh, "tls_cert", "/x.pem", err, sizeof err), PARLEY_OK);
	config__apply_reloadable(&live, &fresh, &changed);
	TEST_EQ_INT(live.log_level, LOG_LEVEL_DEBUG);
	TEST_EQ_STR(live.tls_cert, "/x.pem");
	TEST_EQ_INT(live.port, 7600); /* not reloadable */
	TEST_CHECK(changed.len > 0 && memmem(changed.data, changed.len, "port", 4) != NULL);
	dynbuf__free(&changed);
}

static void test_sample_roundtrip(void)
{
	/* The sample file, with its options uncommented, must parse back to the defaults. */
	dynbuf s;
	dynbuf__init(&s, 1 << 20);
	TEST_EQ_INT(config__sample(&s), PARLEY_OK);
	TEST_EQ_INT(dynbuf__append(&s, "", 1), PARLEY_OK);
	char *text = (char *)s.data;
	for (char *p = strstr(text, "\n#"); p != NULL; p = strstr(p + 1, "\n#")) {
		/* uncomment lines of the form #name "value" */
		if (p[2] >= 'a' && p[2] <= 'z' && strchr(p + 2, '"') < strchr(p + 2, '\n'))
			p[1] = ' ';
	}
	parleyd_config a, b;
	char err[256];
	config__defaults(&a);
	memset(&b, 0x55, sizeof b);
	config__defaults(&b);
	TEST_EQ_INT(config__parse_text(&b, text, strlen(text), "sample", err, sizeof err), PARLEY_OK);
	TEST_EQ_MEM(&a, &b, sizeof a);

	dynbuf d;
	dynbuf__init(&d, 1 << 20);
	TEST_EQ_INT(config__dump(&a, &d), PARLEY_OK);
	parleyd_config c;
	config__defaults(&c);
	TEST_EQ_INT(config__parse_text(&c, (char *)d.data, d.len, "dump", err, sizeof err), PARLEY_OK);
	TEST_EQ_MEM(&a, &c, sizeof a);
	dynbuf__free(&d);
	dynbuf__free(&s);
}

int main(void)
{
	TEST_RUN(test_defaults);
	TEST_RUN(test_set_bounds);
	TEST_RUN(test_file);
	TEST_RUN(test_env);
	TEST_RUN(test_reload);
	TEST_RUN(test_sample_roundtrip);
	TEST_EXIT();
}
