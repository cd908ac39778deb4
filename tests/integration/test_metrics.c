/* GET /metrics against the real binary, once per engine (sqlite, postgres in
 * a throwaway cluster): every scrape must pass `promtool check metrics`
 * (Prometheus's own parser and linter, Debian's prometheus package), taken
 * while a client thread writes; and the values must move as the load says:
 * requests by transport, method and code, latency counts, Watch streams
 * open and ended by reason (a client cancelling, one disconnecting, one
 * too slow), watch lag observed once per transaction sent,
 * messages on each transport, feed rows, connections, the backend's pools
 * (and, on postgres, a reconnect after the cluster restarts, and a retry
 * under its SQLSTATE when two nodes race on one row).  metrics.port
 * moves /metrics off the HTTP port, takes at most 8 connections, and is
 * refused without HTTP. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_client.h"
#include "pg_fixture.h"
#include "server_fx.h"
#include "server_proc.h"
#include "tt_api.h"

#define WAIT_MS 10000
#define GRPC_WRITES 20
#define HTTP_WRITES 5
#define LOAD_WRITES 200

static tc_pg_t *pg; /* the postgres engine's cluster */

static const char *engine(void) {
  const char *e = getenv("TUPLECAST_TEST_ENGINE");
  return e && *e ? e : "sqlite";
}

typedef tt_fx_t fx_t;

/* Starts f's server (f from tt_fx_new) on a database of its own. */
static int start(fx_t *f, const char *const *extra) {
  static int n; /* a database of its own for each case */
  char dbname[32];
  snprintf(dbname, sizeof dbname, "metrics%d", ++n);
  const char *uri = strcmp(engine(), "postgres") == 0 ? tc_pg_uri_db(pg, dbname) : f->db;
  if (!uri) return -1;
  f->uri = uri;
  const char *args[24] = {"--grpc-port",
                          "0",
                          "--http-port",
                          "0",
                          "--database-engine",
                          engine(),
                          "--database-uri",
                          uri,
                          "--service-watch-enabled"};
  size_t i = 9;
  for (; extra && *extra && i < 23; extra++) args[i++] = *extra;
  return tt_fx_start(f, args);
}

static int setup(void **state) {
  fx_t *f = tt_fx_new();
  *state = f;
  return start(f, NULL);
}

static int teardown(void **state) { return tt_fx_free(*state) == 0 ? 0 : -1; }

/* ---- HTTP over a raw socket ---------------------------------------------- */

/* Appends what one read brings (waiting up to WAIT_MS); 0 at EOF. */
static size_t read_some(int fd, char **buf, size_t *len) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, WAIT_MS), 1);
  char chunk[65536];
  ssize_t n = read(fd, chunk, sizeof chunk);
  if (n <= 0) return 0;
  *buf = realloc(*buf, *len + (size_t)n + 1);
  memcpy(*buf + *len, chunk, (size_t)n);
  *len += (size_t)n;
  (*buf)[*len] = '\0';
  return (size_t)n;
}

/* One request on a connection of its own ("Connection: close"): the whole
 * response, malloc'd; *status its status code. */
static char *http(int port, const char *method, const char *path, const char *body, int *status) {
  int fd = tt_http_connect(port);
  char req[1024];
  snprintf(req, sizeof req,
           "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\n\r\n%s",
           method, path, body ? strlen(body) : 0, body ? body : "");
  tt_send_all(fd, req, strlen(req));
  char *buf = NULL;
  size_t len = 0;
  while (read_some(fd, &buf, &len)) {
  }
  close(fd);
  assert_non_null(buf);
  assert_int_equal(sscanf(buf, "HTTP/1.1 %d", status), 1);
  return buf;
}

/* ---- scrapes ------------------------------------------------------------- */

