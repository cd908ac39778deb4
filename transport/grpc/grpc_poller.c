/* The completion-queue poller thread.  gRPC only makes socket progress while
 * a thread waits on its polling queue, and none of that may be project logic
 * (a slow handler would stall all gRPC I/O), so this thread dequeues and
 * forwards, nothing else, except that it hands a stream its next queued
 * message (grpc_call.c: the send chain). */
#include <string.h>

#include "grpc_internal.h"
#include "log.h"

static void *poll_cq(void *arg) {
  tc_grpc_server_t *s = arg;
  for (;;) {
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

int tc__grpc_poller_start(tc_grpc_server_t *s) {
  int rc = pthread_create(&s->poller, NULL, poll_cq, s);
  if (rc != 0) {
    tc_log(TC_LOG_ERROR, "grpc: cannot start the poller thread: %s", strerror(rc));
    return TC_EINTERNAL;
  }
  return 0;
}

void tc__grpc_poller_join(tc_grpc_server_t *s) { pthread_join(s->poller, NULL); }
