/* Readiness and liveness against the real binary.  gRPC health per service
 * name and HTTP /healthz follow the database: with the test's PostgreSQL
 * stopped (pg_ctl stop) they say NOT_SERVING / 503 within a deadline, and
 * SERVING / 200 again within one after it is started (and the same when
 * its backends hang instead); "liveness" and /livez
 * stay SERVING / 200 throughout.  Unknown service names are NOT_FOUND. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <libpq-fe.h>

#include "grpc/health/v1/health.pb-c.h"
#include "http_client.h"
#include "pg_fixture.h"
#include "tt_api.h"

/* The server pings every second and gives a ping 2 s (core/src/ready.h);
 * the pool reconnects within 2 s.  The deadlines leave room for a loaded
 * machine. */
#define NOTICE_MS 10000
#define RECOVER_MS 20000

enum { SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING };
enum { NOT_SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING };

/* Health/Check of service: the serving status, or -(gRPC code) on error. */
static int health(tc_client_t *c, const char *service) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  ProtobufCMessage *resp = NULL;
  int code = tc_client_unary(c, "/grpc.health.v1.Health/Check", &req.base,
                             &grpc__health__v1__health_check_response__descriptor, &resp, NULL,
                             NULL, TT_TIMEOUT);
  if (code != 0) return -code;
  int status = (int)((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
  protobuf_c_message_free_unpacked(resp, NULL);
  return status;
}

/* GET path on a connection of its own: the HTTP status; body (may be NULL)
 * gets the response's body, malloc'd. */
static int http_get(int port, const char *path, char **body) {
  int fd = tt_http_connect(port);
  char req[256];
  int n =
      snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
  assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
  char buf[4096];
  size_t len = 0;
  ssize_t got;
  while (len < sizeof buf - 1 && (got = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0)
    len += (size_t)got;
  buf[len] = '\0';
  close(fd);
  int status = 0;
  assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &status), 1);
  const char *at = strstr(buf, "\r\n\r\n");
  if (body) *body = strdup(at ? at + 4 : "");
  return status;
}

/* Opens Health/Watch for service. */
static tc_stream_t *watch_open(tc_client_t *c, const char *service) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  tc_stream_t *s = tc_client_stream_open(c, "/grpc.health.v1.Health/Watch", &req.base, NULL, 0);
  assert_non_null(s);
  return s;
}

/* The stream's next status, within timeout_ms. */
static int watch_next(tc_stream_t *s, int timeout_ms) {
  ProtobufCMessage *m = NULL;
  int rc = tc_stream_next(s, &grpc__health__v1__health_check_response__descriptor, &m, timeout_ms);
  if (rc != 0) fail_msg("Health/Watch: no message within %d ms (%d)", timeout_ms, rc);
  int status = (int)((Grpc__Health__V1__HealthCheckResponse *)m)->status;
  protobuf_c_message_free_unpacked(m, NULL);
  return status;
}

/* Liveness answers whatever the database does. */
static void expect_alive(tc_client_t *c, int http_port) {
  assert_int_equal(health(c, "liveness"), SERVING);
  assert_int_equal(http_get(http_port, "/livez", NULL), 200);
}

/* Polls until readiness ("" , a base.v1 service, /healthz) is want on both
 * transports; checks liveness on each round.  Returns the time it took. */
static long long wait_ready(tc_client_t *c, int http_port, int want, int deadline_ms) {
  long long start = tc_now_ms();
  int http_want = want == SERVING ? 200 : 503;
  for (;;) {
    expect_alive(c, http_port);
    if (health(c, "") == want && health(c, "base.v1.Data") == want &&
        http_get(http_port, "/healthz", NULL) == http_want)
      return tc_now_ms() - start;
    if (tc_now_ms() - start > deadline_ms)
      fail_msg("health did not become %s within %d ms", want == SERVING ? "SERVING" : "NOT_SERVING",
               deadline_ms);
    poll(NULL, 0, 50); /* between polls of the condition, under the deadline above */
  }
}

