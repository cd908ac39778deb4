/* log.c: the text and JSON line formats, the limiter of repeated warnings,
 * and the masking of secrets in the configuration dump.  stderr is pointed
 * at a temporary file and read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "log.h"

static char path[] = "/tmp/tc-test-log-XXXXXX";
static int saved_fd = -1;

/* Sends stderr to a fresh temporary file. */
static void capture(void) {
  fflush(stderr);
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  saved_fd = dup(2);
  dup2(fd, 2);
  close(fd);
}

/* Restores stderr; returns what was written (malloc'd). */
static char *captured(void) {
  tc_log_flush();
  fflush(stderr);
  dup2(saved_fd, 2);
  close(saved_fd);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  unlink(path);
  strcpy(path + strlen(path) - 6, "XXXXXX");
  return buf;
}

static size_t count_lines(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = s; (p = strstr(p, needle)) != NULL; p++) n++;
  return n;
}

/* A warning repeated 1000 times is one line, then one with the count;
 * info lines are not limited; a plugin's bare "%s" lines differing only in
 * digits are one warning, one format with different words two. */
static void repeats_collapse(void **state) {
  (void)state;
  tc_log_set_format(TC_LOG_TEXT);
  tc_log_set_level(TC_LOG_DEBUG);
  capture();
  for (int i = 0; i < 1000; i++) tc_log(TC_LOG_WARN, "disk %d full", i);
  for (int i = 0; i < 50; i++) tc_log(TC_LOG_INFO, "served %d", i);
  for (int i = 0; i < 30; i++) {
    char msg[64];
    snprintf(msg, sizeof msg, "pool #%d: cannot connect", i);
    tc_log(TC_LOG_ERROR, "%s", msg);
  }
  tc_log(TC_LOG_ERROR, "%s", "another failure");
  for (int i = 0; i < 4; i++)
    tc_log(TC_LOG_WARN, "%s: out of descriptors", i % 2 ? "grpc" : "http");
  char *out = captured();
  assert_int_equal(count_lines(out, " disk "), 2);
  assert_non_null(strstr(out, "warn  disk 0 full\n"));
  assert_non_null(strstr(out, "warn  disk 999 full repeated=999\n"));
  assert_int_equal(count_lines(out, " served "), 50);
  assert_int_equal(count_lines(out, " pool #"), 2);
  assert_non_null(strstr(out, "error pool #0: cannot connect\n"));
  assert_non_null(strstr(out, "error pool #29: cannot connect repeated=29\n"));
  assert_int_equal(count_lines(out, "another failure"), 1);
  assert_non_null(strstr(out, "warn  http: out of descriptors\n"));
  assert_non_null(strstr(out, "warn  grpc: out of descriptors\n"));
  assert_non_null(strstr(out, "warn  http: out of descriptors repeated=1\n"));
  free(out);
}

/* Every JSON line parses, with time, level and msg; strings that need it
 * are escaped and bytes that are not UTF-8 become U+FFFD. */
static void json_lines(void **state) {
  (void)state;
  tc_log_set_format(TC_LOG_JSON);
  tc_log_set_level(TC_LOG_INFO);
  capture();
  tc_log(TC_LOG_DEBUG, "not written");
  tc_log(TC_LOG_INFO, "a \"quoted\"\tword\nand \xff byte \xc3\xa9");
  const tc_log_field_t f[] = {{"tenant_id", TC_LOG_STR, "t\\1", 0},
                              {"gone", TC_LOG_STR, NULL, 0},
                              {"n", TC_LOG_INT, NULL, -42},
                              {"config", TC_LOG_RAW, "{\"a\":[1,2]}", 0}};
  tc_log_fields(TC_LOG_WARN, "fields", f, 4);
  for (int i = 0; i < 3; i++) tc_log_fields(TC_LOG_WARN, "fields", f, 4);
  char *out = captured();
  tc_log_set_format(TC_LOG_TEXT);
  assert_null(strstr(out, "not written"));
  json_t *lines[4] = {0};
  size_t n = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    assert_true(n < 3);
    json_error_t err;
    lines[n] = json_loads(line, 0, &err);
    if (!lines[n]) fail_msg("not JSON: %s (%s)", line, err.text);
    assert_true(json_is_string(json_object_get(lines[n], "time")));
    n++;
  }
  assert_int_equal(n, 3);
  assert_string_equal(json_string_value(json_object_get(lines[0], "level")), "INFO");
  assert_string_equal(json_string_value(json_object_get(lines[0], "msg")),
                      "a \"quoted\"\tword\nand \xef\xbf\xbd byte \xc3\xa9");
  assert_string_equal(json_string_value(json_object_get(lines[1], "level")), "WARN");
  assert_string_equal(json_string_value(json_object_get(lines[1], "tenant_id")), "t\\1");
  assert_null(json_object_get(lines[1], "gone"));
  assert_int_equal(json_integer_value(json_object_get(lines[1], "n")), -42);
  assert_int_equal(json_array_size(json_object_get(json_object_get(lines[1], "config"), "a")), 2);
  assert_int_equal(json_integer_value(json_object_get(lines[2], "repeated")), 3);
  for (size_t i = 0; i < n; i++) json_decref(lines[i]);
  free(out);
}

/* Text fields: a plain word bare, anything else quoted. */
static void text_fields(void **state) {
  (void)state;
  tc_log_set_format(TC_LOG_TEXT);
  tc_log_set_level(TC_LOG_INFO);
  capture();
  const tc_log_field_t f[] = {{"a", TC_LOG_STR, "plain", 0},
                              {"b", TC_LOG_STR, "two words", 0},
                              {"c", TC_LOG_STR, "", 0},
                              {"d", TC_LOG_INT, NULL, 7}};
  tc_log_fields(TC_LOG_INFO, "finished call", f, 4);
  char *out = captured();
  assert_non_null(strstr(out, "Z info  finished call a=plain b=\"two words\" c=\"\" d=7\n"));
  free(out);
}

/* The dump masks the preshared keys and a URI's passwords, and nothing
 * else of the URI. */
static void config_masked(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"postgres://alice:s3cret@db:5432/x?sslmode=require",
       "postgres://alice:***@db:5432/x?sslmode=require"},
      {"postgres://alice@db/x?password=s3cret&a=b", "postgres://alice@db/x?password=***&a=b"},
      {"host=db password='s3 \\'cret' user=u", "host=db password=*** user=u"},
      {"/var/lib/tuplecast.db", "/var/lib/tuplecast.db"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tc_config_t cfg;
    tc_config_init(&cfg);
    char *args[] = {"--authn-preshared-keys", "key-s3cret,other", "--database-uri",
                    (char *)cases[i][0]};
    char *err = NULL;
    assert_int_equal(tc_config_load(&cfg, 4, args, (char *[]){NULL}, &err), 0);
    char *dump = tc_config_dump_json(&cfg);
    assert_non_null(dump);
    assert_null(strstr(dump, "s3cret"));
    json_t *j = json_loads(dump, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "database.uri")), cases[i][1]);
    json_t *keys = json_object_get(j, "authn.preshared.keys");
    assert_int_equal(json_array_size(keys), 2);
    assert_string_equal(json_string_value(json_array_get(keys, 0)), "***");
    assert_true(json_is_integer(json_object_get(j, "server.grpc.port")));
    assert_null(json_object_get(j, "tracer.headers")); /* read and dropped: not shown */
    json_decref(j);
    free(dump);
    tc_config_free(&cfg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(repeats_collapse),
      cmocka_unit_test(json_lines),
      cmocka_unit_test(text_fields),
      cmocka_unit_test(config_masked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
