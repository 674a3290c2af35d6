/* PostgreSQL driver: sql.h's ?N parameters rewritten into $N (pg_internal.h). Kept apart from the
 * driver so its unit test links it without libpq. */
#include <stddef.h>

#include <parley/error.h>

#include "store/postgres/pg_internal.h"

/* Copies a quoted run starting at in[*i] (the opening quote q) up to and including its closing quote;
 * a doubled quote inside is part of the run. 0 when the input ends first. */
static int copy_quoted(const char *in, char *out, size_t *i, char q)
{
	out[*i] = in[*i];
	for ((*i)++; in[*i] != '\0'; (*i)++) {
		out[*i] = in[*i];
		if (in[*i] != q)
			continue;
		if (in[*i + 1] != q)
			return 1; /* closing quote */
		(*i)++;
		out[*i] = in[*i]; /* doubled: stays inside */
	}
	return 0;
}

int pg__rewrite_params(const char *in, char *out, size_t cap, int *n_params)
{
	size_t i = 0, len = 0;
	int max = 0;
	if (in == NULL || out == NULL || n_params == NULL)
		return PARLEY_E_INVAL;
	while (in[len] != '\0')
		len++;
	if (cap < len + 1)
		return PARLEY_E_INVAL;
	while (in[i] != '\0') {
		char c = in[i];
		if (c == '\'' || c == '"') {
			if (!copy_quoted(in, out, &i, c))
				return PARLEY_E_INVAL;
			i++;
			continue;
		}
		if (c == '-' && in[i + 1] == '-') {
			while (in[i] != '\0' && in[i] != '\n') {
				out[i] = in[i];
				i++;
			}
			continue;
		}
		if (c != '?') {
			out[i] = c;
			i++;
			continue;
		}
		size_t d = i + 1;
		long n = 0;
		while (in[d] >= '0' && in[d] <= '9' && n <= PG_MAX_PARAMS) {
			n = n * 10 + (in[d] - '0');
			d++;
		}
		if (d == i + 1 || n < 1 || n > PG_MAX_PARAMS)
			return PARLEY_E_INVAL;
		out[i] = '$';
		for (i++; i < d; i++)
			out[i] = in[i];
		if (n > max)
			max = (int)n;
	}
	out[i] = '\0';
	*n_params = max;
	return PARLEY_OK;
}
