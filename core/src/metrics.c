/* Prometheus metrics (core/api/metrics.h, metrics_record.h): the counters,
 * gauges and histograms, in fixed arrays indexed by transport, method and
 * status code, and their rendering in text format 0.0.4.
 *
 * Labels are bounded by construction: methods come from the method table
 * (anything else is "other"), codes from gRPC's 17, transports from the
 * server's, stream end reasons from a fixed list; a backend's labels (pool
 * names, SQLSTATEs) are capped per metric, the rest summed as "other".
 * Nothing is labelled by tenant. */
#include "metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "error.h"
#include "metrics_record.h"
#include "server_state.h"
#include "strbuf.h"

#define MAX_METHODS 31 /* the table's 18 and room; the slot after them is "other" */
#define N_CODES 17
#define N_TRANSPORTS 2

static const char *const TRANSPORTS[N_TRANSPORTS] = {"grpc", "http"};

/* Seconds; the same buckets serve request latency and watch lag. */
static const double BOUNDS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BOUNDS (sizeof BOUNDS / sizeof BOUNDS[0])

/* BOUNDS in nanoseconds, as observations come (uv_hrtime). */
static const uint64_t BOUNDS_NS[N_BOUNDS] = {
    500000,    1000000,   2500000,   5000000,    10000000,   25000000,   50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000};

typedef struct {
  uint64_t le[N_BOUNDS + 1]; /* observations per bucket, not cumulative; last: +Inf */
  uint64_t count;
  uint64_t sum_ns;
} hist_t;

enum { END_SLOW, END_CANCELLED, END_SHUTDOWN, END_HISTORY, END_ERROR, END_OK, N_ENDS };
static const char *const END_REASONS[N_ENDS] = {"slow_consumer",   "cancelled", "shutdown",
                                                "history_expired", "error",     "ok"};

/* The process's metrics: loop thread only (metrics.h). */
static struct {
  uint64_t requests[N_TRANSPORTS][MAX_METHODS + 1][N_CODES];
  hist_t latency[MAX_METHODS + 1];
  uint64_t watch_started, watch_ended[N_ENDS];
  hist_t watch_lag;
  uint64_t stream_msgs[N_TRANSPORTS], stream_bytes[N_TRANSPORTS];
  uint64_t feed_reads[2], feed_rows[2]; /* [0] the feed's own, [1] catch-up */
} m;

static void observe(hist_t *h, uint64_t ns) {
  size_t i = 0;
  while (i < N_BOUNDS && ns > BOUNDS_NS[i]) i++;
  h->le[i]++;
  h->count++;
  h->sum_ns += ns;
}

static int transport_index(const char *name) {
  for (int i = 0; i < N_TRANSPORTS; i++)
    if (name && !strcmp(name, TRANSPORTS[i])) return i;
  return -1;
}

static int method_slot(const tc_method_t *method) {
  int i = tc__method_index(method);
  return i >= 0 && i < MAX_METHODS ? i : MAX_METHODS;
}

static const char *method_name(int slot) {
  const tc_method_t *mt = slot < MAX_METHODS ? tc_method_at((size_t)slot) : NULL;
  return mt ? mt->path : "other";
}

void tc__metrics_call_end(const tc_call_t *call, const char *protocol, int status,
                          uint64_t took_ns) {
  int t = transport_index(protocol);
  int code = tc_err_grpc_status(status);
  int slot = method_slot(call->method);
  if (t < 0 || code < 0 || code >= N_CODES) return;
  m.requests[t][slot][code]++;
  if (call->started_ns && !(call->method && call->method->server_streaming))
    observe(&m.latency[slot], took_ns);
}

void tc__metrics_watch_started(void) { m.watch_started++; }

void tc__metrics_watch_ended(int status, int stopping) {
  int r = stopping                     ? END_SHUTDOWN
          : status == 0                ? END_OK
          : status == TC_EEXHAUSTED    ? END_SLOW
          : status == TC_ECANCELLED    ? END_CANCELLED
          : status == TC_EOUT_OF_RANGE ? END_HISTORY
                                       : END_ERROR;
  m.watch_ended[r]++;
}

void tc__metrics_watch_lag(uint64_t learned_ns) {
  uint64_t now = uv_hrtime();
  observe(&m.watch_lag, now > learned_ns ? now - learned_ns : 0);
}

