/* libFuzzer: scannable fingerprint (CombinedFingerprints protobuf) parser via compare. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <parley/fingerprint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static parley_fingerprint *fp;
	static const uint8_t a[33] = {5, 1, 2, 3}, b[33] = {5, 9, 8, 7};
	int match = -1;

	if (fp == NULL && parley_fingerprint_new(&fp, 2, 2, (const uint8_t *)"a", 1, a, 33, (const uint8_t *)"b", 1,
				  b, 33) != PARLEY_OK)
		abort();
	int rc = parley_fingerprint_compare(fp, data, size, &match);
	if (rc != PARLEY_OK && match != 0)
		abort();
	if (rc == PARLEY_OK && match != 0 && match != 1)
		abort();
	return 0;
}
