/* tc-torture: two tuplecast nodes on one PostgreSQL under load and faults,
 * then every promise checked (README.md in this directory).
 *
 *   tc-torture [--seconds N] [--seed S] [--tenants K] [--writers W] [--watchers V]
 *
 * Exit 0 when the run found no violation, 1 when it did, 2 when it could not
 * run (Postgres or a node did not start).  $TUPLECAST_BIN names the server. */
#define _GNU_SOURCE

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/v1/service.pb-c.h"
#include "fault_proxy.h"
#include "pg_fixture.h"
#include "torture.h"

torture_t *T;

enum fault { F_CUT, F_STALL, F_KILL, F_PG_FAST, F_PG_IMMEDIATE, F_KINDS };
static const char *const fault_names[F_KINDS] = {"proxy-cut", "proxy-stall", "kill-9-node",
                                                 "pg-restart-fast", "pg-restart-immediate"};

/* The bar for the surviving node's memory once the load has stopped: its
 * RSS before the load plus this much, more under AddressSanitizer, whose
 * allocator keeps what it freed (README.md). */
#define RSS_SLACK_KIB (48 * 1024)
#define RSS_SLACK_ASAN_KIB (128 * 1024)
#define LOG_KEEP (256 * 1024)

static struct {
  int seconds;
  unsigned seed;
  int skip[F_KINDS]; /* --skip-fault */
  long faults[F_KINDS];
  long rss_base, rss_peak, rss_end, rss_slack; /* KiB, node 0 */
  long long start;                             /* when the load began */
  tc_pg_t *pg;
  tc_fproxy_t *proxy;
  char uri[256];
} R;

long long torture_now_ms(void) { return tc_now_ms(); }

