/* Forged-message cost (security item 11): how long a victim spends on N forged SignalMessages from a
 * peer whose session record is as full as a peer can make it (1 current + 40 archived states, each
 * answered), against genuine messages. Not a test: numbers for docs/benchmarks.md.
 *
 *   forged_bench [N]      (default 1000)
 *
 * Kinds of forged message, each N times: an unknown ratchet key with a counter just under
 * MAX_FORWARD_JUMPS (the worst case of the issue), the current chain's key with that counter, and an
 * unknown key with a counter just under MAX_ARCHIVED_JUMP (the worst case once archived states are
 * bounded). The record is checked unchanged afterwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "../../unit/signal/forge.h"

#ifndef PARLEY_SIGNAL_MAX_ARCHIVED_JUMP
#define PARLEY_SIGNAL_MAX_ARCHIVED_JUMP 200 /* so the program builds on the tree before the fix */
#endif

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t before[1 << 20], after[1 << 20];

static int run(forge_env *e, const char *what, const uint8_t *ratchet, uint32_t counter, long n)
{
	uint8_t msg[FORGE_MSG_MAX];
	size_t nb = forge_victim_record(e, before, sizeof before);
	double t0 = now_s(), dt;
	int rc = PARLEY_OK;

	for (long i = 0; i < n; i++) {
		size_t len = forge_message(msg, sizeof msg, ratchet, counter);
		rc = forge_decrypt(e, msg, len);
		if (rc == PARLEY_OK)
			return fprintf(stderr, "forged message decrypted?!\n"), 1;
	}
	dt = now_s() - t0;
	if (forge_victim_record(e, after, sizeof after) != nb || memcmp(before, after, nb) != 0)
		return fprintf(stderr, "record changed\n"), 1;
	printf("%-44s %6ld  %9.3f s  %9.3f ms  (%s)\n", what, n, dt, dt * 1e3 / (double)n, parley_strerror(rc));
	return 0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
	forge_env e;
	uint8_t key[32];
	int rc;

	if (n <= 0)
		return 2;
	rc = forge_env_init(&e, FORGE_STATES);
	if (rc == PARLEY_OK)
		rc = forge_known_ratchet(&e, key);
	if (rc != PARLEY_OK) {
		fprintf(stderr, "setup: %s\n", parley_strerror(rc));
		return 1;
	}
	printf("# victim record: %u states; %ld forged SignalMessages of each kind\n", (unsigned)FORGE_STATES, n);
	printf("%-44s %6s  %11s  %12s\n", "forged message", "count", "total", "per message");
	rc = run(&e, "unknown ratchet key, counter 24,999", NULL, PARLEY_SIGNAL_MAX_FORWARD_JUMPS - 1, n);
	if (rc == 0)
		rc = run(&e, "current chain's key, counter 24,999", key, PARLEY_SIGNAL_MAX_FORWARD_JUMPS - 1, n);
	if (rc == 0)
		rc = run(&e, "unknown ratchet key, counter 199", NULL, PARLEY_SIGNAL_MAX_ARCHIVED_JUMP - 1, n);
	if (rc == 0)
		rc = run(&e, "unknown ratchet key, counter 1", NULL, 1, n);
	forge_env_free(&e);
	return rc;
}
