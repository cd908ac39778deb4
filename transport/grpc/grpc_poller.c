/* The completion-queue poller thread.  gRPC only makes socket progress while
 * a thread waits on its polling queue, and none of that may be project logic
 * (a slow handler would stall all gRPC I/O), so this thread dequeues and
 * forwards, nothing else, except that it hands a stream its next queued
 * message (grpc_call.c: the send chain).
 *
 * It also stays out of the queue while the loop starts a burst of batches.
 * A send the loop starts usually completes inside grpc_call_start_batch, and
 * a poller blocked in the queue is woken for each such completion: an eventfd
 * write on the loop and two context switches for every send, on the same
 * cores as the loop and its clients.  A fan-out to 10,000 streams took 10-15 %
 * longer for it (bench/README.md).  So once the loop has started
 * YIELD_AFTER_BATCHES batches in one turn, the poller waits until that turn
 * ends (a uv_prepare handle runs before the loop blocks again); the
 * completions wait in the queue meanwhile.  Below that the poller's work in
 * parallel (send chains, reading requests) is worth the wake-ups. */
#include <string.h>

#include "grpc_internal.h"
#include "log.h"

#define YIELD_AFTER_BATCHES 256

static void wait_for_turn_end(tc_grpc_server_t *s) {
  if (!atomic_load_explicit(&s->loop_sending, memory_order_acquire)) return;
  pthread_mutex_lock(&s->yield_lock);
  while (atomic_load_explicit(&s->loop_sending, memory_order_acquire))
    pthread_cond_wait(&s->yield_cond, &s->yield_lock);
  pthread_mutex_unlock(&s->yield_lock);
}

static void *poll_cq(void *arg) {
  tc_grpc_server_t *s = arg;
  for (;;) {
    wait_for_turn_end(s);
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type != GRPC_OP_COMPLETE) continue;
    tc__grpc_tag_t *tag = ev.tag;
    tag->ok = ev.success;
    if (tag->on_poller)
      tag->on_poller(tag);
    else
      tc_bridge_post(s->bridge, &tag->comp);
  }
  /* Every tag was delivered before the queue reported shutdown, so this is
   * the last item the poller posts. */
  tc_bridge_post(s->bridge, &s->cq_done.comp);
  return NULL;
}

void tc__grpc_poller_batch_started(tc_grpc_server_t *s) {
  /* Only the loop sets the flag, so it may read it without the lock. */
  if (++s->turn_batches < YIELD_AFTER_BATCHES ||
      atomic_load_explicit(&s->loop_sending, memory_order_relaxed))
    return;
  atomic_store_explicit(&s->loop_sending, 1, memory_order_release);
  s->yields++;
}

static void on_turn_end(uv_prepare_t *h) {
  tc_grpc_server_t *s = h->data;
  s->turn_batches = 0;
  if (!atomic_load_explicit(&s->loop_sending, memory_order_relaxed)) return;
  /* Under the lock, so a poller between its check and its wait sees it. */
  pthread_mutex_lock(&s->yield_lock);
  atomic_store_explicit(&s->loop_sending, 0, memory_order_release);
  pthread_cond_signal(&s->yield_cond);
  pthread_mutex_unlock(&s->yield_lock);
}

int tc__grpc_poller_start(tc_grpc_server_t *s) {
  atomic_init(&s->loop_sending, 0);
  if (pthread_mutex_init(&s->yield_lock, NULL) != 0) return TC_EINTERNAL;
  if (pthread_cond_init(&s->yield_cond, NULL) != 0) {
    pthread_mutex_destroy(&s->yield_lock);
    return TC_EINTERNAL;
  }
  int rc = pthread_create(&s->poller, NULL, poll_cq, s);
  if (rc != 0) {
    tc_log(TC_LOG_ERROR, "grpc: cannot start the poller thread: %s", strerror(rc));
    pthread_cond_destroy(&s->yield_cond);
    pthread_mutex_destroy(&s->yield_lock);
    return TC_EINTERNAL;
  }
  uv_prepare_init(s->loop, &s->turn_end);
  s->turn_end.data = s;
  uv_prepare_start(&s->turn_end, on_turn_end);
  /* It must not keep the loop running by itself. */
  uv_unref((uv_handle_t *)&s->turn_end);
  return 0;
}

void tc__grpc_poller_join(tc_grpc_server_t *s) { pthread_join(s->poller, NULL); }

void tc__grpc_poller_close(tc_grpc_server_t *s, uv_close_cb cb) {
  uv_close((uv_handle_t *)&s->turn_end, cb);
  pthread_cond_destroy(&s->yield_cond);
  pthread_mutex_destroy(&s->yield_lock);
}

uint64_t tc_grpc_yields(const tc_grpc_server_t *s) { return s->yields; }
