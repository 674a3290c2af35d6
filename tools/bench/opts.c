/* parley-bench's option parsing: strict numbers and one table-driven getopt loop for every command. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "bench.h"

#define MAX_OPTS 40

int bench__parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || *s == '\0' || *s == '-')
		return PARLEY_E_INVAL;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return PARLEY_E_INVAL;
	*out = v;
	return PARLEY_OK;
}

int bench__parse_seconds(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	if (!s || *s == '\0')
		return PARLEY_E_INVAL;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v >= min && v <= max))
		return PARLEY_E_INVAL;
	*out = v;
	return PARLEY_OK;
}

int bench__list_add(bench_list *l, const char *s)
{
	size_t len = s ? strlen(s) : 0, i, start;

	if (len == 0 || len + 1 > sizeof(l->buf) - l->used)
		return PARLEY_E_INVAL;
	memcpy(l->buf + l->used, s, len + 1);
	for (start = 0, i = 0; i <= len; i++) {
		char *p = l->buf + l->used;
		if (p[i] != ',' && p[i] != '\0')
			continue;
		if (i == start || l->n >= BENCH_LIST_MAX)
			return PARLEY_E_INVAL; /* an empty value, or too many */
		p[i] = '\0';
		l->v[l->n++] = p + start;
		start = i + 1;
	}
	l->used += len + 1;
	return PARLEY_OK;
}

static int set_value(const bench_opt *o, const char *arg)
{
	uint64_t v;
	int rc = PARLEY_OK, i;

	switch (o->kind) {
	case BOPT_FLAG: *(int *)o->dst = 1; break;
	case BOPT_STR: *(const char **)o->dst = arg; break;
	case BOPT_LIST: rc = bench__list_add((bench_list *)o->dst, arg); break;
	case BOPT_SECONDS: rc = bench__parse_seconds(arg, o->min, o->max, (double *)o->dst); break;
	case BOPT_CHOICE:
		rc = PARLEY_E_INVAL;
		for (i = 0; o->choices[i] != NULL; i++)
			if (strcmp(arg, o->choices[i]) == 0) {
				*(int *)o->dst = i;
				rc = PARLEY_OK;
			}
		break;
	default:
		rc = bench__parse_u64(arg, (uint64_t)o->min, (uint64_t)o->max, &v);
		if (rc != PARLEY_OK)
			break;
		if (o->kind == BOPT_U64)
			*(uint64_t *)o->dst = v;
		else if (o->kind == BOPT_UINT)
			*(unsigned *)o->dst = (unsigned)v;
		else if (o->kind == BOPT_SIZE)
			*(size_t *)o->dst = (size_t)v;
		else
			*(long *)o->dst = (long)v;
		break;
	}
	if (rc == PARLEY_OK && o->given != NULL)
		*o->given = 1;
	return rc;
}

int bench__parse_opts(int argc, char **argv, const bench_opt *opts, int stop_at_arg, int *help)
{
	struct option lo[MAX_OPTS + 2];
	int n, opt, idx;

	*help = 0;
	for (n = 0; opts[n].name != NULL && n < MAX_OPTS; n++) {
		lo[n].name = opts[n].name;
		lo[n].has_arg = opts[n].kind == BOPT_FLAG ? no_argument : required_argument;
		lo[n].flag = NULL;
		lo[n].val = 256 + n;
	}
	lo[n] = (struct option){"help", no_argument, NULL, 'h'};
	lo[n + 1] = (struct option){NULL, 0, NULL, 0};
	optind = 1;
	while ((opt = getopt_long(argc, argv, stop_at_arg ? "+h" : "h", lo, NULL)) != -1) {
		if (opt == 'h') {
			*help = 1;
			return optind;
		}
		if (opt < 256 || opt >= 256 + n)
			return -1; /* getopt said what is wrong */
		idx = opt - 256;
		if (set_value(&opts[idx], optarg) != PARLEY_OK) {
			fprintf(stderr, "parley-bench: bad value '%s' for --%s\n", optarg, opts[idx].name);
			return -1;
		}
	}
	return optind;
}
