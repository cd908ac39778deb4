/* Shared internals of the gRPC transport: the server state, the completion
 * tags and the functions the transport's files call on one another.
 *
 * Ownership: the server owns its accept slots and live calls; a call owns its
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

#include "grpc_server.h"

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

#define TC__CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

typedef struct tc__grpc_call_s tc__grpc_call_t;

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

  tc__grpc_call_t *calls; /* accepted and not yet freed */
  int n_slots;            /* accept requests posted and not yet completed */

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

/* grpc_server.c: an accept slot or call is gone; the stop may proceed. */
void tc__grpc_server_released(tc_grpc_server_t *s);

/* grpc_health.c: the methods the transport answers itself, or NULL. */
const tc_method_t *tc__grpc_health_find(const char *path);

#endif
