/* The server's log against the real binary: with --log-output json every
 * line is one JSON object with time, level and msg; each call gives one
 * "finished call" line with its method, tenant, status, duration and peer;
 * the start-up line names the version, engine, ports and the configuration
 * with its secrets masked; the text output keeps its shape. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/v1/service.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "http_client.h"
#include "tt_api.h"

#define KEY "Bearer sekrit-one"

/* Schema.Write of a one-entity schema over gRPC; returns the status code. */
static int grpc_write_schema(tc_client_t *c, const char *tenant, const char *authorization) {
  Base__V1__SchemaWriteRequest req = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.schema = "entity user {}";
  ProtobufCMessage *resp = NULL;
  char *details = NULL;
  int code = tc_client_unary(c, "/base.v1.Schema/Write", &req.base,
                             &base__v1__schema_write_response__descriptor, &resp, &details,
                             authorization, TT_TIMEOUT);
  if (resp) protobuf_c_message_free_unpacked(resp, NULL);
  free(details);
  return code;
}

static void health_check(tc_client_t *c) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  assert_int_equal(tc_client_unary(c, "/grpc.health.v1.Health/Check", &req.base,
                                   &grpc__health__v1__health_check_response__descriptor, &resp,
                                   NULL, NULL, TT_TIMEOUT),
                   0);
  protobuf_c_message_free_unpacked(resp, NULL);
}

/* Tenancy.Create of id (its request line has no tenant_id: the field is "id"). */
static void create_tenant(tc_client_t *c, const char *id, const char *authorization) {
  Base__V1__TenantCreateRequest req;
  ProtobufCMessage *resp = NULL;
  char *details = NULL;
  int code = tc_client_unary(c, "/base.v1.Tenancy/Create", &tt_tenant_create(&req, id, id)->base,
                             &base__v1__tenant_create_response__descriptor, &resp, &details,
                             authorization, TT_TIMEOUT);
  if (code) fail_msg("Tenancy.Create %s: %d %s", id, code, details ? details : "");
  protobuf_c_message_free_unpacked(resp, NULL);
  free(details);
}

/* The same over HTTP with a raw socket; returns the HTTP status. */
static int http_write_schema(int port, const char *tenant) {
  int fd = tt_http_connect(port);
  static const char body[] = "{\"schema\":\"entity user {}\"}";
  char req[512];
  int n = snprintf(req, sizeof req,
                   "POST /v1/tenants/%s/schemas/write HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: " KEY
                   "\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   tenant, sizeof body - 1, body);
  assert_int_equal(write(fd, req, (size_t)n), n);
  char resp[4096];
  size_t got = 0;
  ssize_t r;
  while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
    got += (size_t)r;
  resp[got] = '\0';
  close(fd);
  int status = 0;
  sscanf(resp, "HTTP/1.1 %d", &status);
  return status;
}

static const char *str_of(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  if (!s) fail_msg("%s: missing or not a string", key);
  return s;
}

/* The number of request lines of gRPC health checks at level. */
static size_t health_lines(json_t *lines, const char *level) {
  json_t *line;
  size_t i, n = 0;
  json_array_foreach(lines, i, line) {
    const char *service = json_string_value(json_object_get(line, "grpc.service"));
    n += service && !strcmp(service, "grpc.health.v1.Health") &&
         !strcmp(str_of(line, "level"), level);
  }
  return n;
}

/* The "finished call" line of tenant, which must be the only one. */
static json_t *call_line(json_t *lines, const char *tenant) {
  json_t *found = NULL, *line;
  size_t i;
  json_array_foreach(lines, i, line) {
    const char *t = json_string_value(json_object_get(line, "tenant_id"));
    if (strcmp(str_of(line, "msg"), "finished call") || !t || strcmp(t, tenant)) continue;
    if (found) fail_msg("two request lines for tenant %s", tenant);
    found = line;
  }
  if (!found) fail_msg("no request line for tenant %s", tenant);
  return found;
}

/* A request line's fields: protocol, method, status, a duration, the peer. */
static void check_call(json_t *line, const char *protocol, const char *code) {
  assert_string_equal(str_of(line, "level"), "INFO");
  assert_string_equal(str_of(line, "protocol"), protocol);
  assert_string_equal(str_of(line, "grpc.service"), "base.v1.Schema");
  assert_string_equal(str_of(line, "grpc.method"), "Write");
  assert_string_equal(str_of(line, "grpc.method_type"), "unary");
  assert_string_equal(str_of(line, "grpc.code"), code);
  char *end;
  double ms = strtod(str_of(line, "grpc.time_ms"), &end);
  assert_true(*end == '\0' && ms >= 0 && ms < TT_TIMEOUT);
  assert_true(strncmp(str_of(line, "peer.address"), "127.0.0.1:", 10) == 0);
  assert_true(atoi(str_of(line, "peer.address") + 10) > 0);
}

/* Parses every line of log as a JSON object with time, level and msg. */
static json_t *parse_lines(char *log) {
  json_t *lines = json_array();
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    if (!json_is_object(o)) fail_msg("not a JSON object: %s (%s)", line, err.text);
    str_of(o, "time"), str_of(o, "level"), str_of(o, "msg");
    json_array_append_new(lines, o);
  }
  return lines;
}

