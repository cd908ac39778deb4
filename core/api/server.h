/* The server: the loop-owned state every request reaches through tc_call_t.
 *
 * Ownership: tc_server_t owns the backend, the tenant actors and the bridge;
 * it borrows the configuration, which must outlive it.
 */
#ifndef TC_SERVER_H
#define TC_SERVER_H

#include <uv.h>

#include "backend_loader.h"
#include "bridge.h"
#include "call.h"
#include "config.h"

typedef struct tc_tenant_s tc_tenant_t;
typedef struct tc_grpc_server_s tc_grpc_server_t;
typedef struct tc_http_server_s tc_http_server_t;
typedef struct tc_feed_s tc_feed_t;
typedef struct tc_gate_s tc_gate_t;
typedef struct tc_tls_ctx_s tc_tls_ctx_t;

struct tc_server_s {
  uv_loop_t *loop;
  const tc_config_t *cfg;
  tc_bridge_t bridge;
  tc_plugin_t plugin;
  const tc_backend_api_t *api;
  tc_backend_t *backend;
  tc_tenant_t *tenants; /* actors, a list: tenants per node are few */
  tc_feed_t *feeds;     /* watch feeds of the tenants being watched */
  tc_gate_t *gate;      /* admission: rate limit and authentication */
  tc_grpc_server_t *grpc;
  int grpc_port; /* bound port */
  tc_http_server_t *http; /* NULL when server.http.enabled is false */
  int http_port;          /* bound port */
  int grpc_max_conns, http_max_conns; /* from the keys and RLIMIT_NOFILE */
  uv_signal_t sigint, sigterm;
  tc_tls_ctx_t *http_tls, *grpc_tls; /* NULL when that transport's TLS is off */
  uv_signal_t sighup;                /* reloads the TLS certificates */
  int stopping;
};

/* Loads the backend plugin named by cfg, opens the database and starts the
 * gRPC listener.  On failure returns a TC_E* code with a malloc'd one-line
 * *errmsg; what was opened is being closed, and the caller runs the loop until
 * uv_run() returns. */
int tc_server_start(tc_server_t *srv, uv_loop_t *loop, const tc_config_t *cfg,
                    char **errmsg);
/* SIGHUP: each TLS context is rebuilt from its files; on failure one error
 * line is logged and the old certificate stays.  Open connections keep the
 * certificate they started with. */
void tc_server_reload_tls(tc_server_t *srv);

/* Graceful stop (also run on SIGINT/SIGTERM): stop accepting, finish in-flight
 * calls, close the backend and every handle, so that uv_run() returns. */
void tc_server_stop(tc_server_t *srv);

/* After uv_run() returned: frees the actors and unloads the backend plugin
 * (only now: completions queued by the plugin may run until the loop ends). */
void tc_server_free(tc_server_t *srv);

#endif
