/* Plaintext scanner for the "nothing in clear at rest" tests: looks for a marker in a buffer or a file
 * not only as raw bytes but in the encodings a careless leak would use (hex, base64, base64url, UTF-16),
 * so a trivially encoded leak is caught too. Used by the integration tests, by the client's end-to-end
 * test and (through the it-scan program) by the shell tests. */
#ifndef PARLEY_IT_SCAN_H
#define PARLEY_IT_SCAN_H
#include <stddef.h>
#include <stdint.h>

/* Shorter markers are searched as raw bytes only: the encoded forms of a short marker (a 4-character
 * base64 group) could match by chance in megabytes of ciphertext. */
#define SCAN_ENCODED_MIN 9

typedef struct scan_hit {
	const char *encoding; /* "raw", "hex", "HEX", "base64", "base64url", "utf16le", "utf16be" */
	size_t offset;        /* where in the buffer/file */
} scan_hit;

/* 1 if marker (len bytes) occurs in buf in any of the encodings (hit filled), 0 if not. */
int scan_buf(const uint8_t *buf, size_t len, const void *marker, size_t marker_len, scan_hit *hit);

/* Results are bits, so the scans of several files combine with |: SCAN_FOUND | SCAN_MISSING says the
 * marker was found in one file and another was missing. */
enum { SCAN_CLEAN = 0, SCAN_FOUND = 1, SCAN_MISSING = 2 };
/* Scans a whole file: SCAN_FOUND (hit filled), SCAN_CLEAN, or SCAN_MISSING when it cannot be opened
 * or read (a scan of a file that is not there proves nothing, so callers treat it as a failure
 * unless the file is optional at that moment). */
int scan_file(const char *path, const void *marker, size_t marker_len, scan_hit *hit);

/* Scans dir/rel and says on stderr what it found ("# 'marker' found as base64 at offset N in rel") or
 * that a required file is missing. Returns SCAN_FOUND, SCAN_MISSING (required and missing), else
 * SCAN_CLEAN (an optional file that is absent counts as clean). */
int scan_path(const char *dir, const char *rel, const void *marker, size_t marker_len, int required);

/* A client's state directory dir/name: client.db and signal.db must exist; their -wal only while the
 * client is open (SQLite deletes it at the last close). The results of its files, combined. */
int scan_client_dir(const char *dir, const char *name, const void *marker, size_t marker_len, int open);

/* Writes `marker` encoded as `encoding` (one of the names above) into out (cap bytes, NUL-terminated);
 * returns the length, or 0 if it does not fit or the encoding is unknown. For positive controls. */
size_t scan_encode(const char *encoding, const void *marker, size_t marker_len, char *out, size_t cap);
#endif
