#include "bridge.h"

#include <stddef.h>

#include "log.h"
#include "tuplecast/support.h" /* TC_CONTAINER_OF */

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

static void host_post(const tc_host_api_t *host, tc_completion_t *c) {
  tc_bridge_post(tc_bridge_from_host(host), c);
}

tc_bridge_t *tc_bridge_from_host(const tc_host_api_t *host) {
  return TC_CONTAINER_OF(host, tc_bridge_t, host);
}

static void drain(uv_async_t *h) {
  tc_bridge_t *b = h->data;
  /* Take the whole queue at once; items posted while we run wake us again. */
  pthread_mutex_lock(&b->lock);
  tc_completion_t *c = b->head;
  b->head = b->tail = NULL;
  pthread_mutex_unlock(&b->lock);
  while (c) {
    tc_completion_t *next = c->next;
    c->next = NULL;
    c->run(c);
    c = next;
  }
}

int tc_bridge_init(tc_bridge_t *b, uv_loop_t *loop) {
  b->head = b->tail = NULL;
  if (pthread_mutex_init(&b->lock, NULL) != 0) return TC_EINTERNAL;
  int rc = uv_async_init(loop, &b->async, drain);
  if (rc < 0) {
    pthread_mutex_destroy(&b->lock);
    return rc;
  }
  b->async.data = b;
  b->host = (tc_host_api_t){.struct_size = sizeof b->host,
                            .abi_major = TC_BACKEND_ABI_MAJOR,
                            .abi_minor = TC_BACKEND_ABI_MINOR,
                            .loop = loop,
                            .post = host_post,
                            .log = tc_log,
                            .now_ms = now_ms};
  return 0;
}

void tc_bridge_post(tc_bridge_t *b, tc_completion_t *c) {
  c->next = NULL;
  pthread_mutex_lock(&b->lock);
  if (b->tail)
    b->tail->next = c;
  else
    b->head = c;
  b->tail = c;
  pthread_mutex_unlock(&b->lock);
  uv_async_send(&b->async);
}

static void on_closed(uv_handle_t *h) {
  tc_bridge_t *b = h->data;
  pthread_mutex_destroy(&b->lock);
}

void tc_bridge_close(tc_bridge_t *b) {
  drain(&b->async);
  uv_close((uv_handle_t *)&b->async, on_closed);
}
