/* The bridge: the only way another thread reaches the loop thread.
 *
 * A FIFO multi-producer queue of tc_completion_t plus one uv_async_t.  Any
 * thread may post; the loop thread drains everything queued on each wake-up
 * and runs the items in posting order.
 *
 * Ownership: the poster owns each tc_completion_t; it must stay valid until
 * its run() has been called on the loop thread.
 */
#ifndef TC_BRIDGE_H
#define TC_BRIDGE_H

#include <pthread.h>
#include <uv.h>

#include "tuplecast/backend.h"

typedef struct tc_bridge_s {
  uv_async_t async;
  pthread_mutex_t lock;
  tc_completion_t *head, *tail;
  tc_host_api_t host; /* host API handed to backends; post() uses this bridge */
} tc_bridge_t;

/* Loop thread.  The bridge keeps the loop alive until tc_bridge_close(). */
int tc_bridge_init(tc_bridge_t *b, uv_loop_t *loop);
/* Any thread. */
void tc_bridge_post(tc_bridge_t *b, tc_completion_t *c);
/* Loop thread: runs what is still queued, then closes the async handle. */
void tc_bridge_close(tc_bridge_t *b);
/* The tc_bridge_t that owns a host API pointer handed to a backend. */
tc_bridge_t *tc_bridge_from_host(const tc_host_api_t *host);

#endif
