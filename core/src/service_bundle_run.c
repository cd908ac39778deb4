/* base.v1.Data.RunBundle: reads the named bundle, checks the run's arguments,
 * expands every operation's templates and writes their net effect as one
 * batch: one transaction, one snap token, one Watch message.
 *
 * Permify applies each operation in turn (tuple writes, attribute writes,
 * tuple deletes, attribute deletes), with no schema check.  The net effect of
 * that sequence on a key is its last step: a tuple written or deleted, an
 * attribute key given a value or deleted.  So the batch holds, for each key
 * the run names, its last step only (plugin ABI 2.1's exact deletes).
 */
#include <stdlib.h>
#include <string.h>

#include "bundle_expand.h"
#include "log.h"
#include "service.h"
#include "watch.h"

typedef struct {
  tc_op_t op;
  const char *tenant_id;
  tc_bundle_arg_t **args; /* the run's arguments: one per key, sorted */
  size_t n_args;
  size_t room; /* bytes of text the run's templates may still expand to */
  tc_write_batch_t batch;
  /* Every step of the run, in Permify's order; del[i]: a delete step. */
  tc_tuple_t *tuples;
  tc_attr_t *attrs;
  char *tuple_del, *attr_del;
  size_t n_tuples, n_attrs;
} run_op_t;

static void on_written(void *arg, int status, const char *token) {
  run_op_t *s = arg;
  if (status == 0) tc_watch_notify(s->op.srv, s->tenant_id);
  char *copy = status == 0 ? tc_arena_strdup(&s->op.arena, token) : NULL;
  if (status == 0 && !copy) status = TC_ENOMEM;
  tc_op_finish_token(&s->op, status, copy);
}

/* Permify: every argument the bundle declares must be given (even ""). */
static int check_arguments(const run_op_t *s, const Base__V1__DataBundle *b) {
  for (size_t i = 0; i < b->n_arguments; i++)
    if (!tc_bundle_arg_find(s->args, s->n_args, b->arguments[i], strlen(b->arguments[i])))
      return TC_EMISSING_ARGUMENT;
  return 0;
}

/* Expands and parses one template into the next tuple or attribute step. */
static int add_step(run_op_t *s, const char *tmpl, int is_attr, int is_delete) {
  const Base__V1__BundleRunRequest *r = (const void *)s->op.call->request;
  const char *why = "";
  char *text = NULL;
  int rc = tc_bundle_expand(&s->op.arena, tmpl, s->args, s->n_args, &s->room, &text, &why);
  if (rc == 0 && is_attr) {
    s->attr_del[s->n_attrs] = (char)is_delete;
    rc = tc_bundle_parse_attr(&s->op.arena, text, &s->attrs[s->n_attrs++], &why);
  } else if (rc == 0) {
    s->tuple_del[s->n_tuples] = (char)is_delete;
    rc = tc_bundle_parse_tuple(&s->op.arena, text, &s->tuples[s->n_tuples++], &why);
  }
  if (rc == TC_EINVAL) {
    /* Permify's store fails the run with ERROR_CODE_DATASTORE. */
    tc_log(TC_LOG_WARN, "RunBundle %s of tenant %s: %s: %s", r->name, r->tenant_id,
           text ? text : tmpl, why);
    rc = TC_EDATASTORE;
  }
  return rc;
}

static int add_steps(run_op_t *s, char **v, size_t n, int is_attr, int is_delete) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) rc = add_step(s, v[i], is_attr, is_delete);
  return rc;
}

static int expand(run_op_t *s, const Base__V1__DataBundle *b) {
  size_t nt = 0, na = 0;
  for (size_t i = 0; i < b->n_operations; i++) {
    const Base__V1__Operation *o = b->operations[i];
    nt += o->n_relationships_write + o->n_relationships_delete;
    na += o->n_attributes_write + o->n_attributes_delete;
  }
  tc_arena_t *a = &s->op.arena;
  s->tuples = tc_arena_alloc(a, (nt + 1) * sizeof *s->tuples);
  s->attrs = tc_arena_alloc(a, (na + 1) * sizeof *s->attrs);
  s->tuple_del = tc_arena_alloc(a, nt + 1);
  s->attr_del = tc_arena_alloc(a, na + 1);
  int rc = s->tuples && s->attrs && s->tuple_del && s->attr_del ? 0 : TC_ENOMEM;
  for (size_t i = 0; rc == 0 && i < b->n_operations; i++) {
    const Base__V1__Operation *o = b->operations[i];
    rc = add_steps(s, o->relationships_write, o->n_relationships_write, 0, 0);
    if (rc == 0) rc = add_steps(s, o->attributes_write, o->n_attributes_write, 1, 0);
    if (rc == 0) rc = add_steps(s, o->relationships_delete, o->n_relationships_delete, 0, 1);
    if (rc == 0) rc = add_steps(s, o->attributes_delete, o->n_attributes_delete, 1, 1);
  }
  return rc;
}

