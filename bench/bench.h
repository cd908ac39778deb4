/* tuplecast-bench: a Permify-protocol load generator on gRPC C core.
 *
 * One thread drives everything through one completion queue: every batch is
 * tagged with a bench_tag_t whose handler advances its call's state machine,
 * so thousands of calls and streams run at once without blocking.  The
 * scenarios (scenario_*.c) build on the client (client.c), the write load
 * (writer.c), latency samples and /proc readings (stats.c) and the report
 * (report.c) that prints the same figures as JSON and as a summary; args.c
 * checks numeric options.  The floor programs (floors/) link the same library
 * (tc_bench), so that they measure and print the same way.
 *
 * Ownership: the caller owns every bench_* object it creates and frees it with
 * the matching _free or _release function; a call or stream must have no batch pending
 * (bench_client_drain) before its memory is reused or freed.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "base/v1/service.pb-c.h"

/* ---- options (main.c) ---------------------------------------------------- */

typedef struct {
  const char *target, *tenant, *token, *scenario, *json;
  const char *tls_ca;     /* PEM file of the CA to trust: TLS to every server; NULL: plaintext */
  const char *name;       /* the server's label in the report (--name, --peer NAME=) */
  double duration;        /* seconds of load (write, watch-latency) */
  double rate;            /* writes/s (watch-latency) */
  double settle;          /* > 0: streams count as in place this long after opening
                      * (servers without checkpoints); 0: at their first one */
  int concurrency;        /* outstanding Data.Write calls (write, catch-up history) */
  int batch;              /* items per Data.Write */
  int watchers;           /* watch-latency */
  int streams;            /* fan-out */
  int open_wave;          /* watch streams opened at a time (0: all at once) */
  int connections;        /* client connections (channels with distinct args) */
  int history;            /* catch-up: transactions behind the watch */
  int tuples;             /* bootstrap: tuples in the tenant */
  int rounds;             /* fan-out: writes delivered to all streams, one after the other */
  int tenants;            /* soak: tenants <tenant>-0.. (1: <tenant> itself) */
  int readers;            /* soak: outstanding reads at most */
  double read_rate;       /* soak: reads/s */
  int preload;            /* soak: tuples written before the timed run */
  int stream_changes;     /* soak: changes a watch stream takes before it is closed */
  const char *soak_check; /* soak: "strict" (NULL) or "loose" bounds */
  const char *pg_uri;     /* multi-tenant: the server's PostgreSQL, for its statement counts */
  struct bench_pgstat_s *pgstat; /* opened from pg_uri by main; NULL: none */
  pid_t server_pid;              /* 0: no server-side figures */
} bench_opts_t;

/* Checked numeric options (args.c): 0, or -1 after a message on stderr
 * naming prog and --name. */
int bench_parse_int(const char *prog, const char *name, const char *s, int min, int *out);
int bench_parse_num(const char *prog, const char *name, const char *s, double *out);

/* One --name VALUE option: where its value goes, by kind. */
typedef enum { BENCH_OPT_STR, BENCH_OPT_INT, BENCH_OPT_NUM, BENCH_OPT_FN } bench_opt_kind_t;
typedef struct {
  const char *name;
  bench_opt_kind_t kind;
  void *dst;            /* const char **, int * (at least 1), double * (> 0) */
  int (*fn)(char *arg); /* BENCH_OPT_FN: 0, or -1 after a message */
} bench_opt_t;
/* Parses argv by opts (ended by a row with name NULL), and --help, which
 * prints usage and exits 0.  Returns 0, or -1 (a bad value, an unknown option
 * or an argument left over) after printing usage to stderr. */
int bench_parse_opts(const char *prog, int argc, char **argv, const bench_opt_t *opts,
                     const char *usage);

/* Bound on every wait for the server (streams in place, deliveries, drain). */
#define BENCH_WAIT_S 60

int64_t bench_now_ns(void);

/* ---- client (client.c) --------------------------------------------------- */

typedef struct bench_tag_s bench_tag_t;
struct bench_tag_s {
  void (*fn)(bench_tag_t *tag, int ok);
};

typedef struct bench_client_s bench_client_t;

/* `connections` channels to target, each with its own TCP connection;
 * token (may be NULL) is sent as "authorization: Bearer <token>"; tls_ca (may
 * be NULL: plaintext) is a PEM file of root certificates for TLS.  NULL when
 * tls_ca cannot be read. */
