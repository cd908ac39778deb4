/* The server: the process's one instance of the core, as the process
 * assembly (main.c) starts and stops it.  What it holds (backend, tenant
 * actors, watch feeds, admission gate, the transports it was given) is
 * private to the core (core/src/server_state.h).
 *
 * Threading: every function runs on the loop thread.
 * Ownership: tc_server_open() allocates the server, tc_server_free() frees
 * it; the configuration and the parts (transport tables, hooks) are borrowed
 * and must outlive it.
 */
#ifndef TC_SERVER_H
#define TC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "call.h"
#include "config.h"
#include "transport.h"

/* What the assembly plugs into the core. */
typedef struct tc_server_parts_s {
  /* Opened, started and stopped in this order (transport.h). */
  const tc_transport_t *const *transports;
  size_t n_transports;
  /* Handed to the backend in its host API (tuplecast/backend.h): Any values
   * to and from proto3 JSON, for backends that store them as JSON. */
  int (*any_to_json)(const uint8_t *any, size_t len, char **json);
  int (*any_from_json)(const char *json, uint8_t **any, size_t *len);
} tc_server_parts_t;

/* Opens the gate, the transports (their keys and TLS certificates) and the
 * backend plugin named by cfg; nothing listens yet.  *out is set whenever it
 * returns other than TC_ENOMEM.  On failure returns a TC_E* code with a
 * malloc'd one-line *errmsg; what was opened is being closed, and the caller
 * runs the loop until uv_run() returns, then calls tc_server_free(). */
int tc_server_open(uv_loop_t *loop, const tc_config_t *cfg, const tc_server_parts_t *parts,
                   tc_server_t **out, char **errmsg);

/* After tc_server_open() (and after the caller's signal handlers are in
 * place: the last "listening" line tells the world the process serves):
 * starts the transports in order.  On failure as tc_server_open(). */
int tc_server_listen(tc_server_t *srv, char **errmsg);

/* 1 while the database answers the backend's ping, 0 while it does not
 * (core/src/ready.h: a cached verdict, refreshed every second): gRPC health
 * and /healthz report it.  Any call on the loop thread, cheap. */
int tc_server_ready(const tc_server_t *srv);

/* 1 when an opened transport serves TLS (then SIGHUP should reload it). */
int tc_server_has_tls(const tc_server_t *srv);

/* SIGHUP: each transport rebuilds its TLS context from its files; on failure
 * one error line is logged and the old certificate stays.  Open connections
 * keep the certificate they started with. */
void tc_server_reload_tls(tc_server_t *srv);

/* Graceful stop (main() runs it on SIGINT/SIGTERM): stop accepting, finish
 * in-flight calls, close the backend and every handle, so that uv_run()
 * returns.  Runs once; later calls do nothing. */
void tc_server_stop(tc_server_t *srv);

/* After uv_run() returned: frees the actors, the transports and the server,
 * and unloads the backend plugin (only now: completions queued by the plugin
 * may run until the loop ends).  NULL does nothing. */
void tc_server_free(tc_server_t *srv);

#endif
