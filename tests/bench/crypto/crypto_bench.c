/* crypto_bench: parley's Signal implementation side by side with libolm and libsignal-client 0.24
 * (through node), in one run, 256-byte payloads. Prints microseconds per operation and ratios, and
 * the targets as PASS/MISS lines.
 *
 * usage: crypto_bench [--node PATH] [--script libsignal_bench.js] [--quick] [--reps N]
 *   Without a usable node / node_modules the libsignal column is reported as missing (the C columns
 *   are still measured).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <olm/olm.h>
#include <sodium.h>

#include <parley/version.h>

#include "bench_crypto.h"

static const char *const OP_NAME[OP_COUNT] = {
	[OP_SETUP_INIT] = "session setup, initiator (bundle + 1st encrypt)",
	[OP_SETUP_RESP] = "session setup, responder (X3DH + 1st decrypt)",
	[OP_ENCRYPT] = "encrypt, one chain",
	[OP_DECRYPT] = "decrypt, one chain",
	[OP_PINGPONG] = "ping-pong msg (ratchet step each, enc+dec)",
	[OP_GROUP_ENC] = "group encrypt (sender key / Megolm)",
	[OP_GROUP_DEC] = "group decrypt (sender key / Megolm)",
};
static const char *const NODE_KEY[OP_COUNT] = {
	[OP_SETUP_INIT] = "setup_init",
	[OP_SETUP_RESP] = "setup_resp",
	[OP_ENCRYPT] = "encrypt",
	[OP_DECRYPT] = "decrypt",
	[OP_PINGPONG] = "pingpong",
	[OP_GROUP_ENC] = "group_enc",
	[OP_GROUP_DEC] = "group_dec",
};

/* Runs the node bench and parses "<op>\t<us>" lines. */
static int bench_node(const char *node, const char *script, const bench_params *p, double us[OP_COUNT])
{
	char cmd[2048], line[256];
	snprintf(cmd, sizeof cmd, "'%s' '%s' %d %d %d %d %d", node, script, p->setups, p->chain, p->pingpong, p->group,
		p->reps);
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		char *tab = strchr(line, '\t');
		if (tab == NULL)
			continue;
		*tab = '\0';
		for (int op = 0; op < OP_COUNT; op++)
			if (strcmp(line, NODE_KEY[op]) == 0)
				bench_keep(&us[op], strtod(tab + 1, NULL));
	}
	return pclose(f) == 0 ? 0 : -1;
}

static void cell(double v)
{
	if (v < 0)
		printf(" %12s", "-");
	else
		printf(" %12.2f", v);
}

static void ratio(double other, double ours)
{
	if (other < 0 || ours <= 0)
		printf(" %10s", "-");
	else
		printf(" %9.2fx", other / ours);
}

static void target(const char *what, double ratio_v, double need)
{
	if (ratio_v < 0)
		printf("  [ n/a ] %s (not measured)\n", what);
	else
		printf("  [%s] %s: %.2fx (target >= %.2fx)\n", ratio_v >= need ? "PASS" : "MISS", what, ratio_v, need);
}

int main(int argc, char **argv)
{
	bench_params p = {.setups = 200, .chain = 2000, .pingpong = 1000, .group = 2000, .reps = 3};
	const char *node = "node", *script = NULL;
	double par[OP_COUNT], olm[OP_COUNT], sig[OP_COUNT];
	uint8_t maj, min, pat;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
			node = argv[++i];
		else if (strcmp(argv[i], "--script") == 0 && i + 1 < argc)
			script = argv[++i];
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			p.reps = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--quick") == 0)
			p = (bench_params){.setups = 20, .chain = 100, .pingpong = 50, .group = 100, .reps = 1};
		else {
			fprintf(stderr, "usage: %s [--node PATH] [--script libsignal_bench.js] [--quick] [--reps N]\n",
				argv[0]);
			return 2;
		}
	}
	if (p.reps < 1)
		p.reps = 1;
	if (sodium_init() < 0)
		return 1;
	for (int op = 0; op < OP_COUNT; op++)
		par[op] = olm[op] = sig[op] = -1;

	olm_get_library_version(&maj, &min, &pat);
	printf("# crypto_bench: parley %s vs libolm %u.%u.%u vs libsignal-client 0.24.0 (node)\n", PARLEY_VERSION_STRING,
		maj, min, pat);
	printf("# payload %d B; %d setups, %d chain msgs, %d ping-pong msgs, %d group msgs; best of %d\n",
		BENCH_PAYLOAD, p.setups, p.chain, p.pingpong, p.group, p.reps);
	fflush(stdout);
	/* Repetitions are interleaved (parley, libolm, libsignal, then again) so that load from other
	 * processes on a shared machine drifts over all three columns alike, not over one of them. */
	bench_params one = p;
	int have_node = script != NULL;
	one.reps = 1;
	for (int r = 0; r < p.reps; r++) {
		if (bench_parley(&one, par) != 0) {
			fprintf(stderr, "parley bench failed\n");
			return 1;
		}
		if (bench_olm(&one, olm) != 0) {
			fprintf(stderr, "libolm bench failed\n");
			return 1;
		}
		if (have_node && bench_node(node, script, &one, sig) != 0)
			have_node = 0;
	}
	if (!have_node)
		fprintf(stderr, "# libsignal (node) not measured: pass --script path/to/libsignal_bench.js and run "
				"tests/interop/setup.sh\n");

	printf("\n%-46s %12s %12s %12s %10s %10s\n", "operation (us/op, lower is better)", "parley", "libolm",
		"libsignal", "olm/parley", "sig/parley");
	for (int op = 0; op < OP_COUNT; op++) {
		printf("%-46s", OP_NAME[op]);
		cell(par[op]);
		cell(olm[op]);
		cell(sig[op]);
		ratio(olm[op], par[op]);
		ratio(sig[op], par[op]);
		printf("\n");
	}
	double pe = par[OP_ENCRYPT] + par[OP_DECRYPT], oe = olm[OP_ENCRYPT] + olm[OP_DECRYPT];
	double se = sig[OP_ENCRYPT] >= 0 && sig[OP_DECRYPT] >= 0 ? sig[OP_ENCRYPT] + sig[OP_DECRYPT] : -1;
	printf("%-46s", "encrypt+decrypt, one chain");
	cell(pe);
	cell(oe);
	cell(se);
	ratio(oe, pe);
	ratio(se, pe);
	printf("\n\ntargets (ratios = other / parley time; > 1 means parley is faster):\n");
	for (int op = OP_SETUP_INIT; op <= OP_SETUP_RESP; op++) {
		char what[96];
		snprintf(what, sizeof what, "%s vs libolm", op == OP_SETUP_INIT ? "setup initiator" : "setup responder");
		target(what, olm[op] / par[op], 2.0);
		snprintf(what, sizeof what, "%s vs libsignal", op == OP_SETUP_INIT ? "setup initiator" : "setup responder");
		target(what, sig[op] < 0 ? -1 : sig[op] / par[op], 1.0);
	}
	target("encrypt+decrypt 256 B one chain vs libolm", oe / pe, 1.0);
	return 0;
}
