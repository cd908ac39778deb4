/* tuplecast-bench: command line, tenant setup and the scenario table.
 *
 * Ownership: main owns the client and the report of its one scenario run.
 */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The example schema (user, organization, repository) of the integration
 * tests; the write load uses repository#owner@user. */
static const char schema_text[] =
    "entity user {}\n"
    "entity organization {\n"
    "  relation admin @user\n"
    "  relation member @user @organization#admin\n"
    "  attribute ip_range string[]\n"
    "  permission view = admin or member\n"
    "}\n"
    "entity repository {\n"
    "  relation parent @organization\n"
    "  relation owner @user\n"
    "  attribute is_public boolean\n"
    "  permission edit = parent.admin or owner\n"
    "  permission read = is_public or edit\n"
    "}\n";

static const char usage[] =
    "Usage: tuplecast-bench --scenario write|watch-latency|fan-out|catch-up [options]\n"
    "\n"
    "  --target HOST:PORT   Permify-compatible gRPC server (default 127.0.0.1:3478)\n"
    "  --tenant ID          tenant (default t1); gets the example schema if it has none\n"
    "  --token TOKEN        sent as \"authorization: Bearer TOKEN\"\n"
    "  --duration S         seconds of load: write, watch-latency (default 3)\n"
    "  --concurrency N      outstanding Data.Write calls: write, catch-up (default 1)\n"
    "  --batch N            tuples per Data.Write (default 1)\n"
    "  --connections C      client connections (default 1)\n"
    "  --watchers W         watch-latency: watch streams (default 100)\n"
    "  --rate R             watch-latency: writes/s (default 500)\n"
    "  --streams N          fan-out: idle watch streams (default 1000)\n"
    "  --rounds N           fan-out: writes fanned out, one after the other (default 5)\n"
    "  --history N          catch-up: transactions behind the watch (default 20000)\n"
    "  --server-pid PID     read the server's RSS and CPU from /proc/PID\n"
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
};

