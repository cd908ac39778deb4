/* gRPC server reflection, grpc.reflection.v1 and v1alpha (the same wire
 * format, so one handler with v1's C types serves both paths), answered by
 * the transport from the compiled-in descriptor set.  Unlike health, the
 * methods set admit: Permify serves reflection behind its whole middleware
 * chain (rate limit, authentication), and so does tuplecast.
 *
 * One bidirectional stream per client session: each request gets one
 * response, in order; the client's half-close ends the stream with OK.  The
 * next request is read only while few responses wait to be sent, so a
 * client that writes and never reads holds a bounded queue. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc_internal.h"
#include "grpc_reflect_index.h"
#include "log.h"
#include "tuplecast/errors.h"
#include "tuplecast/support.h" /* tc_format */

typedef Grpc__Reflection__V1__ServerReflectionRequest request_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse response_t;

/* Responses queued before the stream stops reading requests. */
#define MAX_QUEUED 4

static tc__reflect_index_t *index_;
static int refs;

int tc__grpc_reflect_ref(void) {
  if (refs++ > 0) return 0;
  int rc = tc__reflect_index_build(&index_);
  if (rc < 0) {
    refs = 0;
    tc_log(TC_LOG_ERROR, "grpc: cannot index the compiled-in descriptor set: %s",
           tc_err_code_name(rc));
  }
  return rc;
}

void tc__grpc_reflect_unref(void) {
  if (refs == 0 || --refs > 0) return;
  tc__reflect_index_free(index_);
  index_ = NULL;
}

/* Sends an ErrorResponse with a gRPC status code (5 NOT_FOUND, ...). */
static int send_error(tc_call_t *call, response_t *resp, int code, const char *fmt,
                      const char *what) {
  Grpc__Reflection__V1__ErrorResponse err = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
  char *text = tc_format(fmt, what);
  err.error_code = code;
  err.error_message = text ? text : "out of memory";
  resp->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
  resp->error_response = &err;
  int rc = call->send(call, &resp->base);
  free(text);
  return rc;
}

/* File `file` and its imports, or NOT_FOUND for -1. */
static int send_files(tc_call_t *call, response_t *resp, long file, const char *what,
                      const char *name) {
  if (file < 0) return send_error(call, resp, 5, what, name);
  size_t max = tc__reflect_index_n_files(index_);
  tc__reflect_file_t *files = calloc(max, sizeof *files);
  ProtobufCBinaryData *bytes = calloc(max, sizeof *bytes);
  if (!files || !bytes) {
    free(files);
    free(bytes);
    return TC_ENOMEM;
  }
  size_t n = tc__reflect_index_closure(index_, file, files, max);
  for (size_t i = 0; i < n; i++)
    bytes[i] = (ProtobufCBinaryData){files[i].len, (uint8_t *)files[i].data};
  Grpc__Reflection__V1__FileDescriptorResponse fd =
      GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
  fd.n_file_descriptor_proto = n;
  fd.file_descriptor_proto = bytes;
  resp->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  resp->file_descriptor_response = &fd;
  int rc = call->send(call, &resp->base);
  free(files);
  free(bytes);
  return rc;
}

static int send_services(tc_call_t *call, response_t *resp) {
  const char *const *names;
  size_t n = tc__reflect_index_services(index_, &names);
  Grpc__Reflection__V1__ServiceResponse *each = calloc(n ? n : 1, sizeof *each);
  Grpc__Reflection__V1__ServiceResponse **list = calloc(n ? n : 1, sizeof *list);
  if (!each || !list) {
    free(each);
    free(list);
    return TC_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    grpc__reflection__v1__service_response__init(&each[i]);
    each[i].name = (char *)names[i];
    list[i] = &each[i];
  }
  Grpc__Reflection__V1__ListServiceResponse ls = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
  ls.n_service = n;
  ls.service = list;
  resp->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
  resp->list_services_response = &ls;
  int rc = call->send(call, &resp->base);
  free(each);
  free(list);
  return rc;
}

