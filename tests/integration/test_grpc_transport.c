/* The gRPC transport in-process: the loop runs on the test's main thread,
 * clients (tests/support/grpc_client) on other threads.  Results are recorded
 * by the client threads and asserted on the main thread after they are joined. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/v1/service.pb-c.h"
#include "bridge.h"
#include "call.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc_client.h"
#include "grpc_server.h"

#define MAX_CLIENTS 8
#define TIMEOUT_MS 10000

/* The transport stores this into every call: handlers reach the test state
 * through call->server, as core handlers reach the core. */
struct tc_server_s {
  uv_loop_t loop;
  tc_bridge_t bridge;
  tc_grpc_server_t *grpc;
  char target[32];
  int max_recv;
  int grace_ms;
  int stop_requested, stopped;
  uv_timer_t watchdog;
  void (*client)(tc_server_t *f, int idx);
  int n_clients, clients_running;
  struct client_slot_s {
    tc_completion_t done; /* first: the bridge hands back this pointer */
    tc_server_t *f;
    int idx;
    pthread_t thread;
  } clients[MAX_CLIENTS];
  /* loop-thread counters */
  int answered, hang_started;
  int answered_before_stop; /* answered when the stop completed */
  /* hang handlers that saw their call cancelled; client threads wait on it */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int hang_cancelled;
};
typedef tc_server_t fixture_t;

/* ---- handlers ------------------------------------------------------------ */

typedef struct pending_s {
  uv_timer_t timer;
  tc_call_t *call;
} pending_t;

static void on_pending_closed(uv_handle_t *h) { free(h->data); }

/* Echoes the request: the token as tenant id and continuous token, the
 * authorization as tenant name. */
static void answer_later(uv_timer_t *t) {
  pending_t *p = t->data;
  tc_call_t *call = p->call;
  const Base__V1__TenantListRequest *req = (const Base__V1__TenantListRequest *)call->request;
  Base__V1__Tenant tenant = BASE__V1__TENANT__INIT;
  tenant.id = req->continuous_token;
  tenant.name = (char *)(call->authorization ? call->authorization : "");
  Base__V1__Tenant *tenants[] = {&tenant};
  Base__V1__TenantListResponse resp = BASE__V1__TENANT_LIST_RESPONSE__INIT;
  resp.n_tenants = 1;
  resp.tenants = tenants;
  resp.continuous_token = req->continuous_token;
  call->server->answered++;
  call->done(call, 0, NULL, &resp.base);
  uv_close((uv_handle_t *)t, on_pending_closed);
}

static int start_pending(tc_call_t *call, uv_timer_cb cb, uint64_t delay_ms, uint64_t repeat_ms) {
  pending_t *p = calloc(1, sizeof *p);
  if (!p) return tc_call_error(call, TC_ENOMEM, "ERROR_CODE_INTERNAL");
  p->call = call;
  uv_timer_init(&call->server->loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, cb, delay_ms, repeat_ms);
  return 0;
}

static int h_later(tc_call_t *call) { return start_pending(call, answer_later, 1, 0); }

static int h_fail(tc_call_t *call) {
  return tc_call_error(call, TC_ETENANT_NOT_FOUND, "ERROR_CODE_TENANT_NOT_FOUND");
}

static void on_stopped(void *arg);

static void request_stop(fixture_t *f) {
  f->stop_requested = 1;
  tc_grpc_stop(f->grpc, f->grace_ms, on_stopped, f);
}

/* Stops the server while its own call is in flight, then answers. */
static int h_stop_then_answer(tc_call_t *call) {
  request_stop(call->server);
  return start_pending(call, answer_later, 100, 0);
}

/* Never answers until the call is cancelled; nothing notifies a handler of
 * that, so it looks each loop turn or so. */
static void hang_check(uv_timer_t *t) {
  pending_t *p = t->data;
  tc_call_t *call = p->call;
  if (!call->cancelled) return;
  fixture_t *f = call->server;
  call->done(call, TC_ECANCELLED, "ERROR_CODE_CANCELLED", NULL);
  uv_close((uv_handle_t *)t, on_pending_closed);
  pthread_mutex_lock(&f->lock);
  f->hang_cancelled++;
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->lock);
}

static int h_hang(tc_call_t *call) {
  call->server->hang_started++;
  return start_pending(call, hang_check, 1, 1);
}

static int h_stop_then_hang(tc_call_t *call) {
  request_stop(call->server);
  return h_hang(call);
}

