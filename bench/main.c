/* tuplecast-bench: command line, tenant setup and the scenario table.  The
 * scenario runs against --target and then against each --peer in turn, the
 * same way, each run reported under its server's name.
 *
 * Ownership: main owns the peer list, and the client and report of each run.
 */
#include "bench.h"
#include "example_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* The example schema (user, organization, repository) of the integration
 * tests; the write load uses repository#owner@user. */
static const char schema_text[] = TT_EXAMPLE_SCHEMA;

static const char usage[] =
    "Usage: tuplecast-bench --scenario write|watch-latency|fan-out|catch-up|multi-tenant|soak|\n"
    "                       bootstrap [options]\n"
    "\n"
    "  --target HOST:PORT   Permify-compatible gRPC server (default 127.0.0.1:3478)\n"
    "  --name NAME          the target's name in the report (default: its address)\n"
    "  --peer NAME=HOST:PORT[,pid=PID][,settle=S]\n"
    "                       another server, run the same way after the target\n"
    "                       (repeatable); pid: its process, for RSS and CPU;\n"
    "                       settle: as --settle, for this peer\n"
    "  --settle S           for servers that send no checkpoints (Permify): watch\n"
    "                       streams count as in place S seconds after opening\n"
    "  --tenant ID          tenant (default t1); gets the example schema if it has none\n"
    "  --token TOKEN        sent as \"authorization: Bearer TOKEN\"\n"
    "  --tls-ca FILE        TLS, trusting the CA certificates in FILE (PEM)\n"
    "  --duration S         seconds of load: write, watch-latency, soak (default 3)\n"
    "  --concurrency N      outstanding Data.Write calls: write, catch-up (default 1)\n"
    "  --batch N            tuples per Data.Write (default 1)\n"
    "  --connections C      client connections (default 1)\n"
    "  --watchers W         watch-latency: watch streams (default 100)\n"
    "  --rate R             watch-latency, soak: writes/s (default 500)\n"
    "  --streams N          fan-out: idle watch streams (default 1000)\n"
    "  --open-wave N        fan-out, multi-tenant, watch-latency: open watch streams\n"
    "                       N at a time, each wave waiting for its first checkpoints\n"
    "                       (default: all at once)\n"
    "  --rounds N           fan-out: writes fanned out, one after the other (default 5)\n"
    "  --history N          catch-up: transactions behind the watch (default 20000)\n"
    "  --tenants N          soak, multi-tenant: tenants <tenant>-0..N-1 (default 1:\n"
    "                       <tenant>; multi-tenant: 10000, a watcher on each)\n"
    "  --pg-uri URI         multi-tenant: the server's PostgreSQL, for the statements\n"
    "                       it ran during the load (pg_stat_statements if preloaded,\n"
    "                       else pg_stat_database's transactions)\n"
    "  --read-rate R        soak: Data.ReadRelationships calls/s (default 1000)\n"
    "  --readers N          soak: outstanding reads at most (default 16)\n"
    "  --preload N          soak: tuples written before the timed run (default none)\n"
    "  --stream-changes N   soak: transactions a watch stream takes before it is\n"
    "                       closed and opened again (default 50)\n"
    "  --soak-check strict|loose\n"
    "                       soak: the bounds of the verdict (loose: for sanitizer\n"
    "                       builds; see bench/README.md)\n"
    "  --tuples N           bootstrap: tuples written, then watched with initial_state\n"
    "                       (default 10000)\n"
    "  --server-pid PID     read the server's RSS, CPU (and for soak descriptors)\n"
    "                       from /proc/PID\n"
    "  --json FILE          append one JSON object with every figure\n";

typedef struct {
  const char *name;
  int (*run)(const bench_opts_t *, bench_client_t *, bench_report_t *);
} scenario_t;

static const scenario_t scenarios[] = {
    {"write", bench_scenario_write},
    {"watch-latency", bench_scenario_watch_latency},
    {"fan-out", bench_scenario_fan_out},
    {"catch-up", bench_scenario_catch_up},
    {"multi-tenant", bench_scenario_multi_tenant},
    {"soak", bench_scenario_soak},
    {"bootstrap", bench_scenario_bootstrap},
};

#define PROG "tuplecast-bench"

static int parse_int(const char *name, const char *s, int min, int *out) {
  return bench_parse_int(PROG, name, s, min, out);
}

static int parse_num(const char *name, const char *s, double *out) {
  return bench_parse_num(PROG, name, s, out);
}

typedef struct {
  const char *name, *target;
  pid_t pid;
  double settle;
} peer_t;

#define MAX_PEERS 16
static peer_t peers[MAX_PEERS];
static int n_peers;

/* NAME=HOST:PORT[,pid=PID][,settle=S]; the string is cut in place (optarg
 * points into argv, which lives as long as main). */
