/* QR codes for `parley entity code`: the enrolment payload as a QR code in the terminal and as a PNG.
 *
 * Encoding is libqrencode's (8-bit mode, error correction level M: a phone camera reads a terminal
 * screenshot at M; H would make the symbol a version larger for no gain on a screen). Rendering is ours:
 *   - terminal: two module rows per text line with the Unicode half blocks, so the symbol stays square
 *     in a terminal whose cells are twice as high as wide. A LIGHT module is ink (a block): terminals
 *     are mostly dark, and a QR code must be dark on light to scan, so the light parts are drawn (as
 *     `qrencode -t UTF8` does). The quiet zone (CLI_QR_QUIET modules of light around the symbol, which
 *     the standard requires so the reader finds the finder patterns) is drawn too, since the terminal's
 *     own background is dark.
 *   - PNG: 8-bit greyscale, dark modules black on white, CLI_QR_SCALE pixels per module, with the
 *     quiet zone. Written to FILE.tmp and renamed, so a reader never sees half a PNG.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>
#include <qrencode.h>

#include "cli.h"

#define CLI_QR_MAX_PAYLOAD 512 /* join URIs ~60 bytes, link codes 268; bounds the symbol at version ~20 */

/* 1 = light at (x, y) of the symbol with its quiet zone (coordinates include the zone). */
static int light_at(const QRcode *q, int x, int y)
{
	int w = q->width;
	x -= CLI_QR_QUIET;
	y -= CLI_QR_QUIET;
	if (x < 0 || y < 0 || x >= w || y >= w)
		return 1;
	return (q->data[y * w + x] & 1) == 0; /* bit 0 of each byte: dark module */
}

static int encode(const char *payload, QRcode **out)
{
	size_t len = strlen(payload);

	*out = NULL;
	if (len == 0 || len > CLI_QR_MAX_PAYLOAD)
		return PARLEY_E_TOO_LARGE;
	errno = 0;
	*out = QRcode_encodeString8bit(payload, 0, QR_ECLEVEL_M);
	if (*out == NULL)
		return errno == ENOMEM ? PARLEY_E_NOMEM : PARLEY_E_TOO_LARGE;
	return PARLEY_OK;
}

int cli_qr_modules(const char *payload, int *width)
{
	QRcode *q;
	int rc = encode(payload, &q);

	if (rc == PARLEY_OK) {
		*width = q->width;
		QRcode_free(q);
	}
	return rc;
}

int cli_qr_print(FILE *f, const char *payload)
{
	static const char *const cell[4] = {" ", "\xE2\x96\x84", "\xE2\x96\x80", "\xE2\x96\x88"}; /* ▄ ▀ █ */
	QRcode *q;
	int rc = encode(payload, &q), n, x, y;

	if (rc != PARLEY_OK)
		return rc;
	n = q->width + 2 * CLI_QR_QUIET;
	for (y = 0; y < n; y += 2) {
		for (x = 0; x < n; x++) {
			/* the row below the last one (odd n) is the terminal's background: not light */
			int top = light_at(q, x, y), bottom = y + 1 < n ? light_at(q, x, y + 1) : 0;
			fputs(cell[top * 2 + bottom], f);
		}
		fputc('\n', f);
	}
	QRcode_free(q);
	return ferror(f) ? PARLEY_E_IO : PARLEY_OK;
}

/* libpng reports errors by longjmp: the setjmp frame is the caller's (write_png). */
static int write_png(FILE *fp, const QRcode *q, png_bytep row)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
	int n = q->width + 2 * CLI_QR_QUIET, px = n * CLI_QR_SCALE;

	if (info == NULL) {
		png_destroy_write_struct(&png, NULL);
		return PARLEY_E_NOMEM;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return PARLEY_E_IO;
	}
	png_init_io(png, fp);
	png_set_IHDR(png, info, (png_uint_32)px, (png_uint_32)px, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < px; y++) {
		for (int x = 0; x < px; x++)
			row[x] = light_at(q, x / CLI_QR_SCALE, y / CLI_QR_SCALE) ? 0xFF : 0x00;
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return PARLEY_OK;
}

int cli_qr_png(const char *path, const char *payload, char *err, size_t errlen)
{
	char tmp[4096];
	QRcode *q;
	png_bytep row;
	FILE *fp;
	int rc, n;

	err[0] = '\0';
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return PARLEY_E_TOO_LARGE;
	}
	rc = encode(payload, &q);
	if (rc != PARLEY_OK)
		return rc;
	n = q->width + 2 * CLI_QR_QUIET;
	row = malloc((size_t)n * CLI_QR_SCALE);
	fp = row != NULL ? fopen(tmp, "wb") : NULL;
	if (fp == NULL) {
		rc = row == NULL ? PARLEY_E_NOMEM : PARLEY_E_IO;
		if (rc == PARLEY_E_IO)
			snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		free(row);
		QRcode_free(q);
		return rc;
	}
	rc = write_png(fp, q, row);
	if (fclose(fp) != 0 && rc == PARLEY_OK)
		rc = PARLEY_E_IO;
	if (rc == PARLEY_OK && rename(tmp, path) != 0)
		rc = PARLEY_E_IO;
	if (rc != PARLEY_OK) {
		if (err[0] == '\0')
			snprintf(err, errlen, "%s: %s", path, errno != 0 ? strerror(errno) : "write failed");
		unlink(tmp);
	}
	free(row);
	QRcode_free(q);
	return rc;
}
