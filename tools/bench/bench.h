/* Helpers shared by parley-bench's commands. */
#ifndef PARLEY_BENCH_BENCH_H
#define PARLEY_BENCH_BENCH_H
#include <stdint.h>
#include <stdio.h>

/* Strict number parsing for options: the whole string, within [min, max]. PARLEY_OK or _INVAL. */
int bench__parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int bench__parse_seconds(const char *s, double min, double max, double *out);

/* One command's options as a table (opts.c), instead of a getopt switch per command: every value is
 * checked against its range and stored where dst points. */
enum bench_opt_kind {
	BOPT_FLAG,    /* no value: *(int *)dst = 1 */
	BOPT_STR,     /* *(const char **)dst = the argument */
	BOPT_U64,     /* *(uint64_t *)dst, within [min, max] */
	BOPT_UINT,    /* *(unsigned *)dst */
	BOPT_SIZE,    /* *(size_t *)dst */
	BOPT_LONG,    /* *(long *)dst */
	BOPT_SECONDS, /* *(double *)dst, a decimal number within [min, max] */
	BOPT_CHOICE,  /* *(int *)dst = index of the argument in choices (NULL-terminated) */
	BOPT_LIST,    /* (bench_list *)dst: the option may be repeated, each value comma-separated */
};

/* The values of a BOPT_LIST option, in order: "--url A,B --url C" gives A, B, C. The values are copied
 * (split at the commas) into buf, so v[] stays valid whatever happens to argv. */
#define BENCH_LIST_MAX 16
typedef struct bench_list {
	const char *v[BENCH_LIST_MAX];
	unsigned n;
	size_t used;
	char buf[2048];
} bench_list;
/* Appends the comma-separated values of s: PARLEY_OK, or PARLEY_E_INVAL for an empty value, more than
 * BENCH_LIST_MAX values or more text than buf holds. */
int bench__list_add(bench_list *l, const char *s);

typedef struct bench_opt {
	const char *name; /* without the leading "--" */
	enum bench_opt_kind kind;
	void *dst;
	double min, max;
	const char *const *choices;
	int *given; /* optional: set to 1 when the option appears */
} bench_opt;

/* Parses argv (argv[0] is the command) up to the first non-option when stop_at_arg, else all of it.
 * "--help" sets *help. Returns the index of the first argument left, or -1 after printing why the
 * command line is wrong. */
int bench__parse_opts(int argc, char **argv, const bench_opt *opts, int stop_at_arg, int *help);

/* Makes sure this process may hold `need` descriptors, raising the hard limit too when allowed. */
int bench__raise_nofile(uint64_t need);

/* Writes s as a JSON string literal. */
void bench__json_str(FILE *f, const char *s);

/* CPU seconds (user + system) used so far by this process, or by pid from /proc/PID/stat; -1 when
 * unreadable. Reported so a reader can tell whether the client or the server was the bottleneck. */
double bench__cpu_self(void);
double bench__cpu_of(long pid);

/* `parley-bench start`: argv[0] is "start". Returns the process exit status. */
int bench__cmd_start(int argc, char **argv);

#endif