/* promtool's verdict on text: 0 when it parses and lints clean. */
static int promtool_check(const char *text) {
  char path[] = "/tmp/tc-metrics-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  for (size_t off = 0, len = strlen(text); off < len;) {
    ssize_t n = write(fd, text + off, len - off);
    assert_true(n > 0);
    off += (size_t)n;
  }
  close(fd);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char out[4096];
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int rc = pclose(p);
  unlink(path);
  if (rc != 0) fprintf(stderr, "promtool check metrics: %s\n", out);
  return rc;
}

/* GET /metrics on port: the body, checked by promtool, malloc'd. */
static char *scrape_port(int port) {
  int status;
  char *resp = http(port, "GET", "/metrics", NULL, &status);
  assert_int_equal(status, 200);
  assert_non_null(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  char *body = strstr(resp, "\r\n\r\n");
  assert_non_null(body);
  body = strdup(body + 4);
  free(resp);
  assert_int_equal(promtool_check(body), 0);
  return body;
}

static char *scrape(fx_t *f) { return scrape_port(f->proc.http_port); }

/* The value of one series ("name{labels}" exactly as exposed), -1 if absent. */
static double value(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *l = text; *l;) {
    if (!strncmp(l, series, n) && l[n] == ' ') return strtod(l + n + 1, NULL);
    const char *nl = strchr(l, '\n');
    if (!nl) break;
    l = nl + 1;
  }
  return -1;
}

/* Scrapes until series has the value want, up to WAIT_MS; fails showing the
 * last value otherwise. */
static void wait_value(fx_t *f, const char *series, double want) {
  long long deadline = tc_now_ms() + WAIT_MS;
  double got;
  for (;;) {
    char *text = scrape(f);
    got = value(text, series);
    free(text);
    if (got == want || tc_now_ms() > deadline) break;
    poll(NULL, 0, 20);
  }
  if (got != want) fail_msg("%s: want %g, got %g", series, want, got);
}

/* ---- load ---------------------------------------------------------------- */

static void write_grpc(tc_client_t *c, int i) {
  char id[32];
  snprintf(id, sizeof id, "%d", i);
  tt_tuple_buf_t tb;
  tt_result_t r =
      tt_write_one(c, "m1", tt_tuple(&tb, "organization", id, "member", "user", "u", ""));
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
}

static void write_http(fx_t *f, int i) {
  char body[256];
  snprintf(body, sizeof body,
           "{\"metadata\":{},\"tuples\":[{\"entity\":{\"type\":\"organization\",\"id\":\"h%d\"},"
           "\"relation\":\"member\",\"subject\":{\"type\":\"user\",\"id\":\"u\"}}]}",
           i);
  int status;
  free(http(f->proc.http_port, "POST", "/v1/tenants/m1/data/write", body, &status));
  assert_int_equal(status, 200);
}

typedef struct {
  const char *target;
  int first;
} load_t;

/* A second client's writes, while the test scrapes. */
static void *load_run(void *arg) {
  load_t *l = arg;
  tc_client_t *c = tc_client_new(l->target);
  for (int i = 0; i < LOAD_WRITES; i++) write_grpc(c, l->first + i);
  tc_client_free(c);
  return NULL;
}

/* An HTTP Watch of m1 from the head with one checkpoint at once: *fd stays
 * open; returns once that first line came (the stream is attached). */
static int http_watch(fx_t *f, char **buf, size_t *len) {
  int fd = tt_http_connect(f->proc.http_port);
  const char *body = "{\"snap_token\":\"\",\"checkpoint_interval_seconds\":3600}";
  char req[512];
  snprintf(req, sizeof req,
           "POST /v1/tenants/m1/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\n\r\n%s",
           strlen(body), body);
  tt_send_all(fd, req, strlen(req));
  while (!*buf || !strstr(*buf, "{\"result\"")) assert_true(read_some(fd, buf, len) > 0);
  return fd;
}

static size_t count(const char *s, const char *needle) {
  size_t n = 0;
  for (; (s = strstr(s, needle)); s++) n++;
  return n;
}

static void expect(const char *text, const char *series, double want) {
  double got = value(text, series);
  if (got != want) fail_msg("%s: want %g, got %g", series, want, got);
}

