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
#define BURST_STREAMS 300 /* more than the transport's yield threshold, 256 */

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
  int stream_pending_wrong; /* Count: call->pending differed from the number queued */
  int send_after_cancel;    /* what send() returned inside on_cancel */
  int flood_max_pending, flood_capped;
  int flood_pending_wrong;         /* Flood: call->pending != sends - on_sent callbacks */
  char flood_message[64];          /* the status message Flood ended with */
  tc_call_t *burst[BURST_STREAMS]; /* Burst streams, until the burst ends them */
  int n_burst;
  uv_timer_t burst_timer;
  uint64_t burst_yields; /* tc_grpc_yields() grew by this in the burst's turn */
  /* Counters client threads wait on (wait_for), under lock: hang handlers
   * that saw their call cancelled, streams whose on_cancel ran, transport
   * stops completed. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int hang_cancelled, stream_cancelled, stops_done;
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

/* The timer becomes the handler's per-call state, call->handler. */
static int start_pending(tc_call_t *call, uv_timer_cb cb, uint64_t delay_ms, uint64_t repeat_ms) {
  pending_t *p = calloc(1, sizeof *p);
  if (!p) return tc_call_error(call, TC_ENOMEM, "ERROR_CODE_INTERNAL");
  p->call = call;
  call->handler = p;
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

/* Loop thread: counts one more of *counter for client threads in wait_for(). */
static void count_up(fixture_t *f, int *counter) {
  pthread_mutex_lock(&f->lock);
  (*counter)++;
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->lock);
}

/* Never answers until the call is cancelled; it sets no on_cancel, so it
 * looks each loop turn or so. */
static void hang_check(uv_timer_t *t) {
  pending_t *p = t->data;
  tc_call_t *call = p->call;
  if (!call->cancelled) return;
  fixture_t *f = call->server;
  call->done(call, TC_ECANCELLED, "ERROR_CODE_CANCELLED", NULL);
  uv_close((uv_handle_t *)t, on_pending_closed);
  count_up(f, &f->hang_cancelled);
}

static int h_hang(tc_call_t *call) {
  call->server->hang_started++;
  return start_pending(call, hang_check, 1, 1);
}

static int h_stop_then_hang(tc_call_t *call) {
  request_stop(call->server);
  return h_hang(call);
}

/* Streams send TenantListResponse messages; the token tells them apart. */
static int send_token(tc_call_t *call, const char *token) {
  Base__V1__TenantListResponse msg = BASE__V1__TENANT_LIST_RESPONSE__INIT;
  msg.continuous_token = (char *)token;
  return call->send(call, &msg.base);
}

static void end_ok(uv_timer_t *t) {
  pending_t *p = t->data;
  p->call->done(p->call, 0, NULL, NULL);
  uv_close((uv_handle_t *)t, on_pending_closed);
}

/* Queues page_size messages "<token>-<i>" at once, then ends with OK on the
 * next loop turn. */
static int h_count(tc_call_t *call) {
  const Base__V1__TenantListRequest *req = (const Base__V1__TenantListRequest *)call->request;
  char token[64];
  for (uint32_t i = 0; i < req->page_size; i++) {
    snprintf(token, sizeof token, "%s-%u", req->continuous_token, i);
    if (send_token(call, token) < 0) return tc_call_error(call, TC_EINTERNAL, "send failed");
  }
  if (call->pending != req->page_size) call->server->stream_pending_wrong++;
  return start_pending(call, end_ok, 0, 0);
}

/* Tick: one message per millisecond until the client leaves; on_cancel ends
 * the call from inside the callback. */
static void tick(uv_timer_t *t) {
  pending_t *p = t->data;
  send_token(p->call, "tick");
}

static void tick_cancelled(tc_call_t *call) {
  pending_t *p = call->handler;
  fixture_t *f = call->server;
  f->send_after_cancel = send_token(call, "late");
  call->done(call, TC_ECANCELLED, "ERROR_CODE_CANCELLED", NULL);
  uv_close((uv_handle_t *)&p->timer, on_pending_closed);
  count_up(f, &f->stream_cancelled);
}

static int h_tick(tc_call_t *call) {
  call->on_cancel = tick_cancelled;
  return start_pending(call, tick, 1, 1);
}

static int h_stop_then_tick(tc_call_t *call) {
  request_stop(call->server);
  return h_tick(call);
}

