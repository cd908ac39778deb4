/* read_feed (ABI v2.2): a tenant's schema writes among its transactions,
 * each a transaction of its own at its place; read_changes passes over
 * them; positions agree between the two. */
#include "conformance.h"

static void read_feed(ct_fixture_t *f, ct_result_t *r, const char *tenant, const char *after,
                      const char *upto, uint32_t limit) {
  CT_CALL(f, r, f->api->read_feed(f->b, tenant, after, upto, limit, ct_on_feed, r));
  assert_int_equal(r->status, 0);
}

static void schema_write(ct_fixture_t *f, const char *tenant, const char *version) {
  ct_schema_write(f, tenant, version, "entity user {}\n\nentity doc {}");
}

void test_read_feed_schemas(void **state) {
  ct_fixture_t *f = *state;
  /* Every in-tree plugin has it; a plugin without it is a 2.1 plugin. */
  assert_true(f->api->struct_size >= TC_BACKEND_API_V2_4_SIZE);
  assert_non_null(f->api->read_feed);
  char *t = ct_tenant_name("feedschema");
  const char *h0 = ct_head(f, t);
  ct_write_tuples(f, t, "doc:1#v@user:a", NULL);
  schema_write(f, t, "cv000000000000000001");
  ct_write_tuples(f, t, "doc:2#v@user:a", NULL);
  schema_write(f, t, "cv000000000000000002");
  ct_result_t feed = {0}, changes = {0}, page = {0};
  read_feed(f, &feed, t, h0, NULL, 0);
  ct_expect(&feed.rows, "+doc:1#v@user:a", "=cv000000000000000001", "+doc:2#v@user:a",
            "=cv000000000000000002", NULL);
  ct_expect_distinct(feed.tokens.v[0], feed.tokens.v[1], feed.tokens.v[2], feed.tokens.v[3]);
  /* read_changes: the data only, and the same end: the last schema write. */
  ct_read_changes(f, &changes, t, h0, NULL, 0);
  ct_expect(&changes.rows, "+doc:1#v@user:a", "+doc:2#v@user:a", NULL);
  ct_read_changes(f, &page, t, changes.last, NULL, 0);
  assert_int_equal(page.rows.n, 0);
  read_feed(f, &page, t, changes.last, NULL, 0);
  assert_int_equal(page.rows.n, 0);
  /* Resuming from a schema write's token: what came after it. */
  read_feed(f, &page, t, feed.tokens.v[1], NULL, 0);
  ct_expect(&page.rows, "+doc:2#v@user:a", "=cv000000000000000002", NULL);
  /* One transaction a page with the smallest limit; the schema item counts. */
  const char *after = h0;
  for (size_t i = 0; i < 4; i++) {
    read_feed(f, &page, t, after, NULL, 1);
    assert_int_equal(page.rows.n, 1);
    assert_string_equal(page.rows.v[0], feed.rows.v[i]);
    after = ct_keep(f, page.last);
  }
  ct_result_free(&feed);
  ct_result_free(&changes);
  ct_result_free(&page);
  free(t);
}
