/* The CLI's QR codes (tools/parley/qr.c, compiled in). No QR decoder is available on the build machine,
 * so the checks are structural: the symbol's module count for known payloads (libqrencode picks the
 * smallest version at level M: 21 + 4 * (version - 1) modules), the terminal rendering (two module rows
 * per line with the quiet zone, only the four half-block cells, the finder pattern's light/dark rows),
 * the PNG's signature and IHDR size, and the refusals. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "tools/parley/cli.h"

#define JOIN "parley:join?entity=acme-support&code=ABCD-EFGH-JKMN"

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_modules(void)
{
	int w = 0;

	TEST_EQ_INT(cli_qr_modules("hello", &w), PARLEY_OK);
	TEST_EQ_INT(w, 21); /* version 1 */
	/* a device link code in base64 (201 bytes -> 268 characters, `parley device-key HANDLE --qr`):
	 * past version 11-M (251 bytes), within 12-M (287): 65 modules */
	char link[269];
	memset(link, 'A', 268);
	link[268] = '\0';
	TEST_EQ_INT(cli_qr_modules(link, &w), PARLEY_OK);
	TEST_EQ_INT(w, 65);
	/* 51 bytes: past version 3-M (42 bytes in 8-bit mode), within version 4-M (62) */
	TEST_EQ_INT(strlen(JOIN), 51);
	TEST_EQ_INT(cli_qr_modules(JOIN, &w), PARLEY_OK);
	TEST_EQ_INT(w, 33);
}

static void test_terminal(void)
{
	char *out = NULL, *p, *line;
	size_t outlen = 0, lines = 0;
	int w = 0, n, bad = 0;
	FILE *f = open_memstream(&out, &outlen);

	TEST_CHECK(f != NULL);
	if (f == NULL)
		return;
	TEST_EQ_INT(cli_qr_print(f, JOIN), PARLEY_OK);
	fclose(f);
	TEST_EQ_INT(cli_qr_modules(JOIN, &w), PARLEY_OK);
	n = w + 2 * CLI_QR_QUIET;
	for (p = out; *p != '\0'; p++)
		lines += *p == '\n';
	TEST_EQ_INT(lines, (size_t)(n + 1) / 2);
	/* every line: n cells, each a space or one of the three blocks (3 bytes of UTF-8) */
	for (line = out; *line != '\0';) {
		int cells = 0;
		for (p = line; *p != '\n'; cells++) {
			if (*p == ' ')
				p++;
			else if (memcmp(p, "\xE2\x96\x84", 3) == 0 || memcmp(p, "\xE2\x96\x80", 3) == 0 ||
				 memcmp(p, "\xE2\x96\x88", 3) == 0)
				p += 3;
			else {
				bad++;
				break;
			}
		}
		bad += cells != n;
		line = strchr(line, '\n') + 1;
	}
	TEST_EQ_INT(bad, 0);
	/* first line: the quiet zone, all light (full blocks); line 2 (rows 4, 5 with a quiet zone of 4)
	 * starts with 4 full blocks then the finder pattern's dark top row (rows 4-5 of the symbol with its
	 * zone are symbol rows 0-1: dark / dark-light-...-dark edge): its first cell is a space (dark over dark) */
	TEST_CHECK(strncmp(out, "\xE2\x96\x88\xE2\x96\x88\xE2\x96\x88\xE2\x96\x88", 12) == 0);
	line = strchr(out, '\n') + 1;
	line = strchr(line, '\n') + 1;
	TEST_CHECK(strncmp(line, "\xE2\x96\x88\xE2\x96\x88\xE2\x96\x88\xE2\x96\x88 ", 13) == 0);
	free(out);
}

static void test_png(void)
{
	char dir[] = "/tmp/parley-qr-XXXXXX", path[256], tmp[300], err[256];
	unsigned char head[33];
	FILE *f;
	int w = 0;

	TEST_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/code.png", dir);
	TEST_EQ_INT(cli_qr_png(path, JOIN, err, sizeof(err)), PARLEY_OK);
	TEST_EQ_INT(cli_qr_modules(JOIN, &w), PARLEY_OK);
	f = fopen(path, "rb");
	TEST_CHECK(f != NULL);
	if (f != NULL) {
		TEST_EQ_INT(fread(head, 1, sizeof(head), f), sizeof(head));
		fclose(f);
		TEST_EQ_MEM(head, "\x89PNG\r\n\x1a\n", 8);
		TEST_EQ_MEM(head + 12, "IHDR", 4);
		TEST_EQ_INT(be32(head + 16), (uint32_t)(w + 2 * CLI_QR_QUIET) * CLI_QR_SCALE);
		TEST_EQ_INT(be32(head + 20), (uint32_t)(w + 2 * CLI_QR_QUIET) * CLI_QR_SCALE);
		TEST_EQ_INT(head[24], 8); /* bit depth */
		TEST_EQ_INT(head[25], 0); /* greyscale */
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	TEST_CHECK(access(tmp, F_OK) != 0); /* renamed into place */
	/* a directory that does not exist: PARLEY_E_IO, the file named, nothing left behind */
	snprintf(path, sizeof(path), "%s/missing/code.png", dir);
	TEST_EQ_INT(cli_qr_png(path, JOIN, err, sizeof(err)), PARLEY_E_IO);
	TEST_CHECK(strstr(err, "missing") != NULL);
	test_remove_tree(dir);
}

static void test_refused(void)
{
	char big[4000];
	int w = -1;
	FILE *f = fopen("/dev/null", "w");

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	TEST_EQ_INT(cli_qr_modules("", &w), PARLEY_E_TOO_LARGE);
	TEST_EQ_INT(cli_qr_modules(big, &w), PARLEY_E_TOO_LARGE);
	TEST_EQ_INT(w, -1);
	if (f != NULL) {
		TEST_EQ_INT(cli_qr_print(f, big), PARLEY_E_TOO_LARGE);
		fclose(f);
	}
}

int main(void)
{
	TEST_RUN(test_modules);
	TEST_RUN(test_terminal);
	TEST_RUN(test_png);
	TEST_RUN(test_refused);
	TEST_EXIT();
}
