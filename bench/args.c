/* Checked parsing of numeric command-line values, shared by tuplecast-bench
 * and the floors so that a typo fails loudly instead of running with 0.
 *
 * Ownership: nothing is allocated.
 */
#include "bench.h"

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
