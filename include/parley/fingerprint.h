/* parley — safety numbers (Signal "fingerprints"), identical to libsignal's for the same inputs.
 *
 * Two users compare either the 60-digit displayable number (read aloud or side by side) or the
 * scannable encoding (a QR code holding both sides' hashes). Each side's hash is an iterated SHA-512 of
 * its serialized identity key and a stable identifier chosen by the application (libsignal's tests use
 * phone numbers; use the same identifier bytes on both devices, or the numbers will not match).
 *
 * Keys are libsignal-serialized Curve25519 public keys: 0x05 followed by 32 bytes (33 bytes).
 */
#ifndef PARLEY_FINGERPRINT_H
#define PARLEY_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include <parley/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Iterations Signal apps use; libsignal accepts 2..1,000,000. */
#define PARLEY_FINGERPRINT_ITERATIONS 5200
/* Scannable format version libsignal's current tests use (1 and 2 differ only in this number). */
#define PARLEY_FINGERPRINT_VERSION 2
/* Displayable number: 60 decimal digits (30 per side), plus the terminating NUL. */
#define PARLEY_FINGERPRINT_DISPLAY_LEN 60
/* Longest identifier accepted (bytes); longer input is PARLEY_E_INVAL. */
#define PARLEY_FINGERPRINT_MAX_ID 1024

typedef struct parley_fingerprint parley_fingerprint;

/* Computes both sides' hashes. `local_key`/`remote_key` are serialized public keys (33 bytes; any
 * bytes after the 33rd are ignored, as libsignal does). On success *out is a new handle the caller frees
 * with parley_fingerprint_free; on failure *out is NULL.
 * Errors: PARLEY_E_INVAL (iterations outside 2..1,000,000, NULL pointers, identifier too long),
 *         PARLEY_E_INVALID_KEY (key shorter than 33 bytes or not type 0x05), PARLEY_E_NOMEM. */
PARLEY_EXPORT int parley_fingerprint_new(parley_fingerprint **out, uint32_t version, uint32_t iterations,
	const uint8_t *local_id, size_t local_id_len, const uint8_t *local_key, size_t local_key_len,
	const uint8_t *remote_id, size_t remote_id_len, const uint8_t *remote_key, size_t remote_key_len);

/* The 60 digits, NUL-terminated; owned by the handle, valid until it is freed. Both users get the
 * same string. */
PARLEY_EXPORT const char *parley_fingerprint_display(const parley_fingerprint *fp);

/* The scannable encoding (protobuf CombinedFingerprints), owned by the handle. */
PARLEY_EXPORT const uint8_t *parley_fingerprint_scannable(const parley_fingerprint *fp, size_t *len);

/* Compares the other user's scannable encoding with ours: *match = 1 when it carries our hashes
 * crosswise (their local = our remote, their remote = our local), 0 otherwise. Comparison is
 * constant-time. *match is 0 on every error.
 * Errors: PARLEY_E_INVALID_MESSAGE (not a well-formed CombinedFingerprints, or a field missing),
 *         PARLEY_E_BAD_VERSION (their version differs from ours), PARLEY_E_INVAL. */
PARLEY_EXPORT int parley_fingerprint_compare(const parley_fingerprint *fp, const uint8_t *theirs,
	size_t theirs_len, int *match);

/* NULL is accepted. Wipes the hashes. */
PARLEY_EXPORT void parley_fingerprint_free(parley_fingerprint *fp);

#ifdef __cplusplus
}
#endif
#endif