bench_client_t *bench_client_new(const char *target, int connections, const char *token,
                                 const char *tls_ca);
void bench_client_free(bench_client_t *c);
int bench_client_connections(const bench_client_t *c);
/* Handles completions until until_ns; returns 0 after one was handled, -1 at
 * until_ns. */
int bench_client_poll(bench_client_t *c, int64_t until_ns);
/* Handles completions until no batch is pending; -1 if until_ns came first. */
int bench_client_drain(bench_client_t *c, int64_t until_ns);

/* A unary call.  done runs once with the status, the response bytes (NULL
 * unless OK; freed after done returns) and the status message; done may
 * start the same bench_unary_t again. */
typedef struct bench_unary_s bench_unary_t;
/* What a unary and a streaming call both hold: the call, its message buffers,
 * metadata and final status. */
typedef struct {
  grpc_call *call;
  grpc_byte_buffer *send, *recv;
  grpc_metadata_array initial, trailing;
  grpc_status_code status;
  grpc_slice details;
} bench_rpc_t;
typedef void (*bench_unary_fn)(bench_unary_t *u, grpc_status_code status, grpc_byte_buffer *resp,
                               const char *details);
struct bench_unary_s {
  bench_tag_t tag;
  bench_client_t *client;
  bench_rpc_t rpc;
  int64_t started_ns;
  bench_unary_fn done;
  void *arg;
};
int bench_unary_start(bench_client_t *c, int conn, bench_unary_t *u, const char *method,
                      const ProtobufCMessage *req, bench_unary_fn done, void *arg);
/* Runs one unary call to completion on connection 0, handling every other
 * completion meanwhile.  On OK *resp is the unpacked response; otherwise
 * *details (may be NULL) a malloc'd status message.  Returns the status. */
int bench_unary_call(bench_client_t *c, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                     char **details);

/* A server-streaming call.  Set on_msg (runs per message; bb is freed after
 * it returns) and on_end (may be NULL; runs once, after the last message,
 * with status and details set) before bench_stream_start. */
typedef struct bench_stream_s bench_stream_t;
struct bench_stream_s {
  bench_tag_t start_tag, recv_tag, status_tag;
  bench_client_t *client;
  bench_rpc_t rpc;
  int ended;
  int recv_pending; /* a receive batch is out: not to be released yet */
  void (*on_msg)(bench_stream_t *s, grpc_byte_buffer *bb);
  void (*on_end)(bench_stream_t *s);
  void *arg;
};
int bench_stream_start(bench_client_t *c, int conn, bench_stream_t *s, const char *method,
                       const ProtobufCMessage *req, void *arg);
void bench_stream_cancel(bench_stream_t *s);
/* Frees what the stream holds; only once no batch of it is pending. */
void bench_stream_release(bench_stream_t *s);

/* ---- samples and /proc (stats.c) ----------------------------------------- */

typedef struct {
  int64_t *v; /* nanoseconds */
  size_t n, cap;
} bench_samples_t;
void bench_samples_add(bench_samples_t *s, int64_t ns);
/* p in [0,100]; sorts the samples; 0 when empty. */
int64_t bench_samples_pct(bench_samples_t *s, double p);
void bench_samples_free(bench_samples_t *s);

/* Many connections need many descriptors (1,000 connections of 100 streams
 * each: one per connection, plus gRPC's own): the soft RLIMIT_NOFILE goes
 * up to the hard one. */
void bench_raise_fd_limit(void);
/* VmRSS of pid in KiB, CPU seconds (user + system) of pid; -1 on failure. */
long bench_proc_rss_kib(pid_t pid);
double bench_proc_cpu_s(pid_t pid);
/* Open descriptors of pid (entries of /proc/PID/fd); -1 on failure. */
long bench_proc_fds(pid_t pid);
/* CPU seconds used so far by this process. */
double bench_self_cpu_s(void);
/* CPU seconds all processes of the machine have used (/proc/stat); -1 on
 * failure. */
double bench_machine_busy_s(void);

/* ---- report (report.c) --------------------------------------------------- */

typedef struct bench_report_s bench_report_t;
bench_report_t *bench_report_new(const bench_opts_t *o);
void bench_report_free(bench_report_t *r);
/* A figure; decimals controls both outputs.  Keys carry their unit
 * (_ms, _per_s, _kib, _s). */