void tc__metrics_feed_read(int catchup, size_t rows) {
  m.feed_reads[catchup ? 1 : 0]++;
  m.feed_rows[catchup ? 1 : 0] += rows;
}

void tc_metrics_stream_sent(const char *transport, size_t bytes) {
  int t = transport_index(transport);
  if (t < 0) return;
  m.stream_msgs[t]++;
  m.stream_bytes[t] += bytes;
}

/* ---- the text ------------------------------------------------------------ */

static void head(tc__strbuf_t *o, const char *name, const char *type, const char *help) {
  tc__strbuf_putf(o, "# HELP tuplecast_%s %s\n# TYPE tuplecast_%s %s\n", name, help, name, type);
}

/* labels: "" or `a="x",` (a trailing comma, joined before le). */
static void hist(tc__strbuf_t *o, const char *name, const char *labels, const hist_t *h) {
  uint64_t cum = 0;
  for (size_t i = 0; i < N_BOUNDS; i++) {
    cum += h->le[i];
    tc__strbuf_putf(o, "tuplecast_%s_bucket{%sle=\"%g\"} %llu\n", name, labels, BOUNDS[i],
                    (unsigned long long)cum);
  }
  size_t ll = strlen(labels);
  int bare = (int)(ll ? ll - 1 : 0); /* without the trailing comma */
  tc__strbuf_putf(o, "tuplecast_%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
                  (unsigned long long)h->count);
  const char *open = bare ? "{" : "", *close = bare ? "}" : "";
  tc__strbuf_putf(o, "tuplecast_%s_sum%s%.*s%s %.9f\n", name, open, bare, labels, close,
                  (double)h->sum_ns / 1e9);
  tc__strbuf_putf(o, "tuplecast_%s_count%s%.*s%s %llu\n", name, open, bare, labels, close,
                  (unsigned long long)h->count);
}

static void render_requests(tc__strbuf_t *o) {
  head(o, "requests_total", "counter",
       "Calls ended, by transport, method (the RPC's full name) and gRPC status code.");
  for (int t = 0; t < N_TRANSPORTS; t++)
    for (int s = 0; s <= MAX_METHODS; s++)
      for (int c = 0; c < N_CODES; c++)
        if (m.requests[t][s][c])
          tc__strbuf_putf(
              o, "tuplecast_requests_total{transport=\"%s\",method=\"%s\",code=\"%s\"} %llu\n",
              TRANSPORTS[t], method_name(s), tc__call_code_name(c),
              (unsigned long long)m.requests[t][s][c]);
  head(o, "request_duration_seconds", "histogram",
       "Time from a unary call's admission to its answer, by method.");
  for (int s = 0; s <= MAX_METHODS; s++) {
    if (!m.latency[s].count) continue;
    char labels[128];
    snprintf(labels, sizeof labels, "method=\"%s\",", method_name(s));
    hist(o, "request_duration_seconds", labels, &m.latency[s]);
  }
}

