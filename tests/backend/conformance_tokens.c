/* Backend conformance cases: snap tokens: token_check. */
#include "conformance.h"

#include "token_forge.h"

void test_token_check(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *t = ct_tenant_name("tokens");
  const char *h0 = ct_head(f, t);
  const char *w = ct_write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  ct_read_changes(f, &r, t, h0, NULL, 0);
  const char *c = ct_keep(f, r.tokens.v[0]);
  const char *mine[] = {h0, w, c, r.last, ct_head(f, t)};
  for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) ct_token_ok(f, f->b, mine[i]);

  /* Malformed: not anything a backend mints. */
  char *mangled = malloc(strlen(w) + 2);
  assert_non_null(mangled);
  sprintf(mangled, "%s!", w);
  const char *bad[] = {"not a token!", "!!!!", "x", mangled};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) ct_token_bad(f, f->b, bad[i]);
  free(mangled);

  /* A second backend on the same uri: the same database (then tokens carry
   * over) or another one (then each refuses the other's), as instance_id
   * says. */
  const char *id = ct_keep(f, f->api->instance_id(f->b));
  tc_backend_t *b2 = ct_open_backend(f);
  const char *id2 = f->api->instance_id(b2);
  assert_non_null(id2);
  int same = strcmp(id, id2) == 0;
  if (strcmp(f->api->name, "sqlite") == 0)
    assert_int_equal(same, strcmp(ct_backend_uri, ":memory:") != 0);
  if (same) {
    ct_token_ok(f, b2, w);
    ct_token_ok(f, b2, c);
  } else {
    ct_token_bad(f, b2, w);
    ct_token_bad(f, b2, c);
    ct_token_bad(f, b2, h0);
    ct_result_t r2 = {0};
    ct_batch_t b;
    ct_batch_init(&b, t);
    ct_add_tuple(&b, "doc:2#viewer@user:b");
    CT_CALL(f, &r2, f->api->write(b2, &b.w, ct_on_token, &r2));
    assert_int_equal(r2.status, 0);
    ct_token_ok(f, b2, r2.token);
    ct_token_bad(f, f->b, r2.token);
    ct_result_free(&r2);
  }
  ct_destroy_backend(f, b2);
  ct_result_free(&r);
  free(t);
}

/* A token beyond the newest transaction names no position of this database
 * (forged, or from a copy of it that went on): TC_ESNAP_TOKEN with a reason,
 * never an empty feed.  token_check says so, or, where it cannot tell
 * without asking the database (Postgres: another node may have written it),
 * the reads do. */
void test_token_ahead(void **state) {
  ct_fixture_t *f = *state;
  char *t = ct_tenant_name("ahead");
  const char *w = ct_write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  const char *mine[] = {w, ct_head(f, t)};
  for (size_t i = 0; i < 2; i++) {
    char *far = tt_token_ahead(mine[i]), *err = NULL;
    assert_non_null(far);
    int rc = f->api->token_check(f->b, far, &err);
    if (rc != 0) {
      ct_token_bad(f, f->b, far);
      assert_non_null(strstr(err, "ahead"));
    } else {
      ct_result_t r = {0};
      if ((rc = f->api->read_changes(f->b, t, far, NULL, 0, ct_on_changes, &r)) == 0) {
        ct_wait_for(f, &r.done);
        rc = r.status;
      }
      assert_int_equal(rc, TC_ESNAP_TOKEN);
      ct_result_free(&r);
      if ((rc = f->api->read_tuples(f->b, t, far, &ct_all_tuples, 0, 0, ct_on_tuples, &r)) == 0) {
        ct_wait_for(f, &r.done);
        rc = r.status;
      }
      assert_int_equal(rc, TC_ESNAP_TOKEN);
      ct_result_free(&r);
    }
    free(err);
    free(far);
  }
  /* The newest position itself is not ahead. */
  ct_expect_feed_resumes(f, t, ct_head(f, t), "doc:2#viewer@user:b");
  free(t);
}