void bench_report_num(bench_report_t *r, const char *key, double v, int decimals);
void bench_report_str(bench_report_t *r, const char *key, const char *v);
/* <prefix>_count, _p50_ms, _p90_ms, _p99_ms, _max_ms. */
void bench_report_latency(bench_report_t *r, const char *prefix, bench_samples_t *s);
/* CPU of the client and (with --server-pid) the server since a mark. */
typedef struct {
  double client_s, server_s, machine_s;
  int64_t at_ns;
} bench_cpu_mark_t;
bench_cpu_mark_t bench_cpu_mark(const bench_opts_t *o);
void bench_report_cpu(bench_report_t *r, const bench_opts_t *o, bench_cpu_mark_t since);
/* Prints the summary to stdout and appends the JSON object to --json. */
int bench_report_emit(bench_report_t *r, const bench_opts_t *o);

/* ---- write load (writer.c) ----------------------------------------------- */

/* Issues Data.Write calls of o->batch new tuples each (repository:<unique>
 * #owner@user:u<k>): with rate 0, o->concurrency at a time, each completion
 * starting the next; with rate > 0, one every 1/rate s whatever is
 * outstanding.  Issuing stops at end_ns or after limit calls (0: none). */
typedef struct bench_writer_s bench_writer_t;
/* key: the entity id of the call's first tuple, unique to the call — what a
 * watcher matches the change by (servers need not send the write's token). */
typedef void (*bench_ack_fn)(bench_writer_t *w, uint64_t seq, const char *key, int64_t issued_ns,
                             int64_t ack_ns);
struct bench_writer_s {
  bench_client_t *client;
  const bench_opts_t *opts;
  double rate;
  uint64_t limit;
  int64_t end_ns;
  bench_ack_fn on_ack; /* may be NULL; seq counts issued calls from 0 */
  /* NULL: o->tenant; else call seq writes to tenants[seq % n_tenants]. */
  const char *const *tenants;
  size_t n_tenants;
  void (*on_tick)(bench_writer_t *w, int64_t now); /* may be NULL; each turn of the loop */
  void *arg;
  /* results */
  uint64_t issued, acked, errors;
  char first_error[256];
  bench_samples_t latency; /* issue to acknowledgement */
  int64_t start_ns, last_ack_ns;
};
/* Runs the load and waits for every call; -1 if that wait hit BENCH_WAIT_S. */
int bench_writer_run(bench_writer_t *w);
void bench_writer_release(bench_writer_t *w);
/* One Data.Write of one new tuple on connection 0; *token (malloc'd) on OK. */
int bench_write_one(bench_client_t *c, const bench_opts_t *o, char **token);

/* ---- PostgreSQL statement counts (pgstat.c; built with libpq only) ------ */

typedef struct bench_pgstat_s bench_pgstat_t;
/* Connects to uri and loads pg_stat_statements if the cluster preloads it.
 * NULL after a message in err. */
bench_pgstat_t *bench_pgstat_open(const char *uri, char *err, size_t errlen);
void bench_pgstat_free(bench_pgstat_t *p);
/* Marks now; bench_pgstat_report adds what ran since: pg_statements,
 * pg_statements_per_s, pg_exec_ms_per_s, pg_top (pg_stat_statements) and
 * pg_xacts_per_s (pg_stat_database), and pg_source. */
int bench_pgstat_mark(bench_pgstat_t *p);
void bench_pgstat_report(bench_pgstat_t *p, bench_report_t *r);

/* ---- scenarios ----------------------------------------------------------- */

int bench_scenario_write(const bench_opts_t *o, bench_client_t *c, bench_report_t *r);
int bench_scenario_watch_latency(const bench_opts_t *o, bench_client_t *c, bench_report_t *r);
int bench_scenario_fan_out(const bench_opts_t *o, bench_client_t *c, bench_report_t *r);
int bench_scenario_catch_up(const bench_opts_t *o, bench_client_t *c, bench_report_t *r);
int bench_scenario_multi_tenant(const bench_opts_t *o, bench_client_t *c, bench_report_t *r);
int bench_scenario_soak(const bench_opts_t *o, bench_client_t *c, bench_report_t *r);
/* The name of tenant i of o->tenants: o->tenant itself when there is one. */
void bench_tenant_name(const bench_opts_t *o, int i, char *buf, size_t size);
int bench_scenario_bootstrap(const bench_opts_t *o, bench_client_t *c, bench_report_t *r);

#endif