/* Flood: queues FLOOD_BURST messages of FLOOD_BYTES each millisecond for a
 * client that does not read, until FLOOD_HIGH are still pending at a tick
 * (the transport holds them back), then gives up on the client with
 * TC_EEXHAUSTED and stops the server, which completes only once that call is
 * over.  Checks call->pending against its own count throughout. */
#define FLOOD_BURST 16
#define FLOOD_BYTES (16 * 1024)
#define FLOOD_HIGH 64
#define FLOOD_CAP 4096 /* messages: the client absorbs this much, the test fails */

typedef struct flood_s {
  pending_t p; /* first: the timer's data */
  size_t sent, acked;
  char payload[FLOOD_BYTES + 1];
} flood_t;

static void flood_check(tc_call_t *call) {
  flood_t *fl = call->handler;
  if (call->pending != fl->sent - fl->acked) call->server->flood_pending_wrong++;
  if ((int)call->pending > call->server->flood_max_pending)
    call->server->flood_max_pending = (int)call->pending;
}

static void flood_sent(tc_call_t *call) {
  ((flood_t *)call->handler)->acked++;
  flood_check(call);
}

static void flood_tick(uv_timer_t *t) {
  flood_t *fl = t->data;
  tc_call_t *call = fl->p.call;
  fixture_t *f = call->server;
  if (call->pending < FLOOD_HIGH && fl->sent < FLOOD_CAP) {
    for (int i = 0; i < FLOOD_BURST; i++) {
      if (send_token(call, fl->payload) == 0) fl->sent++;
      flood_check(call);
    }
    return;
  }
  f->flood_capped = fl->sent >= FLOOD_CAP;
  snprintf(f->flood_message, sizeof f->flood_message, "slow reader: resume from %zu", fl->acked);
  call->done(call, TC_EEXHAUSTED, f->flood_message, NULL);
  uv_close((uv_handle_t *)t, on_pending_closed);
  request_stop(f);
}

static int h_flood(tc_call_t *call) {
  flood_t *fl = calloc(1, sizeof *fl);
  if (!fl) return tc_call_error(call, TC_ENOMEM, "ERROR_CODE_INTERNAL");
  memset(fl->payload, 'f', FLOOD_BYTES);
  fl->p.call = call;
  call->handler = fl;
  call->on_sent = flood_sent;
  uv_timer_init(&call->server->loop, &fl->p.timer);
  fl->p.timer.data = fl;
  uv_timer_start(&fl->p.timer, flood_tick, 1, 1);
  return 0;
}

/* As the core does when the server stops: one message, then the stream is
 * ended with UNAVAILABLE before the transport is asked to stop. */
static void end_unavailable_then_stop(uv_timer_t *t) {
  pending_t *p = t->data;
  fixture_t *f = p->call->server;
  p->call->done(p->call, TC_EUNAVAILABLE, "server stopping", NULL);
  request_stop(f);
  uv_close((uv_handle_t *)t, on_pending_closed);
}

static int h_stream_then_stop(tc_call_t *call) {
  if (send_token(call, "first") < 0) return tc_call_error(call, TC_EINTERNAL, "send failed");
  return start_pending(call, end_unavailable_then_stop, 20, 0);
}

/* Burst: the streams wait until BURST_STREAMS are open; then one loop turn
 * sends each its "<token>-0" and ends it, as a feed fans a transaction out.
 * That turn starts more batches than the poller's threshold, so the poller
 * must stay out of the queue until the turn is over, and come back. */
static void burst_send(uv_timer_t *t) {
  fixture_t *f = t->data;
  uint64_t before = tc_grpc_yields(f->grpc);
  char token[64];
  for (int i = 0; i < f->n_burst; i++) {
    tc_call_t *call = f->burst[i];
    const Base__V1__TenantListRequest *req = (const Base__V1__TenantListRequest *)call->request;
    snprintf(token, sizeof token, "%s-0", req->continuous_token);
    if (send_token(call, token) == 0)
      call->done(call, 0, NULL, NULL);
    else
      call->done(call, TC_EINTERNAL, "send failed", NULL);
  }
  f->burst_yields = tc_grpc_yields(f->grpc) - before;
  uv_close((uv_handle_t *)t, NULL);
}

