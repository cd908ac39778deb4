/* Readiness (ready.h): the backend's ping on a timer, its verdict cached. */
#include "ready.h"

#include "error.h"
#include "log.h"
#include "server_state.h"

static void verdict(tc_server_t *srv, int serving, const char *why) {
  tc__ready_t *r = &srv->ready;
  if (serving == r->serving) return;
  r->serving = serving;
  if (serving)
    tc_log(TC_LOG_INFO, "database reachable again: health SERVING");
  else
    tc_log(TC_LOG_WARN, "database unreachable (%s): health NOT_SERVING", why);
}

static void on_ping(void *arg, int status) {
  tc_server_t *srv = arg;
  srv->ready.probing = 0;
  if (!srv->ready.timer_open) return; /* stopping */
  verdict(srv, status == 0, status == 0 ? NULL : tc_err_symbol(status));
}

static void on_tick(uv_timer_t *t) {
  tc_server_t *srv = t->data;
  tc__ready_t *r = &srv->ready;
  if (r->probing) {
    if (uv_now(srv->loop) - r->probe_started_ms >= TC_READY_TIMEOUT_MS)
      verdict(srv, 0, "no answer to a ping within 2 s");
    return;
  }
  r->probing = 1;
  r->probe_started_ms = uv_now(srv->loop);
  int rc = srv->api->ping(srv->backend, on_ping, srv);
  if (rc != 0) {
    r->probing = 0;
    verdict(srv, 0, tc_err_symbol(rc));
  }
}

void tc__ready_start(tc_server_t *srv) {
  tc__ready_t *r = &srv->ready;
  r->serving = 1;
  if (srv->api->struct_size < TC_BACKEND_API_V2_3_SIZE || !srv->api->ping) return;
  uv_timer_init(srv->loop, &r->timer);
  r->timer.data = srv;
  r->timer_open = 1;
  uv_timer_start(&r->timer, on_tick, TC_READY_PERIOD_MS, TC_READY_PERIOD_MS);
}

void tc__ready_stop(tc_server_t *srv) {
  tc__ready_t *r = &srv->ready;
  if (!r->timer_open) return;
  r->timer_open = 0;
  uv_close((uv_handle_t *)&r->timer, NULL);
}
