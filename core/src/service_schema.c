/* base.v1.Schema: Write, PartialWrite, Read, List. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "service.h"
#include "token.h"
#include "watch.h"

typedef struct {
  tc_op_t op;
  const char *tenant_id;
  char version[21];
  tc_schema_t *compiled; /* owned until handed to the tenant actor */
  char *before;          /* Schema.List cursor, malloc'd */
  uint32_t limit;
} schema_op_t;

static void finish(schema_op_t *s, int status, const ProtobufCMessage *resp) {
  tc_schema_free(s->compiled);
  free(s->before);
  tc_op_finish(&s->op, status, resp);
}

/* ---- Write --------------------------------------------------------------- */

static void on_schema_stored(void *arg, int status) {
  schema_op_t *s = arg;
  if (status == 0) {
    status = tc_tenant_set_head_schema(&s->op.job, s->version, s->compiled);
    s->compiled = NULL;
  }
  tc_tenant_job_done(&s->op.job);
  /* A schema write is a transaction of the feed (include_schema_changes). */
  if (status == 0) tc_watch_notify(s->op.srv, s->tenant_id);
  Base__V1__SchemaWriteResponse resp = BASE__V1__SCHEMA_WRITE_RESPONSE__INIT;
  resp.schema_version = s->version;
  finish(s, status, &resp.base);
}

/* Compiles text and stores it as a new version, the tenant's head; answers
 * with the version (both responses have only that field).  What is stored,
 * and kept as the head, is the schema laid out as Permify stores one,
 * statement by statement: a partial write edits what it reads back, and
 * Permify's rebuilds rule bodies from the stored text, one line longer each
 * time.  status: the job's so far; an error, or a call cancelled meanwhile,
 * is answered at once and lets the tenant's mailbox move on. */
static void store(schema_op_t *s, int status, const char *text) {
  char *stored = NULL;
  tc_schema_t *parsed = NULL;
  if (status == 0 && s->op.call->cancelled) status = TC_ECANCELLED;
  if (status == 0) status = tc_schema_compile(text, &parsed, &s->op.errmsg);
  if (status == 0) status = tc_schema_patch(parsed, NULL, 0, &stored, &s->op.errmsg);
  tc_schema_free(parsed);
  /* What compiled compiles again once laid out; were it not so, say so. */
  if (status == 0 && tc_schema_compile(stored, &s->compiled, &s->op.errmsg) != 0) {
    tc_log(TC_LOG_ERROR, "schema laid out for storage does not compile: %s",
           s->op.errmsg ? s->op.errmsg : "?");
    free(s->op.errmsg);
    s->op.errmsg = NULL;
    status = TC_EINTERNAL;
  }
  if (status == 0) {
    tc_schema_version_new(s->version);
    status = s->op.srv->api->schema_write(s->op.srv->backend, s->tenant_id, s->version, stored,
                                          on_schema_stored, s);
  }
  free(stored);
  if (status != 0) {
    tc_tenant_job_done(&s->op.job);
    finish(s, status, NULL);
  }
}

static void run_write(tc_job_t *job, int status, const tc_schema_t *unused) {
  (void)unused;
  schema_op_t *s = (schema_op_t *)job;
  const Base__V1__SchemaWriteRequest *r = (const void *)s->op.call->request;
  store(s, status, r->schema);
}

