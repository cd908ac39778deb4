/* The HTTP/JSON gateway end to end: the real tuplecast binary on loopback,
 * driven with the curl binary and with raw sockets.  Every route with a
 * realistic body and its exact JSON answer, every error status, CORS,
 * keep-alive and pipelining, limits, a slow client cut off, and Watch as
 * chunked NDJSON (live, resumed, disconnected, ended by shutdown).
 *
 * A second group runs the transport in-process (the loop on a thread of its
 * own, test handlers behind a fake method table) for what the binary does
 * not expose: max_connections, a short header timeout, a client leaving
 * mid-call, a call answered after the stop began, and a stream's pending and
 * on_sent accounting. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>

#include "base/v1/service.pb-c.h"
#include "call.h"
#include "http_client.h"
#include "http_server.h"
#include "server_proc.h"
#include "tuplecast/errors.h"

#define WAIT_MS 20000
#define BODY_LIMIT 65536 /* --grpc-max-message-size, which bounds HTTP bodies too */

typedef struct {
  char *dir;
  tc_proc_t proc;
  int port;
} fx_t;

typedef struct {
  int status;
  char *headers;
  char *body;
} resp_t;

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  char *s = malloc((size_t)n + 1);
  va_start(ap, f);
  vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  return s;
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  f->dir = tc_temp_dir();
  char limit[32];
  snprintf(limit, sizeof limit, "%d", BODY_LIMIT);
  const char *const extra[] = {"--grpc-max-message-size", limit, NULL};
  *state = f;
  if (tc_proc_start_memory(&f->proc, extra) != 0) return -1;
  f->port = tc_proc_http_port(&f->proc, WAIT_MS);
  return f->port > 0 ? 0 : -1;
}

static int teardown(void **state) {
  fx_t *f = *state;
  /* Graceful shutdown must exit 0 (sanitizers make leaks fail it). */
  int rc = tc_proc_teardown(&f->proc, f->dir);
  free(f);
  return rc;
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  char *data = NULL;
  size_t len = 0;
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
    data = realloc(data, len + n + 1);
    memcpy(data + len, buf, n);
    len += n;
  }
  fclose(fp);
  if (!data) data = calloc(1, 1);
  data[len] = '\0';
  return data;
}

static void spill(const char *path, const char *data, size_t len) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, len, fp), len);
  fclose(fp);
}

/* One request with the curl binary; body NULL sends none; extra: more curl
 * arguments (already shell-quoted) or NULL. */
static resp_t call(fx_t *f, const char *method, const char *path, const char *body,
                   const char *extra) {
  char *in = fmt("%s/req.json", f->dir), *out = fmt("%s/resp.body", f->dir),
       *hdr = fmt("%s/resp.hdr", f->dir);
  if (body) spill(in, body, strlen(body));
  char *cmd =
      fmt("curl -sS --max-time 30 -X %s -o '%s' -D '%s' -w '%%{http_code}' %s%s%s %s "
          "'http://127.0.0.1:%d%s'",
          method, out, hdr, body ? "-H 'Content-Type: application/json' --data-binary '@" : "",
          body ? in : "", body ? "'" : "", extra ? extra : "", f->port, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  resp_t r = {0};
  assert_int_equal(fscanf(p, "%d", &r.status), 1);
  assert_int_equal(pclose(p), 0);
  r.headers = slurp(hdr);
  r.body = slurp(out);
  free(cmd);
  free(in);
  free(out);
  free(hdr);
  return r;
}

static void resp_free(resp_t *r) {
  free(r->headers);
  free(r->body);
}

/* Asserts status and exact body, then frees r. */
static void expect(resp_t r, int status, const char *body) {
  if (r.status != status || strcmp(r.body, body) != 0)
    fprintf(stderr, "got %d %s\nwant %d %s\n", r.status, r.body, status, body);
  assert_int_equal(r.status, status);
  assert_string_equal(r.body, body);
  assert_non_null(strstr(r.headers, "Content-Type: application/json\r\n"));
  resp_free(&r);
}

static void expect_error(resp_t r, int status, int code, const char *message) {
  char *body = fmt("{\"code\":%d,\"message\":\"%s\",\"details\":[]}", code, message);
  expect(r, status, body);
  free(body);
}

/* The string at key of the JSON object body (a path of keys), malloc'd. */
static char *json_str(const char *body, const char *k1, const char *k2) {
  json_error_t err;
  json_t *v = json_loads(body, 0, &err);
  assert_non_null(v);
  json_t *x = json_object_get(v, k1);
  if (k2) x = json_object_get(x, k2);
  assert_true(json_is_string(x));
  char *s = strdup(json_string_value(x));
  json_decref(v);
  return s;
}

/* ---- raw sockets ---- */

/* Bytes received on a socket, kept across reads. */
typedef struct {
  int fd;
  char *data;
  size_t len;
  int eof;
} rx_t;

/* A connection to port on loopback that has sent req (unless NULL). */
static rx_t rx_open(int port, const char *req) {
  rx_t rx = {.fd = tt_http_connect(port)};
  if (req) tt_send_all(rx.fd, req, strlen(req));
  return rx;
}

static void rx_close(rx_t *rx) {
  close(rx->fd);
  free(rx->data);
}

/* Reads once (waiting up to WAIT_MS); 0 on data, 1 on EOF. */
static int rx_more(rx_t *rx) {
  struct pollfd pfd = {.fd = rx->fd, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
  char buf[65536];
  ssize_t n = read(rx->fd, buf, sizeof buf); /* sockets and pipes */
  if (n <= 0) {
    rx->eof = 1;
    return 1;
  }
  rx->data = realloc(rx->data, rx->len + (size_t)n + 1);
  memcpy(rx->data + rx->len, buf, (size_t)n);
  rx->len += (size_t)n;
  rx->data[rx->len] = '\0';
  return 0;
}

/* Waits until the buffer holds needle; returns the offset just after it. */
static size_t rx_until(rx_t *rx, const char *needle) {
  for (;;) {
    const char *at = rx->data ? strstr(rx->data, needle) : NULL;
    if (at) return (size_t)(at - rx->data) + strlen(needle);
    assert_int_equal(rx_more(rx), 0);
  }
}

/* Removes the first n bytes. */
static void rx_drop(rx_t *rx, size_t n) {
  memmove(rx->data, rx->data + n, rx->len - n + 1);
  rx->len -= n;
}

/* One Content-Length response: its head ("HTTP/1.1 ...\r\n...\r\n\r\n",
 * malloc'd) in *head and its body returned (malloc'd). */
static char *rx_response(rx_t *rx, char **head) {
  size_t h = rx_until(rx, "\r\n\r\n");
  *head = strndup(rx->data, h);
  const char *cl = strstr(*head, "Content-Length: ");
  assert_non_null(cl);
  size_t len = (size_t)atol(cl + 16);
  while (rx->len < h + len) assert_int_equal(rx_more(rx), 0);
  char *body = strndup(rx->data + h, len);
  rx_drop(rx, h + len);
  return body;
}

/* Reads until the peer closes. */
static void rx_eof(rx_t *rx) {
  while (!rx_more(rx)) {
  }
}

/* One chunk of a chunked body: its data (malloc'd), "" for the last chunk. */
static char *rx_chunk(rx_t *rx) {
  size_t line = rx_until(rx, "\r\n");
  size_t len = strtoul(rx->data, NULL, 16);
  while (rx->len < line + len + 2) assert_int_equal(rx_more(rx), 0);
  char *data = strndup(rx->data + line, len);
  assert_memory_equal(rx->data + line + len, "\r\n", 2);
  rx_drop(rx, line + len + 2);
  return data;
}

/* ---- the routes ---- */

static const char schema_json[] =
    "{\"schema\":\"entity user {}\\n"
    "entity organization {\\n  relation admin @user\\n  relation member @user @organization#admin\\n"
    "  attribute ip_range string[]\\n  permission view = admin or member\\n}\\n"
    "entity repository {\\n  relation parent @organization\\n  relation owner @user\\n"
    "  attribute is_public boolean\\n  permission edit = parent.admin or owner\\n"
    "  permission read = is_public or edit\\n}\\n\"}";

static const char tuple_alice[] =
    "{\"entity\":{\"type\":\"organization\",\"id\":\"o1\"},\"relation\":\"admin\","
    "\"subject\":{\"type\":\"user\",\"id\":\"alice\",\"relation\":\"\"}}";
static const char tuple_bob[] =
    "{\"entity\":{\"type\":\"repository\",\"id\":\"r1\"},\"relation\":\"owner\","
    "\"subject\":{\"type\":\"user\",\"id\":\"bob\",\"relation\":\"\"}}";
static const char attr_public[] =
    "{\"entity\":{\"type\":\"repository\",\"id\":\"r1\"},\"attribute\":\"is_public\","
    "\"value\":{\"@type\":\"type.googleapis.com/base.v1.BooleanValue\",\"data\":true}}";

/* Asserts a {"snap_token":"…"} answer; returns the token. */
static char *expect_token(resp_t r) {
  assert_int_equal(r.status, 200);
  char *tok = json_str(r.body, "snap_token", NULL);
  assert_true(*tok);
  char *want = fmt("{\"snap_token\":\"%s\"}", tok);
  expect(r, 200, want);
  free(want);
  return tok;
}

static char *write_schema(fx_t *f, const char *tenant) {
  char *path = fmt("/v1/tenants/%s/schemas/write", tenant);
  resp_t r = call(f, "POST", path, schema_json, NULL);
  free(path);
  assert_int_equal(r.status, 200);
  char *v = json_str(r.body, "schema_version", NULL);
  char *want = fmt("{\"schema_version\":\"%s\"}", v);
  expect(r, 200, want);
  free(want);
  return v;
}

static void test_health_and_tenancy(void **state) {
  fx_t *f = *state;
  expect(call(f, "GET", "/healthz", NULL, NULL), 200, "{\"status\":\"SERVING\"}");

  resp_t r = call(f, "POST", "/v1/tenants/create", "{\"id\":\"acme\",\"name\":\"Acme Inc\"}", NULL);
  assert_int_equal(r.status, 200);
  char *at = json_str(r.body, "tenant", "created_at");
  assert_int_equal(at[strlen(at) - 1], 'Z');
  char *want =
      fmt("{\"tenant\":{\"id\":\"acme\",\"name\":\"Acme Inc\",\"created_at\":\"%s\"}}", at);
  expect(r, 200, want);
  free(want);
  expect_error(call(f, "POST", "/v1/tenants/create", "{\"id\":\"acme\",\"name\":\"x\"}", NULL), 400,
               3, "ERROR_CODE_UNIQUE_CONSTRAINT");

  /* t1 is seeded; page through one at a time: acme, then t1. */
  r = call(f, "POST", "/v1/tenants/list", "{\"page_size\":1}", NULL);
  assert_int_equal(r.status, 200);
  char *cont = json_str(r.body, "continuous_token", NULL);
  assert_true(*cont);
  want =
      fmt("{\"tenants\":[{\"id\":\"acme\",\"name\":\"Acme Inc\",\"created_at\":\"%s\"}],"
          "\"continuous_token\":\"%s\"}",
          at, cont);
  expect(r, 200, want);
  free(want);
  char *body = fmt("{\"page_size\":1,\"continuous_token\":\"%s\"}", cont);
  r = call(f, "POST", "/v1/tenants/list", body, NULL);
  free(body);
  free(cont);
  assert_int_equal(r.status, 200);
  json_error_t err;
  json_t *doc = json_loads(r.body, 0, &err);
  json_t *ts = json_object_get(doc, "tenants");
  assert_int_equal(json_array_size(ts), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(ts, 0), "id")), "t1");
  assert_string_equal(json_string_value(json_object_get(doc, "continuous_token")), "");
  json_decref(doc);
  resp_free(&r);

  /* DELETE has no body; the id is the path's. */
  expect(call(f, "DELETE", "/v1/tenants/acme", NULL, NULL), 200, "{\"tenant_id\":\"acme\"}");
  expect_error(call(f, "DELETE", "/v1/tenants/acme", NULL, NULL), 404, 5, "ERROR_CODE_NOT_FOUND");
  /* As grpc-gateway, a path parameter may be empty: Tenancy.Delete of "". */
  expect_error(call(f, "DELETE", "/v1/tenants/", NULL, NULL), 404, 5, "ERROR_CODE_NOT_FOUND");
  expect_error(call(f, "POST", "/v1/tenants/", "{}", NULL), 501, 12, "Method Not Allowed");
  expect_error(call(f, "DELETE", "/v1/tenants//", NULL, NULL), 404, 5, "Not Found");
  r = call(f, "POST", "/v1/tenants//schemas/list", "{}", NULL);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body,
                         "{\"code\":3,\"message\":\"invalid SchemaListRequest.TenantId: "
                         "value does not match regex pattern"));
  resp_free(&r);
  free(at);
}

