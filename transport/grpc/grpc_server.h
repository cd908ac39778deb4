/* The gRPC transport: gRPC C core driven from the libuv loop.
 *
 * One completion queue and one poller thread blocked in
 * grpc_completion_queue_next(); the poller forwards each completion to the
 * loop through the bridge (it also runs stream send chains, and stays out of
 * the queue while the loop starts a burst of sends: grpc_poller.c).  Calls are accepted generically, dispatched on
 * the method path and handed to the core as tc_call_t (call.h).  Everything
 * except dequeuing runs on the loop thread.
 *
 * Ownership: the transport owns tc_grpc_server_t from start until the stop
 * callback; the caller keeps the loop and bridge alive until then.
 */
#ifndef TC_GRPC_SERVER_H
#define TC_GRPC_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "bridge.h"
#include "call.h"

typedef struct tc_tls_ctx_s tc_tls_ctx_t; /* tls_context.h */

typedef struct tc_grpc_opts_s {
  const char *host;           /* bind address; NULL or "": 0.0.0.0 */
  int port;                   /* 0: any */
  int max_connections;        /* connections gRPC holds plus those in handshake; 0: no limit */
  int handshake_timeout_ms;   /* to receive the HTTP/2 preface; 0: 10 s */
  int max_recv_message_bytes; /* 0: gRPC's default, 4 MiB */
  int max_send_message_bytes; /* 0: gRPC's default, unlimited */
  const tc_method_t *(*find_method)(const char *path); /* the core passes tc_method_find */
  tc_server_t *server;                                 /* stored into each tc_call_t */
  int (*ready)(const tc_server_t *server); /* health: tc_server_ready; NULL: always ready */
  tc_tls_ctx_t *tls; /* NULL: plaintext; else TLS ends on the loop (borrowed) */
} tc_grpc_opts_t;

typedef struct tc_grpc_server_s tc_grpc_server_t;

/* Loop thread.  Binds (transport/net's listener accepts; a connection reaches
 * gRPC once it has sent the HTTP/2 preface: grpc_conn.c), starts the poller
 * thread and begins accepting calls;
 * *bound_port is the port actually bound.  On failure returns a negative TC_E*
 * code and sets *errmsg (malloc'd, caller frees) when it has something to say. */
int tc_grpc_start(uv_loop_t *loop, tc_bridge_t *bridge, const tc_grpc_opts_t *opts,
                  tc_grpc_server_t **out, int *bound_port, char **errmsg);

/* Loop thread, once.  Graceful stop: stops accepting, lets calls in flight
 * finish (their done() still answers), cancels what is left after grace_ms
 * (a handler still owes done() for a cancelled call, and the stop waits for
 * it; on_cancel tells it).  Streams do not finish on their own: the caller
 * ends them (done() with TC_EUNAVAILABLE) before stopping.  Then it shuts
 * gRPC down, joins the poller and frees everything; cb(arg) runs on a later
 * loop turn once all that is over. */
void tc_grpc_stop(tc_grpc_server_t *s, int grace_ms, void (*cb)(void *arg), void *arg);

/* Loop thread: connections open right now (handed to gRPC, in handshake,
 * TLS relays), for /metrics.  Sweeps the closed ones first (fstat each),
 * unless a sweep ran in the last second: a connection gRPC closed since may
 * still count. */
size_t tc_grpc_connections(tc_grpc_server_t *s);

/* Loop thread: the loop turns that started so many batches that the poller
 * stayed out of the completion queue until the turn ended (grpc_poller.c). */
uint64_t tc_grpc_yields(const tc_grpc_server_t *s);

#endif
