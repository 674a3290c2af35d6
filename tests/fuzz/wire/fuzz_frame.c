/* libFuzzer: wire__decode_frame on arbitrary bytes. Checks the codec's own invariants: a success has a
 * frame and re-encodes to something that decodes again; a failure leaves no frame. */
#include <stdint.h>
#include <stdlib.h>

#include <parley/error.h>

#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wire_frame f;
	int rc = wire__decode_frame(data, size, NULL, &f);
	if (rc != PARLEY_OK) {
		if (f.frame != NULL)
			abort();
		wire__frame_free(&f);
		return 0;
	}
	if (f.frame == NULL)
		abort();
	dynbuf out;
	dynbuf__init(&out, 2 * WIRE_DEFAULT_MAX_FRAME);
	if (wire__encode_frame(f.frame, &out) != PARLEY_OK)
		abort();
	wire_frame g;
	/* re-encoding drops nothing the checks look at, so it must pass them again */
	if (wire__decode_frame(out.data, out.len, NULL, &g) != PARLEY_OK)
		abort();
	if (g.has_id != f.has_id || g.id != f.id)
		abort();
	wire__frame_free(&g);
	dynbuf__free(&out);
	wire__frame_free(&f);
	return 0;
}