static int parse_peer(char *s) {
  char *eq = strchr(s, '=');
  if (!eq || eq == s || !eq[1] || n_peers == MAX_PEERS) {
    fprintf(stderr,
            PROG
            ": --peer: expected NAME=HOST:PORT[,pid=PID][,settle=S] (at most %d), "
            "got \"%s\"\n",
            MAX_PEERS, s);
    return -1;
  }
  *eq = '\0';
  peer_t p = {.name = s, .target = strtok(eq + 1, ",")};
  int pid = 0, bad = 0;
  for (char *kv; !bad && (kv = strtok(NULL, ",")) != NULL;) {
    if (!strncmp(kv, "pid=", 4))
      bad = parse_int("peer pid", kv + 4, 1, &pid);
    else if (!strncmp(kv, "settle=", 7))
      bad = parse_num("peer settle", kv + 7, &p.settle);
    else {
      fprintf(stderr, PROG ": --peer %s: unknown \"%s\"\n", s, kv);
      bad = -1;
    }
  }
  p.pid = (pid_t)pid;
  if (!bad) peers[n_peers++] = p;
  return bad ? -1 : 0;
}

static int parse_args(int argc, char **argv, bench_opts_t *o) {
  *o = (bench_opts_t){.target = "127.0.0.1:3478",
                      .tenant = "t1",
                      .duration = 3,
                      .rate = 500,
                      .concurrency = 1,
                      .batch = 1,
                      .connections = 1,
                      .watchers = 100,
                      .streams = 1000,
                      .rounds = 5,
                      .history = 20000,
                      .readers = 16,
                      .read_rate = 1000,
                      .stream_changes = 50,
                      .tuples = 10000};
  int pid = 0;
  const bench_opt_t opts[] = {
      {"target", BENCH_OPT_STR, &o->target, NULL},
      {"tenant", BENCH_OPT_STR, &o->tenant, NULL},
      {"name", BENCH_OPT_STR, &o->name, NULL},
      {"peer", BENCH_OPT_FN, NULL, parse_peer},
      {"settle", BENCH_OPT_NUM, &o->settle, NULL},
      {"token", BENCH_OPT_STR, &o->token, NULL},
      {"tls-ca", BENCH_OPT_STR, &o->tls_ca, NULL},
      {"duration", BENCH_OPT_NUM, &o->duration, NULL},
      {"concurrency", BENCH_OPT_INT, &o->concurrency, NULL},
      {"batch", BENCH_OPT_INT, &o->batch, NULL},
      {"connections", BENCH_OPT_INT, &o->connections, NULL},
      {"watchers", BENCH_OPT_INT, &o->watchers, NULL},
      {"rate", BENCH_OPT_NUM, &o->rate, NULL},
      {"streams", BENCH_OPT_INT, &o->streams, NULL},
      {"rounds", BENCH_OPT_INT, &o->rounds, NULL},
      {"open-wave", BENCH_OPT_INT, &o->open_wave, NULL},
      {"history", BENCH_OPT_INT, &o->history, NULL},
      {"tenants", BENCH_OPT_INT, &o->tenants, NULL},
      {"readers", BENCH_OPT_INT, &o->readers, NULL},
      {"read-rate", BENCH_OPT_NUM, &o->read_rate, NULL},
      {"preload", BENCH_OPT_INT, &o->preload, NULL},
      {"stream-changes", BENCH_OPT_INT, &o->stream_changes, NULL},
      {"soak-check", BENCH_OPT_STR, &o->soak_check, NULL},
      {"tuples", BENCH_OPT_INT, &o->tuples, NULL},
      {"pg-uri", BENCH_OPT_STR, &o->pg_uri, NULL},
      {"server-pid", BENCH_OPT_INT, &pid, NULL},
      {"json", BENCH_OPT_STR, &o->json, NULL},
      {"scenario", BENCH_OPT_STR, &o->scenario, NULL},
      {NULL, 0, NULL, NULL},
  };
  if (bench_parse_opts(PROG, argc, argv, opts, usage) < 0) return -1;
  o->server_pid = (pid_t)pid;
  if (!o->scenario) {
    fputs("tuplecast-bench: --scenario is required\n", stderr);
    fputs(usage, stderr);
    return -1;
  }
  if (!o->tenants) o->tenants = strcmp(o->scenario, "multi-tenant") ? 1 : 10000;
  return 0;
}

/* Creates the tenant if it does not exist and writes the example schema if
 * it has none; on failure says why in err.  Schema.List answers NOT_FOUND
 * for a tenant without a schema (ERROR_CODE_SCHEMA_NOT_FOUND: Permify does
 * not tell whether the tenant exists) or without a tenant
 * (ERROR_CODE_TENANT_NOT_FOUND, tuplecast): the tenant is created then, and
 * one that exists already (ERROR_CODE_UNIQUE_CONSTRAINT) is fine. */
