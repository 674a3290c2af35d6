/* libFuzzer: wire__threadev_parse / _verify on arbitrary bytes. A parse either fails with the output
 * zeroed or yields fields within the record's rules (exact length, a known kind, OPEN without a
 * thread id at version 1, the others with one at version >= 2; a channel customer only on an OPEN,
 * valid, and only in the v2 form whose length it gives); verify never accepts what parse refuses; and
 * the encoding is unique: what parses, signed again, gives back the same bytes before the signature. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "wire/threadev.h"
#include "wire/wire_threads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = {1}, seed[32] = {2};
	static uint8_t pk[32], sk[64];
	static int ready;
	uint8_t again[WIRE_THREADEV_MAX_BYTES];
	size_t alen = 0;
	wire_threadev ev, zero;
	int rc = wire__threadev_parse(data, size, &ev);

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		crypto_sign_seed_keypair(pk, sk, seed);
		ready = 1;
	}

	memset(&zero, 0, sizeof zero);
	if (rc != PARLEY_OK) {
		if (rc != PARLEY_E_THREAD_EVENT_INVALID || memcmp(&ev, &zero, sizeof ev) != 0)
			abort();
		if (wire__threadev_verify(data, size, key, &ev) == PARLEY_OK)
			abort();
		return 0;
	}
	size_t extra = ev.channel != 0 ? WIRE_THREADEV_CHANNEL_EXTRA(strlen(ev.channel_user)) : 0;
	if (ev.channel != 0 && (ev.kind != WIRE_THREADEV_OPEN || !wire__channel_valid(ev.channel, ev.channel_user) ||
				memcmp(data, WIRE_THREADEV_MAGIC_CHANNEL, WIRE_THREADEV_MAGIC_LEN) != 0))
		abort();
	if (ev.channel == 0 && (ev.channel_user[0] != '\0' || memcmp(data, WIRE_THREADEV_MAGIC, WIRE_THREADEV_MAGIC_LEN) != 0))
		abort();
	if (size != WIRE_THREADEV_FIXED + strlen(ev.entity) + extra || ev.kind < WIRE_THREADEV_OPEN ||
	    ev.kind > WIRE_THREADEV_HANDBACK || ev.actor == 0 || ev.actor_device == 0 ||
	    (ev.kind == WIRE_THREADEV_OPEN) != (ev.thread_id == 0) || (ev.version == 1) != (ev.kind == WIRE_THREADEV_OPEN))
		abort();
	if (wire__threadev_sign(&ev, sk, again, sizeof again, &alen) != PARLEY_OK || alen != size ||
	    memcmp(again, data, size - 64) != 0 || wire__threadev_verify(again, alen, pk, &zero) != PARLEY_OK ||
	    memcmp(&zero, &ev, sizeof ev) != 0)
		abort();
	(void)wire__threadev_verify(data, size, key, &ev);
	return 0;
}