#define PARTIAL_WRITE "/v1/tenants/t1/schemas/partial-write"

/* Schema.PartialWrite on t1 holding schema_json (version v).  The answers
 * (status, code, message) are those Permify v1.7.3 gave to the same
 * requests; so is the model read back. */
static void check_partial_write(fx_t *f, const char *v) {
  resp_t r = call(f, "PATCH", PARTIAL_WRITE,
                  "{\"metadata\":{},\"partials\":{\"repository\":{"
                  "\"write\":[\"relation reader @user\"],"
                  "\"update\":[\"permission read = is_public or edit or reader\"]}}}",
                  NULL);
  assert_int_equal(r.status, 200);
  char *nv = json_str(r.body, "schema_version", NULL);
  assert_int_equal(strlen(nv), 20);
  assert_string_not_equal(nv, v);
  resp_free(&r);
  r = call(f, "POST", "/v1/tenants/t1/schemas/read", "{\"metadata\":{}}", NULL);
  assert_int_equal(r.status, 200);
  json_error_t err;
  json_t *doc = json_loads(r.body, 0, &err);
  json_t *repo = json_object_get(
      json_object_get(json_object_get(doc, "schema"), "entity_definitions"), "repository");
  json_t *refs = json_object_get(repo, "references");
  assert_string_equal(json_string_value(json_object_get(refs, "reader")), "REFERENCE_RELATION");
  assert_int_equal(json_object_size(refs), 6);
  json_t *read = json_object_get(json_object_get(repo, "permissions"), "read");
  json_t *top = json_object_get(json_object_get(read, "child"), "rewrite");
  json_t *last = json_array_get(json_object_get(top, "children"), 1);
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(last, "leaf"), "computed_user_set"), "relation")),
      "reader");
  json_decref(doc);
  resp_free(&r);
  free(nv);

  expect_error(call(f, "PATCH", PARTIAL_WRITE,
                    "{\"metadata\":{},\"partials\":{\"nosuch\":{\"delete\":[\"x\"]}}}", NULL),
               404, 5, "ERROR_CODE_ENTITY_STATEMENT_NOT_FOUND");
  expect_error(call(f, "PATCH", PARTIAL_WRITE,
                    "{\"metadata\":{},\"partials\":{\"repository\":{\"write\":["
                    "\"relation owner @user\"]}}}",
                    NULL),
               400, 3, "ERROR_CODE_ALREADY_EXIST");
  expect_error(call(f, "PATCH", PARTIAL_WRITE, "{\"partials\":{}}", NULL), 400, 3,
               "invalid SchemaPartialWriteRequest.Metadata: value is required");
  expect_error(call(f, "PATCH", PARTIAL_WRITE,
                    "{\"metadata\":{},\"partials\":{\"organization\":{\"delete\":["
                    "\"admin\"]}}}",
                    NULL),
               500, 13, "2:26: relation reference not found in entity references");
}

static void test_schema_routes(void **state) {
  fx_t *f = *state;
  expect_error(call(f, "POST", "/v1/tenants/t1/schemas/read",
                    "{\"metadata\":{\"schema_version\":\"\"}}", NULL),
               404, 5, "ERROR_CODE_SCHEMA_NOT_FOUND");
  expect_error(call(f, "POST", "/v1/tenants/t1/schemas/list", "{}", NULL), 404, 5,
               "ERROR_CODE_SCHEMA_NOT_FOUND");
  expect_error(call(f, "PATCH", PARTIAL_WRITE, "{\"metadata\":{},\"partials\":{}}", NULL), 404, 5,
               "ERROR_CODE_SCHEMA_NOT_FOUND");
  char *v = write_schema(f, "t1");
  resp_t r = call(f, "POST", "/v1/tenants/t1/schemas/list", "{}", NULL);
  assert_int_equal(r.status, 200);
  char *at = strstr(r.body, "\"created_at\":\"");
  assert_non_null(at);
  char *created = strndup(at + 14, strcspn(at + 14, "\""));
  char *want =
      fmt("{\"head\":\"%s\",\"schemas\":[{\"version\":\"%s\",\"created_at\":\"%s\"}],"
          "\"continuous_token\":\"\"}",
          v, v, created);
  expect(r, 200, want);
  free(want);
  free(created);

  r = call(f, "POST", "/v1/tenants/t1/schemas/read", "{\"metadata\":{\"schema_version\":\"\"}}",
           NULL);
  assert_int_equal(r.status, 200);
  json_error_t err;
  json_t *doc = json_loads(r.body, 0, &err);
  json_t *ents = json_object_get(json_object_get(doc, "schema"), "entity_definitions");
  json_t *repo = json_object_get(ents, "repository");
  assert_string_equal(json_string_value(json_object_get(repo, "name")), "repository");
  assert_non_null(json_object_get(json_object_get(repo, "relations"), "owner"));
  assert_non_null(json_object_get(ents, "organization"));
  json_decref(doc);
  resp_free(&r);

  check_partial_write(f, v);
  /* Compile errors are free text: Internal, 500. */
  r = call(f, "POST", "/v1/tenants/t1/schemas/write",
           "{\"schema\":\"entity user {}\\nentity doc {\\n  relation owner @person\\n}\\n\"}",
           NULL);
  assert_int_equal(r.status, 500);
  assert_non_null(strstr(r.body, "{\"code\":13,\"message\":\"3:"));
  assert_non_null(strstr(r.body, "\",\"details\":[]}"));
  resp_free(&r);
  free(v);
}

