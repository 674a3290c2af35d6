/* libFuzzer: wire__stafflist_verify on arbitrary bytes. A random input almost never carries a valid
 * signature, so the harness also checks the structural walk: a failure leaves the struct zeroed, and
 * a success (a mutation of a valid seed) names members within bounds, ascending, one primary admin. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "wire/stafflist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wire_stafflist l;
	int rc = wire__stafflist_verify(data, size, &l);
	if (rc != PARLEY_OK) {
		if (rc != PARLEY_E_STAFF_LIST_INVALID && rc != PARLEY_E_NOMEM)
			abort();
		if (l.members != NULL || l.n != 0)
			abort();
		return 0;
	}
	size_t primaries = 0;
	if (l.n < 1 || l.n > WIRE_STAFF_MAX)
		abort();
	for (size_t i = 0; i < l.n; i++) {
		const wire_staff_member *m = &l.members[i];
		if (i > 0 && m->account_id <= l.members[i - 1].account_id)
			abort();
		if (m->devlist_len > 0 && (m->devlist < data || m->devlist + m->devlist_len > data + size))
			abort();
		if (wire__stafflist_find(&l, m->account_id) != m)
			abort();
		primaries += (m->flags & WIRE_STAFF_PRIMARY) != 0;
		(void)wire__stafflist_effective_rules(&l, m);
	}
	if (primaries != 1)
		abort();
	wire__stafflist_free(&l);
	return 0;
}
