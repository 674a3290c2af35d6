/* libFuzzer: PreKeySignalMessage decoder and the whole responder path (trust check, prekey lookup,
 * X3DH, decryption) through the public API with an in-memory store. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "signal/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static parley_signal_store store;
static parley_signal_ctx *ctx;

/* Trust every identity and remember none: otherwise the first identity the fuzzer invents for the
 * address would make every later input stop at the trust check, hiding the X3DH and ratchet code. */
static int trust_all(void *user, const parley_signal_address *addr, const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN],
		     parley_signal_direction dir, int *trusted)
{
	*trusted = 1;
	return PARLEY_OK;
}

static int save_nothing(void *user, const parley_signal_address *addr, const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN],
			int *replaced)
{
	*replaced = 0;
	return PARLEY_OK;
}

static void setup(void)
{
	parley_keypair ik;
	parley_signed_prekey spk;
	parley_prekey pk;
	parley_signal_keypair_generate(&ik);
	parley_signal_mem_store_new(&store, &ik, 1234);
	parley_signal_signed_prekey_generate(&spk, &ik, 1, 0);
	store.store_signed_prekey(store.user, &spk);
	for (uint32_t i = 1; i <= 4; i++) {
		parley_signal_prekey_generate(&pk, i);
		store.store_prekey(store.user, &pk);
	}
	store.is_trusted_identity = trust_all;
	store.save_identity = save_nothing;
	parley_signal_ctx_new(&ctx, &store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[PARLEY_SIGNAL_MAX_MESSAGE];
	sig_prekey_msg pm;
	parley_signal_address addr = {"fuzz", 1};
	size_t n = 0;
	int rc;

	if (ctx == NULL)
		setup();
	rc = sig__prekey_msg_decode(&pm, data, size);
	if (rc != PARLEY_OK)
		return 0;
	if (parley_signal_decrypt_prekey(ctx, &addr, data, size, out, sizeof(out), &n) == PARLEY_OK)
		abort(); /* cannot succeed without knowing a private key */
	return 0;
}
