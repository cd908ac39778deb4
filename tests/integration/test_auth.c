/* Admission end to end on the real binary: preshared keys on every method of
 * the core's table over gRPC and every route of the HTTP table (missing,
 * malformed, wrong and right keys), health exempt on both transports, the
 * gate's order (validation first), and the rate limiter's bound and refill.
 *
 * The tables are walked, not copied: a method or route added later is
 * covered, and fails here until it has a sample request below. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/v1/service.pb-c.h"
#include "call.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc_client.h"
#include "http_internal.h"
#include "pbjson.h"
#include "http_client.h"
#include "server_proc.h"

#define WAIT_MS 10000
#define KEYS "k-one,second key"
#define MISSING "ERROR_CODE_MISSING_BEARER_TOKEN"
#define INVALID "ERROR_CODE_INVALID_KEY"

/* ---- one server ---------------------------------------------------------- */

typedef struct {
  char *dir;
  tc_proc_t proc;
  int http_port;
  tc_client_t *client;
} fx_t;

/* Starts tuplecast on port 0 with extra (NULL-terminated) arguments. */
static fx_t *fx_start(const char *const *extra) {
  fx_t *f = calloc(1, sizeof *f);
  const char *args[32] = {"--grpc-port", "0", "--http-port", "0", "--database-engine", "memory"};
  size_t n = 6;
  while (*extra && n < 31) args[n++] = *extra++;
  args[n] = NULL;
  f->dir = tc_temp_dir();
  assert_int_equal(tc_proc_start(&f->proc, args), 0);
  f->http_port = tc_proc_http_port(&f->proc, 10000);
  assert_true(f->http_port > 0);
  assert_non_null(f->client = tc_client_new(f->proc.target));
  return f;
}

static void fx_stop(fx_t *f) {
  tc_client_free(f->client);
  char *log = NULL;
  assert_int_equal(tc_proc_stop(&f->proc, &log), 0);
  /* No key may ever reach the log. */
  assert_null(strstr(log, "k-one"));
  assert_null(strstr(log, "second key"));
  free(log);
  tc_temp_dir_remove(f->dir);
  free(f->dir);
  free(f);
}

/* ---- HTTP on a raw socket (the header may hold any byte) ------------------ */

typedef struct {
  int status;
  char *head; /* status line and headers */
  char *body; /* up to Content-Length; "" for a stream */
} hres_t;

static int recv_more(int fd, char **buf, size_t *len, long long deadline) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  long long left = deadline - tc_now_ms();
  if (left <= 0 || poll(&p, 1, (int)left) <= 0) return -1;
  *buf = realloc(*buf, *len + 4097);
  ssize_t r = recv(fd, *buf + *len, 4096, 0);
  if (r <= 0) return -1;
  *len += (size_t)r;
  (*buf)[*len] = '\0';
  return 0;
}

/* One request on a fresh connection.  auth: auth_len bytes, NULL for no
 * header.  A streamed answer is read as far as its head; a stream that sends
 * nothing within wait_ms (a Watch with nothing to say) gives status 0. */
