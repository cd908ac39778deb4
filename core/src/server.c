#include "server.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "any_json.h"
#include "authn.h"
#include "backend_open.h"
#include "error.h"
#include "format.h"
#include "gate.h"
#include "grpc_server.h"
#include "http_server.h"
#include "log.h"
#include "tenant.h"
#include "tls_context.h"
#include "watch.h"
#include "call.h"

static void on_signal(uv_signal_t *h, int signum) {
  tc_server_t *srv = h->data;
  tc_log(TC_LOG_INFO, "received signal %d, shutting down", signum);
  tc_server_stop(srv);
}

/* host->changed: a backend saw new transactions of a tenant written
 * elsewhere; its feed, if it has one, reads them. */
static void on_backend_changed(const tc_host_api_t *host, const char *tenant_id) {
  tc_bridge_t *b = tc_bridge_from_host(host);
  tc_server_t *srv = TC_CONTAINER_OF(b, tc_server_t, bridge);
  tc_watch_notify(srv, tenant_id);
}

static int open_backend(tc_server_t *srv, char **errmsg) {
  const tc_config_t *cfg = srv->cfg;
  tc_backend_choice_t choice;
  int rc = tc_backend_choose(cfg, &choice, &srv->plugin, errmsg);
  if (rc != 0) return rc;
  srv->api = srv->plugin.api;
  srv->bridge.host.changed = on_backend_changed;
  srv->bridge.host.any_to_json = tc_any_to_json;
  srv->bridge.host.any_from_json = tc_any_from_json;
  char *berr = NULL;
  rc = srv->api->create(&srv->bridge.host, choice.uri, (const char *const *)choice.options,
                        &srv->backend, &berr);
  if (rc != 0) {
    *errmsg = tc_format("database: %s", berr ? berr : tc_err_symbol(rc));
    free(berr);
    tc_plugin_unload(&srv->plugin);
  } else {
    tc_log(TC_LOG_INFO, "database: %s %s (instance %s)", cfg->database_engine,
           choice.memory ? "in memory" : choice.uri, srv->api->instance_id(srv->backend));
  }
  tc_backend_choice_free(&choice);
  return rc;
}

static void on_closed_signal(uv_handle_t *h) { (void)h; }

/* The TLS contexts of the transports that have TLS on; a bad file stops the
 * start with one line naming the key, the file and the problem. */
static int load_tls(tc_server_t *srv, char **errmsg) {
  const tc_config_t *cfg = srv->cfg;
  int rc = 0;
  if (cfg->http_enabled && cfg->http_tls_enabled)
    rc = tc_tls_ctx_load("server.http.tls", cfg->http_tls_cert, cfg->http_tls_key, "http/1.1",
                         &srv->http_tls, errmsg);
  if (rc == 0 && cfg->grpc_tls_enabled)
    rc = tc_tls_ctx_load("server.grpc.tls", cfg->grpc_tls_cert, cfg->grpc_tls_key, "h2",
                         &srv->grpc_tls, errmsg);
  return rc;
}

static void reload_one(tc_tls_ctx_t *t) {
  char *err = NULL;
  if (!t) return;
  if (tc_tls_ctx_reload(t, &err) == 0)
    tc_log(TC_LOG_INFO, "tls: %s: certificate reloaded", tc_tls_ctx_name(t));
  else
    tc_log(TC_LOG_ERROR, "tls: reload failed, still serving the previous certificate: %s",
           err ? err : "out of memory");
  free(err);
}

void tc_server_reload_tls(tc_server_t *srv) {
  reload_one(srv->http_tls);
  reload_one(srv->grpc_tls);
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  tc_server_reload_tls(h->data);
}

