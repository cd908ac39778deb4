/* The admission gate (gate.h): validation, rate limit, authentication, then
 * the handler.  A verify that answers later parks the call in a pending_t
 * until its callback; the client may leave meanwhile. */
#include "gate.h"

#include <stdlib.h>

#include <uv.h>

#include "error.h"
#include "server_state.h"
#include "service.h"
#include "tuplecast/errors.h"

struct tc_gate_s {
  tc_bucket_t bucket;
  tc_authn_t *authn;
};

/* Permify's limiter (a juju/ratelimit bucket): capacity = rate, one token
 * per interval on a fixed grid, ticks passed while full are lost. */
void tc_bucket_init(tc_bucket_t *b, int64_t rate, uint64_t now_ns) {
  b->capacity = b->tokens = rate;
  b->interval_ns = 1000000000 / rate;
  if (b->interval_ns < 1) b->interval_ns = 1;
  b->start_ns = (int64_t)now_ns;
  b->tick = 0;
}

int tc_bucket_take(tc_bucket_t *b, uint64_t now_ns) {
  int64_t tick = ((int64_t)now_ns - b->start_ns) / b->interval_ns;
  if (tick > b->tick) {
    if (b->tokens < b->capacity) {
      int64_t add = tick - b->tick;
      b->tokens = add >= b->capacity - b->tokens ? b->capacity : b->tokens + add;
    }
    b->tick = tick;
  }
  if (b->tokens <= 0) return 0;
  b->tokens--;
  return 1;
}

int tc_gate_open(int64_t rate, tc_authn_t *authn, tc_gate_t **out) {
  tc_gate_t *g = calloc(1, sizeof *g);
  if (!g) return TC_ENOMEM;
  tc_bucket_init(&g->bucket, rate, uv_hrtime());
  g->authn = authn;
  *out = g;
  return 0;
}

void tc_gate_close(tc_gate_t *g) {
  if (!g) return;
  if (g->authn) g->authn->ops->close(g->authn);
  free(g);
}

/* A call whose authenticator answers later.  call is NULL once the client
 * left: it was answered then, and the callback only frees this. */
typedef struct {
  tc_call_t *call;
} pending_t;

static void run_handler(tc_call_t *call) {
  int rc = tc__call_handle(call);
  if (rc < 0) call->done(call, rc, call->errmsg ? call->errmsg : tc_err_code_name(rc), NULL);
}

static void on_cancel_pending(tc_call_t *call) {
  pending_t *p = call->handler;
  call->handler = NULL;
  call->on_cancel = NULL;
  p->call = NULL;
  call->done(call, TC_ECANCELLED, tc_err_code_name(TC_ECANCELLED), NULL);
}

static void on_verified(void *arg, int rc) {
  pending_t *p = arg;
  tc_call_t *call = p->call;
  free(p);
  if (!call) return; /* answered when the client left */
  call->handler = NULL;
  call->on_cancel = NULL;
  if (rc == 0 && call->cancelled) rc = TC_ECANCELLED;
  if (rc != 0)
    call->done(call, rc, tc_err_code_name(rc), NULL);
  else
    run_handler(call);
}

static int authenticate(tc_gate_t *g, tc_call_t *call) {
  pending_t *p = malloc(sizeof *p);
  if (!p) return TC_ENOMEM;
  p->call = call;
  int rc =
      g->authn->ops->verify(g->authn, call->authorization, call->authorization_len, on_verified, p);
  if (rc == TC_AUTHN_PENDING) {
    call->handler = p;
    call->on_cancel = on_cancel_pending;
    return 0;
  }
  free(p);
  if (rc < 0) return tc_call_error(call, rc, "%s", tc_err_code_name(rc));
  return tc__call_handle(call);
}

int tc_gate_admit(tc_call_t *call) {
  tc_gate_t *g = call->server->gate;
  int rc = tc_call_validate(call);
  if (rc != 0) return rc;
  if (!tc_bucket_take(&g->bucket, uv_hrtime()))
    /* Permify's text (go-grpc-middleware's ratelimit around its limiter's
     * error); the bucket is empty whenever this is reached. */
    return tc_call_error(call, TC_ERATE_LIMITED,
                         "%s is rejected by grpc_ratelimit middleware, please retry later. "
                         "reached Rate-Limiting 0",
                         call->method->path);
  if (!g->authn) return tc__call_handle(call);
  return authenticate(g, call);
}