void torture_violation(const char *fmt, ...) {
  pthread_mutex_lock(&T->vlock);
  long n = ++T->violations;
  if (n <= 30) {
    va_list ap;
    va_start(ap, fmt);
    fputs("VIOLATION: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
  pthread_mutex_unlock(&T->vlock);
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- nodes -------------------------------------------------------------------- */

tc_client_t *torture_client(conns_t *cs, int i) {
  pthread_mutex_lock(&T->nodes.lock);
  int gen = T->nodes.gen[i];
  char target[64];
  memcpy(target, T->nodes.target[i], sizeof target);
  pthread_mutex_unlock(&T->nodes.lock);
  if (!cs->c[i] || cs->gen[i] != gen) {
    tc_client_free(cs->c[i]);
    cs->c[i] = cs->small_window ? tc_client_new_small_window(target) : tc_client_new(target);
    cs->gen[i] = gen;
  }
  return cs->c[i];
}

void torture_conns_free(conns_t *cs) {
  for (int i = 0; i < 2; i++) tc_client_free(cs->c[i]);
}

static size_t scanned[2]; /* how much of each node's log copy_warnings read */

static int node_start(int i) {
  const char *args[] = {"--grpc-port", "0", "--http-port", "0", "--database-engine", "postgres",
                        "--database-uri", R.uri,
                        /* small, so slow watchers are ended and resume */
                        "--database-watch-buffer-size", "16", NULL};
  tc_proc_t p;
  /* Postgres may be restarting (a fault just before): try for a while. */
  for (int attempt = 0; attempt < 10; attempt++) {
    if (tc_proc_start(&p, args) == 0) {
      pthread_mutex_lock(&T->nodes.lock);
      T->nodes.proc[i] = p;
      memcpy(T->nodes.target[i], p.target, sizeof p.target);
      T->nodes.gen[i]++;
      pthread_mutex_unlock(&T->nodes.lock);
      scanned[i] = 0;
      return 0;
    }
    fprintf(stderr, "torture: node %d did not start (attempt %d):\n%.*s\n", i, attempt + 1,
            (int)(p.log_len > 4096 ? 4096 : p.log_len),
            p.log ? p.log + (p.log_len > 4096 ? p.log_len - 4096 : 0) : "");
    free(p.log);
    pause_ms(1000);
  }
  return -1;
}

static long rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
  if (f) fclose(f);
  return kib;
}

/* Copies node i's new warnings and errors to stderr (the log is trimmed,
 * and a violation's cause may be long gone from its tail by the end). */
static void copy_warnings(int i) {
  tc_proc_t *p = &T->nodes.proc[i];
  tc_proc_log_trim(p, (size_t)-1);
  for (char *at = p->log + scanned[i], *nl; p->log && (nl = strchr(at, '\n')); at = nl + 1) {
    const char *level = strchr(at, ' ');
    if (level && level < nl && strncmp(level, " info ", 6) && strncmp(level, " debug ", 7))
      fprintf(stderr, "node %d: %.*s\n", i, (int)(nl - at), at);
    scanned[i] = (size_t)(nl + 1 - p->log);
  }
  size_t before = p->log_len;
  tc_proc_log_trim(p, LOG_KEEP);
  size_t cut = before - p->log_len;
  scanned[i] = scanned[i] > cut ? scanned[i] - cut : 0;
}

/* Keeps the nodes' logs bounded and node 0's peak RSS current. */
static void tend(void) {
  for (int i = 0; i < 2; i++)
    if (T->nodes.proc[i].pid > 0) copy_warnings(i);
  long rss = rss_kib(T->nodes.proc[0].pid);
  if (rss > R.rss_peak) R.rss_peak = rss;
}

/* Waits ms while tending. */
static void idle(long ms) {
  for (long long end = torture_now_ms() + ms; torture_now_ms() < end;) {
    tend();
    pause_ms(100);
  }
}

static void dump_logs(void) {
  for (int i = 0; i < 2; i++) {
    tc_proc_t *p = &T->nodes.proc[i];
    if (p->pid <= 0) continue;
    tc_proc_log_trim(p, 32768);
    fprintf(stderr, "----- node %d, the end of its log -----\n%.*s\n", i, (int)p->log_len,
            p->log ? p->log : "");
  }
}

static void explain_rows(PGconn *c, const char *q, const char *entity_id) {
  PGresult *r = PQexecParams(c, q, 1, NULL, &entity_id, NULL, NULL, 0);
  for (int i = 0; i < PQntuples(r); i++) {
    fputs("   ", stderr);
    for (int j = 0; j < PQnfields(r); j++)
      fprintf(stderr, " %s=%s", PQfname(r, j), PQgetvalue(r, i, j));
    fputc('\n', stderr);
  }
  if (PQresultStatus(r) != PGRES_TUPLES_OK) fprintf(stderr, "    %s", PQerrorMessage(c));
  PQclear(r);
}

void torture_explain(const char *entity_id) {
  const char *uri = tc_pg_uri_db(R.pg, "torture");
  PGconn *c = uri ? PQconnectdb(uri) : NULL;
  if (!c || PQstatus(c) != CONNECTION_OK) return PQfinish(c);
  fprintf(stderr, "  the database's rows of %s, expired ones too:\n", entity_id);
  explain_rows(c,
               "SELECT r.relation, r.created_tx_id, r.expired_tx_id, t.timestamp"
               " FROM relation_tuples r LEFT JOIN transactions t ON t.id = r.created_tx_id"
               " WHERE r.entity_id = $1 ORDER BY r.created_tx_id",
               entity_id);
  explain_rows(c,
               "SELECT a.attribute, a.value, a.created_tx_id, a.expired_tx_id, t.timestamp"
               " FROM attributes a LEFT JOIN transactions t ON t.id = a.created_tx_id"
               " WHERE a.entity_id = $1 ORDER BY a.created_tx_id",
               entity_id);
  PQfinish(c);
}

/* ---- faults --------------------------------------------------------------------- */

static int inject(enum fault f, unsigned *seed, int long_run);

static int fault(enum fault f, unsigned *seed, int long_run) {
  R.faults[f]++;
  fprintf(stderr, "torture: +%lld ms %s\n", torture_now_ms() - R.start, fault_names[f]);
  int rc = inject(f, seed, long_run);
  fprintf(stderr, "torture: +%lld ms %s over\n", torture_now_ms() - R.start, fault_names[f]);
  return rc;
}

static int inject(enum fault f, unsigned *seed, int long_run) {
  long stall_ms = long_run ? 1000 + rand_r(seed) % 11000 : 1500 + rand_r(seed) % 2500;
  switch (f) {
  case F_CUT: tc_fproxy_cut(R.proxy); return 0;
  case F_STALL:
    tc_fproxy_stall(R.proxy, 1);
    idle(stall_ms);
    tc_fproxy_stall(R.proxy, 0);
    return 0;
  case F_KILL: {
    tc_proc_t *p = &T->nodes.proc[1];
    kill(p->pid, SIGKILL);
    tc_proc_stop(p, NULL);
    idle(300 + rand_r(seed) % 1500);
    return node_start(1);
  }
  case F_PG_FAST: return tc_pg_restart_mode(R.pg, "fast");
  default: return tc_pg_restart_mode(R.pg, "immediate");
  }
}

/* The bounded run: every kind, in a fixed order, spread over the run with
 * seeded jitter; a longer run: kinds at random, every 4 to 12 s. */
static int run_faults(long long start, unsigned *seed) {
  static const enum fault plan[] = {F_CUT,          F_STALL, F_KILL, F_PG_FAST,
                                    F_PG_IMMEDIATE, F_STALL, F_CUT};
  const int n_plan = sizeof plan / sizeof plan[0], long_run = R.seconds > 120;
  long long end = start + (long long)R.seconds * 1000;
  long long slot = (long long)(R.seconds - 10) * 1000 / n_plan;
  for (int i = 0; torture_now_ms() < end - 6000; i++) {
    long long at = long_run ? torture_now_ms() + 4000 + rand_r(seed) % 8000
                            : start + 3000 + i * slot + (long long)(rand_r(seed) % 1000);
    if (!long_run && i >= n_plan) break;
    while (torture_now_ms() < at && torture_now_ms() < end) idle(100);
    if (torture_now_ms() >= end - 4000) break;
    enum fault f = long_run ? (enum fault)(rand_r(seed) % F_KINDS) : plan[i];
    if (R.skip[f]) continue;
    if (fault(f, seed, long_run) != 0) return -1;
  }
  while (torture_now_ms() < end) idle(100);
  return 0;
}

/* ---- set-up ---------------------------------------------------------------------- */

static const char schema[] =
    "entity user {}\n"
    "entity doc {\n"
    "  relation owner @user\n"
    "  relation viewer @user\n"
    "  attribute level integer\n"
    "}\n";

static int must(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp) {
  char *details = NULL;
  int code = tc_client_unary(c, method, req, desc, resp, &details, NULL, TORTURE_TIMEOUT_MS);
  if (code) fprintf(stderr, "torture: set-up %s: %d %s\n", method, code, details);
  free(details);
  return code;
}

/* A write of "k<k><what>" through c; its token (malloc'd) or NULL. */
static char *mark_write(tc_client_t *c, int k, const char *what) {
  char tenant[16], id[48];
  snprintf(tenant, sizeof tenant, "k%d", k);
  snprintf(id, sizeof id, "k%d%s", k, what);
  Base__V1__Entity e = BASE__V1__ENTITY__INIT;
  e.type = "doc", e.id = id;
  Base__V1__Subject s = BASE__V1__SUBJECT__INIT;
  s.type = "user", s.id = "u";
  Base__V1__Tuple t = BASE__V1__TUPLE__INIT, *tp = &t;
  t.entity = &e, t.relation = "owner", t.subject = &s;
  Base__V1__DataWriteRequestMetadata md = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
  Base__V1__DataWriteRequest req = BASE__V1__DATA_WRITE_REQUEST__INIT;
  req.tenant_id = tenant, req.metadata = &md, req.tuples = &tp, req.n_tuples = 1;
  ProtobufCMessage *resp = NULL;
  char *details = NULL;
  int code = tc_client_unary(c, "/base.v1.Data/Write", &req.base,
                             &base__v1__data_write_response__descriptor, &resp, &details, NULL,
                             TORTURE_TIMEOUT_MS);
  free(details);
  if (code) return NULL;
  char *token = strdup(((Base__V1__DataWriteResponse *)resp)->snap_token);
  protobuf_c_message_free_unpacked(resp, NULL);
  return token;
}

static int setup_tenant(tc_client_t *c, int k) {
  char tenant[16];
  snprintf(tenant, sizeof tenant, "k%d", k);
  Base__V1__TenantCreateRequest tc = BASE__V1__TENANT_CREATE_REQUEST__INIT;
  tc.id = tenant, tc.name = tenant;
  Base__V1__SchemaWriteRequest sw = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
  sw.tenant_id = tenant, sw.schema = (char *)schema;
  char *writes[] = {"doc:{{.id}}x0#owner@user:u", "doc:{{.id}}x1#viewer@user:u"};
  char *arg = "id";
  Base__V1__Operation op = BASE__V1__OPERATION__INIT, *opp = &op;
  op.relationships_write = writes, op.n_relationships_write = 2;
  Base__V1__DataBundle b = BASE__V1__DATA_BUNDLE__INIT, *bp = &b;
  b.name = "tort", b.arguments = &arg, b.n_arguments = 1, b.operations = &opp, b.n_operations = 1;
  Base__V1__BundleWriteRequest bw = BASE__V1__BUNDLE_WRITE_REQUEST__INIT;
  bw.tenant_id = tenant, bw.bundles = &bp, bw.n_bundles = 1;
  if (must(c, "/base.v1.Tenancy/Create", &tc.base, NULL, NULL) ||
      must(c, "/base.v1.Schema/Write", &sw.base, NULL, NULL) ||
      must(c, "/base.v1.Bundle/Write", &bw.base, NULL, NULL))
    return -1;
  T->start_token[k] = mark_write(c, k, "start");
  return T->start_token[k] ? 0 : -1;
}

/* The last write of each tenant, retried until one is acknowledged: once
 * a watcher has it, it has everything acknowledged before. */
static int write_sentinels(tc_client_t *c) {
  for (int k = 0; k < T->tenants; k++) {
    char *token = NULL;
    int r = 0;
    for (long long deadline = torture_now_ms() + 60000; !token && r < 64; r++) {
      char what[16];
      snprintf(what, sizeof what, "end%d", r);
      token = mark_write(c, k, what);
      if (!token && torture_now_ms() > deadline) return -1;
      if (!token) idle(200);
    }
    if (!token) return -1;
    free(token);
    __atomic_store_n(&T->sentinel[k], r - 1, __ATOMIC_RELEASE);
  }
  return 0;
}

/* ---- the run ---------------------------------------------------------------------- */

static int skip_fault(const char *name) {
  for (int f = 0; f < F_KINDS; f++)
    if (!strcmp(name, fault_names[f])) return R.skip[f] = 1, 0;
  return -1;
}

static void parse_args(int argc, char **argv) {
  R.seconds = 60;
  R.seed = (unsigned)time(NULL);
  T->tenants = 3, T->writers_per_tenant = 2, T->watchers_per_tenant = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--seconds"))
      R.seconds = atoi(v);
    else if (!strcmp(k, "--seed"))
      R.seed = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--tenants"))
      T->tenants = atoi(v);
    else if (!strcmp(k, "--writers"))
      T->writers_per_tenant = atoi(v);
    else if (!strcmp(k, "--watchers"))
      T->watchers_per_tenant = atoi(v);
    else if (!strcmp(k, "--skip-fault") && skip_fault(v) == 0)
      continue;
    else {
      fprintf(stderr,
              "usage: %s [--seconds N] [--seed S] [--tenants K] [--writers W] "
              "[--watchers V] [--skip-fault KIND]...\n",
              argv[0]);
      exit(2);
    }
  }
  if (R.seconds < 20) R.seconds = 20;
  if (T->writers_per_tenant < 1 || T->watchers_per_tenant < 1 || T->tenants < 1) exit(2);
}

static int start_cluster(void) {
  static const char *const conf[] = {
      /* Acknowledged means on disk in the WAL: pg_ctl -m immediate must not
       * lose a commit the server acknowledged (fsync off only loses data
       * when the machine, not Postgres, crashes). */
      "synchronous_commit = on", NULL};
  tc_pg_opts_t opts = {.track_commit_timestamp = 1, .conf = conf, .tcp = 1};
  if (tc_pg_start(&opts, &R.pg) != 0 || !tc_pg_uri_db(R.pg, "torture")) return -1;
  R.proxy = tc_fproxy_start(tc_pg_port(R.pg));
  if (!R.proxy) return -1;
  snprintf(R.uri, sizeof R.uri, "postgresql://%s@127.0.0.1:%d/torture", tc_pg_user(R.pg),
           tc_fproxy_port(R.proxy));
  return node_start(0) || node_start(1) ? -1 : 0;
}

static pthread_t *start_threads(int n, void *(*fn)(void *), void *base, size_t size) {
  pthread_t *t = calloc((size_t)n, sizeof *t);
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, fn, (char *)base + (size_t)i * size);
  return t;
}

