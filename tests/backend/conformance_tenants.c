/* Backend conformance cases: tenants: create, list, paging, delete. */
#include "conformance.h"

void test_tenants(void **state) {
  fixture_t *f = *state;
  result_t r = {0};

  CALL(f, &r, f->api->tenant_get(f->b, "t1", on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, "t1");
  assert_string_equal(r.tenant.name, "example tenant");

  char *id = tenant_name("tenant");
  CALL(f, &r, f->api->tenant_create(f->b, id, "first", on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, id);
  assert_string_equal(r.tenant.name, "first");
  int64_t created = r.tenant.created_at_ms;
  assert_true(created > 1600000000000); /* epoch milliseconds */

  CALL(f, &r, f->api->tenant_create(f->b, id, "again", on_tenant, &r));
  assert_int_equal(r.status, TC_EUNIQUE);

  CALL(f, &r, f->api->tenant_get(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.name, "first");
  assert_true(r.tenant.created_at_ms == created);

  char *missing = tenant_name("missing");
  CALL(f, &r, f->api->tenant_get(f->b, missing, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  assert_null(r.tenant.id);
  CALL(f, &r, f->api->tenant_delete(f->b, missing, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  result_free(&r);
  free(missing);
  free(id);
}

void test_tenant_list_paging(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *ids[5];
  for (int i = 0; i < 5; i++) {
    char what[16];
    snprintf(what, sizeof what, "list-%c", 'a' + i);
    ids[i] = tenant_name(what);
    CALL(f, &r, f->api->tenant_create(f->b, ids[i], what, on_tenant, &r));
    assert_int_equal(r.status, 0);
  }
  char want[3][128];
  CALL(f, &r, f->api->tenant_list(f->b, ids[0], 2, on_tenants, &r));
  assert_int_equal(r.status, 0);
  snprintf(want[0], sizeof want[0], "%s=list-a", ids[0]);
  snprintf(want[1], sizeof want[1], "%s=list-b", ids[1]);
  expect(&r.rows, want[0], want[1], NULL);
  assert_non_null(r.next_key);
  assert_string_equal(r.next_key, ids[2]);

  char *next = strdup(r.next_key);
  CALL(f, &r, f->api->tenant_list(f->b, next, 2, on_tenants, &r));
  snprintf(want[0], sizeof want[0], "%s=list-c", ids[2]);
  snprintf(want[1], sizeof want[1], "%s=list-d", ids[3]);
  expect(&r.rows, want[0], want[1], NULL);
  assert_string_equal(r.next_key, ids[4]);
  free(next);

  CALL(f, &r, f->api->tenant_list(f->b, ids[4], 1, on_tenants, &r));
  snprintf(want[0], sizeof want[0], "%s=list-e", ids[4]);
  expect(&r.rows, want[0], NULL);

  /* From the start: ordered by id, t1 among them. */
  CALL(f, &r, f->api->tenant_list(f->b, NULL, 0, on_tenants, &r));
  assert_int_equal(r.status, 0);
  assert_null(r.next_key);
  assert_true(r.rows.n >= 6);
  int seen_t1 = 0;
  for (size_t i = 0; i < r.rows.n; i++) {
    if (strcmp(r.rows.v[i], "t1=example tenant") == 0) seen_t1 = 1;
    if (i) assert_true(strcmp(r.rows.v[i - 1], r.rows.v[i]) < 0);
  }
  assert_true(seen_t1);

  CALL(f, &r, f->api->tenant_list(f->b, "", 1, on_tenants, &r));
  assert_int_equal(r.rows.n, 1);
  assert_non_null(r.next_key);
  result_free(&r);
  for (int i = 0; i < 5; i++) free(ids[i]);
}

void test_tenant_delete_removes_data(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *id = tenant_name("doomed");
  char *other = tenant_name("survivor");
  const char *h0 = head(f, id);
  CALL(f, &r, f->api->tenant_create(f->b, id, "doomed", on_tenant, &r));
  assert_int_equal(r.status, 0);
  CALL(f, &r, f->api->schema_write(f->b, id, "cv000000000000000001", "entity user {}",
                                   on_status, &r));
  assert_int_equal(r.status, 0);
  batch_t b;
  batch_init(&b, id);
  add_tuple(&b, "doc:1#viewer@user:a");
  add_attr(&b, "doc", "1", "public", "yes");
  write_ok(f, &b.w);
  write_tuples(f, other, "doc:1#viewer@user:a", NULL);

  CALL(f, &r, f->api->tenant_delete(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.tenant.id, id);
  assert_string_equal(r.tenant.name, "doomed");

  /* Nothing is left: no rows, no schema, no change history. */
  CALL(f, &r, f->api->tenant_get(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);
  read_tuples(f, &r, id, "", &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 0);
  read_attrs(f, &r, id, "", &all_attrs);
  assert_int_equal(r.rows.n, 0);
  read_changes(f, &r, id, h0, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  read_changes(f, &r, id, head(f, id), NULL, 0);
  assert_int_equal(r.rows.n, 0);
  CALL(f, &r, f->api->schema_read(f->b, id, NULL, on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  CALL(f, &r, f->api->tenant_delete(f->b, id, on_tenant, &r));
  assert_int_equal(r.status, TC_ENOTFOUND);

  /* Other tenants keep their data. */
  read_tuples(f, &r, other, "", &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", NULL);
  result_free(&r);
  free(other);
  free(id);
}
