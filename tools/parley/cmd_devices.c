/* parley devices [link|add CODE [NAME] | remove ID | transfer-key ID] */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* UTC, ISO 8601, so the output does not depend on the machine's time zone or locale. */
static void format_time(uint64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000u);
	struct tm tm;

	if (ms == 0 || gmtime_r(&t, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "%s", "never");
}

static int devices_list(cli_ctx *ctx, parley_client *c)
{
	parley_device_list *list = NULL;
	parley_device_info d;
	char added[32], seen[32];
	parley_err rc;
	size_t i;

	rc = parley_devices_list(c, &list);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	/* Name last: it is the only column that may contain spaces. */
	printf("  %10s  %-20s  %-20s  %s\n", "ID", "ADDED", "LAST SEEN", "NAME");
	for (i = 0; i < parley_device_list_count(list); i++) {
		if (parley_device_list_get(list, i, &d) != PARLEY_OK)
			continue;
		format_time(d.created_ms, added, sizeof(added));
		format_time(d.last_seen_ms, seen, sizeof(seen));
		printf("%c %10u  %-20s  %-20s  ", d.is_self ? '*' : ' ', (unsigned)d.id, added, seen);
		cli_print_safe(d.name);
		putchar('\n');
	}
	parley_device_list_free(list);
	return CLI_EXIT_OK;
}

static int devices_add(cli_ctx *ctx, parley_client *c, int argc, char **argv)
{
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES];
	uint32_t id = 0;
	parley_err rc;

	if (argc < 2 || argc > 3)
		return cli_usage(ctx, argc < 2 ? "missing LINK_CODE" : "too many arguments (quote a NAME with spaces)");
	/* a bare key is refused here rather than by the server: it cannot prove the device holds it */
	if (cli_parse_key(argv[1], code) == 0)
		return cli_usage(ctx, "that is a bare public key: on the new device run `parley device-key HANDLE` "
				      "and give its link code");
	if (cli_parse_b64(argv[1], code, sizeof(code)) != 0)
		return cli_usage(ctx, "LINK_CODE must be the base64 of %d bytes (see `parley device-key HANDLE`)",
				 PARLEY_DEVICE_LINK_CODE_BYTES);
	if (argc == 3 && argv[2][0] == '\0')
		return cli_usage(ctx, "the device name is empty");
	rc = parley_device_add(c, code, argc == 3 ? argv[2] : NULL, &id);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	/* Only the id, so scripts can capture it: id=$(parley devices add "$KEY" phone) */
	printf("%u\n", (unsigned)id);
	return CLI_EXIT_OK;
}

static int devices_remove(cli_ctx *ctx, parley_client *c, int argc, char **argv)
{
	uint32_t id;
	parley_err rc;

	if (argc != 2)
		return cli_usage(ctx, argc < 2 ? "missing ID" : "too many arguments");
	if (cli_parse_device_id(argv[1], &id) != 0)
		return cli_usage(ctx, "ID must be a positive integer, got '%s'", argv[1]);
	rc = parley_device_remove(c, id);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("removed device %u\n", (unsigned)id);
	return CLI_EXIT_OK;
}

static int devices_transfer_key(cli_ctx *ctx, parley_client *c, int argc, char **argv)
{
	uint32_t id;
	parley_err rc;

	if (argc != 2)
		return cli_usage(ctx, argc < 2 ? "missing ID" : "too many arguments");
	if (cli_parse_device_id(argv[1], &id) != 0)
		return cli_usage(ctx, "ID must be a positive integer, got '%s'", argv[1]);
	rc = parley_account_key_transfer(c, id);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("sent the account key (and the entity keys this device holds) to device %u, end-to-end encrypted.\n"
	       "This device keeps its copy until device %u confirms: run `parley listen` there to import the keys,\n"
	       "then `parley listen` here: this device wipes its copy when the confirmation arrives.\n",
	       (unsigned)id, (unsigned)id);
	return CLI_EXIT_OK;
}

/* listen: keys this device imported or wiped (docs/protocol.md §11.4) */
void cli_ev_keys_moved(parley_client *c, const char *from, int received, const char *what, void *user)
{
	char buf[PARLEY_HANDLE_MAX + 1], wbuf[PARLEY_HANDLE_MAX + 1];
	const char *handle = cli_safe_handle(from, buf);
	/* "account key" or an entity handle (checked by the library, still filtered like any name) */
	const char *w = strcmp(what, "account key") == 0 ? what : cli_safe_handle(what, wbuf);

	if (received)
		printf("* imported the %s%s from %s: this device holds it now\n", w,
		       strcmp(what, "account key") == 0 ? "" : " entity key", handle);
	else
		printf("* %s confirmed it holds the %s%s: this device wiped its copy\n", handle, w,
		       strcmp(what, "account key") == 0 ? "" : " entity key");
	fflush(stdout);
}

int cmd_devices(cli_ctx *ctx, int argc, char **argv)
{
	parley_client *c;

	/* `link` is `add` under the name the issue-9 flow uses (the device holding the account key links
	 * the new device's code and signs the next device list) */
	int is_add = argc >= 2 && (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "link") == 0);
	if (is_add) {
		ctx->command = strcmp(argv[1], "link") == 0 ? "devices link" : "devices add";
		if (argc >= 3 && cli_is_help(argv[2]))
			return cli_print_command_help("devices");
	} else if (argc >= 2 && (strcmp(argv[1], "remove") == 0 || strcmp(argv[1], "transfer-key") == 0)) {
		ctx->command = strcmp(argv[1], "remove") == 0 ? "devices remove" : "devices transfer-key";
		if (argc >= 3 && cli_is_help(argv[2]))
			return cli_print_command_help("devices");
	} else if (argc >= 2) {
		return cli_usage(ctx, "unknown subcommand '%s' (expected link, add, remove or transfer-key)", argv[1]);
	}
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	if (argc == 1)
		return devices_list(ctx, c);
	if (is_add)
		return devices_add(ctx, c, argc - 1, argv + 1);
	if (strcmp(argv[1], "transfer-key") == 0)
		return devices_transfer_key(ctx, c, argc - 1, argv + 1);
	return devices_remove(ctx, c, argc - 1, argv + 1);
}
