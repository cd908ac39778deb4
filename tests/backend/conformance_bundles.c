/* Backend conformance cases: data bundles (ABI 2.1): write, read, delete. */
#include "conformance.h"

typedef struct {
  int done, status;
  uint8_t *payload;
  size_t len;
} bundle_result_t;

static void on_bundle(void *arg, int status, const uint8_t *payload, size_t len) {
  bundle_result_t *r = arg;
  r->status = status;
  r->payload = payload ? malloc(len + 1) : NULL;
  if (payload) memcpy(r->payload, payload, len);
  r->len = len;
  r->done = 1;
}

static void read_bundle(ct_fixture_t *f, bundle_result_t *r, const char *t, const char *name) {
  free(r->payload);
  *r = (bundle_result_t){0};
  assert_int_equal(f->api->bundle_read(f->b, t, name, on_bundle, r), 0);
  assert_false(r->done);
  ct_wait_for(f, &r->done);
}

static void expect_payload(const bundle_result_t *r, const char *want) {
  assert_int_equal(r->status, 0);
  assert_int_equal(r->len, strlen(want));
  assert_memory_equal(r->payload, want, r->len);
}

void test_bundles(void **state) {
  ct_fixture_t *f = *state;
  assert_true(f->api->struct_size >= TC_BACKEND_API_V2_1_SIZE);
  ct_result_t r = {0};
  bundle_result_t b = {0};
  char *t = ct_tenant_name("bundles"), *other = ct_tenant_name("bundles-other");
  /* Payloads are opaque bytes (NUL included) to the backend. */
  const tc_bundle_t two[] = {{"b1", (const uint8_t *)"one\0x", 5},
                             {"b2", (const uint8_t *)"two", 3}};

  read_bundle(f, &b, t, "b1");
  assert_int_equal(b.status, TC_EBUNDLE_NOT_FOUND);
  assert_null(b.payload);
  CT_CALL(f, &r, f->api->bundle_write(f->b, t, two, 2, ct_on_status, &r));
  assert_int_equal(r.status, 0);
  read_bundle(f, &b, t, "b1");
  assert_int_equal(b.status, 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.payload, "one\0x", 5);
  read_bundle(f, &b, t, "b2");
  expect_payload(&b, "two");

  /* A write replaces a bundle of the same name; bundles are per tenant. */
  const tc_bundle_t again = {"b2", (const uint8_t *)"TWO!", 4};
  CT_CALL(f, &r, f->api->bundle_write(f->b, t, &again, 1, ct_on_status, &r));
  assert_int_equal(r.status, 0);
  read_bundle(f, &b, t, "b2");
  expect_payload(&b, "TWO!");
  read_bundle(f, &b, other, "b2");
  assert_int_equal(b.status, TC_EBUNDLE_NOT_FOUND);

  /* Delete: absent names are fine; only the named bundle goes. */
  CT_CALL(f, &r, f->api->bundle_delete(f->b, t, "b1", ct_on_status, &r));
  assert_int_equal(r.status, 0);
  CT_CALL(f, &r, f->api->bundle_delete(f->b, t, "b1", ct_on_status, &r));
  assert_int_equal(r.status, 0);
  read_bundle(f, &b, t, "b1");
  assert_int_equal(b.status, TC_EBUNDLE_NOT_FOUND);
  read_bundle(f, &b, t, "b2");
  expect_payload(&b, "TWO!");

  /* tenant_delete removes a tenant's bundles. */
  CT_CALL(f, &r, f->api->tenant_create(f->b, t, "bundles", ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  CT_CALL(f, &r, f->api->tenant_delete(f->b, t, ct_on_tenant, &r));
  assert_int_equal(r.status, 0);
  read_bundle(f, &b, t, "b2");
  assert_int_equal(b.status, TC_EBUNDLE_NOT_FOUND);
  free(b.payload);
  ct_result_free(&r);
  free(other);
  free(t);
}

/* v2.1's exact deletes (Data.RunBundle): a tuple goes only when equal in all
 * six columns ("" subject relation: the direct subject only), an attribute
 * by its key whatever its value; one transaction with the other effects. */
void test_exact_deletes(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  char *t = ct_tenant_name("exact");
  ct_batch_t b;
  ct_batch_init(&b, t);
  ct_add_tuple(&b, "doc:1#viewer@user:a");
  ct_add_tuple(&b, "doc:1#viewer@group:g#member");
  ct_add_tuple(&b, "doc:1#viewer@group:g");
  ct_add_attr(&b, "doc", "1", "public", "yes");
  ct_add_attr(&b, "doc", "2", "public", "no");
  const char *r1 = ct_write_ok(f, &b.w);

  char bufs[3][128];
  const tc_tuple_t dels[] = {ct_tuple(bufs[0], "doc:1#viewer@group:g"),
                             ct_tuple(bufs[1], "doc:1#viewer@user:zz"), /* absent: no change */
                             ct_tuple(bufs[2], "doc:1#viewer@user:a")};
  const tc_attr_t attr_dels[] = {{"doc", "1", "public", (const uint8_t *)"ignored", 7}};
  ct_batch_init(&b, t);
  ct_add_tuple(&b, "doc:2#viewer@user:b");
  b.w.tuple_deletes = dels;
  b.w.n_tuple_deletes = 3;
  b.w.attr_deletes = attr_dels;
  b.w.n_attr_deletes = 1;
  ct_write_ok(f, &b.w);

  ct_read_tuples(f, &r, t, "", &ct_all_tuples, 0, 0);
  ct_expect(&r.rows, "doc:1#viewer@group:g#member", "doc:2#viewer@user:b", NULL);
  ct_read_attrs(f, &r, t, "", &ct_all_attrs);
  ct_expect(&r.rows, "doc:2$public=no", NULL);
  ct_read_changes(f, &r, t, r1, NULL, 0);
  assert_int_equal(r.rows.n, 4);
  assert_true(ct_strv_find(&r.rows, "-doc:1#viewer@group:g") < 4);
  assert_true(ct_strv_find(&r.rows, "-doc:1#viewer@user:a") < 4);
  assert_true(ct_strv_find(&r.rows, "-doc:1$public=yes") < 4);
  assert_true(ct_strv_find(&r.rows, "+doc:2#viewer@user:b") < 4);
  for (size_t i = 1; i < 4; i++) assert_string_equal(r.tokens.v[i], r.tokens.v[0]);
  ct_result_free(&r);
  free(t);
}

/* A 2.0 server's host API ends before abi_major: its write batches end
 * before the exact deletes, so create() refuses it with a message. */
void test_old_host(void **state) {
  ct_fixture_t *f = *state;
  static const char *const no_options[] = {NULL};
  tc_host_api_t old = f->bridge.host;
  old.struct_size = (uint32_t)offsetof(tc_host_api_t, abi_major);
  tc_backend_t *b = NULL;
  char *err = NULL;
  assert_int_equal(f->api->create(&old, ct_backend_uri, no_options, &b, &err), TC_EPLUGIN);
  assert_null(b);
  assert_non_null(err);
  /* 2.1: later minors only append calls a server may leave unused. */
  char want[64];
  snprintf(want, sizeof want, "needs a server of plugin ABI %d.1 or later", TC_BACKEND_ABI_MAJOR);
  assert_non_null(strstr(err, want));
  free(err);
}
