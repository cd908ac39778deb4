/* Scenario soak: mixed load for --duration seconds, the server's memory,
 * descriptors and latencies kept per window, and a verdict on whether they
 * stayed flat.
 *
 * Load: Data.Write of --batch new tuples at --rate calls/s, spread over
 * --tenants tenants; Data.ReadRelationships at --read-rate calls/s, at most
 * --readers outstanding, each for an entity just written on the next tenant
 * (paced, not closed-loop: a load that saturates the CPU makes every latency
 * a measure of the machine); --watchers Watch streams
 * (from the head, spread over the tenants), each cancelled after
 * --stream-changes transactions and opened again.  Every second the server's
 * VmRSS and the entries of /proc/PID/fd (--server-pid) are read.
 *
 * With --preload N, N tuples are written first (batches of 1000, spread over
 * the tenants), untimed: the SQLite backend's page cache (64 MiB) fills as
 * the database grows, about 5 MiB a minute at 200 writes/s (measured), which
 * a 10-minute run would otherwise take for a leak.
 *
 * The run is cut into windows of 60 s (a quarter of a shorter run).  The
 * first is warm-up (caches filling), the second is "start", the last "end";
 * the verdict compares them:
 *   RSS          max of end <= max of start + max(16 MiB, 10 %)
 *   descriptors  max of end <= max of start + 4
 *   latency      p50 of end <= 2 x p50 of start + 1 ms, and
 *                p99 of end <= 5 x p99 of start + 250 ms, for writes and reads
 *   errors       none: every call OK, every stream ended by its cancel
 * p99 is judged loosely: on SQLite a WAL checkpoint, and on a shared machine
 * the scheduler, put single stalls of 100-250 ms into any window (measured:
 * write p99 of 5 s windows of one 20 s run went 22, 170, 193 ms at a flat
 * p50 of 1.1-1.6 ms).  A leak of 1 KiB per write at 200 writes/s is 12 MiB a
 * minute, well past the RSS bound in a 10-minute run.  --soak-check loose
 * (for sanitizer builds, whose allocator holds freed memory back in a
 * quarantine of up to 256 MiB, and whose latencies mean little) allows
 * 256 MiB of RSS and judges no latency.  Returns -1 when a bound is broken.
 *
 * Ownership: everything is local to the run; a stream is released (and
 * opened again) only once no batch of it is pending.
 */
#include "bench.h"
#include "grpc_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_METHOD "/base.v1.Data/ReadRelationships"
#define WATCH_METHOD "/base.v1.Watch/Watch"
#define NAME_LEN 96
#define SAMPLE_NS 1000000000LL /* /proc readings */
#define WINDOW_MAX_S 60.0
#define RSS_SLACK_KIB (16 * 1024)
#define RSS_SLACK_LOOSE_KIB (256 * 1024)
#define RSS_SLACK_PCT 10
#define FDS_SLACK 4

typedef struct {
  bench_samples_t wr, rd; /* latencies of the calls answered in the window */
  long rss_max, fds_max;  /* -1: no reading */
  uint64_t writes, reads, opened, changes;
} window_t;

typedef struct soak_s soak_t;

typedef struct {
  bench_unary_t u;
  soak_t *soak;
  int active;
} reader_t;

typedef struct {
  bench_stream_t st;
  soak_t *soak;
  int tenant, open;
  uint64_t changes;
} watcher_t;

struct soak_s {
  const bench_opts_t *o;
  bench_client_t *c;
  int n_tenants;
  char (*tenant)[NAME_LEN], (*last_key)[NAME_LEN];
  const char **tenant_ptrs;
  reader_t *readers;
  watcher_t *watchers;
  window_t *win;
  int n_win, printed;
  int64_t start_ns, end_ns, win_ns, next_sample_ns, next_read_ns, read_every_ns;
  uint64_t turn, read_errors, watch_errors;
  char first_error[256];
};

void bench_tenant_name(const bench_opts_t *o, int i, char *buf, size_t size) {
  if (o->tenants <= 1)
    snprintf(buf, size, "%s", o->tenant);
  else
    snprintf(buf, size, "%s-%d", o->tenant, i);
}

static window_t *window_at(soak_t *s, int64_t t) {
  int64_t i = (t - s->start_ns) / s->win_ns;
  return &s->win[i < 0 ? 0 : i >= s->n_win ? s->n_win - 1 : i];
}

