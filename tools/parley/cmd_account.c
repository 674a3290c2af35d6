/* parley register | link | device-key | whoami */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_register(cli_ctx *ctx, int argc, char **argv)
{
	const char *handle = NULL;
	const char *name = NULL;
	char saved[PARLEY_HANDLE_MAX + 1];
	uint64_t account_id = 0;
	uint32_t device_id = 0;
	parley_client *c;
	parley_err rc;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--device-name") == 0) {
			if (i + 1 >= argc)
				return cli_usage(ctx, "--device-name needs a value");
			name = argv[++i];
		} else if (strncmp(argv[i], "--device-name=", 14) == 0) {
			name = argv[i] + 14;
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
	if (name != NULL && name[0] == '\0')
		return cli_usage(ctx, "the device name is empty");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = parley_register(c, handle, name);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	rc = parley_identity(c, saved, sizeof(saved), &account_id, &device_id);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("registered %s: account %llu, device %u\n", saved, (unsigned long long)account_id,
	       (unsigned)device_id);
	return CLI_EXIT_OK;
}

int cmd_link(cli_ctx *ctx, int argc, char **argv)
{
	uint32_t device_id;
	parley_client *c;
	parley_err rc;

	if (argc != 3)
		return cli_usage(ctx, argc < 3 ? "missing HANDLE or DEVICE_ID" : "too many arguments");
	if (cli_parse_device_id(argv[2], &device_id) != 0)
		return cli_usage(ctx, "DEVICE_ID must be a positive integer, got '%s'", argv[2]);
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = parley_link(c, argv[1], device_id);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("linked as device %u of %s\n", (unsigned)device_id, argv[1]);
	return CLI_EXIT_OK;
}

int cmd_device_key(cli_ctx *ctx, int argc, char **argv)
{
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES];
	char b64[sizeof(code) / 3 * 4 + 8], err[160];
	size_t n = PARLEY_DEVICE_KEY_BYTES;
	const char *handle = NULL, *png = NULL;
	int qr = 0;
	parley_client *c;
	parley_err rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--qr") == 0)
			qr = 1;
		else if (strcmp(argv[i], "--png") == 0 && i + 1 < argc)
			png = argv[++i];
		else if (argv[i][0] != '-' && handle == NULL)
			handle = argv[i];
		else
			return cli_usage(ctx, "unexpected argument '%s'", argv[i]);
	}
	if ((qr || png != NULL) && handle == NULL)
		return cli_usage(ctx, "--qr and --png show a link code: give the account's HANDLE");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	if (handle != NULL) {
		rc = parley_device_link_code(c, handle, code);
		n = sizeof(code);
	} else {
		rc = parley_device_public_key(c, code);
	}
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	cli_format_b64(code, n, b64, sizeof(b64));
	printf("%s\n", b64);
	/* the same text as a QR code, for the device holding the account key to scan (parley devices
	 * link CODE); only on request, so that $(parley device-key HANDLE) stays the code alone */
	if (qr && cli_qr_print(stdout, b64) != PARLEY_OK)
		return cli_fail(ctx, PARLEY_E_NOMEM);
	if (png != NULL && cli_qr_png(png, b64, err, sizeof(err)) != PARLEY_OK) {
		fprintf(stderr, "parley: %s: %s\n", ctx->command, err);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

int cmd_whoami(cli_ctx *ctx, int argc, char **argv)
{
	char handle[PARLEY_HANDLE_MAX + 1];
	uint64_t account_id;
	uint32_t device_id;
	parley_client *c;
	parley_err rc;

	if (argc != 1)
		return cli_usage(ctx, "unexpected argument '%s'", argv[1]);
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = parley_identity(c, handle, sizeof(handle), &account_id, &device_id);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("%s %llu %u\n", handle, (unsigned long long)account_id, (unsigned)device_id);
	return CLI_EXIT_OK;
}
