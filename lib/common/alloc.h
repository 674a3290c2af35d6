/* One allocation wrapper for all of parley's C code.
 *
 * Why: the library must turn allocation failure into PARLEY_E_NOMEM rather than abort, and tests must be
 * able to fail the Nth allocation to prove every error path frees what it took (curl's torture tests).
 * Only parleyd's main may decide that out-of-memory is fatal.
 */
#ifndef PARLEY_COMMON_ALLOC_H
#define PARLEY_COMMON_ALLOC_H
#include <stddef.h>

void *parley__malloc(size_t n);
void *parley__calloc(size_t count, size_t n);
void *parley__realloc(void *p, size_t n);
void parley__free(void *p);
char *parley__strdup(const char *s);
char *parley__strndup(const char *s, size_t maxlen);

/* Test hook: make the allocation numbered `nth` (1 = the next one) and every later one fail until
 * reset with 0. Not thread-safe on purpose: used only by single-threaded unit tests. */
void parley__alloc_fail_after(unsigned long nth);
unsigned long parley__alloc_count(void);

#endif
