/* Helpers shared by parley-bench's commands. */
#ifndef PARLEY_BENCH_BENCH_H
#define PARLEY_BENCH_BENCH_H
#include <stdint.h>
#include <stdio.h>

/* Strict number parsing for options: the whole string, within [min, max]. PARLEY_OK or _INVAL. */
int bench__parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int bench__parse_seconds(const char *s, double min, double max, double *out);

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
