/* Wall-clock time in milliseconds since the epoch: timestamps that are stored or sent (message and
 * server timestamps, expiry). Durations use the loop's monotonic clock (uv_now / uv_hrtime) instead. */
#ifndef PARLEY_COMMON_CLOCK_H
#define PARLEY_COMMON_CLOCK_H
#include <stdint.h>

uint64_t parley__wall_ms(void);

#endif