static json_t *started_line(json_t *lines) {
  json_t *line;
  size_t i;
  json_array_foreach(lines, i,
                     line) if (!strcmp(str_of(line, "msg"), "tuplecast started")) return line;
  fail_msg("no start-up line");
  return NULL;
}

static void test_json(void **state) {
  (void)state;
  /* clang-format off */
  static const char *const extra[] = {
      "--log-output", "json", "--authn-enabled", "--authn-method", "preshared",
      "--authn-preshared-keys", "sekrit-one,sekrit-two",
      "--database-uri", "postgres://alice:pw-hidden@db.invalid/x", NULL};
  /* clang-format on */
  tc_proc_t p;
  assert_int_equal(tc_proc_start_memory(&p, extra), 0);
  int http_port = tc_proc_http_port(&p, TT_TIMEOUT);
  assert_true(http_port > 0);
  tc_client_t *c = tc_client_new(p.target);
  create_tenant(c, "t-grpc", KEY);
  create_tenant(c, "t-http", KEY);
  assert_int_equal(grpc_write_schema(c, "t-grpc", KEY), 0);
  assert_int_equal(grpc_write_schema(c, "t-denied", NULL), 16);
  assert_int_equal(http_write_schema(http_port, "t-http"), 200);
  health_check(c);
  tc_client_free(c);
  int grpc_port = p.grpc_port;
  char *log = NULL;
  assert_int_equal(tc_proc_stop(&p, &log), 0);
  assert_null(strstr(log, "sekrit"));
  assert_null(strstr(log, "pw-hidden"));
  json_t *lines = parse_lines(log);

  check_call(call_line(lines, "t-grpc"), "grpc", "OK");
  json_t *denied = call_line(lines, "t-denied");
  check_call(denied, "grpc", "Unauthenticated");
  assert_string_equal(str_of(denied, "grpc.error"), "ERROR_CODE_MISSING_BEARER_TOKEN");
  check_call(call_line(lines, "t-http"), "http", "OK");
  assert_int_equal(health_lines(lines, "INFO"), 0); /* health checks: debug */

  json_t *start = started_line(lines);
  assert_string_equal(str_of(start, "engine"), "memory");
  assert_true(*str_of(start, "version") != '\0');
  assert_int_equal(json_integer_value(json_object_get(start, "grpc.port")), grpc_port);
  assert_int_equal(json_integer_value(json_object_get(start, "http.port")), http_port);
  json_t *cfg = json_object_get(start, "config");
  assert_string_equal(str_of(cfg, "logger.output"), "json");
  assert_string_equal(str_of(cfg, "database.uri"), "postgres://alice:***@db.invalid/x");
  json_t *keys = json_object_get(cfg, "authn.preshared.keys");
  assert_int_equal(json_array_size(keys), 2);
  assert_string_equal(json_string_value(json_array_get(keys, 1)), "***");
  json_decref(lines);
  free(log);
}

/* --log-level debug: gRPC health checks have their request line, at debug. */
static void test_debug(void **state) {
  (void)state;
  tc_proc_t p;
  static const char *const extra[] = {"--log-output", "json", "--log-level", "debug", NULL};
  assert_int_equal(tc_proc_start_memory(&p, extra), 0);
  tc_client_t *c = tc_client_new(p.target);
  health_check(c);
  health_check(c);
  tc_client_free(c);
  char *log = NULL;
  assert_int_equal(tc_proc_stop(&p, &log), 0);
  json_t *lines = parse_lines(log);
  assert_int_equal(health_lines(lines, "DEBUG"), 2);
  json_decref(lines);
  free(log);
}

