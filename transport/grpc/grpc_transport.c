/* tc_grpc_transport: the gRPC server (grpc_server.h) behind the transport
 * interface, configured from the server.grpc.* keys. */
#include "grpc_transport.h"

#include <stdlib.h>
#include <string.h>

#include "server.h"

#include "grpc_server.h"
#include "tls_context.h"
#include "tuplecast/errors.h"

typedef struct grpc_transport_s {
  const tc_config_t *cfg;
  tc_tls_ctx_t *tls;        /* NULL when server.grpc.tls is off */
  tc_grpc_server_t *server; /* while serving */
} grpc_transport_t;

static int grpc_open(const tc_config_t *cfg, void **inst, tc_transport_plan_t *plan,
                     char **errmsg) {
  *inst = NULL;
  if (cfg->grpc_handshake_timeout_ms <= 0) {
    *errmsg = strdup("server.grpc.handshake_timeout: must be longer than 0s");
    return TC_ECONFIG;
  }
  grpc_transport_t *t = calloc(1, sizeof *t);
  if (!t) return TC_ENOMEM;
  t->cfg = cfg;
  int rc = tc_tls_ctx_load_if(cfg->grpc_tls_enabled, "server.grpc.tls", cfg->grpc_tls_cert,
                              cfg->grpc_tls_key, "h2", &t->tls, errmsg);
  if (rc != 0) return free(t), rc;
  /* Under TLS a connection holds three descriptors: the client's socket and
   * both ends of the socketpair to gRPC (grpc_tls.c). */
  *plan = (tc_transport_plan_t){.enabled = 1,
                                .tls = t->tls != NULL,
                                .max_connections = cfg->grpc_max_connections,
                                .max_key = "server.grpc.max_connections",
                                .fds_per_connection = t->tls ? 3 : 1};
  *inst = t;
  return 0;
}

static int grpc_start(void *inst, const tc_transport_env_t *env, int *port, char **errmsg) {
  grpc_transport_t *t = inst;
  const tc_config_t *cfg = t->cfg;
  tc_grpc_opts_t opts = {
      .host = "0.0.0.0", /* Permify's gRPC listens on every address, whatever server.host */
      .port = cfg->grpc_port,
      .max_connections = env->max_connections,
      .handshake_timeout_ms = (int)cfg->grpc_handshake_timeout_ms,
      .max_recv_message_bytes = (int)cfg->grpc_max_message_size,
      .max_send_message_bytes = (int)cfg->grpc_max_message_size,
      .find_method = env->find_method,
      .server = env->server,
      .ready = tc_server_ready,
      .tls = t->tls,
  };
  return tc_grpc_start(env->loop, env->bridge, &opts, &t->server, port, errmsg);
}

static void grpc_stop(void *inst, void (*cb)(void *arg), void *arg) {
  grpc_transport_t *t = inst; /* t->server is freed by the stop: stop() runs once */
  if (t->server)
    tc_grpc_stop(t->server, (int)t->cfg->server_shutdown_grace_ms, cb, arg);
  else
    cb(arg);
}

static void grpc_reload_tls(void *inst) {
  tc_tls_ctx_reload_logged(((grpc_transport_t *)inst)->tls);
}

static size_t grpc_connections(void *inst) {
  grpc_transport_t *t = inst;
  return t->server ? tc_grpc_connections(t->server) : 0;
}

static void grpc_free(void *inst) {
  if (inst) tc_tls_ctx_free(((grpc_transport_t *)inst)->tls);
  free(inst);
}

const tc_transport_t tc_grpc_transport = {.name = "grpc",
                                          .open = grpc_open,
                                          .start = grpc_start,
                                          .stop = grpc_stop,
                                          .reload_tls = grpc_reload_tls,
                                          .free = grpc_free,
                                          .connections = grpc_connections};
