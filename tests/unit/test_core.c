/* Unit tests of the small core modules: the error table, base64, continuous
 * tokens, the arena, the bridge, the plugin loader, the id table and /metrics' folding of
 * a backend's labels.  (Snap tokens belong
 * to the backends: test_rev_token.c.) */
#include <pthread.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "backend_loader.h"
#include "tuplecast/support.h"
#include "bridge.h"
#include "error.h"
#include "idmap.h"
#include "metrics.h"
#include "server_state.h"
#include "token.h"

/* ---- error table --------------------------------------------------------- */

static void test_error_table(void **state) {
  (void)state;
  assert_string_equal(tc_err_code_name(TC_ESCHEMA_NOT_FOUND), "ERROR_CODE_SCHEMA_NOT_FOUND");
  assert_int_equal(tc_err_grpc_status(TC_ESCHEMA_NOT_FOUND), 5);
  assert_int_equal(tc_err_http_status(TC_ESCHEMA_NOT_FOUND), 404);
  /* Permify's range rule puts 4011 under NotFound, not InvalidArgument. */
  assert_int_equal(tc_err_grpc_status(TC_EATTR_TYPE_MISMATCH), 5);
  assert_int_equal(tc_err_grpc_status(TC_EENTITY_EQ_SUBJECT), 3);
  assert_int_equal(tc_err_http_status(TC_EENTITY_EQ_SUBJECT), 400);
  /* Schema parse errors are Internal in Permify. */
  assert_int_equal(tc_err_grpc_status(TC_ESCHEMA_PARSE), 13);
  assert_int_equal(tc_err_http_status(TC_ECANCELLED), 499);
  assert_int_equal(tc_err_grpc_status(TC_EMISSING_BEARER), 16);
  assert_int_equal(tc_err_http_status(TC_EMISSING_BEARER), 401);
  assert_int_equal(tc_err_http_status(TC_EINVALID_KEY), 401);
  assert_int_equal(tc_err_grpc_status(TC_EINVALID_BEARER), 16);
  assert_int_equal(tc_err_grpc_status(TC_EINVALID_ISSUER), 16);
  assert_int_equal(tc_err_grpc_status(TC_EINVALID_AUDIENCE), 16);
  assert_int_equal(tc_err_grpc_status(TC_EINVALID_CLAIMS), 16);
  assert_string_equal(tc_err_code_name(TC_EINVALID_CLAIMS), "ERROR_CODE_INVALID_CLAIMS");
  assert_int_equal(tc_err_http_status(TC_ERATE_LIMITED), 429);
  assert_int_equal(tc_err_http_status(TC_EUNIMPLEMENTED), 501);
  assert_int_equal(tc_err_http_status(TC_EEXHAUSTED), 429);
  assert_int_equal(tc_err_http_status(TC_EUNAVAILABLE), 503);
  assert_int_equal(tc_err_grpc_status(0), 0);
  assert_int_equal(tc_err_http_status(0), 200);
  assert_string_equal(tc_err_symbol(TC_EUNIQUE), "TC_EUNIQUE");
  assert_string_equal(tc_err_symbol(UV_ENOENT), "ENOENT");
  /* Unknown project codes fall back to Internal. */
  assert_int_equal(tc_err_grpc_status(-1999), 13);
  assert_string_equal(tc_err_code_name(-1999), "ERROR_CODE_INTERNAL");
}

/* Every row: a distinct value, an ERROR_CODE_ name, a gRPC status 1..16. */
static void test_error_rows(void **state) {
  (void)state;
  static const int codes[] = {
#define ROW(sym, val, name, grpc) TC_##sym,
      TC_ERRNO_MAP(ROW)
#undef ROW
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    assert_true(codes[i] <= -1000);
    assert_memory_equal(tc_err_code_name(codes[i]), "ERROR_CODE_", 11);
    int g = tc_err_grpc_status(codes[i]);
    assert_true(g >= 1 && g <= 16);
    for (size_t j = i + 1; j < n; j++) assert_int_not_equal(codes[i], codes[j]);
  }
}

/* ---- base64 -------------------------------------------------------------- */

