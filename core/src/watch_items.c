#include "watch_items.h"

#include <stdlib.h>

typedef struct {
  tc_feed_cb cb;
  void *arg;
} wrap_t;

int tc__watch_has_schemas(const tc_server_t *srv) {
  return srv->api->struct_size >= TC_BACKEND_API_V2_4_SIZE && srv->api->read_feed;
}

static void on_changes(void *arg, int status, const tc_change_t *changes, size_t n,
                       const char *last) {
  wrap_t w = *(wrap_t *)arg;
  free(arg);
  tc_feed_item_t *items = status ? NULL : malloc((n + 1) * sizeof *items);
  if (!status && !items) status = TC_ENOMEM;
  for (size_t i = 0; !status && i < n; i++) items[i] = (tc_feed_item_t){changes[i], NULL};
  w.cb(w.arg, status, status ? NULL : items, status ? 0 : n, last);
  free(items);
}

int tc__watch_read(tc_server_t *srv, const char *tenant_id, const char *after, const char *upto,
                   uint32_t limit, tc_feed_cb cb, void *arg) {
  if (tc__watch_has_schemas(srv))
    return srv->api->read_feed(srv->backend, tenant_id, after, upto, limit, cb, arg);
  wrap_t *w = malloc(sizeof *w);
  if (!w) return TC_ENOMEM;
  *w = (wrap_t){cb, arg};
  int rc = srv->api->read_changes(srv->backend, tenant_id, after, upto, limit, on_changes, w);
  if (rc) free(w);
  return rc;
}
