/* The state `parley-bench relay --phase send` leaves for `--phase verify` (see relay.h).
 *
 * Text, one fact per line, so a failed check can be read by a human:
 *   parley-bench relay state 1
 *   tag <run tag>            key <64 hex>            connections <N>   senders <M>   size <bytes>
 *   device <conn> <128 hex>  (each receiver's Ed25519 secret key: verify logs in as that device)
 *   sent <sender> <count>    (messages handed to the server)
 *   acked <sender> <first> <last>   (one line per run of consecutive acked sequence numbers)
 *   end                      (a file without it was cut short and is refused)
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "common/alloc.h"

#define STATE_MAGIC "parley-bench relay state 1"

static void put_hex(FILE *f, const uint8_t *b, size_t n)
{
	char hex[2 * 64 + 1];
	sodium_bin2hex(hex, sizeof(hex), b, n);
	fputs(hex, f);
}

static void put_acked_runs(FILE *f, unsigned sender, const relay_bits *b, uint64_t sent)
{
	uint64_t q = 0, first;

	while (q < sent) {
		if (!relay__bits_get(b, q)) {
			q++;
			continue;
		}
		first = q;
		while (q < sent && relay__bits_get(b, q))
			q++;
		fprintf(f, "acked %u %llu %llu\n", sender, (unsigned long long)first, (unsigned long long)(q - 1));
	}
}

int relay__state_save(const char *path, const relay_cfg *cfg, const relay_run *run, uint8_t (*device_sk)[64])
{
	char tmp[4096];
	unsigned i;
	FILE *f;
	int fd, ok;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return PARLEY_E_INVAL;
	/* 0600: the file holds device secret keys (of throwaway bench accounts, but still). */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return PARLEY_E_IO;
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(tmp);
		return PARLEY_E_IO;
	}
	fprintf(f, "%s\ntag %s\nkey ", STATE_MAGIC, cfg->run_tag);
	put_hex(f, cfg->key, RELAY_KEY);
	fprintf(f, "\nconnections %u\nsenders %u\nsize %zu\n", cfg->conns, cfg->senders, cfg->size);
	for (i = 0; i < cfg->conns; i++) {
		if (!relay__is_receiver(cfg, i))
			continue;
		fprintf(f, "device %u ", i);
		put_hex(f, device_sk[i], 64);
		fputc('\n', f);
	}
	for (i = 0; i < cfg->senders; i++) {
		uint64_t sent = atomic_load(&run->senders[i].n_sent);
		fprintf(f, "sent %u %llu\n", i, (unsigned long long)sent);
		put_acked_runs(f, i, &run->senders[i].acked, sent);
	}
	fputs("end\n", f);
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok &= fclose(f) == 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return PARLEY_E_IO;
	}
	return PARLEY_OK;
}

void relay__state_free(relay_state *st)
{
	unsigned i;

	if (st->acked != NULL)
		for (i = 0; i < st->senders; i++)
			relay__bits_free(&st->acked[i]);
	if (st->device_sk != NULL)
		sodium_memzero(st->device_sk, (size_t)st->conns * 64);
	parley__free(st->device_sk);
	parley__free(st->sent);
	parley__free(st->acked);
	memset(st, 0, sizeof(*st));
}

/* Once connections, senders and size are known: the per-connection and per-sender tables. */
static const char *allocate(relay_state *st)
{
	if (st->conns < 2 || st->conns > 20000 || st->senders < 1 || st->senders >= st->conns)
		return "connections/senders out of range (the phases need separate receivers)";
	if (st->size < RELAY_HDR + RELAY_MAC || st->size > RELAY_MAX_SIZE)
		return "size out of range";
	st->device_sk = parley__calloc(st->conns, 64);
	st->sent = parley__calloc(st->senders, sizeof(*st->sent));
	st->acked = parley__calloc(st->senders, sizeof(*st->acked));
	if (st->device_sk == NULL || st->sent == NULL || st->acked == NULL)
		return "out of memory";
	return NULL;
}

/* One line (without its newline); returns NULL or what is wrong with it. */
static const char *parse_line(relay_state *st, const char *line, int *header_fields, int *end)
{
	char word[16], hex[140];
	unsigned a;
	unsigned long long x, y;
	size_t bin;

	if (sscanf(line, "%15s", word) != 1)
		return "empty line";
	if (strcmp(word, "tag") == 0) {
		if (sscanf(line, "tag %19s", st->run_tag) != 1)
			return "bad tag";
	} else if (strcmp(word, "key") == 0) {
		if (sscanf(line, "key %139s", hex) != 1 ||
		    sodium_hex2bin(st->key, RELAY_KEY, hex, strlen(hex), NULL, &bin, NULL) != 0 || bin != RELAY_KEY)
			return "bad key";
	} else if (strcmp(word, "connections") == 0 || strcmp(word, "senders") == 0 || strcmp(word, "size") == 0) {
		if (sscanf(line, "%*s %llu", &x) != 1 || x > 1u << 24)
			return "bad number";
		if (word[0] == 'c')
			st->conns = (unsigned)x;
		else if (word[1] == 'e')
			st->senders = (unsigned)x;
		else
			st->size = (size_t)x;
		if (++*header_fields == 3)
			return allocate(st);
	} else if (*header_fields < 3) {
		return "connections, senders and size must come first";
	} else if (strcmp(word, "device") == 0) {
		if (sscanf(line, "device %u %139s", &a, hex) != 2 || a >= st->conns ||
		    sodium_hex2bin(st->device_sk[a], 64, hex, strlen(hex), NULL, &bin, NULL) != 0 || bin != 64)
			return "bad device line";
	} else if (strcmp(word, "sent") == 0) {
		if (sscanf(line, "sent %u %llu", &a, &x) != 2 || a >= st->senders)
			return "bad sent line";
		st->sent[a] = x;
	} else if (strcmp(word, "acked") == 0) {
		if (sscanf(line, "acked %u %llu %llu", &a, &x, &y) != 3 || a >= st->senders || x > y || y >= st->sent[a])
			return "bad acked line (after its sender's sent line, within it)";
		for (; x <= y; x++)
			if (relay__bits_set(&st->acked[a], x) < 0)
				return "out of memory";
	} else if (strcmp(word, "end") == 0) {
		*end = 1;
	} else {
		return "unknown line";
	}
	return NULL;
}

int relay__state_load(const char *path, relay_state *st, char *why, size_t why_len)
{
	char line[512];
	const char *bad = NULL;
	int header_fields = 0, end = 0;
	unsigned lineno = 1;
	FILE *f;

	memset(st, 0, sizeof(*st));
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return PARLEY_E_IO;
	}
	if (fgets(line, sizeof(line), f) == NULL || strncmp(line, STATE_MAGIC "\n", sizeof(STATE_MAGIC)) != 0)
		bad = "not a parley-bench relay state file";
	while (bad == NULL && !end && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		bad = parse_line(st, line, &header_fields, &end);
	}
	fclose(f);
	if (bad == NULL && !end)
		bad = "cut short (no end line)";
	if (bad != NULL) {
		snprintf(why, why_len, "%s:%u: %s", path, lineno, bad);
		relay__state_free(st);
		return PARLEY_E_INVAL;
	}
	return PARLEY_OK;
}