#define LIST_IN &base__v1__tenant_list_request__descriptor
#define LIST_OUT &base__v1__tenant_list_response__descriptor
static const tc_method_t methods[] = {
    {"/test.v1.Test/Later", LIST_IN, LIST_OUT, h_later, 0},
    {"/test.v1.Test/Fail", LIST_IN, LIST_OUT, h_fail, 0},
    {"/test.v1.Test/Hang", LIST_IN, LIST_OUT, h_hang, 0},
    {"/test.v1.Test/Null", LIST_IN, LIST_OUT, NULL, 0},
    {"/test.v1.Test/StopThenAnswer", LIST_IN, LIST_OUT, h_stop_then_answer, 0},
    {"/test.v1.Test/StopThenHang", LIST_IN, LIST_OUT, h_stop_then_hang, 0},
};

static const tc_method_t *find_method(const char *path) {
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(methods[i].path, path) == 0) return &methods[i];
  return NULL;
}

/* ---- harness ------------------------------------------------------------- */

typedef struct client_slot_s client_slot_t;

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fail_msg("test did not finish within %d ms", TIMEOUT_MS);
}

static void on_stopped(void *arg) {
  fixture_t *f = arg;
  f->stopped = 1;
  f->answered_before_stop = f->answered;
  for (int i = 0; i < f->n_clients; i++) pthread_join(f->clients[i].thread, NULL);
  uv_close((uv_handle_t *)&f->watchdog, NULL);
  tc_bridge_close(&f->bridge);
}

static void on_client_done(tc_completion_t *c) {
  fixture_t *f = ((client_slot_t *)c)->f;
  if (--f->clients_running == 0 && !f->stop_requested) request_stop(f);
}

static void *client_main(void *arg) {
  client_slot_t *slot = arg;
  slot->f->client(slot->f, slot->idx);
  tc_bridge_post(&slot->f->bridge, &slot->done);
  return NULL;
}

/* Starts the transport, runs n client threads, stops the transport when they
 * are all done (unless a handler stopped it already) and runs the loop until
 * everything is closed. */
static void loop_open(fixture_t *f) {
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(tc_bridge_init(&f->bridge, &f->loop), 0);
  pthread_mutex_init(&f->lock, NULL);
  pthread_cond_init(&f->cond, NULL);
  if (!f->grace_ms) f->grace_ms = 5000;
  uv_timer_init(&f->loop, &f->watchdog);
  uv_timer_start(&f->watchdog, on_watchdog, TIMEOUT_MS, 0);
  uv_unref((uv_handle_t *)&f->watchdog);
}

/* Runs the loop until the transport has stopped and the bridge is closed. */
static void loop_run_to_end(fixture_t *f) {
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(f->stopped);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  pthread_cond_destroy(&f->cond);
  pthread_mutex_destroy(&f->lock);
}

static void run(fixture_t *f, int n, void (*client)(fixture_t *f, int idx)) {
  loop_open(f);
  tc_grpc_opts_t opts = {.listen_addr = "127.0.0.1:0",
                         .max_recv_message_bytes = f->max_recv,
                         .find_method = find_method,
                         .server = f};
  int port = 0;
  char *err = NULL;
  assert_int_equal(tc_grpc_start(&f->loop, &f->bridge, &opts, &f->grpc, &port, &err), 0);
  assert_null(err);
  assert_true(port > 0);
  snprintf(f->target, sizeof f->target, "127.0.0.1:%d", port);

  f->client = client;
  f->n_clients = f->clients_running = n;
  for (int i = 0; i < n; i++) {
    f->clients[i] = (client_slot_t){.done.run = on_client_done, .f = f, .idx = i};
    assert_int_equal(pthread_create(&f->clients[i].thread, NULL, client_main, &f->clients[i]), 0);
  }
  loop_run_to_end(f);
}

/* Client threads: wait (with a deadline) until n hang handlers saw their
 * call cancelled. */
static int wait_hang_cancelled(fixture_t *f, int n) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  pthread_mutex_lock(&f->lock);
  int rc = 0;
  while (f->hang_cancelled < n && rc == 0) rc = pthread_cond_timedwait(&f->cond, &f->lock, &until);
  int seen = f->hang_cancelled;
  pthread_mutex_unlock(&f->lock);
  return seen;
}

typedef struct result_s {
  int status;
  char *details;
  Base__V1__TenantListResponse *resp;
} result_t;

static void result_clear(result_t *r) {
  free(r->details);
  if (r->resp) protobuf_c_message_free_unpacked(&r->resp->base, NULL);
  memset(r, 0, sizeof *r);
}