static void render_watch(tc__strbuf_t *o) {
  uint64_t ended = 0;
  for (int r = 0; r < N_ENDS; r++) ended += m.watch_ended[r];
  head(o, "watch_streams_open", "gauge", "Watch streams being served.");
  tc__strbuf_putf(o, "tuplecast_watch_streams_open %llu\n",
                  (unsigned long long)(m.watch_started - ended));
  head(o, "watch_streams_started_total", "counter", "Watch streams accepted.");
  tc__strbuf_putf(o, "tuplecast_watch_streams_started_total %llu\n",
                  (unsigned long long)m.watch_started);
  head(o, "watch_streams_ended_total", "counter", "Watch streams ended, by reason.");
  for (int r = 0; r < N_ENDS; r++)
    tc__strbuf_putf(o, "tuplecast_watch_streams_ended_total{reason=\"%s\"} %llu\n", END_REASONS[r],
                    (unsigned long long)m.watch_ended[r]);
  head(o, "watch_lag_seconds", "histogram",
       "From the loop learning of a commit (its feed woken) to the transaction's message "
       "handed to a stream's transport.");
  hist(o, "watch_lag_seconds", "", &m.watch_lag);
  head(o, "watch_messages_sent_total", "counter", "Watch messages handed to a transport.");
  for (int t = 0; t < N_TRANSPORTS; t++)
    tc__strbuf_putf(o, "tuplecast_watch_messages_sent_total{transport=\"%s\"} %llu\n",
                    TRANSPORTS[t], (unsigned long long)m.stream_msgs[t]);
  head(o, "watch_bytes_sent_total", "counter",
       "Bytes of Watch messages handed to a transport (packed protobuf; NDJSON lines).");
  for (int t = 0; t < N_TRANSPORTS; t++)
    tc__strbuf_putf(o, "tuplecast_watch_bytes_sent_total{transport=\"%s\"} %llu\n", TRANSPORTS[t],
                    (unsigned long long)m.stream_bytes[t]);
  static const char *const KINDS[2] = {"feed", "catchup"};
  head(o, "watch_feed_reads_total", "counter",
       "Change reads from the backend: a tenant feed's own, or a stream's catch-up.");
  for (int k = 0; k < 2; k++)
    tc__strbuf_putf(o, "tuplecast_watch_feed_reads_total{kind=\"%s\"} %llu\n", KINDS[k],
                    (unsigned long long)m.feed_reads[k]);
  head(o, "watch_feed_rows_total", "counter", "Changes those reads returned.");
  for (int k = 0; k < 2; k++)
    tc__strbuf_putf(o, "tuplecast_watch_feed_rows_total{kind=\"%s\"} %llu\n", KINDS[k],
                    (unsigned long long)m.feed_rows[k]);
}

static void render_connections(tc__strbuf_t *o, tc_server_t *srv) {
  head(o, "connections_open", "gauge", "Client connections open, by transport.");
  for (size_t i = 0; i < srv->n_transports; i++) {
    tc__server_transport_t *st = &srv->transports[i];
    if (!st->inst || !st->plan.enabled || !st->t->connections) continue;
    tc__strbuf_putf(o, "tuplecast_connections_open{transport=\"%s\"} %zu\n", st->t->name,
                    st->t->connections(st->inst));
  }
}

/* ---- the backend's own ---------------------------------------------------- */

#define MAX_LABELS 8 /* distinct labels kept per backend metric; more go to "other" */
#define N_BMETRICS 5

static const struct {
  const char *name, *type, *label, *help;
} BMETRICS[N_BMETRICS] = {
    {"backend_pool_connections", "gauge", "pool", "Backend connections (or workers) up, by pool."},
    {"backend_pool_in_use", "gauge", "pool", "Of those, running an operation."},
    {"backend_pool_waiting", "gauge", "pool", "Backend operations queued for a connection."},
    {"backend_reconnects_total", "counter", "pool",
     "Backend connections made again after a loss or a failed attempt."},
    {"backend_retries_total", "counter", "sqlstate",
     "Backend statements run again after a retryable error, by SQLSTATE."},
};

/* The labels admitted so far stay admitted, so a counter's "other" only
 * ever grows; values are summed afresh on each scrape. */
static char admitted[N_BMETRICS][MAX_LABELS][16];

typedef struct {
  uint64_t value[N_BMETRICS][MAX_LABELS + 1]; /* [MAX_LABELS]: "other" */
  int seen[N_BMETRICS][MAX_LABELS + 1];
} bsample_t;

