/* The server's state: the loop-owned data every request reaches through
 * tc_call_t.server, private to the core's modules (service_*, tenant, watch,
 * gate).  The transports are here only as tc_transport_t tables and opaque
 * instances: no core module sees a transport's types.
 *
 * Threading: loop thread only.
 * Ownership: tc_server_t owns the backend, the tenant actors, the watch
 * feeds, the gate, the bridge and the transport instances; it borrows the
 * configuration and the transport tables, which must outlive it.
 */
#ifndef TC_SERVER_STATE_H
#define TC_SERVER_STATE_H

#include <uv.h>

#include "backend_loader.h"
#include "bridge.h"
#include "call.h"
#include "config.h"
#include "idmap.h"
#include "ready.h"
#include "server.h"
#include "transport.h"

typedef struct tc_tenant_s tc_tenant_t;
typedef struct tc_feed_s tc_feed_t;
typedef struct tc_gate_s tc_gate_t;

/* At most this many transports (two today: gRPC and HTTP). */
#define TC_MAX_TRANSPORTS 4

/* One transport the assembly gave the server. */
typedef struct tc__server_transport_s {
  const tc_transport_t *t;
  void *inst;               /* from t->open(); NULL until then */
  tc_transport_plan_t plan; /* from t->open() */
  int max_connections;      /* the limit settled on from the plan */
  int port;                 /* bound port, once started */
} tc__server_transport_t;

struct tc_server_s {
  uv_loop_t *loop;
  const tc_config_t *cfg;
  const tc_server_parts_t *parts;
  tc_bridge_t bridge;
  tc_plugin_t plugin;
  const tc_backend_api_t *api;
  tc_backend_t *backend;
  tc__idmap_t tenants; /* actors by id (tenant.c) */
  tc__idmap_t feeds;   /* watch feeds of the tenants being watched, by id */
  tc_gate_t *gate;     /* admission: rate limit and authentication */
  tc__server_transport_t transports[TC_MAX_TRANSPORTS];
  size_t n_transports;
  size_t n_stopped;  /* transports stopped so far, in order */
  tc__ready_t ready; /* the database's readiness, for health checks */
  int stopping;
};

#endif
