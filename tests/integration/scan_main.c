/* it-scan: the plaintext scanner (scan.c) for the shell tests.
 *
 *   it-scan MARKER FILE...
 *
 * A FILE written as ?PATH is optional (a database's -wal that may not exist at that moment); every
 * other file must exist. One line per file on stdout. Exit status: 1 if the marker (raw or encoded)
 * was found in any file, else 2 if a required file was missing or unreadable, else 0. */
#include <stdio.h>
#include <string.h>

#include "scan.h"

int main(int argc, char **argv)
{
	int found = 0, missing = 0, i;

	if (argc < 3) {
		fprintf(stderr, "usage: it-scan MARKER FILE... (?FILE: optional)\n");
		return 2;
	}
	for (i = 2; i < argc; i++) {
		int optional = argv[i][0] == '?';
		const char *path = argv[i] + optional;
		scan_hit hit;
		int r = scan_file(path, argv[1], strlen(argv[1]), &hit);
		if (r == SCAN_FOUND) {
			printf("FOUND as %s at offset %zu: %s\n", hit.encoding, hit.offset, path);
			found = 1;
		} else if (r == SCAN_MISSING) {
			printf("%s: %s\n", optional ? "absent (optional)" : "MISSING", path);
			missing |= !optional;
		} else {
			printf("clean: %s\n", path);
		}
	}
	return found ? 1 : missing ? 2 : 0;
}
