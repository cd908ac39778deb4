/* base.v1.Data: Write, WriteRelationships, Delete, DeleteRelationships,
 * ReadRelationships, ReadAttributes. */
#include <stdlib.h>
#include <string.h>

#include "service.h"
#include "token.h"
#include "watch.h"

/* ---- writes -------------------------------------------------------------- */

typedef struct {
  tc_op_t op;
  tc_tuple_t *tuples;
  size_t n_tuples;
  const Base__V1__Attribute **attrs; /* de-duplicated, request order */
  size_t n_attrs;
  tc_write_batch_t batch;
  tc_tuple_filter_t tf;
  tc_attr_filter_t af;
} write_op_t;

/* The fields' hash, each with its NUL so ("ab","c") != ("a","bc"). */
static uint64_t hash_fields(const char *const *f, int n) {
  uint64_t h = TC_HASH_INIT;
  for (int i = 0; i < n; i++) h = tc_hash(h, f[i], strlen(f[i]) + 1);
  return h;
}

static int same_fields(const char *const *a, const char *const *b, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(a[i], b[i]) != 0) return 0;
  return 1;
}

/* A hash set, so 1000 items cost 1000 probes rather than half a million
 * comparisons. */
size_t tc__first_occurrences(tc_arena_t *a, const char *const *keys, size_t n, int n_fields,
                             size_t *keep) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  size_t *slots = tc_arena_alloc(a, cap * sizeof *slots); /* index + 1; 0 = empty */
  if (!slots) return (size_t)-1;
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    const char *const *k = keys + i * (size_t)n_fields;
    size_t at = (size_t)hash_fields(k, n_fields) & (cap - 1);
    while (slots[at] && !same_fields(keys + (slots[at] - 1) * (size_t)n_fields, k, n_fields))
      at = (at + 1) & (cap - 1);
    if (!slots[at]) {
      slots[at] = i + 1;
      keep[kept++] = i;
    }
  }
  return kept;
}

/* Permify keeps the first occurrence of a tuple, and the first value of an
 * attribute key; later ones are dropped silently. */
static int dedup(write_op_t *w, Base__V1__Tuple **tuples, size_t n_tuples,
                 Base__V1__Attribute **attrs, size_t n_attrs) {
  tc_arena_t *a = &w->op.arena;
  size_t n_max = n_tuples > n_attrs ? n_tuples : n_attrs;
  w->tuples = tc_arena_alloc(a, (n_tuples + 1) * sizeof *w->tuples);
  w->attrs = tc_arena_alloc(a, (n_attrs + 1) * sizeof *w->attrs);
  size_t *keep = tc_arena_alloc(a, (n_max + 1) * sizeof *keep);
  const char **keys = tc_arena_alloc(a, (6 * n_max + 1) * sizeof *keys);
  if (!w->tuples || !w->attrs || !keep || !keys) return TC_ENOMEM;

  tc_tuple_t *all = tc_arena_alloc(a, (n_tuples + 1) * sizeof *all);
  if (!all) return TC_ENOMEM;
  for (size_t i = 0; i < n_tuples; i++) {
    tc_tuple_from_proto(tuples[i], &all[i]);
    const char *f[6] = {all[i].entity_type,  all[i].entity_id,  all[i].relation,
                        all[i].subject_type, all[i].subject_id, all[i].subject_relation};
    memcpy(keys + 6 * i, f, sizeof f);
  }
  size_t kept = tc__first_occurrences(a, keys, n_tuples, 6, keep);
  if (kept == (size_t)-1) return TC_ENOMEM;
  for (size_t i = 0; i < kept; i++) w->tuples[i] = all[keep[i]];
  w->n_tuples = kept;

  for (size_t i = 0; i < n_attrs; i++) {
    keys[3 * i] = attrs[i]->entity->type;
    keys[3 * i + 1] = attrs[i]->entity->id;
    keys[3 * i + 2] = attrs[i]->attribute;
  }
  kept = tc__first_occurrences(a, keys, n_attrs, 3, keep);
  if (kept == (size_t)-1) return TC_ENOMEM;
  for (size_t i = 0; i < kept; i++) w->attrs[i] = attrs[keep[i]];
  w->n_attrs = kept;
  return 0;
}

static void on_written(void *arg, int status, const char *token) {
  write_op_t *w = arg;
  if (status == 0) tc_watch_notify(w->op.srv, w->batch.tenant_id);
  char *copy = status == 0 ? tc_arena_strdup(&w->op.arena, token) : NULL;
  if (status == 0 && !copy) status = TC_ENOMEM;
  tc_op_finish_token(&w->op, status, copy);
}

/* Checks the de-duplicated items against the schema (Permify's order:
 * tuples, attributes, then the item count) and fills the backend batch. */