static void expect_at_least(const char *text, const char *series, double want) {
  double got = value(text, series);
  if (!(got >= want)) fail_msg("%s: want at least %g, got %g", series, want, got);
}

/* How the Watch streams ended: by cancel (or disconnect), as slow consumers,
 * and one Watch call counted with gRPC code. */
static void expect_watch_ends(const char *text, double cancelled, double slow, const char *code) {
  expect(text, "tuplecast_watch_streams_ended_total{reason=\"cancelled\"}", cancelled);
  expect(text, "tuplecast_watch_streams_ended_total{reason=\"slow_consumer\"}", slow);
  char series[160];
  snprintf(series, sizeof series,
           "tuplecast_requests_total{transport=\"grpc\",method=\"/base.v1.Watch/Watch\","
           "code=\"%s\"}",
           code);
  expect(text, series, 1);
}

/* ---- cases --------------------------------------------------------------- */

static void test_values_move(void **state) {
  fx_t *f = *state;
  char *m0 = scrape(f);
  expect(m0, "tuplecast_watch_streams_open", 0);
  expect(m0, "tuplecast_watch_lag_seconds_count", 0);
  assert_non_null(strstr(m0, "tuplecast_build_info{version=\"" TC_VERSION "\",backend=\""));
  free(m0);

  tt_create_tenant(f->client, "m1");
  tt_write_schema(f->client, "m1", NULL);
  /* Watches on both transports, each live once its first checkpoint came. */
  tc_stream_t *s = tt_watch_open_checkpoint(f->client, "m1", "", 3600);
  ProtobufCMessage *msg = NULL;
  assert_int_equal(tc_stream_next(s, &base__v1__watch_response__descriptor, &msg, WAIT_MS), 0);
  protobuf_c_message_free_unpacked(msg, NULL);
  char *hbuf = NULL;
  size_t hlen = 0;
  int hfd = http_watch(f, &hbuf, &hlen);
  wait_value(f, "tuplecast_watch_streams_open", 2);

  /* Writes over both transports while other writes run and scrapes pass promtool. */
  load_t load = {f->proc.target, 1000};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, load_run, &load), 0);
  for (int i = 0; i < GRPC_WRITES; i++) write_grpc(f->client, i);
  for (int i = 0; i < HTTP_WRITES; i++) {
    write_http(f, i);
    free(scrape(f));
  }
  pthread_join(th, NULL);
  const int txns = GRPC_WRITES + HTTP_WRITES + LOAD_WRITES;
  for (int i = 0; i < txns; i++) {
    assert_int_equal(tc_stream_next(s, &base__v1__watch_response__descriptor, &msg, WAIT_MS), 0);
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  while (count(hbuf, "{\"result\"") < (size_t)txns + 1) assert_true(read_some(hfd, &hbuf, &hlen));

  char *m = scrape(f);
  expect(m,
         "tuplecast_requests_total{transport=\"grpc\",method=\"/base.v1.Data/Write\",code=\"OK\"}",
         GRPC_WRITES + LOAD_WRITES);
  expect(m,
         "tuplecast_requests_total{transport=\"http\",method=\"/base.v1.Data/Write\",code=\"OK\"}",
         HTTP_WRITES);
  expect(m,
         "tuplecast_requests_total{transport=\"grpc\",method=\"/base.v1.Tenancy/Create\","
         "code=\"OK\"}",
         1);
  expect(m, "tuplecast_request_duration_seconds_count{method=\"/base.v1.Data/Write\"}", txns);
  expect(m, "tuplecast_request_duration_seconds_bucket{method=\"/base.v1.Data/Write\",le=\"+Inf\"}",
         txns);
  expect(m, "tuplecast_watch_streams_open", 2);
  expect(m, "tuplecast_watch_streams_started_total", 2);
  /* Each transaction went to both streams from the ring: one lag each. */
  expect(m, "tuplecast_watch_lag_seconds_count", 2 * txns);
  expect(m, "tuplecast_watch_messages_sent_total{transport=\"grpc\"}", txns + 1);
  expect(m, "tuplecast_watch_messages_sent_total{transport=\"http\"}", txns + 1);
  expect_at_least(m, "tuplecast_watch_bytes_sent_total{transport=\"grpc\"}", 20.0 * txns);
  expect_at_least(m, "tuplecast_watch_bytes_sent_total{transport=\"http\"}", 100.0 * txns);
  expect(m, "tuplecast_watch_feed_rows_total{kind=\"feed\"}", txns);
  expect_at_least(m, "tuplecast_watch_feed_reads_total{kind=\"feed\"}", 1);
  expect_at_least(m, "tuplecast_connections_open{transport=\"grpc\"}", 1);
  expect_at_least(m, "tuplecast_connections_open{transport=\"http\"}",
                  2); /* the watch, the scrape */
  expect_at_least(m, "tuplecast_backend_operations_total{op=\"write\"}", txns);
  expect_at_least(m, "tuplecast_process_resident_memory_bytes", 1e6);
  expect_at_least(m, "tuplecast_process_open_fds", 5);
  if (!strcmp(engine(), "postgres")) {
    expect_at_least(m, "tuplecast_backend_pool_connections{pool=\"write\"}", 1);
    expect_at_least(m, "tuplecast_backend_pool_connections{pool=\"read\"}", 1);
    expect_at_least(m, "tuplecast_backend_feed_commit_lag_seconds_count", 1);
  } else {
    expect(m, "tuplecast_backend_pool_connections{pool=\"writer\"}", 1);
    expect(m, "tuplecast_backend_pool_connections{pool=\"reader\"}", 1);
  }
  free(m);

  /* Ending the streams: the client cancels one, the other disconnects. */
  tc_stream_cancel(s);
  assert_int_equal(tc_stream_next(s, &base__v1__watch_response__descriptor, &msg, WAIT_MS), 1);
  tc_stream_free(s);
  close(hfd);
  free(hbuf);
  wait_value(f, "tuplecast_watch_streams_open", 0);
  m = scrape(f);
  expect_watch_ends(m, 2, 0, "Canceled");
  free(m);
}

