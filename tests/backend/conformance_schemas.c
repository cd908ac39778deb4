/* Backend conformance cases: schemas: write, read, list. */
#include "conformance.h"

void test_schemas(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *t = ct_tenant_name("schemas");
  static const char *const versions[] = {"cv000000000000000001", "cv000000000000000002",
                                         "cv000000000000000003"};
  static const char *const texts[] = {"entity a {}", "entity b {}", "entity c {}"};

  CT_CALL(f, &r, f->api->schema_read(f->b, t, "", ct_on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  assert_null(r.version);
  assert_null(r.text);
  CT_CALL(f, &r, f->api->schema_list(f->b, t, NULL, 10, ct_on_schemas, &r));
  assert_int_equal(r.status, 0);
  assert_null(r.head);
  assert_int_equal(r.rows.n, 0);

  /* Written out of order: the head is the largest version. */
  static const int order[] = {1, 0, 2};
  for (int i = 0; i < 3; i++) {
    CT_CALL(f, &r,
            f->api->schema_write(f->b, t, versions[order[i]], texts[order[i]], ct_on_status, &r));
    assert_int_equal(r.status, 0);
  }
  CT_CALL(f, &r, f->api->schema_write(f->b, t, versions[1], "entity x {}", ct_on_status, &r));
  assert_int_equal(r.status, TC_EUNIQUE);

  CT_CALL(f, &r, f->api->schema_read(f->b, t, NULL, ct_on_schema, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.version, versions[2]);
  assert_string_equal(r.text, texts[2]);
  CT_CALL(f, &r, f->api->schema_read(f->b, t, versions[0], ct_on_schema, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.version, versions[0]);
  assert_string_equal(r.text, texts[0]);
  CT_CALL(f, &r, f->api->schema_read(f->b, t, "cv000000000000000009", ct_on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  assert_null(r.text);

  CT_CALL(f, &r, f->api->schema_list(f->b, t, "", 2, ct_on_schemas, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.head, versions[2]);
  ct_expect(&r.rows, versions[2], versions[1], NULL);
  assert_string_equal(r.next_key, versions[0]);
  CT_CALL(f, &r, f->api->schema_list(f->b, t, versions[0], 2, ct_on_schemas, &r));
  assert_string_equal(r.head, versions[2]);
  ct_expect(&r.rows, versions[0], NULL);
  assert_null(r.next_key);
  CT_CALL(f, &r, f->api->schema_list(f->b, t, NULL, 0, ct_on_schemas, &r));
  ct_expect(&r.rows, versions[2], versions[1], versions[0], NULL);

  /* Schemas are per tenant. */
  char *other = ct_tenant_name("schemas-other");
  CT_CALL(f, &r, f->api->schema_read(f->b, other, NULL, ct_on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  ct_result_free(&r);
  free(other);
  free(t);
}