static void test_data_routes(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  /* The path's tenant wins over the body's. */
  char *body =
      fmt("{\"tenant_id\":\"elsewhere\",\"metadata\":{\"schema_version\":\"\"},"
          "\"tuples\":[%s],\"attributes\":[%s]}",
          tuple_alice, attr_public);
  char *t1 = expect_token(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL));
  free(body);
  /* A value without @type is an empty Any, as Permify's gateway reads it. */
  expect_error(call(f, "POST", "/v1/tenants/t1/data/write",
                    "{\"metadata\":{},\"attributes\":[{\"entity\":{\"type\":\"repository\","
                    "\"id\":\"r1\"},\"attribute\":\"is_public\",\"value\":{\"data\":true}}]}",
                    NULL),
               404, 5, "ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH");
  body = fmt("{\"metadata\":{\"schema_version\":\"\"},\"tuples\":[%s]}", tuple_bob);
  char *t2 = expect_token(call(f, "POST", "/v1/tenants/t1/relationships/write", body, NULL));
  free(body);

  body =
      fmt("{\"metadata\":{\"snap_token\":\"%s\"},\"filter\":{\"entity\":{\"type\":"
          "\"organization\",\"ids\":[\"o1\"]}},\"page_size\":10}",
          t2);
  char *want = fmt("{\"tuples\":[%s],\"continuous_token\":\"\"}", tuple_alice);
  expect(call(f, "POST", "/v1/tenants/t1/data/relationships/read", body, NULL), 200, want);
  free(want);
  free(body);
  want = fmt("{\"attributes\":[%s],\"continuous_token\":\"\"}", attr_public);
  expect(call(f, "POST", "/v1/tenants/t1/data/attributes/read",
              "{\"metadata\":{\"snap_token\":\"\"},\"filter\":{\"entity\":{\"type\":\"repository\","
              "\"ids\":[\"r1\"]},\"attributes\":[\"is_public\"]}}",
              NULL),
         200, want);
  free(want);

  char *t3 = expect_token(
      call(f, "POST", "/v1/tenants/t1/relationships/delete",
           "{\"filter\":{\"entity\":{\"type\":\"repository\",\"ids\":[\"r1\"]}}}", NULL));
  char *t4 = expect_token(call(f, "POST", "/v1/tenants/t1/data/delete",
                               "{\"tuple_filter\":{\"entity\":{\"type\":\"organization\","
                               "\"ids\":[\"o1\"]}},\"attribute_filter\":{\"entity\":{\"type\":"
                               "\"repository\",\"ids\":[\"r1\"]}}}",
                               NULL));
  expect(call(f, "POST", "/v1/tenants/t1/data/relationships/read",
              "{\"metadata\":{},\"filter\":{\"entity\":{\"type\":\"organization\"}}}", NULL),
         200, "{\"tuples\":[],\"continuous_token\":\"\"}");
  expect(call(f, "POST", "/v1/tenants/t1/data/attributes/read",
              "{\"metadata\":{},\"filter\":{\"entity\":{\"type\":\"repository\"}}}", NULL),
         200, "{\"attributes\":[],\"continuous_token\":\"\"}");

  expect_error(call(f, "POST", "/v1/tenants/t1/data/run-bundle", "{\"name\":\"b\"}", NULL), 404, 5,
               "ERROR_CODE_BUNDLE_NOT_FOUND");
  expect_error(call(f, "POST", "/v1/tenants/t1/permissions/check", "{}", NULL), 501, 12,
               "unknown method /base.v1.Permission/Check");
  free(t1);
  free(t2);
  free(t3);
  free(t4);
}

static void test_errors(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  resp_t r = call(f, "POST", "/v1/tenants/t1/data/write", "{\"tuples\": [", NULL);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "{\"code\":3,\"message\":\""));
  resp_free(&r);
  r = call(f, "POST", "/v1/tenants/t1/data/write", "{\"tuples\":\"nope\"}", NULL);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "{\"code\":3,\"message\":\""));
  resp_free(&r);
  expect_error(call(f, "POST", "/v1/nothing/here", "{}", NULL), 404, 5, "Not Found");
  expect_error(call(f, "POST", "/v1/tenants/t1/data/write/", "{}", NULL), 404, 5, "Not Found");
  expect_error(call(f, "GET", "/v1/tenants/t1/data/write", NULL, NULL), 501, 12,
               "Method Not Allowed");
  expect_error(call(f, "POST", "/v1/tenants/t1", "{}", NULL), 501, 12, "Method Not Allowed");
  char *body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_alice);
  expect_error(call(f, "POST", "/v1/tenants/ghost/data/write", body, NULL), 404, 5,
               "ERROR_CODE_TENANT_NOT_FOUND");
  free(body);
  body =
      fmt("{\"metadata\":{},\"tuples\":[{\"entity\":{\"type\":\"team\",\"id\":\"x\"},"
          "\"relation\":\"admin\",\"subject\":{\"type\":\"user\",\"id\":\"u\"}}]}");
  expect_error(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL), 404, 5,
               "ERROR_CODE_SCHEMA_NOT_FOUND");
  free(body);
  /* PGV validation: the same message as over gRPC. */
  r = call(f, "POST", "/v1/tenants/t1/relationships/write", "{\"metadata\":{}}", NULL);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body,
                         "{\"code\":3,\"message\":\"invalid RelationshipWriteRequest.Tuples: "
                         "value must contain at least 1 item(s)"));
  resp_free(&r);
  expect_error(call(f, "POST", "/v1/tenants/t1/data/relationships/read",
                    "{\"metadata\":{},\"filter\":{},\"continuous_token\":\"!!notbase64\"}", NULL),
               400, 3, "ERROR_CODE_INVALID_CONTINUOUS_TOKEN");
  /* A percent-encoded tenant id is decoded. */
  expect_error(call(f, "POST", "/v1/tenants/gh%6Fst/schemas/list", "{}", NULL), 404, 5,
               "ERROR_CODE_TENANT_NOT_FOUND");

  /* 413: more body than allowed; the connection is closed after it. */
  size_t big = BODY_LIMIT + 100;
  char *huge = malloc(big + 1);
  memset(huge, ' ', big);
  memcpy(huge, "{\"tuples\":[]", 12);
  huge[big - 1] = '}';
  huge[big] = '\0';
  r = call(f, "POST", "/v1/tenants/t1/data/write", huge, NULL);
  free(huge);
  assert_int_equal(r.status, 413);
  assert_string_equal(r.body, "{\"code\":8,\"message\":\"request body too large\",\"details\":[]}");
  assert_non_null(strstr(r.headers, "Connection: close\r\n"));
  resp_free(&r);

  /* 431: header section over http-parser's 80 KiB. */
  char *fill = malloc(90001);
  memset(fill, 'a', 90000);
  fill[90000] = '\0';
  char *req = fmt("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fill: %s\r\n\r\n", fill);
  free(fill);
  rx_t rx = rx_open(f->port, req);
  free(req);
  char *head;
  body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  assert_string_equal(body,
                      "{\"code\":8,\"message\":\"request header fields too large\","
                      "\"details\":[]}");
  free(head);
  free(body);
  rx_close(&rx);

  /* Malformed request line: 400, then closed. */
  rx = rx_open(f->port, "GARBAGE / HTTP/1.1\r\n\r\n");
  body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "HTTP/1.1 400 Bad Request\r\n"));
  assert_non_null(strstr(head, "Connection: close\r\n"));
  assert_non_null(strstr(body, "{\"code\":3,\"message\":\"malformed HTTP request: "));
  rx_eof(&rx);
  free(head);
  free(body);
  rx_close(&rx);

  /* A request cut short by the client: closed, and the server lives on. */
  rx = rx_open(f->port, "POST /v1/tenants/list HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"pa");
  rx_close(&rx);
  expect(call(f, "GET", "/healthz", NULL, NULL), 200, "{\"status\":\"SERVING\"}");
}

