#include "scan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

/* Files bigger than this are refused (SCAN_MISSING): no test database comes near it, and a silent
 * partial scan would be a scan that cannot fail. */
#define SCAN_FILE_MAX ((size_t)512 << 20)
#define NEEDLE_MAX 4096

static int b64_variant(const char *encoding)
{
	if (strcmp(encoding, "base64") == 0)
		return sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
	if (strcmp(encoding, "base64url") == 0)
		return sodium_base64_VARIANT_URLSAFE_NO_PADDING;
	return -1;
}

size_t scan_encode(const char *encoding, const void *data, size_t len, char *out, size_t cap)
{
	const uint8_t *p = data;
	int variant = b64_variant(encoding);
	size_t i;

	if (variant >= 0) {
		if (cap < sodium_base64_ENCODED_LEN(len, variant))
			return 0;
		sodium_bin2base64(out, cap, p, len, variant);
		return strlen(out);
	}
	if (strcmp(encoding, "hex") == 0 || strcmp(encoding, "HEX") == 0) {
		if (cap < 2 * len + 1)
			return 0;
		sodium_bin2hex(out, cap, p, len);
		for (i = 0; encoding[0] == 'H' && i < 2 * len; i++)
			out[i] = (char)toupper((unsigned char)out[i]);
		return 2 * len;
	}
	if (strcmp(encoding, "utf16le") == 0 || strcmp(encoding, "utf16be") == 0) {
		int le = encoding[5] == 'l';
		if (cap < 2 * len + 1)
			return 0;
		for (i = 0; i < len; i++) {
			out[2 * i + !le] = (char)p[i];
			out[2 * i + le] = '\0';
		}
		out[2 * len] = '\0';
		return 2 * len;
	}
	if (strcmp(encoding, "raw") == 0) {
		if (cap < len + 1)
			return 0;
		memcpy(out, p, len);
		out[len] = '\0';
		return len;
	}
	return 0;
}

static int find(const uint8_t *buf, size_t len, const char *needle, size_t nlen, const char *encoding,
		scan_hit *hit)
{
	const uint8_t *at = nlen != 0 ? memmem(buf, len, needle, nlen) : NULL;
	if (at == NULL)
		return 0;
	if (hit != NULL) {
		hit->encoding = encoding;
		hit->offset = (size_t)(at - buf);
	}
	return 1;
}

int scan_buf(const uint8_t *buf, size_t len, const void *marker, size_t marker_len, scan_hit *hit)
{
	static const char *const simple[] = {"hex", "HEX", "utf16le", "utf16be"};
	static const char *const b64[] = {"base64", "base64url"};
	const uint8_t *m = marker;
	char needle[NEEDLE_MAX];
	size_t i, k, n;

	if (find(buf, len, marker, marker_len, "raw", hit))
		return 1;
	if (marker_len < SCAN_ENCODED_MIN || 2 * marker_len + 1 > sizeof(needle))
		return 0;
	for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		n = scan_encode(simple[i], marker, marker_len, needle, sizeof(needle));
		if (find(buf, len, needle, n, simple[i], hit))
			return 1;
	}
	/* In a base64 stream the marker starts at any byte offset mod 3; only the whole 3-byte groups it
	 * fills are encoded independently of its neighbours. So for each k in 0..2, the groups of
	 * marker[k..] are searched: one of the three lines up with the stream's grouping. */
	for (i = 0; i < sizeof(b64) / sizeof(b64[0]); i++)
		for (k = 0; k < 3; k++) {
			size_t groups = (marker_len - k) / 3 * 3;
			n = scan_encode(b64[i], m + k, groups, needle, sizeof(needle));
			if (find(buf, len, needle, n, b64[i], hit))
				return 1;
		}
	return 0;
}

int scan_file(const char *path, const void *marker, size_t marker_len, scan_hit *hit)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t got;
	int found;

	if (f == NULL)
		return SCAN_MISSING;
	if (fstat(fileno(f), &st) != 0 || (size_t)st.st_size > SCAN_FILE_MAX) {
		fclose(f);
		return SCAN_MISSING;
	}
	/* A live file may change while it is read (a WAL grows, or is truncated past journal_size_limit):
	 * what is there up to its size at fstat time is scanned; only a read error is a failure. */
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		fclose(f);
		return SCAN_MISSING;
	}
	got = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return SCAN_MISSING;
	}
	fclose(f);
	found = scan_buf(buf, got, marker, marker_len, hit);
	free(buf);
	return found ? SCAN_FOUND : SCAN_CLEAN;
}

int scan_path(const char *dir, const char *rel, const void *marker, size_t marker_len, int required)
{
	char path[512];
	scan_hit hit;
	const char *m = marker;
	size_t i;
	int r, printable = marker_len < 80;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	r = scan_file(path, marker, marker_len, &hit);
	for (i = 0; printable && i < marker_len; i++)
		printable = m[i] >= 0x20 && m[i] < 0x7f;
	if (r == SCAN_FOUND)
		fprintf(stderr, "# '%.*s' found as %s at offset %zu in %s\n", printable ? (int)marker_len : 6,
			printable ? m : "marker", hit.encoding, hit.offset, rel);
	else if (r == SCAN_MISSING && required)
		fprintf(stderr, "# %s is missing: nothing scanned there\n", rel);
	else if (r == SCAN_MISSING)
		r = SCAN_CLEAN;
	return r;
}

int scan_client_dir(const char *dir, const char *name, const void *marker, size_t marker_len, int open)
{
	static const char *const files[] = {"client.db", "signal.db", "client.db-wal", "signal.db-wal"};
	char rel[300];
	size_t i;
	int r = SCAN_CLEAN;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(rel, sizeof(rel), "%s/%s", name, files[i]);
		r |= scan_path(dir, rel, marker, marker_len, open || i < 2);
	}
	return r;
}