static hres_t http_wait(int port, const char *method, const char *path, const char *auth,
                        size_t auth_len, const char *body, int wait_ms) {
  int fd = tt_http_connect(port);
  char head[1024];
  size_t blen = body ? strlen(body) : 0;
  int n = snprintf(head, sizeof head,
                   "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n%s",
                   method, path, blen, auth ? "Authorization: " : "");
  size_t req_len = (size_t)n + (auth ? auth_len + 2 : 0) + 2 + blen;
  char *req = malloc(req_len);
  memcpy(req, head, (size_t)n);
  size_t at = (size_t)n;
  if (auth) {
    memcpy(req + at, auth, auth_len);
    memcpy(req + at + auth_len, "\r\n", 2);
    at += auth_len + 2;
  }
  memcpy(req + at, "\r\n", 2);
  if (blen) memcpy(req + at + 2, body, blen);
  assert_int_equal(send(fd, req, req_len, MSG_NOSIGNAL), (ssize_t)req_len);
  free(req);
  long long deadline = tc_now_ms() + wait_ms;
  char *buf = NULL;
  size_t len = 0;
  char *end = NULL;
  while (!(end = buf ? strstr(buf, "\r\n\r\n") : NULL))
    if (recv_more(fd, &buf, &len, deadline) != 0) {
      assert_true(wait_ms < WAIT_MS && !buf);
      close(fd);
      return (hres_t){.head = strdup(""), .body = strdup("")};
    }
  deadline = tc_now_ms() + WAIT_MS;
  hres_t r = {.head = strndup(buf, (size_t)(end - buf) + 2)};
  assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &r.status), 1);
  const char *cl = strstr(r.head, "Content-Length: ");
  size_t want = cl ? (size_t)atol(cl + 16) : 0;
  size_t off = (size_t)(end - buf) + 4;
  while (len - off < want) assert_int_equal(recv_more(fd, &buf, &len, deadline), 0);
  r.body = strndup(buf + off, want);
  free(buf);
  close(fd);
  return r;
}

static hres_t http_do(int port, const char *method, const char *path, const char *auth,
                      size_t auth_len, const char *body) {
  return http_wait(port, method, path, auth, auth_len, body, WAIT_MS);
}

static void hres_free(hres_t *r) {
  free(r->head);
  free(r->body);
}

/* ---- the sample requests --------------------------------------------------- */

/* A request for each method that passes validation, so what answers is the
 * gate's authentication (or, with the right key, the method). */
static const struct {
  const char *rpc, *json;
} samples[] = {
#define TUPLE                                                             \
  "{\"entity\":{\"type\":\"user\",\"id\":\"u1\"},\"relation\":\"owner\"," \
  "\"subject\":{\"type\":\"user\",\"id\":\"u2\"}}"
    {"/base.v1.Data/Write", "{\"tenant_id\":\"t1\",\"metadata\":{},\"tuples\":[" TUPLE "]}"},
    {"/base.v1.Data/WriteRelationships",
     "{\"tenant_id\":\"t1\",\"metadata\":{},\"tuples\":[" TUPLE "]}"},
    {"/base.v1.Data/ReadRelationships",
     "{\"tenant_id\":\"t1\",\"metadata\":{},\"filter\":{\"entity\":{\"type\":\"user\"}}}"},
    {"/base.v1.Data/ReadAttributes",
     "{\"tenant_id\":\"t1\",\"metadata\":{},\"filter\":{\"entity\":{\"type\":\"user\"}}}"},
    {"/base.v1.Data/Delete",
     "{\"tenant_id\":\"t1\",\"tuple_filter\":{\"entity\":{\"type\":\"user\",\"ids\":[\"x\"]}},"
     "\"attribute_filter\":{}}"},
    {"/base.v1.Data/DeleteRelationships",
     "{\"tenant_id\":\"t1\",\"filter\":{\"entity\":{\"type\":\"user\",\"ids\":[\"x\"]}}}"},
    {"/base.v1.Data/RunBundle", "{\"tenant_id\":\"t1\",\"name\":\"b\"}"},
    {"/base.v1.Watch/Watch", "{\"tenant_id\":\"t1\"}"},
    {"/base.v1.Schema/Write", "{\"tenant_id\":\"t1\",\"schema\":\"entity user {}\"}"},
    {"/base.v1.Schema/PartialWrite", "{\"tenant_id\":\"t1\",\"metadata\":{}}"},
    {"/base.v1.Schema/Read", "{\"tenant_id\":\"t1\",\"metadata\":{}}"},
    {"/base.v1.Schema/List", "{\"tenant_id\":\"t1\"}"},
    {"/base.v1.Bundle/Write", "{\"tenant_id\":\"t1\",\"bundles\":[{\"name\":\"b\"}]}"},
    {"/base.v1.Bundle/Read", "{\"tenant_id\":\"t1\",\"name\":\"b\"}"},
    {"/base.v1.Bundle/Delete", "{\"tenant_id\":\"t1\",\"name\":\"b\"}"},
    {"/base.v1.Tenancy/Create", "{\"id\":\"t-new\",\"name\":\"n\"}"},
    {"/base.v1.Tenancy/Delete", "{\"id\":\"t-gone\"}"},
    {"/base.v1.Tenancy/List", "{}"},
#undef TUPLE
};

