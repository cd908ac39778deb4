/* Backend conformance cases: writes and reads: filters, paging, positions, attributes. */
#include "conformance.h"

void test_read_filters(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("filters");
  write_tuples(f, t, "doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:2#editor@user:a",
               "doc:2#viewer@group:g#member", "folder:1#parent@doc:1", "doc:3#viewer@user:c",
               NULL);
  char *other = tenant_name("filters-other");
  write_tuples(f, other, "doc:1#viewer@user:a", "doc:4#viewer@user:a", NULL);

  read_tuples(f, &r, t, "", &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 6);
  assert_int_equal(r.next, 0);

  tc_tuple_filter_t flt = {.entity_type = "doc"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 5);

  const char *ids[] = {"1", "3"};
  flt = (tc_tuple_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 2};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:3#viewer@user:c", NULL);

  flt = (tc_tuple_filter_t){.relation = "viewer"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 4);

  flt = (tc_tuple_filter_t){.subject_type = "group"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "doc:2#viewer@group:g#member", NULL);

  const char *subjects[] = {"a", "c"};
  flt = (tc_tuple_filter_t){.subject_ids = subjects, .n_subject_ids = 2};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:2#editor@user:a", "doc:3#viewer@user:c", NULL);

  flt = (tc_tuple_filter_t){.subject_relation = "member"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "doc:2#viewer@group:g#member", NULL);

  /* "" does not mean "direct subjects only": unset members do not constrain. */
  flt = (tc_tuple_filter_t){.entity_type = "doc", .relation = "viewer", .subject_relation = ""};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 4);

  const char *one[] = {"1"};
  flt = (tc_tuple_filter_t){.entity_type = "folder", .entity_ids = one, .n_entity_ids = 1,
                            .relation = "parent", .subject_type = "doc", .subject_ids = one,
                            .n_subject_ids = 1};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  expect(&r.rows, "folder:1#parent@doc:1", NULL);

  flt = (tc_tuple_filter_t){.entity_type = "nothing"};
  read_tuples(f, &r, t, "", &flt, 0, 0);
  assert_int_equal(r.rows.n, 0);
  read_tuples(f, &r, other, "", &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:4#viewer@user:a", NULL);
  result_free(&r);
  free(other);
  free(t);
}

void test_read_paging(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("paging");
  write_tuples(f, t, "doc:1#viewer@user:1", "doc:1#viewer@user:2", "doc:1#viewer@user:3",
               "doc:1#viewer@user:4", "doc:1#viewer@user:5", NULL);
  write_tuples(f, t, "doc:1#viewer@user:6", "doc:1#viewer@user:7", NULL);
  const char *at = head(f, t);

  read_tuples(f, &r, t, "", &all_tuples, 0, 3);
  expect(&r.rows, "doc:1#viewer@user:1", "doc:1#viewer@user:2", "doc:1#viewer@user:3", NULL);
  assert_true(r.next != 0);
  tc_cursor_t second = r.next;

  /* Pages at a fixed position do not see later writes. */
  write_tuples(f, t, "doc:1#viewer@user:8", NULL);
  read_tuples(f, &r, t, at, &all_tuples, second, 3);
  expect(&r.rows, "doc:1#viewer@user:4", "doc:1#viewer@user:5", "doc:1#viewer@user:6", NULL);
  assert_true(r.next != 0);
  tc_cursor_t last = r.next;
  read_tuples(f, &r, t, at, &all_tuples, last, 3);
  expect(&r.rows, "doc:1#viewer@user:7", NULL);
  assert_int_equal(r.next, 0);

  /* A page that ends exactly at the last row has no next page. */
  read_tuples(f, &r, t, at, &all_tuples, last, 1);
  expect(&r.rows, "doc:1#viewer@user:7", NULL);
  assert_int_equal(r.next, 0);

  /* At the head the later write is there. */
  read_tuples(f, &r, t, "", &all_tuples, last, 3);
  expect(&r.rows, "doc:1#viewer@user:7", "doc:1#viewer@user:8", NULL);
  assert_int_equal(r.next, 0);

  /* Paging with a filter. */
  const char *subjects[] = {"2", "4", "6"};
  tc_tuple_filter_t flt = {.subject_ids = subjects, .n_subject_ids = 3};
  read_tuples(f, &r, t, at, &flt, 0, 2);
  expect(&r.rows, "doc:1#viewer@user:2", "doc:1#viewer@user:4", NULL);
  read_tuples(f, &r, t, at, &flt, r.next, 2);
  expect(&r.rows, "doc:1#viewer@user:6", NULL);
  assert_int_equal(r.next, 0);
  result_free(&r);
  free(t);
}

/* Write tokens are positions: distinct, and a read at one sees the state
 * right after that write, whatever came later. */
