/* `tuplecast watch` and `tuplecast config`, the real binary: watch runs as a
 * child against a real server (SQLite file, HTTP on port 0) and its printed
 * lines are checked exactly; writes go over HTTP with libcurl.  Reconnects
 * are driven through a loopback TCP proxy in the test, which keeps one
 * address while the server behind it stops, is killed, restarts on the same
 * database on another port, or goes silent.  TLS and a preshared key on the
 * server; errors that end the command; the resume token printed on SIGINT
 * taken back with --from.  And the notation itself, case by case. */
#define _GNU_SOURCE /* pipe2 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli.h"
#include "server_proc.h"
#include "tuplecast/support.h"

#define WAIT_MS 20000


/* ---- the notation -------------------------------------------------------- */

static void expect_notation(const char *change_json, const char *want) {
  json_t *c = json_loads(change_json, 0, NULL);
  assert_non_null(c);
  char *got = tc_cli_change_notation(c, true, true);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
  json_decref(c);
}

#define ENT "\"entity\":{\"type\":\"doc\",\"id\":\"1\"}"
#define ATTR(name, type, data)                                                       \
  "{\"operation\":\"OPERATION_CREATE\",\"attribute\":{" ENT ",\"attribute\":\"" name \
  "\",\"value\":{\"@type\":\"type.googleapis.com/base.v1." type "\",\"data\":" data "}}}"

static void test_notation(void **state) {
  (void)state;
  expect_notation("{\"operation\":\"OPERATION_CREATE\",\"tuple\":{" ENT
                  ",\"relation\":\"owner\",\"subject\":{\"type\":\"user\",\"id\":\"alice\","
                  "\"relation\":\"\"}}}",
                  "+ doc:1#owner@user:alice");
  expect_notation("{\"operation\":\"OPERATION_DELETE\",\"tuple\":{" ENT
                  ",\"relation\":\"viewer\",\"subject\":{\"type\":\"group\",\"id\":\"g\","
                  "\"relation\":\"member\"}}}",
                  "- doc:1#viewer@group:g#member");
  expect_notation(ATTR("p", "BooleanValue", "true"), "+ doc:1$p|boolean:true");
  expect_notation(ATTR("p", "BooleanValue", "false"), "+ doc:1$p|boolean:false");
  expect_notation(ATTR("s", "StringValue", "\"a b\\n\\u0001\""), "+ doc:1$s|string:a b\\n\\x01");
  expect_notation(ATTR("i", "IntegerValue", "-2147483648"), "+ doc:1$i|integer:-2147483648");
  /* Go's FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent. */
  expect_notation(ATTR("d", "DoubleValue", "0.1"), "+ doc:1$d|double:0.1");
  expect_notation(ATTR("d", "DoubleValue", "5"), "+ doc:1$d|double:5");
  expect_notation(ATTR("d", "DoubleValue", "1e21"), "+ doc:1$d|double:1000000000000000000000");
  expect_notation(ATTR("d", "DoubleValue", "1.5e-7"), "+ doc:1$d|double:0.00000015");
  expect_notation(ATTR("d", "DoubleValue", "-123456.789"), "+ doc:1$d|double:-123456.789");
  expect_notation(ATTR("d", "DoubleValue", "-0.0"), "+ doc:1$d|double:-0");
  expect_notation(ATTR("d", "DoubleValue", "\"NaN\""), "+ doc:1$d|double:NaN");
  expect_notation(ATTR("d", "DoubleValue", "\"-Infinity\""), "+ doc:1$d|double:-Inf");
  expect_notation(ATTR("a", "StringArrayValue", "[\"x\",\"y z\"]"), "+ doc:1$a|string[]:x,y z");
  expect_notation(ATTR("a", "IntegerArrayValue", "[1,-2]"), "+ doc:1$a|integer[]:1,-2");
  expect_notation(ATTR("a", "DoubleArrayValue", "[0.5,2]"), "+ doc:1$a|double[]:0.5,2");
  expect_notation(ATTR("a", "BooleanArrayValue", "[true,false]"), "+ doc:1$a|boolean[]:true,false");
  expect_notation(ATTR("a", "StringArrayValue", "[]"), "+ doc:1$a|string[]:");
  expect_notation(ATTR("u", "Nope", "1"), "+ doc:1$u|:undefined");
  json_t *none = json_loads("{\"operation\":\"OPERATION_CREATE\"}", 0, NULL);
  assert_null(tc_cli_change_notation(none, true, true));
  json_decref(none);
}

/* ---- HTTP writes with libcurl ------------------------------------------------ */

typedef struct {
  char *dir;
  tc_proc_t srv;
  int port;        /* the server's HTTP port */
  const char *ca;  /* TLS: the CA file; NULL: plain HTTP */
  const char *key; /* a preshared key, or NULL */
} fx_t;