static void note_error(soak_t *s, const char *what, int status, const char *details) {
  if (!s->first_error[0])
    snprintf(s->first_error, sizeof s->first_error, "%s: status %d: %s", what, status,
             details ? details : "");
}

/* ---- reads ------------------------------------------------------------------- */

static void read_done(bench_unary_t *u, grpc_status_code status, grpc_byte_buffer *resp,
                      const char *details);

static void read_start(reader_t *rd) {
  soak_t *s = rd->soak;
  int t = (int)(s->turn++ % (uint64_t)s->n_tenants);
  char *ids[] = {s->last_key[t]};
  Base__V1__EntityFilter ef = BASE__V1__ENTITY_FILTER__INIT;
  ef.type = "repository";
  ef.ids = ids;
  ef.n_ids = 1;
  Base__V1__TupleFilter tf = BASE__V1__TUPLE_FILTER__INIT;
  tf.entity = &ef;
  Base__V1__RelationshipReadRequestMetadata md = BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT;
  Base__V1__RelationshipReadRequest req = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT;
  req.tenant_id = s->tenant[t];
  req.metadata = &md;
  req.filter = &tf;
  req.page_size = 10;
  int conn = (int)(s->turn % (uint64_t)bench_client_connections(s->c));
  rd->active = bench_unary_start(s->c, conn, &rd->u, READ_METHOD, &req.base, read_done, rd) == 0;
  if (!rd->active) s->read_errors++, note_error(s, "read", -1, "start_batch failed");
}

static void read_done(bench_unary_t *u, grpc_status_code status, grpc_byte_buffer *resp,
                      const char *details) {
  (void)resp;
  reader_t *rd = u->arg;
  soak_t *s = rd->soak;
  int64_t now = bench_now_ns();
  rd->active = 0;
  if (status == GRPC_STATUS_OK) {
    window_t *w = window_at(s, now);
    w->reads++;
    bench_samples_add(&w->rd, now - u->started_ns);
  } else {
    s->read_errors++;
    note_error(s, "read", status, details);
  }
}

/* Starts the reads that are due on idle readers; with none idle, the due
 * ones are dropped (the load stays what it was). */
static void reads_turn(soak_t *s, int64_t now) {
  for (int i = 0; i < s->o->readers && now >= s->next_read_ns && now < s->end_ns; i++) {
    if (s->readers[i].active) continue;
    read_start(&s->readers[i]);
    s->next_read_ns += s->read_every_ns;
  }
  if (now >= s->next_read_ns) s->next_read_ns = now + s->read_every_ns;
}

/* ---- watches ----------------------------------------------------------------- */

