/* gRPC server lifecycle: start, accept slots, graceful stop. */
#include <stdlib.h>

#include <grpc/support/log.h>

#include "tuplecast/support.h" /* tc_format */
#include "grpc_internal.h"
#include "log.h"

/* Calls wait in gRPC until a request is posted; keep this many posted. */
#define ACCEPT_SLOTS 64

static void on_shutdown(tc_completion_t *comp);
static void on_cq_done(tc_completion_t *comp);

static void free_after_listener(tc_listener_t *l) { free(l->data); }

/* Start failed after the completion queue and server exist: tear down
 * synchronously, nothing has been handed to the poller or the loop yet. */
static void abort_start(tc_grpc_server_t *s, int started) {
  if (started) {
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
    grpc_server_cancel_all_calls(s->server);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).tag !=
           &s->shutdown_tag)
      ;
  }
  grpc_server_destroy(s->server);
  grpc_completion_queue_shutdown(s->cq);
  while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(s->cq);
  tc__grpc_conn_free(s);
  grpc_shutdown();
  tc__grpc_reflect_unref();
  if (!s->listener_open) {
    free(s);
    return;
  }
  s->listener.on_close = free_after_listener;
  tc_listener_close(&s->listener);
}

/* gRPC's own lines go through our log: one format (in JSON mode every line
 * JSON) and the limiter.  gRPC logs from its threads too: tc_log is
 * thread-safe. */
static void on_grpc_log(gpr_log_func_args *a) {
  int level = a->severity == GPR_LOG_SEVERITY_ERROR  ? TC_LOG_ERROR
              : a->severity == GPR_LOG_SEVERITY_INFO ? TC_LOG_INFO
                                                     : TC_LOG_DEBUG;
  tc_log(level, "grpc: %s (%s:%d)", a->message, a->file, a->line);
}

int tc_grpc_start(uv_loop_t *loop, tc_bridge_t *bridge, const tc_grpc_opts_t *opts,
                  tc_grpc_server_t **out, int *bound_port, char **errmsg) {
  *out = NULL;
  *errmsg = NULL;
  tc_grpc_server_t *s = calloc(1, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->loop = loop;
  s->bridge = bridge;
  s->find_method = opts->find_method;
  s->core = opts->server;
  s->ready = opts->ready;
  s->shutdown_tag.comp.run = on_shutdown;
  s->cq_done.comp.run = on_cq_done;
  int rc = tc__grpc_reflect_ref();
  if (rc < 0) {
    free(s);
    *errmsg = tc_format("cannot index the descriptor set for gRPC reflection");
    return rc;
  }

  gpr_set_log_function(on_grpc_log);
  grpc_init();
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_arg args[2];
  size_t n_args = 0;
  if (opts->max_recv_message_bytes > 0)
    args[n_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                                .value.integer = opts->max_recv_message_bytes};
  if (opts->max_send_message_bytes > 0)
    args[n_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
                                .value.integer = opts->max_send_message_bytes};
  grpc_channel_args chargs = {.num_args = n_args, .args = args};
  s->server = grpc_server_create(&chargs, NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  /* No port of gRPC's own: our listener accepts and hands connections over
   * (the listener is freed with s if the rest of the start fails). */
  rc = tc__grpc_conn_start(s, opts, bound_port, errmsg);
  if (rc < 0) {
    abort_start(s, 0);
    return rc;
  }
  grpc_server_start(s->server);
  rc = tc__grpc_poller_start(s);
  if (rc < 0) {
    *errmsg = tc_format("cannot start the gRPC poller thread");
    abort_start(s, 1);
    return rc;
  }
  uv_timer_init(loop, &s->grace);
  s->grace.data = s;
  for (int i = 0; i < ACCEPT_SLOTS; i++)
    if (tc__grpc_call_accept(s) < 0) break;
  *out = s;
  return 0;
}

static void on_grace_closed(uv_handle_t *h) {
  tc_grpc_server_t *s = h->data;
  void (*cb)(void *) = s->stop_cb;
  void *arg = s->stop_arg;
  free(s);
  tc__grpc_reflect_unref();
  cb(arg);
}

static void on_poller_closed(uv_handle_t *h) {
  tc_grpc_server_t *s = h->data;
  uv_close((uv_handle_t *)&s->grace, on_grace_closed);
}

/* The poller has exited: nothing of gRPC is left but the queue. */
static void on_cq_done(tc_completion_t *comp) {
  tc_grpc_server_t *s = TC_CONTAINER_OF(comp, tc_grpc_server_t, cq_done.comp);
  tc__grpc_poller_join(s);
  grpc_completion_queue_destroy(s->cq);
  grpc_shutdown();
  tc__grpc_poller_close(s, on_poller_closed);
}

/* The server may be destroyed once gRPC has shut it down and every call we
 * accepted is freed (a cancelled call lives on until its handler's done()). */
static void maybe_finish_stop(tc_grpc_server_t *s) {
  if (!s->stopping || !s->shutdown_notified || s->calls || s->n_slots || s->cq_shutting ||
      tc__grpc_conn_busy(s))
    return;
  s->cq_shutting = 1;
  uv_timer_stop(&s->grace);
  grpc_server_destroy(s->server);
  s->server = NULL;
  tc__grpc_conn_free(s);
  grpc_completion_queue_shutdown(s->cq);
}

static void on_shutdown(tc_completion_t *comp) {
  tc_grpc_server_t *s = TC_CONTAINER_OF(comp, tc_grpc_server_t, shutdown_tag.comp);
  s->shutdown_notified = 1;
  maybe_finish_stop(s);
}

void tc__grpc_server_released(tc_grpc_server_t *s) { maybe_finish_stop(s); }

static void on_grace(uv_timer_t *t) {
  tc_grpc_server_t *s = t->data;
  if (s->calls) tc_log(TC_LOG_INFO, "grpc: grace period over, cancelling calls still running");
  grpc_server_cancel_all_calls(s->server);
}

void tc_grpc_stop(tc_grpc_server_t *s, int grace_ms, void (*cb)(void *arg), void *arg) {
  s->stopping = 1;
  s->stop_cb = cb;
  s->stop_arg = arg;
  tc__grpc_health_stop(s);
  tc__grpc_conn_stop(s);
  /* Fails the posted accept slots at once and reports on shutdown_tag when
   * the calls in flight are over. */
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
  uv_timer_start(&s->grace, on_grace, grace_ms > 0 ? (uint64_t)grace_ms : 0, 0);
}
