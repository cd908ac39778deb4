/* Shared internals of the gRPC transport: the server state, the completion
 * tags and the functions the transport's files call on one another.
 *
 * Ownership: the server owns its listener, the connections waiting for their
 * preface, the table of connections handed to gRPC (gRPC owns those
 * descriptors), its accept slots and live calls; a call owns its
 * grpc_call reference, request metadata, byte buffers, decoded request and
 * queue of packed stream messages.
 */
#ifndef TC_GRPC_INTERNAL_H
#define TC_GRPC_INTERNAL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "grpc_server.h"
#include "listener.h"
#include "tuplecast/support.h" /* TC_CONTAINER_OF */

/* What the poller forwards: it stores the event's success flag in ok and
 * posts comp, whose run() handles the event on the loop thread.  Tags are
 * embedded in their owner, one per kind of outstanding batch, so forwarding
 * allocates nothing.  A tag with on_poller is handled on the poller thread
 * instead (a stream's send chain, grpc_call.c), which posts comp itself. */
typedef struct tc__grpc_tag_s tc__grpc_tag_t;
struct tc__grpc_tag_s {
  tc_completion_t comp;
  int ok;
  void (*on_poller)(tc__grpc_tag_t *tag);
};

typedef struct tc__grpc_call_s tc__grpc_call_t;
typedef struct tc__grpc_hwatch_s tc__grpc_hwatch_t;
typedef struct tc__grpc_preface_s tc__grpc_preface_t;
typedef struct tc__grpc_tls_s tc__grpc_tls_t;
typedef struct tc_tls_ctx_s tc_tls_ctx_t;

/* A connection handed to gRPC: gRPC closes fd itself, and the entry is stale
 * once fd no longer holds the socket of inode ino (grpc_conn.c). */
typedef struct tc__grpc_owned_s {
  int fd;
  ino_t ino;
} tc__grpc_owned_t;

struct tc_grpc_server_s {
  uv_loop_t *loop;
  tc_bridge_t *bridge;
  grpc_completion_queue *cq; /* read by the poller thread; fixed after start */
  grpc_server *server;
  pthread_t poller;
  /* The loop's send bursts (grpc_poller.c): loop_sending is set by the loop
   * and cleared under yield_lock; the poller waits on yield_cond. */
  atomic_int loop_sending;
  pthread_mutex_t yield_lock;
  pthread_cond_t yield_cond;
  uv_prepare_t turn_end;
  unsigned turn_batches; /* batches the loop started this turn */
  uint64_t yields;       /* turns the poller stayed out of the queue */
  const tc_method_t *(*find_method)(const char *path);
  tc_server_t *core;
  int (*ready)(const tc_server_t *server); /* NULL: always ready */

  tc__grpc_call_t *calls; /* accepted and not yet freed */
  int n_slots;            /* accept requests posted and not yet completed */

  /* Connections (grpc_conn.c). */
  tc_listener_t listener;
  int listener_open;                 /* until the listener's close callback */
  grpc_server_credentials *insecure; /* for every handed connection */
  int max_conns;                     /* 0: unlimited, nothing tracked */
  int handshake_timeout_ms;
  int n_handshaking;       /* accepted, not yet handed to gRPC nor closed */
  int n_relays;            /* TLS relays past their handshake, until closed */
  tc__grpc_owned_t *owned; /* max_conns entries */
  int n_owned;
  uint64_t last_sweep;          /* uv_now() of the last sweep of owned */
  tc__grpc_preface_t *prefaces; /* plaintext connections waiting for their preface */
  tc_tls_ctx_t *tls;            /* NULL: plaintext; borrowed (grpc_tls.c) */
  tc__grpc_tls_t *tls_conns;    /* TLS connections, in handshake or relaying */
  tc__grpc_tls_t **tls_by_fd;   /* relays by gRPC's socketpair end, for the peer */
  size_t n_tls_by_fd;

  /* Health/Watch streams (grpc_health.c) and the timer that looks at
   * readiness for them, inited with the first stream. */
  tc__grpc_hwatch_t *hwatches;
  uv_timer_t hwatch_timer;
  int hwatch_timer_open;

  int stopping;          /* tc_grpc_stop() was called */
  int shutdown_notified; /* gRPC reported the server shut down */
  int cq_shutting;       /* grpc_completion_queue_shutdown() was called */
  tc__grpc_tag_t shutdown_tag, cq_done;
  uv_timer_t grace;
  void (*stop_cb)(void *arg);
  void *stop_arg;
};

/* grpc_poller.c.  The loop calls batch_started for every batch it starts.
 * After join, close releases the rest and calls cb(&s->turn_end) once that
 * handle is closed. */
