/* Connections against the real binary: descriptor exhaustion on both ports
 * and recovery, the gRPC preface and HTTP header timeouts, and the
 * connection limits. */
#define _GNU_SOURCE /* prlimit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "server_proc.h"
#include "tt_api.h"

#define N_FLOOD 600         /* connections per port, well over the lowered limit */
#define NOFILE_HEADROOM 120 /* descriptors the server may open after prlimit */

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/* An empty HTTP/2 SETTINGS frame: what a client sends after the preface. */
static const char SETTINGS[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};

static int start(tc_proc_t *p, const char *const *extra) {
  const char *args[24] = {"--grpc-port", "0", "--http-port", "0", "--database-engine", "memory"};
  size_t n = 6;
  for (; extra && *extra && n < 23; extra++) args[n++] = *extra;
  args[n] = NULL;
  return tc_proc_start(p, args);
}

static int stop(tc_proc_t *p) {
  /* Graceful shutdown must exit 0 (sanitizers make leaks fail it). */
  return tc_proc_stop(p, NULL);
}

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

static void send_all(int fd, const void *p, size_t n) {
  assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Milliseconds from since until the server closed fd (EOF or reset),
 * reading and dropping whatever it sends; -1 if still open timeout_ms from
 * now. */
static long long closed_after(int fd, long long since, int timeout_ms) {
  long long deadline = tc_now_ms() + timeout_ms;
  for (long long left; (left = deadline - tc_now_ms()) > 0;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)left) <= 0) continue;
    char buf[4096];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) return tc_now_ms() - since;
  }
  return -1;
}

/* gRPC took the connection over: it answers the preface with SETTINGS. */
static void expect_http2_settings(int fd) {
  send_all(fd, PREFACE, sizeof PREFACE - 1);
  send_all(fd, SETTINGS, sizeof SETTINGS);
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, TT_TIMEOUT), 1);
  unsigned char head[9];
  assert_int_equal(recv(fd, head, sizeof head, MSG_WAITALL), (ssize_t)sizeof head);
  assert_int_equal(head[3], 4); /* frame type SETTINGS */
}

static int grpc_health_ok(const char *target) {
  tc_client_t *c = tc_client_new(target);
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  int code =
      tc_client_unary(c, "/grpc.health.v1.Health/Check", &req.base,
                      &grpc__health__v1__health_check_response__descriptor, &resp, NULL, NULL, 300);
  if (resp) protobuf_c_message_free_unpacked(resp, NULL);
  tc_client_free(c);
  return code == 0;
}

static int grpc_write_ok(const char *target) {
  tc_client_t *c = tc_client_new(target);
  tt_tuple_buf_t tb;
  tt_result_t r =
      tt_write_one(c, "t1", tt_tuple(&tb, "organization", "o1", "admin", "user", "u1", ""));
  int ok = r.code == 0;
  tt_result_free(&r);
  tc_client_free(c);
  return ok;
}

/* GET /healthz on fd (or a new connection when fd < 0): 1 when answered 200. */
static int http_health_ok(int port, int fd) {
  int own = fd < 0;
  if (own && (fd = dial(port)) < 0) return 0;
  static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  char buf[512] = {0};
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int ok = send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1) &&
           poll(&pfd, 1, 1000) == 1 && recv(fd, buf, sizeof buf - 1, 0) > 0 &&
           strncmp(buf, "HTTP/1.1 200", 12) == 0;
  if (own) close(fd);
  return ok;
}

static int count_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static size_t count_lines(const char *log, const char *what) {
  size_t n = 0;
  for (const char *p = log; p && (p = strstr(p, what)); p++) n++;
  return n;
}

/* Reads the server's stderr until what appears, up to timeout_ms. */
static int wait_log(tc_proc_t *p, const char *what, int timeout_ms) {
  return tc_proc_wait_log(p, 0, what, timeout_ms) != NULL;
}

/* Opens n idle connections to port into fds (those the kernel refuses: -1). */
static void flood(int port, int *fds, int n) {
  for (int i = 0; i < n; i++) fds[i] = dial(port);
}

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
}

/* The server runs out of descriptors (its limit is lowered under it, as if
 * something else had taken them) with idle connections on both ports; once
 * they close, both ports serve again within a second.  gRPC 1.51's own
 * listener gave up for good on the first EMFILE. */