static void test_base64(void **state) {
  (void)state;
  static const char *const vec[][2] = {{"", ""},
                                       {"f", "Zg=="},
                                       {"fo", "Zm8="},
                                       {"foo", "Zm9v"},
                                       {"foob", "Zm9vYg=="},
                                       {"fooba", "Zm9vYmE="},
                                       {"foobar", "Zm9vYmFy"}};
  for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
    char *e = tc_base64_encode(vec[i][0], strlen(vec[i][0]));
    assert_string_equal(e, vec[i][1]);
    free(e);
    size_t len;
    unsigned char *d = tc_base64_decode(vec[i][1], &len);
    assert_non_null(d);
    assert_int_equal(len, strlen(vec[i][0]));
    assert_memory_equal(d, vec[i][0], len);
    free(d);
  }
  size_t len;
  static const char *const bad[] = {
      "Zg", "Zg=", "Z===", "Zh==", "Zm9=Zm9v", "Zm9v!A==", "=Zm9", "Zm8=="};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_null(tc_base64_decode(bad[i], &len));
}

/* ---- tokens -------------------------------------------------------------- */

static void test_cont_token(void **state) {
  (void)state;
  char *tok = tc_cont_token_encode("17");
  assert_string_equal(tok, "MTc=");
  uint64_t id = 0;
  assert_int_equal(tc_cont_token_decode_id(tok, &id), 0);
  assert_int_equal(id, 17);
  free(tok);
  char *text = tc_cont_token_decode("YWNtZQ==");
  assert_string_equal(text, "acme");
  free(text);
  assert_null(tc_cont_token_decode("???"));
  assert_null(tc_cont_token_decode(""));
  assert_int_equal(tc_cont_token_decode_id("YWNtZQ==", &id), TC_ECONT_TOKEN);
  assert_int_equal(tc_cont_token_decode_id("MA==", &id), TC_ECONT_TOKEN); /* "0" */
  assert_int_equal(tc_cont_token_decode_id("???", &id), TC_ECONT_TOKEN);
}

/* ---- arena --------------------------------------------------------------- */

static void test_arena(void **state) {
  (void)state;
  tc_arena_t a;
  tc_arena_init(&a);
  for (int i = 0; i < 10000; i++) {
    unsigned char *p = tc_arena_alloc(&a, (size_t)(i % 97) + 1);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
    assert_int_equal(p[0], 0);
    memset(p, 0xab, (size_t)(i % 97) + 1);
  }
  unsigned char *big = tc_arena_alloc(&a, 1 << 20);
  assert_non_null(big);
  memset(big, 1, 1 << 20);
  assert_string_equal(tc_arena_strdup(&a, "hello"), "hello");
  tc_arena_free(&a);
  tc_arena_free(&a);
}

/* ---- bridge -------------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 5000 };

typedef struct {
  tc_completion_t c;
  int thread, seq;
} item_t;

typedef struct {
  tc_bridge_t bridge;
  item_t items[THREADS][PER_THREAD];
  int next_seq[THREADS];
  int ran, out_of_order;
  pthread_t loop_thread;
  int wrong_thread;
} bridge_test_t;

static bridge_test_t *bt;

static void run_item(tc_completion_t *c) {
  item_t *it = (item_t *)c;
  if (!pthread_equal(pthread_self(), bt->loop_thread)) bt->wrong_thread++;
  if (it->seq != bt->next_seq[it->thread]) bt->out_of_order++;
  bt->next_seq[it->thread] = it->seq + 1;
  if (++bt->ran == THREADS * PER_THREAD) tc_bridge_close(&bt->bridge);
}

static void *poster(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < PER_THREAD; i++) {
    bt->items[t][i] = (item_t){.c = {.run = run_item}, .thread = t, .seq = i};
    tc_bridge_post(&bt->bridge, &bt->items[t][i].c);
  }
  return NULL;
}

static void test_bridge_fifo(void **state) {
  (void)state;
  bt = calloc(1, sizeof *bt);
  uv_loop_t loop;
  uv_loop_init(&loop);
  assert_int_equal(tc_bridge_init(&bt->bridge, &loop), 0);
  bt->loop_thread = pthread_self();
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, poster, (void *)(intptr_t)t);
  /* The loop ends when the last item closes the bridge. */
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  assert_int_equal(bt->ran, THREADS * PER_THREAD);
  assert_int_equal(bt->out_of_order, 0);
  assert_int_equal(bt->wrong_thread, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  free(bt);
}

/* ---- plugin loader ------------------------------------------------------- */

static void expect_reject(const char *name, const char *fragment) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.so", TC_TEST_PLUGIN_DIR, name);
  tc_plugin_t p;
  char *err = NULL;
  assert_int_equal(tc_plugin_load(path, &p, &err), TC_EPLUGIN);
  assert_non_null(err);
  if (!strstr(err, fragment)) fail_msg("\"%s\" does not contain \"%s\"", err, fragment);
  assert_null(p.dl);
  free(err);
}