static void list_call(tc_client_t *c, const char *method, const char *token, const char *auth,
                      int timeout_ms, result_t *r) {
  Base__V1__TenantListRequest req = BASE__V1__TENANT_LIST_REQUEST__INIT;
  req.continuous_token = (char *)token;
  ProtobufCMessage *resp = NULL;
  r->status = tc_client_unary(c, method, &req.base, LIST_OUT, &resp, &r->details, auth, timeout_ms);
  r->resp = (Base__V1__TenantListResponse *)resp;
}

static void assert_echo(const result_t *r, const char *token, const char *auth) {
  assert_int_equal(r->status, 0);
  assert_non_null(r->resp);
  assert_string_equal(r->resp->continuous_token, token);
  assert_int_equal(r->resp->n_tenants, 1);
  assert_string_equal(r->resp->tenants[0]->id, token);
  assert_string_equal(r->resp->tenants[0]->name, auth ? auth : "");
}

/* ---- tests --------------------------------------------------------------- */

enum { R_HEALTH_STATUS, R_UNKNOWN, R_NULL, R_FAIL, R_MALFORMED, R_LATER, R_UNDER, R_OVER, R_N };
static result_t basic[R_N];
static int health_serving;

static void basic_client(fixture_t *f, int idx) {
  (void)idx;
  tc_client_t *c = tc_client_new(f->target);

  Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  ProtobufCMessage *hresp = NULL;
  basic[R_HEALTH_STATUS].status =
      tc_client_unary(c, "/grpc.health.v1.Health/Check", &hreq.base,
                      &grpc__health__v1__health_check_response__descriptor, &hresp,
                      &basic[R_HEALTH_STATUS].details, NULL, TIMEOUT_MS);
  if (hresp) {
    health_serving = ((Grpc__Health__V1__HealthCheckResponse *)hresp)->status ==
                     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    protobuf_c_message_free_unpacked(hresp, NULL);
  }

  list_call(c, "/test.v1.Test/Nope", "x", NULL, TIMEOUT_MS, &basic[R_UNKNOWN]);
  list_call(c, "/test.v1.Test/Null", "x", NULL, TIMEOUT_MS, &basic[R_NULL]);
  list_call(c, "/test.v1.Test/Fail", "x", NULL, TIMEOUT_MS, &basic[R_FAIL]);
  /* Field 2, length 16, then only 3 bytes. */
  static const unsigned char bad[] = {0x12, 0x10, 'a', 'b', 'c'};
  basic[R_MALFORMED].status = tc_client_unary_raw(c, "/test.v1.Test/Later", bad, sizeof bad,
                                                  LIST_OUT, NULL, &basic[R_MALFORMED].details,
                                                  TIMEOUT_MS);
  list_call(c, "/test.v1.Test/Later", "tok", "Bearer secret", TIMEOUT_MS, &basic[R_LATER]);

  size_t big = 100 * 1024;
  char *token = malloc(big + 1);
  memset(token, 'z', big);
  token[big] = '\0';
  token[32 * 1024] = '\0';
  list_call(c, "/test.v1.Test/Later", token, NULL, TIMEOUT_MS, &basic[R_UNDER]);
  token[32 * 1024] = 'z';
  list_call(c, "/test.v1.Test/Later", token, NULL, TIMEOUT_MS, &basic[R_OVER]);
  free(token);

  tc_client_free(c);
}

static void test_basic_statuses(void **state) {
  (void)state;
  fixture_t f = {.max_recv = 64 * 1024};
  run(&f, 1, basic_client);

  assert_int_equal(basic[R_HEALTH_STATUS].status, 0);
  assert_true(health_serving);
  assert_int_equal(basic[R_UNKNOWN].status, 12);
  assert_int_equal(basic[R_NULL].status, 12);
  assert_int_equal(basic[R_FAIL].status, 5);
  assert_string_equal(basic[R_FAIL].details, "ERROR_CODE_TENANT_NOT_FOUND");
  assert_int_equal(basic[R_MALFORMED].status, 3);
  assert_non_null(strstr(basic[R_MALFORMED].details, "base.v1.TenantListRequest"));
  assert_echo(&basic[R_LATER], "tok", "Bearer secret");
  assert_int_equal(basic[R_UNDER].status, 0);
  assert_int_equal(strlen(basic[R_UNDER].resp->continuous_token), 32 * 1024);
  assert_int_equal(basic[R_OVER].status, 8);
  assert_int_equal(f.answered, 2);
  for (int i = 0; i < R_N; i++) result_clear(&basic[i]);
}