static size_t collect(char *data, size_t size, size_t n, void *arg) {
  char **buf = arg;
  size_t old = *buf ? strlen(*buf) : 0;
  *buf = realloc(*buf, old + size * n + 1);
  memcpy(*buf + old, data, size * n);
  (*buf)[old + size * n] = '\0';
  return size * n;
}

/* POSTs body to the server; asserts a 200; returns the answer (malloc'd). */
static char *post(fx_t *f, const char *path, const char *body) {
  CURL *h = curl_easy_init();
  char *url = tc_format("%s://127.0.0.1:%d%s", f->ca ? "https" : "http", f->port, path);
  char *auth = f->key ? tc_format("Authorization: Bearer %s", f->key) : NULL;
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
  if (auth) hdr = curl_slist_append(hdr, auth);
  char *out = NULL;
  long status = 0;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  if (f->ca) curl_easy_setopt(h, CURLOPT_CAINFO, f->ca);
  assert_int_equal(curl_easy_perform(h), CURLE_OK);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) fprintf(stderr, "POST %s: %ld %s\n", path, status, out);
  assert_int_equal(status, 200);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  free(auth);
  free(url);
  return out;
}

/* A write's snap token (malloc'd). */
static char *write_data(fx_t *f, const char *body) {
  char *out = post(f, "/v1/tenants/t1/data/write", body);
  json_t *j = json_loads(out, 0, NULL);
  const char *tok = json_string_value(json_object_get(j, "snap_token"));
  assert_non_null(tok);
  char *copy = strdup(tok);
  json_decref(j);
  free(out);
  return copy;
}

static char *delete_data(fx_t *f, const char *body) {
  char *out = post(f, "/v1/tenants/t1/data/delete", body);
  json_t *j = json_loads(out, 0, NULL);
  char *copy = strdup(json_string_value(json_object_get(j, "snap_token")));
  json_decref(j);
  free(out);
  return copy;
}

static const char schema[] =
    "{\"schema\":\"entity user {}\\nentity group {\\n  relation member @user\\n}\\n"
    "entity doc {\\n  relation owner @user @group#member\\n  relation viewer @user\\n"
    "  attribute private boolean\\n  attribute title string\\n  attribute rank integer\\n"
    "  attribute score double\\n  attribute tags string[]\\n  attribute ns integer[]\\n"
    "  attribute ds double[]\\n  attribute bs boolean[]\\n}\\n\"}";

static char *tuple(const char *id, const char *rel, const char *subject) {
  const char *hash = strchr(subject, '#');
  const char *colon = strchr(subject, ':');
  return tc_format(
      "{\"entity\":{\"type\":\"doc\",\"id\":\"%s\"},\"relation\":\"%s\",\"subject\":{\"type\":"
      "\"%.*s\",\"id\":\"%.*s\",\"relation\":\"%s\"}}",
      id, rel, (int)(colon - subject), subject,
      (int)(hash ? hash - colon - 1 : (long)strlen(colon + 1)), colon + 1, hash ? hash + 1 : "");
}

/* Writes one tuple doc:<id>#<rel>@<subject>; returns its token. */
static char *write_tuple(fx_t *f, const char *id, const char *rel, const char *subject) {
  char *t = tuple(id, rel, subject);
  char *body = tc_format("{\"metadata\":{},\"tuples\":[%s]}", t);
  char *tok = write_data(f, body);
  free(body);
  free(t);
  return tok;
}

static void start_server(fx_t *f, const char *const *extra) {
  char *db = tc_format("%s/tc.db", f->dir);
  const char *args[32] = {"--database-uri", db, "--http-port", "0", "--grpc-port", "0"};
  size_t n = 6;
  while (extra && *extra) args[n++] = *extra++;
  assert_int_equal(tc_proc_start(&f->srv, args), 0);
  free(db);
  f->port = f->srv.http_port;
  assert_true(f->port > 0);
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  f->dir = tc_temp_dir();
  *state = f;
  start_server(f, NULL);
  free(post(f, "/v1/tenants/t1/schemas/write", schema));
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  int rc = tc_proc_teardown(&f->srv, f->dir);
  free(f);
  return rc;
}

/* ---- the watch command as a child ---------------------------------------------- */

typedef struct {
  pid_t pid;
  int out, err;      /* its stdout and stderr */
  char *obuf, *ebuf; /* read, not yet taken (out) / everything (err) */
  size_t olen, elen;
} watch_t;

static watch_t watch_start(const char *const *args) {
  int out[2], err[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  assert_int_equal(pipe2(err, O_CLOEXEC), 0);
  const char *argv[32] = {getenv("TUPLECAST_BIN"), "watch"};
  size_t n = 2;
  while (*args) argv[n++] = *args++;
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], 1);
    dup2(err[1], 2);
    unsetenv("http_proxy"), unsetenv("https_proxy"), unsetenv("all_proxy");
    unsetenv("HTTP_PROXY"), unsetenv("HTTPS_PROXY"), unsetenv("ALL_PROXY");
    execv(argv[0], (char **)argv);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  return (watch_t){.pid = pid, .out = out[0], .err = err[0]};
}