static void join_threads(pthread_t *t, int n) {
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  free(t);
}

static void make_workers(void) {
  int nw = T->tenants * T->writers_per_tenant, nv = T->tenants * T->watchers_per_tenant;
  T->writers = calloc((size_t)nw, sizeof *T->writers);
  T->watchers = calloc((size_t)nv, sizeof *T->watchers);
  for (int i = 0; i < nw; i++)
    T->writers[i] = (writer_t){.tenant = i / T->writers_per_tenant,
                               .w = i % T->writers_per_tenant,
                               .seed = R.seed * 7919u + (unsigned)i};
  /* The odd watchers of each tenant are the slow consumers. */
  for (int i = 0; i < nv; i++)
    T->watchers[i] = (watcher_t){.tenant = i / T->watchers_per_tenant,
                                 .idx = i % T->watchers_per_tenant,
                                 .slow = i % T->watchers_per_tenant % 2,
                                 .seed = R.seed * 104729u + (unsigned)i};
}

static void print_figures(void) {
  long by_kind[OP_KINDS][2] = {{0}}, codes[256] = {0}, ops = 0;
  for (int i = 0; i < T->tenants * T->writers_per_tenant; i++)
    for (int n = 0; n < T->writers[i].n_ops; n++) {
      op_t *op = &T->writers[i].ops[n];
      by_kind[op->kind][op->acked ? 0 : 1]++;
      codes[op->code]++, ops++;
    }
  printf("operations: %ld\n", ops);
  for (int k = 0; k < OP_KINDS; k++)
    printf("  %-10s %7ld acked, %5ld not acked\n", torture_op_names[k], by_kind[k][0],
           by_kind[k][1]);
  printf("  not acked by status:");
  for (int c = 1; c < 256; c++)
    if (codes[c]) printf(" %d: %ld", c, codes[c]);
  printf("\nfaults injected:");
  for (int f = 0; f < F_KINDS; f++)
    printf(" %s %ld%s", fault_names[f], R.faults[f], R.skip[f] ? " (skipped)" : "");
  long changes = 0, msgs = 0, resumes = 0, drops = 0, pauses = 0, ended[17] = {0};
  for (int i = 0; i < T->tenants * T->watchers_per_tenant; i++) {
    watcher_t *w = &T->watchers[i];
    changes += w->changes, msgs += w->n_msgs, resumes += w->resumes, pauses += w->pauses;
    drops += w->drops;
    for (int c = 0; c < 17; c++) ended[c] += w->ended[c];
  }
  long other = 0;
  for (int c = 0; c < 17; c++) other += c == 8 || c == 14 ? 0 : ended[c];
  printf(
      "\nwatch: %ld changes in %ld messages delivered; %ld streams, %ld dropped by their "
      "watcher, ended by the server: UNAVAILABLE %ld, RESOURCE_EXHAUSTED %ld (after %ld "
      "slow-reader pauses), other %ld\n",
      changes, msgs, resumes, drops, ended[14], ended[8], pauses, other);
  printf("node 0 RSS: baseline %.1f MiB, peak %.1f MiB, end %.1f MiB (bar: baseline + %ld MiB)\n",
         R.rss_base / 1024.0, R.rss_peak / 1024.0, R.rss_end / 1024.0, R.rss_slack / 1024);
  printf("violations: %ld\n", T->violations);
}