int tc_schema_write_rpc(tc_call_t *call) {
  const Base__V1__SchemaWriteRequest *r = (const void *)call->request;
  schema_op_t *s = (schema_op_t *)tc_op_new(call, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->tenant_id = r->tenant_id;
  s->op.job.barrier = 1; /* later writes must see the new head */
  return tc_op_submit(&s->op, r->tenant_id, run_write);
}

/* ---- PartialWrite ------------------------------------------------------- */

static void run_partial(tc_job_t *job, int status, const tc_schema_t *base) {
  schema_op_t *s = (schema_op_t *)job;
  const Base__V1__SchemaPartialWriteRequest *r = (const void *)s->op.call->request;
  char *text = NULL;
  /* A version that is not there is an empty schema to Permify, whose edits
   * then fail (no entity to edit, or nothing that compiles); only a
   * missing head is ERROR_CODE_SCHEMA_NOT_FOUND. */
  if (status == TC_ESCHEMA_NOT_FOUND && *job->schema_version) status = 0;
  if (status == 0)
    status = tc_schema_patch(base, (const void *)r->partials, r->n_partials, &text, &s->op.errmsg);
  store(s, status, text); /* answers, and frees s, on error */
  free(text);
}

int tc_schema_partial_write_rpc(tc_call_t *call) {
  const Base__V1__SchemaPartialWriteRequest *r = (const void *)call->request;
  schema_op_t *s = (schema_op_t *)tc_op_new(call, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->tenant_id = r->tenant_id;
  s->op.job.barrier = 1; /* edits the head it read; later calls see the new one */
  s->op.job.want_schema = 1;
  s->op.job.schema_version = r->metadata->schema_version;
  return tc_op_submit(&s->op, r->tenant_id, run_partial);
}

/* ---- Read ---------------------------------------------------------------- */

static void run_read(tc_job_t *job, int status, const tc_schema_t *schema) {
  schema_op_t *s = (schema_op_t *)job;
  Base__V1__SchemaDefinition *def = NULL;
  if (status == 0) status = tc_schema_to_proto(schema, &def);
  Base__V1__SchemaReadResponse resp = BASE__V1__SCHEMA_READ_RESPONSE__INIT;
  resp.schema = def;
  finish(s, status, &resp.base);
  if (def) protobuf_c_message_free_unpacked(&def->base, NULL);
}

int tc_schema_read_rpc(tc_call_t *call) {
  const Base__V1__SchemaReadRequest *r = (const void *)call->request;
  schema_op_t *s = (schema_op_t *)tc_op_new(call, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->op.job.want_schema = 1;
  s->op.job.schema_version = r->metadata->schema_version;
  return tc_op_submit(&s->op, r->tenant_id, run_read);
}

/* ---- List ---------------------------------------------------------------- */

/* Go's default time format, which Permify uses for created_at. */
static char *go_time(tc_arena_t *a, int64_t ms) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
  return tc_arena_strdup(a, buf);
}

static void on_list(void *arg, int status, const char *head, const tc_schema_row_t *rows, size_t n,
                    const char *next) {
  schema_op_t *s = arg;
  tc_arena_t *a = &s->op.arena;
  /* No schema yet: Permify answers its head lookup's NOT_FOUND. */
  if (status == 0 && !(head && *head)) status = TC_ESCHEMA_NOT_FOUND;
  if (status != 0) {
    finish(s, status, NULL);
    return;
  }
  Base__V1__SchemaListResponse resp = BASE__V1__SCHEMA_LIST_RESPONSE__INIT;
  resp.head = tc_arena_strdup(a, head ? head : "");
  resp.continuous_token = tc_op_cont_token(&s->op, next);
  resp.schemas = tc_arena_alloc(a, (n + 1) * sizeof *resp.schemas);
  if (!resp.head || !resp.continuous_token || !resp.schemas) status = TC_ENOMEM;
  for (size_t i = 0; status == 0 && i < n; i++) {
    Base__V1__SchemaList *e = tc_arena_alloc(a, sizeof *e);
    if (!e) {
      status = TC_ENOMEM;
      break;
    }
    base__v1__schema_list__init(e);
    e->version = tc_arena_strdup(a, rows[i].version);
    e->created_at = go_time(a, rows[i].created_at_ms);
    if (!e->version || !e->created_at) status = TC_ENOMEM;
    resp.schemas[resp.n_schemas++] = e;
  }
  finish(s, status, &resp.base);
}

static void run_list(tc_job_t *job, int status, const tc_schema_t *unused) {
  (void)unused;
  schema_op_t *s = (schema_op_t *)job;
  if (status == 0)
    status = s->op.srv->api->schema_list(s->op.srv->backend, s->tenant_id, s->before, s->limit,
                                         on_list, s);
  if (status != 0) finish(s, status, NULL);
}

int tc_schema_list_rpc(tc_call_t *call) {
  const Base__V1__SchemaListRequest *r = (const void *)call->request;
  schema_op_t *s = (schema_op_t *)tc_op_new(call, sizeof *s);
  if (!s) return TC_ENOMEM;
  s->tenant_id = r->tenant_id;
  s->limit = tc_page_size(r->page_size);
  if (r->continuous_token && *r->continuous_token &&
      !(s->before = tc_cont_token_decode(r->continuous_token))) {
    tc_op_discard(&s->op);
    return tc_call_error(call, TC_ECONT_TOKEN, "ERROR_CODE_INVALID_CONTINUOUS_TOKEN");
  }
  return tc_op_submit(&s->op, r->tenant_id, run_list);
}