/* Asserts a 400 {"code":3,"message":message,...} answer, then frees r. */
static void expect_invalid(resp_t r, const char *message) {
  json_error_t err;
  json_t *doc = json_loads(r.body, 0, &err);
  const char *got = doc ? json_string_value(json_object_get(doc, "message")) : NULL;
  if (r.status != 400 || !got || strcmp(got, message) != 0)
    fprintf(stderr, "got %d %s\nwant 400 %s\n", r.status, r.body, message);
  assert_int_equal(r.status, 400);
  assert_int_equal(json_integer_value(json_object_get(doc, "code")), 3);
  assert_non_null(got);
  assert_string_equal(got, message);
  json_decref(doc);
  resp_free(&r);
}

#define ID_RULE "value does not match regex pattern \"^([a-zA-Z0-9_\\\\-@\\\\.:+]{1,128}|\\\\*)$\""
#define NAME_RULE "value does not match regex pattern \"^[a-zA-Z_]{1,64}$\""
#define EMBEDDED ": embedded message failed validation | caused by: "

static const char bundle_b1[] =
    "{\"name\":\"b1\",\"arguments\":[\"org\",\"user\"],\"operations\":[{"
    "\"relationships_write\":[\"organization:{{.org}}#member@user:{{.user}}\"],"
    "\"relationships_delete\":[],"
    "\"attributes_write\":[\"repository:{{.org}}$is_public|boolean:true\"],"
    "\"attributes_delete\":[]}]}";

/* Bundle.Write / Read / Delete as Permify answers them: every field of the
 * stored bundle back, 404 BUNDLE_NOT_FOUND for a name not stored, a delete
 * of an absent name answered with the name (Permify's Postgres store). */
static void test_bundle_routes(void **state) {
  fx_t *f = *state;
  char *body = fmt("{\"bundles\":[%s]}", bundle_b1);
  expect(call(f, "POST", "/v1/tenants/t1/bundle/write", body, NULL), 200, "{\"names\":[\"b1\"]}");
  free(body);
  char *want = fmt("{\"bundle\":%s}", bundle_b1);
  expect(call(f, "POST", "/v1/tenants/t1/bundle/read", "{\"name\":\"b1\"}", NULL), 200, want);
  free(want);
  expect_error(call(f, "POST", "/v1/tenants/t1/bundle/read", "{\"name\":\"b2\"}", NULL), 404, 5,
               "ERROR_CODE_BUNDLE_NOT_FOUND");
  expect_error(call(f, "POST", "/v1/tenants/t2/bundle/read", "{\"name\":\"b1\"}", NULL), 404, 5,
               "ERROR_CODE_BUNDLE_NOT_FOUND");
  expect_error(call(f, "POST", "/v1/tenants/t1/bundle/read", "{}", NULL), 404, 5,
               "ERROR_CODE_BUNDLE_NOT_FOUND");
  expect_error(call(f, "POST", "/v1/tenants/t1/bundle/write",
                    "{\"bundles\":[{\"name\":\"d\",\"operations\":[{\"attributes_delete\":"
                    "[\"x\",\"x\"]}]}]}",
                    NULL),
               400, 3, "ERROR_CODE_ALREADY_EXIST");
  expect_invalid(call(f, "POST", "/v1/tenants//bundle/delete", "{\"name\":\"b1\"}", NULL),
                 "invalid BundleDeleteRequest.TenantId: " ID_RULE);
  /* A name given twice in one write: the last bundle of that name is kept. */
  expect(call(f, "POST", "/v1/tenants/t1/bundle/write",
              "{\"bundles\":[{\"name\":\"b3\",\"arguments\":[\"first\"]},{\"name\":\"b4\"},"
              "{\"name\":\"b3\",\"arguments\":[\"last\"]}]}",
              NULL),
         200, "{\"names\":[\"b3\",\"b4\",\"b3\"]}");
  expect(call(f, "POST", "/v1/tenants/t1/bundle/read", "{\"name\":\"b3\"}", NULL), 200,
         "{\"bundle\":{\"name\":\"b3\",\"arguments\":[\"last\"],\"operations\":[]}}");
  expect(call(f, "POST", "/v1/tenants/t1/bundle/delete", "{\"name\":\"b9\"}", NULL), 200,
         "{\"name\":\"b9\"}");
  expect(call(f, "POST", "/v1/tenants/t1/bundle/delete", "{\"name\":\"b1\"}", NULL), 200,
         "{\"name\":\"b1\"}");
  expect_error(call(f, "POST", "/v1/tenants/t1/bundle/read", "{\"name\":\"b1\"}", NULL), 404, 5,
               "ERROR_CODE_BUNDLE_NOT_FOUND");
}

/* Data.RunBundle over HTTP: a run's net effect is each key's last step (a
 * tuple written then deleted is gone, deleted then written is there). */
static void test_run_bundle_route(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  expect(call(f, "POST", "/v1/tenants/t1/bundle/write",
              "{\"bundles\":[{\"name\":\"flip\",\"arguments\":[\"u\"],\"operations\":["
              "{\"relationships_write\":[\"organization:o1#member@user:{{.u}}\"],"
              "\"relationships_delete\":[\"organization:o1#admin@user:{{.u}}\"]},"
              "{\"relationships_write\":[\"organization:o1#admin@user:{{.u}}\"],"
              "\"relationships_delete\":[\"organization:o1#member@user:{{.u}}\"]}]}]}",
              NULL),
         200, "{\"names\":[\"flip\"]}");
  expect_error(call(f, "POST", "/v1/tenants/t1/data/run-bundle", "{\"name\":\"flip\"}", NULL), 400,
               3, "ERROR_CODE_MISSING_ARGUMENT");
  char *t1 = expect_token(call(f, "POST", "/v1/tenants/t1/data/run-bundle",
                               "{\"name\":\"flip\",\"arguments\":{\"u\":\"alice\"}}", NULL));
  char *body =
      fmt("{\"metadata\":{\"snap_token\":\"%s\"},\"filter\":{\"entity\":{\"type\":"
          "\"organization\"}}}",
          t1);
  expect(call(f, "POST", "/v1/tenants/t1/data/relationships/read", body, NULL), 200,
         "{\"tuples\":[{\"entity\":{\"type\":\"organization\",\"id\":\"o1\"},\"relation\":"
         "\"admin\",\"subject\":{\"type\":\"user\",\"id\":\"alice\",\"relation\":\"\"}}],"
         "\"continuous_token\":\"\"}");
  free(body);
  free(t1);
}

/* Tenant ids Tenancy.List returns (one page), as its JSON body. */
static char *tenants(fx_t *f) {
  resp_t r = call(f, "POST", "/v1/tenants/list", "{\"page_size\":100}", NULL);
  assert_int_equal(r.status, 200);
  free(r.headers);
  return r.body;
}

/* A NUL byte never cuts a string to another identifier: a percent-decoded
 * path parameter and a JSON "\u0000" are refused naming the field, with the
 * answer gRPC gives for the same bytes (test_strings). */