/* A Watch client that reads nothing is ended as a slow consumer once more
 * than database.watch_buffer_size messages wait for it: counted under that
 * reason, and its call under ResourceExhausted. */
static void test_slow_consumer_counted(void **state) {
  fx_t *f = tt_fx_new();
  *state = f;
  const char *extra[] = {"--database-watch-buffer-size", "16", NULL};
  assert_int_equal(start(f, extra), 0);
  tt_create_tenant(f->client, "m1");
  tt_write_schema(f->client, "m1", NULL);
  tc_client_t *slow_client = tc_client_new(f->proc.target);
  tc_stream_t *slow = tt_watch_open_checkpoint(slow_client, "m1", "", 3600);
  ProtobufCMessage *msg = NULL;
  assert_int_equal(tc_stream_next(slow, &base__v1__watch_response__descriptor, &msg, WAIT_MS), 0);
  protobuf_c_message_free_unpacked(msg, NULL);
  /* Big transactions, so the stream's flow-control window fills. */
  enum { PER = 500 };
  tt_tuple_buf_t *tb = calloc(PER, sizeof *tb);
  Base__V1__Tuple **ts = calloc(PER, sizeof *ts);
  char(*ids)[128] = calloc(PER, sizeof *ids);
  double ended = 0;
  for (int i = 0; i < 200 && ended < 1; i++) {
    for (int k = 0; k < PER; k++) {
      snprintf(ids[k], sizeof ids[k], "user-%d-%d-%0100d", i, k, 0);
      ts[k] = tt_tuple(&tb[k], "organization", "o1", "member", "user", ids[k], "");
    }
    free(tt_write_data(f->client, "m1", ts, PER, NULL, 0, NULL));
    char *m = scrape(f);
    ended = value(m, "tuplecast_watch_streams_ended_total{reason=\"slow_consumer\"}");
    free(m);
  }
  free(ids);
  free(ts);
  free(tb);
  char *m = scrape(f);
  expect_watch_ends(m, 0, 1, "ResourceExhausted");
  expect(m, "tuplecast_watch_streams_open", 0);
  free(m);
  tc_stream_free(slow);
  tc_client_free(slow_client);
}

