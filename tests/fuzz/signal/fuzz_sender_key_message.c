/* libFuzzer: SenderKeyMessage decoder and the whole group-decrypt path (record lookup, signature check,
 * chain advance, AES) against a receiver that holds one known sender key. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>
#include <parley/signal_group.h>

#include "signal/sender_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static parley_signal_store sender, receiver;
static const parley_signal_address ALICE = {"alice", 1};
static const uint8_t DIST[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static int setup(void)
{
	parley_keypair id;
	uint8_t skdm[PARLEY_GROUP_DISTRIBUTION_MAX];
	size_t n;
	if (parley_signal_keypair_generate(&id) != PARLEY_OK || parley_signal_mem_store_new(&sender, &id, 1) != PARLEY_OK ||
		parley_signal_mem_store_new(&receiver, &id, 2) != PARLEY_OK ||
		parley_group_create_distribution(&sender, &ALICE, DIST, skdm, sizeof skdm, &n) != PARLEY_OK ||
		parley_group_process_distribution(&receiver, &ALICE, skdm, n, NULL) != PARLEY_OK)
		abort();
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	sk_message m;
	uint8_t out[4096];
	size_t n;

	if (!ready)
		ready = setup();
	if (sender_key__message_decode(&m, data, size) == PARLEY_OK) {
		/* invariants: every borrowed slice lies inside the input */
		if (m.signed_len + 64 != size || m.signature != data + size - 64 || m.ciphertext < data ||
			m.ciphertext + m.ciphertext_len > data + size - 64)
			abort();
	}
	if (size <= sizeof out) {
		int rc = parley_group_decrypt(&receiver, &ALICE, data, size, out, sizeof out, &n);
		/* nobody but the holder of the signing key can produce an accepted message */
		if (rc == PARLEY_OK)
			abort();
	}
	return 0;
}