static void test_hostile_strings(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  static const struct {
    const char *method, *route, *message;
  } tenant_routes[] = {
      {"POST", "data/write", "DataWriteRequest"},
      {"POST", "relationships/write", "RelationshipWriteRequest"},
      {"POST", "data/relationships/read", "RelationshipReadRequest"},
      {"POST", "data/attributes/read", "AttributeReadRequest"},
      {"POST", "data/delete", "DataDeleteRequest"},
      {"POST", "relationships/delete", "RelationshipDeleteRequest"},
      {"POST", "watch", "WatchRequest"},
      {"POST", "schemas/write", "SchemaWriteRequest"},
      {"POST", "schemas/read", "SchemaReadRequest"},
      {"POST", "schemas/list", "SchemaListRequest"},
  };
  char *body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_bob);
  for (size_t i = 0; i < sizeof tenant_routes / sizeof tenant_routes[0]; i++) {
    char *path = fmt("/v1/tenants/t1%%00evil/%s", tenant_routes[i].route);
    char *want = fmt("invalid %s.TenantId: " ID_RULE, tenant_routes[i].message);
    expect_invalid(call(f, tenant_routes[i].method, path, body, NULL), want);
    free(want);
    free(path);
  }
  /* Invalid UTF-8 in a path parameter: Go's decoder text, as over gRPC. */
  expect_invalid(call(f, "POST", "/v1/tenants/t1%FF/data/write", body, NULL),
                 "proto: field base.v1.DataWriteRequest.tenant_id contains invalid UTF-8");
  expect_invalid(call(f, "DELETE", "/v1/tenants/t1%C3", NULL, NULL),
                 "proto: field base.v1.TenantDeleteRequest.id contains invalid UTF-8");
  /* Nothing went to t1, which the write above would have been cut to. */
  static const char read_t1[] =
      "{\"metadata\":{},\"filter\":{\"entity\":{\"type\":\"repository\"}}}";
  expect(call(f, "POST", "/v1/tenants/t1/data/relationships/read", read_t1, NULL), 200,
         "{\"tuples\":[],\"continuous_token\":\"\"}");

  /* Tenancy: Create's id and name in JSON, Delete's id in the path. */
  expect_invalid(
      call(f, "POST", "/v1/tenants/create", "{\"id\":\"nultest\\u0000evil\",\"name\":\"n\"}", NULL),
      "invalid TenantCreateRequest.Id: value must not contain a NUL byte");
  expect_invalid(
      call(f, "POST", "/v1/tenants/create", "{\"id\":\"nultest\",\"name\":\"n\\u0000\"}", NULL),
      "invalid TenantCreateRequest.Name: value must not contain a NUL byte");
  char *list = tenants(f);
  assert_null(strstr(list, "nultest"));
  free(list);
  resp_t r = call(f, "POST", "/v1/tenants/create", "{\"id\":\"nultest\",\"name\":\"n\"}", NULL);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  expect_invalid(call(f, "DELETE", "/v1/tenants/nultest%00zzz", NULL, NULL),
                 "invalid TenantDeleteRequest.Id: value must not contain a NUL byte");
  list = tenants(f);
  assert_non_null(strstr(list, "{\"id\":\"nultest\""));
  free(list);

  /* Every identifier inside a tuple, in JSON. */
  static const struct {
    const char *tuple, *message;
  } fields[] = {
      {"{\"entity\":{\"type\":\"repository\",\"id\":\"r1\\u0000x\"},\"relation\":\"owner\","
       "\"subject\":{\"type\":\"user\",\"id\":\"bob\"}}",
       "Tuple.Entity" EMBEDDED "invalid Entity.Id: " ID_RULE},
      {"{\"entity\":{\"type\":\"repository\\u0000\",\"id\":\"r1\"},\"relation\":\"owner\","
       "\"subject\":{\"type\":\"user\",\"id\":\"bob\"}}",
       "Tuple.Entity" EMBEDDED "invalid Entity.Type: " NAME_RULE},
      {"{\"entity\":{\"type\":\"repository\",\"id\":\"r1\"},\"relation\":\"owner\\u0000x\","
       "\"subject\":{\"type\":\"user\",\"id\":\"bob\"}}",
       "Tuple.Relation: " NAME_RULE},
      {"{\"entity\":{\"type\":\"repository\",\"id\":\"r1\"},\"relation\":\"owner\","
       "\"subject\":{\"type\":\"user\",\"id\":\"bob\\u0000x\"}}",
       "Tuple.Subject" EMBEDDED "invalid Subject.Id: " ID_RULE},
      {"{\"entity\":{\"type\":\"repository\",\"id\":\"r1\"},\"relation\":\"parent\","
       "\"subject\":{\"type\":\"organization\",\"id\":\"o1\",\"relation\":\"admin\\u0000x\"}}",
       "Tuple.Subject" EMBEDDED "invalid Subject.Relation: " NAME_RULE},
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    char *tb = fmt("{\"metadata\":{},\"tuples\":[%s,%s]}", tuple_bob, fields[i].tuple);
    char *want = fmt("invalid DataWriteRequest.Tuples[1]" EMBEDDED "invalid %s", fields[i].message);
    expect_invalid(call(f, "POST", "/v1/tenants/t1/data/write", tb, NULL), want);
    free(want);
    free(tb);
  }
  /* A string inside an Any (cut, this would be a valid write of "a"). */
  expect_invalid(call(f, "POST", "/v1/tenants/t1/data/write",
                      "{\"metadata\":{},\"attributes\":[{\"entity\":{\"type\":\"organization\","
                      "\"id\":\"o1\"},\"attribute\":\"ip_range\",\"value\":{\"@type\":"
                      "\"type.googleapis.com/base.v1.StringArrayValue\",\"data\":[\"10.0.0.0/8\","
                      "\"a\\u0000b\"]}}]}",
                      NULL),
                 "invalid DataWriteRequest.Attributes[0]" EMBEDDED
                 "invalid Attribute.Value" EMBEDDED
                 "invalid StringArrayValue.Data[1]: value must not contain a NUL byte");
  /* A string no rule covers, and one that is not a string field. */
  expect_invalid(call(f, "POST", "/v1/tenants/t1/schemas/read",
                      "{\"metadata\":{\"schema_version\":\"v\\u0000\"}}", NULL),
                 "invalid SchemaReadRequest.Metadata" EMBEDDED
                 "invalid SchemaReadRequestMetadata.SchemaVersion: value must not contain a NUL "
                 "byte");
  expect_invalid(call(f, "POST", "/v1/tenants/t1/data/relationships/read",
                      "{\"metadata\":{},\"filter\":{},\"page_size\":\"5\\u0000\"}", NULL),
                 "page_size: a NUL byte is not allowed here");
  expect(call(f, "POST", "/v1/tenants/t1/data/relationships/read", read_t1, NULL), 200,
         "{\"tuples\":[],\"continuous_token\":\"\"}");
  free(body);
}

static void test_cors(void **state) {
  fx_t *f = *state;
  resp_t r = call(f, "POST", "/v1/tenants/list", "{}", "-H 'Origin: https://app.example'");
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.headers, "Access-Control-Allow-Origin: https://app.example\r\n"));
  assert_non_null(strstr(r.headers, "Access-Control-Allow-Credentials: true\r\n"));
  assert_non_null(strstr(r.headers, "Vary: Origin\r\n"));
  resp_free(&r);
  r = call(f, "POST", "/v1/tenants/list", "{}", NULL);
  assert_null(strstr(r.headers, "Access-Control-Allow-Origin"));
  resp_free(&r);
  /* Errors carry the headers too. */
  r = call(f, "POST", "/v1/nope", "{}", "-H 'Origin: https://app.example'");
  assert_int_equal(r.status, 404);
  assert_non_null(strstr(r.headers, "Access-Control-Allow-Origin: https://app.example\r\n"));
  resp_free(&r);

  r = call(f, "OPTIONS", "/v1/tenants/t1/data/write", NULL,
           "-H 'Origin: https://app.example' -H 'Access-Control-Request-Method: post' "
           "-H 'Access-Control-Request-Headers: Authorization, Content-Type'");
  assert_int_equal(r.status, 204);
  assert_string_equal(r.body, "");
  assert_non_null(strstr(r.headers, "Access-Control-Allow-Origin: https://app.example\r\n"));
  assert_non_null(strstr(r.headers, "Access-Control-Allow-Methods: POST\r\n"));
  assert_non_null(
      strstr(r.headers, "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"));
  assert_non_null(strstr(r.headers, "Access-Control-Allow-Credentials: true\r\n"));
  resp_free(&r);
  /* A method rs/cors does not allow: no grant. */
  r = call(f, "OPTIONS", "/v1/tenants/t1/data/write", NULL,
           "-H 'Origin: https://app.example' -H 'Access-Control-Request-Method: TRACE'");
  assert_int_equal(r.status, 204);
  assert_null(strstr(r.headers, "Access-Control-Allow-Origin"));
  resp_free(&r);
  /* OPTIONS without the preflight header is routed: no such method. */
  expect_error(call(f, "OPTIONS", "/v1/tenants/t1/data/write", NULL, NULL), 501, 12,
               "Method Not Allowed");
}

