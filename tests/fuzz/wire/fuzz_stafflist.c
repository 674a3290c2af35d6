/* libFuzzer: wire__stafflist_verify on arbitrary bytes. A forged signature is out of reach, so the
 * interesting part is the structural walk: no read past the input, no leak of the members array on any
 * failure, a zeroed list after a failure, and a success (seeded by the corpus) whose members find()
 * agrees with and whose device lists lie inside the input. */
#include <stdint.h>
#include <stdlib.h>

#include <parley/error.h>

#include "wire/stafflist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wire_stafflist l;
	int rc = wire__stafflist_verify(data, size, &l);

	if (rc != PARLEY_OK) {
		if ((rc != PARLEY_E_STAFF_LIST_INVALID && rc != PARLEY_E_NOMEM) || l.n != 0 || l.members != NULL)
			abort();
		return 0;
	}
	if (l.n < 1 || l.n > WIRE_STAFF_MAX)
		abort();
	for (size_t i = 0; i < l.n; i++) {
		const wire_staff_member *m = &l.members[i];
		if (wire__stafflist_find(&l, m->account_id) != m)
			abort();
		if (m->devlist_len > 0 && (m->devlist < data || m->devlist + m->devlist_len > data + size))
			abort();
	}
	wire__stafflist_free(&l);
	return 0;
}
