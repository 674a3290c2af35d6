/* libFuzzer: wire__threadev_parse / _verify on arbitrary bytes. A parse either fails with the output
 * zeroed or yields fields within the record's rules (exact length, a known kind, OPEN without a
 * thread id at version 1, the others with one at version >= 2); verify never accepts what parse
 * refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "wire/threadev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = {1};
	wire_threadev ev, zero;
	int rc = wire__threadev_parse(data, size, &ev);

	memset(&zero, 0, sizeof zero);
	if (rc != PARLEY_OK) {
		if (rc != PARLEY_E_THREAD_EVENT_INVALID || memcmp(&ev, &zero, sizeof ev) != 0)
			abort();
		if (wire__threadev_verify(data, size, key, &ev) == PARLEY_OK)
			abort();
		return 0;
	}
	if (size != WIRE_THREADEV_FIXED + strlen(ev.entity) || ev.kind < WIRE_THREADEV_OPEN ||
	    ev.kind > WIRE_THREADEV_HANDBACK || ev.actor == 0 || ev.actor_device == 0 ||
	    (ev.kind == WIRE_THREADEV_OPEN) != (ev.thread_id == 0) || (ev.version == 1) != (ev.kind == WIRE_THREADEV_OPEN))
		abort();
	(void)wire__threadev_verify(data, size, key, &ev);
	return 0;
}
