/* Backend conformance case: tenant_state (ABI 2.5), what the server reads
 * each time what it knows of a tenant is a second old: whether the tenant
 * exists and its head schema version, with the head's text only when it is
 * not the version the caller says it holds; an answer agreeing with
 * tenant_get and schema_read, seeing the writes submitted before it. */
#include "conformance.h"

/* tenant_state(t, known): asserts the status, the version and the text
 * (NULL: none). */
static void expect_state(ct_fixture_t *f, const char *t, const char *known, int status,
                         const char *version, const char *text) {
  ct_result_t r = {0};
  CT_CALL(f, &r, f->api->tenant_state(f->b, t, known, ct_on_schema, &r));
  assert_int_equal(r.status, status);
  if (version)
    assert_string_equal(r.version, version);
  else
    assert_null(r.version);
  if (text)
    assert_string_equal(r.text, text);
  else
    assert_null(r.text);
  ct_result_free(&r);
}

/* A schema of n entities, about 70 bytes each, in descending name order
 * with a blank line between them: a backend that keeps a row per statement
 * and joins them in name order gives back a text of the same length;
 * malloc'd. */
static char *many_entities(int n) {
  char *text = malloc((size_t)n * 80 + 1), *p = text;
  assert_non_null(text);
  for (int i = n - 1; i >= 0; i--)
    p += sprintf(p, "entity e%05d {\n  relation owner @user\n  permission view = owner\n}%s", i,
                 i ? "\n\n" : "");
  return text;
}

/* A head of many statements, over 100 KiB: tenant_state's text is all of
 * it, the very text schema_read gives (a backend that keeps a row per
 * statement answers them in the same order), and none of it once held. */
static void expect_large_head(ct_fixture_t *f, const char *t, const char *known,
                              const char *version) {
  char *text = many_entities(2000);
  ct_schema_write(f, t, version, text);
  ct_result_t r = {0}, s = {0};
  CT_CALL(f, &r, f->api->schema_read(f->b, t, "", ct_on_schema, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.version, version);
  CT_CALL(f, &s, f->api->tenant_state(f->b, t, known, ct_on_schema, &s));
  assert_int_equal(s.status, 0);
  assert_string_equal(s.version, version);
  assert_non_null(s.text);
  assert_int_equal(strlen(s.text), strlen(text));
  assert_string_equal(s.text, r.text);
  expect_state(f, t, version, 0, version, NULL);
  ct_result_free(&r);
  ct_result_free(&s);
  free(text);
}

void test_tenant_state(void **state) {
  ct_fixture_t *f = *state;
  assert_true(f->api->struct_size >= TC_BACKEND_API_V2_5_SIZE);
  assert_non_null(f->api->tenant_state);
  static const char *const v[] = {"cv000000000000000001", "cv000000000000000002",
                                  "cv000000000000000003"};
  static const char *const texts[] = {"entity a {}", "entity b {}", "entity c {}"};
  ct_result_t r = {0};
  char *t = ct_tenant_name("state");

  /* No tenant: NOT_FOUND, whatever the caller holds; also when its id has
   * schemas (written by another writer, or left by one). */
  expect_state(f, t, NULL, TC_ENOTFOUND, NULL, NULL);
  expect_state(f, t, v[0], TC_ENOTFOUND, NULL, NULL);
  char *orphan = ct_tenant_name("state-orphan");
  ct_schema_write(f, orphan, v[0], texts[0]);
  expect_state(f, orphan, NULL, TC_ENOTFOUND, NULL, NULL);
  free(orphan);

  /* A tenant without a schema: "" and no text. */
  CT_CALL(f, &r, f->api->tenant_create(f->b, t, "state", ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  expect_state(f, t, NULL, 0, "", NULL);
  expect_state(f, t, "", 0, "", NULL);
  expect_state(f, t, v[0], 0, "", NULL);

  /* The head is the largest version, written out of order; its text comes
   * unless the caller holds that version. */
  ct_schema_write(f, t, v[1], texts[1]);
  ct_schema_write(f, t, v[0], texts[0]);
  expect_state(f, t, NULL, 0, v[1], texts[1]);
  expect_state(f, t, "", 0, v[1], texts[1]);
  expect_state(f, t, v[0], 0, v[1], texts[1]);
  expect_state(f, t, v[1], 0, v[1], NULL);

  /* The same text schema_read gives for the head. */
  CT_CALL(f, &r, f->api->schema_read(f->b, t, "", ct_on_schema, &r));
  assert_int_equal(r.status, 0);
  assert_string_equal(r.version, v[1]);
  expect_state(f, t, NULL, 0, v[1], r.text);

  /* A read: it sees a schema write submitted before it, not yet answered. */
  ct_result_t w = {0}, s = {0};
  assert_int_equal(f->api->schema_write(f->b, t, v[2], texts[2], ct_on_status, &w), 0);
  assert_int_equal(f->api->tenant_state(f->b, t, v[1], ct_on_schema, &s), 0);
  assert_false(s.done);
  ct_wait_for(f, &s.done);
  assert_true(w.done);
  assert_int_equal(w.status, 0);
  assert_int_equal(s.status, 0);
  assert_string_equal(s.version, v[2]);
  assert_string_equal(s.text, texts[2]);
  ct_result_free(&w);
  ct_result_free(&s);
  expect_large_head(f, t, v[2], "cv000000000000000004");

  /* Per tenant; and gone with the tenant. */
  char *other = ct_tenant_name("state-other");
  CT_CALL(f, &r, f->api->tenant_create(f->b, other, "other", ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  expect_state(f, other, NULL, 0, "", NULL);
  free(other);
  CT_CALL(f, &r, f->api->tenant_delete(f->b, t, ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  expect_state(f, t, "cv000000000000000004", TC_ENOTFOUND, NULL, NULL);
  ct_result_free(&r);
  free(t);
}