/* Reads what is there on either pipe within ms; 0 when both are closed. */
static int pump(watch_t *w, int ms) {
  struct pollfd p[2] = {{.fd = w->out, .events = POLLIN}, {.fd = w->err, .events = POLLIN}};
  if (poll(p, 2, ms) <= 0) return 1;
  int open = 0;
  for (int i = 0; i < 2; i++) {
    if (p[i].fd < 0) continue;
    char buf[4096];
    ssize_t got = p[i].revents ? read(p[i].fd, buf, sizeof buf) : 1;
    if (got == 0) {
      close(i ? w->err : w->out);
      *(i ? &w->err : &w->out) = -1;
      continue;
    }
    open = 1;
    if (got < 0 || !p[i].revents) continue;
    char **b = i ? &w->ebuf : &w->obuf;
    size_t *len = i ? &w->elen : &w->olen;
    *b = realloc(*b, *len + (size_t)got + 1);
    memcpy(*b + *len, buf, (size_t)got);
    *len += (size_t)got;
    (*b)[*len] = '\0';
    if (i) fwrite(buf, 1, (size_t)got, stderr); /* a failing test shows what watch said */
  }
  return open;
}

/* The next stdout line (malloc'd, without the newline); fails the test
 * after WAIT_MS. */
static char *watch_line(watch_t *w) {
  long long deadline = tc_now_ms() + WAIT_MS;
  char *nl;
  while (!(w->obuf && (nl = memchr(w->obuf, '\n', w->olen)))) {
    if (tc_now_ms() > deadline || (w->out < 0 && w->err < 0)) fail_msg("no line from watch");
    pump(w, 100);
  }
  char *line = strndup(w->obuf, (size_t)(nl - w->obuf));
  w->olen -= (size_t)(nl + 1 - w->obuf);
  memmove(w->obuf, nl + 1, w->olen + 1);
  return line;
}

static void expect_line(watch_t *w, const char *want) {
  char *line = watch_line(w);
  assert_string_equal(line, want);
  free(line);
}

/* Waits until stderr holds needle (from offset from); returns its offset. */
static size_t watch_stderr(watch_t *w, size_t from, const char *needle) {
  long long deadline = tc_now_ms() + WAIT_MS;
  const char *at;
  while (!(w->ebuf && w->elen > from && (at = strstr(w->ebuf + from, needle)))) {
    if (tc_now_ms() > deadline || (w->out < 0 && w->err < 0))
      fail_msg("watch did not say \"%s\"", needle);
    pump(w, 100);
  }
  return (size_t)(at - w->ebuf) + strlen(needle);
}

