/* Minimal unit-test harness: each test file is one executable (its own process, with a meson timeout).
 * TEST_CHECK records a failure and continues; the exit status is the failure count (capped). Output is
 * TAP-like so a failing line is easy to find in meson-logs/testlog.txt. */
#ifndef PARLEY_TEST_H
#define PARLEY_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test__failures;
static int test__checks;

#define TEST_CHECK(cond)                                                                           \
	do {                                                                                       \
		test__checks++;                                                                    \
		if (!(cond)) {                                                                     \
			test__failures++;                                                          \
			fprintf(stderr, "not ok - %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
		}                                                                                  \
	} while (0)

#define TEST_EQ_INT(a, b)                                                                          \
	do {                                                                                       \
		long long test__a = (long long)(a), test__b = (long long)(b);                      \
		test__checks++;                                                                    \
		if (test__a != test__b) {                                                          \
			test__failures++;                                                          \
			fprintf(stderr, "not ok - %s:%d: %s == %s (%lld != %lld)\n", __FILE__,     \
				__LINE__, #a, #b, test__a, test__b);                               \
		}                                                                                  \
	} while (0)

#define TEST_EQ_MEM(a, b, n) TEST_CHECK(memcmp((a), (b), (n)) == 0)
#define TEST_EQ_STR(a, b) TEST_CHECK(strcmp((a), (b)) == 0)

#define TEST_RUN(fn)                                                                               \
	do {                                                                                       \
		int test__before = test__failures;                                                 \
		fn();                                                                              \
		printf("%s - %s\n", test__failures == test__before ? "ok" : "not ok", #fn);        \
	} while (0)

/* Removes a test's temporary directory tree; a failure is reported, not fatal. */
static inline void test_remove_tree(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
}

#define TEST_EXIT()                                                                                \
	do {                                                                                       \
		printf("# %d checks, %d failed\n", test__checks, test__failures);                  \
		return test__failures > 100 ? 100 : test__failures;                                \
	} while (0)

#endif
