/* grpc.health.v1.Health, Check and Watch, answered by the transport itself
 * (never reaches the core, so it needs no authorization).
 *
 * Per service name: "" and every service of the method table (base.v1.*)
 * are readiness, NOT_SERVING while the database does not answer
 * (opts.ready: tc_server_ready); "liveness" and the services the transport answers
 * itself (health, reflection) are SERVING while the process serves at all.
 * Check answers any other name NOT_FOUND; Watch sends SERVICE_UNKNOWN and
 * stays open, as the health protocol asks.
 *
 * Watch sends the status at once, then each time it changes: one timer per
 * server, running while any Watch is open, compares each stream's last
 * status with the cached readiness every HWATCH_PERIOD_MS (the readiness
 * itself changes at most once a second, core/src/ready.h). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc_internal.h"

/* The service name the health protocol uses for the process itself. */
#define LIVENESS "liveness"
#define HWATCH_PERIOD_MS 250

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus status_t;

struct tc__grpc_hwatch_s {
  tc__grpc_hwatch_t *prev, *next;
  tc_call_t *call;
  int kind; /* kind_of() */
  status_t last;
};

/* 1 when name is the service part of path ("/base.v1.Data/Write"). */
static int names_service(const char *path, const char *name) {
  size_t n = strlen(name);
  return path[0] == '/' && strncmp(path + 1, name, n) == 0 && path[1 + n] == '/';
}

/* 1 readiness, 0 liveness, -1 unknown. */
static int kind_of(const char *service) {
  if (!*service) return 1;
  for (size_t i = 0; tc_method_at(i); i++)
    if (names_service(tc_method_at(i)->path, service)) return 1;
  if (strcmp(service, LIVENESS) == 0 || strcmp(service, "grpc.health.v1.Health") == 0 ||
      strcmp(service, "grpc.reflection.v1.ServerReflection") == 0 ||
      strcmp(service, "grpc.reflection.v1alpha.ServerReflection") == 0)
    return 0;
  return -1;
}

static status_t status_of(const tc_call_t *call, int kind) {
  if (kind < 0) return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
  const tc_grpc_server_t *s = tc__grpc_call_server(call);
  return kind == 0 || !s->ready || s->ready(call->server)
             ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
             : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static const char *service_of(const tc_call_t *call) {
  const Grpc__Health__V1__HealthCheckRequest *req = (const void *)call->request;
  return req->service ? req->service : "";
}

/* Answers within the handler: the transport's done() only starts a batch and
 * tolerates being called during dispatch, unlike what core handlers may
 * assume of each other. */
static int check(tc_call_t *call) {
  int kind = kind_of(service_of(call));
  if (kind < 0) return tc_call_error(call, TC_ENOTFOUND, "unknown service %s", service_of(call));
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = status_of(call, kind);
  call->done(call, 0, NULL, &resp.base);
  return 0;
}

static int send_status(tc__grpc_hwatch_t *w, status_t st) {
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = st;
  w->last = st;
  return w->call->send(w->call, &resp.base);
}

/* Unlinks w, stops the timer with the last stream, and ends the call. */
static void hwatch_end(tc__grpc_hwatch_t *w, int status) {
  tc_grpc_server_t *s = tc__grpc_call_server(w->call);
  if (w->prev)
    w->prev->next = w->next;
  else
    s->hwatches = w->next;
  if (w->next) w->next->prev = w->prev;
  if (!s->hwatches && s->hwatch_timer_open) uv_timer_stop(&s->hwatch_timer);
  tc_call_t *call = w->call;
  free(w);
  call->done(call, status, status ? tc_err_code_name(status) : NULL, NULL);
}

static void on_hwatch_tick(uv_timer_t *t) {
  tc_grpc_server_t *s = t->data;
  for (tc__grpc_hwatch_t *w = s->hwatches, *next; w; w = next) {
    next = w->next;
    status_t st = status_of(w->call, w->kind);
    if (st != w->last && send_status(w, st) != 0) hwatch_end(w, TC_ECANCELLED);
  }
}

static void on_hwatch_cancel(tc_call_t *call) { hwatch_end(call->handler, TC_ECANCELLED); }

static int watch(tc_call_t *call) {
  tc_grpc_server_t *s = tc__grpc_call_server(call);
  /* A call accepted before the stop whose request came after it: ended as
   * the stop ended the others (and the timer, closed by then, stays so). */
  if (s->stopping)
    return tc_call_error(call, TC_EUNAVAILABLE, "%s", tc_err_code_name(TC_EUNAVAILABLE));
  tc__grpc_hwatch_t *w = calloc(1, sizeof *w);
  if (!w) return tc_call_error(call, TC_ENOMEM, "out of memory");
  if (!s->hwatch_timer_open) {
    uv_timer_init(s->loop, &s->hwatch_timer);
    s->hwatch_timer.data = s;
    s->hwatch_timer_open = 1;
  }
  if (!s->hwatches)
    uv_timer_start(&s->hwatch_timer, on_hwatch_tick, HWATCH_PERIOD_MS, HWATCH_PERIOD_MS);
  w->call = call;
  w->kind = kind_of(service_of(call));
  w->next = s->hwatches;
  if (w->next) w->next->prev = w;
  s->hwatches = w;
  call->handler = w;
  call->on_cancel = on_hwatch_cancel;
  if (send_status(w, status_of(call, w->kind)) != 0) hwatch_end(w, TC_ECANCELLED);
  return 0;
}

void tc__grpc_health_stop(tc_grpc_server_t *s) {
  while (s->hwatches) hwatch_end(s->hwatches, TC_EUNAVAILABLE);
  if (s->hwatch_timer_open) uv_close((uv_handle_t *)&s->hwatch_timer, NULL);
  s->hwatch_timer_open = 0;
}

static const tc_method_t health_methods[] = {
    {
        .path = "/grpc.health.v1.Health/Check",
        .input = &grpc__health__v1__health_check_request__descriptor,
        .output = &grpc__health__v1__health_check_response__descriptor,
        .handler = check,
    },
    {
        .path = "/grpc.health.v1.Health/Watch",
        .input = &grpc__health__v1__health_check_request__descriptor,
        .output = &grpc__health__v1__health_check_response__descriptor,
        .handler = watch,
        .server_streaming = 1,
    },
};

const tc_method_t *tc__grpc_health_find(const char *path) {
  for (size_t i = 0; i < sizeof health_methods / sizeof health_methods[0]; i++)
    if (strcmp(path, health_methods[i].path) == 0) return &health_methods[i];
  return NULL;
}