static void finish_stop(tc_server_t *srv) {
  uv_close((uv_handle_t *)&srv->sigint, on_closed_signal);
  uv_close((uv_handle_t *)&srv->sigterm, on_closed_signal);
  uv_close((uv_handle_t *)&srv->sighup, on_closed_signal);
  /* Closing the handles restores the default action; a second signal during
   * the last of the teardown must not kill a server that is already
   * stopping cleanly. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  tc_gate_close(srv->gate);
  srv->gate = NULL;
  if (srv->http_tls || srv->grpc_tls) signal(SIGHUP, SIG_IGN);
  tc_bridge_close(&srv->bridge);
  tc_log(TC_LOG_INFO, "stopped");
}

static void on_backend_destroyed(void *arg) {
  tc_server_t *srv = arg;
  srv->backend = NULL;
  finish_stop(srv);
}

static void on_grpc_stopped(void *arg) {
  tc_server_t *srv = arg;
  srv->grpc = NULL;
  if (srv->backend) {
    tc_backend_stats_t st = {0};
    srv->api->stats(srv->backend, &st);
    tc_log(TC_LOG_INFO, "backend stats: writes=%llu reads=%llu change_reads=%llu",
           (unsigned long long)st.writes, (unsigned long long)st.reads,
           (unsigned long long)st.change_reads);
    if (st.feed_txns)
      tc_log(TC_LOG_INFO, "change feed: %llu transactions, commit to read lag avg %.2f ms, max %.2f ms",
             (unsigned long long)st.feed_txns, (double)st.feed_lag_us_sum / (double)st.feed_txns / 1000,
             (double)st.feed_lag_us_max / 1000);
    srv->api->destroy(srv->backend, on_backend_destroyed, srv);
  }
  else
    finish_stop(srv);
}

static void on_http_stopped(void *arg) {
  tc_server_t *srv = arg;
  srv->http = NULL;
  if (srv->grpc)
    tc_grpc_stop(srv->grpc, (int)srv->cfg->server_shutdown_grace_ms, on_grpc_stopped, srv);
  else
    on_grpc_stopped(srv);
}

void tc_server_stop(tc_server_t *srv) {
  if (srv->stopping) return;
  srv->stopping = 1;
  /* Streams never finish by themselves: end them first, with a resume token. */
  tc_watch_stop(srv);
  if (srv->http)
    tc_http_stop(srv->http, on_http_stopped, srv);
  else
    on_http_stopped(srv);
}

/* Before any listener: no call is ever served without the gate. */
static int open_gate(tc_server_t *srv, char **errmsg) {
  tc_authn_t *authn = NULL;
  int rc = tc_authn_open(srv->loop, &srv->bridge, srv->cfg, &authn, errmsg);
  if (rc == 0 && (rc = tc_gate_open(srv->cfg->server_rate_limit, authn, &srv->gate)) != 0 && authn)
    authn->ops->close(authn);
  if (rc == 0)
    tc_log(TC_LOG_INFO, "authentication: %s; rate limit %lld requests/s",
           authn ? srv->cfg->authn_method : "off", (long long)srv->cfg->server_rate_limit);
  return rc;
}

/* Descriptors the connection limits leave for everything else: the
 * database's connections (plus database.max_connections), the backend's
 * files, gRPC's and libuv's own (epoll, eventfds, pipes, the listeners and
 * their spares) and logs. */
#define NOFILE_RESERVE 256
/* A limit left at 0 takes its share of the rest, at most this many: about
 * 20-50 KiB of gRPC memory per connection makes 10,000 near 0.5 GB. */
#define AUTO_MAX_CONNECTIONS 10000

/* The connection limits from the keys and RLIMIT_NOFILE (main() has raised
 * its soft limit to the hard one): limits set explicitly must fit, and
 * limits left at 0 split what remains.  TC_ECONFIG naming the key if not. */
static int connection_limits(tc_server_t *srv, char **errmsg) {
  const tc_config_t *cfg = srv->cfg;
  if (cfg->grpc_handshake_timeout_ms <= 0 || cfg->http_header_timeout_ms <= 0) {
    *errmsg = tc_format("%s: must be longer than 0s", cfg->grpc_handshake_timeout_ms <= 0
                                                           ? "server.grpc.handshake_timeout"
                                                           : "server.http.header_timeout");
    return TC_ECONFIG;
  }
  struct rlimit rl;
  int64_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                           rl.rlim_cur < INT32_MAX ? (int64_t)rl.rlim_cur : INT32_MAX;
  int64_t kept = NOFILE_RESERVE + cfg->database_max_connections;
  int64_t g = cfg->grpc_max_connections, h = cfg->http_enabled ? cfg->http_max_connections : 0;
  int n_auto = (g == 0) + (cfg->http_enabled && h == 0);
  /* Under TLS a gRPC connection holds three descriptors: the client's socket
   * and both ends of the socketpair to gRPC (transport/grpc/grpc_tls.c). */
  int64_t per_grpc = srv->grpc_tls ? 3 : 1;
  int64_t left = nofile - kept - g * per_grpc - h;
  if (left < n_auto) {
    *errmsg = tc_format("%s: the connection limits do not fit in RLIMIT_NOFILE %lld less %lld "
                        "descriptors kept for the database and files",
                        h && !g ? "server.http.max_connections" : "server.grpc.max_connections",
                        (long long)nofile, (long long)kept);
    return TC_ECONFIG;
  }
  int64_t share = n_auto ? left / n_auto : 0;
  if (share > AUTO_MAX_CONNECTIONS) share = AUTO_MAX_CONNECTIONS;
  srv->grpc_max_conns = (int)(g ? g : share / per_grpc ? share / per_grpc : 1);
  srv->http_max_conns = (int)(h ? h : share);
  tc_log(TC_LOG_INFO, "connections: at most %d gRPC and %d HTTP (RLIMIT_NOFILE %lld)",
         srv->grpc_max_conns, cfg->http_enabled ? srv->http_max_conns : 0, (long long)nofile);
  return 0;
}