static int parse_int(const char *name, const char *s, int min, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min || v > 1000000000) {
    fprintf(stderr, "tuplecast-bench: --%s: expected an integer >= %d, got \"%s\"\n", name, min, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

static int parse_num(const char *name, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !(v > 0) || v > 1e9) {
    fprintf(stderr, "tuplecast-bench: --%s: expected a number > 0, got \"%s\"\n", name, s);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, bench_opts_t *o) {
  enum { O_TARGET = 256, O_TENANT, O_TOKEN, O_DURATION, O_CONCURRENCY, O_BATCH, O_CONNECTIONS,
         O_WATCHERS, O_RATE, O_STREAMS, O_ROUNDS, O_HISTORY, O_PID, O_JSON, O_SCENARIO, O_HELP };
  static const struct option longs[] = {
      {"target", required_argument, NULL, O_TARGET},
      {"tenant", required_argument, NULL, O_TENANT},
      {"token", required_argument, NULL, O_TOKEN},
      {"duration", required_argument, NULL, O_DURATION},
      {"concurrency", required_argument, NULL, O_CONCURRENCY},
      {"batch", required_argument, NULL, O_BATCH},
      {"connections", required_argument, NULL, O_CONNECTIONS},
      {"watchers", required_argument, NULL, O_WATCHERS},
      {"rate", required_argument, NULL, O_RATE},
      {"streams", required_argument, NULL, O_STREAMS},
      {"rounds", required_argument, NULL, O_ROUNDS},
      {"history", required_argument, NULL, O_HISTORY},
      {"server-pid", required_argument, NULL, O_PID},
      {"json", required_argument, NULL, O_JSON},
      {"scenario", required_argument, NULL, O_SCENARIO},
      {"help", no_argument, NULL, O_HELP},
      {NULL, 0, NULL, 0},
  };
  *o = (bench_opts_t){.target = "127.0.0.1:3478", .tenant = "t1", .duration = 3, .rate = 500,
                      .concurrency = 1, .batch = 1, .connections = 1, .watchers = 100,
                      .streams = 1000, .rounds = 5, .history = 20000};
  int opt, pid = 0, bad = 0;
  while (!bad && (opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (opt) {
      case O_TARGET: o->target = optarg; break;
      case O_TENANT: o->tenant = optarg; break;
      case O_TOKEN: o->token = optarg; break;
      case O_JSON: o->json = optarg; break;
      case O_SCENARIO: o->scenario = optarg; break;
      case O_DURATION: bad = parse_num("duration", optarg, &o->duration); break;
      case O_RATE: bad = parse_num("rate", optarg, &o->rate); break;
      case O_CONCURRENCY: bad = parse_int("concurrency", optarg, 1, &o->concurrency); break;
      case O_BATCH: bad = parse_int("batch", optarg, 1, &o->batch); break;
      case O_CONNECTIONS: bad = parse_int("connections", optarg, 1, &o->connections); break;
      case O_WATCHERS: bad = parse_int("watchers", optarg, 1, &o->watchers); break;
      case O_STREAMS: bad = parse_int("streams", optarg, 1, &o->streams); break;
      case O_ROUNDS: bad = parse_int("rounds", optarg, 1, &o->rounds); break;
      case O_HISTORY: bad = parse_int("history", optarg, 1, &o->history); break;
      case O_PID: bad = parse_int("server-pid", optarg, 1, &pid); break;
      case O_HELP: fputs(usage, stdout); exit(0);
      default: bad = 1;
    }
  }
  o->server_pid = (pid_t)pid;
  if (!bad && optind < argc) {
    fprintf(stderr, "tuplecast-bench: unexpected argument \"%s\"\n", argv[optind]);
    bad = 1;
  }
  if (!bad && !o->scenario) {
    fputs("tuplecast-bench: --scenario is required\n", stderr);
    bad = 1;
  }
  if (bad) fputs(usage, stderr);
  return bad ? -1 : 0;
}

/* Creates the tenant if it does not exist and writes the example schema if
 * it has none. */
static int ensure_schema(bench_client_t *c, const bench_opts_t *o) {
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
    status = bench_unary_call(c, "/base.v1.Tenancy/Create", &create.base, NULL, NULL, &details);
  }
  if (status == GRPC_STATUS_OK && !has_schema) {
    Base__V1__SchemaWriteRequest write = BASE__V1__SCHEMA_WRITE_REQUEST__INIT;
    write.tenant_id = (char *)o->tenant;
    write.schema = (char *)schema_text;
    status = bench_unary_call(c, "/base.v1.Schema/Write", &write.base, NULL, NULL, &details);
  }
  if (status != GRPC_STATUS_OK)
    fprintf(stderr, "tuplecast-bench: setting up tenant %s on %s: status %d: %s\n", o->tenant,
            o->target, status, details ? details : "");
  free(details);
  return status == GRPC_STATUS_OK ? 0 : -1;
}

int main(int argc, char **argv) {
  bench_opts_t o;
  if (parse_args(argc, argv, &o) < 0) return 2;
  const scenario_t *sc = NULL;
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
    if (!strcmp(scenarios[i].name, o.scenario)) sc = &scenarios[i];
  if (!sc) {
    fprintf(stderr, "tuplecast-bench: unknown scenario \"%s\"\n%s", o.scenario, usage);
    return 2;
  }
  bench_client_t *c = bench_client_new(o.target, o.connections, o.token);
  if (!c) return 1;
  int rc = ensure_schema(c, &o);
  if (rc == 0) {
    printf("%s against %s\n", sc->name, o.target);
    bench_report_t *r = bench_report_new(&o);
    rc = sc->run(&o, c, r);
    bench_report_num(r, "ok", rc == 0, 0);
    if (bench_report_emit(r, &o) < 0) rc = -1;
    bench_report_free(r);
  }
  bench_client_free(c);
  return rc == 0 ? 0 : 1;
}
