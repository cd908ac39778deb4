/* The server's lifecycle: gate, transports, backend; the graceful stop.
 * Transports are reached only through their tc_transport_t (transport.h). */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "authn.h"
#include "backend_open.h"
#include "error.h"
#include "format.h"
#include "gate.h"
#include "log.h"
#include "server_state.h"
#include "tenant.h"
#include "watch.h"

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
  srv->bridge.host.any_to_json = srv->parts->any_to_json;
  srv->bridge.host.any_from_json = srv->parts->any_from_json;
  char *berr = NULL;
  rc = srv->api->create(&srv->bridge.host, choice.uri, (const char *const *)choice.options,
                        &srv->backend, &berr);
  if (rc != 0) {
    *errmsg = tc_format("database: %s", berr ? berr : tc_err_symbol(rc));
    free(berr);
    tc_plugin_unload(&srv->plugin);
  } else {
    /* Not the uri: it may hold a password; the plugin logs what it opened. */
    tc_log(TC_LOG_INFO, "database: %s (instance %s)", cfg->database_engine,
           srv->api->instance_id(srv->backend));
    tc__ready_start(srv);
  }
  tc_backend_choice_free(&choice);
  return rc;
}

static void finish_stop(tc_server_t *srv) {
  tc_gate_close(srv->gate);
  srv->gate = NULL;
  tc_bridge_close(&srv->bridge);
  tc_log_flush(); /* the counts of repeated warnings still held back */
  tc_log(TC_LOG_INFO, "stopped");
}

static void on_backend_destroyed(void *arg) {
  tc_server_t *srv = arg;
  srv->backend = NULL;
  finish_stop(srv);
}

/* Every transport has stopped: no call is left, the backend may go. */
static void close_backend(tc_server_t *srv) {
  if (srv->backend) {
    tc_backend_stats_t st = {0};
    srv->api->stats(srv->backend, &st);
    tc_log(TC_LOG_INFO, "backend stats: writes=%llu reads=%llu change_reads=%llu",
           (unsigned long long)st.writes, (unsigned long long)st.reads,
           (unsigned long long)st.change_reads);
    if (st.feed_txns)
      tc_log(TC_LOG_INFO,
             "change feed: %llu transactions, commit to read lag avg %.2f ms, max %.2f ms",
             (unsigned long long)st.feed_txns,
             (double)st.feed_lag_us_sum / (double)st.feed_txns / 1000,
             (double)st.feed_lag_us_max / 1000);
    srv->api->destroy(srv->backend, on_backend_destroyed, srv);
  } else
    finish_stop(srv);
}

/* Stops the transports one after another, in order, then the backend. */
static void stop_next_transport(void *arg) {
  tc_server_t *srv = arg;
  while (srv->n_stopped < srv->n_transports) {
    tc__server_transport_t *st = &srv->transports[srv->n_stopped++];
    if (st->inst && st->plan.enabled) {
      st->t->stop(st->inst, stop_next_transport, srv);
      return;
    }
  }
  close_backend(srv);
}

