/* Data.RunBundle's text handling (core/src/bundle_expand.c) against the
 * answers of Permify's own code: html/template with missingkey=zero, and its
 * tuple and attribute text forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bundle_expand.h"

static Base__V1__BundleRunRequest__ArgumentsEntry e_org = {
    PROTOBUF_C_MESSAGE_INIT(&base__v1__bundle_run_request__arguments_entry__descriptor), "org",
    "o<1>&'\"+"};
static Base__V1__BundleRunRequest__ArgumentsEntry e_user = {
    PROTOBUF_C_MESSAGE_INIT(&base__v1__bundle_run_request__arguments_entry__descriptor), "user",
    "u1"};
static Base__V1__BundleRunRequest__ArgumentsEntry e_pad = {
    PROTOBUF_C_MESSAGE_INIT(&base__v1__bundle_run_request__arguments_entry__descriptor), "pad",
    "p "};
static tc_bundle_arg_t *const args[] = {&e_org, &e_pad, &e_user}; /* sorted by key */

static void expect_expansion(const char *tmpl, const char *want) {
  tc_arena_t a;
  tc_arena_init(&a);
  char *out = NULL;
  const char *why = NULL;
  size_t room = 4096;
  assert_int_equal(tc_bundle_expand(&a, tmpl, args, 3, &room, &out, &why), 0);
  assert_int_equal(room, 4096 - strlen(want));
  assert_string_equal(out, want);
  tc_arena_free(&a);
}

static void expect_refused(const char *tmpl) {
  tc_arena_t a;
  tc_arena_init(&a);
  char *out = NULL;
  const char *why = NULL;
  size_t room = 4096;
  assert_int_equal(tc_bundle_expand(&a, tmpl, args, 3, &room, &out, &why), TC_EINVAL);
  assert_non_null(why);
  tc_arena_free(&a);
}

static void test_templates(void **state) {
  (void)state;
  expect_expansion("organization:{{.user}}#member@user:{{ .user }}",
                   "organization:u1#member@user:u1");
  /* html/template escapes a value in text; a name not given is "". */
  expect_expansion("{{.org}}", "o&lt;1&gt;&amp;&#39;&#34;&#43;");
  expect_expansion("a:{{.nobody}}b", "a:b");
  /* Trim markers take the white space on their side. */
  expect_expansion("x  {{- .user -}}  y", "xu1y");
  /* ... of the template's text only, never of a value's (as Go: "p u1p x"). */
  expect_expansion("{{.pad}}{{- .user}} {{- .pad -}} x", "p u1p x");
  expect_expansion("no action {", "no action {");
  expect_refused("{{.user");
  expect_refused("{{if .user}}x{{end}}");
  expect_refused("{{.}}");
  expect_refused("{{ .us-er }}");
}

/* The run's budget of expanded text: used up exactly, then refused. */
static void test_expansion_budget(void **state) {
  (void)state;
  tc_arena_t a;
  tc_arena_init(&a);
  char *out = NULL;
  const char *why = NULL;
  size_t room = 62; /* the escaped org is 30 bytes */
  assert_int_equal(tc_bundle_expand(&a, "{{.org}}-{{.org}}", args, 3, &room, &out, &why), 0);
  assert_int_equal(room, 1);
  assert_int_equal(tc_bundle_expand(&a, "x", args, 3, &room, &out, &why), 0);
  assert_int_equal(room, 0);
  assert_int_equal(tc_bundle_expand(&a, "{{.user}}", args, 3, &room, &out, &why), TC_ETOO_LARGE);
  assert_non_null(why);
  tc_arena_free(&a);
}

static void expect_tuple(const char *text, const char *want) {
  tc_arena_t a;
  tc_arena_init(&a);
  tc_tuple_t t;
  const char *why = NULL;
  int rc = tc_bundle_parse_tuple(&a, text, &t, &why);
  if (!want) {
    assert_int_equal(rc, TC_EINVAL);
  } else {
    assert_int_equal(rc, 0);
    char got[256];
    snprintf(got, sizeof got, "%s|%s|%s|%s|%s|%s", t.entity_type, t.entity_id, t.relation,
             t.subject_type, t.subject_id, t.subject_relation);
    assert_string_equal(got, want);
  }
  tc_arena_free(&a);
}

