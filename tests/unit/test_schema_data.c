/* Write validation against a schema (Permify's order of checks) and schema
 * version strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "schema.h"

static const char *const text =
    "entity user {}\n"
    "entity group {\n"
    "  relation member @user @group#member\n"
    "  permission view = member\n"
    "}\n"
    "entity doc {\n"
    "  relation owner @user\n"
    "  relation viewer @user @group#member\n"
    "  relation self @doc\n"
    "  attribute public boolean\n"
    "  attribute tags string[]\n"
    "  attribute size integer\n"
    "  attribute score double[]\n"
    "  permission read = owner or viewer or public\n"
    "}\n"
    "rule big(size integer) {\n  size > 10\n}\n";

static int setup(void **state) {
  char *err = NULL;
  tc_schema_t *s = NULL;
  if (tc_schema_compile(text, &s, &err) != 0) {
    free(err);
    return -1;
  }
  *state = s;
  return 0;
}

static int teardown(void **state) {
  tc_schema_free(*state);
  return 0;
}

static int check(const tc_schema_t *s, const char *et, const char *eid, const char *rel,
                 const char *st, const char *sid, const char *srel) {
  tc_tuple_t t = {et, eid, rel, st, sid, srel};
  return tc_schema_check_tuple(s, &t);
}

static void test_tuples_allowed(void **state) {
  const tc_schema_t *s = *state;
  assert_int_equal(check(s, "doc", "1", "owner", "user", "1", ""), 0);
  assert_int_equal(check(s, "doc", "1", "viewer", "user", "2", ""), 0);
  assert_int_equal(check(s, "doc", "1", "viewer", "group", "g", "member"), 0);
  assert_int_equal(check(s, "group", "g", "member", "group", "h", "member"), 0);
  /* "..." names the subject itself. */
  assert_int_equal(check(s, "doc", "1", "viewer", "user", "2", "..."), 0);
  /* The subject relation is "", so entity and subject differ. */
  assert_int_equal(check(s, "doc", "1", "self", "doc", "1", ""), 0);
}

static void test_tuples_rejected(void **state) {
  const tc_schema_t *s = *state;
  assert_int_equal(check(s, "folder", "1", "owner", "user", "1", ""), TC_ESCHEMA_NOT_FOUND);
  assert_int_equal(check(s, "big", "1", "owner", "user", "1", ""), TC_EENTITY_DEF_NOT_FOUND);
  /* Equality is checked before the relation exists. */
  assert_int_equal(check(s, "group", "g", "member", "group", "g", "member"), TC_EENTITY_EQ_SUBJECT);
  assert_int_equal(check(s, "doc", "1", "nope", "doc", "1", "nope"), TC_EENTITY_EQ_SUBJECT);
  assert_int_equal(check(s, "doc", "1", "nope", "user", "1", ""), TC_ERELATION_DEF_NOT_FOUND);
  /* Permissions and attributes are not relations. */
  assert_int_equal(check(s, "doc", "1", "read", "user", "1", ""), TC_ERELATION_DEF_NOT_FOUND);
  assert_int_equal(check(s, "doc", "1", "public", "user", "1", ""), TC_ERELATION_DEF_NOT_FOUND);
  assert_int_equal(check(s, "doc", "1", "owner", "group", "g", ""), TC_ESUBJECT_TYPE_NOT_FOUND);
  /* @group#member admits only group:x#member, never bare group:x. */
  assert_int_equal(check(s, "doc", "1", "viewer", "group", "g", ""), TC_ESUBJECT_TYPE_NOT_FOUND);
  assert_int_equal(check(s, "doc", "1", "viewer", "group", "g", "view"),
                   TC_ESUBJECT_TYPE_NOT_FOUND);
  assert_int_equal(check(s, "doc", "1", "owner", "user", "1", "member"),
                   TC_ESUBJECT_TYPE_NOT_FOUND);
  assert_int_equal(check(s, "doc", "1", "owner", "nobody", "1", ""), TC_ESUBJECT_TYPE_NOT_FOUND);
}

#define URL "type.googleapis.com/base.v1."