void tc_server_stop(tc_server_t *srv) {
  if (srv->stopping) return;
  srv->stopping = 1;
  tc__ready_stop(srv);
  /* Streams never finish by themselves: end them first, with a resume token. */
  tc_watch_stop(srv);
  stop_next_transport(srv);
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

static int64_t nofile_limit(void) {
  struct rlimit rl;
  return getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                 rl.rlim_cur < INT32_MAX
             ? (int64_t)rl.rlim_cur
             : INT32_MAX;
}

/* The connection limits of the enabled transports from their plans and
 * RLIMIT_NOFILE (main() has raised its soft limit to the hard one): limits
 * set explicitly must fit, and limits left at 0 split what remains.
 * TC_ECONFIG naming a key if not. */
static int connection_limits(tc_server_t *srv, char **errmsg) {
  int64_t nofile = nofile_limit(), kept = NOFILE_RESERVE + srv->cfg->database_max_connections;
  int64_t left = nofile - kept;
  int n_auto = 0;
  const char *last = "", *last_explicit = NULL; /* the error names a key set explicitly */
  for (size_t i = 0; i < srv->n_transports; i++) {
    const tc_transport_plan_t *p = &srv->transports[i].plan;
    if (!p->enabled) continue;
    left -= p->max_connections * p->fds_per_connection;
    n_auto += p->max_connections == 0;
    last = p->max_key;
    if (p->max_connections) last_explicit = p->max_key;
  }
  const char *key = last_explicit ? last_explicit : last;
  /* The database's share alone does not fit: that is the key to change. */
  if (nofile - kept < n_auto) key = "database.max_connections";
  if (left < n_auto) {
    *errmsg = tc_format(
        "%s: the connection limits do not fit in RLIMIT_NOFILE %lld less %lld "
        "descriptors kept for the database and files",
        key, (long long)nofile, (long long)kept);
    return TC_ECONFIG;
  }
  int64_t share = n_auto ? left / n_auto : 0;
  if (share > AUTO_MAX_CONNECTIONS) share = AUTO_MAX_CONNECTIONS;
  char line[256] = "";
  size_t used = 0;
  for (size_t i = 0; i < srv->n_transports; i++) {
    tc__server_transport_t *st = &srv->transports[i];
    if (!st->plan.enabled) continue;
    int64_t per = st->plan.fds_per_connection, own = share / per ? share / per : 1;
    st->max_connections = (int)(st->plan.max_connections ? st->plan.max_connections : own);
    if (used < sizeof line)
      used += (size_t)snprintf(line + used, sizeof line - used, "%s%d %s", used ? ", " : "",
                               st->max_connections, st->t->name);
  }
  tc_log(TC_LOG_INFO, "connections: at most %s (RLIMIT_NOFILE %lld)", line, (long long)nofile);
  return 0;
}

/* Each transport reads its keys and loads its TLS certificate, in order. */
static int open_transports(tc_server_t *srv, const tc_server_parts_t *parts, char **errmsg) {
  if (parts->n_transports > TC_MAX_TRANSPORTS) {
    *errmsg = tc_format("at most %d transports", TC_MAX_TRANSPORTS);
    return TC_EINTERNAL;
  }
  for (size_t i = 0; i < parts->n_transports; i++) {
    tc__server_transport_t *st = &srv->transports[srv->n_transports];
    st->t = parts->transports[i];
    int rc = st->t->open(srv->cfg, &st->inst, &st->plan, errmsg);
    if (rc != 0) return rc;
    srv->n_transports++;
  }
  return 0;
}

static int start_transports(tc_server_t *srv, char **errmsg) {
  for (size_t i = 0; i < srv->n_transports; i++) {
    tc__server_transport_t *st = &srv->transports[i];
    if (!st->plan.enabled) continue;
    tc_transport_env_t env = {.loop = srv->loop,
                              .bridge = &srv->bridge,
                              .cfg = srv->cfg,
                              .server = srv,
                              .find_method = tc_method_find,
                              .max_connections = st->max_connections};
    int rc = st->t->start(st->inst, &env, &st->port, errmsg);
    if (rc != 0) return rc;
    tc_log(TC_LOG_INFO, "%s listening on port %d%s", st->t->name, st->port,
           st->plan.tls ? " (TLS)" : "");
  }
  return 0;
}

int tc_server_open(uv_loop_t *loop, const tc_config_t *cfg, const tc_server_parts_t *parts,
                   tc_server_t **out, char **errmsg) {
  *errmsg = NULL;
  tc_server_t *srv = *out = calloc(1, sizeof *srv);
  if (!srv) return TC_ENOMEM;
  srv->loop = loop;
  srv->cfg = cfg;
  srv->parts = parts;
  int rc = tc_bridge_init(&srv->bridge, loop);
  if (rc != 0) {
    *errmsg = tc_format("cannot start the event loop bridge: %s", uv_strerror(rc));
    srv->stopping = 1; /* nothing to stop: the loop has no handle of ours */
    return TC_EINTERNAL;
  }
  if ((rc = open_gate(srv, errmsg)) == 0 && (rc = open_transports(srv, parts, errmsg)) == 0 &&
      (rc = connection_limits(srv, errmsg)) == 0)
    rc = open_backend(srv, errmsg);
  if (rc != 0) /* tear down what was opened; the caller runs the loop until it is done */
    tc_server_stop(srv);
  return rc;
}

/* The start-up line: what runs, on which ports, with which configuration. */
static void log_started(const tc_server_t *srv) {
  tc_log_field_t f[3 + TC_MAX_TRANSPORTS] = {
      {"version", TC_LOG_STR, TC_VERSION, 0},
      {"engine", TC_LOG_STR, srv->cfg->database_engine, 0},
  };
  size_t n = 2;
  char keys[TC_MAX_TRANSPORTS][32]; /* "grpc.port" */
  for (size_t i = 0; i < srv->n_transports; i++) {
    const tc__server_transport_t *st = &srv->transports[i];
    if (!st->plan.enabled) continue;
    snprintf(keys[i], sizeof keys[i], "%s.port", st->t->name);
    f[n++] = (tc_log_field_t){keys[i], TC_LOG_INT, NULL, st->port};
  }
  char *cfg = tc_config_dump_json(srv->cfg);
  f[n++] = (tc_log_field_t){"config", TC_LOG_RAW, cfg, 0};
  tc_log_fields(TC_LOG_INFO, "tuplecast started", f, n);
  free(cfg);
}

int tc_server_listen(tc_server_t *srv, char **errmsg) {
  *errmsg = NULL;
  int rc = start_transports(srv, errmsg);
  if (rc != 0)
    tc_server_stop(srv);
  else
    log_started(srv);
  return rc;
}

int tc_server_ready(const tc_server_t *srv) { return srv->ready.serving; }

int tc_server_has_tls(const tc_server_t *srv) {
  for (size_t i = 0; i < srv->n_transports; i++)
    if (srv->transports[i].plan.enabled && srv->transports[i].plan.tls) return 1;
  return 0;
}

void tc_server_reload_tls(tc_server_t *srv) {
  for (size_t i = 0; i < srv->n_transports; i++)
    if (srv->transports[i].plan.enabled && srv->transports[i].plan.tls)
      srv->transports[i].t->reload_tls(srv->transports[i].inst);
}

void tc_server_free(tc_server_t *srv) {
  if (!srv) return;
  tc_watch_free(srv);
  tc_tenant_free_all(srv);
  tc_plugin_unload(&srv->plugin);
  for (size_t i = 0; i < srv->n_transports; i++)
    srv->transports[i].t->free(srv->transports[i].inst);
  free(srv);
}