static const char *sample_json(const char *rpc) {
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
    if (strcmp(samples[i].rpc, rpc) == 0) return samples[i].json;
  fail_msg("no sample request for %s: add one to test_auth.c", rpc);
  return NULL;
}

static ProtobufCMessage *sample(const tc_method_t *m) {
  const char *json = sample_json(m->path);
  ProtobufCMessage *msg = NULL;
  char *err = NULL;
  if (tc_json_decode(m->input, json, strlen(json), &msg, &err) != 0)
    fail_msg("sample for %s does not decode: %s", m->path, err ? err : "?");
  return msg;
}

/* ---- the cases --------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *header; /* NULL: no header */
  size_t len;
  const char *refusal; /* NULL: admitted */
  char only;           /* 'g' or 'h': one transport (HTTP trims trailing space) */
} auth_case_t;

#define C(name, h, refusal) \
  { name, h, sizeof h - 1, refusal, 0 }
static const auth_case_t cases[] = {
    {"missing", NULL, 0, MISSING, 0},
    C("empty", "", MISSING),
    C("scheme only", "Bearer", MISSING),
    C("other scheme", "Basic k-one", MISSING),
    C("no space", "Bearerk-one", MISSING),
    C("leading space in scheme", "Token Bearer k-one", MISSING),
    C("wrong key", "Bearer nope", INVALID),
    C("key's prefix", "Bearer k-on", INVALID),
    C("key and more", "Bearer k-one2", INVALID),
    C("two spaces", "Bearer  k-one", INVALID),
    {"empty key", "Bearer ", 7, INVALID, 'g'},
    {"trailing space trimmed", "Bearer ", 7, MISSING, 'h'},
    {"trailing spaces trimmed", "Bearer k-one \t ", 15, NULL, 'h'},
    C("right key", "Bearer k-one", NULL),
    C("scheme in any case", "bEARER k-one", NULL),
    C("second key, a space inside", "Bearer second key", NULL),
};
#undef C
#define N_CASES (sizeof cases / sizeof cases[0])

/* gRPC: unary or stream; the status, or -1 for a stream still open. */
static int grpc_try(fx_t *f, const tc_method_t *m, const ProtobufCMessage *req, const char *auth,
                    char **details) {
  *details = NULL;
  if (!m->server_streaming) {
    ProtobufCMessage *resp = NULL;
    int code = tc_client_unary(f->client, m->path, req, m->output, &resp, details, auth, WAIT_MS);
    if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    return code;
  }
  tc_stream_t *s = tc_client_stream_open(f->client, m->path, req, auth, 0);
  assert_non_null(s);
  ProtobufCMessage *msg = NULL;
  /* A refusal ends the stream at once; an admitted watch stays open. */
  int rc = tc_stream_next(s, m->output, &msg, 300);
  int code = -1;
  if (rc == 0) protobuf_c_message_free_unpacked(msg, NULL);
  if (rc == 1) {
    const char *d = NULL;
    code = tc_stream_status(s, &d);
    *details = d ? strdup(d) : NULL;
  }
  tc_stream_free(s);
  return code;
}

static void grpc_case(fx_t *f, const tc_method_t *m, const ProtobufCMessage *req,
                      const auth_case_t *c) {
  char *details;
  const char *auth = c->header;
  int code = grpc_try(f, m, req, auth, &details);
  if (!m->handler && !c->refusal) { /* authenticated first, as Permify does */
    if (code != 12) fail_msg("%s [%s]: %d %s, want UNIMPLEMENTED", m->path, c->name, code, details);
  } else if (c->refusal) {
    if (code != 16 || !details || strcmp(details, c->refusal) != 0)
      fail_msg("%s [%s]: %d %s, want 16 %s", m->path, c->name, code, details, c->refusal);
  } else if (code == 16 || code == 8 || code == 12) {
    fail_msg("%s [%s]: %d %s, want admitted", m->path, c->name, code, details);
  }
  free(details);
}

