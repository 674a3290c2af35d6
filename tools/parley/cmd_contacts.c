/* parley accept | block | presence: message requests (see parley_accept in include/parley/client.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* accept = 1: accept HANDLE; 0: decline/block it */
static int contact(cli_ctx *ctx, int argc, char **argv, int accept)
{
	parley_client *c;
	parley_err rc;

	if (argc != 2)
		return cli_usage(ctx, argc < 2 ? "missing HANDLE" : "too many arguments");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = accept ? parley_accept(c, argv[1]) : parley_decline(c, argv[1]);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf(accept ? "accepted %s\n" : "blocked %s: no receipts, presence or typing between you\n", argv[1]);
	return CLI_EXIT_OK;
}

int cmd_accept(cli_ctx *ctx, int argc, char **argv)
{
	return contact(ctx, argc, argv, 1);
}

int cmd_block(cli_ctx *ctx, int argc, char **argv)
{
	return contact(ctx, argc, argv, 0);
}

int cmd_presence(cli_ctx *ctx, int argc, char **argv)
{
	parley_client *c;
	parley_err rc;
	int share;

	if (argc != 2 || (strcmp(argv[1], "on") != 0 && strcmp(argv[1], "off") != 0))
		return cli_usage(ctx, "expected on or off");
	share = strcmp(argv[1], "on") == 0;
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = parley_presence_share(c, share);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("presence %s\n", share ? "shared with accepted contacts" : "hidden");
	return CLI_EXIT_OK;
}
