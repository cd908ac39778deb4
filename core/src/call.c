#include "call.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "error.h"
#include "format.h"
#include "log.h"
#include "metrics_record.h"

int tc_call_error(tc_call_t *call, int code, const char *fmt, ...) {
  free(call->errmsg);
  va_list ap;
  va_start(ap, fmt);
  call->errmsg = tc_vformat(fmt, ap);
  va_end(ap);
  return code;
}

/* gRPC's status names as Go's codes.Code spells them (Permify's logs). */
static const char *const code_names[] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

/* The request's tenant_id, NULL if it has none (Tenancy.Create, List). */
static const char *tenant_of(const ProtobufCMessage *req) {
  const ProtobufCFieldDescriptor *f =
      req ? protobuf_c_message_descriptor_get_field_by_name(req->descriptor, "tenant_id") : NULL;
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED) return NULL;
  const char *s = *(char *const *)((const char *)req + f->offset);
  return s && *s ? s : NULL;
}

const char *tc__call_code_name(int code) { return code_names[code >= 0 && code <= 16 ? code : 2]; }

void tc_call_log_end(const tc_call_t *call, const char *protocol, int status, const char *message) {
  uint64_t took = call->started_ns ? uv_hrtime() - call->started_ns : 0;
  tc__metrics_call_end(call, protocol, status, took);
  const char *path = call->method ? call->method->path : "";
  int level = strncmp(path, "/grpc.health.", 13) == 0 ? TC_LOG_DEBUG : TC_LOG_INFO;
  if (!tc_log_enabled(level)) return;
  /* "/base.v1.Data/Write": the service between the two slashes. */
  const char *slash = strrchr(path, '/');
  int service_len = slash && slash > path ? (int)(slash - path - 1) : 0;
  char service[128];
  snprintf(service, sizeof service, "%.*s", service_len, service_len ? path + 1 : "");
  int code = tc_err_grpc_status(status);
  char ms[32];
  snprintf(ms, sizeof ms, "%.3f", (double)took / 1e6);
  const tc_log_field_t f[] = {
      {"protocol", TC_LOG_STR, protocol, 0},
      {"grpc.service", TC_LOG_STR, service, 0},
      {"grpc.method", TC_LOG_STR, slash ? slash + 1 : path, 0},
      {"grpc.method_type", TC_LOG_STR,
       !call->method                    ? "unary"
       : call->method->client_streaming ? "bidi_stream"
       : call->method->server_streaming ? "server_stream"
                                        : "unary",
       0},
      {"tenant_id", TC_LOG_STR, tenant_of(call->request), 0},
      {"peer.address", TC_LOG_STR, call->peer[0] ? call->peer : NULL, 0},
      {"grpc.code", TC_LOG_STR, tc__call_code_name(code), 0},
      {"grpc.error", TC_LOG_STR, status < 0 ? message : NULL, 0},
      {"grpc.time_ms", TC_LOG_STR, ms, 0},
  };
  tc_log_fields(level, "finished call", f, sizeof f / sizeof f[0]);
}