static void test_grpc_every_method(void **state) {
  (void)state;
  fx_t *f = fx_start((const char *[]){"--authn-enabled", "--authn-method", "preshared",
                                      "--authn-preshared-keys", KEYS, NULL});
  size_t n = 0;
  for (const tc_method_t *m; (m = tc_method_at(n)); n++) {
    ProtobufCMessage *req = sample(m);
    for (size_t i = 0; i < N_CASES; i++) {
      /* The C client cannot send an empty metadata value. */
      if ((cases[i].header && !*cases[i].header) || cases[i].only == 'h') continue;
      grpc_case(f, m, req, &cases[i]);
    }
    protobuf_c_message_free_unpacked(req, NULL);
  }
  assert_true(n >= 15);
  fx_stop(f);
}

/* "/v1/tenants/{tenant_id}/x" with its parameter filled in. */
static char *route_path(const char *pattern) {
  const char *open = strchr(pattern, '{');
  if (!open) return strdup(pattern);
  const char *close = strchr(open, '}');
  const char *value = strncmp(open, "{tenant_id}", 11) == 0 ? "t1" : "t-gone";
  size_t len = strlen(pattern) + strlen(value);
  char *p = malloc(len + 1);
  snprintf(p, len + 1, "%.*s%s%s", (int)(open - pattern), pattern, value, close + 1);
  return p;
}

static void http_case(fx_t *f, const tc__http_route_t *r, const tc_method_t *m,
                      const auth_case_t *c) {
  char *path = route_path(r->pattern);
  const char *body = r->method == HTTP_DELETE ? NULL : m ? sample_json(m->path) : "{}";
  /* A refusal answers at once; an admitted Watch may say nothing. */
  int wait = m && m->server_streaming && !c->refusal ? 300 : WAIT_MS;
  hres_t h =
      http_wait(f->http_port, http_method_str(r->method), path, c->header, c->len, body, wait);
  if (!m || (!m->handler && !c->refusal)) {
    if (h.status != 501) fail_msg("%s [%s]: %d %s, want 501", path, c->name, h.status, h.body);
  } else if (c->refusal) {
    char want[128], www[128];
    snprintf(want, sizeof want, "{\"code\":16,\"message\":\"%s\",\"details\":[]}", c->refusal);
    snprintf(www, sizeof www, "\r\nWWW-Authenticate: %s\r\n", c->refusal);
    if (h.status != 401 || strcmp(h.body, want) != 0 || !strstr(h.head, www))
      fail_msg("%s %s [%s]: %d %s, want 401 %s", http_method_str(r->method), path, c->name,
               h.status, h.body, want);
  } else if (h.status == 401 || h.status == 429 || h.status == 501) {
    fail_msg("%s [%s]: %d %s, want admitted", path, c->name, h.status, h.body);
  }
  hres_free(&h);
  free(path);
}

static void test_http_every_route(void **state) {
  (void)state;
  fx_t *f = fx_start((const char *[]){"--authn-enabled", "--authn-method", "preshared",
                                      "--authn-preshared-keys", KEYS, NULL});
  size_t n = 0;
  for (const tc__http_route_t *r; (r = tc__http_route_at(n)); n++) {
    const tc_method_t *m = tc_method_find(r->rpc);
    for (size_t i = 0; i < N_CASES; i++)
      if (cases[i].only != 'g') http_case(f, r, m, &cases[i]);
  }
  assert_true(n >= 25);
  /* A NUL inside the value is refused, never cut short to a right key: the
   * HTTP parser refuses it before routing (docs/security.md). */
  static const char nul[] = "Bearer k-one\0tail";
  hres_t h = http_do(f->http_port, "POST", "/v1/tenants/list", nul, sizeof nul - 1, "{}");
  if (h.status != 400 || !strstr(h.body, "invalid character in header"))
    fail_msg("NUL in the header: %d %s", h.status, h.body);
  hres_free(&h);
  fx_stop(f);
}