int tc__grpc_poller_start(tc_grpc_server_t *s);
void tc__grpc_poller_batch_started(tc_grpc_server_t *s);
void tc__grpc_poller_join(tc_grpc_server_t *s);
void tc__grpc_poller_close(tc_grpc_server_t *s, uv_close_cb cb);

/* grpc_call.c: posts one accept slot. */
int tc__grpc_call_accept(tc_grpc_server_t *s);

/* grpc_conn.c: connections.  How a connection reaches gRPC, for any code
 * that accepts or terminates one (the plaintext preface wait here, TLS):
 *  1. tc__grpc_conn_room(): 0 means the limit is reached (or the server is
 *     stopping): close the new connection at once.
 *  2. tc__grpc_handshake_begin(): the connection counts against the limit
 *     while its handshake (preface wait, TLS) runs on the loop.
 *  3. tc__grpc_adopt_fd(): hands gRPC a connected, non-blocking socket that
 *     speaks plaintext HTTP/2 (a TLS terminator passes its end of a
 *     socketpair); it takes fd in every case (closes it when stopping) and
 *     counts it until gRPC closes it.  Per connection only: gRPC then reads
 *     and writes fd itself, nothing per message is added.
 *  4. tc__grpc_handshake_end(): once per begin, after adopt or on failure.
 * A TLS relay counts itself instead (its end of the socketpair outlives
 * gRPC's, and may not see gRPC close it): tc__grpc_relay_begin() before its
 * handshake ends, tc__grpc_relay_end() when it is closed; it hands gRPC its
 * fd with tc__grpc_give_fd(), which records nothing.  Relays count in
 * tc__grpc_conn_room() but not in tc__grpc_conn_busy(): they close after gRPC
 * does.
 * tc_grpc_stop() closes the listener and the preface waits, and waits until
 * every begin has had its end.  All on the loop thread. */
int tc__grpc_conn_room(tc_grpc_server_t *s);
/* What every connection must send first, before it is handed to gRPC. */
#define TC__GRPC_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define TC__GRPC_PREFACE_LEN (sizeof TC__GRPC_PREFACE - 1)
void tc__grpc_handshake_begin(tc_grpc_server_t *s);
void tc__grpc_adopt_fd(tc_grpc_server_t *s, int fd);
void tc__grpc_give_fd(tc_grpc_server_t *s, int fd);
void tc__grpc_relay_begin(tc_grpc_server_t *s);
void tc__grpc_relay_end(tc_grpc_server_t *s);
void tc__grpc_handshake_end(tc_grpc_server_t *s);
/* Lifetime, for grpc_server.c: start binds and accepts (TC_E* and *errmsg on
 * failure); stop stops accepting; busy while handles or handshakes remain;
 * free once the server is destroyed. */
int tc__grpc_conn_start(tc_grpc_server_t *s, const tc_grpc_opts_t *opts, int *bound_port,
                        char **errmsg);
void tc__grpc_conn_stop(tc_grpc_server_t *s);
int tc__grpc_conn_busy(const tc_grpc_server_t *s);
void tc__grpc_conn_free(tc_grpc_server_t *s);

/* grpc_tls.c: TLS connections (opts.tls).  accept takes a new connection's
 * fd (in place of the preface wait); stop closes those still in handshake;
 * free closes the relays left once gRPC is destroyed. */
void tc__grpc_tls_accept(tc_grpc_server_t *s, int fd);
/* The TCP peer ("ip:port") of the TLS relay whose socketpair end gRPC got
 * as fd into buf; buf is left alone if there is none. */
void tc__grpc_tls_peer(tc_grpc_server_t *s, int fd, char *buf, size_t len);
void tc__grpc_tls_stop(tc_grpc_server_t *s);
void tc__grpc_tls_free(tc_grpc_server_t *s);

/* grpc_server.c: an accept slot or call is gone; the stop may proceed. */
void tc__grpc_server_released(tc_grpc_server_t *s);

/* grpc_health.c: the methods the transport answers itself, or NULL.
 * stop ends the Health/Watch streams (UNAVAILABLE) and closes their timer;
 * tc_grpc_stop() calls it first. */
const tc_method_t *tc__grpc_health_find(const char *path);
void tc__grpc_health_stop(tc_grpc_server_t *s);

/* grpc_call.c: the server a call came to. */
tc_grpc_server_t *tc__grpc_call_server(const tc_call_t *call);

/* grpc_reflect.c: gRPC server reflection (v1 and v1alpha), answered by the
 * transport from the descriptor set compiled in (proto/descriptor_set.h)
 * but admitted by the gate like the core's methods.  find returns the
 * method for path, or NULL.  The index of the descriptor set is built by
 * the first ref (0 or a TC_E* code) and freed by the last unref. */
const tc_method_t *tc__grpc_reflect_find(const char *path);
int tc__grpc_reflect_ref(void);
void tc__grpc_reflect_unref(void);

#endif
