/* Terminal-safe output of text that other people chose (message bodies, device names, handles).
 *
 * A message is bytes: the sender may put anything in it. Written raw to a terminal, ESC and the C1
 * controls start escape sequences (move the cursor, rewrite earlier lines, set the window title, in some
 * terminals far worse), BEL rings, and invalid UTF-8 can swallow the characters that follow it. So:
 *   - C0 controls, DEL and the C1 controls (U+0080..U+009F, which some terminals obey like ESC [) print
 *     as '?';
 *   - the bidirectional embedding/override/isolate controls (U+202A..U+202E, U+2066..U+2069) print as
 *     '?', so a text cannot reorder what follows it on the line;
 *   - bytes that are not well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 *     U+10FFFF) print as U+FFFD, one per maximal ill-formed subpart, as Unicode recommends (§3.9);
 *   - everything else is copied unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

size_t cli_utf8_next(const uint8_t *s, size_t len, uint32_t *cp, size_t *bad)
{
	uint8_t b = s[0], lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	if (b >= 0xC2 && b <= 0xDF) {
		n = 2;
	} else if (b >= 0xE0 && b <= 0xEF) {
		n = 3;
		lo = b == 0xE0 ? 0xA0 : 0x80; /* overlong */
		hi = b == 0xED ? 0x9F : 0xBF; /* surrogates */
	} else if (b >= 0xF0 && b <= 0xF4) {
		n = 4;
		lo = b == 0xF0 ? 0x90 : 0x80; /* overlong */
		hi = b == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
	} else {
		*bad = 1;
		return 0;
	}
	*cp = b & (0x7Fu >> n);
	for (i = 1; i < n; i++) {
		if (i >= len || s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		*cp = *cp << 6 | (s[i] & 0x3Fu);
		lo = 0x80;
		hi = 0xBF;
	}
	return n;
}

static int is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

void cli_write_safe(FILE *f, const void *text, size_t len)
{
	const uint8_t *s = text;
	size_t i = 0;

	while (i < len) {
		uint32_t cp = 0;
		size_t bad = 0, n = cli_utf8_next(s + i, len - i, &cp, &bad);
		if (n == 0) {
			fputs(REPLACEMENT, f);
			i += bad;
		} else {
			if (is_control(cp))
				putc('?', f);
			else
				fwrite(s + i, 1, n, f);
			i += n;
		}
	}
}

void cli_print_safe(const char *s)
{
	cli_write_safe(stdout, s, strlen(s));
}

const char *cli_safe_handle(const char *handle, char out[PARLEY_HANDLE_MAX + 1])
{
	size_t i;

	for (i = 0; i < PARLEY_HANDLE_MAX && handle[i] != '\0'; i++) {
		char ch = handle[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
		out[i] = ok ? ch : '?';
	}
	out[i] = '\0';
	return out;
}