static result_t deadline_result;
static int deadline_seen_cancel;

static void deadline_client(fixture_t *f, int idx) {
  (void)idx;
  tc_client_t *c = tc_client_new(f->target);
  list_call(c, "/test.v1.Test/Hang", "x", NULL, 200, &deadline_result);
  /* The server must notice on its own, long before the stop's grace ends. */
  deadline_seen_cancel = wait_hang_cancelled(f, 1);
  tc_client_free(c);
}

static void test_deadline_mid_call(void **state) {
  (void)state;
  fixture_t f = {0};
  run(&f, 1, deadline_client);
  assert_int_equal(deadline_result.status, 4);
  assert_int_equal(f.hang_started, 1);
  assert_int_equal(deadline_seen_cancel, 1);
  result_clear(&deadline_result);
}

static result_t stop_result;

static void stop_client(fixture_t *f, int idx) {
  (void)idx;
  tc_client_t *c = tc_client_new(f->target);
  list_call(c, "/test.v1.Test/StopThenAnswer", "last", NULL, TIMEOUT_MS, &stop_result);
  tc_client_free(c);
}

static void test_graceful_stop_lets_call_finish(void **state) {
  (void)state;
  fixture_t f = {0};
  run(&f, 1, stop_client);
  assert_echo(&stop_result, "last", NULL);
  assert_int_equal(f.answered_before_stop, 1);
  result_clear(&stop_result);
}

static void stop_hang_client(fixture_t *f, int idx) {
  (void)idx;
  tc_client_t *c = tc_client_new(f->target);
  list_call(c, "/test.v1.Test/StopThenHang", "x", NULL, TIMEOUT_MS, &stop_result);
  tc_client_free(c);
}

static void test_stop_cancels_after_grace(void **state) {
  (void)state;
  fixture_t f = {.grace_ms = 50};
  run(&f, 1, stop_hang_client);
  assert_int_not_equal(stop_result.status, 0);
  assert_int_equal(f.hang_cancelled, 1);
  result_clear(&stop_result);
}

#define CALLS_PER_CLIENT 25
static int concurrent_ok[MAX_CLIENTS];

static void concurrent_client(fixture_t *f, int idx) {
  tc_client_t *c = tc_client_new(f->target);
  char token[32], auth[32];
  snprintf(auth, sizeof auth, "Bearer %d", idx);
  for (int i = 0; i < CALLS_PER_CLIENT; i++) {
    snprintf(token, sizeof token, "t%d-%d", idx, i);
    result_t r = {0};
    list_call(c, "/test.v1.Test/Later", token, auth, TIMEOUT_MS, &r);
    if (r.status == 0 && r.resp && strcmp(r.resp->continuous_token, token) == 0 &&
        r.resp->n_tenants == 1 && strcmp(r.resp->tenants[0]->name, auth) == 0)
      concurrent_ok[idx]++;
    result_clear(&r);
  }
  tc_client_free(c);
}

static void test_many_concurrent_calls(void **state) {
  (void)state;
  fixture_t f = {0};
  run(&f, MAX_CLIENTS, concurrent_client);
  for (int i = 0; i < MAX_CLIENTS; i++) assert_int_equal(concurrent_ok[i], CALLS_PER_CLIENT);
  assert_int_equal(f.answered, MAX_CLIENTS * CALLS_PER_CLIENT);
}

static void test_bind_failure(void **state) {
  (void)state;
  fixture_t f = {0};
  loop_open(&f);
  tc_grpc_opts_t opts = {.listen_addr = "127.0.0.1:0", .find_method = find_method, .server = &f};
  tc_grpc_server_t *first = NULL, *second = NULL;
  int port = 0, port2 = 0;
  char *err = NULL;
  assert_int_equal(tc_grpc_start(&f.loop, &f.bridge, &opts, &first, &port, &err), 0);
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  opts.listen_addr = addr;
  assert_int_equal(tc_grpc_start(&f.loop, &f.bridge, &opts, &second, &port2, &err), TC_ECONFIG);
  assert_null(second);
  assert_non_null(err);
  assert_non_null(strstr(err, addr));
  free(err);
  f.grpc = first;
  request_stop(&f);
  loop_run_to_end(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_statuses),
      cmocka_unit_test(test_deadline_mid_call),
      cmocka_unit_test(test_graceful_stop_lets_call_finish),
      cmocka_unit_test(test_stop_cancels_after_grace),
      cmocka_unit_test(test_many_concurrent_calls),
      cmocka_unit_test(test_bind_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
