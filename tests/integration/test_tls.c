/* TLS end to end: the real tuplecast binary with certificates made at test
 * time (a CA and two leaves, A and B, for 127.0.0.1 and localhost), driven
 * with real TLS clients (the curl and openssl binaries).
 *
 * The server runs TLS on both ports.  HTTPS: a write, a read and a Watch
 * stream that receives the change.  gRPC (the C client with SSL credentials):
 * the same, ALPN h2, and a change written over HTTPS reaching a gRPC stream.
 * Plaintext clients against either TLS port fail without an answer.  Start-up
 * refuses missing, unreadable, non-PEM and mismatched files on both
 * transports (exit 2, one line naming the key and the file).  SIGHUP swaps the
 * certificate for new connections while open Watch streams (HTTPS and gRPC)
 * keep receiving, and a bad file on reload keeps the previous certificate. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server_proc.h"
#include "tt_api.h"

#define WAIT_MS 20000

typedef struct {
  char *dir;
  tc_proc_t proc;
  int port; /* HTTPS */
  char *ca; /* the CA certificate, PEM text */
} fx_t;

static char *vfmt(const char *f, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vfmt(const char *f, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, f, ap);
  assert_true(n >= 0);
  char *s = malloc((size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, f, again);
  va_end(again);
  return s;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = vfmt(f, ap);
  va_end(ap);
  return s;
}

/* Everything left in fp, as a malloc'd string. */
static char *read_all(FILE *fp) {
  char *data = calloc(1, 1);
  size_t len = 0, n;
  char buf[4096];
  while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
    data = realloc(data, len + n + 1);
    memcpy(data + len, buf, n);
    data[len += n] = '\0';
  }
  return data;
}

/* Runs a shell command; returns its exit status, its stdout in *out
 * (malloc'd) when out is not NULL. */
static int sh(char **out, const char *f, ...) __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *cmd = vfmt(f, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char *data = read_all(p);
  int status = pclose(p);
  free(cmd);
  if (out)
    *out = data;
  else
    free(data);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* A CA, leaves a and b signed by it (serials 10 and 11), an intermediate CA
 * and leaf c signed by it (c.chain: c then the intermediate), and cert.pem /
 * key.pem: the files the server is pointed at, a copy of a. */
static void make_certs(const char *dir) {
  int rc = sh(NULL,
              "set -e; cd '%s'; "
              "ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
              "openssl req -x509 $ec -days 2 -subj /CN=tuplecast-test-ca -keyout ca.key "
              "-out ca.pem 2>/dev/null; "
              "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.cnf; "
              "for n in a:10 b:11; do l=${n%%:*}; "
              "openssl req $ec -subj /CN=localhost -keyout $l.key -out $l.csr 2>/dev/null; "
              "openssl x509 -req -in $l.csr -CA ca.pem -CAkey ca.key -set_serial ${n#*:} "
              "-days 2 -extfile san.cnf -out $l.pem 2>/dev/null; done; "
              "printf 'basicConstraints=critical,CA:true\\nkeyUsage=keyCertSign\\n' > ca.cnf; "
              "openssl req $ec -subj /CN=tuplecast-test-intermediate -keyout inter.key "
              "-out inter.csr 2>/dev/null; "
              "openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key -set_serial 20 -days 2 "
              "-extfile ca.cnf -out inter.pem 2>/dev/null; "
              "openssl req $ec -subj /CN=localhost -keyout c.key -out c.csr 2>/dev/null; "
              "openssl x509 -req -in c.csr -CA inter.pem -CAkey inter.key -set_serial 12 "
              "-days 2 -extfile san.cnf -out c.pem 2>/dev/null; cat c.pem inter.pem > c.chain; "
              "cp a.pem cert.pem; cp a.key key.pem; echo 'not a certificate' > junk.pem",
              dir);
  assert_int_equal(rc, 0);
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  char *data = read_all(fp);
  fclose(fp);
  return data;
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  *state = f;
  f->dir = tc_temp_dir();
  make_certs(f->dir);
  int rc = tc_proc_start_tls(&f->proc, f->dir, (const char *[]){"--log-level", "debug", NULL});
  char *ca = fmt("%s/ca.pem", f->dir);
  f->ca = slurp(ca);
  free(ca);
  if (rc != 0) return -1;
  f->port = tc_proc_http_port(&f->proc, WAIT_MS);
  return f->port > 0 ? 0 : -1;
}

static int teardown(void **state) {
  fx_t *f = *state;
  int rc = tc_proc_teardown(&f->proc, f->dir);
  free(f->ca);
  free(f);
  return rc;
}

/* POSTs body (or GETs when NULL) over HTTPS, trusting only the test CA;
 * asserts curl succeeded and returns the response body (malloc'd). */
static char *https(fx_t *f, const char *host, const char *path, const char *body) {
  char *out = NULL;
  int rc = sh(&out,
              "curl -sS --fail-with-body --max-time 20 --cacert '%s/ca.pem' %s%s%s "
              "'https://%s:%d%s'",
              f->dir, body ? "-H 'Content-Type: application/json' --data-binary '" : "",
              body ? body : "", body ? "'" : "", host, f->port, path);
  if (rc != 0) fprintf(stderr, "curl exit %d: %s\n", rc, out);
  assert_int_equal(rc, 0);
  return out;
}

static void expect_has(char *text, const char *needle) {
  int found = strstr(text, needle) != NULL;
  if (!found) fprintf(stderr, "expected \"%s\" in: %s\n", needle, text);
  free(text);
  assert_true(found);
}

/* SHA-256 fingerprint line of a certificate file, or of the certificate the
 * server presents to a new connection on port (file NULL). */
static char *fingerprint(fx_t *f, const char *file, int port) {
  char *out = NULL;
  int rc = file ? sh(&out, "openssl x509 -noout -fingerprint -sha256 -in '%s/%s'", f->dir, file)
                : sh(&out,
                     "openssl s_client -connect 127.0.0.1:%d -servername localhost "
                     "</dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
                     port);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "Fingerprint="));
  return out;
}