/* Sends sig (0: none), reads to the end, reaps; returns the exit status. */
static int watch_end(watch_t *w, int sig) {
  if (sig) kill(w->pid, sig);
  long long deadline = tc_now_ms() + WAIT_MS;
  while ((w->out >= 0 || w->err >= 0) && tc_now_ms() < deadline) pump(w, 100);
  int status;
  if (w->out >= 0 || w->err >= 0) kill(w->pid, SIGKILL);
  assert_int_equal(waitpid(w->pid, &status, 0), w->pid);
  if (w->out >= 0) close(w->out);
  if (w->err >= 0) close(w->err);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void watch_free(watch_t *w) {
  free(w->obuf);
  free(w->ebuf);
}

/* The token after "resume with --from " on stderr (malloc'd). */
static char *resume_token(watch_t *w) {
  const char *at = w->ebuf ? strstr(w->ebuf, "resume with --from ") : NULL;
  assert_non_null(at);
  at += strlen("resume with --from ");
  return strndup(at, strcspn(at, "\n"));
}

static char *server_arg(int port) { return tc_format("127.0.0.1:%d", port); }

/* ---- watch against the server ---------------------------------------------------- */

#define VALUE(name, type, data)                                       \
  "{\"entity\":{\"type\":\"doc\",\"id\":\"1\"},\"attribute\":\"" name \
  "\",\"value\":{"                                                    \
  "\"@type\":\"type.googleapis.com/base.v1." type "\",\"data\":" data "}}"

/* Every kind of change, printed exactly; the resume token on SIGINT is the
 * last message's. */
static void test_lines(void **state) {
  fx_t *f = *state;
  char *srv = server_arg(f->port);
  watch_t w = watch_start((const char *[]){"--tenant", "t1", "--server", srv, NULL});
  watch_stderr(&w, 0, "watching tenant t1");
  char *t1 = tuple("1", "owner", "user:alice"), *t2 = tuple("1", "owner", "group:g#member");
  char *body = tc_format(
      "{\"metadata\":{},\"tuples\":[%s,%s],\"attributes\":[%s,%s,%s,%s,%s,%s,%s,%s]}", t1, t2,
      VALUE("private", "BooleanValue", "true"), VALUE("title", "StringValue", "\"Q3 plan\""),
      VALUE("rank", "IntegerValue", "-7"), VALUE("score", "DoubleValue", "0.25"),
      VALUE("tags", "StringArrayValue", "[\"a\",\"b\"]"), VALUE("ns", "IntegerArrayValue", "[1,2]"),
      VALUE("ds", "DoubleArrayValue", "[1.5,1e21]"),
      VALUE("bs", "BooleanArrayValue", "[true,false]"));
  free(write_data(f, body));
  free(body);
  expect_line(&w, "+ doc:1#owner@user:alice");
  expect_line(&w, "+ doc:1#owner@group:g#member");
  expect_line(&w, "+ doc:1$private|boolean:true");
  expect_line(&w, "+ doc:1$title|string:Q3 plan");
  expect_line(&w, "+ doc:1$rank|integer:-7");
  expect_line(&w, "+ doc:1$score|double:0.25");
  expect_line(&w, "+ doc:1$tags|string[]:a,b");
  expect_line(&w, "+ doc:1$ns|integer[]:1,2");
  expect_line(&w, "+ doc:1$ds|double[]:1.5,1000000000000000000000");
  expect_line(&w, "+ doc:1$bs|boolean[]:true,false");

  /* Overwriting an attribute: the old value deleted, the new created. */
  body =
      tc_format("{\"metadata\":{},\"attributes\":[%s]}", VALUE("private", "BooleanValue", "false"));
  free(write_data(f, body));
  free(body);
  expect_line(&w, "- doc:1$private|boolean:true");
  expect_line(&w, "+ doc:1$private|boolean:false");
  char *last = delete_data(
      f,
      "{\"tuple_filter\":{\"entity\":{\"type\":\"doc\",\"ids\":[\"1\"]},\"relation\":\"owner\","
      "\"subject\":{\"type\":\"group\"}},\"attribute_filter\":{}}");
  expect_line(&w, "- doc:1#owner@group:g#member");

  assert_int_equal(watch_end(&w, SIGINT), 0);
  char *tok = resume_token(&w);
  assert_string_equal(tok, last);
  assert_int_equal(w.olen, 0); /* nothing but the changes on stdout */
  free(tok);
  free(last);
  free(t1);
  free(t2);
  free(srv);
  watch_free(&w);
}

/* --json: every line valid JSON; the last one carries the resume token;
 * --from with it continues with exactly what came after. */
static void test_json_and_resume(void **state) {
  fx_t *f = *state;
  char *srv = server_arg(f->port);
  char *t0 = write_tuple(f, "2", "viewer", "user:zed");
  watch_t w = watch_start(
      (const char *[]){"--tenant", "t1", "--server", srv, "--json", "--from", t0, NULL});
  char *ta = write_tuple(f, "2", "viewer", "user:ann");
  char *line = watch_line(&w);
  json_error_t e;
  json_t *j = json_loads(line, 0, &e);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "snap_token")), ta);
  assert_string_equal(json_string_value(json_object_get(j, "operation")), "OPERATION_CREATE");
  assert_string_equal(json_string_value(json_object_get(j, "notation")), "doc:2#viewer@user:ann");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(json_object_get(j, "tuple"), "subject"), "id")),
                      "ann");
  json_decref(j);
  free(line);
  assert_int_equal(watch_end(&w, SIGTERM), 0);
  line = watch_line(&w);
  j = json_loads(line, 0, &e);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "resume_token")), ta);
  assert_int_equal(json_object_size(j), 1);
  json_decref(j);
  free(line);
  assert_int_equal(w.olen, 0);
  watch_free(&w);

  /* Written while nobody watches: resuming delivers it, and only it. */
  char *tb = write_tuple(f, "2", "viewer", "user:bob");
  w = watch_start((const char *[]){"--tenant", "t1", "--server", srv, "--from", ta, NULL});
  expect_line(&w, "+ doc:2#viewer@user:bob");
  char *tc = write_tuple(f, "2", "viewer", "user:cy");
  expect_line(&w, "+ doc:2#viewer@user:cy");
  assert_int_equal(watch_end(&w, SIGINT), 0);
  char *tok = resume_token(&w);
  assert_string_equal(tok, tc);
  assert_int_equal(w.olen, 0);
  free(tok);
  free(t0);
  free(ta);
  free(tb);
  free(tc);
  free(srv);
  watch_free(&w);
}

/* A double the server writes in plain digits beyond an int64 (1e20 as
 * 100000000000000000000) is printed, in both forms, and the numbers of
 * --json stay as the server wrote them; such a line once made watch
 * reconnect forever from the token before it. */
