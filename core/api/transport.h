/* The transport interface: how the server core knows a transport (gRPC, the
 * HTTP gateway) without seeing its types.
 *
 * Each transport module exports one constant tc_transport_t; the process
 * assembly (main.c) hands the server the transports it wants, in order
 * (server.h, tc_server_open).  The server opens them all before anything
 * listens, sizes their connection limits together from RLIMIT_NOFILE, starts
 * them in that order once the backend is open, logs "<name> listening on port
 * N" as each starts (so the last one's line means the process is serving),
 * stops them in the same order and frees them after the loop ended.
 *
 * Threading: every function runs on the loop thread.
 * Ownership: the transport owns its instance from open() until free(); the
 * configuration, loop, bridge and server in tc_transport_env_t are borrowed
 * and outlive the instance.
 */
#ifndef TC_TRANSPORT_H
#define TC_TRANSPORT_H

#include <stdint.h>

#include <uv.h>

#include "bridge.h"
#include "call.h"
#include "config.h"

/* What open() tells the server about a transport before it starts. */
typedef struct tc_transport_plan_s {
  int enabled;             /* 0: its keys turn it off; never started */
  int tls;                 /* 1: serves TLS (SIGHUP reloads it; "(TLS)" in the log) */
  int64_t max_connections; /* its key's value; 0: a share of what RLIMIT_NOFILE leaves */
  const char *max_key;     /* that key's name, for the error when the limits do not fit */
  int fds_per_connection;  /* descriptors one connection holds */
} tc_transport_plan_t;

/* What start() is given. */
typedef struct tc_transport_env_s {
  uv_loop_t *loop;
  tc_bridge_t *bridge;
  const tc_config_t *cfg;
  tc_server_t *server;                                 /* stored into each tc_call_t */
  const tc_method_t *(*find_method)(const char *path); /* the method table's lookup */
  int max_connections;                                 /* the limit the server settled on */
} tc_transport_env_t;

typedef struct tc_transport_s {
  const char *name; /* "grpc", "http": log lines and errors */
  /* Reads its keys and loads its TLS certificate: 0 with *plan filled and
   * *inst set (to free() later, even when not enabled), or a negative TC_E*
   * code with a malloc'd one-line *errmsg naming the key. */
  int (*open)(const tc_config_t *cfg, void **inst, tc_transport_plan_t *plan, char **errmsg);
  /* Binds and serves; *port is the port bound.  On failure a negative TC_E*
   * code and *errmsg (malloc'd) when it has something to say; stop() is
   * still called. */
  int (*start)(void *inst, const tc_transport_env_t *env, int *port, char **errmsg);
  /* Graceful stop (the server has ended the streams first); cb(arg) runs on
   * a later loop turn once every call is over, or at once when the
   * transport is not serving.  Called once for an enabled transport, also
   * when start() failed or was never called. */
  void (*stop)(void *inst, void (*cb)(void *arg), void *arg);
  /* SIGHUP: rebuilds its TLS context from its files, logging the outcome;
   * open connections keep the certificate they started with. */
  void (*reload_tls)(void *inst);
  /* After the loop ended. */
  void (*free)(void *inst);
  /* Optional (NULL: not reported): client connections open right now, for
   * /metrics. */
  size_t (*connections)(void *inst);
} tc_transport_t;

#endif