/* Both ports present the certificate in file to new connections. */
static void expect_served(fx_t *f, const char *file) {
  char *want = fingerprint(f, file, 0), *got = fingerprint(f, NULL, f->port);
  assert_string_equal(got, want);
  free(got);
  got = fingerprint(f, NULL, f->proc.grpc_port);
  assert_string_equal(got, want);
  free(want);
  free(got);
}

/* ---- Watch over HTTPS: curl -N, its stdout on a pipe ---- */

typedef struct {
  pid_t pid;
  int fd;
  char buf[65536];
  size_t len;
} watcher_t;

static void watch_start(fx_t *f, watcher_t *w, const char *tenant) {
  char *url = fmt("https://localhost:%d/v1/tenants/%s/watch", f->port, tenant);
  char *ca = fmt("%s/ca.pem", f->dir);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  memset(w, 0, sizeof *w);
  w->pid = fork();
  if (w->pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp("curl", "curl", "-sS", "-N", "--cacert", ca, "--data-binary",
           "{\"checkpoint_interval_seconds\":3600}", url, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  w->fd = fds[0];
  free(url);
  free(ca);
}

/* The next NDJSON line (malloc'd, without its newline), waiting up to WAIT_MS. */
static char *watch_line(watcher_t *w) {
  for (;;) {
    char *nl = memchr(w->buf, '\n', w->len);
    if (nl) {
      char *line = strndup(w->buf, (size_t)(nl - w->buf));
      w->len -= (size_t)(nl - w->buf) + 1;
      memmove(w->buf, nl + 1, w->len);
      return line;
    }
    struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
    assert_true(w->len < sizeof w->buf);
    ssize_t n = read(w->fd, w->buf + w->len, sizeof w->buf - w->len);
    assert_true(n > 0);
    w->len += (size_t)n;
  }
}

static void watch_stop(watcher_t *w) {
  kill(w->pid, SIGKILL);
  waitpid(w->pid, NULL, 0);
  close(w->fd);
}

static const char schema[] =
    "{\"schema\":\"entity user {}\\nentity doc {\\n  relation owner @user\\n}\\n\"}";

static char *write_tuple(fx_t *f, const char *doc, const char *user) {
  char *body =
      fmt("{\"metadata\":{},\"tuples\":[{\"entity\":{\"type\":\"doc\",\"id\":\"%s\"},"
          "\"relation\":\"owner\",\"subject\":{\"type\":\"user\",\"id\":\"%s\"}}]}",
          doc, user);
  char *out = https(f, "127.0.0.1", "/v1/tenants/t1/data/write", body);
  free(body);
  return out;
}

/* A watch line that carries the tuple doc:<doc>#owner@user:<user>. */
static void expect_change(char *line, const char *doc, const char *user) {
  char *want =
      fmt("{\"operation\":\"OPERATION_CREATE\",\"tuple\":{\"entity\":{\"type\":\"doc\","
          "\"id\":\"%s\"},\"relation\":\"owner\",\"subject\":{\"type\":\"user\",\"id\":"
          "\"%s\",\"relation\":\"\"}}}",
          doc, user);
  expect_has(line, want);
  free(want);
}

/* ---- gRPC over TLS: the C client with SSL credentials ---- */

static const char schema_text[] = "entity user {}\nentity doc {\n  relation owner @user\n}\n";

static tc_client_t *grpc_tls(fx_t *f) {
  tc_client_t *c = tc_client_new_tls(f->proc.target, f->ca);
  assert_non_null(c);
  return c;
}

/* A Watch stream on t1, live once its first checkpoint arrived. */
static tc_stream_t *grpc_watch(tc_client_t *c) {
  Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
  req.tenant_id = "t1";
  req.checkpoint_interval_seconds = 3600;
  tc_stream_t *s = tc_client_stream_open(c, "/base.v1.Watch/Watch", &req.base, NULL, 0);
  assert_non_null(s);
  ProtobufCMessage *m = NULL;
  assert_int_equal(tc_stream_next(s, &base__v1__watch_response__descriptor, &m, WAIT_MS), 0);
  Base__V1__WatchResponse *w = (Base__V1__WatchResponse *)m;
  assert_non_null(w->changes);
  assert_int_equal(w->changes->n_data_changes, 0);
  protobuf_c_message_free_unpacked(m, NULL);
  return s;
}

/* The next message on s is the creation of doc:<doc>#owner@user:<user>. */
static void grpc_expect_change(tc_stream_t *s, const char *doc, const char *user) {
  ProtobufCMessage *m = NULL;
  assert_int_equal(tc_stream_next(s, &base__v1__watch_response__descriptor, &m, WAIT_MS), 0);
  Base__V1__WatchResponse *w = (Base__V1__WatchResponse *)m;
  assert_non_null(w->changes);
  assert_int_equal(w->changes->n_data_changes, 1);
  Base__V1__DataChange *ch = w->changes->data_changes[0];
  assert_int_equal(ch->operation, BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE);
  assert_int_equal(ch->type_case, BASE__V1__DATA_CHANGE__TYPE_TUPLE);
  assert_string_equal(ch->tuple->entity->id, doc);
  assert_string_equal(ch->tuple->subject->id, user);
  protobuf_c_message_free_unpacked(m, NULL);
}

static void grpc_write(tc_client_t *c, const char *doc, const char *user) {
  tt_tuple_buf_t b;
  tt_result_t r = tt_write_one(c, "t1", tt_tuple(&b, "doc", doc, "owner", "user", user, ""));
  if (r.code != 0) fprintf(stderr, "write: %d %s\n", r.code, r.details ? r.details : "");
  assert_int_equal(r.code, 0);
  tt_result_free(&r);
}

/* ---- tests ---- */

static void test_https_write_read_watch(void **state) {
  fx_t *f = *state;
  expect_has(https(f, "localhost", "/healthz", NULL), "{\"status\":\"SERVING\"}");
  expect_has(https(f, "localhost", "/v1/tenants/t1/schemas/write", schema), "schema_version");
  watcher_t w;
  watch_start(f, &w, "t1");
  expect_has(watch_line(&w), "\"data_changes\":[]"); /* the checkpoint: the stream is live */
  expect_has(write_tuple(f, "d1", "alice"), "{\"snap_token\":\"");
  expect_change(watch_line(&w), "d1", "alice");
  expect_has(https(f, "127.0.0.1", "/v1/tenants/t1/data/relationships/read",
                   "{\"metadata\":{},\"filter\":{\"entity\":{\"type\":\"doc\",\"ids\":[\"d1\"]}}}"),
             "\"subject\":{\"type\":\"user\",\"id\":\"alice\"");
  watch_stop(&w);
}

/* Reads until the server closes; returns what came (malloc'd). */
static char *read_to_eof(int fd) {
  char *data = calloc(1, 1);
  size_t len = 0;
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return data;
    data = realloc(data, len + (size_t)n + 1);
    memcpy(data + len, buf, (size_t)n);
    data[len += (size_t)n] = '\0';
  }
}

static int connect_send(int port, const char *data, size_t len);

static void raw_closed_without_http(fx_t *f, const char *bytes, size_t len) {
  int fd = connect_send(f->port, bytes, len);
  char *got = read_to_eof(fd);
  assert_null(strstr(got, "HTTP/"));
  free(got);
  close(fd);
}

static void test_plaintext_client_refused(void **state) {
  fx_t *f = *state;
  char *out = NULL;
  assert_int_not_equal(
      sh(&out, "curl -sS --max-time 20 'http://127.0.0.1:%d/healthz' 2>&1", f->port), 0);
  assert_null(strstr(out, "SERVING"));
  free(out);
  static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  raw_closed_without_http(f, get, sizeof get - 1);
  /* A TLS record header announcing a ClientHello, then garbage. */
  static const char bad_hello[] = "\x16\x03\x01\x00\x08garbage!";
  raw_closed_without_http(f, bad_hello, sizeof bad_hello - 1);
  assert_non_null(tc_proc_wait_log(&f->proc, 0, "tls: handshake failed", WAIT_MS));
  /* The server is still there for proper clients. */
  expect_has(https(f, "localhost", "/healthz", NULL), "SERVING");
}

static void test_grpc_tls(void **state) {
  fx_t *f = *state;
  char *out = NULL;
  assert_int_equal(sh(&out,
                      "openssl s_client -alpn h2 -connect 127.0.0.1:%d -servername localhost "
                      "</dev/null 2>/dev/null",
                      f->proc.grpc_port),
                   0);
  expect_has(out, "ALPN protocol: h2");
  tc_client_t *c = grpc_tls(f);
  char *version = NULL;
  tt_write_schema_text(c, "t1", schema_text, &version);
  free(version);
  tc_stream_t *s = grpc_watch(c);
  grpc_write(c, "g1", "alice");
  grpc_expect_change(s, "g1", "alice");
  /* Written over HTTPS, seen on the gRPC stream. */
  expect_has(write_tuple(f, "g2", "bob"), "{\"snap_token\":\"");
  grpc_expect_change(s, "g2", "bob");
  assert_int_equal(tt_read_tuples(c, "t1", NULL, NULL, 100), 2);
  tc_stream_free(s);
  tc_client_free(c);

  /* A plaintext client gets no service from the TLS port. */
  tc_client_t *plain = tc_client_new(f->proc.target);
  tt_tuple_buf_t b;
  tt_result_t r = tt_write_one(plain, "t1", tt_tuple(&b, "doc", "g3", "owner", "user", "eve", ""));
  assert_int_equal(r.code, 14); /* UNAVAILABLE */
  tt_result_free(&r);
  tc_client_free(plain);
  c = grpc_tls(f);
  assert_int_equal(tt_read_tuples(c, "t1", NULL, NULL, 100), 2);

  /* Stopping the server with a TLS stream open: the stream ends, the server
   * exits 0 (under the sanitizers: nothing leaked). */
  s = grpc_watch(c);
  assert_int_equal(tc_proc_stop(&f->proc, NULL), 0);
  ProtobufCMessage *m = NULL;
  assert_int_equal(tc_stream_next(s, &base__v1__watch_response__descriptor, &m, WAIT_MS), 1);
  tc_stream_free(s);
  tc_client_free(c);
}

/* Connects to port on loopback and sends len bytes of data (len may be 0). */
static int connect_send(int port, const char *data, size_t len) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  if (len) assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
  return fd;
}