void test_positions(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("positions");
  const char *h0 = head(f, t); /* before the tenant's first write */
  read_tuples(f, &r, t, h0, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 0);

  const char *t1 = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  const char *t2 = write_tuples(f, t, "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, t1, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, t, t2, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, "", &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, h0, &all_tuples, 0, 0); /* still nothing there */
  assert_int_equal(r.rows.n, 0);

  /* Delete by filter. */
  batch_t b;
  batch_init(&b, t);
  const char *a[] = {"a"};
  tc_tuple_filter_t del = {.entity_type = "doc", .subject_ids = a, .n_subject_ids = 1};
  b.w.tuple_delete = &del;
  const char *t3 = write_ok(f, &b.w);
  read_tuples(f, &r, t, t2, &all_tuples, 0, 0);
  assert_int_equal(r.rows.n, 2);
  read_tuples(f, &r, t, t3, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);
  read_changes(f, &r, t, t2, NULL, 0);
  expect(&r.rows, "-doc:1#viewer@user:a", NULL);

  /* Re-writing an active tuple changes nothing, but it is a new position. */
  const char *t4 = write_tuples(f, t, "doc:1#viewer@user:b", NULL);
  read_tuples(f, &r, t, t4, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);
  read_changes(f, &r, t, t3, NULL, 0);
  assert_int_equal(r.rows.n, 0);

  /* So is an empty write; and a deleted tuple can come back. */
  batch_init(&b, t);
  const char *t5 = write_ok(f, &b.w);
  const char *t6 = write_tuples(f, t, "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, t, t6, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", "doc:1#viewer@user:a", NULL); /* by id */
  read_tuples(f, &r, t, t5, &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", NULL);

  /* Another tenant's write is nothing new for this one. */
  char *other = tenant_name("positions-other");
  const char *to = write_tuples(f, other, "doc:9#viewer@user:z", NULL);
  read_changes(f, &r, t, t6, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, t6);
  read_tuples(f, &r, t, head(f, t), &all_tuples, 0, 0);
  expect(&r.rows, "doc:1#viewer@user:b", "doc:1#viewer@user:a", NULL);
  read_tuples(f, &r, other, "", &all_tuples, 0, 0);
  expect(&r.rows, "doc:9#viewer@user:z", NULL);

  expect_distinct(h0, t1, t2, t3, t4, t5, t6, to);
  const char *all[] = {h0, t1, t2, t3, t4, t5, t6, to};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) token_ok(f, f->b, all[i]);
  result_free(&r);
  free(other);
  free(t);
}

void test_attributes(void **state) {
  fixture_t *f = *state;
  result_t r = {0};
  char *t = tenant_name("attributes");
  batch_t b;
  batch_init(&b, t);
  add_attr(&b, "doc", "1", "public", "v1");
  add_attr(&b, "doc", "1", "owner", "alice");
  add_attr(&b, "doc", "2", "public", "no");
  const char *r1 = write_ok(f, &b.w);

  batch_init(&b, t);
  add_attr(&b, "doc", "1", "public", "v2");
  const char *r2 = write_ok(f, &b.w);

  read_attrs(f, &r, t, r1, &all_attrs);
  expect(&r.rows, "doc:1$public=v1", "doc:1$owner=alice", "doc:2$public=no", NULL);
  read_attrs(f, &r, t, r2, &all_attrs);
  expect(&r.rows, "doc:1$owner=alice", "doc:2$public=no", "doc:1$public=v2", NULL);

  const char *attrs[] = {"public"};
  const char *ids[] = {"1"};
  tc_attr_filter_t flt = {.attributes = attrs, .n_attributes = 1};
  read_attrs(f, &r, t, "", &flt);
  expect(&r.rows, "doc:2$public=no", "doc:1$public=v2", NULL);
  flt = (tc_attr_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 1};
  read_attrs(f, &r, t, "", &flt);
  expect(&r.rows, "doc:1$owner=alice", "doc:1$public=v2", NULL);

  /* Overwrite = DELETE of the old value, then CREATE of the new one, in one
   * transaction. */
  read_changes(f, &r, t, r1, NULL, 0);
  expect(&r.rows, "-doc:1$public=v1", "+doc:1$public=v2", NULL);
  assert_string_equal(r.tokens.v[0], r.tokens.v[1]);

  batch_init(&b, t);
  flt = (tc_attr_filter_t){.entity_type = "doc", .entity_ids = ids, .n_entity_ids = 1,
                           .attributes = attrs, .n_attributes = 1};
  b.w.attr_delete = &flt;
  const char *r3 = write_ok(f, &b.w);
  read_attrs(f, &r, t, r3, &all_attrs);
  expect(&r.rows, "doc:1$owner=alice", "doc:2$public=no", NULL);
  read_changes(f, &r, t, r2, NULL, 0);
  expect(&r.rows, "-doc:1$public=v2", NULL);

  /* An empty value is a value; a value is bytes, any bytes. */
  static const uint8_t binary[] = {0x00, 0xff, '"', '\\', 0x0a, 'x', 0x00};
  batch_init(&b, t);
  add_attr(&b, "doc", "4", "flag", "");
  add_attr_bytes(&b, "doc", "5", "blob", binary, sizeof binary);
  const char *r4 = write_ok(f, &b.w);
  flt = (tc_attr_filter_t){.attributes = (const char *[]){"flag", "blob"}, .n_attributes = 2};
  read_attrs(f, &r, t, r4, &flt);
  expect(&r.rows, "doc:4$flag=", "doc:5$blob=\\x00\\xff\"\\x5c\\x0ax\\x00", NULL);
  read_changes(f, &r, t, r3, NULL, 0);
  expect(&r.rows, "+doc:4$flag=", "+doc:5$blob=\\x00\\xff\"\\x5c\\x0ax\\x00", NULL);

  /* Paging attributes by id. */
  CALL(f, &r, f->api->read_attrs(f->b, t, r3, &all_attrs, 0, 1, on_attrs, &r));
  expect(&r.rows, "doc:1$owner=alice", NULL);
  assert_true(r.next != 0);
  tc_cursor_t next = r.next;
  CALL(f, &r, f->api->read_attrs(f->b, t, r3, &all_attrs, next, 1, on_attrs, &r));
  expect(&r.rows, "doc:2$public=no", NULL);
  assert_int_equal(r.next, 0);
  result_free(&r);
  free(t);
}