static int prepare_write(write_op_t *w, const tc_schema_t *schema) {
  tc_op_t *op = &w->op;
  int status;
  for (size_t i = 0; i < w->n_tuples; i++)
    if ((status = tc_schema_check_tuple(schema, &w->tuples[i])) != 0) return status;
  tc_attr_t *attrs = tc_arena_alloc(&op->arena, (w->n_attrs + 1) * sizeof *attrs);
  if (!attrs) return TC_ENOMEM;
  for (size_t i = 0; i < w->n_attrs; i++) {
    const Base__V1__Attribute *a = w->attrs[i];
    const char *type_url = a->value && a->value->type_url ? a->value->type_url : "";
    if ((status = tc_schema_check_attr(schema, a->entity->type, a->attribute, type_url)) != 0)
      return status;
    size_t len = protobuf_c_message_get_packed_size(&a->value->base);
    uint8_t *buf = tc_arena_alloc(&op->arena, len + 1);
    if (!buf) return TC_ENOMEM;
    protobuf_c_message_pack(&a->value->base, buf);
    attrs[i] = (tc_attr_t){a->entity->type, a->entity->id, a->attribute, buf, len};
  }
  if (w->n_tuples + w->n_attrs > (size_t)op->srv->cfg->database_max_data_per_write)
    return TC_EMAX_DATA_PER_WRITE;
  w->batch.tuples = w->tuples;
  w->batch.n_tuples = w->n_tuples;
  w->batch.attrs = attrs;
  w->batch.n_attrs = w->n_attrs;
  return 0;
}

/* Runs a prepared batch; a client that left before this point writes nothing. */
static void submit_batch(write_op_t *w, int status) {
  tc_op_t *op = &w->op;
  if (status == 0 && op->call->cancelled) status = TC_ECANCELLED;
  if (status == 0) status = op->srv->api->write(op->srv->backend, &w->batch, on_written, w);
  if (status != 0) tc_op_finish(op, status, NULL);
}

static void run_write(tc_job_t *job, int status, const tc_schema_t *schema) {
  write_op_t *w = (write_op_t *)job;
  if (status == 0) status = prepare_write(w, schema);
  submit_batch(w, status);
}

static int start_write(tc_call_t *call, const char *tenant_id, const char *schema_version,
                       Base__V1__Tuple **tuples, size_t n_tuples, Base__V1__Attribute **attrs,
                       size_t n_attrs) {
  write_op_t *w = (write_op_t *)tc_op_new(call, sizeof *w);
  if (!w) return TC_ENOMEM;
  int rc = dedup(w, tuples, n_tuples, attrs, n_attrs);
  if (rc != 0) {
    tc_op_discard(&w->op);
    return rc;
  }
  w->batch.tenant_id = tenant_id;
  w->op.job.want_schema = 1;
  w->op.job.schema_version = schema_version;
  return tc_op_submit(&w->op, tenant_id, run_write);
}

int tc_data_write(tc_call_t *call) {
  const Base__V1__DataWriteRequest *r = (const void *)call->request;
  return start_write(call, r->tenant_id, r->metadata->schema_version, r->tuples, r->n_tuples,
                     r->attributes, r->n_attributes);
}

int tc_data_write_relationships(tc_call_t *call) {
  const Base__V1__RelationshipWriteRequest *r = (const void *)call->request;
  return start_write(call, r->tenant_id, r->metadata->schema_version, r->tuples, r->n_tuples, NULL,
                     0);
}

/* ---- deletes ------------------------------------------------------------- */

static void run_delete(tc_job_t *job, int status, const tc_schema_t *schema) {
  (void)schema;
  write_op_t *w = (write_op_t *)job;
  int no_tuples = tc_tuple_filter_is_empty(&w->tf), no_attrs = tc_attr_filter_is_empty(&w->af);
  /* Permify answers an all-empty delete with success, an empty token and no
   * change; clients may rely on it. */
  if (status == 0 && no_tuples && no_attrs) {
    tc_op_finish_token(&w->op, 0, "");
    return;
  }
  w->batch.tuple_delete = no_tuples ? NULL : &w->tf;
  w->batch.attr_delete = no_attrs ? NULL : &w->af;
  submit_batch(w, status);
}

static int start_delete(tc_call_t *call, const char *tenant_id, const Base__V1__TupleFilter *tf,
                        const Base__V1__AttributeFilter *af) {
  write_op_t *w = (write_op_t *)tc_op_new(call, sizeof *w);
  if (!w) return TC_ENOMEM;
  tc_tuple_filter_from_proto(tf, &w->tf);
  tc_attr_filter_from_proto(af, &w->af);
  w->batch.tenant_id = tenant_id;
  return tc_op_submit(&w->op, tenant_id, run_delete);
}

int tc_data_delete(tc_call_t *call) {
  const Base__V1__DataDeleteRequest *r = (const void *)call->request;
  return start_delete(call, r->tenant_id, r->tuple_filter, r->attribute_filter);
}

int tc_data_delete_relationships(tc_call_t *call) {
  const Base__V1__RelationshipDeleteRequest *r = (const void *)call->request;
  return start_delete(call, r->tenant_id, r->filter, NULL);
}

/* ---- reads --------------------------------------------------------------- */