static void test_tuples(void **state) {
  (void)state;
  expect_tuple(" doc:1#viewer@user:a ", "doc|1|viewer|user|a|");
  expect_tuple("doc:1#viewer@group:g#member", "doc|1|viewer|group|g|member");
  expect_tuple("doc:1#viewer@group:g#...", "doc|1|viewer|group|g|");
  expect_tuple("doc:1#viewer#x@user:a", "doc|1|viewer|user|a|"); /* Permify drops the rest */
  expect_tuple("doc:1@user:a", "doc|1||user|a|");
  expect_tuple("doc:1#viewer", NULL);
  expect_tuple("doc:1#viewer@user:a@b", NULL);
  expect_tuple("doc#viewer@user:a", NULL);
  expect_tuple("doc:1:2#viewer@user:a", NULL);
  expect_tuple(":1#viewer@user:a", NULL);
}

/* The attribute parsed from text, its value unpacked as the message of
 * type; NULL when refused. */
static ProtobufCMessage *attr(tc_arena_t *a, const char *text, tc_attr_t *out,
                              const ProtobufCMessageDescriptor *type) {
  const char *why = NULL;
  if (tc_bundle_parse_attr(a, text, out, &why) != 0) return NULL;
  Google__Protobuf__Any *any = google__protobuf__any__unpack(NULL, out->value_len, out->value);
  assert_non_null(any);
  char url[128];
  snprintf(url, sizeof url, "type.googleapis.com/%s", type->name);
  assert_string_equal(any->type_url, url);
  ProtobufCMessage *m = protobuf_c_message_unpack(type, tc_arena_protobuf_allocator(a),
                                                  any->value.len, any->value.data);
  google__protobuf__any__free_unpacked(any, NULL);
  return m;
}

static void test_attributes(void **state) {
  (void)state;
  tc_arena_t a;
  tc_arena_init(&a);
  tc_attr_t x;
  Base__V1__BooleanValue *b = (void *)attr(&a, "repository:r1$is_public|boolean:True", &x,
                                           &base__v1__boolean_value__descriptor);
  assert_non_null(b);
  assert_true(b->data);
  assert_string_equal(x.entity_type, "repository");
  assert_string_equal(x.entity_id, "r1");
  assert_string_equal(x.attribute, "is_public");
  Base__V1__IntegerArrayValue *ia = (void *)attr(&a, "e:1$n|integer[]:-3,+4,2147483647", &x,
                                                 &base__v1__integer_array_value__descriptor);
  assert_non_null(ia);
  assert_int_equal(ia->n_data, 3);
  assert_int_equal(ia->data[0], -3);
  assert_int_equal(ia->data[2], 2147483647);
  Base__V1__StringArrayValue *sa =
      (void *)attr(&a, "e:1$s|string[]:a,,b", &x, &base__v1__string_array_value__descriptor);
  assert_int_equal(sa->n_data, 3);
  assert_string_equal(sa->data[1], "");
  Base__V1__DoubleValue *d =
      (void *)attr(&a, "e:1$d|double:2.5e3", &x, &base__v1__double_value__descriptor);
  assert_true(d->data == 2500.0);
  const ProtobufCMessageDescriptor *bd = &base__v1__boolean_value__descriptor;
  assert_null(attr(&a, "e:1$b|boolean:yes", &x, bd));
  assert_null(attr(&a, "e:1$n|integer:2147483648", &x, bd));
  assert_null(attr(&a, "e:1$n|integer:1_0", &x, bd));
  assert_null(attr(&a, "e:1$d|double:1e999", &x, bd));
  assert_null(attr(&a, "e:1$s|string:a:b", &x, bd)); /* Permify splits on every ':' */
  assert_null(attr(&a, "e:1$s|text:a", &x, bd));
  assert_null(attr(&a, "e:1|boolean:true", &x, bd));
  assert_null(attr(&a, "e:1$b", &x, bd));
  tc_arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_templates),
      cmocka_unit_test(test_expansion_budget),
      cmocka_unit_test(test_tuples),
      cmocka_unit_test(test_attributes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
