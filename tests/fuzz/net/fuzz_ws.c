/* Fuzz a server-role WebSocket session fed the input in chunks (sizes from the input itself), draining
 * its output as a socket would, plus the pure frame-header parser and UTF-8 validator. Odd chunk sizes
 * go through ws__feed_inplace (the server's path: unmasking in the read buffer), even ones ws__feed. */
#include <string.h>

#include <stddef.h>
#include <stdint.h>

#include <parley/error.h>

#include "codec/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ws_session *current; /* the callback's session: created after the callbacks are set */

static void on_message(void *ctx, const uint8_t *buf, size_t len)
{
	ws_session *s = current;
	(void)ctx;
	/* echo like a service would: exercises queueing from inside the callback */
	if (len > 0 && buf[0] == 'E')
		(void)ws__send_binary(s, buf, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ws_frame_header h;
	ws_session *s = NULL;
	(void)ws__frame_header_parse(data, size, &h);
	(void)ws__utf8_valid(data, size);
	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] + 1;
	data++;
	size--;
	ws_config cfg = {.max_message = 4096, .max_output = 8192};
	ws_callbacks cb = {.on_message = on_message};
	if (ws__session_new(&s, WS_ROLE_SERVER, &cfg, &cb) != PARLEY_OK)
		return 0;
	current = s;
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		uint8_t scratch[256];
		int rc;
		if (step % 2) {
			memcpy(scratch, data + off, n);
			rc = ws__feed_inplace(s, scratch, n);
		} else {
			rc = ws__feed(s, data + off, n);
		}
		if (rc != PARLEY_OK)
			break;
		size_t len;
		(void)ws__pending_output(s, &len);
		ws__consume_output(s, len / 2); /* a socket that writes only part of it */
	}
	ws__session_free(s);
	return 0;
}