typedef struct {
  tc_op_t op;
  const char *tenant_id;
  const char *token;
  tc_cursor_t after;
  uint32_t limit;
  tc_tuple_filter_t tf;
  tc_attr_filter_t af;
} read_op_t;

/* Answers a read that failed; a token its backend found ahead of the
 * database is said so. */
static void read_failed(read_op_t *r, int status) {
  if (status == TC_ESNAP_TOKEN)
    tc_op_fail(&r->op, status, TC_TOKEN_AHEAD_FMT, r->token);
  else
    tc_op_finish(&r->op, status, NULL);
}

/* Starts the answer to one page: the response array for n items and the
 * continuous token (the id of the next page's first row, or none).  False
 * when the read failed or memory ran out: the read is answered then. */
static bool page_begin(read_op_t *r, int status, size_t n, void *items, char **cont,
                       tc_cursor_t next) {
  if (status != 0) {
    read_failed(r, status);
    return false;
  }
  *(void **)items = tc_arena_alloc(&r->op.arena, (n + 1) * sizeof(void *));
  char id[24];
  snprintf(id, sizeof id, "%llu", (unsigned long long)next);
  *cont = tc_op_cont_token(&r->op, next ? id : NULL);
  if (*(void **)items && *cont) return true;
  tc_op_finish(&r->op, TC_ENOMEM, NULL);
  return false;
}

static void on_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n, tc_cursor_t next) {
  read_op_t *r = arg;
  Base__V1__RelationshipReadResponse resp = BASE__V1__RELATIONSHIP_READ_RESPONSE__INIT;
  if (!page_begin(r, status, n, &resp.tuples, &resp.continuous_token, next)) return;
  for (size_t i = 0; status == 0 && i < n; i++)
    if (!(resp.tuples[resp.n_tuples++] = tc_tuple_to_proto(&r->op.arena, &rows[i])))
      status = TC_ENOMEM;
  tc_op_finish(&r->op, status, &resp.base);
}

static void on_attrs(void *arg, int status, const tc_attr_t *rows, size_t n, tc_cursor_t next) {
  read_op_t *r = arg;
  Base__V1__AttributeReadResponse resp = BASE__V1__ATTRIBUTE_READ_RESPONSE__INIT;
  if (!page_begin(r, status, n, &resp.attributes, &resp.continuous_token, next)) return;
  /* A stored value that does not decode is corruption, not a client error. */
  for (size_t i = 0; status == 0 && i < n; i++)
    if (!(resp.attributes[resp.n_attributes++] = tc_attr_to_proto(&r->op.arena, &rows[i])))
      status = TC_EINTERNAL;
  tc_op_finish(&r->op, status, &resp.base);
}

static void run_read(tc_job_t *job, int status, const tc_schema_t *schema) {
  (void)schema;
  read_op_t *r = (read_op_t *)job;
  tc_server_t *srv = r->op.srv;
  if (status != 0) {
    tc_op_finish(&r->op, status, NULL);
    return;
  }
  int rc = r->op.call->method->output == &base__v1__relationship_read_response__descriptor
               ? srv->api->read_tuples(srv->backend, r->tenant_id, r->token, &r->tf, r->after,
                                       r->limit, on_tuples, r)
               : srv->api->read_attrs(srv->backend, r->tenant_id, r->token, &r->af, r->after,
                                      r->limit, on_attrs, r);
  if (rc != 0) read_failed(r, rc);
}

static int start_read(tc_call_t *call, read_op_t *r, const char *tenant_id, const char *snap_token,
                      const char *cont_token, uint32_t page_size) {
  r->tenant_id = tenant_id;
  r->limit = tc_page_size(page_size);
  r->token = snap_token ? snap_token : "";
  int rc = tc_call_snap_token(call, r->token);
  if (rc == 0 && cont_token && *cont_token && tc_cont_token_decode_id(cont_token, &r->after))
    rc = tc_call_error(call, TC_ECONT_TOKEN, "ERROR_CODE_INVALID_CONTINUOUS_TOKEN");
  if (rc != 0) {
    tc_op_discard(&r->op);
    return rc;
  }
  return tc_op_submit(&r->op, tenant_id, run_read);
}

int tc_data_read_relationships(tc_call_t *call) {
  const Base__V1__RelationshipReadRequest *q = (const void *)call->request;
  read_op_t *r = (read_op_t *)tc_op_new(call, sizeof *r);
  if (!r) return TC_ENOMEM;
  tc_tuple_filter_from_proto(q->filter, &r->tf);
  return start_read(call, r, q->tenant_id, q->metadata->snap_token, q->continuous_token,
                    q->page_size);
}

int tc_data_read_attributes(tc_call_t *call) {
  const Base__V1__AttributeReadRequest *q = (const void *)call->request;
  read_op_t *r = (read_op_t *)tc_op_new(call, sizeof *r);
  if (!r) return TC_ENOMEM;
  tc_attr_filter_from_proto(q->filter, &r->af);
  return start_read(call, r, q->tenant_id, q->metadata->snap_token, q->continuous_token,
                    q->page_size);
}
