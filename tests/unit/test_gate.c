/* The admission gate in-process: the token bucket on a clock the test
 * drives, and an authenticator that answers later (as OIDC does), with the
 * client leaving before or after it answers - done() exactly once, nothing
 * used after free (the ASan build checks the latter). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/v1/service.pb-c.h"
#include "gate.h"
#include "server_state.h"
#include "tuplecast/errors.h"

/* Permify's bucket on a clock we drive: capacity = rate, one token per
 * 1 s / rate on a grid from the start, ticks passed while full are lost. */
static void test_bucket(void **state) {
  (void)state;
  const uint64_t ms = 1000000, t0 = 5000 * ms;
  tc_bucket_t b;
  tc_bucket_init(&b, 4, t0); /* a token every 250 ms */
  for (int i = 0; i < 4; i++) assert_true(tc_bucket_take(&b, t0 + 1 * ms));
  assert_false(tc_bucket_take(&b, t0 + 249 * ms));
  assert_true(tc_bucket_take(&b, t0 + 250 * ms)); /* the grid point, not 250 ms after */
  assert_false(tc_bucket_take(&b, t0 + 499 * ms));
  /* Twelve intervals later: full again, but never more than capacity. */
  for (int i = 0; i < 4; i++) assert_true(tc_bucket_take(&b, t0 + 3000 * ms));
  assert_false(tc_bucket_take(&b, t0 + 3000 * ms));
  /* While full, passing ticks are lost: 2 s idle gives 4, not 12. */
  tc_bucket_init(&b, 4, t0);
  for (int i = 0; i < 4; i++) assert_true(tc_bucket_take(&b, t0 + 2000 * ms));
  assert_false(tc_bucket_take(&b, t0 + 2100 * ms));
  /* A rate above 1e9/s still has a 1 ns interval. */
  tc_bucket_init(&b, 2000000000, t0);
  assert_true(tc_bucket_take(&b, t0));
}

/* ---- a pending authenticator ------------------------------------------- */

typedef struct {
  tc_authn_t base;
  tc_authn_cb cb;
  void *arg;
  size_t len;
  int closed;
} later_t;

static int later_verify(tc_authn_t *a, const char *header, size_t len, tc_authn_cb cb, void *arg) {
  (void)header;
  later_t *l = (later_t *)a;
  l->cb = cb;
  l->arg = arg;
  l->len = len;
  return TC_AUTHN_PENDING;
}

static void later_close(tc_authn_t *a) {
  later_t *l = (later_t *)a;
  if (l->cb) l->cb(l->arg, TC_ECANCELLED);
  l->cb = NULL;
  l->closed = 1;
}

static const tc_authn_ops_t later_ops = {later_verify, later_close};

/* ---- a call ------------------------------------------------------------ */

typedef struct {
  tc_call_t call;
  int done, status;
} fcall_t;

static int handled;

static int handler(tc_call_t *call) {
  handled++;
  call->done(call, 0, NULL, NULL);
  return 0;
}

static const tc_method_t method = {"/base.v1.Tenancy/List",
                                   &base__v1__tenant_list_request__descriptor,
                                   &base__v1__tenant_list_response__descriptor,
                                   handler,
                                   0,
                                   0,
                                   0};

static void on_done(tc_call_t *call, int status, const char *message,
                    const ProtobufCMessage *response) {
  (void)message;
  (void)response;
  fcall_t *f = (fcall_t *)call;
  f->done++;
  f->status = status;
}

static Base__V1__TenantListRequest list_req = BASE__V1__TENANT_LIST_REQUEST__INIT;

static fcall_t *fcall_new(tc_server_t *srv) {
  fcall_t *f = calloc(1, sizeof *f);
  f->call.server = srv;
  f->call.method = &method;
  f->call.request = &list_req.base;
  f->call.authorization = "Bearer x\0y";
  f->call.authorization_len = 10;
  f->call.done = on_done;
  return f;
}

static void test_pending(void **state) {
  (void)state;
  later_t l = {.base.ops = &later_ops};
  tc_server_t srv = {0};
  assert_int_equal(tc_gate_open(1000, &l.base, &srv.gate), 0);
  handled = 0;

  /* Allowed later: the handler runs then, done once. */
  fcall_t *a = fcall_new(&srv);
  assert_int_equal(tc_gate_admit(&a->call), 0);
  assert_int_equal(l.len, 10); /* the real length reached the authenticator */
  assert_int_equal(a->done, 0);
  l.cb(l.arg, 0);
  assert_int_equal(handled, 1);
  assert_int_equal(a->done, 1);
  free(a);

  /* Refused later: done with the code, the handler never runs. */
  fcall_t *b = fcall_new(&srv);
  assert_int_equal(tc_gate_admit(&b->call), 0);
  l.cb(l.arg, TC_EINVALID_BEARER);
  assert_int_equal(b->done, 1);
  assert_int_equal(b->status, TC_EINVALID_BEARER);
  assert_int_equal(handled, 1);
  free(b);

  /* The client leaves first: answered CANCELLED at once; the late answer
   * touches nothing of the call (which the transport may have freed: kept
   * here, poisoned, so a second done() shows without ASan too). */
  fcall_t *c = fcall_new(&srv);
  assert_int_equal(tc_gate_admit(&c->call), 0);
  c->call.cancelled = 1;
  c->call.on_cancel(&c->call);
  assert_int_equal(c->done, 1);
  assert_int_equal(c->status, TC_ECANCELLED);
  c->call.cancelled = 0;
  l.cb(l.arg, 0);
  assert_int_equal(c->done, 1);
  assert_int_equal(handled, 1);
  free(c);

  /* Closing the gate while a verify is pending answers it CANCELLED. */
  fcall_t *d = fcall_new(&srv);
  assert_int_equal(tc_gate_admit(&d->call), 0);
  tc_gate_close(srv.gate);
  assert_true(l.closed);
  assert_int_equal(d->done, 1);
  assert_int_equal(d->status, TC_ECANCELLED);
  free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket),
      cmocka_unit_test(test_pending),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
