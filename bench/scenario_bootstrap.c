/* The bootstrap scenario: a tenant filled with --tuples tuples (Data.Write
 * of --batch each, --concurrency at a time), then one Watch with
 * initial_state from the head: the time from opening it to the message
 * that ends the initial state (the first with a snap token), and the
 * changes per second it delivered.
 *
 * Ownership: the scenario owns its stream and frees it before returning.
 */
#include "bench.h"
#include "grpc_codec.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  bench_stream_t s;
  uint64_t messages, changes;
  int64_t first_ns, end_ns; /* the first message; the one ending the initial state */
} boot_t;

static void on_boot_msg(bench_stream_t *s, grpc_byte_buffer *bb) {
  boot_t *b = s->arg;
  int64_t now = bench_now_ns();
  Base__V1__WatchResponse *m = (void *)tc_grpc_unpack(&base__v1__watch_response__descriptor, bb);
  if (!m) return;
  if (!b->first_ns) b->first_ns = now;
  if (!b->end_ns && m->changes) {
    b->messages++;
    b->changes += m->changes->n_data_changes;
    if (*m->changes->snap_token) b->end_ns = now;
  }
  protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void on_boot_end(bench_stream_t *s) {
  boot_t *b = s->arg;
  if (!b->end_ns && s->rpc.status != GRPC_STATUS_OK)
    fprintf(stderr, "tuplecast-bench: bootstrap: the stream ended with status %d\n",
            (int)s->rpc.status);
}

/* Fills the tenant; 0, or -1 if a write failed or the load timed out. */
static int fill(const bench_opts_t *o, bench_client_t *c, bench_report_t *r) {
  uint64_t calls = ((uint64_t)o->tuples + (uint64_t)o->batch - 1) / (uint64_t)o->batch;
  bench_writer_t w = {
      .client = c,
      .opts = o,
      .limit = calls,
      .end_ns = bench_now_ns() + (int64_t)(BENCH_WAIT_S + o->tuples / 1000.0) * 1000000000};
  int rc = bench_writer_run(&w);
  double wall = (double)(w.last_ack_ns - w.start_ns) / 1e9;
  bench_report_num(r, "fill_tuples", (double)w.acked * o->batch, 0);
  bench_report_num(r, "fill_s", wall > 0 ? wall : 0, 2);
  if (w.errors) {
    bench_report_str(r, "fill_first_error", w.first_error);
    rc = -1;
  }
  bench_writer_release(&w);
  return rc;
}

int bench_scenario_bootstrap(const bench_opts_t *o, bench_client_t *c, bench_report_t *r) {
  bench_report_num(r, "tuples", o->tuples, 0);
  bench_report_num(r, "batch", o->batch, 0);
  if (fill(o, c, r) != 0) return -1;
  Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
  req.tenant_id = (char *)o->tenant;
  req.snap_token = "";
  req.initial_state = 1;
  boot_t b = {0};
  b.s.on_msg = on_boot_msg;
  b.s.on_end = on_boot_end;
  bench_cpu_mark_t cpu = bench_cpu_mark(o);
  int64_t t0 = bench_now_ns();
  /* The bound grows with the tenant: 10 µs per tuple on top. */
  int64_t until = t0 + (int64_t)(BENCH_WAIT_S + o->tuples / 100000.0) * 1000000000;
  int rc = bench_stream_start(c, 0, &b.s, "/base.v1.Watch/Watch", &req.base, &b);
  while (rc == 0 && !b.end_ns && !b.s.ended)
    if (bench_client_poll(c, until) < 0) rc = -1;
  bench_report_cpu(r, o, cpu);
  if (rc == 0 && !b.end_ns) rc = -1;
  double s = b.end_ns ? (double)(b.end_ns - t0) / 1e9 : 0;
  bench_report_num(r, "first_message_ms", b.first_ns ? (double)(b.first_ns - t0) / 1e6 : 0, 1);
  bench_report_num(r, "initial_state_s", s, 3);
  bench_report_num(r, "initial_messages", (double)b.messages, 0);
  bench_report_num(r, "initial_changes", (double)b.changes, 0);
  bench_report_num(r, "changes_per_s", s > 0 ? (double)b.changes / s : 0, 1);
  if (!b.s.ended) bench_stream_cancel(&b.s);
  bench_client_drain(c, bench_now_ns() + (int64_t)BENCH_WAIT_S * 1000000000);
  bench_stream_release(&b.s);
  return rc;
}
