/* base.v1.Tenancy: Create, Delete, List. */
#include <stdlib.h>
#include <string.h>

#include "service.h"
#include "token.h"

typedef struct {
  tc_op_t op;
  const char *id;
  char *after; /* List cursor, malloc'd */
} tenancy_op_t;

static Base__V1__Tenant *tenant_to_proto(tc_arena_t *a, const tc_tenant_row_t *row) {
  Base__V1__Tenant *t = tc_arena_alloc(a, sizeof *t);
  Google__Protobuf__Timestamp *ts = tc_arena_alloc(a, sizeof *ts);
  if (!t || !ts) return NULL;
  base__v1__tenant__init(t);
  google__protobuf__timestamp__init(ts);
  ts->seconds = row->created_at_ms / 1000;
  ts->nanos = (int32_t)(row->created_at_ms % 1000) * 1000000;
  t->id = tc_arena_strdup(a, row->id);
  t->name = tc_arena_strdup(a, row->name);
  t->created_at = ts;
  return t->id && t->name ? t : NULL;
}

static void on_created(void *arg, int status, const tc_tenant_row_t *row) {
  tenancy_op_t *t = arg;
  Base__V1__TenantCreateResponse resp = BASE__V1__TENANT_CREATE_RESPONSE__INIT;
  if (status == 0) {
    tc_tenant_set_exists(t->op.srv, row->id, 1);
    if (!(resp.tenant = tenant_to_proto(&t->op.arena, row))) status = TC_ENOMEM;
  }
  tc_op_finish(&t->op, status, &resp.base);
}

int tc_tenancy_create(tc_call_t *call) {
  const Base__V1__TenantCreateRequest *r = (const void *)call->request;
  int rc;
  tenancy_op_t *t = (tenancy_op_t *)tc_op_new(call, sizeof *t);
  if (!t) return TC_ENOMEM;
  tc_server_t *srv = call->server;
  rc = srv->api->tenant_create(srv->backend, r->id, r->name, on_created, t);
  if (rc != 0) tc_op_discard(&t->op);
  return rc;
}

static void on_deleted(void *arg, int status, const tc_tenant_row_t *row) {
  (void)row;
  tenancy_op_t *t = arg;
  if (status == 0) tc_tenant_set_exists(t->op.srv, t->id, 0);
  tc_tenant_job_done(&t->op.job);
  Base__V1__TenantDeleteResponse resp = BASE__V1__TENANT_DELETE_RESPONSE__INIT;
  resp.tenant_id = (char *)t->id;
  tc_op_finish(&t->op, status, &resp.base);
}

static void run_delete(tc_job_t *job, int status, const tc_schema_t *unused) {
  (void)unused;
  tenancy_op_t *t = (tenancy_op_t *)job;
  if (status == 0) status = t->op.srv->api->tenant_delete(t->op.srv->backend, t->id, on_deleted, t);
  if (status != 0) {
    tc_tenant_job_done(job);
    tc_op_finish(&t->op, status, NULL);
  }
}

int tc_tenancy_delete(tc_call_t *call) {
  const Base__V1__TenantDeleteRequest *r = (const void *)call->request;
  tenancy_op_t *t = (tenancy_op_t *)tc_op_new(call, sizeof *t);
  if (!t) return TC_ENOMEM;
  t->id = r->id;
  /* Through the actor, holding its mailbox, so no job of the tenant
   * overlaps the delete; the backend decides whether it existed. */
  t->op.job.barrier = 1;
  t->op.job.no_tenant_check = 1;
  return tc_op_submit(&t->op, r->id, run_delete);
}

static void on_listed(void *arg, int status, const tc_tenant_row_t *rows, size_t n,
                      const char *next) {
  tenancy_op_t *t = arg;
  tc_arena_t *a = &t->op.arena;
  free(t->after);
  if (status != 0) {
    tc_op_finish(&t->op, status, NULL);
    return;
  }
  Base__V1__TenantListResponse resp = BASE__V1__TENANT_LIST_RESPONSE__INIT;
  resp.continuous_token = tc_op_cont_token(&t->op, next);
  resp.tenants = tc_arena_alloc(a, (n + 1) * sizeof *resp.tenants);
  if (!resp.continuous_token || !resp.tenants) status = TC_ENOMEM;
  for (size_t i = 0; status == 0 && i < n; i++)
    if (!(resp.tenants[resp.n_tenants++] = tenant_to_proto(a, &rows[i]))) status = TC_ENOMEM;
  tc_op_finish(&t->op, status, &resp.base);
}

int tc_tenancy_list(tc_call_t *call) {
  const Base__V1__TenantListRequest *r = (const void *)call->request;
  int rc;
  tenancy_op_t *t = (tenancy_op_t *)tc_op_new(call, sizeof *t);
  if (!t) return TC_ENOMEM;
  if (r->continuous_token && *r->continuous_token &&
      !(t->after = tc_cont_token_decode(r->continuous_token))) {
    tc_op_discard(&t->op);
    return tc_call_error(call, TC_ECONT_TOKEN, "ERROR_CODE_INVALID_CONTINUOUS_TOKEN");
  }
  tc_server_t *srv = call->server;
  rc = srv->api->tenant_list(srv->backend, t->after, tc_page_size(r->page_size), on_listed, t);
  if (rc != 0) {
    free(t->after);
    tc_op_discard(&t->op);
  }
  return rc;
}