/* A restarted cluster: the pools connect again and say so. */
static void test_postgres_reconnects(void **state) {
  fx_t *f = *state;
  char *m = scrape(f);
  expect(m, "tuplecast_backend_reconnects_total{pool=\"write\"}", 0);
  free(m);
  assert_int_equal(tc_pg_restart(pg), 0);
  /* The write pool is back once a write goes through. */
  Base__V1__TenantCreateRequest b;
  long long deadline = tc_now_ms() + 30000;
  tt_result_t r;
  while ((r = tt_call(f->client, "/base.v1.Tenancy/Create", &tt_tenant_create(&b, "m1", "m1")->base,
                      &base__v1__tenant_create_response__descriptor))
                 .code != 0 &&
         tc_now_ms() < deadline) {
    tt_result_free(&r);
    poll(NULL, 0, 50);
  }
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  m = scrape(f);
  expect_at_least(m, "tuplecast_backend_reconnects_total{pool=\"write\"}", 1);
  free(m);
}

typedef struct {
  const char *target;
  volatile int *stop;
} racer_t;

/* Writes one attribute again and again until told to stop; outcomes are
 * not checked (a write that loses every retry fails, and that is fine). */
static void *race_run(void *arg) {
  racer_t *r = arg;
  tc_client_t *c = tc_client_new(r->target);
  for (int i = 0; !*r->stop; i++) {
    tt_attr_buf_t ab;
    Base__V1__Attribute *a = tt_bool_attr(&ab, "repository", "1", "is_public", i & 1);
    tt_result_t res;
    tt_write_data(c, "m1", NULL, 0, &a, 1, &res);
    tt_result_free(&res);
    tc_any_clear(&ab.any);
  }
  tc_client_free(c);
  return NULL;
}

/* Two nodes on one database change one attribute at once: each write
 * expires the active value and inserts the next in one SERIALIZABLE
 * transaction, so two that overlap collide (40001, "could not serialize"),
 * and the backend runs the loser again: counted under that SQLSTATE. */
static void test_postgres_retries(void **state) {
  fx_t *f = *state;
  tt_create_tenant(f->client, "m1");
  tt_write_schema(f->client, "m1", NULL);
  tc_proc_t b;
  const char *args[] = {
      "--grpc-port",    "0",    "--http-port", "0", "--database-engine", "postgres",
      "--database-uri", f->uri, NULL};
  assert_int_equal(tc_proc_start(&b, args), 0);
  volatile int stop = 0;
  racer_t r[2] = {{f->proc.target, &stop}, {b.target, &stop}};
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, race_run, &r[i % 2]), 0);
  long long deadline = tc_now_ms() + 30000;
  double got;
  do {
    char *m = scrape(f);
    got = value(m, "tuplecast_backend_retries_total{sqlstate=\"40001\"}");
    free(m);
  } while (got < 1 && tc_now_ms() < deadline && poll(NULL, 0, 50) == 0);
  stop = 1;
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  assert_int_equal(tc_proc_stop(&b, NULL), 0);
  if (got < 1) fail_msg("no 40001 retry counted in 30 s of racing writes");
}

/* Picks a free TCP port on loopback (closed again, so a race is possible
 * but unlikely on a test machine). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* metrics.port: /metrics there and only there; nothing else there. */