static int h_burst(tc_call_t *call) {
  fixture_t *f = call->server;
  f->burst[f->n_burst++] = call;
  if (f->n_burst < BURST_STREAMS) return 0;
  uv_timer_init(&f->loop, &f->burst_timer);
  f->burst_timer.data = f;
  uv_timer_start(&f->burst_timer, burst_send, 0, 0);
  return 0;
}

#define LIST_IN &base__v1__tenant_list_request__descriptor
#define LIST_OUT &base__v1__tenant_list_response__descriptor
/* A test method under /test.v1.Test/, tenant-list messages both ways, no
 * admission gate. */
#define TEST_METHOD(name, handler, streaming) \
  { "/test.v1.Test/" name, LIST_IN, LIST_OUT, handler, streaming, 0, 0 }
static const tc_method_t methods[] = {
    TEST_METHOD("Later", h_later, 0),
    TEST_METHOD("Fail", h_fail, 0),
    TEST_METHOD("Hang", h_hang, 0),
    TEST_METHOD("Null", NULL, 0),
    TEST_METHOD("StopThenAnswer", h_stop_then_answer, 0),
    TEST_METHOD("StopThenHang", h_stop_then_hang, 0),
    TEST_METHOD("Count", h_count, 1),
    TEST_METHOD("Tick", h_tick, 1),
    TEST_METHOD("StopThenTick", h_stop_then_tick, 1),
    TEST_METHOD("Flood", h_flood, 1),
    TEST_METHOD("StreamThenStop", h_stream_then_stop, 1),
    TEST_METHOD("Burst", h_burst, 1),
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
  count_up(f, &f->stops_done);
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
  tc_grpc_opts_t opts = {.host = "127.0.0.1",
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

/* Client threads: wait (with a deadline) until *counter (a counter under
 * f->lock) reaches n; returns its value. */
static int wait_for(fixture_t *f, const int *counter, int n) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  pthread_mutex_lock(&f->lock);
  int rc = 0;
  while (*counter < n && rc == 0) rc = pthread_cond_timedwait(&f->cond, &f->lock, &until);
  int seen = *counter;
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
  basic[R_MALFORMED].status =
      tc_client_unary_raw(c, "/test.v1.Test/Later", bad, sizeof bad, LIST_OUT, NULL,
                          &basic[R_MALFORMED].details, TIMEOUT_MS);
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
  deadline_seen_cancel = wait_for(f, &f->hang_cancelled, 1);
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

/* ---- streaming tests ----------------------------------------------------- */

typedef struct stream_result_s {
  int n_msgs, out_of_order;
  int end;    /* tc_stream_next's last result: 1 ended, -1 timed out */
  int status; /* when ended */
  char details[128];
} stream_result_t;

static tc_stream_t *open_stream(tc_client_t *c, const char *method, const char *token,
                                uint32_t page_size, int deadline_ms) {
  Base__V1__TenantListRequest req = BASE__V1__TENANT_LIST_REQUEST__INIT;
  req.continuous_token = (char *)token;
  req.page_size = page_size;
  return tc_client_stream_open(c, method, &req.base, NULL, deadline_ms);
}

/* Reads up to max messages (each due within 5 s), then records how the
 * stream ended.  With token, the messages must be "<token>-0", "-1", ... */
static void read_stream(tc_stream_t *s, const char *token, int max, stream_result_t *r) {
  ProtobufCMessage *m;
  char want[64];
  while (r->n_msgs < max && (r->end = tc_stream_next(s, LIST_OUT, &m, 5000)) == 0) {
    const Base__V1__TenantListResponse *resp = (const Base__V1__TenantListResponse *)m;
    snprintf(want, sizeof want, "%s-%d", token ? token : "", r->n_msgs);
    if (token && strcmp(resp->continuous_token, want) != 0) r->out_of_order++;
    r->n_msgs++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  const char *details = NULL;
  r->status = tc_stream_status(s, &details);
  snprintf(r->details, sizeof r->details, "%s", details ? details : "");
}

static void read_to_end(tc_stream_t *s, const char *token, stream_result_t *r) {
  read_stream(s, token, 1 << 30, r);
}

/* The one stream a test's client thread opens and reads to its end. */
typedef struct one_stream_s {
  const char *method, *token; /* with token, the messages are checked in order */
  uint32_t page_size;
  int deadline_ms;
  stream_result_t result;
} one_stream_t;
static one_stream_t one;

static void one_stream_client(fixture_t *f, int idx) {
  (void)idx;
  tc_client_t *c = tc_client_new(f->target);
  tc_stream_t *s = open_stream(c, one.method, one.token, one.page_size, one.deadline_ms);
  read_to_end(s, one.token, &one.result);
  tc_stream_free(s);
  tc_client_free(c);
}

#define IN_ORDER_N 500

static void test_stream_in_order(void **state) {
  (void)state;
  fixture_t f = {0};
  one = (one_stream_t){.method = "/test.v1.Test/Count", .token = "a", .page_size = IN_ORDER_N};
  run(&f, 1, one_stream_client);
  assert_int_equal(one.result.n_msgs, IN_ORDER_N);
  assert_int_equal(one.result.out_of_order, 0);
  assert_int_equal(one.result.end, 1);
  assert_int_equal(one.result.status, 0);
  assert_int_equal(f.stream_pending_wrong, 0);
}

/* Initial metadata goes with the status when no message came first. */
static void test_stream_empty(void **state) {
  (void)state;
  fixture_t f = {0};
  one = (one_stream_t){.method = "/test.v1.Test/Count", .token = "e", .page_size = 0};
  run(&f, 1, one_stream_client);
  assert_int_equal(one.result.n_msgs, 0);
  assert_int_equal(one.result.end, 1);
  assert_int_equal(one.result.status, 0);
}

/* The client's deadline reaches the handler as on_cancel. */
static void test_stream_deadline(void **state) {
  (void)state;
  fixture_t f = {0};
  one = (one_stream_t){.method = "/test.v1.Test/Tick", .deadline_ms = 300};
  run(&f, 1, one_stream_client);
  assert_true(one.result.n_msgs > 0);
  assert_int_equal(one.result.end, 1);
  assert_int_equal(one.result.status, 4); /* DEADLINE_EXCEEDED */
  assert_int_equal(f.stream_cancelled, 1);
  assert_int_equal(f.send_after_cancel, TC_ECANCELLED);
}

static stream_result_t cancel_first, cancel_rest;
static int cancel_seen;

static void cancel_client(fixture_t *f, int idx) {
  (void)idx;
  tc_client_t *c = tc_client_new(f->target);
  tc_stream_t *s = open_stream(c, "/test.v1.Test/Tick", "", 0, 0);
  read_stream(s, NULL, 3, &cancel_first);
  tc_stream_cancel(s);
  read_to_end(s, NULL, &cancel_rest);
  cancel_seen = wait_for(f, &f->stream_cancelled, 1);
  tc_stream_free(s);
  tc_client_free(c);
}

static void test_stream_client_cancel(void **state) {
  (void)state;
  fixture_t f = {0};
  run(&f, 1, cancel_client);
  assert_int_equal(cancel_first.n_msgs, 3);
  assert_int_equal(cancel_rest.end, 1);
  assert_int_equal(cancel_rest.status, 1); /* CANCELLED, set by the client */
  assert_int_equal(cancel_seen, 1);
  assert_int_equal(f.send_after_cancel, TC_ECANCELLED);
}

static stream_result_t flood_result;
static int flood_stop_seen;

/* Does not read until the server has ended the call and stopped: ending a
 * call stuck on flow control must not need the client. */
static void flood_client(fixture_t *f, int idx) {
  (void)idx;
  tc_client_t *c = tc_client_new(f->target);
  tc_stream_t *s = open_stream(c, "/test.v1.Test/Flood", "", 0, 0);
  flood_stop_seen = wait_for(f, &f->stops_done, 1);
  read_to_end(s, NULL, &flood_result);
  tc_stream_free(s);
  tc_client_free(c);
}

static void test_stream_slow_reader(void **state) {
  (void)state;
  /* Longer than wait_for() waits: only ending the call at once stops in time. */
  fixture_t f = {.grace_ms = 8000};
  run(&f, 1, flood_client);
  assert_int_equal(flood_stop_seen, 1);
  assert_false(f.flood_capped);
  assert_true(f.flood_max_pending >= FLOOD_HIGH);
  assert_int_equal(f.flood_pending_wrong, 0);
  assert_int_equal(flood_result.end, 1);
  assert_int_equal(flood_result.status, 8); /* RESOURCE_EXHAUSTED */
  assert_string_equal(flood_result.details, f.flood_message);
  printf("slow reader: %d messages reached the client before %s\n", flood_result.n_msgs,
         f.flood_message);
}

/* The handler ends its stream with UNAVAILABLE and then stops the server,
 * as the core does; the stop need not wait for the grace period. */
static void test_stream_graceful_stop(void **state) {
  (void)state;
  fixture_t f = {0};
  one = (one_stream_t){.method = "/test.v1.Test/StreamThenStop"};
  run(&f, 1, one_stream_client);
  assert_int_equal(one.result.end, 1);
  assert_int_equal(one.result.status, 14); /* UNAVAILABLE */
  assert_string_equal(one.result.details, "server stopping");
}

static void test_stream_stop_cancels_after_grace(void **state) {
  (void)state;
  fixture_t f = {.grace_ms = 50};
  one = (one_stream_t){.method = "/test.v1.Test/StopThenTick"};
  run(&f, 1, one_stream_client);
  assert_int_equal(one.result.end, 1);
  assert_int_not_equal(one.result.status, 0);
  assert_true(one.result.n_msgs > 0);
  assert_int_equal(f.stream_cancelled, 1);
}

/* Streams on one client, so one connection: open them all, then read each
 * to its end, which must be n_msgs messages "s<i>-0", "s<i>-1", ... */
static struct many_s {
  const char *method;
  int n_streams, n_msgs;
  int ok; /* streams that read as expected */
} many;

static void many_streams_client(fixture_t *f, int idx) {
  (void)idx;
  tc_client_t *c = tc_client_new(f->target);
  tc_stream_t **streams = calloc((size_t)many.n_streams, sizeof *streams);
  char token[16];
  for (int i = 0; i < many.n_streams; i++) {
    snprintf(token, sizeof token, "s%d", i);
    streams[i] = open_stream(c, many.method, token, (uint32_t)many.n_msgs, 0);
  }
  for (int i = 0; i < many.n_streams; i++) {
    if (!streams[i]) continue;
    snprintf(token, sizeof token, "s%d", i);
    stream_result_t r = {0};
    read_to_end(streams[i], token, &r);
    if (r.n_msgs == many.n_msgs && r.out_of_order == 0 && r.end == 1 && r.status == 0) many.ok++;
    tc_stream_free(streams[i]);
  }
  free(streams);
  tc_client_free(c);
}

static void test_many_streams_one_connection(void **state) {
  (void)state;
  fixture_t f = {0};
  many = (struct many_s){.method = "/test.v1.Test/Count", .n_streams = 200, .n_msgs = 5};
  run(&f, 1, many_streams_client);
  assert_int_equal(many.ok, many.n_streams);
  assert_int_equal(f.stream_pending_wrong, 0);
}

/* A burst of sends in one loop turn: the poller yields once for that turn and
 * comes back after it, so every stream gets its message and its status. */
static void test_burst_yields_the_queue(void **state) {
  (void)state;
  fixture_t f = {0};
  many = (struct many_s){.method = "/test.v1.Test/Burst", .n_streams = BURST_STREAMS, .n_msgs = 1};
  run(&f, 1, many_streams_client);
  assert_int_equal(f.n_burst, BURST_STREAMS);
  assert_int_equal(f.burst_yields, 1);
  assert_int_equal(many.ok, BURST_STREAMS);
}

static void test_bind_failure(void **state) {
  (void)state;
  fixture_t f = {0};
  loop_open(&f);
  tc_grpc_opts_t opts = {.host = "127.0.0.1", .find_method = find_method, .server = &f};
  tc_grpc_server_t *first = NULL, *second = NULL;
  int port = 0, port2 = 0;
  char *err = NULL;
  assert_int_equal(tc_grpc_start(&f.loop, &f.bridge, &opts, &first, &port, &err), 0);
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  opts.port = port;
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
      cmocka_unit_test(test_stream_in_order),
      cmocka_unit_test(test_stream_empty),
      cmocka_unit_test(test_stream_deadline),
      cmocka_unit_test(test_stream_client_cancel),
      cmocka_unit_test(test_stream_slow_reader),
      cmocka_unit_test(test_stream_graceful_stop),
      cmocka_unit_test(test_stream_stop_cancels_after_grace),
      cmocka_unit_test(test_many_streams_one_connection),
      cmocka_unit_test(test_burst_yields_the_queue),
      cmocka_unit_test(test_bind_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
