/* parley-bench refuses every target that is not on the loopback interface, and parses the rest. */
#include <arpa/inet.h>

#include <parley/error.h>

#include "target.h"
#include "tests/unit/test.h"

static void test_accepts_loopback(void)
{
	bench_target t;
	const char *why;

	TEST_EQ_INT(bench__target_parse("ws://127.0.0.1:7600/v1/websocket", &t, &why), PARLEY_OK);
	TEST_EQ_INT(t.port, 7600);
	TEST_EQ_STR(t.host, "127.0.0.1:7600");
	TEST_EQ_STR(t.path, "/v1/websocket");
	TEST_EQ_INT(bench__target_parse("127.8.9.10:1", &t, &why), PARLEY_OK);
	TEST_EQ_STR(t.path, "/");
	TEST_EQ_INT(bench__target_parse("ws://localhost:80/", &t, &why), PARLEY_OK);
	TEST_EQ_STR(t.host, "127.0.0.1:80");
	TEST_EQ_INT(bench__target_parse("ws://[::1]:9000/x?y=1", &t, &why), PARLEY_OK);
	TEST_EQ_INT(t.addr.ss_family, AF_INET6);
	TEST_EQ_STR(t.host, "[::1]:9000");
	TEST_EQ_STR(t.path, "/x?y=1");
}

static void test_refuses_others(void)
{
	bench_target t;
	const char *why;

	TEST_EQ_INT(bench__target_parse("ws://10.0.0.1:80/", &t, &why), PARLEY_E_PERM);
	TEST_EQ_INT(bench__target_parse("ws://128.0.0.1:80/", &t, &why), PARLEY_E_PERM);
	TEST_EQ_INT(bench__target_parse("ws://0.0.0.0:80/", &t, &why), PARLEY_E_PERM);
	TEST_EQ_INT(bench__target_parse("ws://[::2]:80/", &t, &why), PARLEY_E_PERM);
	TEST_EQ_INT(bench__target_parse("ws://[::ffff:8.8.8.8]:80/", &t, &why), PARLEY_E_PERM);
	TEST_EQ_INT(bench__target_parse("ws://example.org:80/", &t, &why), PARLEY_E_INVAL); /* no resolver */
	TEST_EQ_INT(bench__target_parse("wss://127.0.0.1:443/", &t, &why), PARLEY_E_UNSUPPORTED);
	TEST_EQ_INT(bench__target_parse("http://127.0.0.1:80/", &t, &why), PARLEY_E_UNSUPPORTED);
}

static void test_malformed(void)
{
	bench_target t;
	const char *why;

	TEST_EQ_INT(bench__target_parse("ws://127.0.0.1/", &t, &why), PARLEY_E_INVAL);     /* no port */
	TEST_EQ_INT(bench__target_parse("ws://127.0.0.1:0/", &t, &why), PARLEY_E_INVAL);   /* port 0 */
	TEST_EQ_INT(bench__target_parse("ws://127.0.0.1:65536/", &t, &why), PARLEY_E_INVAL);
	TEST_EQ_INT(bench__target_parse("ws://127.0.0.1:12a/", &t, &why), PARLEY_E_INVAL);
	TEST_EQ_INT(bench__target_parse("ws://:80/", &t, &why), PARLEY_E_INVAL);
	TEST_EQ_INT(bench__target_parse("ws://[::1/", &t, &why), PARLEY_E_INVAL);
	TEST_EQ_INT(bench__target_parse("", &t, &why), PARLEY_E_INVAL);
}

int main(void)
{
	TEST_RUN(test_accepts_loopback);
	TEST_RUN(test_refuses_others);
	TEST_RUN(test_malformed);
	TEST_EXIT();
}