static void test_big_numbers(void **state) {
  fx_t *f = *state;
  char *srv = server_arg(f->port);
  watch_t w = watch_start((const char *[]){"--tenant", "t1", "--server", srv, NULL});
  watch_t wj = watch_start((const char *[]){"--tenant", "t1", "--server", srv, "--json", NULL});
  watch_stderr(&w, 0, "watching tenant t1");
  watch_stderr(&wj, 0, "watching tenant t1");
  char *body =
      tc_format("{\"metadata\":{},\"attributes\":[%s,%s]}", VALUE("score", "DoubleValue", "1e20"),
                VALUE("rank", "IntegerValue", "-7"));
  char *tok = write_data(f, body);
  expect_line(&w, "+ doc:1$score|double:100000000000000000000");
  expect_line(&w, "+ doc:1$rank|integer:-7");
  char *line = watch_line(&wj);
  assert_non_null(strstr(line, "\"data\":100000000000000000000}"));
  assert_non_null(strstr(line, "\"notation\":\"doc:1$score|double:100000000000000000000\""));
  free(line);
  line = watch_line(&wj);
  assert_non_null(strstr(line, "\"data\":-7}"));
  free(line);
  assert_int_equal(watch_end(&w, SIGINT), 0);
  assert_int_equal(watch_end(&wj, SIGINT), 0);
  assert_null(strstr(w.ebuf, "reconnecting"));
  char *resume = resume_token(&w);
  assert_string_equal(resume, tok);
  free(resume);
  free(tok);
  free(body);
  free(srv);
  watch_free(&w);
  watch_free(&wj);
}

/* Whether pid sleeps in a write to a full pipe. */
static int in_pipe_write(pid_t pid) {
  char *path = tc_format("/proc/%d/wchan", (int)pid), buf[64] = "";
  FILE *f = fopen(path, "r");
  if (f) {
    if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
    fclose(f);
  }
  free(path);
  return strstr(buf, "pipe_write") != NULL; /* pipe_write, anon_pipe_write */
}

/* SIGTERM while stdout is a full pipe (a reader that lags): the write goes
 * on once the reader reads, every line comes out whole and once, and the
 * resume token is the transaction's, all of which was printed.  A write
 * interrupted by the signal (no SA_RESTART) once failed stdout: what stdio
 * held was dropped and the rest of the transaction not printed. */
static void test_stop_while_blocked(void **state) {
  fx_t *f = *state;
  char *srv = server_arg(f->port);
  watch_t w = watch_start((const char *[]){"--tenant", "t1", "--server", srv, NULL});
  watch_stderr(&w, 0, "watching tenant t1");
  char *big = malloc(3501);
  memset(big, 'x', 3500);
  big[3500] = '\0';
  size_t n = 0, cap = 1 << 20;
  char *body = malloc(cap);
  n += (size_t)snprintf(body + n, cap - n, "{\"metadata\":{},\"attributes\":[");
  for (int i = 0; i < 40; i++) /* 140 KB of lines: more than a pipe holds */
    n += (size_t)snprintf(body + n, cap - n,
                          "%s{\"entity\":{\"type\":\"doc\",\"id\":\"b%d\"},\"attribute\":"
                          "\"title\",\"value\":{\"@type\":\"type.googleapis.com/"
                          "base.v1.StringValue\",\"data\":\"%s\"}}",
                          i ? "," : "", i, big);
  snprintf(body + n, cap - n, "]}");
  char *tok = write_data(f, body);
  long long deadline = tc_now_ms() + WAIT_MS;
  while (!in_pipe_write(w.pid)) {
    assert_true(tc_now_ms() < deadline);
    poll(NULL, 0, 10); /* stdout stays unread: it must fill */
  }
  /* Several signals: one that comes between two writes interrupts none. */
  for (int i = 0; i < 20 && in_pipe_write(w.pid); i++) {
    kill(w.pid, SIGTERM);
    poll(NULL, 0, 10);
  }
  assert_int_equal(watch_end(&w, 0), 0);
  for (int i = 0; i < 40; i++) {
    char *want = tc_format("+ doc:b%d$title|string:%s", i, big);
    expect_line(&w, want);
    free(want);
  }
  assert_int_equal(w.olen, 0);
  char *resume = resume_token(&w);
  assert_string_equal(resume, tok);
  free(resume);
  free(tok);
  free(body);
  free(big);
  free(srv);
  watch_free(&w);
}

/* --filter: the changes that do not match are not printed. */
static void test_filter(void **state) {
  fx_t *f = *state;
  char *srv = server_arg(f->port);
  char *t0 = write_tuple(f, "3", "viewer", "user:a");
  watch_t w =
      watch_start((const char *[]){"--tenant", "t1", "--server", srv, "--from", t0, "--filter",
                                   "relations=owner", "--filter", "operation=delete", NULL});
  free(write_tuple(f, "3", "owner", "user:a")); /* a create: filtered out */
  free(delete_data(f,
                   "{\"tuple_filter\":{\"entity\":{\"type\":\"doc\",\"ids\":[\"3\"]},"
                   "\"relation\":\"viewer\"},\"attribute_filter\":{}}")); /* not owner */
  free(delete_data(f,
                   "{\"tuple_filter\":{\"entity\":{\"type\":\"doc\",\"ids\":[\"3\"]},"
                   "\"relation\":\"owner\"},\"attribute_filter\":{}}"));
  expect_line(&w, "- doc:3#owner@user:a");
  assert_int_equal(watch_end(&w, SIGINT), 0);
  assert_int_equal(w.olen, 0);
  watch_free(&w);
  /* A bad filter is a usage error. */
  w = watch_start((const char *[]){"--tenant", "t1", "--filter", "colour=red", NULL});
  assert_int_equal(watch_end(&w, 0), 2);
  assert_non_null(strstr(w.ebuf, "--filter \"colour=red\": expected"));
  watch_free(&w);
  free(t0);
  free(srv);
}