/* Health on both transports answers whatever the header; validation comes
 * before authentication (Permify's order); without authn the header is
 * ignored. */
static void test_exempt_and_order(void **state) {
  (void)state;
  fx_t *f = fx_start((const char *[]){"--authn-enabled", "--authn-method", "preshared",
                                      "--authn-preshared-keys", KEYS, NULL});
  Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  for (size_t i = 0; i < N_CASES; i++) {
    if ((cases[i].header && !*cases[i].header) || cases[i].only) continue;
    ProtobufCMessage *resp = NULL;
    assert_int_equal(tc_client_unary(f->client, "/grpc.health.v1.Health/Check", &hreq.base,
                                     &grpc__health__v1__health_check_response__descriptor, &resp,
                                     NULL, cases[i].header, WAIT_MS),
                     0);
    protobuf_c_message_free_unpacked(resp, NULL);
    hres_t h = http_do(f->http_port, "GET", "/healthz", cases[i].header, cases[i].len, NULL);
    assert_int_equal(h.status, 200);
    hres_free(&h);
  }
  Base__V1__TenantCreateRequest bad = BASE__V1__TENANT_CREATE_REQUEST__INIT;
  bad.id = "";
  char *details = NULL;
  assert_int_equal(tc_client_unary(f->client, "/base.v1.Tenancy/Create", &bad.base, NULL, NULL,
                                   &details, NULL, WAIT_MS),
                   3);
  free(details);
  fx_stop(f);

  f = fx_start((const char *[]){NULL});
  Base__V1__TenantListRequest list = BASE__V1__TENANT_LIST_REQUEST__INIT;
  assert_int_equal(tc_client_unary(f->client, "/base.v1.Tenancy/List", &list.base,
                                   &base__v1__tenant_list_response__descriptor, NULL, NULL,
                                   "Bearer anything", WAIT_MS),
                   0);
  hres_t h = http_do(f->http_port, "POST", "/v1/tenants/list", "Basic x", 7, "{}");
  assert_int_equal(h.status, 200);
  hres_free(&h);
  fx_stop(f);
}


/* ---- the rate limiter ------------------------------------------------------ */

#define RATE 2
#define INTERVAL_MS (1000 / RATE)
#define LIMITED                                                                   \
  "/base.v1.Tenancy/List is rejected by grpc_ratelimit middleware, please retry " \
  "later. reached Rate-Limiting 0"

static int list_call(fx_t *f, const char *auth, char **details) {
  Base__V1__TenantListRequest req = BASE__V1__TENANT_LIST_REQUEST__INIT;
  return tc_client_unary(f->client, "/base.v1.Tenancy/List", &req.base, NULL, NULL, details, auth,
                         WAIT_MS);
}

/* Empties the bucket, then polls until a call gets a token again (the
 * refill).  The token came on a grid point b of the server's clock, which
 * is the test's: b > *lo (when the last refused call was sent) and
 * b <= *hi (when the admitted one was answered).  0, or -1 if the two are
 * too far apart to know that exactly one token came. */
static int sync_to_refill(fx_t *f, long long *lo, long long *hi) {
  long long deadline = tc_now_ms() + WAIT_MS;
  while (list_call(f, "Bearer k-one", NULL) == 0) assert_true(tc_now_ms() < deadline);
  for (;;) {
    long long sent = tc_now_ms();
    int code = list_call(f, "Bearer k-one", NULL);
    long long got = tc_now_ms();
    if (code == 0) {
      *hi = got;
      return *hi - *lo < INTERVAL_MS / 2 ? 0 : -1;
    }
    assert_int_equal(code, 8);
    *lo = sent;
    if (got > deadline) fail_msg("no token came back within %d ms", WAIT_MS);
  }
}

/* After the sync the bucket is empty at b; RATE grid points later it is
 * full, and one more proves the capacity is RATE (a tick while full is
 * lost).  Health checks, exempt, pass the wait (if they took tokens the
 * bucket would not be full). */
