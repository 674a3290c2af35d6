/* libFuzzer: session-record decoder (records come from a store an attacker may have touched). Any
 * record that decodes must re-encode to exactly the same bytes. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "common/dynbuf.h"
#include "signal/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sig_record r;
	dynbuf b;

	if (sig__record_decode(&r, data, size) != PARLEY_OK)
		return 0;
	dynbuf__init(&b, size + 1);
	if (sig__record_encode(&r, &b) != PARLEY_OK || b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	dynbuf__free(&b);
	sig__record_free(&r);
	return 0;
}
