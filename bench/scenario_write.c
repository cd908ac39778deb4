/* Scenario write: Data.Write of --batch tuples per call, --concurrency calls
 * outstanding, for --duration seconds.
 *
 * Ownership: everything is local to the run.
 */
#include "bench.h"

int bench_scenario_write(const bench_opts_t *o, bench_client_t *c, bench_report_t *r) {
  bench_report_num(r, "batch", o->batch, 0);
  bench_report_num(r, "concurrency", o->concurrency, 0);
  bench_report_num(r, "duration_s", o->duration, 1);
  bench_writer_t w = {.client = c, .opts = o};
  bench_cpu_mark_t cpu = bench_cpu_mark(o);
  w.end_ns = bench_now_ns() + (int64_t)(o->duration * 1e9);
  int rc = bench_writer_run(&w);
  double wall = (double)(w.last_ack_ns - w.start_ns) / 1e9;
  if (wall <= 0) wall = 1e-9;
  bench_report_cpu(r, o, cpu);
  bench_report_num(r, "writes", (double)w.acked, 0);
  bench_report_num(r, "errors", (double)w.errors, 0);
  bench_report_num(r, "elapsed_s", wall, 3);
  bench_report_num(r, "writes_per_s", (double)w.acked / wall, 1);
  bench_report_num(r, "items_per_s", (double)w.acked * o->batch / wall, 1);
  bench_report_latency(r, "latency", &w.latency);
  if (w.first_error[0]) bench_report_str(r, "first_error", w.first_error);
  bench_writer_release(&w);
  return rc;
}