static void test_loader(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s/good.so", TC_TEST_PLUGIN_DIR);
  tc_plugin_t p;
  char *err = NULL;
  assert_int_equal(tc_plugin_load(path, &p, &err), 0);
  assert_string_equal(p.api->name, "broken");
  tc_plugin_unload(&p);

  expect_reject("wrong_magic", "expected magic 0x54434250, found 0x12345678");
  expect_reject("old_major", "expected ABI major 2, found 1");
  expect_reject("short_table", "expected function table of at least");
  expect_reject("bad_fingerprint", "found tc1:ptr4:bo1234:uv0:noasan");
  expect_reject("bad_fingerprint", "expected build fingerprint " TC_BACKEND_FINGERPRINT);
  expect_reject("old_entry", "expected entry symbol tc_backend_entry_v2");
  expect_reject("missing", "cannot load");
}

/* ---- metrics: a backend's labels ------------------------------------------ */

static void no_stats(tc_backend_t *b, tc_backend_stats_t *out) {
  (void)b;
  memset(out, 0, sizeof *out);
}

/* More SQLSTATEs than the server keeps apart, after the backend's own
 * "other" (postgres folds its overflow so). */
static void many_retries(tc_backend_t *b, tc_backend_metric_fn emit, void *arg) {
  (void)b;
  emit(arg, TC_BACKEND_METRIC_RETRIES, "other", 1);
  for (int i = 0; i < 10; i++) {
    char state[8];
    snprintf(state, sizeof state, "S%04d", i);
    emit(arg, TC_BACKEND_METRIC_RETRIES, state, 10);
  }
}

/* A label the backend calls "other" and the server's own "other" are one
 * series: a name appears once per label set in the exposition. */
static void test_metrics_backend_other(void **state) {
  (void)state;
  static const tc_backend_api_t api = {.struct_size = sizeof(tc_backend_api_t),
                                       .name = "test",
                                       .version = "1",
                                       .stats = no_stats,
                                       .metrics = many_retries};
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  tc_server_t srv = {.loop = &loop, .api = &api, .backend = (tc_backend_t *)&loop};
  size_t len;
  char *text = tc_metrics_render(&srv, &len);
  assert_non_null(text);
  const char *series = "\ntuplecast_backend_retries_total{sqlstate=\"other\"} ";
  const char *at = strstr(text, series);
  assert_non_null(at);
  assert_null(strstr(at + 1, series));
  /* Eight states kept apart; the backend's 1 and the last two states' 10s. */
  assert_int_equal(strtol(at + strlen(series), NULL, 10), 21);
  free(text);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- idmap ----------------------------------------------------------------- */

/* 64 ids of six bytes, each '0' or 'p' (which differ only in bit 6):
 * FNV-1a's low bits cannot tell them apart, so without the fold they all
 * share one of the first table's 64 buckets. */
static void test_idmap_spread(void **state) {
  (void)state;
  enum { N = 64 };
  static char ids[N][8];
  static tc__idmap_link_t links[N];
  tc__idmap_t m = {0};
  for (int i = 0; i < N; i++) {
    for (int b = 0; b < 6; b++) ids[i][b] = (char)((i >> b & 1) ? 'p' : '0');
    assert_int_equal(tc__idmap_add(&m, &links[i], ids[i]), 0);
  }
  assert_int_equal(m.n_buckets, 64);
  size_t longest = 0;
  for (size_t b = 0; b < m.n_buckets; b++) {
    size_t len = 0;
    for (tc__idmap_link_t *l = m.buckets[b]; l; l = l->next) len++;
    if (len > longest) longest = len;
  }
  assert_true(longest <= 8);
  for (int i = 0; i < N; i++) assert_ptr_equal(tc__idmap_find(&m, ids[i]), &links[i]);
  size_t walked = 0;
  for (tc__idmap_link_t *l = tc__idmap_next(&m, NULL); l; l = tc__idmap_next(&m, l)) walked++;
  assert_int_equal(walked, N);
  tc__idmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_table),
      cmocka_unit_test(test_error_rows),
      cmocka_unit_test(test_base64),
      cmocka_unit_test(test_cont_token),
      cmocka_unit_test(test_arena),
      cmocka_unit_test(test_bridge_fifo),
      cmocka_unit_test(test_loader),
      cmocka_unit_test(test_idmap_spread),
      cmocka_unit_test(test_metrics_backend_other),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