/* Lines of log holding needle. */
static int count_lines(const char *log, const char *needle) {
  int n = 0;
  for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

/* A tenant's head schema is read again each second while the tenant is
 * busy; the version it names is compiled and cached once, not once per read
 * (the cache grew by a compiled schema a second, for as long as the server
 * ran), and its text is not sent again while it stays the head (plugin ABI
 * 2.5's tenant_state).  The debug lines say which happened. */
static void test_schema_cached_once(void **state) {
  (void)state;
  tc_proc_t p;
  static const char *const extra[] = {"--log-level", "debug", NULL};
  assert_int_equal(tc_proc_start_memory(&p, extra), 0);
  tc_client_t *c = tc_client_new(p.target);
  char *version = NULL;
  tt_write_schema(c, "t1", &version);
  char again[128];
  snprintf(again, sizeof again, "tenant t1: schema %s read", version);
  /* Writes (each needs the head schema) until the head was read again three
   * times: a second apart, so a few seconds. */
  size_t from = 0;
  long long deadline = tc_now_ms() + 6 * TT_TIMEOUT;
  for (int reads = 0; reads < 3;) {
    assert_true(tc_now_ms() < deadline);
    tt_tuple_buf_t tb;
    Base__V1__Tuple *t = tt_tuple(&tb, "organization", "o1", "member", "user", "u1", "");
    free(tt_write_data(c, "t1", &t, 1, NULL, 0, NULL));
    const char *at = tc_proc_wait_log(&p, from, again, 100);
    if (at) {
      from = (size_t)(at - p.log) + 1;
      reads++;
    }
  }
  tc_client_free(c);
  char *log = NULL;
  assert_int_equal(tc_proc_stop(&p, &log), 0);
  char compiled[128];
  snprintf(compiled, sizeof compiled, "tenant t1: schema %s compiled and cached", version);
  assert_int_equal(count_lines(log, compiled), 1);
  snprintf(again, sizeof again, "tenant t1: schema %s read, unchanged (no text)", version);
  assert_true(count_lines(log, again) >= 3);
  free(version);
  free(log);
}

/* Text lines: time, level, message, then key=value fields. */
static void test_text(void **state) {
  (void)state;
  tc_proc_t p;
  assert_int_equal(tc_proc_start_memory(&p, NULL), 0);
  tc_client_t *c = tc_client_new(p.target);
  create_tenant(c, "t-text", NULL);
  assert_int_equal(grpc_write_schema(c, "t-text", NULL), 0);
  tc_client_free(c);
  char *log = NULL;
  assert_int_equal(tc_proc_stop(&p, &log), 0);
  regex_t shape;
  assert_int_equal(regcomp(&shape,
                           "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                           "(debug|info |warn |error) [^ ]",
                           REG_EXTENDED | REG_NOSUB),
                   0);
  int calls = 0, started = 0;
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
    if (regexec(&shape, line, 0, NULL, 0) != 0) fail_msg("not a text log line: %s", line);
    calls += strstr(line,
                    " info  finished call protocol=grpc grpc.service=base.v1.Schema "
                    "grpc.method=Write grpc.method_type=unary tenant_id=t-text "
                    "peer.address=127.0.0.1:") != NULL &&
             strstr(line, " grpc.code=OK grpc.time_ms=") != NULL;
    started += strstr(line, " info  tuplecast started version=") != NULL &&
               strstr(line, " engine=memory ") && strstr(line, " config={\"server.host\":");
  }
  regfree(&shape);
  assert_int_equal(calls, 1);
  assert_int_equal(started, 1);
  free(log);
}

/* A warning repeating: the OIDC issuer unreachable, 40 retries 10 ms apart,
 * is one line and then one with the count of the 39 dropped; the server
 * refuses to start, and that line is JSON too. */
static void test_repeats(void **state) {
  (void)state;
  /* clang-format off */
  static const char *const args[] = {
      "serve", "--log-output", "json", "--database-engine", "memory",
      "--grpc-port", "0", "--http-port", "0", "--authn-enabled", "--authn-method", "oidc",
      "--authn-oidc-issuer", "http://127.0.0.1:9/", "--authn-oidc-audience", "a",
      "--authn-oidc-backoff-interval", "10ms", "--authn-oidc-backoff-frequency", "10ms",
      "--authn-oidc-backoff-max-retries", "40", NULL};
  /* clang-format on */
  char *log = NULL;
  assert_int_equal(tc_proc_run(args, &log), 2);
  json_t *lines = parse_lines(log), *line;
  size_t i, retries = 0, fatal = 0;
  json_array_foreach(lines, i, line) {
    const char *msg = str_of(line, "msg");
    if (strncmp(msg, "oidc: http://127.0.0.1:9/", 25) == 0) {
      assert_string_equal(str_of(line, "level"), "WARN");
      json_t *n = json_object_get(line, "repeated");
      assert_int_equal(json_integer_value(n), retries == 0 ? 0 : 39);
      assert_true(retries++ == 0 ? strstr(msg, "retry 1 of 40") : strstr(msg, "retry 40 of 40"));
    }
    fatal += strncmp(msg, "tuplecast: authn.oidc.issuer: ", 30) == 0;
  }
  assert_int_equal(retries, 2);
  assert_int_equal(fatal, 1);
  json_decref(lines);
  free(log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json),    cmocka_unit_test(test_debug),
      cmocka_unit_test(test_text),    cmocka_unit_test(test_schema_cached_once),
      cmocka_unit_test(test_repeats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
