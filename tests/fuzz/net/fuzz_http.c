/* Fuzz the HTTP request parser (split into two feeds at a point taken from the input) and, when a request
 * completes, the upgrade validation and 101 builder; also the client-side response parser. */
#include <stddef.h>
#include <stdint.h>

#include <parley/error.h>

#include "codec/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	http_req_parser *p = NULL;
	http_resp_parser *rp = NULL;
	size_t used = 0, split;
	int complete = 0, rc;
	if (size < 1)
		return 0;
	split = data[0] % (size);
	data++;
	size--;
	if (split > size)
		split = size;
	http_limits lim = {.max_header_bytes = 4096, .max_headers = 32, .max_url = 512, .max_body = 64};
	if (http__req_parser_new(&p, &lim) != PARLEY_OK)
		return 0;
	rc = http__req_parser_feed(p, data, split, &used, &complete);
	if (rc == PARLEY_OK && !complete)
		rc = http__req_parser_feed(p, data + split, size - split, &used, &complete);
	if (rc == PARLEY_OK && complete) {
		const http_request *r = http__req_parser_request(p);
		int status;
		if (http__ws_validate_upgrade(r, &status) == PARLEY_OK) {
			dynbuf out;
			dynbuf__init(&out, 4096);
			(void)http__ws_build_101(&out, r->ws_key, r->ws_protocol);
			dynbuf__free(&out);
		}
	}
	http__req_parser_free(p);
	if (http__resp_parser_new(&rp, &lim, "dGhlIHNhbXBsZSBub25jZQ==") == PARLEY_OK) {
		(void)http__resp_parser_feed(rp, data, size, &used, &complete);
		http__resp_parser_free(rp);
	}
	return 0;
}