static void wait_full(fx_t *f, long long hi) {
  Grpc__Health__V1__HealthCheckRequest h = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  while (tc_now_ms() < hi + (RATE + 1) * INTERVAL_MS + 10) {
    ProtobufCMessage *resp = NULL;
    assert_int_equal(tc_client_unary(f->client, "/grpc.health.v1.Health/Check", &h.base,
                                     &grpc__health__v1__health_check_response__descriptor, &resp,
                                     NULL, NULL, WAIT_MS),
                     0);
    protobuf_c_message_free_unpacked(resp, NULL);
  }
}

typedef struct {
  int admitted, refused;
} tally_t;

static void count(tally_t *t, int ok, int limited, const char *what) {
  if (!ok && !limited) fail_msg("%s: neither admitted nor rate-limited", what);
  t->admitted += ok;
  t->refused += limited;
}

/* The burst: 6 counted calls on both transports (a Watch among them), plus
 * exempt and invalid ones that must not count.  Checks each answer's shape. */
static void burst(fx_t *f, tally_t *t) {
  char *details = NULL;
  int code = list_call(f, "Bearer k-one", &details);
  count(t, code == 0, code == 8 && details && !strcmp(details, LIMITED), "grpc list");
  free(details);
  hres_t h = http_do(f->http_port, "GET", "/healthz", NULL, 0, NULL);
  assert_int_equal(h.status, 200);
  hres_free(&h);
  Base__V1__TenantCreateRequest bad = BASE__V1__TENANT_CREATE_REQUEST__INIT;
  bad.id = "";
  assert_int_equal(tc_client_unary(f->client, "/base.v1.Tenancy/Create", &bad.base, NULL, NULL,
                                   NULL, "Bearer k-one", WAIT_MS),
                   3);
  for (int i = 0; i < 2; i++) {
    h = http_do(f->http_port, "POST", "/v1/tenants/list", "Bearer k-one", 12, "{}");
    count(t, h.status == 200,
          h.status == 429 &&
              !strcmp(h.body, "{\"code\":8,\"message\":\"" LIMITED "\",\"details\":[]}"),
          "http list");
    hres_free(&h);
  }
  /* Rate limit before authentication: no key, no token -> RESOURCE_EXHAUSTED. */
  details = NULL;
  code = list_call(f, NULL, &details);
  count(t, code == 16, code == 8, "grpc list without a key");
  free(details);
  const tc_method_t *watch = tc_method_find("/base.v1.Watch/Watch");
  ProtobufCMessage *req = sample(watch);
  code = grpc_try(f, watch, req, "Bearer k-one", &details);
  count(t, code == -1, code == 8, "grpc watch");
  free(details);
  protobuf_c_message_free_unpacked(req, NULL);
  code = list_call(f, "Bearer k-one", NULL);
  count(t, code == 0, code == 8, "grpc list");
}

static void test_rate_limit(void **state) {
  (void)state;
  char rate[16];
  snprintf(rate, sizeof rate, "%d", RATE);
  fx_t *f =
      fx_start((const char *[]){"--server-rate-limit", rate, "--authn-enabled", "--authn-method",
                                "preshared", "--authn-preshared-keys", KEYS, NULL});
  int exact = 0;
  for (int attempt = 0; attempt < 5 && !exact; attempt++) {
    long long lo = 0, hi = 0;
    if (sync_to_refill(f, &lo, &hi) != 0) continue;
    wait_full(f, hi);
    tally_t t = {0};
    burst(f, &t);
    /* Exact only if the next grid point (after lo + RATE + 2 intervals) was
     * not reached: otherwise a token may have come mid-burst; try again. */
    if (tc_now_ms() >= lo + (RATE + 2) * INTERVAL_MS) continue;
    assert_int_equal(t.admitted + t.refused, 6);
    assert_int_equal(t.admitted, RATE);
    assert_int_equal(t.refused, 6 - RATE);
    exact = 1;
  }
  assert_true(exact);
  fx_stop(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grpc_every_method),
      cmocka_unit_test(test_http_every_route),
      cmocka_unit_test(test_exempt_and_order),
      cmocka_unit_test(test_rate_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