static int start_http(tc_server_t *srv, char **errmsg) {
  const tc_config_t *cfg = srv->cfg;
  tc_http_opts_t opts = {
      .host = cfg->server_host,
      .port = cfg->http_port,
      .find_method = tc_method_find,
      .server = srv,
      .cors_origins = cfg->http_cors_allowed_origins.items,
      .n_cors_origins = cfg->http_cors_allowed_origins.count,
      .cors_headers = cfg->http_cors_allowed_headers.items,
      .n_cors_headers = cfg->http_cors_allowed_headers.count,
      .max_body_bytes = (size_t)cfg->grpc_max_message_size,
      .header_timeout_ms = (int)cfg->http_header_timeout_ms,
      .max_connections = (size_t)srv->http_max_conns,
      .tls = srv->http_tls,
  };
  int rc = tc_http_start(srv->loop, &opts, &srv->http, &srv->http_port, errmsg);
  if (rc == 0)
    tc_log(TC_LOG_INFO, "http listening on port %d%s", srv->http_port,
           srv->http_tls ? " (TLS)" : "");
  return rc;
}

int tc_server_start(tc_server_t *srv, uv_loop_t *loop, const tc_config_t *cfg, char **errmsg) {
  memset(srv, 0, sizeof *srv);
  *errmsg = NULL;
  srv->loop = loop;
  srv->cfg = cfg;
  int rc = tc_bridge_init(&srv->bridge, loop);
  if (rc != 0) {
    *errmsg = tc_format("cannot start the event loop bridge: %s", uv_strerror(rc));
    return TC_EINTERNAL;
  }
  uv_signal_init(loop, &srv->sigint);
  uv_signal_init(loop, &srv->sigterm);
  uv_signal_init(loop, &srv->sighup);
  srv->sigint.data = srv->sigterm.data = srv->sighup.data = srv;
  if ((rc = open_gate(srv, errmsg)) == 0 && (rc = load_tls(srv, errmsg)) == 0 &&
      (rc = connection_limits(srv, errmsg)) == 0 &&
      (rc = open_backend(srv, errmsg)) == 0) {
    tc_grpc_opts_t opts = {
        .host = "0.0.0.0", /* Permify's gRPC listens on every address, whatever server.host */
        .port = cfg->grpc_port,
        .max_connections = srv->grpc_max_conns,
        .handshake_timeout_ms = (int)cfg->grpc_handshake_timeout_ms,
        .max_recv_message_bytes = (int)cfg->grpc_max_message_size,
        .max_send_message_bytes = (int)cfg->grpc_max_message_size,
        .find_method = tc_method_find,
        .server = srv,
        .tls = srv->grpc_tls,
    };
    rc = tc_grpc_start(loop, &srv->bridge, &opts, &srv->grpc, &srv->grpc_port, errmsg);
  }
  if (rc == 0 && cfg->http_enabled) rc = start_http(srv, errmsg);
  if (rc != 0) {
    /* Tear down what was opened; the caller runs the loop until it is done. */
    tc_server_stop(srv);
    return rc;
  }
  uv_signal_start(&srv->sigint, on_signal, SIGINT);
  uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
  /* Without TLS, SIGHUP keeps its default action. */
  if (srv->http_tls || srv->grpc_tls) uv_signal_start(&srv->sighup, on_sighup, SIGHUP);
  tc_log(TC_LOG_INFO, "grpc listening on port %d%s", srv->grpc_port,
         srv->grpc_tls ? " (TLS)" : "");
  return 0;
}

void tc_server_free(tc_server_t *srv) {
  tc_watch_free(srv);
  tc_tenant_free_all(srv);
  tc_plugin_unload(&srv->plugin);
  tc_tls_ctx_free(srv->http_tls);
  tc_tls_ctx_free(srv->grpc_tls);
}
