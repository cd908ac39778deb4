/* Unit tests of the snap tokens of the revision-numbered backends (sqlite,
 * example): backends/support/rev_token.c, base64 of "tc1:<instance>:<rev>". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tuplecast/support.h"
#include "tuplecast/errors.h"

/* decode refuses token with TC_ESNAP_TOKEN and a message that quotes the
 * token and contains fragment. */
static void expect_refused(const char *token, const char *instance, const char *fragment) {
  uint64_t rev = 12345;
  char *err = NULL;
  assert_int_equal(tc_rev_token_decode(token, instance, &rev, &err), TC_ESNAP_TOKEN);
  assert_non_null(err);
  char msg[512]; /* copied, so a failed check does not leak err */
  snprintf(msg, sizeof msg, "%s", err);
  free(err);
  if (!strstr(msg, fragment)) fail_msg("\"%s\" does not contain \"%s\"", msg, fragment);
  if (!strstr(msg, token)) fail_msg("\"%s\" does not quote the token \"%s\"", msg, token);
}

static void test_round_trip(void **state) {
  (void)state;
  char *tok = tc_rev_token_encode("abc123", 42);
  assert_non_null(tok);
  uint64_t rev = 0;
  char *err = NULL;
  assert_int_equal(tc_rev_token_decode(tok, "abc123", &rev, &err), 0);
  assert_int_equal(rev, 42);
  assert_null(err);
  free(tok);

  static const uint64_t revs[] = {0, 1, 7, 1000000, UINT64_MAX};
  for (size_t i = 0; i < sizeof revs / sizeof revs[0]; i++) {
    tok = tc_rev_token_encode("abc", revs[i]);
    assert_int_equal(tc_rev_token_decode(tok, "abc", &rev, &err), 0);
    assert_true(rev == revs[i]);
    free(tok);
  }
}

/* The wire format: clients keep tokens, so it must not drift. */
static void test_format(void **state) {
  (void)state;
  char *tok = tc_rev_token_encode("abc", 7);
  assert_string_equal(tok, "dGMxOmFiYzo3"); /* "tc1:abc:7" */
  free(tok);
}

static void test_another_database(void **state) {
  (void)state;
  char *tok = tc_rev_token_encode("abc123", 42);
  expect_refused(tok, "other", "was issued by another database");
  expect_refused(tok, "abc12", "another database");   /* a prefix of the id */
  expect_refused(tok, "abc1234", "another database"); /* the id is a prefix */
  free(tok);
}

/* Postgres tokens: Permify's formats (legacy 8-byte xid, "xid:snapshot", which
 * our Postgres backend mints too) and its former "tc2:...", each named for
 * what it is. */
static void test_postgres_tokens(void **state) {
  (void)state;
  static const char *const pg[] = {"6QIAAAAAAAA=",         /* 8-byte xid 745 */
                                   "NzQ1Ojc0NTo3NDY6NzQ1", /* "745:745:746:745" */
                                   "dGMyOmFiYzox"};        /* "tc2:abc:1" */
  for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++)
    expect_refused(pg[i], "abc", "Postgres token; this server's backend cannot use it");
}

/* A token that starts "tc1:" is one of ours, malformed or not, even when its
 * length (8 bytes: "tc1:abc:") is that of Permify's legacy xid token. */
static void test_own_prefix_is_not_postgres(void **state) {
  (void)state;
  expect_refused("dGMxOmFiYzo=", "abc", "is malformed");
}

static void test_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "not base64!",
      "",
      "dGMxOmFiY2Q6",                                 /* "tc1:abcd:" */
      "dGMxOmFiYzotMQ==",                             /* "tc1:abc:-1" */
      "dGMxOmFiYzoxOTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk=", /* beyond 64 bits */
      "dGMxOmFiYzoxODQ0Njc0NDA3MzcwOTU1MTYxNg==",     /* "tc1:abc:18446744073709551616" */
      "dGMxOmFiYzoxeA==",                             /* "tc1:abc:1x" */
      "dGMxOmFiYzogNw==",                             /* "tc1:abc: 7" */
      "dGMxOmFiYzoA",                                 /* "tc1:abc:" NUL */
      "aGVsbG8=",                                     /* "hello" */
      "dGMx",                                         /* "tc1" */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_refused(bad[i], "abc", "is malformed");
}

/* tc_rev_token_reply: what a write or head callback receives. */
static int got_status;
static char got_token[128];

static void on_token(void *arg, int status, const char *token) {
  assert_ptr_equal(arg, &got_status);
  got_status = status;
  snprintf(got_token, sizeof got_token, "%s", token);
}

static void test_reply(void **state) {
  (void)state;
  uint64_t rev = 0;
  char *err = NULL;
  tc_rev_token_reply(on_token, &got_status, 0, "abc", 77);
  assert_int_equal(got_status, 0);
  assert_int_equal(tc_rev_token_decode(got_token, "abc", &rev, &err), 0);
  assert_int_equal(rev, 77);
  tc_rev_token_reply(on_token, &got_status, TC_EDATASTORE, "abc", 78);
  assert_int_equal(got_status, TC_EDATASTORE);
  assert_string_equal(got_token, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_another_database),
      cmocka_unit_test(test_postgres_tokens),
      cmocka_unit_test(test_own_prefix_is_not_postgres),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_reply),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
