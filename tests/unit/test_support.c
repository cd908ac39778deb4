/* Unit tests of the plugin support library (backends/support): the arena's
 * strings, the deep copies of the ABI shapes and the in-order delivery
 * queue.  (The snap tokens are test_rev_token's; base64 is test_core's.) */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tuplecast/support.h"

/* ---- arena ------------------------------------------------------------------ */

static void test_arena_strings(void **state) {
  (void)state;
  tc_arena_t a;
  tc_arena_init(&a);
  char *empty = tc_arena_strdup(&a, NULL); /* NULL: an unset string, "" */
  assert_non_null(empty);
  assert_string_equal(empty, "");
  assert_non_null(tc_arena_memdup(&a, NULL, 0));
  unsigned char *big = tc_arena_alloc(&a, 100000); /* beyond the largest chunk */
  assert_non_null(big);
  assert_int_equal((uintptr_t)big % alignof(max_align_t), 0);
  for (size_t i = 0; i < 100000; i += 4096) assert_int_equal(big[i], 0);
  tc_arena_free(&a);
  assert_null(a.chunks);
}

/* ---- deep copies ------------------------------------------------------------ */

static void test_copy_batch(void **state) {
  (void)state;
  char et[] = "document", id[] = "1";
  const char *ids[] = {"1", "2"};
  tc_tuple_filter_t del = {.entity_type = et,
                           .entity_ids = ids,
                           .n_entity_ids = 2,
                           .relation = NULL}; /* NULL members copy as "" */
  tc_tuple_t tuple = {et, id, "viewer", "user", "u1", ""};
  uint8_t value[] = {1, 2, 3};
  tc_attr_t attr = {et, id, "public", value, sizeof value};
  tc_write_batch_t src = {.tenant_id = "t1",
                          .tuple_delete = &del,
                          .tuples = &tuple,
                          .n_tuples = 1,
                          .attrs = &attr,
                          .n_attrs = 1};
  tc_arena_t a = {0};
  tc_write_batch_t dst;
  assert_int_equal(tc_copy_write_batch(&a, &dst, &src), 0);
  et[0] = 'X', id[0] = '9', value[0] = 9; /* the source changes after the call */
  assert_string_equal(dst.tenant_id, "t1");
  assert_non_null(dst.tuple_delete);
  assert_ptr_not_equal(dst.tuple_delete, &del);
  assert_null(dst.attr_delete);
  assert_string_equal(dst.tuple_delete->entity_type, "document");
  assert_int_equal(dst.tuple_delete->n_entity_ids, 2);
  assert_string_equal(dst.tuple_delete->entity_ids[1], "2");
  assert_ptr_not_equal(dst.tuple_delete->entity_ids, ids);
  assert_string_equal(dst.tuple_delete->relation, "");
  assert_string_equal(dst.tuple_delete->subject_type, "");
  assert_int_equal(dst.n_tuples, 1);
  assert_string_equal(dst.tuples[0].entity_type, "document");
  assert_string_equal(dst.tuples[0].entity_id, "1");
  assert_string_equal(dst.tuples[0].subject_id, "u1");
  assert_int_equal(dst.n_attrs, 1);
  assert_int_equal(dst.attrs[0].value_len, 3);
  assert_memory_equal(dst.attrs[0].value, "\1\2\3", 3);
  assert_string_equal(dst.attrs[0].attribute, "public");
  tc_arena_free(&a);
}

static void test_copy_filters(void **state) {
  (void)state;
  tc_arena_t a = {0};
  tc_tuple_filter_t tf;
  tc_attr_filter_t af;
  memset(&tf, 0xff, sizeof tf);
  assert_int_equal(tc_copy_tuple_filter(&a, &tf, NULL), 0); /* NULL: match everything */
  assert_string_equal(tf.entity_type, "");
  assert_string_equal(tf.subject_relation, "");
  assert_int_equal(tf.n_entity_ids, 0);
  assert_int_equal(tf.n_subject_ids, 0);
  const char *attrs[] = {"public", "owner"};
  tc_attr_filter_t src = {.entity_type = "doc", .attributes = attrs, .n_attributes = 2};
  assert_int_equal(tc_copy_attr_filter(&a, &af, &src), 0);
  assert_string_equal(af.entity_type, "doc");
  assert_int_equal(af.n_entity_ids, 0);
  assert_int_equal(af.n_attributes, 2);
  assert_string_equal(af.attributes[1], "owner");
  assert_ptr_not_equal(af.attributes[1], attrs[1]);
  tc_arena_free(&a);
}

/* ---- in-order delivery ------------------------------------------------------ */

typedef struct {
  int id;
  tc_order_item_t item;
} op_t;

static int pop_id(tc_order_t *q) {
  tc_order_item_t *it = tc_order_pop(q);
  return it ? TC_CONTAINER_OF(it, op_t, item)->id : 0;
}

static void test_order(void **state) {
  (void)state;
  tc_order_t q = {0};
  op_t ops[4] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}};
  for (int i = 0; i < 3; i++) tc_order_push(&q, &ops[i].item);
  assert_int_equal(pop_id(&q), 0); /* nothing finished */
  tc_order_finish(&ops[1].item);
  assert_int_equal(pop_id(&q), 0); /* 2 waits for 1 */
  tc_order_finish(&ops[0].item);
  assert_int_equal(pop_id(&q), 1);
  assert_int_equal(pop_id(&q), 2);
  assert_int_equal(pop_id(&q), 0); /* 3 still running */
  tc_order_finish(&ops[2].item);
  assert_int_equal(pop_id(&q), 3);
  assert_null(q.head);
  assert_null(q.tail);
  tc_order_push(&q, &ops[3].item); /* empty again, and usable */
  tc_order_finish(&ops[3].item);
  assert_int_equal(pop_id(&q), 4);
  assert_int_equal(pop_id(&q), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arena_strings),
      cmocka_unit_test(test_copy_batch),
      cmocka_unit_test(test_copy_filters),
      cmocka_unit_test(test_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
