/* Backend conformance case: readiness (ABI 2.3).  ping answers 0 on a
 * later loop turn while the database is there, also behind writes in
 * flight, and a backend destroyed with a ping outstanding still answers
 * it first. */
#include "conformance.h"

typedef struct {
  int done, status;
} ping_result_t;

static void on_ping(void *arg, int status) {
  ping_result_t *r = arg;
  r->status = status;
  r->done = 1;
}

static void ping_ok(ct_fixture_t *f) {
  ping_result_t r = {0};
  assert_int_equal(f->api->ping(f->b, on_ping, &r), 0);
  assert_false(r.done); /* never from inside the call */
  ct_wait_for(f, &r.done);
  assert_int_equal(r.status, 0);
}

void test_ping(void **state) {
  ct_fixture_t *f = *state;
  assert_true(f->api->struct_size >= TC_BACKEND_API_V2_3_SIZE);
  assert_non_null(f->api->ping);
  ping_ok(f);
  ping_ok(f);

  /* Behind writes still in flight. */
  char *t = ct_tenant_name("ping");
  enum { N = 20 };
  ct_batch_t b[N];
  ct_result_t w[N];
  for (int i = 0; i < N; i++) {
    ct_batch_viewer(&b[i], t, (unsigned long)i);
    w[i] = (ct_result_t){0};
    assert_int_equal(f->api->write(f->b, &b[i].w, ct_on_token, &w[i]), 0);
  }
  ping_ok(f);
  for (int i = 0; i < N; i++) {
    ct_wait_for(f, &w[i].done);
    assert_int_equal(w[i].status, 0);
    ct_result_free(&w[i]);
  }

  /* destroy() with a ping out: it is answered before destroy's callback. */
  ping_result_t last = {0};
  assert_int_equal(f->api->ping(f->b, on_ping, &last), 0);
  ct_close_backend(f);
  assert_true(last.done);
  free(t);
}