/* The last step of every key, in order: keys are the steps' fields,
 * n_fields each; fills last[] with step indices and returns how many. */
static size_t last_steps(tc_arena_t *a, const char **keys, size_t n, int n_fields, size_t *last) {
  const char **rev = tc_arena_alloc(a, (n * (size_t)n_fields + 1) * sizeof *rev);
  if (!rev) return (size_t)-1;
  for (size_t i = 0; i < n; i++) /* newest first: the first occurrence is the last step */
    memcpy(rev + i * (size_t)n_fields, keys + (n - 1 - i) * (size_t)n_fields,
           (size_t)n_fields * sizeof *rev);
  size_t kept = tc__first_occurrences(a, rev, n, n_fields, last);
  for (size_t i = 0; kept != (size_t)-1 && i < kept; i++) last[i] = n - 1 - last[i];
  for (size_t i = 0; kept != (size_t)-1 && i < kept / 2; i++) { /* back to run order */
    size_t t = last[i];
    last[i] = last[kept - 1 - i];
    last[kept - 1 - i] = t;
  }
  return kept;
}

/* The batch: each tuple's and each attribute key's last step. */
static int net_effect(run_op_t *s) {
  tc_arena_t *a = &s->op.arena;
  size_t n = s->n_tuples > s->n_attrs ? s->n_tuples : s->n_attrs;
  const char **keys = tc_arena_alloc(a, (6 * n + 1) * sizeof *keys);
  size_t *last = tc_arena_alloc(a, (n + 1) * sizeof *last);
  tc_tuple_t *tw = tc_arena_alloc(a, (s->n_tuples + 1) * sizeof *tw);
  tc_tuple_t *td = tc_arena_alloc(a, (s->n_tuples + 1) * sizeof *td);
  tc_attr_t *aw = tc_arena_alloc(a, (s->n_attrs + 1) * sizeof *aw);
  tc_attr_t *ad = tc_arena_alloc(a, (s->n_attrs + 1) * sizeof *ad);
  if (!keys || !last || !tw || !td || !aw || !ad) return TC_ENOMEM;
  for (size_t i = 0; i < s->n_tuples; i++) {
    const tc_tuple_t *t = &s->tuples[i];
    const char *f[6] = {t->entity_type,  t->entity_id,  t->relation,
                        t->subject_type, t->subject_id, t->subject_relation};
    memcpy(keys + 6 * i, f, sizeof f);
  }
  size_t kept = last_steps(a, keys, s->n_tuples, 6, last);
  if (kept == (size_t)-1) return TC_ENOMEM;
  tc_write_batch_t *w = &s->batch;
  for (size_t i = 0; i < kept; i++) {
    if (s->tuple_del[last[i]])
      td[w->n_tuple_deletes++] = s->tuples[last[i]];
    else
      tw[w->n_tuples++] = s->tuples[last[i]];
  }
  for (size_t i = 0; i < s->n_attrs; i++) {
    const tc_attr_t *x = &s->attrs[i];
    const char *f[3] = {x->entity_type, x->entity_id, x->attribute};
    memcpy(keys + 3 * i, f, sizeof f);
  }
  if ((kept = last_steps(a, keys, s->n_attrs, 3, last)) == (size_t)-1) return TC_ENOMEM;
  for (size_t i = 0; i < kept; i++) {
    if (s->attr_del[last[i]])
      ad[w->n_attr_deletes++] = s->attrs[last[i]];
    else
      aw[w->n_attrs++] = s->attrs[last[i]];
  }
  w->tuples = tw;
  w->tuple_deletes = td;
  w->attrs = aw;
  w->attr_deletes = ad;
  return 0;
}

