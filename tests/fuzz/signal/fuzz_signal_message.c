/* libFuzzer: SignalMessage decoder, then decryption against a fixed session state (exercises the
 * ratchet step, skipped-key lookup and MAC path on hostile input; the state must never change since
 * no input can carry a valid MAC). */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "crypto/crypto.h"
#include "signal/message.h"
#include "signal/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sig_state bob;
static int ready;

static void setup(void)
{
	crypto_keypair a_ik, a_base, b_ik, b_spk;
	/* fixed keys: reproducible crashes */
	uint8_t seed[32];
	crypto__init();
	memset(seed, 1, 32);
	crypto__keypair_from_private(&a_ik, seed);
	memset(seed, 2, 32);
	crypto__keypair_from_private(&a_base, seed);
	memset(seed, 3, 32);
	crypto__keypair_from_private(&b_ik, seed);
	memset(seed, 4, 32);
	crypto__keypair_from_private(&b_spk, seed);
	sig__init_bob(&bob, &b_ik, &b_spk, NULL, &b_spk, a_ik.pub, a_base.pub);
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sig_msg m;
	static uint8_t out[PARLEY_SIGNAL_MAX_MESSAGE];
	size_t n = 0;

	if (!ready)
		setup();
	if (sig__msg_decode(&m, data, size) != PARLEY_OK)
		return 0;
	/* a decoded message never points outside the input */
	if (m.ciphertext < data || m.ciphertext + m.ciphertext_len > data + size)
		abort();
	if (sig__state_decrypt(&bob, &m, 0, out, sizeof(out), &n) == PARLEY_OK)
		abort(); /* would mean a forged MAC */
	return 0;
}