static void test_attributes(void **state) {
  const tc_schema_t *s = *state;
  static const struct {
    const char *entity, *attr, *url;
    int want;
  } cases[] = {
      {"doc", "public", URL "BooleanValue", 0},
      {"doc", "tags", URL "StringArrayValue", 0},
      {"doc", "size", URL "IntegerValue", 0},
      {"doc", "score", URL "DoubleArrayValue", 0},
      {"file", "public", URL "BooleanValue", TC_ESCHEMA_NOT_FOUND},
      {"big", "size", URL "IntegerValue", TC_EENTITY_DEF_NOT_FOUND},
      {"doc", "owner", URL "BooleanValue", TC_EATTR_DEF_NOT_FOUND},
      {"doc", "nope", URL "BooleanValue", TC_EATTR_DEF_NOT_FOUND},
      {"doc", "tags", URL "StringValue", TC_EATTR_TYPE_MISMATCH},
      {"doc", "size", URL "DoubleValue", TC_EATTR_TYPE_MISMATCH},
      {"doc", "public", "", TC_EATTR_TYPE_MISMATCH},
      /* The URL must match exactly, prefix included. */
      {"doc", "public", "base.v1.BooleanValue", TC_EATTR_TYPE_MISMATCH},
      {"doc", "public", "example.com/base.v1.BooleanValue", TC_EATTR_TYPE_MISMATCH},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = tc_schema_check_attr(s, cases[i].entity, cases[i].attr, cases[i].url);
    if (rc != cases[i].want)
      print_error("case %zu: %s.%s as %s\n", i, cases[i].entity, cases[i].attr, cases[i].url);
    assert_int_equal(rc, cases[i].want);
  }
}

/* Decodes the 12 bytes of a version string. */
static void decode(const char *v, uint8_t id[12]) {
  static const char alphabet[] = "0123456789abcdefghijklmnopqrstuv";
  memset(id, 0, 12);
  for (int i = 0; i < 20; i++) {
    const char *c = strchr(alphabet, v[i]);
    assert_non_null(c);
    int d = (int)(c - alphabet);
    for (int k = 0; k < 5; k++) {
      int bit = i * 5 + k;
      if (bit < 96 && (d >> (4 - k) & 1)) id[bit / 8] |= (uint8_t)(0x80 >> bit % 8);
    }
  }
}

static void test_versions(void **state) {
  (void)state;
  char prev[21], cur[21];
  uint32_t before = (uint32_t)time(NULL);
  tc_schema_version_new(prev);
  assert_int_equal(strlen(prev), 20);
  uint8_t id[12];
  decode(prev, id);
  uint32_t secs = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
  assert_true(secs >= before && secs <= (uint32_t)time(NULL));
  uint32_t pid = (uint32_t)getpid() & 0xffff;
  assert_int_equal((uint32_t)id[7] << 8 | id[8], pid);
  /* The 96 bits end in 4 zero padding bits: the last digit is a multiple of
   * 16 in base32hex, i.e. '0' or 'g'. */
  assert_true(prev[19] == '0' || prev[19] == 'g');
  for (int i = 0; i < 10000; i++) {
    tc_schema_version_new(cur);
    assert_true(strcmp(prev, cur) < 0);
    memcpy(prev, cur, sizeof cur);
  }
}

/* rs/xid's own example: the id 4d88e15b60f486e428412dc9 encodes as
 * 9m4e2mr0ui3e8a215n4g; decoding ours the same way checks the bit order. */
static void test_version_encoding(void **state) {
  (void)state;
  uint8_t id[12];
  static const uint8_t want[12] = {0x4d, 0x88, 0xe1, 0x5b, 0x60, 0xf4,
                                   0x86, 0xe4, 0x28, 0x41, 0x2d, 0xc9};
  decode("9m4e2mr0ui3e8a215n4g", id);
  assert_memory_equal(id, want, 12);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tuples_allowed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tuples_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attributes, setup, teardown),
      cmocka_unit_test(test_versions),
      cmocka_unit_test(test_version_encoding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