/* The run's batch from its stored bundle: 0 or the call's error. */
static int prepare(run_op_t *s, const uint8_t *payload, size_t len) {
  const Base__V1__DataBundle *b = tc__bundle_unpack(&s->op.arena, payload, len);
  if (!b) return TC_EDATASTORE;
  int rc = check_arguments(s, b);
  if (rc == 0) rc = expand(s, b);
  if (rc == 0) rc = net_effect(s);
  if (rc == 0 && s->op.call->cancelled) rc = TC_ECANCELLED;
  return rc;
}

/* A run's expanded text may total the largest request the server takes: a
 * run cannot write more than a Data.Write could carry (nor a transaction
 * whose Watch message could not be sent), however often its templates
 * repeat an argument. */
static size_t max_text(const run_op_t *s) { return (size_t)s->op.srv->cfg->grpc_max_message_size; }

static void on_bundle(void *arg, int status, const uint8_t *payload, size_t len) {
  run_op_t *s = arg;
  if (status == 0) status = prepare(s, payload, len);
  if (status == 0) status = s->op.srv->api->write(s->op.srv->backend, &s->batch, on_written, s);
  /* The write is queued (writes keep submission order): later jobs may go. */
  tc_tenant_job_done(&s->op.job);
  const Base__V1__BundleRunRequest *r = (const void *)s->op.call->request;
  if (status == TC_ETOO_LARGE)
    tc_op_fail(&s->op, status, "bundle %s expands to more than %zu bytes of text",
               r->name ? r->name : "", max_text(s));
  else if (status != 0)
    tc_op_finish(&s->op, status, NULL);
}

static void run_job(tc_job_t *job, int status, const tc_schema_t *unused) {
  (void)unused;
  run_op_t *s = (run_op_t *)job;
  const Base__V1__BundleRunRequest *r = (const void *)s->op.call->request;
  if (status == 0)
    status = s->op.srv->api->bundle_read(s->op.srv->backend, s->tenant_id, r->name ? r->name : "",
                                         on_bundle, s);
  if (status != 0) {
    tc_tenant_job_done(job);
    tc_op_finish(&s->op, status, NULL);
  }
}

/* s->args: the last entry of each key in r's map, as protobuf's decoders
 * (and so Permify) keep a map key given twice.  0 or TC_ENOMEM. */
static int keep_last_arguments(run_op_t *s, const Base__V1__BundleRunRequest *r) {
  tc_arena_t *a = &s->op.arena;
  size_t n = r->n_arguments;
  const char **keys = tc_arena_alloc(a, (n + 1) * sizeof *keys);
  size_t *last = tc_arena_alloc(a, (n + 1) * sizeof *last);
  s->args = tc_arena_alloc(a, (n + 1) * sizeof *s->args);
  if (!keys || !last || !s->args) return TC_ENOMEM;
  for (size_t i = 0; i < n; i++) keys[i] = r->arguments[i]->key ? r->arguments[i]->key : "";
  size_t kept = last_steps(a, keys, n, 1, last);
  if (kept == (size_t)-1) return TC_ENOMEM;
  for (size_t i = 0; i < kept; i++) s->args[i] = r->arguments[last[i]];
  s->n_args = kept;
  return 0;
}

int tc_data_run_bundle(tc_call_t *call) {
  const Base__V1__BundleRunRequest *r = (const void *)call->request;
  if (!tc__bundle_calls_ok(call->server)) return tc__bundle_calls_refuse(call);
  run_op_t *s = (run_op_t *)tc_op_new(call, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->tenant_id = r->tenant_id;
  s->batch.tenant_id = r->tenant_id;
  s->room = max_text(s);
  if (keep_last_arguments(s, r) != 0) {
    tc_op_discard(&s->op);
    return TC_ENOMEM;
  }
  tc_bundle_args_sort(s->args, s->n_args);
  s->op.job.barrier = 1;         /* the run's write keeps its place among the tenant's writes */
  s->op.job.no_tenant_check = 1; /* Permify looks up the bundle only */
  return tc_op_submit(&s->op, r->tenant_id, run_job);
}