static void test_keepalive_pipelining(void **state) {
  fx_t *f = *state;
  /* Three requests in one write, answered in order on one connection. */
  static const char three[] =
      "POST /v1/tenants/create HTTP/1.1\r\nHost: x\r\nContent-Length: 24\r\n\r\n"
      "{\"id\":\"p1\",\"name\":\"P1\"}\n"
      "POST /v1/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
      "DELETE /v1/tenants/p1 HTTP/1.1\r\nHost: x\r\n\r\n";
  rx_t rx = rx_open(f->port, three);
  char *head, *body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(body, "{\"tenant\":{\"id\":\"p1\",\"name\":\"P1\","));
  free(head);
  free(body);
  body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "HTTP/1.1 404 Not Found\r\n"));
  assert_null(strstr(head, "Connection: close"));
  assert_string_equal(body, "{\"code\":5,\"message\":\"Not Found\",\"details\":[]}");
  free(head);
  free(body);
  body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
  assert_string_equal(body, "{\"tenant_id\":\"p1\"}");
  free(head);
  free(body);
  /* The connection stays open for more; a chunked request body is read too. */
  static const char chunked[] =
      "POST /v1/tenants/list HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\n{\"p\r\n"
      "D\r\nage_size\":50}\r\n"
      "0\r\n\r\n";
  tt_send_all(rx.fd, chunked, strlen(chunked));
  body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(body, "{\"tenants\":[{\"id\":\"t1\",\"name\":\"example tenant\","));
  free(head);
  free(body);
  /* Connection: close is honoured. */
  static const char last[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  tt_send_all(rx.fd, last, strlen(last));
  body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "Connection: close\r\n"));
  assert_string_equal(body, "{\"status\":\"SERVING\"}");
  rx_eof(&rx);
  free(head);
  free(body);
  rx_close(&rx);
}

static void test_slow_header_cut_off(void **state) {
  fx_t *f = *state;
  rx_t rx = rx_open(f->port, "POST /v1/tenants/list HTTP/1.1\r\nHost: x\r\n");
  long long t0 = tc_now_ms();
  rx_eof(&rx); /* the server gives up on the headers and closes */
  assert_int_equal(rx.len, 0);
  assert_true(tc_now_ms() - t0 < WAIT_MS);
  rx_close(&rx);
  expect(call(f, "GET", "/healthz", NULL, NULL), 200, "{\"status\":\"SERVING\"}");
}

/* ---- watch ---- */

typedef struct {
  pid_t pid;
  rx_t rx;
} watcher_t;

/* `curl -N` on the watch route, its stdout on a pipe. */
static watcher_t watch_start(fx_t *f, const char *tenant, const char *body) {
  char *in = fmt("%s/watch-%s.json", f->dir, tenant);
  spill(in, body, strlen(body));
  char *url = fmt("http://127.0.0.1:%d/v1/tenants/%s/watch", f->port, tenant);
  char *data = fmt("@%s", in);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp("curl", "curl", "-sS", "-N", "-X", "POST", "--data-binary", data, url, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  free(in);
  free(url);
  free(data);
  return (watcher_t){.pid = pid, .rx = {.fd = fds[0]}};
}

/* The next NDJSON line (malloc'd, without its newline). */
static char *watch_line(watcher_t *w) {
  size_t n = rx_until(&w->rx, "\n");
  char *line = strndup(w->rx.data, n - 1);
  rx_drop(&w->rx, n);
  return line;
}

/* Kills curl (the client disconnects) and reaps it. */
static void watch_kill(watcher_t *w) {
  kill(w->pid, SIGKILL);
  waitpid(w->pid, NULL, 0);
  rx_close(&w->rx);
}

static char *change_line(const char *token, const char *op, const char *tuple) {
  return fmt(
      "{\"result\":{\"changes\":{\"snap_token\":\"%s\",\"data_changes\":[{\"operation\":"
      "\"%s\",\"tuple\":%s}]}}}",
      token, op, tuple);
}

static void test_watch(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  /* Errors before anything was sent are ordinary responses. */
  expect_error(call(f, "POST", "/v1/tenants/t1/watch", "{\"snap_token\":\"garbage\"}", NULL), 400,
               3,
               "snap token garbage is malformed: not a token this server issued; omit it to "
               "read at the latest revision");

  /* A checkpoint first, so the stream is known to be live before writing. */
  watcher_t w = watch_start(f, "t1", "{\"snap_token\":\"\",\"checkpoint_interval_seconds\":3600}");
  char *line = watch_line(&w);
  assert_non_null(strstr(line, "{\"result\":{\"changes\":{\"snap_token\":\""));
  assert_non_null(strstr(line, "\",\"data_changes\":[]}}}"));
  free(line);

  char *body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_alice);
  char *t1 = expect_token(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL));
  free(body);
  line = watch_line(&w);
  char *want = change_line(t1, "OPERATION_CREATE", tuple_alice);
  assert_string_equal(line, want);
  free(want);
  free(line);
  watch_kill(&w); /* disconnect mid-stream */

  /* Written while nobody watches; resuming from t1 delivers it, and only it. */
  body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_bob);
  char *t2 = expect_token(call(f, "POST", "/v1/tenants/t1/relationships/write", body, NULL));
  free(body);
  body = fmt("{\"snap_token\":\"%s\"}", t1);
  w = watch_start(f, "t1", body);
  free(body);
  line = watch_line(&w);
  want = change_line(t2, "OPERATION_CREATE", tuple_bob);
  assert_string_equal(line, want);
  free(want);
  free(line);
  char *t3 = expect_token(
      call(f, "POST", "/v1/tenants/t1/relationships/delete",
           "{\"filter\":{\"entity\":{\"type\":\"repository\",\"ids\":[\"r1\"]}}}", NULL));
  line = watch_line(&w);
  want = change_line(t3, "OPERATION_DELETE", tuple_bob);
  assert_string_equal(line, want);
  free(want);
  free(line);
  watch_kill(&w);
  expect(call(f, "GET", "/healthz", NULL, NULL), 200, "{\"status\":\"SERVING\"}");
  free(t1);
  free(t2);
  free(t3);
}

/* The stream's next line must be want (freed). */
static void expect_watch_line(watcher_t *w, char *want) {
  char *line = watch_line(w);
  assert_string_equal(line, want);
  free(want);
  free(line);
}

/* initial_state over HTTP: the tenant's rows as CREATE lines with an empty
 * snap_token, a line carrying the start position, then the changes. */
static void test_watch_initial_state(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  char *body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_alice);
  char *t1 = expect_token(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL));
  free(body);
  watcher_t w = watch_start(f, "t1", "{\"initial_state\":true}");
  expect_watch_line(&w, change_line("", "OPERATION_CREATE", tuple_alice));
  /* The head was t1's write: the end of the initial state carries it. */
  expect_watch_line(
      &w, fmt("{\"result\":{\"changes\":{\"snap_token\":\"%s\",\"data_changes\":[]}}}", t1));
  body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_bob);
  char *t2 = expect_token(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL));
  free(body);
  expect_watch_line(&w, change_line(t2, "OPERATION_CREATE", tuple_bob));
  watch_kill(&w);
  free(t1);
  free(t2);
}

/* A larger initial state over HTTP: pages of the backend become lines of at
 * most 1,000 changes, read as the client takes them. */
static void test_watch_initial_state_pages(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  char *last = NULL;
  for (int at = 0; at < 2500; at += 250) { /* bodies under the gateway's limit */
    size_t cap = 60000, len = 0;
    char *body = malloc(cap);
    len += (size_t)snprintf(body + len, cap - len, "{\"metadata\":{},\"tuples\":[");
    for (int i = at; i < at + 250; i++)
      len += (size_t)snprintf(body + len, cap - len,
                              "%s{\"entity\":{\"type\":\"repository\",\"id\":\"r%d\"},"
                              "\"relation\":\"owner\",\"subject\":{\"type\":\"user\","
                              "\"id\":\"u%d\"}}",
                              i == at ? "" : ",", i, i);
    snprintf(body + len, cap - len, "]}");
    free(last);
    last = expect_token(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL));
    free(body);
  }
  watcher_t w =
      watch_start(f, "t1", "{\"initial_state\":true,\"filter\":{\"relations\":[\"owner\"]}}");
  size_t lines = 0, creates = 0;
  char *end = fmt("{\"result\":{\"changes\":{\"snap_token\":\"%s\",\"data_changes\":[]}}}", last);
  for (;;) {
    char *line = watch_line(&w);
    if (!strcmp(line, end)) {
      free(line);
      break;
    }
    assert_non_null(strstr(line, "{\"result\":{\"changes\":{\"snap_token\":\"\","));
    for (const char *p = line; (p = strstr(p, "OPERATION_CREATE")); p++) creates++;
    lines++;
    free(line);
  }
  assert_int_equal(creates, 2500);
  assert_int_equal(lines, 3);
  watch_kill(&w);
  free(end);
  free(last);
}