/* Errors no retry mends end the command at once, with the server's message;
 * --max-retries bounds the attempts against a server that is not there. */
static void test_errors(void **state) {
  fx_t *f = *state;
  char *srv = server_arg(f->port);
  watch_t w = watch_start((const char *[]){"--tenant", "nope", "--server", srv, NULL});
  assert_int_equal(watch_end(&w, 0), 1);
  assert_non_null(strstr(w.ebuf, "ERROR_CODE_TENANT_NOT_FOUND"));
  assert_null(strstr(w.ebuf, "reconnecting"));
  watch_free(&w);
  w = watch_start((const char *[]){"--tenant", "t1", "--server", srv, "--from", "garbage", NULL});
  assert_int_equal(watch_end(&w, 0), 1);
  assert_non_null(strstr(w.ebuf, "snap token garbage is malformed"));
  assert_non_null(strstr(w.ebuf, "resume with --from garbage"));
  watch_free(&w);

  /* A port nothing listens on: bind one, close it. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  char *dead = server_arg(ntohs(a.sin_port));
  w = watch_start((const char *[]){"--tenant", "t1", "--server", dead, "--max-retries", "2", NULL});
  assert_int_equal(watch_end(&w, 0), 1);
  assert_non_null(strstr(w.ebuf, "giving up after 3 attempts"));
  const char *r1 = strstr(w.ebuf, "reconnecting in"),
             *r2 = r1 ? strstr(r1 + 1, "reconnecting in") : 0;
  assert_non_null(r2);
  assert_null(strstr(r2 + 1, "reconnecting in"));
  watch_free(&w);
  free(dead);
  free(srv);
}

/* ---- a loopback TCP proxy: one address for servers that come and go --------------- */

typedef struct {
  int listen_fd, port;
  int upstream;   /* the server's port; the test changes it */
  int freeze_req; /* the test asks: stop forwarding the connections now open */
  int cut;        /* close each connection once the server sent a Watch message */
  int quit;
  pthread_mutex_t lock;
  pthread_t thread;
  struct pair {
    int a, b; /* client side, server side; -1 when unused */
    int frozen;
  } pairs[16];
} proxy_t;

static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
  close(fd);
  return -1;
}

static void pair_close(struct pair *p) {
  if (p->a >= 0) close(p->a);
  if (p->b >= 0) close(p->b);
  *p = (struct pair){-1, -1, 0};
}

static void proxy_accept(proxy_t *px) {
  int c = accept4(px->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return;
  pthread_mutex_lock(&px->lock);
  int up = px->upstream;
  pthread_mutex_unlock(&px->lock);
  int s = connect_port(up);
  for (int i = 0; s >= 0 && i < 16; i++)
    if (px->pairs[i].a < 0) {
      px->pairs[i] = (struct pair){c, s, 0};
      return;
    }
  close(c); /* the server is down: the client sees the connection closed */
  if (s >= 0) close(s);
}

/* Copies what one side has to the other; 0 when the pair is done (with
 * cut: after a Watch message went through). */
static int forward(int from, int to, int cut) {
  char buf[16384];
  ssize_t n = read(from, buf, sizeof buf);
  if (n <= 0) return 0;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, (size_t)(n - off));
    if (w <= 0) return 0;
    off += w;
  }
  return !(cut && memmem(buf, (size_t)n, "\"data_changes\"", 14));
}

static void *proxy_main(void *arg) {
  proxy_t *px = arg;
  for (;;) {
    pthread_mutex_lock(&px->lock);
    int quit = px->quit, freeze = px->freeze_req, cut = px->cut;
    px->freeze_req = 0;
    pthread_mutex_unlock(&px->lock);
    if (quit) break;
    struct pollfd p[33] = {{.fd = px->listen_fd, .events = POLLIN}};
    for (int i = 0; i < 16; i++) {
      struct pair *pr = &px->pairs[i];
      if (freeze && pr->a >= 0) pr->frozen = 1;
      int on = pr->a >= 0 && !pr->frozen;
      p[1 + 2 * i] = (struct pollfd){.fd = on ? pr->a : -1, .events = POLLIN};
      p[2 + 2 * i] = (struct pollfd){.fd = on ? pr->b : -1, .events = POLLIN};
    }
    if (poll(p, 33, 50) <= 0) continue;
    if (p[0].revents) proxy_accept(px);
    for (int i = 0; i < 16; i++) {
      struct pair *pr = &px->pairs[i];
      int ok = 1;
      if (p[1 + 2 * i].revents) ok = forward(pr->a, pr->b, 0);
      if (ok && p[2 + 2 * i].revents) ok = forward(pr->b, pr->a, cut);
      if (!ok) pair_close(pr);
    }
  }
  for (int i = 0; i < 16; i++) pair_close(&px->pairs[i]);
  return NULL;
}

