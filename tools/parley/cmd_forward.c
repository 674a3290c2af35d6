/* parley thread forward THREAD AGENT [--note TEXT] [--history N]: hands a thread to an agent with its
 * keys, the note and the last N messages of this device's history (docs/threads.md, "Forward and
 * history sharing"); and the line `parley listen` prints for a forward received. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_thread_forward(cli_ctx *ctx, int argc, char **argv)
{
	unsigned long long thread_id = 0, history = PARLEY_THREAD_HISTORY_DEFAULT;
	const char *agent = NULL, *note = NULL;
	parley_client *c;
	parley_err rc;
	int pos = 0;

	/* argv[0] is "forward" */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--note") == 0) {
			if (i + 1 == argc || strlen(argv[i + 1]) > PARLEY_THREAD_NOTE_MAX)
				return cli_usage(ctx, "--note takes a text of at most %d bytes", PARLEY_THREAD_NOTE_MAX);
			note = argv[++i];
		} else if (strcmp(argv[i], "--history") == 0) {
			/* 0 is allowed: keys and note only */
			if (i + 1 == argc || (strcmp(argv[i + 1], "0") != 0 &&
					      cli_parse_number(argv[i + 1], PARLEY_THREAD_HISTORY_MAX, &history) != 0))
				return cli_usage(ctx, "--history takes a number from 0 to %d", PARLEY_THREAD_HISTORY_MAX);
			if (strcmp(argv[++i], "0") == 0)
				history = 0;
		} else if (pos == 0 && argv[i][0] != '-') {
			if (cli_parse_number(argv[i], UINT64_MAX, &thread_id) != 0)
				return cli_usage(ctx, "'%s' is not a thread id", argv[i]);
			pos++;
		} else if (pos == 1 && argv[i][0] != '-') {
			agent = argv[i];
			pos++;
		} else {
			return cli_usage(ctx, "unexpected argument '%s'", argv[i]);
		}
	}
	if (agent == NULL)
		return cli_usage(ctx, "give a THREAD id and the AGENT's handle");
	c = cli_client(ctx);
	if (c == NULL)
		return CLI_EXIT_ERROR;
	rc = parley_thread_forward(c, (uint64_t)thread_id, agent, note, (unsigned)history);
	if (rc != PARLEY_OK)
		return cli_fail(ctx, rc);
	printf("thread %llu forwarded to %s\n", thread_id, agent);
	return CLI_EXIT_OK;
}

void cli_on_forwarded(parley_client *c, const parley_thread_forwarded *f, void *user)
{
	char from[PARLEY_HANDLE_MAX + 1], entity[PARLEY_HANDLE_MAX + 1];

	if (f->history == 0 && !f->history_complete) {
		printf("thread %llu (%s) forwarded by %s: ", (unsigned long long)f->thread_id,
		       cli_safe_handle(f->entity, entity), cli_safe_handle(f->from, from));
		cli_print_safe(f->note[0] != '\0' ? f->note : "(no note)");
		printf("; history follows\n");
	} else if (f->history == 0) {
		printf("thread %llu (%s) forwarded by %s: ", (unsigned long long)f->thread_id,
		       cli_safe_handle(f->entity, entity), cli_safe_handle(f->from, from));
		cli_print_safe(f->note[0] != '\0' ? f->note : "(no note)");
		printf("\n");
	} else {
		printf("thread %llu: %zu forwarded messages imported%s\n", (unsigned long long)f->thread_id, f->history,
		       f->history_complete ? " (complete)" : "");
	}
	fflush(stdout);
}