/* Whether the process maps AddressSanitizer's runtime. */
static int has_asan(pid_t pid) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  FILE *f = fopen(path, "r");
  int found = 0;
  while (f && !found && fgets(line, sizeof line, f)) found = strstr(line, "libasan") != NULL;
  if (f) fclose(f);
  return found;
}

/* Node 0's memory settles back under the bar within 20 s of the load's end. */
static void check_memory(void) {
  R.rss_slack = has_asan(T->nodes.proc[0].pid) ? RSS_SLACK_ASAN_KIB : RSS_SLACK_KIB;
  long long deadline = torture_now_ms() + 20000;
  do {
    R.rss_end = rss_kib(T->nodes.proc[0].pid);
    if (R.rss_end > R.rss_peak) R.rss_peak = R.rss_end;
    if (R.rss_end <= R.rss_base + R.rss_slack) return;
    idle(500);
  } while (torture_now_ms() < deadline);
  torture_violation("node 0's RSS is %ld KiB after the load, baseline %ld KiB", R.rss_end,
                    R.rss_base);
}

static int finish(tc_client_t *c, pthread_t *wt, long long deadline) {
  int rc = write_sentinels(c);
  while (rc == 0 && torture_now_ms() < deadline) {
    int all = 1;
    for (int i = 0; i < T->tenants * T->watchers_per_tenant; i++) {
      watcher_t *w = &T->watchers[i];
      all &= T->sentinel[w->tenant] >= 0 && (w->ends_seen >> T->sentinel[w->tenant] & 1);
    }
    if (all) break;
    idle(200);
  }
  T->stop_watchers = 1;
  join_threads(wt, T->tenants * T->watchers_per_tenant);
  for (int i = 0; i < T->tenants * T->watchers_per_tenant; i++) {
    watcher_t *w = &T->watchers[i];
    if (!(T->sentinel[w->tenant] >= 0 && (w->ends_seen >> T->sentinel[w->tenant] & 1)))
      torture_violation("tenant k%d watcher %d never got the tenant's last write", w->tenant,
                        w->idx);
  }
  return rc;
}

