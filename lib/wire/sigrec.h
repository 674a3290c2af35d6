/* The pieces the Ed25519-signed records share (approval.c, threadev.c): the entity handle as a u8
 * length and its bytes, and the device-key signature over every byte before it, at the end. One
 * definition, so both records are signed and checked the same way. */
#ifndef PARLEY_WIRE_SIGREC_H
#define PARLEY_WIRE_SIGREC_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#define WIRE_SIGREC_SIG_LEN 64

/* Writes handle (checked by the caller: at most 255 bytes) as u8 length + bytes; returns the end. */
static inline uint8_t *wire__put_handle(uint8_t *p, const char *handle)
{
	size_t n = strlen(handle);
	*p++ = (uint8_t)n;
	memcpy(p, handle, n);
	return p + n;
}

/* Signs out[0, end - out) with the Ed25519 secret key sk (libsodium's 64 bytes), writes the signature
 * at end and returns the record's whole length. */
static inline size_t wire__sigrec_sign(uint8_t *out, uint8_t *end, const uint8_t sk[64])
{
	crypto_sign_detached(end, NULL, out, (size_t)(end - out), sk);
	return (size_t)(end - out) + WIRE_SIGREC_SIG_LEN;
}

/* 1 if the last WIRE_SIGREC_SIG_LEN bytes of buf sign the bytes before them under key (32 bytes). */
static inline int wire__sigrec_ok(const uint8_t *buf, size_t len, const uint8_t key[32])
{
	return key != NULL && len >= WIRE_SIGREC_SIG_LEN &&
	       crypto_sign_verify_detached(buf + len - WIRE_SIGREC_SIG_LEN, buf, len - WIRE_SIGREC_SIG_LEN, key) == 0;
}

#endif