static int label_ok(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (n >= 15 || !(s[n] == '_' || s[n] == '-' || s[n] == '.' || (s[n] >= '0' && s[n] <= '9') ||
                     (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z')))
      return 0;
  return n > 0;
}

static void on_backend_metric(void *arg, int metric, const char *label, uint64_t value) {
  bsample_t *b = arg;
  int k = metric - TC_BACKEND_METRIC_POOL_OPEN;
  if (k < 0 || k >= N_BMETRICS) return;
  int i = MAX_LABELS; /* "other"; a backend's own "other" is the same series */
  int keep = label && label_ok(label) && strcmp(label, "other") != 0;
  for (int j = 0; keep && j < MAX_LABELS; j++) {
    if (!admitted[k][j][0]) snprintf(admitted[k][j], sizeof admitted[k][j], "%s", label);
    if (!strcmp(admitted[k][j], label)) {
      i = j;
      break;
    }
  }
  b->value[k][i] += value;
  b->seen[k][i] = 1;
}

static void render_backend(tc__strbuf_t *o, tc_server_t *srv) {
  if (!srv->backend) return;
  tc_backend_stats_t st = {0};
  srv->api->stats(srv->backend, &st);
  head(o, "backend_operations_total", "counter", "Backend operations, by kind.");
  tc__strbuf_putf(o, "tuplecast_backend_operations_total{op=\"write\"} %llu\n",
                  (unsigned long long)st.writes);
  tc__strbuf_putf(o, "tuplecast_backend_operations_total{op=\"read\"} %llu\n",
                  (unsigned long long)st.reads);
  tc__strbuf_putf(o, "tuplecast_backend_operations_total{op=\"read_changes\"} %llu\n",
                  (unsigned long long)st.change_reads);
  head(o, "backend_feed_commit_lag_seconds", "summary",
       "From a transaction's commit (the database's clock) to the change read that returned "
       "it; only backends that know commit times (postgres) count.");
  tc__strbuf_putf(o, "tuplecast_backend_feed_commit_lag_seconds_sum %.6f\n",
                  (double)st.feed_lag_us_sum / 1e6);
  tc__strbuf_putf(o, "tuplecast_backend_feed_commit_lag_seconds_count %llu\n",
                  (unsigned long long)st.feed_txns);
  if (srv->api->struct_size < TC_BACKEND_API_V2_2_SIZE || !srv->api->metrics) return;
  bsample_t b;
  memset(&b, 0, sizeof b);
  srv->api->metrics(srv->backend, on_backend_metric, &b);
  for (int k = 0; k < N_BMETRICS; k++) {
    head(o, BMETRICS[k].name, BMETRICS[k].type, BMETRICS[k].help);
    for (int i = 0; i <= MAX_LABELS; i++)
      if (b.seen[k][i])
        tc__strbuf_putf(o, "tuplecast_%s{%s=\"%s\"} %llu\n", BMETRICS[k].name, BMETRICS[k].label,
                        i < MAX_LABELS ? admitted[k][i] : "other",
                        (unsigned long long)b.value[k][i]);
  }
}

/* ---- the process ---------------------------------------------------------- */

static long count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  long n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* Counting reads one directory entry per descriptor (tens of thousands on a
 * busy server, milliseconds of loop time), and anyone may scrape as often as
 * they like: counted at most once a second, a scrape in between gets the
 * last count. */
static long open_fds(uv_loop_t *loop) {
  static long n;
  static uint64_t at;
  uint64_t now = uv_now(loop);
  if (!at || now - at >= 1000 || now < at) {
    n = count_fds();
    at = now ? now : 1;
  }
  return n;
}

static void render_process(tc__strbuf_t *o, tc_server_t *srv) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  head(o, "process_resident_memory_bytes", "gauge", "Resident set size of the process.");
  tc__strbuf_putf(o, "tuplecast_process_resident_memory_bytes %lld\n",
                  (long long)rss * (long long)sysconf(_SC_PAGESIZE));
  head(o, "process_open_fds", "gauge", "Open file descriptors of the process.");
  tc__strbuf_putf(o, "tuplecast_process_open_fds %ld\n", open_fds(srv->loop));
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    head(o, "process_max_fds", "gauge", "The descriptor limit (RLIMIT_NOFILE, soft).");
    tc__strbuf_putf(o, "tuplecast_process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
  }
  head(o, "build_info", "gauge", "Always 1: the server's version and its backend's.");
  tc__strbuf_putf(o,
                  "tuplecast_build_info{version=\"%s\",backend=\"%s\",backend_version=\"%s\"} 1\n",
                  TC_VERSION, srv->api && label_ok(srv->api->name) ? srv->api->name : "other",
                  srv->api && label_ok(srv->api->version) ? srv->api->version : "other");
}

char *tc_metrics_render(tc_server_t *srv, size_t *len) {
  tc__strbuf_t o;
  tc__strbuf_init(&o, NULL, 0);
  tc__strbuf_reserve(&o, 16384);
  render_requests(&o);
  render_connections(&o, srv);
  render_watch(&o);
  render_backend(&o, srv);
  render_process(&o, srv);
  return tc__strbuf_take(&o, len);
}
