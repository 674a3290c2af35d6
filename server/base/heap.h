/* Returning freed heap pages to the system. Two places trim: a network loop after a wave of closed
 * connections, and a dispatch worker after a quiet spell; both go through here. */
#ifndef PARLEYD_HEAP_H
#define PARLEYD_HEAP_H

/* Hands the free pages of every malloc arena back to the system. Returns 1 if it trimmed, 0 where
 * there is nothing to do (not glibc, or a sanitizer's allocator owns the heap). */
int heap__trim(void);

#endif
