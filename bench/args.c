/* Checked parsing of numeric command-line values, shared by tuplecast-bench
 * and the floors so that a typo fails loudly instead of running with 0.
 *
 * Ownership: nothing is allocated.
 */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int bench_parse_int(const char *prog, const char *name, const char *s, int min, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min || v > 1000000000) {
    fprintf(stderr, "%s: --%s: expected an integer >= %d, got \"%s\"\n", prog, name, min, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

int bench_parse_num(const char *prog, const char *name, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !(v > 0) || v > 1e9) {
    fprintf(stderr, "%s: --%s: expected a number > 0, got \"%s\"\n", prog, name, s);
    return -1;
  }
  *out = v;
  return 0;
}

static int set_opt(const char *prog, const bench_opt_t *o, char *arg) {
  switch (o->kind) {
  case BENCH_OPT_STR: *(const char **)o->dst = arg; return 0;
  case BENCH_OPT_INT: return bench_parse_int(prog, o->name, arg, 1, o->dst);
  case BENCH_OPT_NUM: return bench_parse_num(prog, o->name, arg, o->dst);
  case BENCH_OPT_FN: return o->fn(arg);
  }
  return -1;
}

enum { MAX_OPTS = 32 };

int bench_parse_opts(const char *prog, int argc, char **argv, const bench_opt_t *opts,
                     const char *usage) {
  struct option longs[MAX_OPTS + 2] = {{"help", no_argument, NULL, 0}};
  size_t n = 0;
  for (; opts[n].name; n++) {
    if (n == MAX_OPTS) abort(); /* a programming error: raise MAX_OPTS */
    longs[n + 1] = (struct option){opts[n].name, required_argument, NULL, (int)n + 1};
  }
  int opt, bad = 0;
  while (!bad && (opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    if (opt == 0) {
      fputs(usage, stdout);
      exit(0);
    }
    bad = opt < 1 || opt > (int)n || set_opt(prog, &opts[opt - 1], optarg) != 0;
  }
  if (!bad && optind < argc) {
    fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
    bad = 1;
  }
  if (bad) fputs(usage, stderr);
  return bad ? -1 : 0;
}