/* The next message of a stream that must end instead: its status code. */
static int watch_end(tc_stream_t *s) {
  ProtobufCMessage *m = NULL;
  int rc = tc_stream_next(s, &grpc__health__v1__health_check_response__descriptor, &m, TT_TIMEOUT);
  if (m) protobuf_c_message_free_unpacked(m, NULL);
  if (rc != 1) fail_msg("Health/Watch: %s instead of its end", rc == 0 ? "a message" : "nothing");
  return tc_stream_status(s, NULL);
}

/* A Health/Watch whose request arrives after the stop began (the call was
 * accepted before it) is refused with UNAVAILABLE like the streams the stop
 * ended, not served until the grace period ends it (5 s). */
static void test_watch_during_stop(void **state) {
  (void)state;
  tt_server_t s = {0};
  assert_int_equal(tt_server_start(&s), 0);
  tc_stream_t *w = watch_open(s.client, "");
  assert_int_equal(watch_next(w, TT_TIMEOUT), SERVING);
  tc_stream_t *late =
      tc_client_stream_open(s.client, "/grpc.health.v1.Health/Watch", NULL, NULL, 0);
  assert_non_null(late);
  /* Answered after late's headers on the same connection: late is accepted. */
  assert_int_equal(health(s.client, ""), SERVING);
  kill(s.proc.pid, SIGTERM);
  assert_int_equal(watch_end(w), 14); /* the stop has ended the open streams */
  long long start = tc_now_ms();
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  assert_int_equal(tc_stream_send_request(late, &req.base), 0);
  assert_int_equal(watch_end(late), 14);
  assert_true(tc_now_ms() - start < 3000);
  tc_stream_free(late);
  tc_stream_free(w);
  assert_int_equal(tc_proc_stop(&s.proc, NULL), 0);
  tc_client_free(s.client);
}

/* Service names on a server whose database is there. */
static void test_names(void **state) {
  (void)state;
  tt_server_t s = {0};
  assert_int_equal(tt_server_start(&s), 0);
  int http_port = tc_proc_http_port(&s.proc, 10000);
  for (const char *const *n =
           (const char *const[]){"", "base.v1.Data", "base.v1.Schema", "base.v1.Tenancy",
                                 "base.v1.Watch", "base.v1.Bundle", "liveness",
                                 "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                                 "grpc.reflection.v1alpha.ServerReflection", NULL};
       *n; n++)
    assert_int_equal(health(s.client, *n), SERVING);
  /* NOT_FOUND (5), as the health protocol asks for a name it does not know. */
  assert_int_equal(health(s.client, "base.v1.Permission"), -5);
  assert_int_equal(health(s.client, "base.v1"), -5);
  assert_int_equal(health(s.client, "nope"), -5);
  /* Watch: the status at once; a name it does not know stays open. */
  tc_stream_t *w = watch_open(s.client, "base.v1.Data");
  assert_int_equal(watch_next(w, TT_TIMEOUT), SERVING);
  tc_stream_t *unknown = watch_open(s.client, "nope");
  assert_int_equal(watch_next(unknown, TT_TIMEOUT),
                   GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN);
  tc_stream_free(unknown);
  char *body;
  assert_int_equal(http_get(http_port, "/healthz", &body), 200);
  assert_string_equal(body, "{\"status\":\"SERVING\"}");
  free(body);
  assert_int_equal(http_get(http_port, "/livez", &body), 200);
  assert_string_equal(body, "{\"status\":\"SERVING\"}");
  free(body);
  /* A server that stops ends its Health/Watch streams (UNAVAILABLE) at
   * once, not after its grace period (5 s). */
  long long stop_start = tc_now_ms();
  kill(s.proc.pid, SIGTERM);
  ProtobufCMessage *m = NULL;
  assert_int_equal(
      tc_stream_next(w, &grpc__health__v1__health_check_response__descriptor, &m, TT_TIMEOUT), 1);
  assert_int_equal(tc_stream_status(w, NULL), 14);
  assert_true(tc_now_ms() - stop_start < 3000);
  tc_stream_free(w);
  assert_int_equal(tc_proc_stop(&s.proc, NULL), 0);
  tc_client_free(s.client);
}

/* A server on a PostgreSQL of its own (*pg), started into p and ready:
 * a client of it, and its HTTP port in *http_port. */
static tc_client_t *start_on_postgres(tc_pg_t **pg, tc_proc_t *p, int *http_port) {
  assert_int_equal(tc_pg_start(NULL, pg), 0);
  const char *args[] = {
      "--grpc-port",  "0", "--http-port", "0", "--database-engine", "postgres", "--database-uri",
      tc_pg_uri(*pg), NULL};
  if (tc_proc_start(p, args) != 0) fail_msg("server did not start:\n%s", p->log ? p->log : "");
  *http_port = tc_proc_http_port(p, 10000);
  tc_client_t *c = tc_client_new(p->target);
  wait_ready(c, *http_port, SERVING, NOTICE_MS);
  return c;
}

/* PostgreSQL stopped and started again under a running server. */
static void test_postgres_down_and_back(void **state) {
  (void)state;
  tc_pg_t *pg;
  tc_proc_t p = {0};
  int http_port;
  tc_client_t *c = start_on_postgres(&pg, &p, &http_port);
  tc_stream_t *w = watch_open(c, "");
  assert_int_equal(watch_next(w, TT_TIMEOUT), SERVING);

  assert_int_equal(tc_pg_halt(pg), 0);
  long long down = wait_ready(c, http_port, NOT_SERVING, NOTICE_MS);
  assert_int_equal(watch_next(w, NOTICE_MS), NOT_SERVING);
  char *body;
  assert_int_equal(http_get(http_port, "/healthz", &body), 503);
  assert_string_equal(body, "{\"code\":14,\"message\":\"status:NOT_SERVING\",\"details\":[]}");
  free(body);
  assert_non_null(tc_proc_wait_log(&p, 0, "database unreachable", 5000));

  assert_int_equal(tc_pg_resume(pg), 0);
  long long back = wait_ready(c, http_port, SERVING, RECOVER_MS);
  assert_int_equal(watch_next(w, RECOVER_MS), SERVING);
  tc_stream_free(w);
  assert_non_null(tc_proc_wait_log(&p, 0, "database reachable again", 5000));
  fprintf(stderr, "health: NOT_SERVING %lld ms after pg_ctl stop, SERVING %lld ms after start\n",
          down, back);
  /* And it serves: a write goes through. */
  tt_create_tenant(c, "after-restart");

  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&p, NULL), 0);
  tc_pg_stop(pg);
}

