/* base.v1.Bundle: Write, Read, Delete.  A bundle is stored as a packed Any of
 * base.v1.DataBundle (the backend's tc_bundle_t payload); Permify's store
 * keeps it as the DataBundle's protojson, and the Postgres plugin converts. */
#include <stdlib.h>
#include <string.h>

#include "service.h"

#define BUNDLE_TYPE_URL "type.googleapis.com/base.v1.DataBundle"

typedef struct {
  tc_op_t op;
  const char *tenant_id, *name;
  tc_bundle_t *bundles;
  size_t n_bundles;
} bundle_op_t;

int tc__bundle_calls_ok(const tc_server_t *srv) {
  return srv->api->struct_size >= TC_BACKEND_API_V2_1_SIZE && srv->api->bundle_write &&
         srv->api->bundle_read && srv->api->bundle_delete;
}

int tc__bundle_calls_refuse(tc_call_t *call) {
  return tc_call_error(call, TC_EUNIMPLEMENTED,
                       "method %s not implemented: backend %s has no bundle calls",
                       call->method->path, call->server->api->name);
}

/* Permify refuses an operation listing one template twice in one list.
 * 0, TC_EALREADY_EXISTS or TC_ENOMEM.  A hash set: a Bundle.Write of one
 * operation of 50,000 templates (2 MB) took 5.7-7.0 s with a pairwise scan,
 * 0.06-0.07 s so (Debug build, memory engine, whole request over HTTP). */
static int no_duplicate(tc_arena_t *a, char **v, size_t n) {
  size_t *keep = tc_arena_alloc(a, (n + 1) * sizeof *keep);
  size_t kept = keep ? tc__first_occurrences(a, (const char *const *)v, n, 1, keep) : (size_t)-1;
  return kept == (size_t)-1 ? TC_ENOMEM : kept < n ? TC_EALREADY_EXISTS : 0;
}

static int check_operations(tc_arena_t *a, const Base__V1__DataBundle *b) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < b->n_operations; i++) {
    const Base__V1__Operation *o = b->operations[i];
    rc = no_duplicate(a, o->relationships_write, o->n_relationships_write);
    if (rc == 0) rc = no_duplicate(a, o->relationships_delete, o->n_relationships_delete);
    if (rc == 0) rc = no_duplicate(a, o->attributes_write, o->n_attributes_write);
    if (rc == 0) rc = no_duplicate(a, o->attributes_delete, o->n_attributes_delete);
  }
  return rc;
}

/* b as the payload the backend stores: a packed Any, in the arena. */
static int pack_bundle(tc_arena_t *a, const Base__V1__DataBundle *b, tc_bundle_t *out) {
  size_t len = protobuf_c_message_get_packed_size(&b->base);
  uint8_t *value = tc_arena_alloc(a, len + 1);
  if (!value) return TC_ENOMEM;
  protobuf_c_message_pack(&b->base, value);
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = BUNDLE_TYPE_URL;
  any.value = (ProtobufCBinaryData){len, value};
  size_t any_len = protobuf_c_message_get_packed_size(&any.base);
  uint8_t *packed = tc_arena_alloc(a, any_len + 1);
  if (!packed) return TC_ENOMEM;
  protobuf_c_message_pack(&any.base, packed);
  *out = (tc_bundle_t){b->name ? b->name : "", packed, any_len};
  return 0;
}

/* ---- Write --------------------------------------------------------------- */

static void on_written(void *arg, int status) {
  bundle_op_t *s = arg;
  const Base__V1__BundleWriteRequest *r = (const void *)s->op.call->request;
  Base__V1__BundleWriteResponse resp = BASE__V1__BUNDLE_WRITE_RESPONSE__INIT;
  resp.names = tc_arena_alloc(&s->op.arena, (r->n_bundles + 1) * sizeof *resp.names);
  if (status == 0 && !resp.names) status = TC_ENOMEM;
  for (size_t i = 0; status == 0 && i < r->n_bundles; i++)
    resp.names[resp.n_names++] = r->bundles[i]->name ? r->bundles[i]->name : "";
  tc_op_finish(&s->op, status, &resp.base);
}

/* A name given twice: the last bundle of that name is stored.  Keeps v's
 * last bundle of each name, in order of those; the count, or (size_t)-1. */
static size_t keep_last(tc_arena_t *a, tc_bundle_t *v, size_t n) {
  const char **names = tc_arena_alloc(a, (n + 1) * sizeof *names);
  size_t *keep = tc_arena_alloc(a, (n + 1) * sizeof *keep);
  tc_bundle_t *copy = tc_arena_alloc(a, (n + 1) * sizeof *copy);
  if (!names || !keep || !copy) return (size_t)-1;
  if (n) memcpy(copy, v, n * sizeof *v);
  for (size_t i = 0; i < n; i++) names[i] = v[n - 1 - i].name; /* newest first */
  size_t kept = tc__first_occurrences(a, names, n, 1, keep);
  for (size_t i = 0; kept != (size_t)-1 && i < kept; i++) v[i] = copy[n - 1 - keep[kept - 1 - i]];
  return kept;
}