static void test_exhaustion_recovers(void **state) {
  (void)state;
  tc_proc_t p;
  assert_int_equal(start(&p, NULL), 0);
  tc_client_t *c = tc_client_new(p.target);
  tt_write_schema(c, "t1", NULL);
  tc_client_free(c);
  struct rlimit rl = {.rlim_cur = (rlim_t)(count_fds(p.pid) + NOFILE_HEADROOM)};
  rl.rlim_max = rl.rlim_cur;
  assert_int_equal(prlimit(p.pid, RLIMIT_NOFILE, &rl, NULL), 0);
  static int gfds[N_FLOOD], hfds[N_FLOOD];
  flood(p.grpc_port, gfds, N_FLOOD);
  flood(p.http_port, hfds, N_FLOOD);
  assert_true(wait_log(&p, "grpc: out of file descriptors", TT_TIMEOUT));
  assert_true(wait_log(&p, "http: out of file descriptors", TT_TIMEOUT));
  /* While exhausted a new client is refused, not left hanging. */
  int late = dial(p.grpc_port);
  assert_true(late >= 0);
  long long refused_ms = closed_after(late, tc_now_ms(), 3000);
  close(late);
  assert_true(refused_ms >= 0);
  close_all(gfds, N_FLOOD);
  close_all(hfds, N_FLOOD);
  long long t0 = tc_now_ms();
  int grpc_ok = 0, write_ok = 0, http_ok = 0;
  while (!(grpc_ok && write_ok && http_ok) && tc_now_ms() - t0 < 1000) {
    grpc_ok = grpc_ok || grpc_health_ok(p.target);
    write_ok = write_ok || (grpc_ok && grpc_write_ok(p.target));
    http_ok = http_ok || http_health_ok(p.http_port, -1);
  }
  print_message(
      "recovered in %lld ms (grpc %d, write %d, http %d); late client refused in %lld ms\n",
      tc_now_ms() - t0, grpc_ok, write_ok, http_ok, refused_ms);
  assert_true(grpc_ok && write_ok && http_ok);
  /* One warning per episode, not one per connection. */
  assert_int_equal(count_lines(p.log, "grpc: out of file descriptors"), 1);
  assert_int_equal(count_lines(p.log, "http: out of file descriptors"), 1);
  assert_int_equal(stop(&p), 0);
}

/* An HTTP Watch stream outlives the header timeout: it only covers reading
 * requests and idle keep-alive. */
static void watch_outlives_header_timeout(tc_proc_t *p) {
  tc_client_t *c = tc_client_new(p->target);
  tt_write_schema(c, "t1", NULL);
  tc_client_free(c);
  static const char body[] = "{\"snap_token\":\"\",\"checkpoint_interval_seconds\":3600}";
  char req[512];
  int n = snprintf(req, sizeof req,
                   "POST /v1/tenants/t1/watch HTTP/1.1\r\nHost: t\r\nContent-Type: "
                   "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   sizeof body - 1, body);
  int w = dial(p->http_port);
  send_all(w, req, (size_t)n);
  char buf[4096];
  struct pollfd pfd = {.fd = w, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, TT_TIMEOUT), 1); /* the first checkpoint */
  assert_true(recv(w, buf, sizeof buf, 0) > 0);
  assert_int_equal(closed_after(w, 0, 1000), -1);
  assert_true(grpc_write_ok(p->target));
  assert_int_equal(poll(&pfd, 1, TT_TIMEOUT), 1);
  ssize_t r = recv(w, buf, sizeof buf - 1, 0);
  assert_true(r > 0);
  buf[r] = '\0';
  assert_non_null(strstr(buf, "OPERATION_CREATE"));
  close(w);
}

/* A gRPC connection that sends no preface, or the wrong bytes, is closed; an
 * HTTP connection that sends no complete request head is closed. */