/* Sends sig to the cluster's client backends on database tuplecast but the
 * one asking: the server's connections. */
static void signal_backends(tc_pg_t *pg, int sig) {
  PGconn *conn = PQconnectdb(tc_pg_uri(pg));
  assert_int_equal(PQstatus(conn), CONNECTION_OK);
  PGresult *r = PQexec(conn,
                       "SELECT pid FROM pg_stat_activity WHERE datname = 'tuplecast' AND "
                       "backend_type = 'client backend' AND pid <> pg_backend_pid()");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  assert_true(PQntuples(r) > 0);
  for (int i = 0; i < PQntuples(r); i++)
    assert_int_equal(kill((pid_t)atoi(PQgetvalue(r, i, 0)), sig), 0);
  PQclear(r);
  PQfinish(conn);
}

/* A database that hangs instead of going away (its backends stopped): the
 * ping gets no answer, and after its 2 s the verdict is NOT_SERVING; the
 * late answer, once they go on, makes it SERVING again. */
static void test_postgres_hangs(void **state) {
  (void)state;
  tc_pg_t *pg;
  tc_proc_t p = {0};
  int http_port;
  tc_client_t *c = start_on_postgres(&pg, &p, &http_port);
  signal_backends(pg, SIGSTOP);
  wait_ready(c, http_port, NOT_SERVING, NOTICE_MS);
  assert_non_null(tc_proc_wait_log(&p, 0, "no answer to a ping within 2 s", 5000));
  signal_backends(pg, SIGCONT);
  wait_ready(c, http_port, SERVING, RECOVER_MS);
  tc_client_free(c);
  assert_int_equal(tc_proc_stop(&p, NULL), 0);
  tc_pg_stop(pg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_watch_during_stop),
      cmocka_unit_test(test_postgres_down_and_back),
      cmocka_unit_test(test_postgres_hangs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