/* A client that stalls in the TLS handshake (silent, or half a ClientHello)
 * is closed by the port's handshake deadline. */
static void test_stalled_handshakes_closed(void **state) {
  fx_t *f = *state;
  assert_int_equal(tc_proc_stop(&f->proc, NULL), 0);
  const char *const timeouts[] = {"--grpc-handshake-timeout", "300ms", "--http-header-timeout",
                                  "300ms", NULL};
  assert_int_equal(tc_proc_start_tls(&f->proc, f->dir, timeouts), 0);
  f->port = tc_proc_http_port(&f->proc, WAIT_MS);
  static const char half_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
  int ports[] = {f->port, f->proc.grpc_port};
  for (int i = 0; i < 2; i++) {
    for (int half = 0; half < 2; half++) {
      long long t0 = tc_now_ms();
      int fd = connect_send(ports[i], half_hello, half ? sizeof half_hello - 1 : 0);
      free(read_to_eof(fd));
      /* The configured 300 ms, not the 5-10 s defaults. */
      assert_in_range(tc_now_ms() - t0, 200, 3000);
      close(fd);
    }
  }
  /* A gRPC client that completes the TLS handshake and then sends no HTTP/2
   * preface is closed at the same deadline (with -ign_eof s_client stays
   * until the server closes; timeout's status 124 would mean it never did). */
  long long t0 = tc_now_ms();
  assert_int_not_equal(sh(NULL,
                          "timeout 5 openssl s_client -ign_eof -alpn h2 -connect "
                          "127.0.0.1:%d -servername localhost </dev/null >/dev/null 2>&1",
                          f->proc.grpc_port),
                       124);
  assert_in_range(tc_now_ms() - t0, 200, 3000);
  /* Proper clients still get through on both ports. */
  expect_has(https(f, "localhost", "/healthz", NULL), "SERVING");
  tc_client_t *c = grpc_tls(f);
  assert_int_equal(tt_read_tuples(c, "t1", NULL, NULL, 100), 0);
  tc_client_free(c);
}

