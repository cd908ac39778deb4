/* Backend conformance suite: drives every call of the plugin ABI (major 2)
 * against any backend plugin.  Usage: tc_backend_conformance <plugin.so> <uri>.
 *
 * Each case gets a fresh backend on a fresh loop and works in tenants named
 * after this run, so the suite also runs against a database that persists
 * between runs (and that may hold other tenants).  Calls are made from the
 * loop thread; each helper runs the loop until the callback fired, with a
 * deadline.
 *
 * Positions are snap tokens the backend mints: the suite never looks inside
 * one.  It compares them for equality only, and learns what a token means
 * from what reads at it and changes after it return.  A uri naming a
 * retention window ("retain=N", as in "example:retain=3") runs the one case
 * about history that is no longer retained, and only that one: every other
 * case reads history from the start. */
#include "conformance.h"

static const char *plugin_path;

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <backend plugin .so> <uri>\n", argv[0]);
    return 2;
  }
  plugin_path = argv[1];
  ct_backend_uri = argv[2];
  snprintf(ct_run_id, sizeof ct_run_id, "run%ld-%ld", (long)getpid(), (long)uv_hrtime() % 1000000);
  char *err = NULL;
  if (tc_plugin_load(plugin_path, &ct_plugin, &err) != 0) {
    fprintf(stderr, "%s\n", err);
    free(err);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tenants, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_tenant_list_paging, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_tenant_delete_removes_data, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_schemas, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_tenant_state, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_bundles, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_ping, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_exact_deletes, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_old_host, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_read_filters, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_read_paging, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_positions, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_attributes, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_change_order_in_one_write, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_read_changes_resume, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_read_changes_paging, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_read_changes_upto, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_read_feed_schemas, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_token_check, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_token_ahead, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_many_writes_in_order, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_checkpoint_off_the_writer, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_mixed_calls_complete_in_order, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_failure_fails_alone, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_destroy_with_work_in_flight, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_reopen_keeps_identity, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_stats_count_calls, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_metrics_report, ct_setup, ct_teardown),
      cmocka_unit_test_setup_teardown(test_out_of_range, ct_setup, ct_teardown),
  };
  /* Under a retention window the other cases, which read history from the
   * start, do not apply: only the retention case runs. */
  const struct CMUnitTest retention[] = {
      cmocka_unit_test_setup_teardown(test_out_of_range, ct_setup, ct_teardown),
  };
  int failed = ct_retain_window() ? cmocka_run_group_tests_name("retention", retention, NULL, NULL)
                                  : cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
  tc_plugin_unload(&ct_plugin);
  return failed ? 1 : 0;
}
