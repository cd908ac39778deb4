/* Backend conformance cases: schemas: write, read, list. */
#include "conformance.h"

void test_schemas(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("schemas");
  static const char *const versions[] = {"cv000000000000000001", "cv000000000000000002",
                                         "cv000000000000000003"};
  static const char *const texts[] = {"entity a {}", "entity b {}", "entity c {}"};

  CALL(f, &r, f->api->schema_read(f->b, t, "", on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  assert_null(r.version);
  assert_null(r.text);
  CALL(f, &r, f->api->schema_list(f->b, t, NULL, 10, on_schemas, &r));
  assert_int_equal(r.status, 0);
  assert_null(r.head);
  assert_int_equal(r.rows.n, 0);

  /* Written out of order: the head is the largest version. */
  static const int order[] = {1, 0, 2};
  for (int i = 0; i < 3; i++) {
    CALL(f, &r, f->api->schema_write(f->b, t, versions[order[i]], texts[order[i]], on_status,
                                     &r));
    assert_int_equal(r.status, 0);
  }
  CALL(f, &r, f->api->schema_write(f->b, t, versions[1], "entity x {}", on_status, &r));
  assert_int_equal(r.status, TC_EUNIQUE);

  CALL(f, &r, f->api->schema_read(f->b, t, NULL, on_schema, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.version, versions[2]);
  assert_string_equal(r.text, texts[2]);
  CALL(f, &r, f->api->schema_read(f->b, t, versions[0], on_schema, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.version, versions[0]);
  assert_string_equal(r.text, texts[0]);
  CALL(f, &r, f->api->schema_read(f->b, t, "cv000000000000000009", on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  assert_null(r.text);

  CALL(f, &r, f->api->schema_list(f->b, t, "", 2, on_schemas, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.head, versions[2]);
  expect(&r.rows, versions[2], versions[1], NULL);
  assert_string_equal(r.next_key, versions[0]);
  CALL(f, &r, f->api->schema_list(f->b, t, versions[0], 2, on_schemas, &r));
  assert_string_equal(r.head, versions[2]);
  expect(&r.rows, versions[0], NULL);
  assert_null(r.next_key);
  CALL(f, &r, f->api->schema_list(f->b, t, NULL, 0, on_schemas, &r));
  expect(&r.rows, versions[2], versions[1], versions[0], NULL);

  /* Schemas are per tenant. */
  char *other = tenant_name("schemas-other");
  CALL(f, &r, f->api->schema_read(f->b, other, NULL, on_schema, &r));
  assert_int_equal(r.status, TC_ESCHEMA_NOT_FOUND);
  result_free(&r);
  free(other);
  free(t);
}