static int ensure_schema(bench_client_t *c, const bench_opts_t *o, char *err, size_t errlen) {
  Base__V1__SchemaListRequest list = BASE__V1__SCHEMA_LIST_REQUEST__INIT;
  list.tenant_id = (char *)o->tenant;
  list.page_size = 1;
  Base__V1__SchemaListResponse *resp = NULL;
  char *details = NULL;
  int status = bench_unary_call(c, "/base.v1.Schema/List", &list.base,
                                &base__v1__schema_list_response__descriptor,
                                (ProtobufCMessage **)&resp, &details);
  int has_schema = status == GRPC_STATUS_OK && resp->head && resp->head[0];
  if (resp) protobuf_c_message_free_unpacked(&resp->base, NULL);
  if (status == GRPC_STATUS_NOT_FOUND) {
    Base__V1__TenantCreateRequest create = BASE__V1__TENANT_CREATE_REQUEST__INIT;
    create.id = create.name = (char *)o->tenant;
    free(details);
    details = NULL;
    status = bench_unary_call(c, "/base.v1.Tenancy/Create", &create.base, NULL, NULL, &details);
    if (status != GRPC_STATUS_OK && details && !strcmp(details, "ERROR_CODE_UNIQUE_CONSTRAINT")) {
      status = GRPC_STATUS_OK;
      free(details);
      details = NULL;
    }
  }
  if (status == GRPC_STATUS_OK && !has_schema) {
    Base__V1__SchemaWriteRequest write = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
    write.tenant_id = (char *)o->tenant;
    write.schema = (char *)schema_text;
    status = bench_unary_call(c, "/base.v1.Schema/Write", &write.base, NULL, NULL, &details);
  }
  if (status != GRPC_STATUS_OK) {
    snprintf(err, errlen, "setting up tenant %s: status %d: %s", o->tenant, status,
             details ? details : "");
    fprintf(stderr, "tuplecast-bench: %s on %s\n", err, o->target);
  }
  free(details);
  return status == GRPC_STATUS_OK ? 0 : -1;
}

/* --pg-uri's connection for this run (o->pgstat); -1 after a message in err
 * if it cannot be had. */
static int open_pgstat(bench_opts_t *o, char *err, size_t errlen) {
  o->pgstat = NULL;
  if (!o->pg_uri) return 0;
#ifdef BENCH_HAVE_PQ
  o->pgstat = bench_pgstat_open(o->pg_uri, err, errlen);
#else
  snprintf(err, errlen, "--pg-uri: this tuplecast-bench was built without libpq");
#endif
  if (!o->pgstat) fprintf(stderr, PROG ": %s\n", err);
  return o->pgstat ? 0 : -1;
}

/* One scenario run against one server: its own client, tenant setup and
 * report (a server that fails the setup is reported too, with ok 0). */
static int run_one(const scenario_t *sc, bench_opts_t *o) {
  bench_client_t *c = bench_client_new(o->target, o->connections, o->token, o->tls_ca);
  if (!c) return -1;
  char err[512] = "";
  bench_report_t *r = bench_report_new(o);
  int rc = open_pgstat(o, err, sizeof err);
  for (int i = 0; rc == 0 && i < o->tenants; i++) {
    char name[96];
    bench_tenant_name(o, i, name, sizeof name);
    bench_opts_t to = *o;
    to.tenant = name;
    rc = ensure_schema(c, &to, err, sizeof err);
  }
  if (rc == 0) {
    printf("%s against %s (%s)\n", sc->name, o->name, o->target);
    rc = sc->run(o, c, r);
  } else {
    bench_report_str(r, "first_error", err);
  }
  bench_report_num(r, "ok", rc == 0, 0);
  if (bench_report_emit(r, o) < 0) rc = -1;
  bench_report_free(r);
  bench_client_free(c);
#ifdef BENCH_HAVE_PQ
  bench_pgstat_free(o->pgstat);
#endif
  return rc;
}

int main(int argc, char **argv) {
  bench_opts_t o;
  if (parse_args(argc, argv, &o) < 0) return 2;
  bench_raise_fd_limit();
  const scenario_t *sc = NULL;
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
    if (!strcmp(scenarios[i].name, o.scenario)) sc = &scenarios[i];
  if (!sc) {
    fprintf(stderr, "tuplecast-bench: unknown scenario \"%s\"\n%s", o.scenario, usage);
    return 2;
  }
  if (!o.name) o.name = o.target;
  int failed = run_one(sc, &o) < 0;
  /* Every peer runs even if one failed: the report shows which. */
  for (int i = 0; i < n_peers; i++) {
    bench_opts_t po = o;
    po.name = peers[i].name;
    po.target = peers[i].target;
    po.server_pid = peers[i].pid;
    po.settle = peers[i].settle;
    po.pg_uri = NULL; /* --pg-uri is the target's cluster */
    failed |= run_one(sc, &po) < 0;
  }
  return failed ? 1 : 0;
}
