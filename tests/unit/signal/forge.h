/* A victim holding the fullest session record one peer can give it (1 current + 40 archived states,
 * the victim having replied on each, so every state may see a new ratchet key), and forged
 * SignalMessages against it (security item 11). Shared by the unit test (test_forged.c) and the
 * benchmark (tests/bench/crypto/forged_bench.c); functions return parley error codes, never exit. */
#ifndef PARLEY_TEST_FORGE_H
#define PARLEY_TEST_FORGE_H
#include <stddef.h>
#include <stdint.h>

#include <parley/signal.h>

#define FORGE_STATES (1 + PARLEY_SIGNAL_MAX_ARCHIVED_STATES)
#define FORGE_MSG_MAX 512

typedef struct forge_party {
	parley_keypair ik;
	uint32_t reg;
	parley_signal_store store;
	parley_signal_ctx *ctx;
	parley_signed_prekey spk;
	parley_signal_address addr;
} forge_party;

typedef struct forge_env {
	forge_party victim, peer;
	uint32_t n;
	/* after session k: the peer's record, and the victim's reply on it (genuine archived traffic) */
	uint8_t *peer_rec[FORGE_STATES];
	size_t peer_rec_len[FORGE_STATES];
	uint8_t reply[FORGE_STATES][FORGE_MSG_MAX];
	size_t reply_len[FORGE_STATES];
} forge_env;

/* n sessions (1..FORGE_STATES), each started by the peer and answered by the victim. */
int forge_env_init(forge_env *e, uint32_t n);
void forge_env_free(forge_env *e);

/* A SignalMessage on ratchet key `ratchet` (32 bytes; NULL: a random one) at `counter`, with random
 * ciphertext and MAC. Returns its length (0 if cap is too small). */
size_t forge_message(uint8_t *out, size_t cap, const uint8_t *ratchet, uint32_t counter);

/* The peer's newest ratchet key as the victim's current state knows it. */
int forge_known_ratchet(forge_env *e, uint8_t out[32]);

/* The victim decrypts msg as a SignalMessage from the peer. */
int forge_decrypt(forge_env *e, const uint8_t *msg, size_t len);

/* Genuine traffic on session k (0 = the oldest, now archived deepest): the peer goes back to its record
 * of session k, reads the victim's reply (so it turns its ratchet: a new key for the victim) and
 * encrypts `count` messages; the last one is returned in out. */
int forge_genuine_on(forge_env *e, uint32_t k, uint32_t count, uint8_t *out, size_t cap, size_t *len);

/* The victim's stored record for the peer, copied into buf (0 if none or too big). */
size_t forge_victim_record(forge_env *e, uint8_t *buf, size_t cap);
#endif
