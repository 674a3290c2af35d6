/* Big-endian integers of the signed records (approval.c, threadev.c): one definition, so every record
 * writes and reads its fixed-width fields the same way. */
#ifndef PARLEY_WIRE_BE_H
#define PARLEY_WIRE_BE_H
#include <stdint.h>

/* Writes the low `bytes` bytes of v at p, most significant first; returns p + bytes. */
static inline uint8_t *wire__put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return p + bytes;
}

/* Reads `bytes` bytes at *p (most significant first) and advances *p past them. */
static inline uint64_t wire__get_be(const uint8_t **p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = (v << 8) | (*p)[i];
	*p += bytes;
	return v;
}

#endif
