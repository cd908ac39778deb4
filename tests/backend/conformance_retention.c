/* Backend conformance cases: history that is no longer retained (retain=N). */
#include "conformance.h"

unsigned long ct_retain_window(void) {
  const char *p = strstr(ct_backend_uri, "retain=");
  return p ? strtoul(p + strlen("retain="), NULL, 10) : 0;
}

/* With retain=N the backend keeps the changes of the last N transactions:
 * from the position N transactions back the feed reads, from further back
 * it is TC_EOUT_OF_RANGE.  A tenant that lost nothing reads on. */
void test_out_of_range(void **state) {
  ct_fixture_t *f = *state;
  unsigned long n = ct_retain_window();
  if (n == 0) {
    print_message("      the uri names no retention window (retain=N): not applicable\n");
    skip();
  }
  assert_true(n < 100);
  ct_result_t r = {0};
  char *t = ct_tenant_name("retain");
  char *quiet = ct_tenant_name("retain-quiet");
  ct_write_tuples(f, quiet, "doc:0#viewer@user:q", NULL);
  const char *h = ct_head(f, t);
  const char *w[102];
  for (unsigned long i = 0; i <= n; i++) {
    char spec[64];
    snprintf(spec, sizeof spec, "doc:%lu#viewer@user:a", i);
    w[i] = ct_write_tuples(f, t, spec, NULL);
  }
  /* w[0] is N transactions back: all of them are there. */
  ct_read_changes(f, &r, t, w[0], NULL, 0);
  assert_int_equal(r.rows.n, n);

  char spec[64];
  snprintf(spec, sizeof spec, "doc:%lu#viewer@user:a", n + 1);
  w[n + 1] = ct_write_tuples(f, t, spec, NULL);
  const char *gone[] = {h, w[0]};
  for (int i = 0; i < 2; i++) {
    CT_CALL(f, &r, f->api->read_changes(f->b, t, gone[i], NULL, 0, ct_on_changes, &r));
    assert_int_equal(r.status, TC_EOUT_OF_RANGE);
    assert_int_equal(r.rows.n, 0);
  }
  ct_read_changes(f, &r, t, w[1], NULL, 0);
  assert_int_equal(r.rows.n, n);
  snprintf(spec, sizeof spec, "+doc:%lu#viewer@user:a", n + 1);
  assert_string_equal(r.rows.v[n - 1], spec);

  /* The quiet tenant's changes fell out of the window, but after its head
   * there was nothing to lose. */
  ct_expect_feed_resumes(f, quiet, ct_head(f, quiet), "doc:1#viewer@user:q");
  ct_result_free(&r);
  free(quiet);
  free(t);
}
