/* Signed device list cost per send (issue 9, docs/protocol.md §11): what a sender pays to check a
 * recipient's 50-device list before encrypting (wire__devlist_verify: parse + one XEdDSA verification,
 * then one wire__devlist_find per bundle), next to a bare XEdDSA verification. Not a test:
 *   <builddir>/tests/bench/crypto/devlist_bench [N]
 * Prints microseconds per operation (median of 5 rounds of N). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "wire/devlist.h"

#define DEVICES 50
#define ROUNDS 5

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
	crypto_keypair ak;
	wire_devlist l, v;
	dynbuf rec;
	double t_list[ROUNDS], t_find[ROUNDS], t_x[ROUNDS];
	volatile size_t sink = 0;

	if (n <= 0 || crypto__init() != PARLEY_OK || crypto__keypair_generate(&ak) != PARLEY_OK)
		return 1;
	memset(&l, 0, sizeof l);
	l.account_id = 42;
	snprintf(l.handle, sizeof l.handle, "acme-support");
	crypto__pubkey_serialize(l.account_key, ak.pub);
	l.version = 7;
	l.n = DEVICES;
	for (size_t i = 0; i < DEVICES; i++) {
		l.dev[i].device_id = (uint32_t)(i + 1);
		l.dev[i].identity_key[0] = 0x05;
		crypto__random(l.dev[i].identity_key + 1, 32);
		crypto__random(l.dev[i].device_key, 32);
	}
	dynbuf__init(&rec, WIRE_DEVLIST_MAX_BYTES);
	if (wire__devlist_sign(&l, ak.priv, &rec) != PARLEY_OK)
		return 1;
	uint8_t sig[64], msg[33];
	memcpy(msg, l.account_key, 33);
	crypto__xeddsa_sign(sig, ak.priv, msg, sizeof msg);

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_us();
		for (long i = 0; i < n; i++)
			sink += wire__devlist_verify(rec.data, rec.len, &v) == PARLEY_OK;
		double t1 = now_us();
		/* a send to every device checks each bundle against the list */
		for (long i = 0; i < n; i++)
			for (uint32_t d = 1; d <= DEVICES; d++)
				sink += wire__devlist_find(&v, d) != NULL;
		double t2 = now_us();
		for (long i = 0; i < n; i++)
			sink += crypto__xeddsa_verify(ak.pub, msg, sizeof msg, sig) == PARLEY_OK;
		double t3 = now_us();
		t_list[r] = (t1 - t0) / (double)n;
		t_find[r] = (t2 - t1) / (double)n;
		t_x[r] = (t3 - t2) / (double)n;
	}
	qsort(t_list, ROUNDS, sizeof(double), cmp);
	qsort(t_find, ROUNDS, sizeof(double), cmp);
	qsort(t_x, ROUNDS, sizeof(double), cmp);
	printf("signed device list, %d devices, %zu bytes (median of %d x %ld)\n", DEVICES, rec.len, ROUNDS, n);
	printf("  verify (parse + XEdDSA)      %8.2f us\n", t_list[ROUNDS / 2]);
	printf("  lookup of all %d devices     %8.2f us\n", DEVICES, t_find[ROUNDS / 2]);
	printf("  per send (verify + lookups)  %8.2f us\n", t_list[ROUNDS / 2] + t_find[ROUNDS / 2]);
	printf("  one XEdDSA verify (33 bytes) %8.2f us\n", t_x[ROUNDS / 2]);
	dynbuf__free(&rec);
	return sink == 0;
}