/* include_schema_changes over HTTP: a schema write is a line of its own,
 * with the position after it and the new version (and no data changes);
 * a stream without the option gets no such line, and a Watch from that
 * position continues with the next write. */
static void test_watch_schema_line(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  watcher_t with = watch_start(
      f, "t1", "{\"include_schema_changes\":true,\"checkpoint_interval_seconds\":3600}");
  /* The first checkpoint: the stream is at the head (and curl has read its
   * body file, which the next watch_start rewrites). */
  const char *head = "{\"result\":{\"changes\":{\"snap_token\":\"";
  char *line = watch_line(&with);
  assert_int_equal(strncmp(line, head, strlen(head)), 0);
  free(line);
  char *body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_alice);
  char *t1 = expect_token(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL));
  free(body);
  expect_watch_line(&with, change_line(t1, "OPERATION_CREATE", tuple_alice));
  body = fmt("{\"snap_token\":\"%s\"}", t1);
  watcher_t without = watch_start(f, "t1", body);
  free(body);
  char *v2 = write_schema(f, "t1");
  body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_bob);
  char *t2 = expect_token(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL));
  free(body);
  line = watch_line(&with);
  assert_int_equal(strncmp(line, head, strlen(head)), 0);
  const char *tok = line + strlen(head);
  char *at_v2 = strndup(tok, strcspn(tok, "\""));
  assert_true(*at_v2 && strcmp(at_v2, t1) && strcmp(at_v2, t2));
  char *want = fmt("%s%s\",\"data_changes\":[]},\"schema_version\":\"%s\"}}", head, at_v2, v2);
  assert_string_equal(line, want);
  free(want);
  free(line);
  expect_watch_line(&with, change_line(t2, "OPERATION_CREATE", tuple_bob));
  expect_watch_line(&without, change_line(t2, "OPERATION_CREATE", tuple_bob));
  watch_kill(&with);
  watch_kill(&without);
  body = fmt("{\"snap_token\":\"%s\"}", at_v2);
  watcher_t from = watch_start(f, "t1", body);
  free(body);
  expect_watch_line(&from, change_line(t2, "OPERATION_CREATE", tuple_bob));
  watch_kill(&from);
  free(at_v2);
  free(v2);
  free(t1);
  free(t2);
}

/* Shutdown ends a stream with an error line and the terminating chunk. */
static void test_watch_ended_by_shutdown(void **state) {
  fx_t *f = *state;
  static const char req[] =
      "POST /v1/tenants/t1/watch HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n"
      "{\"checkpoint_interval_seconds\":3600}    ";
  rx_t rx = rx_open(f->port, req);
  size_t h = rx_until(&rx, "\r\n\r\n");
  char *head = strndup(rx.data, h);
  rx_drop(&rx, h);
  assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(head, "Content-Type: application/x-ndjson\r\n"));
  assert_non_null(strstr(head, "Transfer-Encoding: chunked\r\n"));
  free(head);
  char *chunk = rx_chunk(&rx);
  assert_non_null(strstr(chunk, "{\"result\":{\"changes\":{\"snap_token\":\""));
  assert_int_equal(chunk[strlen(chunk) - 1], '\n');
  free(chunk);

  assert_int_equal(tc_proc_stop(&f->proc, NULL), 0);
  chunk = rx_chunk(&rx);
  assert_non_null(strstr(chunk, "{\"error\":{\"code\":14,\"message\":\""));
  assert_non_null(strstr(chunk, "\",\"details\":[]}}\n"));
  free(chunk);
  chunk = rx_chunk(&rx);
  assert_string_equal(chunk, "");
  free(chunk);
  rx_eof(&rx);
  rx_close(&rx);
}

/* A watch on a quiet tenant (no checkpoints) has its status and headers at
 * once, before any write: clients that wait for the headers do not time out. */
static void test_watch_headers_at_once(void **state) {
  fx_t *f = *state;
  free(write_schema(f, "t1"));
  static const char req[] =
      "POST /v1/tenants/t1/watch HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 2\r\n\r\n{}";
  rx_t rx = rx_open(f->port, req);
  size_t h = rx_until(&rx, "\r\n\r\n");
  assert_int_equal(rx.len, h); /* the headers alone: nothing was written */
  assert_non_null(strstr(rx.data, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(rx.data, "Content-Type: application/x-ndjson\r\n"));
  rx_drop(&rx, h);
  char *body = fmt("{\"metadata\":{},\"tuples\":[%s]}", tuple_alice);
  char *t1 = expect_token(call(f, "POST", "/v1/tenants/t1/data/write", body, NULL));
  char *chunk = rx_chunk(&rx), *line = change_line(t1, "OPERATION_CREATE", tuple_alice);
  char *want = fmt("%s\n", line);
  assert_string_equal(chunk, want);
  free(want);
  free(line);
  free(chunk);
  free(t1);
  free(body);
  rx_close(&rx);
}

/* ---- in-process ---- */

/* The transport stores this into every call: handlers reach the test state
 * through call->server.  Counters are written on the loop thread under lock
 * and waited for by the test thread. */
struct tc_server_s {
  uv_loop_t loop;
  uv_async_t stop_async;
  tc_http_server_t *http;
  int port;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int started, cancelled, stopped, pending_wrong, sent;
  tc_call_t *held; /* the call h_hold answers once the stop has begun */
};
typedef tc_server_t srv_t;

static void bump(srv_t *s, int *counter) {
  pthread_mutex_lock(&s->lock);
  (*counter)++;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
}

/* Waits (up to WAIT_MS) until *counter reaches want. */
static void wait_for(srv_t *s, int *counter, int want) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += WAIT_MS / 1000;
  pthread_mutex_lock(&s->lock);
  int rc = 0;
  while (*counter < want && rc == 0) rc = pthread_cond_timedwait(&s->cond, &s->lock, &until);
  int got = *counter;
  pthread_mutex_unlock(&s->lock);
  assert_int_equal(got, want);
}

typedef struct later_s {
  uv_timer_t timer;
  tc_call_t *call;
} later_t;

static void on_later_closed(uv_handle_t *h) { free(h->data); }

/* Runs cb(call) on a later loop turn, as handlers answer. */
static void later(tc_call_t *call, uv_timer_cb cb) {
  later_t *l = calloc(1, sizeof *l);
  l->call = call;
  uv_timer_init(&call->server->loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, cb, 0, 0);
}

static void answer_cancelled(uv_timer_t *t) {
  later_t *l = t->data;
  l->call->done(l->call, TC_ECANCELLED, "ERROR_CODE_CANCELLED", NULL);
  uv_close((uv_handle_t *)t, on_later_closed);
}

static void hang_cancelled(tc_call_t *call) {
  bump(call->server, &call->server->cancelled);
  later(call, answer_cancelled);
}

/* Tenancy.List: answers only when the client has left. */
static int h_hang(tc_call_t *call) {
  call->on_cancel = hang_cancelled;
  bump(call->server, &call->server->started);
  return 0;
}

static void answer_tenant(uv_timer_t *t) {
  later_t *l = t->data;
  const Base__V1__TenantCreateRequest *req = (const void *)l->call->request;
  Base__V1__Tenant tenant = BASE__V1__TENANT__INIT;
  tenant.id = req->id;
  tenant.name = (char *)(l->call->authorization ? l->call->authorization : "");
  Base__V1__TenantCreateResponse resp = BASE__V1__TENANT_CREATE_RESPONSE__INIT;
  resp.tenant = &tenant;
  l->call->done(l->call, 0, NULL, &resp.base);
  uv_close((uv_handle_t *)t, on_later_closed);
}

/* Tenancy.Create: held until the stop has begun, then answered with the
 * request's id and the Authorization header as the tenant. */
static int h_hold(tc_call_t *call) {
  call->server->held = call;
  bump(call->server, &call->server->started);
  return 0;
}

static void stream_sent(tc_call_t *call) {
  srv_t *s = call->server;
  s->sent++;
  if ((int)call->pending != 3 - s->sent) s->pending_wrong++;
  if (s->sent == 3) call->done(call, 0, NULL, NULL);
}

/* Watch: three messages at once; ends when the last has been written. */
static int h_stream(tc_call_t *call) {
  call->on_sent = stream_sent;
  static char *tokens[] = {"a", "b", "c"};
  for (size_t i = 0; i < 3; i++) {
    Base__V1__DataChanges changes = BASE__V1__DATA_CHANGES__INIT;
    changes.snap_token = tokens[i];
    Base__V1__WatchResponse resp = BASE__V1__WATCH_RESPONSE__INIT;
    resp.changes = &changes;
    if (call->send(call, &resp.base) != 0 || call->pending != i + 1) call->server->pending_wrong++;
  }
  return 0;
}

