/* libFuzzer: wire__devlist_verify on arbitrary bytes. A forged signature is out of reach, so the
 * interesting part is the structural walk: no read past the input, a failure leaves a zeroed list, and a
 * success (seeded by the corpus) has a list that find() agrees with. */
#include <stdint.h>
#include <stdlib.h>

#include <parley/error.h>

#include "wire/devlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static wire_devlist l;
	int rc = wire__devlist_verify(data, size, &l);
	if (rc != PARLEY_OK) {
		if (rc != PARLEY_E_DEVICE_LIST_INVALID || l.n != 0 || l.version != 0)
			abort();
		return 0;
	}
	if (l.n < 1 || l.n > WIRE_DEVLIST_MAX)
		abort();
	for (size_t i = 0; i < l.n; i++)
		if (wire__devlist_find(&l, l.dev[i].device_id) != &l.dev[i])
			abort();
	return 0;
}
