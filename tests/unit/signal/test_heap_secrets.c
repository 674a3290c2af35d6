/* Security item 9, in memory: key material does not outlive its use in freed heap or in the thread's
 * cached HMAC state.
 *
 *   - test_record_buffer_growth: a session record is encoded into the context's scratch buffer, which
 *     grows while it holds the root key. This executable brings its own parley__malloc & co. (so the
 *     libparley archive's alloc.o is not linked) that look into every block handed to parley__free or
 *     parley__realloc: a block still holding a watched key is a leak (realloc may move the bytes and
 *     leave the old block to the heap as it is).
 *   - test_group_hmac_scrubbed: after a group encrypt and decrypt, the heap must not hold SHA-256's
 *     state after the inner pad of the chain key used last (what OpenSSL's cached HMAC context keeps
 *     while keyed). The whole heap of the process is searched for it. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>
#include <parley/signal_group.h>
#include <sodium.h>

#include "common/alloc.h"
#include "signal/sender_key.h"
#include "signal/state.h"
#include "../test.h"

/* ---------------------------------------------------------------- watching allocator */

static uint8_t watched[4][32];
static int n_watched, leaks;
static unsigned long calls, fail_at;

static void check_block(void *p, const char *how)
{
	size_t n = p != NULL ? malloc_usable_size(p) : 0;
	for (int i = 0; i < n_watched; i++)
		if (n >= 32 && memmem(p, n, watched[i], 32) != NULL) {
			fprintf(stderr, "# key %d still in a block given to %s\n", i, how);
			leaks++;
		}
}

void parley__alloc_fail_after(unsigned long nth)
{
	calls = 0;
	fail_at = nth;
}

unsigned long parley__alloc_count(void)
{
	return calls;
}

static int fail_now(void)
{
	calls++;
	return fail_at != 0 && calls >= fail_at;
}

void *parley__malloc(size_t n)
{
	return fail_now() ? NULL : malloc(n ? n : 1);
}

void *parley__calloc(size_t count, size_t n)
{
	return fail_now() ? NULL : calloc(count ? count : 1, n ? n : 1);
}

void *parley__realloc(void *p, size_t n)
{
	if (fail_now())
		return NULL;
	check_block(p, "parley__realloc");
	return realloc(p, n ? n : 1);
}

void parley__free(void *p)
{
	check_block(p, "parley__free");
	free(p);
}

char *parley__strndup(const char *s, size_t maxlen)
{
	size_t len = strnlen(s, maxlen);
	char *d = parley__malloc(len + 1);
	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

char *parley__strdup(const char *s)
{
	return parley__strndup(s, strlen(s));
}

/* ---------------------------------------------------------------- session record buffer */

static void party(parley_keypair *ik, parley_signal_store *st, parley_signal_ctx **ctx)
{
	TEST_EQ_INT(parley_signal_keypair_generate(ik), PARLEY_OK);
	TEST_EQ_INT(parley_signal_mem_store_new(st, ik, 1234), PARLEY_OK);
	TEST_EQ_INT(parley_signal_ctx_new(ctx, st), PARLEY_OK);
}

static void test_record_buffer_growth(void)
{
	parley_keypair ika, ikb;
	parley_signal_store sa, sb;
	parley_signal_ctx *a, *b, *a2;
	parley_signed_prekey spk;
	parley_prekey_bundle bundle;
	parley_signal_address to_b = {"bob", 1};
	uint8_t out[512];
	const uint8_t *rec;
	size_t len, n;
	sig_record r;
	int type;

	party(&ika, &sa, &a);
	party(&ikb, &sb, &b);
	TEST_EQ_INT(parley_signal_signed_prekey_generate(&spk, &ikb, 1, 1700000000000ull), PARLEY_OK);
	TEST_EQ_INT(sb.store_signed_prekey(sb.user, &spk), PARLEY_OK);
	memset(&bundle, 0, sizeof bundle);
	bundle.registration_id = 1234;
	bundle.device_id = 1;
	bundle.signed_prekey_id = 1;
	memcpy(bundle.signed_prekey_pub, spk.key.pub, 33);
	memcpy(bundle.signed_prekey_sig, spk.signature, 64);
	memcpy(bundle.identity_key, ikb.pub, 33);
	TEST_EQ_INT(parley_signal_process_bundle(a, &to_b, &bundle), PARLEY_OK);

	/* watch the root key: encrypting leaves it unchanged, and the record holding it (a few hundred
	 * bytes) is encoded into the fresh context's empty scratch buffer, which has to grow */
	TEST_EQ_INT(sa.load_session(sa.user, &to_b, &rec, &len), PARLEY_OK);
	TEST_EQ_INT(sig__record_decode(&r, rec, len), PARLEY_OK);
	TEST_CHECK(len > 300 && r.n_states == 1 && !r.states[0].sender_lazy);
	memcpy(watched[0], r.states[0].root, 32);
	n_watched = 1;
	sig__record_free(&r);
	TEST_EQ_INT(parley_signal_ctx_new(&a2, &sa), PARLEY_OK);
	leaks = 0;
	TEST_EQ_INT(parley_signal_encrypt(a2, &to_b, (const uint8_t *)"hello", 5, out, sizeof out, &n, &type), PARLEY_OK);
	parley_signal_ctx_free(a2);
	TEST_EQ_INT(leaks, 0);
	n_watched = 0;

	parley_signal_ctx_free(a);
	parley_signal_ctx_free(b);
	parley_signal_mem_store_free(&sa);
	parley_signal_mem_store_free(&sb);
}

/* ---------------------------------------------------------------- HMAC state */

/* SHA-256's chaining value after the block key ^ ipad: what a keyed HMAC context keeps (OpenSSL's
 * SHA256_CTX and libsodium's state both hold it as eight native-endian 32-bit words). */
static void hmac_inner_state(const uint8_t key[32], uint8_t out[32])
{
	crypto_hash_sha256_state st;
	uint8_t block[64];
	memset(block, 0x36, sizeof block);
	for (int i = 0; i < 32; i++)
		block[i] ^= key[i];
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, block, sizeof block);
	memcpy(out, st.state, 32);
	sodium_memzero(&st, sizeof st);
}

