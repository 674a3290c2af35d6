/* parley trust | quarantine: accepting changed identity keys (one among several, by its safety
 * number) and the messages held because they could not be decrypted (security item 1). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define MAX_PENDING 256
#define MAX_LISTED 100000 /* PARLEY_QUARANTINE_LIMIT */

static int list_pending(cli_ctx *ctx, parley_client *c, const char *handle, FILE *f)
{
	static parley_pending_key keys[MAX_PENDING];
	size_t n = 0;
	parley_err rc = parley_pending_keys(c, handle, keys, MAX_PENDING, &n);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	if (n == 0)
		printf("no changed identity key of %s is pending\n", handle);
	for (size_t i = 0; i < n; i++) {
		printf("device %u: ", (unsigned)keys[i].device_id);
		cli_print_digits(keys[i].safety_number);
	}
	if (f != NULL && n != 0)
		fprintf(f,
			"parley: %s: compare these safety numbers with %s; accept the one that matches with:\n"
			"  parley trust %s --device N --key \"DIGITS\"\n",
			ctx->command, handle, handle);
	return CLI_EXIT_OK;
}

int cli_trust(cli_ctx *ctx, parley_client *c, const char *handle)
{
	size_t n = 0;
	parley_err rc = parley_trust(c, handle, &n);
	if (rc == PARLEY_E_AMBIGUOUS_IDENTITY) {
		fprintf(stderr, "parley: %s: %s has several pending identity keys; nothing was accepted\n",
			ctx->command, handle);
		list_pending(ctx, c, handle, stderr);
		return CLI_EXIT_ERROR;
	}
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	if (n == 0)
		printf("no changed identity key of %s to accept\n", handle);
	else
		printf("accepted the new identity key of %s (%zu device%s)\n", handle, n, n == 1 ? "" : "s");
	return CLI_EXIT_OK;
}

int cmd_trust(cli_ctx *ctx, int argc, char **argv)
{
	const char *handle = NULL, *key = NULL;
	uint32_t device = 0;
	int list = 0, have_device = 0;
	parley_client *c;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--list") == 0) {
			list = 1;
		} else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
			key = argv[++i];
		} else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
			if (cli_parse_device_id(argv[++i], &device) != 0)
				return cli_usage(ctx, "bad device id '%s'", argv[i]);
			have_device = 1;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage(ctx, "unknown option '%s'", argv[i]);
		} else if (handle == NULL) {
			handle = argv[i];
		} else {
			return cli_usage(ctx, "unexpected argument '%s'", argv[i]);
		}
	}
	if (handle == NULL)
		return cli_usage(ctx, "missing HANDLE");
	if ((key != NULL) != have_device || (list && key != NULL))
		return cli_usage(ctx, "--key and --device go together, without --list");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	if (list)
		return list_pending(ctx, c, handle, NULL);
	if (key == NULL)
		return cli_trust(ctx, c, handle);
	parley_err rc = parley_trust_key(c, handle, device, key);
	if (rc == PARLEY_E_INVAL)
		return cli_usage(ctx, "--key takes the 60 digits of a safety number");
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("accepted the new identity key of %s (device %u)\n", handle, (unsigned)device);
	return CLI_EXIT_OK;
}

int cmd_quarantine(cli_ctx *ctx, int argc, char **argv)
{
	static parley_quarantine_entry q[MAX_LISTED];
	char h[PARLEY_HANDLE_MAX + 1], when[32];
	uint64_t dropped = 0;
	size_t n = 0;
	parley_client *c;

	if (argc != 1)
		return cli_usage(ctx, "unexpected argument '%s'", argv[1]);
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	parley_err rc = parley_quarantine_list(c, q, MAX_LISTED, &n, &dropped);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)(q[i].received_ms / 1000);
		struct tm tm;
		if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
			snprintf(when, sizeof(when), "%llu", (unsigned long long)t);
		printf("%s %s device %u: %s (%s)%s\n", when, cli_safe_handle(q[i].sender, h),
		       (unsigned)q[i].sender_device, parley_strerror(q[i].reason), parley_errname(q[i].reason),
		       q[i].retry ? " retry" : "");
	}
	if (dropped != 0)
		printf("%llu dropped\n", (unsigned long long)dropped);
	return CLI_EXIT_OK;
}
