/* Security item 11: a forged SignalMessage costs bounded work. The victim holds the fullest record one
 * peer can give it (1 current + 40 archived states, all of which it answered, so each may see a new
 * ratchet key). Before the fix a forged message with an unknown ratchet key and a counter near
 * MAX_FORWARD_JUMPS made every state do a DH step and ~25,000 chain steps (41 x 25,000 HMAC pairs);
 * now only the current state may jump that far. The work is counted by ratchet.c itself, compiled
 * into this test with PARLEY_TEST_SIGNAL_WORK (never in libparley). Genuine traffic on an archived
 * state, including a new ratchet key on the oldest one, still decrypts. */
#include <parley/error.h>
#include <parley/signal.h>

#include "forge.h"
#include "signal/state.h"
#include "../test.h"

/* What one state may cost under libsignal's limits: a DH step (two X25519 if its sending chain is
 * still lazy) and MAX_FORWARD_JUMPS + 1 chain steps. */
#define ONE_STATE_STEPS (PARLEY_SIGNAL_MAX_FORWARD_JUMPS + 1u)
#define ARCHIVED_STEPS ((uint64_t)PARLEY_SIGNAL_MAX_ARCHIVED_STATES * (PARLEY_SIGNAL_MAX_ARCHIVED_JUMP + 1u))

static forge_env env;
static uint8_t before[1 << 20], after[1 << 20];

static void reset_work(void)
{
	memset(&sig__work, 0, sizeof sig__work);
}

/* Decrypt a forged message: the expected error, the record untouched, and the work reported. */
static void forged(const uint8_t *ratchet, uint32_t counter, int want_rc, uint64_t max_steps, uint64_t max_mults)
{
	uint8_t msg[FORGE_MSG_MAX];
	size_t len = forge_message(msg, sizeof msg, ratchet, counter);
	size_t nb = forge_victim_record(&env, before, sizeof before), na;

	TEST_CHECK(len > 0 && nb > 0);
	reset_work();
	TEST_EQ_INT(forge_decrypt(&env, msg, len), want_rc);
	na = forge_victim_record(&env, after, sizeof after);
	TEST_CHECK(na == nb && memcmp(before, after, nb) == 0);
	printf("# forged counter %u (%s ratchet key): %llu chain steps, %llu X25519\n", counter,
	       ratchet != NULL ? "known" : "unknown", (unsigned long long)sig__work.chain_steps,
	       (unsigned long long)sig__work.scalar_mults);
	TEST_CHECK(sig__work.chain_steps <= max_steps);
	TEST_CHECK(sig__work.scalar_mults <= max_mults);
}

static void test_far_counter_unknown_key(void)
{
	/* the attack of the issue: was 41 DH steps and 41 x 25,000 chain steps */
	forged(NULL, PARLEY_SIGNAL_MAX_FORWARD_JUMPS - 1, PARLEY_E_BAD_MAC, ONE_STATE_STEPS, 2);
	/* beyond what any state accepts: nothing is computed at all */
	forged(NULL, PARLEY_SIGNAL_MAX_FORWARD_JUMPS + 1, PARLEY_E_TOO_FAR_AHEAD, 0, 0);
}

static void test_far_counter_known_key(void)
{
	uint8_t key[32];
	TEST_EQ_INT(forge_known_ratchet(&env, key), PARLEY_OK);
	/* the current state walks its chain (as libsignal); the archived ones do not know the key and the
	 * jump from 0 is over their limit, so they cost nothing */
	forged(key, PARLEY_SIGNAL_MAX_FORWARD_JUMPS - 1, PARLEY_E_BAD_MAC, ONE_STATE_STEPS, 0);
}

static void test_small_counter(void)
{
	/* within the archived limit every state is tried: still bounded by one DH step and the archived
	 * jump per archived state */
	forged(NULL, PARLEY_SIGNAL_MAX_ARCHIVED_JUMP - 1, PARLEY_E_BAD_MAC, ONE_STATE_STEPS + ARCHIVED_STEPS,
	       2 + PARLEY_SIGNAL_MAX_ARCHIVED_STATES);
}

static void test_genuine_archived(void)
{
	uint8_t msg[FORGE_MSG_MAX];
	size_t len = 0;

	/* the oldest session (deepest archived state), a new ratchet key and the largest archived jump */
	TEST_EQ_INT(forge_genuine_on(&env, 0, PARLEY_SIGNAL_MAX_ARCHIVED_JUMP + 1, msg, sizeof msg, &len), PARLEY_OK);
	TEST_EQ_INT(forge_decrypt(&env, msg, len), PARLEY_OK);
	/* one more session back to the deepest one, one message: passes */
	TEST_EQ_INT(forge_genuine_on(&env, 1, 1, msg, sizeof msg, &len), PARLEY_OK);
	TEST_EQ_INT(forge_decrypt(&env, msg, len), PARLEY_OK);
	/* the documented divergence from libsignal: a jump past the archived limit on an archived state */
	TEST_EQ_INT(forge_genuine_on(&env, 2, PARLEY_SIGNAL_MAX_ARCHIVED_JUMP + 2, msg, sizeof msg, &len), PARLEY_OK);
	TEST_CHECK(forge_decrypt(&env, msg, len) != PARLEY_OK);
}

int main(void)
{
	TEST_EQ_INT(forge_env_init(&env, FORGE_STATES), PARLEY_OK);
	TEST_RUN(test_far_counter_unknown_key);
	TEST_RUN(test_far_counter_known_key);
	TEST_RUN(test_small_counter);
	TEST_RUN(test_genuine_archived);
	forge_env_free(&env);
	TEST_EXIT();
}
