/* Backend conformance cases: writes and reads: filters, paging, positions, attributes. */
#include "conformance.h"

void test_read_filters(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *t = ct_tenant_name("filters");
  ct_write_tuples(f, t, "doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:2#editor@user:a",
                  "doc:2#viewer@group:g#member", "folder:1#parent@doc:1", "doc:3#viewer@user:c",
                  NULL);
  char *other = ct_tenant_name("filters-other");
  ct_write_tuples(f, other, "doc:1#viewer@user:a", "doc:4#viewer@user:a", NULL);

  ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 6);
  assert_int_equal(r.next, 0);

  tc_tuple_filter_t flt = {.entity_type = "doc"};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 5);

  const char *ids[] = {"1", "3"};
  flt = (tc_tuple_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 2};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:3#viewer@user:c", NULL);

  flt = (tc_tuple_filter_t){.relation = "viewer"};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 4);

  flt = (tc_tuple_filter_t){.subject_type = "group"};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  ct_expect(&r.rows, "doc:2#viewer@group:g#member", NULL);

  const char *subjects[] = {"a", "c"};
  flt = (tc_tuple_filter_t){.subject_ids = subjects, .n_subject_ids = 2};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", "doc:2#editor@user:a", "doc:3#viewer@user:c", NULL);

  flt = (tc_tuple_filter_t){.subject_relation = "member"};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  ct_expect(&r.rows, "doc:2#viewer@group:g#member", NULL);

  /* "" does not mean "direct subjects only": unset members do not constrain. */
  flt = (tc_tuple_filter_t){.entity_type = "doc", .relation = "viewer", .subject_relation = ""};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 4);

  const char *one[] = {"1"};
  flt = (tc_tuple_filter_t){.entity_type = "folder",
                            .entity_ids = one,
                            .n_entity_ids = 1,
                            .relation = "parent",
                            .subject_type = "doc",
                            .subject_ids = one,
                            .n_subject_ids = 1};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  ct_expect(&r.rows, "folder:1#parent@doc:1", NULL);

  flt = (tc_tuple_filter_t){.entity_type = "nothing"};
  ct_read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 0);
  ct_read_tuples(f, &r, other, "", &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", "doc:4#viewer@user:a", NULL);
  ct_result_free(&r);
  free(other);
  free(t);
}

void test_read_paging(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *t = ct_tenant_name("paging");
  ct_write_tuples(f, t, "doc:1#viewer@user:1", "doc:1#viewer@user:2", "doc:1#viewer@user:3",
                  "doc:1#viewer@user:4", "doc:1#viewer@user:5", NULL);
  ct_write_tuples(f, t, "doc:1#viewer@user:6", "doc:1#viewer@user:7", NULL);
  const char *at = ct_head(f, t);

  ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 3);
  ct_expect(&r.rows, "doc:1#viewer@user:1", "doc:1#viewer@user:2", "doc:1#viewer@user:3", NULL);
  assert_true(r.next != 0);
  tc_cursor_t second = r.next;

  /* Pages at a fixed position do not see later writes. */
  ct_write_tuples(f, t, "doc:1#viewer@user:8", NULL);
  ct_read_tuples(f, &r, t, at, &ct_all_tuples, second, 3);
  ct_expect(&r.rows, "doc:1#viewer@user:4", "doc:1#viewer@user:5", "doc:1#viewer@user:6", NULL);
  assert_true(r.next != 0);
  tc_cursor_t last = r.next;
  ct_read_tuples(f, &r, t, at, &ct_all_tuples, last, 3);
  ct_expect(&r.rows, "doc:1#viewer@user:7", NULL);
  assert_int_equal(r.next, 0);

  /* A page that ends exactly at the last row has no next page. */
  ct_read_tuples(f, &r, t, at, &ct_all_tuples, last, 1);
  ct_expect(&r.rows, "doc:1#viewer@user:7", NULL);
  assert_int_equal(r.next, 0);

  /* At the head the later write is there. */
  ct_read_tuples(f, &r, t, "", &ct_all_tuples, last, 3);
  ct_expect(&r.rows, "doc:1#viewer@user:7", "doc:1#viewer@user:8", NULL);
  assert_int_equal(r.next, 0);

  /* Paging with a filter. */
  const char *subjects[] = {"2", "4", "6"};
  tc_tuple_filter_t flt = {.subject_ids = subjects, .n_subject_ids = 3};
  ct_read_tuples(f, &r, t, at, &flt, 0, 2);
  ct_expect(&r.rows, "doc:1#viewer@user:2", "doc:1#viewer@user:4", NULL);
  ct_read_tuples(f, &r, t, at, &flt, r.next, 2);
  ct_expect(&r.rows, "doc:1#viewer@user:6", NULL);
  assert_int_equal(r.next, 0);
  ct_result_free(&r);
  free(t);
}

