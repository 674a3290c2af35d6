/* The CLI's terminal-safe printing (tools/parley/text.c) of text other people chose: controls become
 * '?', ill-formed UTF-8 becomes U+FFFD (one per maximal ill-formed subpart, Unicode §3.9), valid text
 * passes unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "tools/parley/cli.h"

#define R "\xEF\xBF\xBD" /* U+FFFD */

static void check(const char *in, size_t len, const char *want)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);

	TEST_CHECK(f != NULL);
	if (f == NULL)
		return;
	cli_write_safe(f, in, len);
	fclose(f);
	TEST_EQ_INT(outlen, strlen(want));
	TEST_EQ_STR(out, want);
	if (strcmp(out, want) != 0)
		fprintf(stderr, "#   got '%s', want '%s'\n", out, want);
	free(out);
}

#define CHECK(in, want) check(in, sizeof(in) - 1, want)

static void test_valid_text_unchanged(void)
{
	CHECK("hello, world", "hello, world");
	CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	CHECK("\xef\xbf\xbd", R); /* a real U+FFFD stays one */
	CHECK("", "");
}

static void test_controls(void)
{
	CHECK("a\x1b[31mred\x1b[0m", "a?[31mred?[0m"); /* ESC */
	CHECK("ding\a", "ding?");                      /* BEL */
	CHECK("two\nlines\r\tx\x7f", "two?lines??x?");
	CHECK("nul\0inside", "nul?inside");            /* the length counts, not the NUL */
	CHECK("\xc2\x9b" "31m", "?31m");               /* C1 CSI, a one-character ESC [ */
	CHECK("\xc2\x85", "?");                        /* C1 NEL */
	CHECK("abc\xe2\x80\xae" "fdp.exe", "abc?fdp.exe"); /* RIGHT-TO-LEFT OVERRIDE */
	CHECK("\xe2\x81\xa6x\xe2\x81\xa9", "?x?");     /* isolates */
	CHECK("\xc2\xa0", "\xc2\xa0");                 /* NBSP is text */
}

static void test_ill_formed(void)
{
	CHECK("bad \xff utf8", "bad " R " utf8");
	CHECK("\xfe\xfe", R R);
	CHECK("\x80", R);                         /* lone continuation */
	CHECK("\xc3", R);                         /* truncated at the end */
	CHECK("\xc3(", R "(");                    /* truncated by an ASCII byte, which survives */
	CHECK("\xc0\xaf", R R);                   /* overlong '/' */
	CHECK("\xe0\x80\xaf", R R R);             /* overlong, 3 bytes */
	CHECK("\xed\xa0\x80", R R R);             /* UTF-16 surrogate */
	CHECK("\xf4\x90\x80\x80", R R R R);       /* above U+10FFFF */
	CHECK("\xf5\x80", R R);                   /* never a lead byte */
	CHECK("\xf0\x9f\x98", R);                 /* one maximal subpart: one U+FFFD */
	CHECK("\xf0\x9f\x98" "a", R "a");
	CHECK("\xe2\x82" "\xe2\x82\xac", R "\xe2\x82\xac");
}

static void test_safe_handle(void)
{
	char buf[PARLEY_HANDLE_MAX + 1];
	char longer[80];

	TEST_EQ_STR(cli_safe_handle("alice.b_c-9", buf), "alice.b_c-9");
	TEST_EQ_STR(cli_safe_handle("ev\x1b[2Jil", buf), "ev??2?il");
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	TEST_EQ_INT(strlen(cli_safe_handle(longer, buf)), PARLEY_HANDLE_MAX);
}

int main(void)
{
	TEST_RUN(test_valid_text_unchanged);
	TEST_RUN(test_controls);
	TEST_RUN(test_ill_formed);
	TEST_RUN(test_safe_handle);
	TEST_EXIT();
}