static void run_write(tc_job_t *job, int status, const tc_schema_t *unused) {
  (void)unused;
  bundle_op_t *s = (bundle_op_t *)job;
  if (status == 0 && s->op.call->cancelled) status = TC_ECANCELLED;
  if (status == 0 && s->n_bundles == 0) { /* nothing to store */
    on_written(s, 0);
    return;
  }
  if (status == 0)
    status = s->op.srv->api->bundle_write(s->op.srv->backend, s->tenant_id, s->bundles,
                                          s->n_bundles, on_written, s);
  if (status != 0) tc_op_finish(&s->op, status, NULL);
}

int tc_bundle_write_rpc(tc_call_t *call) {
  const Base__V1__BundleWriteRequest *r = (const void *)call->request;
  if (!tc__bundle_calls_ok(call->server)) return tc__bundle_calls_refuse(call);
  bundle_op_t *s = (bundle_op_t *)tc_op_new(call, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->tenant_id = r->tenant_id;
  s->bundles = tc_arena_alloc(&s->op.arena, (r->n_bundles + 1) * sizeof *s->bundles);
  int rc = s->bundles ? 0 : TC_ENOMEM;
  for (size_t i = 0; rc == 0 && i < r->n_bundles; i++)
    rc = check_operations(&s->op.arena, r->bundles[i]);
  for (size_t i = 0; rc == 0 && i < r->n_bundles; i++)
    rc = pack_bundle(&s->op.arena, r->bundles[i], &s->bundles[i]);
  if (rc == 0 && (s->n_bundles = keep_last(&s->op.arena, s->bundles, r->n_bundles)) == (size_t)-1)
    rc = TC_ENOMEM;
  if (rc != 0) {
    tc_op_discard(&s->op);
    return rc == TC_EALREADY_EXISTS ? tc_call_error(call, rc, "ERROR_CODE_ALREADY_EXIST") : rc;
  }
  s->op.job.no_tenant_check = 1; /* Permify's bundle store does not look */
  return tc_op_submit(&s->op, r->tenant_id, run_write);
}

/* ---- Read ---------------------------------------------------------------- */

Base__V1__DataBundle *tc__bundle_unpack(tc_arena_t *a, const uint8_t *p, size_t len) {
  ProtobufCAllocator *alloc = tc_arena_protobuf_allocator(a);
  Google__Protobuf__Any *any = (Google__Protobuf__Any *)protobuf_c_message_unpack(
      &google__protobuf__any__descriptor, alloc, len, p);
  if (!any || !any->type_url || strcmp(any->type_url, BUNDLE_TYPE_URL) != 0) return NULL;
  return (Base__V1__DataBundle *)protobuf_c_message_unpack(&base__v1__data_bundle__descriptor,
                                                           alloc, any->value.len, any->value.data);
}

static void on_read(void *arg, int status, const uint8_t *payload, size_t len) {
  bundle_op_t *s = arg;
  Base__V1__BundleReadResponse resp = BASE__V1__BUNDLE_READ_RESPONSE__INIT;
  if (status == 0 && !(resp.bundle = tc__bundle_unpack(&s->op.arena, payload, len)))
    status = TC_EDATASTORE;
  tc_op_finish(&s->op, status, &resp.base);
}

static void on_deleted(void *arg, int status) {
  bundle_op_t *s = arg;
  Base__V1__BundleDeleteResponse resp = BASE__V1__BUNDLE_DELETE_RESPONSE__INIT;
  resp.name = (char *)s->name;
  tc_op_finish(&s->op, status, &resp.base);
}

static void run_keyed(tc_job_t *job, int status, const tc_schema_t *unused) {
  (void)unused;
  bundle_op_t *s = (bundle_op_t *)job;
  const tc_backend_api_t *api = s->op.srv->api;
  int is_read = s->op.call->method->output == &base__v1__bundle_read_response__descriptor;
  if (status == 0 && s->op.call->cancelled) status = TC_ECANCELLED;
  if (status == 0)
    status = is_read ? api->bundle_read(s->op.srv->backend, s->tenant_id, s->name, on_read, s)
                     : api->bundle_delete(s->op.srv->backend, s->tenant_id, s->name, on_deleted, s);
  if (status != 0) tc_op_finish(&s->op, status, NULL);
}

/* Read and Delete: a tenant and a name. */
static int start_keyed(tc_call_t *call, const char *tenant_id, const char *name) {
  if (!tc__bundle_calls_ok(call->server)) return tc__bundle_calls_refuse(call);
  bundle_op_t *s = (bundle_op_t *)tc_op_new(call, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->tenant_id = tenant_id;
  s->name = name ? name : "";
  s->op.job.no_tenant_check = 1;
  return tc_op_submit(&s->op, tenant_id, run_keyed);
}

int tc_bundle_read_rpc(tc_call_t *call) {
  const Base__V1__BundleReadRequest *r = (const void *)call->request;
  return start_keyed(call, r->tenant_id, r->name);
}

int tc_bundle_delete_rpc(tc_call_t *call) {
  const Base__V1__BundleDeleteRequest *r = (const void *)call->request;
  return start_keyed(call, r->tenant_id, r->name);
}