/* Write tokens are positions: distinct, and a read at one sees the state
 * right after that write, whatever came later. */
void test_positions(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *t = ct_tenant_name("positions");
  const char *h0 = ct_head(f, t); /* before the tenant's first write */
  ct_read_tuples(f, &r, t, h0, &ct_all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 0);

  const char *t1 = ct_write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  const char *t2 = ct_write_tuples(f, t, "doc:1#viewer@user:b", NULL);
  ct_read_tuples(f, &r, t, t1, &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", NULL);
  ct_read_tuples(f, &r, t, t2, &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  ct_read_tuples(f, &r, t, h0, &ct_all_tuples, 0, 0); /* still nothing there */
  assert_int_equal(r.rows.n, 0);

  /* Delete by filter. */
  ct_batch_t b;
  ct_batch_init(&b, t);
  const char *a[] = {"a"};
  tc_tuple_filter_t del = {.entity_type = "doc", .subject_ids = a, .n_subject_ids = 1};
  b.w.tuple_delete = &del;
  const char *t3 = ct_write_ok(f, &b.w);
  ct_read_tuples(f, &r, t, t2, &ct_all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 2);
  ct_read_tuples(f, &r, t, t3, &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:b", NULL);
  ct_read_changes(f, &r, t, t2, NULL, 0);
  ct_expect(&r.rows, "-doc:1#viewer@user:a", NULL);

  /* Re-writing an active tuple changes nothing, but it is a new position. */
  const char *t4 = ct_write_tuples(f, t, "doc:1#viewer@user:b", NULL);
  ct_read_tuples(f, &r, t, t4, &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:b", NULL);
  ct_read_changes(f, &r, t, t3, NULL, 0);
  assert_int_equal(r.rows.n, 0);

  /* So is an empty write; and a deleted tuple can come back. */
  ct_batch_init(&b, t);
  const char *t5 = ct_write_ok(f, &b.w);
  const char *t6 = ct_write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  ct_read_tuples(f, &r, t, t6, &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:b", "doc:1#viewer@user:a", NULL); /* by id */
  ct_read_tuples(f, &r, t, t5, &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:b", NULL);

  /* Another tenant's write is nothing new for this one. */
  char *other = ct_tenant_name("positions-other");
  const char *to = ct_write_tuples(f, other, "doc:9#viewer@user:z", NULL);
  ct_read_changes(f, &r, t, t6, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, t6);
  ct_read_tuples(f, &r, t, ct_head(f, t), &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@user:b", "doc:1#viewer@user:a", NULL);
  ct_read_tuples(f, &r, other, "", &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:9#viewer@user:z", NULL);

  ct_expect_distinct(h0, t1, t2, t3, t4, t5, t6, to);
  const char *all[] = {h0, t1, t2, t3, t4, t5, t6, to};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ct_token_ok(f, f->b, all[i]);
  ct_result_free(&r);
  free(other);
  free(t);
}

void test_attributes(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *t = ct_tenant_name("attributes");
  ct_batch_t b;
  ct_batch_init(&b, t);
  ct_add_attr(&b, "doc", "1", "public", "v1");
  ct_add_attr(&b, "doc", "1", "owner", "alice");
  ct_add_attr(&b, "doc", "2", "public", "no");
  const char *r1 = ct_write_ok(f, &b.w);

  ct_batch_init(&b, t);
  ct_add_attr(&b, "doc", "1", "public", "v2");
  const char *r2 = ct_write_ok(f, &b.w);

  ct_read_attrs(f, &r, t, r1, &ct_all_attrs);
  ct_expect(&r.rows, "doc:1$public=v1", "doc:1$owner=alice", "doc:2$public=no", NULL);
  ct_read_attrs(f, &r, t, r2, &ct_all_attrs);
  ct_expect(&r.rows, "doc:1$owner=alice", "doc:2$public=no", "doc:1$public=v2", NULL);

  const char *attrs[] = {"public"};
  const char *ids[] = {"1"};
  tc_attr_filter_t flt = {.attributes = attrs, .n_attributes = 1};
  ct_read_attrs(f, &r, t, "", &flt);
  ct_expect(&r.rows, "doc:2$public=no", "doc:1$public=v2", NULL);
  flt = (tc_attr_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 1};
  ct_read_attrs(f, &r, t, "", &flt);
  ct_expect(&r.rows, "doc:1$owner=alice", "doc:1$public=v2", NULL);

  /* Overwrite = DELETE of the old value, then CREATE of the new one, in one
   * transaction. */
  ct_read_changes(f, &r, t, r1, NULL, 0);
  ct_expect(&r.rows, "-doc:1$public=v1", "+doc:1$public=v2", NULL);
  assert_string_equal(r.tokens.v[0], r.tokens.v[1]);

  ct_batch_init(&b, t);
  flt = (tc_attr_filter_t){.entity_type = "doc",
                           .entity_ids = ids,
                           .n_entity_ids = 1,
                           .attributes = attrs,
                           .n_attributes = 1};
  b.w.attr_delete = &flt;
  const char *r3 = ct_write_ok(f, &b.w);
  ct_read_attrs(f, &r, t, r3, &ct_all_attrs);
  ct_expect(&r.rows, "doc:1$owner=alice", "doc:2$public=no", NULL);
  ct_read_changes(f, &r, t, r2, NULL, 0);
  ct_expect(&r.rows, "-doc:1$public=v2", NULL);

  /* An empty value is a value; a value is bytes, any bytes. */
  static const uint8_t binary[] = {0x00, 0xff, '"', '\\', 0x0a, 'x', 0x00};
  ct_batch_init(&b, t);
  ct_add_attr(&b, "doc", "4", "flag", "");
  ct_add_attr_bytes(&b, "doc", "5", "blob", binary, sizeof binary);
  const char *r4 = ct_write_ok(f, &b.w);
  flt = (tc_attr_filter_t){.attributes = (const char *[]){"flag", "blob"}, .n_attributes = 2};
  ct_read_attrs(f, &r, t, r4, &flt);
  ct_expect(&r.rows, "doc:4$flag=", "doc:5$blob=\\x00\\xff\"\\x5c\\x0ax\\x00", NULL);
  ct_read_changes(f, &r, t, r3, NULL, 0);
  ct_expect(&r.rows, "+doc:4$flag=", "+doc:5$blob=\\x00\\xff\"\\x5c\\x0ax\\x00", NULL);

  /* Paging attributes by id. */
  CT_CALL(f, &r, f->api->read_attrs(f->b, t, r3, &ct_all_attrs, 0, 1, ct_on_attrs, &r));
  ct_expect(&r.rows, "doc:1$owner=alice", NULL);
  assert_true(r.next != 0);
  tc_cursor_t next = r.next;
  CT_CALL(f, &r, f->api->read_attrs(f->b, t, r3, &ct_all_attrs, next, 1, ct_on_attrs, &r));
  ct_expect(&r.rows, "doc:2$public=no", NULL);
  assert_int_equal(r.next, 0);
  ct_result_free(&r);
  free(t);
}