/* Refuses at once as the authentication check will: 401 plus WWW-Authenticate. */
static int h_unauthenticated(tc_call_t *call) {
  return tc_call_error(call, TC_EINVALID_KEY, "ERROR_CODE_INVALID_KEY");
}

#define FAKE(svc, name, in, out, fn, streaming)                                                  \
  {                                                                                              \
    "/base.v1." svc "/" name, &base__v1__##in##__descriptor, &base__v1__##out##__descriptor, fn, \
        streaming, 0, 0                                                                          \
  }
static const tc_method_t fake_methods[] = {
    FAKE("Tenancy", "List", tenant_list_request, tenant_list_response, h_hang, 0),
    FAKE("Tenancy", "Create", tenant_create_request, tenant_create_response, h_hold, 0),
    FAKE("Watch", "Watch", watch_request, watch_response, h_stream, 1),
    FAKE("Tenancy", "Delete", tenant_delete_request, tenant_delete_response, h_unauthenticated, 0),
};

static const tc_method_t *fake_find(const char *path) {
  for (size_t i = 0; i < sizeof fake_methods / sizeof fake_methods[0]; i++)
    if (strcmp(fake_methods[i].path, path) == 0) return &fake_methods[i];
  return NULL;
}

static void *loop_main(void *arg) {
  srv_t *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
  return NULL;
}

static void on_stopped(void *arg) {
  srv_t *s = arg;
  uv_close((uv_handle_t *)&s->stop_async, NULL);
  bump(s, &s->stopped);
}

static void on_stop_async(uv_async_t *a) {
  srv_t *s = a->data;
  tc_http_stop(s->http, on_stopped, s);
  if (s->held) later(s->held, answer_tenant);
}

static int setup_inproc(void **state) {
  srv_t *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->cond, NULL);
  uv_loop_init(&s->loop);
  uv_async_init(&s->loop, &s->stop_async, on_stop_async);
  s->stop_async.data = s;
  tc_http_opts_t opts = {.host = "127.0.0.1",
                         .port = 0,
                         .find_method = fake_find,
                         .server = s,
                         .max_connections = 3,
                         .header_timeout_ms = 1500};
  char *err = NULL;
  /* Before the loop thread starts, this thread is the loop's. */
  assert_int_equal(tc_http_start(&s->loop, &opts, &s->http, &s->port, &err), 0);
  assert_int_equal(pthread_create(&s->thread, NULL, loop_main, s), 0);
  *state = s;
  return 0;
}

/* Requests the stop from the test thread. */
static void inproc_stop(srv_t *s) {
  uv_async_send(&s->stop_async);
  wait_for(s, &s->stopped, 1);
}

static int teardown_inproc(void **state) {
  srv_t *s = *state;
  if (!s->stopped) inproc_stop(s);
  pthread_join(s->thread, NULL);
  int rc = uv_loop_close(&s->loop);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->cond);
  free(s);
  return rc == 0 ? 0 : -1;
}

static const char healthz[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

static void expect_healthz(rx_t *rx) {
  tt_send_all(rx->fd, healthz, strlen(healthz));
  char *head, *body = rx_response(rx, &head);
  assert_string_equal(body, "{\"status\":\"SERVING\"}");
  free(head);
  free(body);
}

static void test_max_connections_and_header_timeout(void **state) {
  srv_t *s = *state;
  rx_t rx[4];
  for (int i = 0; i < 3; i++) {
    rx[i] = rx_open(s->port, NULL);
    expect_healthz(&rx[i]);
  }
  rx[3] = rx_open(s->port, NULL);
  rx_eof(&rx[3]); /* over the limit: closed at once, unanswered */
  assert_int_equal(rx[3].len, 0);
  close(rx[3].fd);
  expect_healthz(&rx[0]); /* the others are served on */
  /* A connection idle past the header timeout is closed. */
  rx_eof(&rx[1]);
  for (int i = 0; i < 3; i++) rx_close(&rx[i]);
}

/* A body that trickles in is cut off like a slow header: the request read
 * timeout covers the whole request. */
static void test_slow_body_cut_off(void **state) {
  srv_t *s = *state;
  static const char req[] =
      "POST /v1/tenants/list HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}";
  rx_t rx = rx_open(s->port, req);
  rx_eof(&rx);
  pthread_mutex_lock(&s->lock);
  int started = s->started; /* the handler never saw the request */
  pthread_mutex_unlock(&s->lock);
  assert_int_equal(started, 0);
  rx_close(&rx);
}

static void test_client_leaves_mid_call(void **state) {
  srv_t *s = *state;
  static const char req[] =
      "POST /v1/tenants/list HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  rx_t rx = rx_open(s->port, req);
  wait_for(s, &s->started, 1);
  close(rx.fd);
  wait_for(s, &s->cancelled, 1); /* on_cancel ran; done() follows, and the stop waits for it */
  inproc_stop(s);
}

static void test_answered_after_stop(void **state) {
  srv_t *s = *state;
  static const char req[] =
      "POST /v1/tenants/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
      "Content-Length: 11\r\n\r\n{\"id\":\"t9\"}";
  rx_t rx = rx_open(s->port, req);
  wait_for(s, &s->started, 1);
  uv_async_send(&s->stop_async);
  char *head, *body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(head, "Connection: close\r\n"));
  assert_string_equal(body,
                      "{\"tenant\":{\"id\":\"t9\",\"name\":\"Bearer k\",\"created_at\":null}}");
  rx_eof(&rx);
  free(head);
  free(body);
  rx_close(&rx);
  wait_for(s, &s->stopped, 1);
}

static void test_unauthenticated(void **state) {
  srv_t *s = *state;
  static const char req[] = "DELETE /v1/tenants/t1 HTTP/1.1\r\nHost: x\r\n\r\n";
  rx_t rx = rx_open(s->port, req);
  char *head, *body = rx_response(&rx, &head);
  assert_non_null(strstr(head, "HTTP/1.1 401 Unauthorized\r\n"));
  assert_non_null(strstr(head, "WWW-Authenticate: ERROR_CODE_INVALID_KEY\r\n"));
  assert_string_equal(body, "{\"code\":16,\"message\":\"ERROR_CODE_INVALID_KEY\",\"details\":[]}");
  free(head);
  free(body);
  rx_close(&rx);
}

static void test_stream_accounting(void **state) {
  srv_t *s = *state;
  static const char req[] = "POST /v1/tenants/t1/watch HTTP/1.1\r\nHost: x\r\n\r\n";
  rx_t rx = rx_open(s->port, req);
  size_t h = rx_until(&rx, "\r\n\r\n");
  rx_drop(&rx, h);
  static const char *const tokens[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    char *chunk = rx_chunk(&rx);
    char *want =
        fmt("{\"result\":{\"changes\":{\"snap_token\":\"%s\",\"data_changes\":[]}}}\n", tokens[i]);
    assert_string_equal(chunk, want);
    free(want);
    free(chunk);
  }
  char *chunk = rx_chunk(&rx);
  assert_string_equal(chunk, "");
  free(chunk);
  expect_healthz(&rx); /* kept alive after the stream */
  rx_close(&rx);
  inproc_stop(s);
  assert_int_equal(s->sent, 3);
  assert_int_equal(s->pending_wrong, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_health_and_tenancy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_routes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_routes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bundle_routes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_bundle_route, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostile_strings, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keepalive_pipelining, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slow_header_cut_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch_initial_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch_initial_state_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch_schema_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch_ended_by_shutdown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch_headers_at_once, setup, teardown),
  };
  const struct CMUnitTest inproc[] = {
      cmocka_unit_test_setup_teardown(test_max_connections_and_header_timeout, setup_inproc,
                                      teardown_inproc),
      cmocka_unit_test_setup_teardown(test_slow_body_cut_off, setup_inproc, teardown_inproc),
      cmocka_unit_test_setup_teardown(test_client_leaves_mid_call, setup_inproc, teardown_inproc),
      cmocka_unit_test_setup_teardown(test_answered_after_stop, setup_inproc, teardown_inproc),
      cmocka_unit_test_setup_teardown(test_stream_accounting, setup_inproc, teardown_inproc),
      cmocka_unit_test_setup_teardown(test_unauthenticated, setup_inproc, teardown_inproc),
  };
  int failed = cmocka_run_group_tests_name("binary", tests, NULL, NULL);
  return failed + cmocka_run_group_tests_name("in-process", inproc, NULL, NULL);
}