static int send_extension_numbers(tc_call_t *call, response_t *resp, const char *type) {
  if (!tc__reflect_index_is_message(index_, type))
    return send_error(call, resp, 5, "message type %s not found", type);
  size_t n = tc__reflect_index_extension_numbers(index_, type, NULL, 0);
  int32_t *numbers = calloc(n ? n : 1, sizeof *numbers);
  if (!numbers) return TC_ENOMEM;
  tc__reflect_index_extension_numbers(index_, type, numbers, n);
  Grpc__Reflection__V1__ExtensionNumberResponse en =
      GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
  en.base_type_name = (char *)type;
  en.n_extension_number = n;
  en.extension_number = numbers;
  resp->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
  resp->all_extension_numbers_response = &en;
  int rc = call->send(call, &resp->base);
  free(numbers);
  return rc;
}

/* One response for the request in call->request. */
static int respond(tc_call_t *call) {
  request_t *req = (request_t *)call->request;
  response_t resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  resp.valid_host = req->host;
  resp.original_request = req;
  switch (req->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    return send_files(call, &resp, tc__reflect_index_file(index_, req->file_by_filename),
                      "file %s not found", req->file_by_filename);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
    return send_files(call, &resp, tc__reflect_index_symbol(index_, req->file_containing_symbol),
                      "symbol %s not found", req->file_containing_symbol);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
    const Grpc__Reflection__V1__ExtensionRequest *e = req->file_containing_extension;
    long file = tc__reflect_index_extension(index_, e->containing_type, e->extension_number);
    return send_files(call, &resp, file, "no extension of %s with that number", e->containing_type);
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
    return send_extension_numbers(call, &resp, req->all_extension_numbers_of_type);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    return send_services(call, &resp);
  default: return send_error(call, &resp, 3, "%s", "no request in the ServerReflectionRequest");
  }
}

/* Answers the request at hand, then reads the next unless too many
 * responses wait (on_sent reads it then).  call->handler: 1 while waiting. */
static void serve(tc_call_t *call) {
  int rc = respond(call);
  if (rc == TC_ECANCELLED) return; /* on_cancel follows */
  if (rc < 0) {
    call->done(call, rc, tc_err_code_name(rc), NULL);
    return;
  }
  if (call->pending < MAX_QUEUED)
    call->read(call);
  else
    call->handler = (void *)1;
}

static void on_sent(tc_call_t *call) {
  if (!call->handler || call->pending >= MAX_QUEUED) return;
  call->handler = NULL;
  call->read(call);
}

static void on_message(tc_call_t *call) {
  if (!call->request) /* the client is done asking */
    call->done(call, 0, NULL, NULL);
  else
    serve(call);
}

static void on_cancel(tc_call_t *call) {
  call->done(call, TC_ECANCELLED, tc_err_code_name(TC_ECANCELLED), NULL);
}

static int start(tc_call_t *call) {
  if (!index_) return tc_call_error(call, TC_EUNIMPLEMENTED, "reflection index unavailable");
  call->on_message = on_message;
  call->on_sent = on_sent;
  call->on_cancel = on_cancel;
  call->handler = NULL;
  serve(call);
  return 0;
}

#define REFLECTION_METHOD(pkg)                                                                 \
  {                                                                                            \
    .path = "/grpc.reflection." pkg ".ServerReflection/ServerReflectionInfo",                  \
    .input = &grpc__reflection__v1__server_reflection_request__descriptor,                     \
    .output = &grpc__reflection__v1__server_reflection_response__descriptor, .handler = start, \
    .server_streaming = 1, .client_streaming = 1, .admit = 1                                   \
  }

static const tc_method_t methods[] = {REFLECTION_METHOD("v1"), REFLECTION_METHOD("v1alpha")};

const tc_method_t *tc__grpc_reflect_find(const char *path) {
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(path, methods[i].path) == 0) return &methods[i];
  return NULL;
}