static void proxy_start(proxy_t *px, int upstream) {
  memset(px, 0, sizeof *px);
  for (int i = 0; i < 16; i++) px->pairs[i] = (struct pair){-1, -1, 0};
  px->upstream = upstream;
  pthread_mutex_init(&px->lock, NULL);
  px->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(px->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(px->listen_fd, 16), 0);
  assert_int_equal(getsockname(px->listen_fd, (struct sockaddr *)&a, &len), 0);
  px->port = ntohs(a.sin_port);
  pthread_create(&px->thread, NULL, proxy_main, px);
}

static void proxy_set(proxy_t *px, int upstream, int freeze) {
  pthread_mutex_lock(&px->lock);
  if (upstream) px->upstream = upstream;
  px->freeze_req = freeze;
  pthread_mutex_unlock(&px->lock);
}

static void proxy_stop(proxy_t *px) {
  proxy_set(px, 0, 0);
  pthread_mutex_lock(&px->lock);
  px->quit = 1;
  pthread_mutex_unlock(&px->lock);
  pthread_join(px->thread, NULL);
  close(px->listen_fd);
  pthread_mutex_destroy(&px->lock);
}

/* The server stops (gracefully, then killed), restarts on the same database
 * on another port, and once goes silent: watch reconnects from its last
 * token each time, printing every change once. */
static void test_reconnect(void **state) {
  fx_t *f = *state;
  static proxy_t px; /* static: a failed assertion leaves its thread on valid memory */
  proxy_start(&px, f->port);
  char *srv = server_arg(px.port);
  char *t0 = write_tuple(f, "4", "viewer", "user:a");
  watch_t w = watch_start((const char *[]){"--tenant", "t1", "--server", srv, "--from", t0,
                                           "--checkpoint-interval", "1", NULL});
  free(write_tuple(f, "4", "viewer", "user:b"));
  expect_line(&w, "+ doc:4#viewer@user:b");

  /* A graceful stop ends the stream with UNAVAILABLE. */
  assert_int_equal(tc_proc_stop(&f->srv, NULL), 0);
  size_t at = watch_stderr(&w, 0, "reconnecting in");
  start_server(f, NULL);
  proxy_set(&px, f->port, 0);
  free(write_tuple(f, "4", "viewer", "user:c"));
  expect_line(&w, "+ doc:4#viewer@user:c");

  /* Killed: the connection just drops. */
  kill(f->srv.pid, SIGKILL);
  tc_proc_stop(&f->srv, NULL);
  at = watch_stderr(&w, at, "reconnecting in");
  start_server(f, NULL);
  proxy_set(&px, f->port, 0);
  free(write_tuple(f, "4", "viewer", "user:d"));
  expect_line(&w, "+ doc:4#viewer@user:d");
  pump(&w, 100);
  at = w.elen; /* the reconnects' lines were written before D came: all read */

  /* Silent: no checkpoint for 2 * 1 s + 5 s ends the connection. */
  long long t = tc_now_ms();
  proxy_set(&px, 0, 1);
  watch_stderr(&w, at, "reconnecting in");
  assert_true(tc_now_ms() - t >= 6000);
  char *te = write_tuple(f, "4", "viewer", "user:e");
  expect_line(&w, "+ doc:4#viewer@user:e");

  assert_int_equal(watch_end(&w, SIGINT), 0);
  char *tok = resume_token(&w);
  assert_string_equal(tok, te);
  assert_int_equal(w.olen, 0); /* nothing printed twice */
  proxy_stop(&px);
  free(tok);
  free(te);
  free(t0);
  free(srv);
  watch_free(&w);
}

/* Every connection ends right after the checkpoint the server sends when it
 * accepts the watch: no progress, so the delays grow and --max-retries
 * counts them; that first message once reset the count every time. */
static void test_no_progress(void **state) {
  fx_t *f = *state;
  static proxy_t px; /* static: as in test_reconnect */
  proxy_start(&px, f->port);
  pthread_mutex_lock(&px.lock);
  px.cut = 1;
  pthread_mutex_unlock(&px.lock);
  char *srv = server_arg(px.port);
  watch_t w = watch_start((const char *[]){
      "--tenant", "t1", "--server", srv, "--checkpoint-interval", "1", "--max-retries", "2", NULL});
  assert_int_equal(watch_end(&w, 0), 1);
  assert_non_null(strstr(w.ebuf, "giving up after 3 attempts"));
  assert_non_null(strstr(w.ebuf, "resume with --from "));
  proxy_stop(&px);
  free(srv);
  watch_free(&w);
}

/* ---- TLS and a preshared key -------------------------------------------------------- */

