/* libFuzzer: stored sender-key record decoder. The format is canonical, so anything that decodes must
 * re-encode to the identical bytes; decrypt-side chain stepping must stay within its bounds. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "signal/sender_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_record r;
	sk_keys k;
	uint8_t *buf;
	size_t n;

	if (sender_key__record_decode(&r, data, size) != PARLEY_OK)
		return 0;
	if (sender_key__record_encode(&r, &buf, &n) != PARLEY_OK)
		abort();
	if (n != size || memcmp(buf, data, n) != 0)
		abort();
	parley__free(buf);
	if (r.nstates > 0) {
		sk_state *s = &r.states[0];
		/* a small forward step and a lookup of an old iteration */
		sender_key__state_keys_for(s, s->iteration + (data[size - 1] & 0x3f), &k);
		sender_key__state_keys_for(s, s->iteration > 0 ? s->iteration - 1 : 0, &k);
		if (s->nkeys > SK_MAX_MESSAGE_KEYS)
			abort();
	}
	sender_key__record_clear(&r);
	return 0;
}
