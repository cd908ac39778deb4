/* Backend conformance cases: tenants: create, list, paging, delete. */
#include "conformance.h"

void test_tenants(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};

  CT_CALL(f, &r, f->api->tenant_get(f->b, "t1", ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, "t1");
  assert_string_equal(r.tenant.name, "example tenant");

  char *id = ct_tenant_name("tenant");
  CT_CALL(f, &r, f->api->tenant_create(f->b, id, "first", ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, id);
  assert_string_equal(r.tenant.name, "first");
  int64_t created = r.tenant.created_at_ms;
  assert_true(created > 1600000000000); /* epoch milliseconds */

  CT_CALL(f, &r, f->api->tenant_create(f->b, id, "again", ct_on_tenant, &r));
  assert_int_equal(r.status, TC_EUNIQUE);

  CT_CALL(f, &r, f->api->tenant_get(f->b, id, ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.name, "first");
  assert_true(r.tenant.created_at_ms == created);

  char *missing = ct_tenant_name("missing");
  CT_CALL(f, &r, f->api->tenant_get(f->b, missing, ct_on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  assert_null(r.tenant.id);
  CT_CALL(f, &r, f->api->tenant_delete(f->b, missing, ct_on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  ct_result_free(&r);
  free(missing);
  free(id);
}

void test_tenant_list_paging(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *ids[5];
  for (int i = 0; i < 5; i++) {
    char what[16];
    snprintf(what, sizeof what, "list-%c", 'a' + i);
    ids[i] = ct_tenant_name(what);
    CT_CALL(f, &r, f->api->tenant_create(f->b, ids[i], what, ct_on_tenant, &r));
    assert_int_equal(r.status, 0);
  }
  char want[3][128];
  CT_CALL(f, &r, f->api->tenant_list(f->b, ids[0], 2, ct_on_tenants, &r));
  assert_int_equal(r.status, 0);
  snprintf(want[0], sizeof want[0], "%s=list-a", ids[0]);
  snprintf(want[1], sizeof want[1], "%s=list-b", ids[1]);
  ct_expect(&r.rows, want[0], want[1], NULL);
  assert_non_null(r.next_key);
  assert_string_equal(r.next_key, ids[2]);

  char *next = strdup(r.next_key);
  CT_CALL(f, &r, f->api->tenant_list(f->b, next, 2, ct_on_tenants, &r));
  snprintf(want[0], sizeof want[0], "%s=list-c", ids[2]);
  snprintf(want[1], sizeof want[1], "%s=list-d", ids[3]);
  ct_expect(&r.rows, want[0], want[1], NULL);
  assert_string_equal(r.next_key, ids[4]);
  free(next);

  CT_CALL(f, &r, f->api->tenant_list(f->b, ids[4], 1, ct_on_tenants, &r));
  snprintf(want[0], sizeof want[0], "%s=list-e", ids[4]);
  ct_expect(&r.rows, want[0], NULL);

  /* From the start: ordered by id, t1 among them. */
  CT_CALL(f, &r, f->api->tenant_list(f->b, NULL, 0, ct_on_tenants, &r));
  assert_int_equal(r.status, 0);
  assert_null(r.next_key);
  assert_true(r.rows.n >= 6);
  int seen_t1 = 0;
  for (size_t i = 0; i < r.rows.n; i++) {
    if (strcmp(r.rows.v[i], "t1=example tenant") == 0) seen_t1 = 1;
    if (i) assert_true(strcmp(r.rows.v[i - 1], r.rows.v[i]) < 0);
  }
  assert_true(seen_t1);

  CT_CALL(f, &r, f->api->tenant_list(f->b, "", 1, ct_on_tenants, &r));
  assert_int_equal(r.rows.n, 1);
  assert_non_null(r.next_key);
  ct_result_free(&r);
  for (int i = 0; i < 5; i++) free(ids[i]);
}

void test_tenant_delete_removes_data(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *id = ct_tenant_name("doomed");
  char *other = ct_tenant_name("survivor");
  const char *h0 = ct_head(f, id);
  CT_CALL(f, &r, f->api->tenant_create(f->b, id, "doomed", ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  CT_CALL(
      f, &r,
      f->api->schema_write(f->b, id, "cv000000000000000001", "entity user {}", ct_on_status, &r));
  assert_int_equal(r.status, 0);
  ct_batch_t b;
  ct_batch_init(&b, id);
  ct_add_tuple(&b, "doc:1#viewer@user:a");
  ct_add_attr(&b, "doc", "1", "public", "yes");
  ct_write_ok(f, &b.w);
  ct_write_tuples(f, other, "doc:1#viewer@user:a", NULL);

  CT_CALL(f, &r, f->api->tenant_delete(f->b, id, ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, id);
  assert_string_equal(r.tenant.name, "doomed");

  /* Nothing is left: no rows, no schema, no change history. */
  CT_CALL(f, &r, f->api->tenant_get(f->b, id, ct_on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  ct_read_tuples(f, &r, id, "", &ct_all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 0);
  ct_read_attrs(f, &r, id, "", &ct_all_attrs);
  assert_int_equal(r.rows.n, 0);
  ct_read_changes(f, &r, id, h0, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  ct_read_changes(f, &r, id, ct_head(f, id), NULL, 0);
  assert_int_equal(r.rows.n, 0);
  CT_CALL(f, &r, f->api->schema_read(f->b, id, NULL, ct_on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  CT_CALL(f, &r, f->api->tenant_delete(f->b, id, ct_on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);

  /* Other tenants keep their data. */
  ct_read_tuples(f, &r, other, "", &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", NULL);
  ct_result_free(&r);
  free(other);
  free(id);
}