static int setup_secure(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  f->dir = tc_temp_dir();
  *state = f;
  char *cmd = tc_format(
      "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
      "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout key.pem "
      "-out cert.pem 2>/dev/null",
      f->dir);
  int rc = system(cmd);
  free(cmd);
  if (rc != 0) return -1;
  char *cert = tc_format("%s/cert.pem", f->dir), *key = tc_format("%s/key.pem", f->dir);
  const char *extra[] = {"--http-tls-enabled",
                         "--http-tls-cert-path",
                         cert,
                         "--http-tls-key-path",
                         key,
                         "--authn-enabled",
                         "--authn-method",
                         "preshared",
                         "--authn-preshared-keys",
                         "k-secret",
                         NULL};
  start_server(f, extra);
  free(key);
  f->ca = cert; /* self-signed: its own CA */
  f->key = "k-secret";
  free(post(f, "/v1/tenants/t1/schemas/write", schema));
  return 0;
}

static int teardown_secure(void **state) {
  fx_t *f = *state;
  free((char *)f->ca);
  return teardown(state);
}

static void test_tls_and_key(void **state) {
  fx_t *f = *state;
  char *url = tc_format("https://127.0.0.1:%d", f->port), *hostport = server_arg(f->port);
  setenv("TUPLECAST_AUTH_TOKEN", "k-secret", 1); /* the key from the environment */
  watch_t w = watch_start(
      (const char *[]){"--tenant", "t1", "--server", hostport, "--tls", "--ca-cert", f->ca, NULL});
  unsetenv("TUPLECAST_AUTH_TOKEN");
  watch_stderr(&w, 0, "watching tenant t1");
  char *t = write_tuple(f, "5", "owner", "user:tls");
  expect_line(&w, "+ doc:5#owner@user:tls");
  assert_int_equal(watch_end(&w, SIGINT), 0);
  watch_free(&w);

  /* The key as a flag; a wrong key ends the command: no retry mends it. */
  w = watch_start((const char *[]){"--tenant", "t1", "--server", url, "--ca-cert", f->ca,
                                   "--auth-token", "k-secret", "--from", t, NULL});
  free(write_tuple(f, "5", "owner", "user:again"));
  expect_line(&w, "+ doc:5#owner@user:again");
  assert_int_equal(watch_end(&w, SIGINT), 0);
  watch_free(&w);
  w = watch_start((const char *[]){"--tenant", "t1", "--server", url, "--ca-cert", f->ca,
                                   "--auth-token", "wrong", NULL});
  assert_int_equal(watch_end(&w, 0), 1);
  assert_non_null(strstr(w.ebuf, "ERROR_CODE_INVALID_KEY"));
  assert_null(strstr(w.ebuf, "reconnecting"));
  watch_free(&w);
  /* A certificate nobody vouches for: refused, not retried. */
  w = watch_start(
      (const char *[]){"--tenant", "t1", "--server", url, "--auth-token", "k-secret", NULL});
  assert_int_equal(watch_end(&w, 0), 1);
  assert_non_null(strstr(w.ebuf, "certificate"));
  assert_null(strstr(w.ebuf, "reconnecting"));
  watch_free(&w);
  free(t);
  free(url);
  free(hostport);
}

/* ---- tuplecast config ------------------------------------------------------------- */

static void test_config(void **state) {
  (void)state;
  char *out = NULL;
  const char *const masked[] = {"config",
                                "--grpc-port",
                                "4999",
                                "--authn-enabled",
                                "--authn-method",
                                "preshared",
                                "--authn-preshared-keys",
                                "sekrit-key",
                                "--database-uri",
                                "postgres://u:pw-secret@h/db",
                                NULL};
  assert_int_equal(tc_proc_run(masked, &out), 0);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "server.grpc.port")), 4999);
  assert_string_equal(json_string_value(json_object_get(j, "database.uri")),
                      "postgres://u:***@h/db");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(j, "authn.preshared.keys"), 0)), "***");
  assert_null(strstr(out, "sekrit"));
  assert_null(strstr(out, "pw-secret"));
  json_decref(j);
  free(out);

  /* The example configuration the package installs is valid. */
  char *file = tc_format("%s/packaging/config.yaml", getenv("TC_SOURCE_DIR"));
  const char *const example[] = {"config", "-c", file, NULL};
  assert_int_equal(tc_proc_run(example, &out), 0);
  j = json_loads(out, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "database.uri")),
                      "/var/lib/tuplecast/tuplecast.db");
  json_decref(j);
  free(out);
  free(file);

  const char *const bad[] = {"config", "--grpc-port", "x", NULL};
  assert_int_equal(tc_proc_run(bad, &out), 2);
  free(out);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_notation),
      cmocka_unit_test(test_config),
      cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_and_resume, setup, teardown),
      cmocka_unit_test_setup_teardown(test_big_numbers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_while_blocked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_progress, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls_and_key, setup_secure, teardown_secure),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
