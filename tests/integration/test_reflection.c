/* gRPC server reflection against the real binary, with a real reflection
 * client: grpcurl (scripts/setup installs the pinned version into .tools/).
 * `list`, `describe` and calls by name go through grpcurl's own client, which
 * speaks grpc.reflection.v1; v1alpha is driven by calling its
 * ServerReflectionInfo by name with several requests on one stream.  With
 * authentication on, reflection needs the key, as on Permify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc_client.h"
#include "server_proc.h"

#ifndef TC_GRPCURL
#error "TC_GRPCURL: the grpcurl binary (tests/integration/reflection.cmake)"
#endif

/* Runs grpcurl with args (NULL-terminated) against p; returns its exit
 * status and its stdout and stderr, interleaved, in *out (malloc'd). */
static int grpcurl(tc_proc_t *p, const char *const *args, char **out) {
  const char *argv[32] = {TC_GRPCURL, "-plaintext", "-max-time", "20"};
  size_t n = 4;
  for (; *args && n < 30; args++) argv[n++] = *args;
  /* The target goes before the method: grpcurl [flags] host:port [method]. */
  size_t method_at = n;
  for (size_t i = 4; i < n; i++)
    if (argv[i][0] != '-' && (i == 4 || strcmp(argv[i - 1], "-d") != 0) &&
        strcmp(argv[i - 1], "-H") != 0)
      method_at = i < method_at ? i : method_at;
  memmove(&argv[method_at + 1], &argv[method_at], (n - method_at) * sizeof *argv);
  argv[method_at] = p->target;
  argv[++n] = NULL;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    execv(TC_GRPCURL, (char *const *)argv);
    fprintf(stderr, "cannot run %s: run scripts/setup to install it\n", TC_GRPCURL);
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  ssize_t got;
  while ((got = read(fds[0], buf + len, cap - len - 1)) > 0)
    if ((len += (size_t)got) + 1 == cap) buf = realloc(buf, cap *= 2);
  buf[len] = '\0';
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  *out = buf;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* grpcurl that must succeed; its output (malloc'd). */
static char *grpcurl_ok(tc_proc_t *p, const char *const *args) {
  char *out;
  int rc = grpcurl(p, args, &out);
  if (rc != 0) fail_msg("grpcurl %s exited %d:\n%s", args[0], rc, out);
  return out;
}

static void expect_has(const char *out, const char *needle) {
  if (!strstr(out, needle)) fail_msg("expected \"%s\" in:\n%s", needle, out);
}

static int setup(void **state) {
  tc_proc_t *p = calloc(1, sizeof *p);
  if (tc_proc_start_memory(p, NULL) != 0) {
    fprintf(stderr, "%s\n", p->log ? p->log : "");
    return -1;
  }
  *state = p;
  return 0;
}

/* 0 when the server exited 0 (sanitizers make a leak fail it). */
static int teardown(void **state) {
  int rc = tc_proc_stop(*state, NULL);
  free(*state);
  return rc == 0 ? 0 : -1;
}

/* `grpcurl list` names exactly the services the gRPC port serves. */
static void test_list(void **state) {
  char *out = grpcurl_ok(*state, (const char *[]){"list", NULL});
  assert_string_equal(out,
                      "base.v1.Bundle\n"
                      "base.v1.Data\n"
                      "base.v1.Schema\n"
                      "base.v1.Tenancy\n"
                      "base.v1.Watch\n"
                      "grpc.health.v1.Health\n"
                      "grpc.reflection.v1.ServerReflection\n"
                      "grpc.reflection.v1alpha.ServerReflection\n");
  free(out);
  out = grpcurl_ok(*state, (const char *[]){"list", "base.v1.Tenancy", NULL});
  assert_string_equal(out,
                      "base.v1.Tenancy.Create\nbase.v1.Tenancy.Delete\nbase.v1.Tenancy.List\n");
  free(out);
}

/* describe needs each file with its imports: base.v1.Tuple's file imports
 * google/protobuf/any.proto and the CEL checked.proto. */
static void test_describe(void **state) {
  char *out = grpcurl_ok(*state, (const char *[]){"describe", "base.v1.Data", NULL});
  expect_has(out, "base.v1.Data is a service:");
  expect_has(out,
             "rpc Write ( .base.v1.DataWriteRequest ) returns ( .base.v1.DataWriteResponse );");
  free(out);
  out = grpcurl_ok(*state, (const char *[]){"describe", "base.v1.Watch.Watch", NULL});
  expect_has(out, "returns ( stream .base.v1.WatchResponse );");
  free(out);
  out = grpcurl_ok(*state, (const char *[]){"describe", "base.v1.Attribute", NULL});
  expect_has(out, "message Attribute {");
  expect_has(out, ".google.protobuf.Any value = 3");
  free(out);
  out = grpcurl_ok(*state, (const char *[]){"describe", "base.v1.CheckResult", NULL});
  expect_has(out, "enum CheckResult {");
  free(out);
  char *err;
  assert_int_not_equal(grpcurl(*state, (const char *[]){"describe", "base.v1.NoSuch", NULL}, &err),
                       0);
  expect_has(err, "base.v1.NoSuch");
  free(err);
}

/* Calls by name: grpcurl builds the requests from the descriptors it got. */
static void test_call_by_name(void **state) {
  char *out = grpcurl_ok(*state, (const char *[]){"-d", "{\"id\":\"refl\",\"name\":\"by name\"}",
                                                  "base.v1.Tenancy/Create", NULL});
  expect_has(out, "\"id\": \"refl\"");
  free(out);
  out = grpcurl_ok(*state,
                   (const char *[]){"-d", "{\"page_size\":100}", "base.v1.Tenancy/List", NULL});
  expect_has(out, "\"name\": \"by name\"");
  free(out);
  out = grpcurl_ok(
      *state, (const char *[]){"-d", "{\"service\":\"\"}", "grpc.health.v1.Health/Check", NULL});
  expect_has(out, "\"status\": \"SERVING\"");
  free(out);
}

/* The grpcurl output's JSON objects, one after another. */
static json_t *responses(const char *out) {
  json_t *all = json_array();
  size_t len = strlen(out), at = 0;
  while (at < len) {
    while (at < len && (out[at] == '\n' || out[at] == ' ')) at++;
    if (at == len) break;
    json_error_t e;
    json_t *one = json_loadb(out + at, len - at, JSON_DISABLE_EOF_CHECK, &e);
    if (!one) fail_msg("not JSON at %zu: %s\n%s", at, e.text, out);
    json_array_append_new(all, one);
    at += e.position;
  }
  return all;
}

/* v1alpha, on one stream: more requests than the server queues before it
 * stops reading, each answered in order, errors as ErrorResponse. */
static void test_v1alpha_stream(void **state) {
  char *out = grpcurl_ok(
      *state,
      (const char *[]){"-d",
                       "{\"list_services\":\"\"}"
                       "{\"file_by_filename\":\"base/v1/service.proto\"}"
                       "{\"file_containing_symbol\":\"base.v1.Data.Write\"}"
                       "{\"file_containing_symbol\":\"no.such.Symbol\"}"
                       "{\"file_by_filename\":\"no/such.proto\"}"
                       "{\"all_extension_numbers_of_type\":\"base.v1.Tuple\"}"
                       "{\"all_extension_numbers_of_type\":\"no.such.Type\"}"
                       "{\"file_containing_extension\":{\"containing_type\":\"base.v1.Tuple\","
                       "\"extension_number\":1000}}"
                       "{\"list_services\":\"again\"}{\"list_services\":\"and again\"}",
                       "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", NULL});
  json_t *r = responses(out);
  assert_int_equal(json_array_size(r), 10);
  assert_int_equal(json_array_size(json_object_get(
                       json_object_get(json_array_get(r, 0), "listServicesResponse"), "service")),
                   8);
  /* service.proto, base.proto, checked.proto, any.proto, timestamp.proto */
  json_t *files = json_object_get(json_object_get(json_array_get(r, 1), "fileDescriptorResponse"),
                                  "fileDescriptorProto");
  assert_int_equal(json_array_size(files), 5);
  files = json_object_get(json_object_get(json_array_get(r, 2), "fileDescriptorResponse"),
                          "fileDescriptorProto");
  assert_int_equal(json_array_size(files), 5);
  for (size_t i = 3; i <= 7; i++) {
    if (i == 5) continue;
    json_t *e = json_object_get(json_array_get(r, i), "errorResponse");
    if (!e) fail_msg("response %zu is no error:\n%s", i, out);
    assert_int_equal(json_integer_value(json_object_get(e, "errorCode")), 5);
  }
  json_t *ext = json_object_get(json_array_get(r, 5), "allExtensionNumbersResponse");
  assert_string_equal(json_string_value(json_object_get(ext, "baseTypeName")), "base.v1.Tuple");
  /* Each response echoes its request. */
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(json_array_get(r, 9), "originalRequest"),
                                        "listServices")),
      "and again");
  json_decref(r);
  free(out);
}

