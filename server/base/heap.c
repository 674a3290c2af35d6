#include "heap.h"

#include <stdlib.h> /* defines __GLIBC__ on glibc, which the test below needs */
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Under AddressSanitizer glibc's malloc is never used, so its first call is this trim, made from a
 * worker thread: glibc then initialises itself and attaches that thread to the main arena without
 * counting it, and when two such workers exit, glibc aborts ("a->attached_threads > 0"). The trim
 * frees nothing of the sanitizer's heap anyway, so sanitized builds skip it. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_TRIM 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_TRIM 0
#endif
#endif
#ifndef HEAP_TRIM
#define HEAP_TRIM 1
#endif

int heap__trim(void)
{
#if defined(__GLIBC__) && HEAP_TRIM
	malloc_trim(0);
	return 1;
#else
	return 0;
#endif
}