static void test_metrics_port(void **state) {
  fx_t *f = tt_fx_new();
  *state = f;
  char port[16];
  snprintf(port, sizeof port, "%d", free_port());
  const char *extra[] = {"--metrics-port", port, NULL};
  assert_int_equal(start(f, extra), 0);
  char line[64];
  snprintf(line, sizeof line, "metrics listening on port %s", port);
  assert_non_null(tc_proc_wait_log(&f->proc, 0, line, WAIT_MS));
  char *m = scrape_port(atoi(port));
  expect_at_least(m, "tuplecast_process_open_fds", 1);
  free(m);
  int status;
  free(http(f->proc.http_port, "GET", "/metrics", NULL, &status));
  assert_int_equal(status, 404);
  free(http(atoi(port), "GET", "/healthz", NULL, &status));
  assert_int_equal(status, 404);
  free(http(atoi(port), "POST", "/v1/tenants/create", "{\"id\":\"x\",\"name\":\"x\"}", &status));
  assert_int_equal(status, 404);
  /* The API still answers on the HTTP port. */
  free(http(f->proc.http_port, "GET", "/healthz", NULL, &status));
  assert_int_equal(status, 200);
}

/* GET /metrics on a connection of its own: the raw response, malloc'd; NULL
 * when the server closed the connection without answering. */
static char *try_scrape(int port) {
  int fd = tt_http_connect(port);
  const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  tt_send_all(fd, get, strlen(get));
  char *buf = NULL;
  size_t len = 0;
  while (read_some(fd, &buf, &len)) {
  }
  close(fd);
  return buf;
}

/* metrics.port takes at most 8 connections (docs/configuration.md): a 9th
 * is closed at once, and a scrape gets in again once one of them leaves. */
static void test_metrics_port_connection_limit(void **state) {
  fx_t *f = tt_fx_new();
  *state = f;
  char port[16];
  snprintf(port, sizeof port, "%d", free_port());
  const char *extra[] = {"--metrics-port", port, "--http-header-timeout", "60s", NULL};
  assert_int_equal(start(f, extra), 0);
  char line[64];
  snprintf(line, sizeof line, "metrics listening on port %s", port);
  assert_non_null(tc_proc_wait_log(&f->proc, 0, line, WAIT_MS));
  int held[8];
  for (int i = 0; i < 8; i++) held[i] = tt_http_connect(atoi(port));
  /* Accepted in order: the ninth finds the eight there and is closed. */
  int ninth = tt_http_connect(atoi(port));
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(read_some(ninth, &buf, &len), 0);
  assert_null(buf);
  close(ninth);
  close(held[0]);
  long long deadline = tc_now_ms() + WAIT_MS;
  char *resp;
  while (!(resp = try_scrape(atoi(port))) && tc_now_ms() < deadline) poll(NULL, 0, 20);
  assert_non_null(resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  free(resp);
  for (int i = 1; i < 8; i++) close(held[i]);
}

/* Without the HTTP transport there is nothing to serve metrics.port: refused. */
static void test_metrics_port_needs_http(void **state) {
  (void)state;
  const char *args[] = {"serve",
                        "--grpc-port",
                        "0",
                        "--http-enabled=false",
                        "--metrics-port",
                        "9",
                        "--database-engine",
                        "memory",
                        NULL};
  char *out = NULL;
  int rc = tc_proc_run(args, &out);
  assert_int_equal(rc, 2);
  assert_non_null(strstr(out, "metrics.port: the metrics listener is part of the HTTP transport"));
  free(out);
}

static int no_setup(void **state) {
  *state = NULL;
  return 0;
}

int main(void) {
  if (strcmp(engine(), "postgres") == 0 && tc_pg_start(NULL, &pg) != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_values_move, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slow_consumer_counted, no_setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics_port, no_setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics_port_connection_limit, no_setup, teardown),
      cmocka_unit_test(test_metrics_port_needs_http),
  };
  /* Only postgres has connections to lose. */
  const struct CMUnitTest postgres[] = {
      cmocka_unit_test_setup_teardown(test_postgres_reconnects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_postgres_retries, setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
  if (strcmp(engine(), "postgres") == 0)
    failed += cmocka_run_group_tests_name("postgres", postgres, NULL, NULL);
  tc_pg_stop(pg);
  return failed ? 1 : 0;
}