/* A stream that asks nothing ends with OK and no response. */
static void test_no_requests(void **state) {
  char *out = grpcurl_ok(*state, (const char *[]){"-d", "",
                                                  "grpc.reflection.v1.ServerReflection/"
                                                  "ServerReflectionInfo",
                                                  NULL});
  assert_string_equal(out, "");
  free(out);
}

/* Sends req on s (opened without one); last ends the client's side. */
static void send_request(tc_stream_t *s, const Grpc__Reflection__V1__ServerReflectionRequest *req,
                         int last) {
  uint8_t buf[64];
  assert_true(protobuf_c_message_get_packed_size(&req->base) <= sizeof buf);
  assert_int_equal(tc_stream_send_raw(s, buf, protobuf_c_message_pack(&req->base, buf), last), 0);
}

/* A request that does not decode, in the middle of a stream, ends it with
 * INVALID_ARGUMENT, and the call's request line and metrics say so (the
 * handler's done() after on_cancel said CANCELLED). */
static void test_bad_request_midstream(void **state) {
  tc_proc_t *p = *state;
  tc_client_t *c = tc_client_new(p->target);
  assert_non_null(c);
  tc_stream_t *s = tc_client_stream_open(
      c, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", NULL, NULL, 0);
  assert_non_null(s);
  Grpc__Reflection__V1__ServerReflectionRequest req =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  req.list_services = "*";
  send_request(s, &req, 0);
  const ProtobufCMessageDescriptor *desc =
      &grpc__reflection__v1__server_reflection_response__descriptor;
  ProtobufCMessage *m = NULL;
  assert_int_equal(tc_stream_next(s, desc, &m, 20000), 0);
  protobuf_c_message_free_unpacked(m, NULL);
  static const uint8_t bad[] = {0x0a, 0x05, 'x'}; /* host: 5 bytes said, 1 sent */
  assert_int_equal(tc_stream_send_raw(s, bad, sizeof bad, 0), 0);
  assert_int_equal(tc_stream_next(s, desc, &m, 20000), 1);
  assert_int_equal(tc_stream_status(s, NULL), 3);
  const char *line = tc_proc_wait_log(p, 0, "grpc.method=ServerReflectionInfo", 20000);
  assert_non_null(line);
  const char *end = strchr(line, '\n');
  const char *code = strstr(line, "grpc.code=InvalidArgument");
  if (!code || (end && code > end)) fail_msg("request line not INVALID_ARGUMENT: %s", line);
  tc_stream_free(s);
  tc_client_free(c);
}

/* Sends n requests for base.v1.Data's file (with its imports, larger than
 * the small client's window) on s, the last one ending the client's side
 * if last. */
static void send_symbol_requests(tc_stream_t *s, int n, int last) {
  Grpc__Reflection__V1__ServerReflectionRequest req =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = "base.v1.Data";
  for (int i = 0; i < n; i++) send_request(s, &req, last && i == n - 1);
}

/* A client that sends many requests before it reads: the server stops
 * reading while responses wait and reads on as they leave, so every
 * request is answered; one that leaves such a stream (cancels it)
 * leaves a server that answers on and exits cleanly. */
static void test_backpressure(void **state) {
  tc_proc_t *p = *state;
  const char *method = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
  const ProtobufCMessageDescriptor *desc =
      &grpc__reflection__v1__server_reflection_response__descriptor;
  enum { N = 40 };
  tc_client_t *c = tc_client_new_small_window(p->target);
  assert_non_null(c);
  tc_stream_t *s = tc_client_stream_open(c, method, NULL, NULL, 0);
  assert_non_null(s);
  send_symbol_requests(s, N, 1);
  for (int i = 0; i < N; i++) {
    ProtobufCMessage *m = NULL;
    assert_int_equal(tc_stream_next(s, desc, &m, 20000), 0);
    const Grpc__Reflection__V1__ServerReflectionResponse *r = (const void *)m;
    assert_int_equal(
        r->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  ProtobufCMessage *m = NULL;
  assert_int_equal(tc_stream_next(s, desc, &m, 20000), 1);
  assert_int_equal(tc_stream_status(s, NULL), 0);
  tc_stream_free(s);

  s = tc_client_stream_open(c, method, NULL, NULL, 0);
  assert_non_null(s);
  send_symbol_requests(s, N, 0);
  tc_stream_cancel(s);
  tc_stream_free(s);
  tc_client_free(c);
  char *out = grpcurl_ok(p, (const char *[]){"list", NULL});
  expect_has(out, "base.v1.Data\n");
  free(out);
}

/* Reflection sits behind authentication and the rate limit, as on Permify. */
static void test_needs_key(void **state) {
  (void)state;
  tc_proc_t p = {0};
  if (tc_proc_start_memory(&p, (const char *[]){"--authn-enabled", "--authn-method", "preshared",
                                                "--authn-preshared-keys", "refl-key", NULL}) != 0)
    fail_msg("server did not start:\n%s", p.log ? p.log : "");
  char *out;
  assert_int_not_equal(grpcurl(&p, (const char *[]){"list", NULL}, &out), 0);
  expect_has(out, "Unauthenticated");
  free(out);
  out = grpcurl_ok(&p, (const char *[]){"-H", "authorization: Bearer refl-key", "list", NULL});
  expect_has(out, "base.v1.Data\n");
  free(out);
  assert_int_equal(tc_proc_stop(&p, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_describe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_call_by_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v1alpha_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_request_midstream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
      cmocka_unit_test(test_needs_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
