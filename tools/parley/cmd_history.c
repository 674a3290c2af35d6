/* parley history: the local history of one conversation (docs/history.md), read from this device's
 * sealed store; no network. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define HISTORY_DEFAULT_LAST 20
#define HISTORY_MAX_LAST 1000

int cmd_history(cli_ctx *ctx, int argc, char **argv)
{
	static parley_history_entry e[HISTORY_MAX_LAST];
	unsigned long long last = HISTORY_DEFAULT_LAST;
	const char *handle = NULL;
	char h[PARLEY_HANDLE_MAX + 1], when[16];
	size_t n = 0;
	parley_client *c;
	parley_err rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--last") == 0) {
			if (i + 1 == argc || cli_parse_number(argv[++i], HISTORY_MAX_LAST, &last) != 0)
				return cli_usage(ctx, "--last takes a number from 1 to %d", HISTORY_MAX_LAST);
		} else if (handle == NULL && argv[i][0] != '-') {
			handle = argv[i];
		} else {
			return cli_usage(ctx, "unexpected argument '%s'", argv[i]);
		}
	}
	if (handle == NULL)
		return cli_usage(ctx, "which conversation? give a HANDLE");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = parley_history_list(c, handle, 0, (size_t)last, e, &n);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	/* newest first from the library; printed oldest first, as a conversation reads */
	for (size_t i = n; i-- > 0;) {
		time_t t = (time_t)(e[i].server_timestamp_ms / 1000);
		struct tm tm;
		if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%H:%M:%S", &tm) == 0)
			snprintf(when, sizeof(when), "--:--:--");
		printf("%s %s: ", when, cli_safe_handle(e[i].sender, h));
		cli_write_safe(stdout, e[i].body, e[i].body_len);
		putchar('\n');
	}
	parley_history_entries_free(e, n);
	return CLI_EXIT_OK;
}