/* AddressSanitizer owns the heap (redzones, terabytes of shadow): the search would trip it or take
 * forever, so the sanitizer build skips it; the plain build runs it. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_SEARCH 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_SEARCH 0
#endif
#endif
#ifndef HEAP_SEARCH
#define HEAP_SEARCH 1
#endif

/* 1 if the 32 bytes occur in a writable private mapping of this process other than a stack */
static int in_heap(const uint8_t needle[32])
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	if (maps == NULL)
		return -1;
	while (!found && fgets(line, sizeof line, maps) != NULL) {
		unsigned long lo, hi;
		char perms[8], path[256] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perms, path) < 3)
			continue;
		if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' || strstr(path, "stack") != NULL ||
		    (path[0] != '\0' && strcmp(path, "[heap]") != 0))
			continue;
		found = memmem((void *)lo, hi - lo, needle, 32) != NULL;
	}
	fclose(maps);
	return found;
}

static void test_group_hmac_scrubbed(void)
{
	parley_keypair ik;
	parley_signal_store st;
	parley_signal_address self = {"alice", 1}, from = {"alice", 2};
	uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN] = {1, 2, 3}, skdm[256], msg[512], pt[64], inner[32];
	size_t skdm_len, len, n;
	sk_distribution d;

	TEST_EQ_INT(parley_signal_keypair_generate(&ik), PARLEY_OK);
	TEST_EQ_INT(parley_signal_mem_store_new(&st, &ik, 1), PARLEY_OK);
	TEST_EQ_INT(parley_group_create_distribution(&st, &self, dist, skdm, sizeof skdm, &skdm_len), PARLEY_OK);
	TEST_EQ_INT(parley_group_process_distribution(&st, &from, skdm, skdm_len, NULL), PARLEY_OK);
	if (!HEAP_SEARCH) {
		printf("# heap search skipped under AddressSanitizer\n");
		parley_signal_mem_store_free(&st);
		return;
	}
	TEST_EQ_INT(sender_key__distribution_decode(&d, skdm, skdm_len), PARLEY_OK);
	TEST_EQ_INT(d.iteration, 0);
	/* message 0 is keyed from chain key 0, the last key both sides' HMAC contexts take */
	TEST_EQ_INT(parley_group_encrypt(&st, &self, dist, (const uint8_t *)"group hello", 11, msg, sizeof msg, &len),
		    PARLEY_OK);
	TEST_EQ_INT(parley_group_decrypt(&st, &from, msg, len, pt, sizeof pt, &n), PARLEY_OK);
	hmac_inner_state(d.chain_key, inner);
	TEST_EQ_INT(in_heap(inner), 0);
	/* positive control: a context keyed by hand with that key is found by the same search */
	{
		crypto_auth_hmacsha256_state *h = malloc(sizeof *h);
		TEST_CHECK(h != NULL);
		crypto_auth_hmacsha256_init(h, d.chain_key, 32);
		TEST_EQ_INT(in_heap(inner), 1);
		sodium_memzero(h, sizeof *h);
		free(h);
	}
	sodium_memzero(&d, sizeof d);
	parley_signal_mem_store_free(&st);
}

int main(void)
{
	TEST_CHECK(sodium_init() >= 0);
	TEST_RUN(test_record_buffer_growth);
	TEST_RUN(test_group_hmac_scrubbed);
	TEST_EXIT();
}