static void test_sighup_reload(void **state) {
  fx_t *f = *state;
  expect_served(f, "a.pem");
  expect_has(https(f, "localhost", "/v1/tenants/t1/schemas/write", schema), "schema_version");
  watcher_t w;
  watch_start(f, &w, "t1");
  expect_has(watch_line(&w), "\"data_changes\":[]");
  tc_client_t *before = grpc_tls(f);
  tc_stream_t *gs = grpc_watch(before);

  assert_int_equal(sh(NULL,
                      "cd '%s' && cp b.pem cert.new && cp b.key key.new && "
                      "mv cert.new cert.pem && mv key.new key.pem",
                      f->dir),
                   0);
  size_t mark = f->proc.log_len;
  kill(f->proc.pid, SIGHUP);
  assert_non_null(
      tc_proc_wait_log(&f->proc, mark, "server.http.tls: certificate reloaded", WAIT_MS));
  expect_served(f, "b.pem");
  assert_non_null(
      tc_proc_wait_log(&f->proc, mark, "server.grpc.tls: certificate reloaded", WAIT_MS));
  /* The streams opened under A are still served, and see writes made under B. */
  expect_has(write_tuple(f, "d2", "bob"), "{\"snap_token\":\"");
  expect_change(watch_line(&w), "d2", "bob");
  grpc_expect_change(gs, "d2", "bob");
  tc_client_t *after = grpc_tls(f); /* a new gRPC connection, under B */
  grpc_write(after, "d4", "dave");
  expect_change(watch_line(&w), "d4", "dave");
  grpc_expect_change(gs, "d4", "dave");

  /* A bad file on reload: one error line, and B stays. */
  assert_int_equal(sh(NULL, "cd '%s' && cp a.key key.pem", f->dir), 0);
  mark = f->proc.log_len;
  kill(f->proc.pid, SIGHUP);
  const char *at = tc_proc_wait_log(&f->proc, mark, "tls: reload failed", WAIT_MS);
  assert_non_null(at);
  char *line = strndup(at, (size_t)(strchr(at, '\n') - at));
  char *key = fmt("server.http.tls.key: %s/key.pem: does not match the certificate", f->dir);
  expect_has(line, key);
  free(key);
  expect_served(f, "b.pem");
  expect_has(write_tuple(f, "d3", "carol"), "{\"snap_token\":\"");
  expect_change(watch_line(&w), "d3", "carol");
  grpc_expect_change(gs, "d3", "carol");

  /* A leaf signed by an intermediate: the file holds both, clients trust the
   * root only, so the server must send the chain. */
  assert_int_equal(sh(NULL,
                      "cd '%s' && cp c.chain cert.new && cp c.key key.new && "
                      "mv cert.new cert.pem && mv key.new key.pem",
                      f->dir),
                   0);
  mark = f->proc.log_len;
  kill(f->proc.pid, SIGHUP);
  assert_non_null(
      tc_proc_wait_log(&f->proc, mark, "server.grpc.tls: certificate reloaded", WAIT_MS));
  expect_served(f, "c.pem");
  expect_has(write_tuple(f, "d5", "erin"), "{\"snap_token\":\"");
  grpc_expect_change(gs, "d5", "erin");
  tc_client_t *chained = grpc_tls(f);
  assert_int_equal(tt_read_tuples(chained, "t1", NULL, NULL, 100), 4); /* d2-d5 */
  tc_client_free(chained);
  expect_change(watch_line(&w), "d5", "erin");
  watch_stop(&w);
  tc_stream_free(gs);
  tc_client_free(before);
  tc_client_free(after);
}

