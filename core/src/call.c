#include "call.h"

#include <stdarg.h>
#include <stdlib.h>

#include "format.h"

int tc_call_error(tc_call_t *call, int code, const char *fmt, ...) {
  free(call->errmsg);
  va_list ap;
  va_start(ap, fmt);
  call->errmsg = tc_vformat(fmt, ap);
  va_end(ap);
  return code;
}
