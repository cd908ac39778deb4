#include "log_lines.h"

#include <stdarg.h>
#include <stdio.h>

static tt_log_sink_fn sink_fn;

void tt_log_sink(tt_log_sink_fn sink) { sink_fn = sink; }

void tt_log(int level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (sink_fn) sink_fn(level, line);
}