static void on_watch_msg(bench_stream_t *st, grpc_byte_buffer *bb) {
  watcher_t *wt = st->arg;
  Base__V1__WatchResponse *m = (void *)tc_grpc_unpack(&base__v1__watch_response__descriptor, bb);
  if (!m) return;
  if (m->changes && m->changes->n_data_changes > 0) {
    window_at(wt->soak, bench_now_ns())->changes++;
    if (++wt->changes == (uint64_t)wt->soak->o->stream_changes) bench_stream_cancel(st);
  }
  protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void on_watch_end(bench_stream_t *st) {
  watcher_t *wt = st->arg;
  if (st->rpc.status == GRPC_STATUS_CANCELLED) return;
  char *d = strndup((const char *)GRPC_SLICE_START_PTR(st->rpc.details),
                    GRPC_SLICE_LENGTH(st->rpc.details));
  wt->soak->watch_errors++;
  note_error(wt->soak, "watch ended", (int)st->rpc.status, d);
  free(d);
}

static void watch_open(watcher_t *wt, int64_t now) {
  soak_t *s = wt->soak;
  Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
  req.tenant_id = s->tenant[wt->tenant];
  memset(&wt->st, 0, sizeof wt->st);
  wt->st.on_msg = on_watch_msg;
  wt->st.on_end = on_watch_end;
  wt->changes = 0;
  int conn = (int)(wt - s->watchers) % bench_client_connections(s->c);
  wt->open = bench_stream_start(s->c, conn, &wt->st, WATCH_METHOD, &req.base, wt) == 0;
  if (wt->open)
    window_at(s, now)->opened++;
  else
    s->watch_errors++, note_error(s, "watch", -1, "start_batch failed");
}

/* Releases the streams that are over; opens them again until the end. */
static void watches_turn(soak_t *s, int64_t now) {
  for (int i = 0; i < s->o->watchers; i++) {
    watcher_t *wt = &s->watchers[i];
    if (wt->open && !(wt->st.ended && !wt->st.recv_pending)) continue;
    if (wt->open) bench_stream_release(&wt->st);
    wt->open = 0;
    if (now < s->end_ns) watch_open(wt, now);
  }
}

/* ---- the writer's hooks: acknowledgements, readings, progress ----------------- */

static void on_ack(bench_writer_t *w, uint64_t seq, const char *key, int64_t issued_ns,
                   int64_t ack_ns) {
  soak_t *s = w->arg;
  window_t *win = window_at(s, ack_ns);
  win->writes++;
  bench_samples_add(&win->wr, ack_ns - issued_ns);
  snprintf(s->last_key[seq % (uint64_t)s->n_tenants], NAME_LEN, "%s", key);
}

static double ms(int64_t ns) { return (double)ns / 1e6; }

static void print_window(soak_t *s, int i) {
  window_t *w = &s->win[i];
  printf(
      "soak window %d/%d (%.0f-%.0f s): rss %.1f MiB, fds %ld, writes %llu p50 %.2f p99 "
      "%.2f ms, reads %llu p50 %.2f p99 %.2f ms, streams opened %llu, changes %llu\n",
      i + 1, s->n_win, (double)i * ms(s->win_ns) / 1e3, (double)(i + 1) * ms(s->win_ns) / 1e3,
      (double)w->rss_max / 1024, w->fds_max, (unsigned long long)w->writes,
      ms(bench_samples_pct(&w->wr, 50)), ms(bench_samples_pct(&w->wr, 99)),
      (unsigned long long)w->reads, ms(bench_samples_pct(&w->rd, 50)),
      ms(bench_samples_pct(&w->rd, 99)), (unsigned long long)w->opened,
      (unsigned long long)w->changes);
  fflush(stdout);
}

static void on_tick(bench_writer_t *w, int64_t now) {
  soak_t *s = w->arg;
  watches_turn(s, now);
  reads_turn(s, now);
  if (now >= s->next_sample_ns) {
    s->next_sample_ns = now + SAMPLE_NS;
    window_t *win = window_at(s, now);
    long rss = bench_proc_rss_kib(s->o->server_pid), fds = bench_proc_fds(s->o->server_pid);
    if (rss > win->rss_max) win->rss_max = rss;
    if (fds > win->fds_max) win->fds_max = fds;
  }
  int current = (int)(window_at(s, now) - s->win);
  while (s->printed < current) print_window(s, s->printed++);
}

/* ---- the verdict --------------------------------------------------------------- */

/* Appends why to verdict when value > limit. */
static void bound(char *verdict, size_t size, const char *what, double value, double limit) {
  if (value <= limit) return;
  size_t n = strlen(verdict);
  snprintf(verdict + n, size - n, "%s%s %.2f > %.2f", n ? "; " : "", what, value, limit);
}

static void latency_bounds(char *v, size_t size, const char *what, bench_samples_t *a,
                           bench_samples_t *b) {
  char name[64];
  snprintf(name, sizeof name, "%s p50 ms", what);
  bound(v, size, name, ms(bench_samples_pct(b, 50)), 2 * ms(bench_samples_pct(a, 50)) + 1);
  snprintf(name, sizeof name, "%s p99 ms", what);
  bound(v, size, name, ms(bench_samples_pct(b, 99)), 5 * ms(bench_samples_pct(a, 99)) + 250);
}

static int verdict(soak_t *s, const bench_writer_t *w, bench_report_t *r) {
  window_t *a = &s->win[1], *b = &s->win[s->n_win - 1];
  char v[1024] = "";
  int loose = s->o->soak_check && !strcmp(s->o->soak_check, "loose");
  double slack = (double)a->rss_max * RSS_SLACK_PCT / 100;
  if (slack < RSS_SLACK_KIB) slack = RSS_SLACK_KIB;
  bound(v, sizeof v, "rss KiB", (double)b->rss_max,
        (double)a->rss_max + (loose ? RSS_SLACK_LOOSE_KIB : slack));
  bound(v, sizeof v, "fds", (double)b->fds_max, (double)(a->fds_max + FDS_SLACK));
  if (!loose) {
    latency_bounds(v, sizeof v, "write", &a->wr, &b->wr);
    latency_bounds(v, sizeof v, "read", &a->rd, &b->rd);
  }
  bound(v, sizeof v, "errors", (double)(w->errors + s->read_errors + s->watch_errors), 0);
  if (a->rss_max < 0 || b->fds_max < 0) bound(v, sizeof v, "unread /proc", 1, 0);
  bench_report_num(r, "rss_start_kib", (double)a->rss_max, 0);
  bench_report_num(r, "rss_end_kib", (double)b->rss_max, 0);
  bench_report_num(r, "fds_start", (double)a->fds_max, 0);
  bench_report_num(r, "fds_end", (double)b->fds_max, 0);
  bench_report_latency(r, "write_start", &a->wr);
  bench_report_latency(r, "write_end", &b->wr);
  bench_report_latency(r, "read_start", &a->rd);
  bench_report_latency(r, "read_end", &b->rd);
  bench_report_str(r, "verdict", v[0] ? v : "flat");
  printf("soak verdict: %s%s\n", v[0] ? "NOT FLAT: " : "", v[0] ? v : "flat");
  return v[0] ? -1 : 0;
}

/* ---- the run --------------------------------------------------------------------- */

/* Writes o->preload tuples before the timed run; -1 if any write failed. */
static int preload(soak_t *s, bench_report_t *r) {
  const bench_opts_t *o = s->o;
  if (o->preload <= 0) return 0;
  bench_opts_t po = *o;
  po.batch = 1000;
  po.concurrency = 4;
  bench_writer_t w = {.client = s->c, .opts = &po, .limit = (uint64_t)(o->preload + 999) / 1000};
  w.tenants = s->tenant_ptrs;
  w.n_tenants = (size_t)s->n_tenants;
  w.end_ns = bench_now_ns() + (int64_t)3600 * 1000000000;
  int rc = bench_writer_run(&w);
  double took = (double)(w.last_ack_ns - w.start_ns) / 1e9;
  printf("soak preload: %llu tuples in %.1f s\n", (unsigned long long)w.acked * 1000, took);
  bench_report_num(r, "preload_tuples", (double)w.acked * 1000, 0);
  bench_report_num(r, "preload_s", took, 1);
  if (w.errors) {
    fprintf(stderr, "tuplecast-bench: soak preload: %s\n", w.first_error);
    rc = -1;
  }
  bench_writer_release(&w);
  return rc;
}

static void report_totals(soak_t *s, const bench_writer_t *w, bench_report_t *r) {
  uint64_t reads = 0, opened = 0, changes = 0;
  for (int i = 0; i < s->n_win; i++)
    reads += s->win[i].reads, opened += s->win[i].opened, changes += s->win[i].changes;
  bench_report_num(r, "tenants", s->n_tenants, 0);
  bench_report_num(r, "duration_s", s->o->duration, 1);
  bench_report_num(r, "window_s", ms(s->win_ns) / 1e3, 1);
  bench_report_num(r, "writes", (double)w->acked, 0);
  bench_report_num(r, "write_errors", (double)w->errors, 0);
  bench_report_num(r, "reads", (double)reads, 0);
  bench_report_num(r, "read_errors", (double)s->read_errors, 0);
  bench_report_num(r, "watch_streams_opened", (double)opened, 0);
  bench_report_num(r, "watch_changes", (double)changes, 0);
  bench_report_num(r, "watch_errors", (double)s->watch_errors, 0);
  const char *first = w->first_error[0] ? w->first_error : s->first_error;
  if (first[0]) bench_report_str(r, "first_error", first);
}

/* Cancels the streams and waits for every call to be over. */
static int wind_down(soak_t *s) {
  int64_t until = bench_now_ns() + (int64_t)BENCH_WAIT_S * 1000000000;
  for (int i = 0; i < s->o->watchers; i++)
    if (s->watchers[i].open) bench_stream_cancel(&s->watchers[i].st);
  for (;;) {
    watches_turn(s, bench_now_ns());
    int busy = 0;
    for (int i = 0; i < s->o->readers; i++) busy |= s->readers[i].active;
    for (int i = 0; i < s->o->watchers; i++) busy |= s->watchers[i].open;
    if (!busy) return 0;
    if (bench_client_poll(s->c, bench_now_ns() + 100000000) < 0 && bench_now_ns() >= until)
      return -1;
  }
}

static void soak_init(soak_t *s, const bench_opts_t *o, bench_client_t *c) {
  s->o = o;
  s->c = c;
  s->n_tenants = o->tenants > 1 ? o->tenants : 1;
  s->tenant = calloc((size_t)s->n_tenants, sizeof *s->tenant);
  s->last_key = calloc((size_t)s->n_tenants, sizeof *s->last_key);
  s->tenant_ptrs = calloc((size_t)s->n_tenants, sizeof *s->tenant_ptrs);
  for (int i = 0; i < s->n_tenants; i++) {
    bench_tenant_name(o, i, s->tenant[i], NAME_LEN);
    s->tenant_ptrs[i] = s->tenant[i];
    snprintf(s->last_key[i], NAME_LEN, "none-yet");
  }
  double win_s = o->duration / 4 < WINDOW_MAX_S ? o->duration / 4 : WINDOW_MAX_S;
  s->win_ns = (int64_t)(win_s * 1e9);
  s->n_win = (int)((o->duration + win_s / 2) / win_s);
  s->win = calloc((size_t)s->n_win, sizeof *s->win);
  for (int i = 0; i < s->n_win; i++) s->win[i].rss_max = s->win[i].fds_max = -1;
  s->readers = calloc((size_t)o->readers, sizeof *s->readers);
  s->watchers = calloc((size_t)o->watchers, sizeof *s->watchers);
  for (int i = 0; i < o->readers; i++) s->readers[i].soak = s;
  for (int i = 0; i < o->watchers; i++)
    s->watchers[i] = (watcher_t){.soak = s, .tenant = i % s->n_tenants};
}

static void soak_free(soak_t *s) {
  for (int i = 0; i < s->n_win; i++) {
    bench_samples_free(&s->win[i].wr);
    bench_samples_free(&s->win[i].rd);
  }
  free(s->win);
  free(s->readers);
  free(s->watchers);
  free(s->tenant);
  free(s->last_key);
  free(s->tenant_ptrs);
}

int bench_scenario_soak(const bench_opts_t *o, bench_client_t *c, bench_report_t *r) {
  if (o->server_pid <= 0 || o->duration < 4 ||
      (o->soak_check && strcmp(o->soak_check, "strict") && strcmp(o->soak_check, "loose"))) {
    fputs(
        "tuplecast-bench: soak needs --server-pid, --duration >= 4 and --soak-check "
        "strict or loose\n",
        stderr);
    return -1;
  }
  soak_t s = {0};
  soak_init(&s, o, c);
  bench_report_num(r, "rate_per_s", o->rate, 1);
  bench_report_num(r, "read_rate_per_s", o->read_rate, 1);
  bench_report_num(r, "readers", o->readers, 0);
  bench_report_num(r, "watchers", o->watchers, 0);
  bench_report_str(r, "soak_check", o->soak_check ? o->soak_check : "strict");
  bench_writer_t w = {.client = c, .opts = o, .rate = o->rate, .on_ack = on_ack, .arg = &s};
  w.tenants = s.tenant_ptrs;
  w.n_tenants = (size_t)s.n_tenants;
  w.on_tick = on_tick;
  if (preload(&s, r) < 0) {
    soak_free(&s);
    return -1;
  }
  s.start_ns = bench_now_ns();
  s.end_ns = s.start_ns + (int64_t)s.n_win * s.win_ns;
  w.end_ns = s.end_ns;
  s.next_read_ns = s.start_ns;
  s.read_every_ns = (int64_t)(1e9 / o->read_rate);
  int rc = bench_writer_run(&w);
  if (wind_down(&s) < 0) rc = -1;
  while (s.printed < s.n_win) print_window(&s, s.printed++);
  report_totals(&s, &w, r);
  if (verdict(&s, &w, r) < 0) rc = -1;
  bench_writer_release(&w);
  soak_free(&s);
  return rc;
}