/* ---- start-up refusals, table-driven ---- */

typedef struct {
  const char *cert, *key; /* file names in the temp dir; "" = not given */
  const char *want;       /* the message after "server.<t>.tls."; $ stands for the dir */
} refusal_t;

static const refusal_t refusals[] = {
    {"", "", "cert: required when server.<t>.tls.enabled is true"},
    {"nope.pem", "a.key", "cert: $/nope.pem: cannot read: No such file or directory"},
    {"a.pem", "nope.key", "key: $/nope.key: cannot read: No such file or directory"},
    {".", "a.key", "cert: $/.: cannot read: Is a directory"},
    {"a.pem", ".", "key: $/.: cannot read: Is a directory"},
    {"junk.pem", "a.key", "cert: $/junk.pem: not a PEM certificate"},
    {"a.pem", "junk.pem", "key: $/junk.pem: not a PEM private key"},
    {"a.pem", "b.key", "key: $/b.key: does not match the certificate in $/a.pem"},
};

/* want with each $ replaced by dir and <t> by transport (malloc'd). */
static char *expand(const char *want, const char *dir, const char *transport) {
  char *out = calloc(1, 1);
  for (const char *p = want; *p; p++) {
    const char *piece = *p == '$' ? dir : strncmp(p, "<t>", 3) == 0 ? transport : NULL;
    char *next = piece ? fmt("%s%s", out, piece) : fmt("%s%c", out, *p);
    if (piece && *p == '<') p += 2;
    free(out);
    out = next;
  }
  return out;
}

