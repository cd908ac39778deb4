#include "call.h"

#include <stdarg.h>
#include <stdlib.h>

#include "format.h"

tc_packed_t *tc_packed_new(const ProtobufCMessage *msg) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  tc_packed_t *p = malloc(sizeof *p + len);
  if (!p) return NULL;
  atomic_init(&p->refs, 1);
  p->len = protobuf_c_message_pack(msg, p->data);
  return p;
}

tc_packed_t *tc_packed_ref(tc_packed_t *p) {
  atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
  return p;
}

void tc_packed_unref(void *arg) {
  tc_packed_t *p = arg;
  if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) free(p);
}

int tc_call_error(tc_call_t *call, int code, const char *fmt, ...) {
  free(call->errmsg);
  va_list ap;
  va_start(ap, fmt);
  call->errmsg = tc_vformat(fmt, ap);
  va_end(ap);
  return code;
}