static void test_handshake_and_header_timeouts(void **state) {
  (void)state;
  tc_proc_t p;
  const char *extra[] = {"--grpc-handshake-timeout", "400ms", "--http-header-timeout", "400ms",
                         NULL};
  assert_int_equal(start(&p, extra), 0);
  long long t0 = tc_now_ms();
  int silent = dial(p.grpc_port), wrong = dial(p.grpc_port), good = dial(p.grpc_port);
  int head = dial(p.http_port), partial = dial(p.http_port);
  send_all(wrong, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
  send_all(partial, "GET /healthz HTTP/1.1\r\nHost", 27);
  expect_http2_settings(good);
  /* Each measured from the connect, though they are waited for in turn. */
  long long wrong_ms = closed_after(wrong, t0, 3000);
  long long silent_ms = closed_after(silent, t0, 3000);
  long long head_ms = closed_after(head, t0, 3000);
  long long partial_ms = closed_after(partial, t0, 3000);
  print_message("closed after: wrong preface %lld, none %lld; http none %lld, partial %lld ms\n",
                wrong_ms, silent_ms, head_ms, partial_ms);
  assert_true(wrong_ms >= 0 && wrong_ms < 300);
  assert_true(silent_ms >= 300 && silent_ms < 2500);
  assert_true(head_ms >= 300 && partial_ms >= 300);
  /* The connection that sent its preface is gRPC's: no timeout of ours. */
  assert_int_equal(closed_after(good, 0, 600), -1);
  assert_true(grpc_health_ok(p.target));
  close(silent), close(wrong), close(good), close(head), close(partial);
  watch_outlives_header_timeout(&p);
  assert_int_equal(stop(&p), 0);
}

/* Beyond the limit a connection is closed at once; those already open keep
 * working, and room comes back when one closes. */
static void test_max_connections(void **state) {
  (void)state;
  tc_proc_t p;
  const char *extra[] = {"--grpc-max-connections", "3", "--http-max-connections", "2", NULL};
  assert_int_equal(start(&p, extra), 0);
  tc_client_t *c = tc_client_new(p.target);
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  tt_result_t r = tt_call(c, "/grpc.health.v1.Health/Check", &req.base,
                          &grpc__health__v1__health_check_response__descriptor);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  int a = dial(p.grpc_port), b = dial(p.grpc_port);
  expect_http2_settings(a);
  expect_http2_settings(b);
  int over = dial(p.grpc_port);
  long long over_ms = closed_after(over, tc_now_ms(), 3000);
  close(over);
  assert_true(over_ms >= 0 && over_ms < 1000); /* not the 10 s handshake timeout */
  r = tt_call(c, "/grpc.health.v1.Health/Check", &req.base,
              &grpc__health__v1__health_check_response__descriptor);
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
  close(a);
  long long t0 = tc_now_ms();
  int again = 0;
  while (!again && tc_now_ms() - t0 < 2000) again = grpc_health_ok(p.target);
  assert_true(again);

  int h1 = dial(p.http_port), h2 = dial(p.http_port);
  assert_true(http_health_ok(p.http_port, h1));
  int h3 = dial(p.http_port);
  long long h3_ms = closed_after(h3, tc_now_ms(), 3000);
  assert_true(h3_ms >= 0 && h3_ms < 1000);
  assert_true(http_health_ok(p.http_port, h2));
  assert_true(http_health_ok(p.http_port, h1));
  close(h1), close(h2), close(h3), close(b);
  tc_client_free(c);
  assert_int_equal(stop(&p), 0);
}

/* `tuplecast serve --grpc-port 0 --http-port 0 <k> <v>` exits 2 at start
 * with want on stderr. */
static void expect_refused(const char *key, const char *value, const char *want) {
  const char *args[] = {"serve",  "--grpc-port", "0",   "--http-port", "0", "--database-engine",
                        "memory", key,           value, NULL};
  char *out = NULL;
  int rc = tc_proc_run(args, &out);
  if (rc != 2 || !strstr(out, want))
    fail_msg("%s %s: want exit 2 and \"%s\", got %d: %s", key, value, want, rc, out);
  free(out);
}

/* Each transport checks its own keys before anything listens, and the
 * server refuses limits that do not fit RLIMIT_NOFILE naming the key set. */
static void test_limits_refused(void **state) {
  (void)state;
  expect_refused("--grpc-handshake-timeout", "0s",
                 "tuplecast: server.grpc.handshake_timeout: must be longer than 0s");
  expect_refused("--http-header-timeout", "0s",
                 "tuplecast: server.http.header_timeout: must be longer than 0s");
  expect_refused("--grpc-max-connections", "2000000000",
                 "tuplecast: server.grpc.max_connections: the connection limits do not fit");
  expect_refused("--http-max-connections", "2000000000",
                 "tuplecast: server.http.max_connections: the connection limits do not fit");
  /* A database pool larger than the descriptors: the pool's key, not a transport's. */
  expect_refused("--database-max-connections", "9000000000000",
                 "tuplecast: database.max_connections: the connection limits do not fit");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_limits_refused),
      cmocka_unit_test(test_exhaustion_recovers),
      cmocka_unit_test(test_handshake_and_header_timeouts),
      cmocka_unit_test(test_max_connections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
