/* libFuzzer: SenderKeyDistributionMessage decoder; what decodes must re-encode to a message that
 * decodes to the same fields. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "signal/sender_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_distribution d, d2;
	uint8_t buf[256];
	size_t n;

	if (sender_key__distribution_decode(&d, data, size) != PARLEY_OK)
		return 0;
	if (sender_key__distribution_encode(buf, sizeof buf, &n, &d) != PARLEY_OK)
		abort();
	if (sender_key__distribution_decode(&d2, buf, n) != PARLEY_OK || memcmp(&d, &d2, sizeof d) != 0)
		abort();
	return 0;
}
