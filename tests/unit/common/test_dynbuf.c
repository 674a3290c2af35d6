/* dynbuf: the hard maximum holds, failures leave the buffer unchanged, allocation failure is reported. */
#include <parley/error.h>

#include "common/alloc.h"
#include "common/dynbuf.h"
#include "test.h"

static void test_limits(void)
{
	dynbuf b;
	dynbuf__init(&b, 10);
	TEST_EQ_INT(dynbuf__append(&b, "0123456789", 10), PARLEY_OK);
	TEST_EQ_INT(dynbuf__append(&b, "x", 1), PARLEY_E_TOO_LARGE);
	TEST_EQ_INT(b.len, 10);
	dynbuf__consume(&b, 4);
	TEST_EQ_INT(b.len, 6);
	TEST_EQ_MEM(b.data, "456789", 6);
	TEST_EQ_INT(dynbuf__append(&b, "abcd", 4), PARLEY_OK);
	TEST_EQ_INT(dynbuf__printf(&b, "%s", "y"), PARLEY_E_TOO_LARGE);
	dynbuf__free(&b);
	/* size_t overflow in len + n must not wrap */
	dynbuf__init(&b, (size_t)-1);
	TEST_EQ_INT(dynbuf__append(&b, "ab", 2), PARLEY_OK);
	int err;
	TEST_CHECK(dynbuf__reserve(&b, (size_t)-1, &err) == NULL);
	TEST_EQ_INT(err, PARLEY_E_TOO_LARGE);
	dynbuf__free(&b);
}

static void test_printf_large(void)
{
	dynbuf b;
	dynbuf__init(&b, 1 << 16);
	char s[1000];
	memset(s, 'q', sizeof s - 1);
	s[sizeof s - 1] = '\0';
	TEST_EQ_INT(dynbuf__printf(&b, "<%s>", s), PARLEY_OK);
	TEST_EQ_INT(b.len, 1001);
	TEST_CHECK(b.data[0] == '<' && b.data[1000] == '>');
	dynbuf__free(&b);
}

static void test_nomem(void)
{
	dynbuf b;
	dynbuf__init(&b, 1 << 20);
	parley__alloc_fail_after(1);
	TEST_EQ_INT(dynbuf__append(&b, "abc", 3), PARLEY_E_NOMEM);
	parley__alloc_fail_after(0);
	TEST_EQ_INT(b.len, 0);
	TEST_EQ_INT(dynbuf__append(&b, "abc", 3), PARLEY_OK);
	dynbuf__free_secure(&b);
	TEST_CHECK(b.data == NULL);
}

static void test_strerror(void)
{
	TEST_EQ_STR(parley_strerror(PARLEY_OK), "success");
	TEST_EQ_STR(parley_errname(PARLEY_E_BAD_MAC), "BAD_MAC");
	TEST_EQ_STR(parley_strerror(99999), "unknown error");
	TEST_EQ_STR(parley_errname(-5), "UNKNOWN");
}

int main(void)
{
	TEST_RUN(test_limits);
	TEST_RUN(test_printf_large);
	TEST_RUN(test_nomem);
	TEST_RUN(test_strerror);
	TEST_EXIT();
}
