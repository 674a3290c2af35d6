/* libFuzzer: wire__forward_bundle_decode / wire__forward_history_decode on arbitrary bytes (the first
 * byte picks which). A decode either fails with *out NULL and PARLEY_E_FORWARD_INVALID, or yields a
 * message that passes the same checks again (every bound of forward.h holds). */
#include <stdint.h>
#include <stdlib.h>

#include <parley/error.h>

#include "wire/forward.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int rc;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		Parley__Wire__ForwardHistory *h = NULL;
		rc = wire__forward_history_decode(data + 1, size - 1, &h, err, sizeof err);
		if ((rc == PARLEY_OK) != (h != NULL) || (rc != PARLEY_OK && rc != PARLEY_E_FORWARD_INVALID))
			abort();
		if (h != NULL && wire__forward_history_check(h, NULL, 0) != PARLEY_OK)
			abort();
		wire__forward_history_free(h);
		return 0;
	}
	Parley__Wire__ForwardBundle *b = NULL;
	rc = wire__forward_bundle_decode(data + 1, size - 1, &b, err, sizeof err);
	if ((rc == PARLEY_OK) != (b != NULL) || (rc != PARLEY_OK && rc != PARLEY_E_FORWARD_INVALID))
		abort();
	if (b != NULL && (wire__forward_bundle_check(b, NULL, 0) != PARLEY_OK || b->n_events == 0 ||
			  b->n_events > WIRE_FORWARD_MAX_EVENTS || b->n_sender_keys > WIRE_FORWARD_MAX_KEYS))
		abort();
	wire__forward_bundle_free(b);
	return 0;
}