/* Runs `tuplecast serve <args>` (shell words), killed after 20 s should it
 * start after all; asserts exit 2 and want in its stderr. */
static void expect_refused(const char *args, const char *want) {
  char *out = NULL;
  int rc = sh(&out,
              "timeout 20 \"$TUPLECAST_BIN\" serve --grpc-port 0 --http-port 0 "
              "--database-engine memory %s 2>&1 >/dev/null",
              args);
  if (rc != 2 || !strstr(out, want))
    fprintf(stderr, "want exit 2 and \"%s\", got %d: %s\n", want, rc, out);
  assert_int_equal(rc, 2);
  assert_non_null(strstr(out, want));
  free(out);
}

static void refuse_all(const char *dir, const char *transport) {
  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
    const refusal_t *r = &refusals[i];
    char *cert = *r->cert ? fmt("%s/%s", dir, r->cert) : strdup("");
    char *key = *r->key ? fmt("%s/%s", dir, r->key) : strdup("");
    char *args = fmt("--%s-tls-enabled --%s-tls-cert-path '%s' --%s-tls-key-path '%s'", transport,
                     transport, cert, transport, key);
    free(cert);
    free(key);
    char *tail = expand(r->want, dir, transport);
    char *want = fmt("tuplecast: server.%s.tls.%s", transport, tail);
    expect_refused(args, want);
    free(want);
    free(tail);
    free(args);
  }
}

static void test_startup_refusals(void **state) {
  fx_t *f = *state;
  refuse_all(f->dir, "http");
  refuse_all(f->dir, "grpc");
  /* Permify's environment variables reach the same checks. */
  char *missing = fmt("%s/nope.pem", f->dir);
  setenv("PERMIFY_HTTP_TLS_ENABLED", "true", 1);
  setenv("PERMIFY_HTTP_TLS_CERT_PATH", missing, 1);
  const char *args = "";
  char *want = fmt("tuplecast: server.http.tls.cert: %s: cannot read", missing);
  expect_refused(args, want);
  unsetenv("PERMIFY_HTTP_TLS_ENABLED");
  unsetenv("PERMIFY_HTTP_TLS_CERT_PATH");
  free(want);
  free(missing);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_https_write_read_watch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plaintext_client_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_grpc_tls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sighup_reload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stalled_handshakes_closed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_startup_refusals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
