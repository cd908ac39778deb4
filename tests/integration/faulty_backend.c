/* A test double for fault injection: the example backend (INNER_PLUGIN, a
 * path set by the build) with one fault switched on from outside.  Its uri is
 * the path of a switch file: while that file exists, head() refuses at once
 * with TC_EDATASTORE and calls nothing back; while <that path>.tenant exists,
 * tenant_get() and tenant_state() answer TC_EUNAVAILABLE; every other call,
 * and those with the files gone, is the example backend's own.  Built as example.so in a
 * directory of its own, so `--database-engine example --database-backend-dir
 * <that directory>` serves with it.
 *
 *
 * Built with ABI_2_0 (as abi20/example.so) it is instead a plugin of ABI 2.0:
 * its table ends at TC_BACKEND_API_V2_SIZE.  The bundle calls past that end
 * stay callable, as whatever lies past a real 2.0 table may look, so only the
 * server's struct_size check keeps them unused; and a write carrying v2.1's
 * exact deletes, which a 2.0 plugin could not see, aborts the process, as
 * does a call of v2.5's tenant_state (the server must ask with tenant_get and
 * schema_read).
 *
 * Threading: loop thread only, like the example backend.
 * Ownership: the example backend owns everything; this file owns the switch
 * path (one backend per process) and the handle of the inner plugin.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tuplecast/backend.h"

static void *inner_dl;
static const tc_backend_api_t *inner;
static tc_backend_api_t api;
static char *switch_path;

static int head(tc_backend_t *b, const char *tenant_id, tc_head_cb cb, void *arg) {
  if (switch_path && access(switch_path, F_OK) == 0) return TC_EDATASTORE;
  return inner->head(b, tenant_id, cb, arg);
}

/* While <switch>.tenant exists, tenant_get() and tenant_state() answer
 * TC_EUNAVAILABLE (the database unreachable) on a later loop turn, as a real
 * backend would. */
static const tc_host_api_t *host_api;

typedef struct {
  tc_completion_t c; /* first: the completion is the whole item */
  tc_tenant_cb cb;   /* one of the two is set */
  tc_tenant_state_cb state_cb;
  void *arg;
} refusal_t;

static void refuse(tc_completion_t *c) {
  refusal_t *r = (refusal_t *)c;
  if (r->cb)
    r->cb(r->arg, TC_EUNAVAILABLE, NULL);
  else
    r->state_cb(r->arg, TC_EUNAVAILABLE, NULL, NULL);
  free(r);
}

/* A refusal to post while the tenant switch is on, else NULL. */
static refusal_t *tenant_refusal(void *arg) {
  char path[1024];
  snprintf(path, sizeof path, "%s.tenant", switch_path ? switch_path : "");
  refusal_t *r = switch_path && access(path, F_OK) == 0 ? calloc(1, sizeof *r) : NULL;
  if (r) *r = (refusal_t){.c = {NULL, refuse}, .arg = arg};
  return r;
}

static int tenant_get(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
  refusal_t *r = tenant_refusal(arg);
  if (!r) return inner->tenant_get(b, id, cb, arg);
  r->cb = cb;
  host_api->post(host_api, &r->c);
  return 0;
}

static int tenant_state(tc_backend_t *b, const char *id, const char *known_version,
                        tc_tenant_state_cb cb, void *arg) {
  refusal_t *r = tenant_refusal(arg);
  if (!r) return inner->tenant_state(b, id, known_version, cb, arg);
  r->state_cb = cb;
  host_api->post(host_api, &r->c);
  return 0;
}

#ifdef ABI_2_0
static int no_tenant_state(tc_backend_t *b, const char *id, const char *known_version,
                           tc_tenant_state_cb cb, void *arg) {
  (void)b, (void)id, (void)known_version, (void)cb, (void)arg;
  abort();
}

static int write_batch(tc_backend_t *b, const tc_write_batch_t *w, tc_write_cb cb, void *arg) {
  if (w->n_tuple_deletes || w->n_attr_deletes) abort();
  return inner->write(b, w, cb, arg);
}
#endif

/* uri: the switch file.  The example backend gets its default uri. */
static int create(const tc_host_api_t *host, const char *uri, const char *const *options,
                  tc_backend_t **out, char **errmsg) {
  free(switch_path);
  switch_path = uri && *uri ? strdup(uri) : NULL;
  host_api = host;
  return inner->create(host, "", options, out, errmsg);
}

static void unload_inner(void) __attribute__((destructor));
static void unload_inner(void) {
  free(switch_path);
  switch_path = NULL;
  if (inner_dl) dlclose(inner_dl);
}

TC_EXPORT const tc_backend_api_t *tc_backend_entry_v2(void);
const tc_backend_api_t *tc_backend_entry_v2(void) {
  if (inner) return &api;
  inner_dl = dlopen(INNER_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  if (!inner_dl) return NULL;
  /* POSIX allows converting dlsym's object pointer to a function pointer. */
  tc_backend_entry_fn entry;
  *(void **)&entry = dlsym(inner_dl, TC_BACKEND_ENTRY_SYMBOL);
  if (!entry) return NULL;
  inner = entry();
  api = *inner;
  api.name = "example (faulty head)";
  api.create = create;
  api.head = head;
  api.tenant_get = tenant_get;
  api.tenant_state = tenant_state;
#ifdef ABI_2_0
  api.name = "example (ABI 2.0)";
  api.abi_minor = 0;
  api.struct_size = (uint32_t)TC_BACKEND_API_V2_SIZE;
  api.write = write_batch;
  api.tenant_state = no_tenant_state;
#endif
  return &api;
}
