/* The Watch scenarios: watch-latency (W watchers while writes run at a
 * rate), fan-out (N idle streams, then one write at a time to all of them)
 * and catch-up (one stream resuming from a token --history transactions
 * back).  All three use the watch set below: streams spread over the
 * client's connections, counting what they deliver.
 *
 * Ownership: a watch set owns its watchers, their receipts and the token
 * table (watch_close); everything else is local to a scenario run.
 */
#include "bench.h"
#include "grpc_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WATCH_METHOD "/base.v1.Watch/Watch"
#define LIST_METHOD "/base.v1.Schema/List"
#define TAIL_WAIT_S 5 /* after the last write, for its messages to arrive */
#define SETTLE_MS 500 /* before reading RSS, for the server to settle */

/* ---- snap tokens as small integers ----------------------------------------- */

typedef struct {
  char **keys;
  uint32_t *slots; /* id + 1; 0 is empty */
  size_t n, cap;   /* keys; slots (a power of two) */
} intern_t;

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static uint32_t intern(intern_t *t, const char *s) {
  if (2 * (t->n + 1) > t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 1024;
    uint32_t *slots = calloc(cap, sizeof *slots);
    for (size_t i = 0; i < t->cap; i++) {
      if (!t->slots[i]) continue;
      size_t j = fnv1a(t->keys[t->slots[i] - 1]) & (cap - 1);
      while (slots[j]) j = (j + 1) & (cap - 1);
      slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    t->keys = realloc(t->keys, cap / 2 * sizeof *t->keys);
  }
  size_t j = fnv1a(s) & (t->cap - 1);
  for (; t->slots[j]; j = (j + 1) & (t->cap - 1))
    if (!strcmp(t->keys[t->slots[j] - 1], s)) return t->slots[j] - 1;
  t->keys[t->n] = strdup(s);
  t->slots[j] = (uint32_t)++t->n;
  return (uint32_t)(t->n - 1);
}

static void intern_free(intern_t *t) {
  for (size_t i = 0; i < t->n; i++) free(t->keys[i]);
  free(t->keys);
  free(t->slots);
}

/* ---- the watch set ---------------------------------------------------------- */

typedef struct {
  uint32_t token;
  int64_t at_ns;
} receipt_t;

typedef struct watch_set_s watch_set_t;
typedef struct {
  bench_stream_t s;
  watch_set_t *set;
  int ready; /* its first checkpoint arrived */
  receipt_t *rc;
  size_t n_rc, cap_rc;
} watcher_t;

struct watch_set_s {
  watcher_t *w;
  size_t n, started, ready, ended;
  uint64_t delivered, changes; /* transaction messages and their changes, all streams */
  int64_t last_delivery_ns;
  int record; /* keep every receipt (watch-latency) */
  intern_t tokens;
  const char *const *tenants; /* NULL: every stream on o->tenant; else stream i on tenants[i] */
  char first_end[256];        /* the first stream that ended other than cancelled */
};

/* What a message is matched to its write by: the entity id of its first
 * tuple, unique per bench write (bench_ack_fn), whatever token the server
 * sends with it. */
static const char *change_key(const Base__V1__DataChanges *c) {
  const Base__V1__DataChange *d = c->data_changes[0];
  if (d->type_case == BASE__V1__DATA_CHANGE__TYPE_TUPLE && d->tuple && d->tuple->entity)
    return d->tuple->entity->id;
  return c->snap_token; /* an attribute: not the bench's; counted as foreign */
}

static void on_watch_msg(bench_stream_t *s, grpc_byte_buffer *bb) {
  watcher_t *w = s->arg;
  watch_set_t *set = w->set;
  int64_t now = bench_now_ns();
  Base__V1__WatchResponse *m = (void *)tc_grpc_unpack(&base__v1__watch_response__descriptor, bb);
  if (!m) return;
  if (!m->changes || m->changes->n_data_changes == 0) { /* a checkpoint */
    if (!w->ready) set->ready++;
    w->ready = 1;
  } else {
    set->delivered++;
    set->changes += m->changes->n_data_changes;
    set->last_delivery_ns = now;
    if (set->record) {
      if (w->n_rc == w->cap_rc) {
        w->cap_rc = w->cap_rc ? 2 * w->cap_rc : 256;
        w->rc = realloc(w->rc, w->cap_rc * sizeof *w->rc);
      }
      w->rc[w->n_rc++] = (receipt_t){intern(&set->tokens, change_key(m->changes)), now};
    }
  }
  protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void on_watch_end(bench_stream_t *s) {
  watcher_t *w = s->arg;
  w->set->ended++;
  if (s->rpc.status != GRPC_STATUS_CANCELLED && !w->set->first_end[0]) {
    char *d = strndup((const char *)GRPC_SLICE_START_PTR(s->rpc.details),
                      GRPC_SLICE_LENGTH(s->rpc.details));
    snprintf(w->set->first_end, sizeof w->set->first_end, "watch ended: status %d: %s",
             (int)s->rpc.status, d);
    free(d);
  }
}

static int64_t after_s(double s) { return bench_now_ns() + (int64_t)(s * 1e9); }

/* Polls until cond(set, arg) holds, every stream has ended, or until_ns. */
static int watch_wait(watch_set_t *set, bench_client_t *c, int64_t until_ns,
                      int (*cond)(const watch_set_t *, uint64_t), uint64_t arg) {
  while (!cond(set, arg)) {
    if (set->ended == set->started) return -1;
    if (bench_client_poll(c, until_ns) < 0) return -1;
  }
  return 0;
}

static int all_ready(const watch_set_t *set, uint64_t unused) {
  (void)unused;
  return set->ready == set->n;
}

static int started_ready(const watch_set_t *set, uint64_t unused) {
  (void)unused;
  return set->ready == set->started;
}

/* Never true: the wait runs to its deadline unless every stream ends. */
static int none_ended(const watch_set_t *set, uint64_t unused) {
  (void)set, (void)unused;
  return 0;
}

static int delivered_at_least(const watch_set_t *set, uint64_t n) { return set->delivered >= n; }

/* Opens n streams from token `from` over every connection (o->open_wave at a
 * time, each wave waiting for its checkpoints, if set).  With a checkpoint
 * interval, waits for each stream's first checkpoint, so all are in place;
 * -1 if one failed or BENCH_WAIT_S passed. */
static int watch_open(watch_set_t *set, bench_client_t *c, const bench_opts_t *o, size_t n,
                      const char *from, uint32_t checkpoint_s) {
  set->w = calloc(n, sizeof *set->w);
  set->n = n;
  Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
  req.tenant_id = (char *)o->tenant;
  req.snap_token = (char *)from;
  req.checkpoint_interval_seconds = checkpoint_s;
  for (size_t i = 0; i < n; i++) {
    watcher_t *w = &set->w[i];
    w->set = set;
    w->s.on_msg = on_watch_msg;
    w->s.on_end = on_watch_end;
    if (set->tenants) req.tenant_id = (char *)set->tenants[i];
    int rc = bench_stream_start(c, (int)(i % (size_t)bench_client_connections(c)), &w->s,
                                WATCH_METHOD, &req.base, w);
    if (w->s.rpc.call) set->started++;
    if (rc < 0) {
      snprintf(set->first_end, sizeof set->first_end, "watch %zu: start_batch failed", i);
      return -1;
    }
    int wave_done = o->open_wave && (i + 1) % (size_t)o->open_wave == 0 && i + 1 < n;
    if (wave_done && checkpoint_s && !(o->settle > 0) &&
        watch_wait(set, c, after_s(BENCH_WAIT_S), started_ready, 0) < 0)
      return -1;
  }
  if (!checkpoint_s) return 0;
  if (o->settle > 0) {
    /* No checkpoint will come (Permify ignores the field): give the server
     * the time to register every stream, then go on unless one ended. */
    watch_wait(set, c, after_s(o->settle), none_ended, 0);
    set->ready = set->ended ? 0 : set->n;
    return set->ended ? -1 : 0;
  }
  return watch_wait(set, c, after_s(BENCH_WAIT_S), all_ready, 0);
}

static void watch_close(watch_set_t *set, bench_client_t *c) {
  for (size_t i = 0; i < set->started; i++) bench_stream_cancel(&set->w[i].s);
  if (bench_client_drain(c, after_s(BENCH_WAIT_S)) < 0) {
    /* A batch still pending would write into freed memory: keep it. */
    fprintf(stderr, "tuplecast-bench: streams did not close within %d s\n", BENCH_WAIT_S);
    return;
  }
  for (size_t i = 0; i < set->started; i++) {
    bench_stream_release(&set->w[i].s);
    free(set->w[i].rc);
  }
  free(set->w);
  intern_free(&set->tokens);
}

static void report_streams(bench_report_t *r, const watch_set_t *set) {
  bench_report_num(r, "streams_ready", (double)set->ready, 0);
  bench_report_num(r, "streams_ended", (double)set->ended, 0);
  if (set->first_end[0]) bench_report_str(r, "first_error", set->first_end);
}

/* ---- watch-latency ---------------------------------------------------------- */

typedef struct {
  uint32_t token;
  int64_t issued_ns, ack_ns;
} ack_t;

typedef struct {
  watch_set_t *set;
  ack_t *acks; /* by writer seq; ack_ns 0 until acknowledged */
  size_t cap;
} latency_run_t;

static void on_latency_ack(bench_writer_t *w, uint64_t seq, const char *key, int64_t issued_ns,
                           int64_t ack_ns) {
  latency_run_t *lr = w->arg;
  if (seq >= lr->cap) {
    size_t cap = lr->cap ? 2 * lr->cap : 1024;
    while (cap <= seq) cap *= 2;
    lr->acks = realloc(lr->acks, cap * sizeof *lr->acks);
    memset(lr->acks + lr->cap, 0, (cap - lr->cap) * sizeof *lr->acks);
    lr->cap = cap;
  }
  lr->acks[seq] = (ack_t){intern(&lr->set->tokens, key), issued_ns, ack_ns};
}

typedef struct {
  uint64_t missing, duplicate, out_of_order, foreign, before_ack;
} check_t;

/* Each interned token's call seq (-1 where no acknowledged call has it),
 * malloc'd; *acked (n_acked counters, counted by seq mod n_acked) the
 * acknowledged calls. */
static int64_t *seq_by_token(const latency_run_t *lr, uint64_t issued, uint64_t *acked,
                             size_t n_acked) {
  int64_t *seq_of = malloc((lr->set->tokens.n + 1) * sizeof *seq_of);
  for (size_t t = 0; t < lr->set->tokens.n; t++) seq_of[t] = -1;
  for (uint64_t s = 0; s < issued && s < lr->cap; s++)
    if (lr->acks[s].ack_ns) {
      seq_of[lr->acks[s].token] = (int64_t)s;
      acked[s % n_acked]++;
    }
  return seq_of;
}

/* Whether a watcher's receipt of call s counts: not when it is foreign or
 * already seen by this watcher (each counted in ck). */
static int fresh_receipt(int64_t s, int foreign, unsigned char *seen, check_t *ck) {
  if (foreign) {
    ck->foreign++;
    return 0;
  }
  if (seen[s]) {
    ck->duplicate++;
    return 0;
  }
  seen[s] = 1;
  return 1;
}

/* Every watcher must get every acknowledged write once, in one order for
 * all: the first watcher's order is the reference, and it must itself
 * respect real time (a write acknowledged before another was issued comes
 * first). */
static void check_receipts(const latency_run_t *lr, uint64_t issued, bench_samples_t *lat,
                           check_t *ck) {
  const watch_set_t *set = lr->set;
  uint64_t acked = 0;
  int64_t *seq_of = seq_by_token(lr, issued, &acked, 1);
  int64_t *ref_pos = malloc((issued + 1) * sizeof *ref_pos);
  unsigned char *seen = malloc(issued + 1);
  for (uint64_t s = 0; s <= issued; s++) ref_pos[s] = -1;
  for (size_t wi = 0; wi < set->n; wi++) {
    const watcher_t *w = &set->w[wi];
    memset(seen, 0, issued + 1);
    int64_t prev = -1, pos = 0;
    uint64_t distinct = 0;
    for (size_t i = 0; i < w->n_rc; i++) {
      int64_t s = seq_of[w->rc[i].token];
      if (!fresh_receipt(s, s < 0, seen, ck)) continue;
      distinct++;
      const ack_t *a = &lr->acks[s];
      if (wi == 0) {
        if (prev >= 0 && a->ack_ns < lr->acks[prev].issued_ns) ck->out_of_order++;
        ref_pos[s] = pos++;
        prev = s;
      } else if (ref_pos[s] >= 0) {
        if (prev >= 0 && ref_pos[s] < ref_pos[prev])
          ck->out_of_order++;
        else
          prev = s;
      }
      int64_t d = w->rc[i].at_ns - a->ack_ns;
      if (d < 0) ck->before_ack++;
      bench_samples_add(lat, d);
    }
    ck->missing += acked - distinct;
  }
  free(seen);
  free(ref_pos);
  free(seq_of);
}

static void report_checks(bench_report_t *r, const check_t *ck) {
  bench_report_num(r, "missing", (double)ck->missing, 0);
  bench_report_num(r, "duplicate", (double)ck->duplicate, 0);
  bench_report_num(r, "out_of_order", (double)ck->out_of_order, 0);
  bench_report_num(r, "foreign", (double)ck->foreign, 0);
  bench_report_num(r, "received_before_ack", (double)ck->before_ack, 0);
}

/* A latency run's figures: the writes, both latencies and the receipt checks. */
static void report_latency_run(bench_report_t *r, bench_writer_t *w, bench_samples_t *lat,
                               const check_t *ck) {
  double wall = (double)(w->last_ack_ns - w->start_ns) / 1e9;
  bench_report_num(r, "writes", (double)w->acked, 0);
  bench_report_num(r, "write_errors", (double)w->errors, 0);
  bench_report_num(r, "writes_per_s", wall > 0 ? (double)w->acked / wall : 0, 1);
  bench_report_latency(r, "write_latency", &w->latency);
  bench_report_latency(r, "watch_latency", lat);
  report_checks(r, ck);
  if (w->first_error[0]) bench_report_str(r, "write_first_error", w->first_error);
}

int bench_scenario_watch_latency(const bench_opts_t *o, bench_client_t *c, bench_report_t *r) {
  bench_report_num(r, "watchers", o->watchers, 0);
  bench_report_num(r, "rate_per_s", o->rate, 1);
  bench_report_num(r, "duration_s", o->duration, 1);
  watch_set_t set = {.record = 1};
  int rc = watch_open(&set, c, o, (size_t)o->watchers, "", 3600);
  latency_run_t lr = {.set = &set};
  bench_writer_t w = {
      .client = c, .opts = o, .rate = o->rate, .on_ack = on_latency_ack, .arg = &lr};
  bench_samples_t lat = {0};
  check_t ck = {0};
  if (rc == 0) {
    bench_cpu_mark_t cpu = bench_cpu_mark(o);
    w.end_ns = after_s(o->duration);
    rc = bench_writer_run(&w);
    watch_wait(&set, c, after_s(TAIL_WAIT_S), delivered_at_least, w.acked * set.n);
    bench_report_cpu(r, o, cpu);
    check_receipts(&lr, w.issued, &lat, &ck);
    report_latency_run(r, &w, &lat, &ck);
  }
  report_streams(r, &set);
  watch_close(&set, c);
  free(lr.acks);
  bench_samples_free(&lat);
  bench_writer_release(&w);
  return rc;
}

/* ---- fan-out ------------------------------------------------------------------ */

static void connected(bench_unary_t *u, grpc_status_code status, grpc_byte_buffer *resp,
                      const char *details) {
  (void)u, (void)status, (void)resp, (void)details;
}

/* One cheap call per connection, so every connection is up. */
static int connect_all(bench_client_t *c, const bench_opts_t *o) {
  int n = bench_client_connections(c);
  bench_unary_t *u = calloc((size_t)n, sizeof *u);
  Base__V1__SchemaListRequest req = BASE__V1__SCHEMA_LIST_REQUEST__INIT;
  req.tenant_id = (char *)o->tenant;
  req.page_size = 1;
  for (int i = 0; i < n; i++)
    bench_unary_start(c, i, &u[i], LIST_METHOD, &req.base, connected, NULL);
  int rc = bench_client_drain(c, after_s(BENCH_WAIT_S));
  if (rc == 0) free(u); /* else a call may still write into u */
  return rc;
}

static void settle(void) {
  struct timespec ts = {.tv_sec = SETTLE_MS / 1000, .tv_nsec = (SETTLE_MS % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int bench_scenario_fan_out(const bench_opts_t *o, bench_client_t *c, bench_report_t *r) {
  bench_report_num(r, "streams", o->streams, 0);
  bench_report_num(r, "rounds", o->rounds, 0);
  watch_set_t set = {0};
  if (connect_all(c, o) < 0) return -1;
  settle();
  long rss0 = o->server_pid ? bench_proc_rss_kib(o->server_pid) : -1;
  long own0 = bench_proc_rss_kib(getpid());
  int64_t t_open = bench_now_ns();
  int rc = watch_open(&set, c, o, (size_t)o->streams, "", 3600);
  bench_report_num(r, "open_all_ms", (double)(bench_now_ns() - t_open) / 1e6, 1);
  if (rc == 0) {
    settle();
    long rss1 = o->server_pid ? bench_proc_rss_kib(o->server_pid) : -1;
    if (rss0 >= 0 && rss1 >= 0) {
      bench_report_num(r, "server_rss_before_kib", (double)rss0, 0);
      bench_report_num(r, "server_rss_after_kib", (double)rss1, 0);
      bench_report_num(r, "server_kib_per_stream", (double)(rss1 - rss0) / o->streams, 2);
    }
    /* The bench's own cost, to size a client for many streams. */
    long own1 = bench_proc_rss_kib(getpid());
    if (own0 >= 0 && own1 >= 0)
      bench_report_num(r, "client_kib_per_stream", (double)(own1 - own0) / o->streams, 2);
    bench_samples_t from_write = {0}, from_ack = {0};
    bench_cpu_mark_t cpu = bench_cpu_mark(o);
    for (int round = 0; round < o->rounds && rc == 0; round++) {
      char *token = NULL;
      int64_t t0 = bench_now_ns();
      rc = bench_write_one(c, o, &token);
      int64_t t_ack = bench_now_ns();
      free(token);
      if (rc == 0)
        rc = watch_wait(&set, c, after_s(BENCH_WAIT_S), delivered_at_least,
                        (uint64_t)(round + 1) * set.n);
      if (rc == 0) {
        bench_samples_add(&from_write, set.last_delivery_ns - t0);
        bench_samples_add(&from_ack, set.last_delivery_ns - t_ack);
      }
    }
    bench_report_cpu(r, o, cpu);
    bench_report_num(r, "delivered", (double)set.delivered, 0);
    bench_report_latency(r, "last_from_write", &from_write);
    bench_report_latency(r, "last_from_ack", &from_ack);
    if (o->server_pid && set.delivered) {
      double cpu_s = bench_proc_cpu_s(o->server_pid) - cpu.server_s;
      bench_report_num(r, "server_cpu_us_per_msg", cpu_s * 1e6 / (double)set.delivered, 2);
    }
    bench_samples_free(&from_write);
    bench_samples_free(&from_ack);
  }
  report_streams(r, &set);
  watch_close(&set, c);
  return rc;
}

/* ---- catch-up ----------------------------------------------------------------- */

int bench_scenario_catch_up(const bench_opts_t *o, bench_client_t *c, bench_report_t *r) {
  bench_report_num(r, "history", o->history, 0);
  bench_report_num(r, "batch", o->batch, 0);
  bench_report_num(r, "concurrency", o->concurrency, 0);
  char *from = NULL;
  if (bench_write_one(c, o, &from) < 0) return -1;
  /* The history's bound grows with it: 1 ms per transaction on top. */
  bench_writer_t w = {.client = c,
                      .opts = o,
                      .limit = (uint64_t)o->history,
                      .end_ns = after_s(BENCH_WAIT_S + o->history / 1000.0)};
  int rc = bench_writer_run(&w);
  double wall = (double)(w.last_ack_ns - w.start_ns) / 1e9;
  bench_report_num(r, "history_writes", (double)w.acked, 0);
  bench_report_num(r, "history_errors", (double)w.errors, 0);
  bench_report_num(r, "history_writes_per_s", wall > 0 ? (double)w.acked / wall : 0, 1);
  watch_set_t set = {0};
  if (rc == 0) {
    long rss0 = o->server_pid ? bench_proc_rss_kib(o->server_pid) : -1;
    bench_cpu_mark_t cpu = bench_cpu_mark(o);
    int64_t t0 = bench_now_ns();
    rc = watch_open(&set, c, o, 1, from, 0);
    if (rc == 0) rc = watch_wait(&set, c, after_s(BENCH_WAIT_S), delivered_at_least, w.acked);
    double s = (double)(set.last_delivery_ns - t0) / 1e9;
    bench_report_cpu(r, o, cpu);
    bench_report_num(r, "transactions", (double)set.delivered, 0);
    bench_report_num(r, "changes", (double)set.changes, 0);
    bench_report_num(r, "catch_up_s", s > 0 ? s : 0, 3);
    bench_report_num(r, "transactions_per_s", s > 0 ? (double)set.delivered / s : 0, 1);
    bench_report_num(r, "changes_per_s", s > 0 ? (double)set.changes / s : 0, 1);
    /* What the catch-up left in the server (its peak is not seen). */
    long rss1 = o->server_pid ? bench_proc_rss_kib(o->server_pid) : -1;
    if (rss0 >= 0 && rss1 >= 0)
      bench_report_num(r, "server_rss_growth_kib", (double)(rss1 - rss0), 0);
  }
  if (w.first_error[0]) bench_report_str(r, "history_first_error", w.first_error);
  report_streams(r, &set);
  watch_close(&set, c);
  bench_writer_release(&w);
  free(from);
  return rc;
}

/* ---- multi-tenant --------------------------------------------------------------- */

/* Watcher i watches tenant i: it must get each acknowledged write of call
 * seq ≡ i (mod n) once, and nothing else, in real-time order (a write
 * acknowledged before another was issued comes first). */
static void check_tenant_receipts(const latency_run_t *lr, uint64_t issued, bench_samples_t *lat,
                                  check_t *ck) {
  const watch_set_t *set = lr->set;
  uint64_t *acked = calloc(set->n, sizeof *acked);
  int64_t *seq_of = seq_by_token(lr, issued, acked, set->n);
  unsigned char *seen = calloc(issued + 1, 1);
  for (size_t wi = 0; wi < set->n; wi++) {
    const watcher_t *w = &set->w[wi];
    int64_t prev = -1;
    uint64_t distinct = 0;
    for (size_t i = 0; i < w->n_rc; i++) {
      int64_t s = seq_of[w->rc[i].token];
      if (!fresh_receipt(s, s < 0 || (size_t)s % set->n != wi, seen, ck)) continue;
      distinct++;
      /* Real-time order: concurrent writes may commit either way round. */
      if (prev >= 0 && lr->acks[s].ack_ns < lr->acks[prev].issued_ns) ck->out_of_order++;
      prev = s;
      int64_t d = w->rc[i].at_ns - lr->acks[s].ack_ns;
      if (d < 0) ck->before_ack++;
      bench_samples_add(lat, d);
    }
    ck->missing += acked[wi] - distinct;
  }
  free(seen);
  free(acked);
  free(seq_of);
}

/* RSS of the server now, after it settled; -1 without --server-pid. */
static long settled_rss(const bench_opts_t *o) {
  settle();
  return o->server_pid ? bench_proc_rss_kib(o->server_pid) : -1;
}

/* The timed part: writes at o->rate spread over the tenants, each watcher
 * receiving its tenant's; the PostgreSQL counts cover exactly this part. */
static int tenants_load(const bench_opts_t *o, bench_client_t *c, bench_report_t *r,
                        watch_set_t *set, const char *const *names) {
  latency_run_t lr = {.set = set};
  bench_writer_t w = {.client = c,
                      .opts = o,
                      .rate = o->rate,
                      .on_ack = on_latency_ack,
                      .arg = &lr,
                      .tenants = names,
                      .n_tenants = set->n};
  bench_samples_t lat = {0};
  check_t ck = {0};
#ifdef BENCH_HAVE_PQ
  if (o->pgstat) bench_pgstat_mark(o->pgstat);
#endif
  bench_cpu_mark_t cpu = bench_cpu_mark(o);
  w.end_ns = after_s(o->duration);
  int rc = bench_writer_run(&w);
  watch_wait(set, c, after_s(TAIL_WAIT_S), delivered_at_least, w.acked);
  bench_report_cpu(r, o, cpu);
#ifdef BENCH_HAVE_PQ
  if (o->pgstat) bench_pgstat_report(o->pgstat, r);
#endif
  check_tenant_receipts(&lr, w.issued, &lat, &ck);
  report_latency_run(r, &w, &lat, &ck);
  free(lr.acks);
  bench_samples_free(&lat);
  bench_writer_release(&w);
  return rc;
}

int bench_scenario_multi_tenant(const bench_opts_t *o, bench_client_t *c, bench_report_t *r) {
  size_t n = (size_t)o->tenants;
  bench_report_num(r, "tenants", (double)n, 0);
  bench_report_num(r, "rate_per_s", o->rate, 1);
  bench_report_num(r, "duration_s", o->duration, 1);
  char(*name)[96] = calloc(n, sizeof *name);
  const char **names = calloc(n, sizeof *names);
  for (size_t i = 0; i < n; i++) {
    bench_tenant_name(o, (int)i, name[i], sizeof name[i]);
    names[i] = name[i];
  }
  watch_set_t set = {.record = 1, .tenants = names};
  int rc = connect_all(c, o);
  long rss0 = rc == 0 ? settled_rss(o) : -1;
  int64_t t_open = bench_now_ns();
  if (rc == 0) rc = watch_open(&set, c, o, n, "", 3600);
  bench_report_num(r, "open_all_ms", (double)(bench_now_ns() - t_open) / 1e6, 1);
  long rss1 = rc == 0 ? settled_rss(o) : -1;
  if (rss0 >= 0 && rss1 >= 0) {
    bench_report_num(r, "server_rss_before_kib", (double)rss0, 0);
    bench_report_num(r, "server_rss_watched_kib", (double)rss1, 0);
    /* A feed and the one stream on it. */
    bench_report_num(r, "server_kib_per_watched_tenant", (double)(rss1 - rss0) / (double)n, 2);
  }
  if (rc == 0) rc = tenants_load(o, c, r, &set, names);
  long rss2 = rc == 0 ? settled_rss(o) : -1;
  if (rss0 >= 0 && rss2 >= 0) {
    bench_report_num(r, "server_rss_after_kib", (double)rss2, 0);
    bench_report_num(r, "server_kib_per_tenant_after", (double)(rss2 - rss0) / (double)n, 2);
  }
  report_streams(r, &set);
  watch_close(&set, c);
  free(names);
  free(name);
  return rc;
}
