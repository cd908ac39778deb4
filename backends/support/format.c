#include "tuplecast/support.h"

#include <stdio.h>
#include <stdlib.h>

char *tc_vformat(const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  char *s = n < 0 ? NULL : malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, again);
  va_end(again);
  return s;
}

char *tc_format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = tc_vformat(fmt, ap);
  va_end(ap);
  return s;
}