int main(int argc, char **argv) {
  static torture_t t;
  T = &t;
  pthread_mutex_init(&T->nodes.lock, NULL);
  pthread_mutex_init(&T->vlock, NULL);
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  tc_proc_set_echo(0);
  /* Under AddressSanitizer the nodes keep 256 MiB of freed memory in
   * quarantine by default, which the memory bar would take for a leak. */
  const char *asan = getenv("ASAN_OPTIONS");
  char opts[512];
  snprintf(opts, sizeof opts, "%s%squarantine_size_mb=16", asan ? asan : "",
           asan && *asan ? ":" : "");
  setenv("ASAN_OPTIONS", opts, 1);
  printf("torture: seed %u, %d s of load, %d tenants x %d writers, %d watchers each\n", R.seed,
         R.seconds, T->tenants, T->writers_per_tenant, T->watchers_per_tenant);
  fflush(stdout);
  T->start_token = calloc((size_t)T->tenants, sizeof *T->start_token);
  T->sentinel = malloc((size_t)T->tenants * sizeof *T->sentinel);
  for (int k = 0; k < T->tenants; k++) T->sentinel[k] = -1;
  if (start_cluster() != 0) return 2;
  tc_client_t *c = tc_client_new(T->nodes.target[0]);
  for (int k = 0; k < T->tenants; k++)
    if (setup_tenant(c, k) != 0) return 2;
  make_workers();
  unsigned seed = R.seed;
  pthread_t *vt = start_threads(T->tenants * T->watchers_per_tenant, torture_watcher_run,
                                T->watchers, sizeof *T->watchers);
  idle(1000);
  R.rss_base = R.rss_peak = rss_kib(T->nodes.proc[0].pid);
  long long start = R.start = T->start_ms = torture_now_ms();
  pthread_t *wt = start_threads(T->tenants * T->writers_per_tenant, torture_writer_run, T->writers,
                                sizeof *T->writers);
  int rc = run_faults(start, &seed);
  T->stop_writers = 1;
  join_threads(wt, T->tenants * T->writers_per_tenant);
  if (rc != 0) fputs("torture: a fault could not be injected or healed\n", stderr);
  tc_fproxy_stall(R.proxy, 0);
  if (rc == 0 && finish(c, vt, torture_now_ms() + 120000) != 0)
    torture_violation("the last writes were not acknowledged within 60 s");
  if (rc != 0) {
    T->stop_watchers = 1;
    join_threads(vt, T->tenants * T->watchers_per_tenant);
  }
  check_memory();
  torture_check(c);
  tc_client_free(c);
  if (T->violations) dump_logs();
  for (int i = 0; i < 2; i++) {
    int st = tc_proc_stop(&T->nodes.proc[i], NULL);
    if (st != 0) torture_violation("node %d exited with %d", i, st);
  }
  print_figures();
  tc_fproxy_stop(R.proxy);
  tc_pg_stop(R.pg);
  return rc != 0 ? 2 : T->violations ? 1 : 0;
}
