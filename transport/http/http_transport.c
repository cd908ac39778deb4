/* tc_http_transport: the HTTP/JSON gateway (http_server.h) behind the
 * transport interface, configured from the server.http.* keys; with
 * metrics.port set, a second, plaintext listener on that port that serves
 * GET /metrics only (and the HTTP port then does not serve it). */
#include "http_transport.h"

#include <stdlib.h>
#include <string.h>

#include "server.h"

#include "http_server.h"
#include "tls_context.h"
#include "log.h"
#include "tuplecast/errors.h"

/* The metrics listener's connections: scrapers, a handful. */
#define METRICS_MAX_CONNECTIONS 8

typedef struct http_transport_s {
  const tc_config_t *cfg;
  tc_tls_ctx_t *tls;         /* NULL when server.http.tls is off */
  tc_http_server_t *server;  /* while serving */
  tc_http_server_t *metrics; /* metrics.port's listener, while serving */
  void (*stop_cb)(void *arg);
  void *stop_arg;
} http_transport_t;

static int http_open(const tc_config_t *cfg, void **inst, tc_transport_plan_t *plan,
                     char **errmsg) {
  *inst = NULL;
  *plan = (tc_transport_plan_t){.enabled = 0};
  if (cfg->http_header_timeout_ms <= 0) {
    *errmsg = strdup("server.http.header_timeout: must be longer than 0s");
    return TC_ECONFIG;
  }
  if (!cfg->http_enabled && cfg->metrics_port) {
    *errmsg = strdup(
        "metrics.port: the metrics listener is part of the HTTP transport; set "
        "server.http.enabled to true, or leave metrics.port at 0");
    return TC_ECONFIG;
  }
  if (!cfg->http_enabled) return 0;
  http_transport_t *t = calloc(1, sizeof *t);
  if (!t) return TC_ENOMEM;
  t->cfg = cfg;
  int rc = tc_tls_ctx_load_if(cfg->http_tls_enabled, "server.http.tls", cfg->http_tls_cert,
                              cfg->http_tls_key, "http/1.1", &t->tls, errmsg);
  if (rc != 0) return free(t), rc;
  *plan = (tc_transport_plan_t){.enabled = 1,
                                .tls = t->tls != NULL,
                                .max_connections = cfg->http_max_connections,
                                .max_key = "server.http.max_connections",
                                .fds_per_connection = 1};
  *inst = t;
  return 0;
}

static int http_start(void *inst, const tc_transport_env_t *env, int *port, char **errmsg) {
  http_transport_t *t = inst;
  const tc_config_t *cfg = t->cfg;
  tc_http_opts_t opts = {
      .host = cfg->server_host,
      .port = cfg->http_port,
      .find_method = env->find_method,
      .server = env->server,
      .ready = tc_server_ready,
      .cors_origins = cfg->http_cors_allowed_origins.items,
      .n_cors_origins = cfg->http_cors_allowed_origins.count,
      .cors_headers = cfg->http_cors_allowed_headers.items,
      .n_cors_headers = cfg->http_cors_allowed_headers.count,
      .max_body_bytes = (size_t)cfg->grpc_max_message_size,
      .header_timeout_ms = (int)cfg->http_header_timeout_ms,
      .max_connections = (size_t)env->max_connections,
      .tls = t->tls,
      .metrics = cfg->metrics_port ? TC_HTTP_METRICS_OFF : TC_HTTP_METRICS_TOO,
  };
  int rc = tc_http_start(env->loop, &opts, &t->server, port, errmsg);
  if (rc != 0 || !cfg->metrics_port) return rc;
  opts.port = cfg->metrics_port;
  opts.tls = NULL;
  opts.max_connections = METRICS_MAX_CONNECTIONS;
  opts.metrics = TC_HTTP_METRICS_ONLY;
  int mport = 0;
  if ((rc = tc_http_start(env->loop, &opts, &t->metrics, &mport, errmsg)) == 0)
    tc_log(TC_LOG_INFO, "metrics listening on port %d", mport);
  return rc;
}

static size_t http_connections(void *inst) {
  http_transport_t *t = inst;
  return t->server ? tc_http_connections(t->server) : 0;
}

/* The API listener has stopped: now the metrics one, if any. */
static void on_api_stopped(void *arg) {
  http_transport_t *t = arg;
  t->server = NULL; /* freed by its stop */
  if (t->metrics)
    tc_http_stop(t->metrics, t->stop_cb, t->stop_arg);
  else
    t->stop_cb(t->stop_arg);
}

static void http_stop(void *inst, void (*cb)(void *arg), void *arg) {
  http_transport_t *t = inst; /* the servers are freed by the stop: stop() runs once */
  t->stop_cb = cb;
  t->stop_arg = arg;
  if (t->server)
    tc_http_stop(t->server, on_api_stopped, t);
  else
    on_api_stopped(t);
}

static void http_reload_tls(void *inst) {
  tc_tls_ctx_reload_logged(((http_transport_t *)inst)->tls);
}

static void http_free(void *inst) {
  if (inst) tc_tls_ctx_free(((http_transport_t *)inst)->tls);
  free(inst);
}

const tc_transport_t tc_http_transport = {.name = "http",
                                          .open = http_open,
                                          .start = http_start,
                                          .stop = http_stop,
                                          .reload_tls = http_reload_tls,
                                          .free = http_free,
                                          .connections = http_connections};
