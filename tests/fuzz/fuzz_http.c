/* Fuzz target: the HTTP gateway (transport/http) end to end: http-parser
 * and our engine around it (keep-alive, pipelining, limits, Expect, CORS),
 * the route table and its path parameters, the JSON bodies, and the calls
 * they become on a fresh core server (fuzz_server.h) over the example
 * backend, Watch's NDJSON streams included.
 *
 * An input is the bytes a client sends on one connection.  The gateway is
 * started as the server starts it; the connection is one end of a
 * socketpair handed to its listener's accept callback, so no TCP is
 * involved.  Once the server has read everything and answered what it could
 * (a Watch is left open), the client half-closes and the connection must
 * close with no call left.  What the server wrote back must parse as HTTP
 * responses (not checked when the input holds a HEAD request, whose answers
 * have headers promising a body that is not sent).  With TT_FUZZ_TRACE set
 * in the environment the server's answers are printed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_server.h"
#include "http_internal.h"

typedef struct client_s {
  int fd;
  http_parser parser; /* the server's answers, as a client reads them */
  int check, bad, trace;
} client_t;

static int on_message(http_parser *p) {
  (void)p;
  return 0;
}

static const http_parser_settings response_settings = {.on_message_complete = on_message};

/* Reads what the server wrote so far.  The parser never sees the end of
 * the input: a stream cut short when the client left is no error. */
static void client_read(client_t *cl) {
  char buf[16384];
  ssize_t n;
  while ((n = recv(cl->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
    if (cl->trace) fwrite(buf, 1, (size_t)n, stderr);
    if (cl->check && !cl->bad &&
        http_parser_execute(&cl->parser, &response_settings, buf, (size_t)n) != (size_t)n)
      cl->bad = 1;
  }
  if (cl->check && (cl->bad || HTTP_PARSER_ERRNO(&cl->parser) != HPE_OK)) {
    fprintf(stderr, "fuzz_http: the server's answer is not HTTP: %s\n",
            http_errno_description(HTTP_PARSER_ERRNO(&cl->parser)));
    abort();
  }
}

/* Unread bytes in the server's end of the socketpair. */
static int unread(int fd) {
  int n = 0;
  return ioctl(fd, FIONREAD, &n) == 0 ? n : 0;
}

/* Runs the loop until the server has read all it was sent and answered all
 * it could: no connection left, or one waiting for more bytes, or one
 * running a stream (given a few turns to send what it has). */
static void settle(tc_http_server_t *hs, client_t *cl, int server_fd) {
  int stream_turns = 0;
  for (;;) {
    uv_run(tt_fuzz_loop(), UV_RUN_NOWAIT);
    client_read(cl);
    tc__http_conn_t *c = hs->conns;
    if (!c) return;
    if (!c->busy && !unread(server_fd)) return;
    if (c->busy && tc__http_call_streaming(c) && ++stream_turns > 8) return;
  }
}

static int holds_head(const uint8_t *data, size_t size) {
  for (size_t i = 0; i + 4 <= size; i++)
    if (memcmp(data + i, "HEAD", 4) == 0) return 1;
  return 0;
}

static void set_flag(void *arg) { *(int *)arg = 1; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tc_server_t *srv = tt_fuzz_server_open();
  tc_http_opts_t opts = {.host = "127.0.0.1", .find_method = tc_method_find, .server = srv};
  tc_http_server_t *hs;
  int port, fds[2];
  char *err = NULL;
  if (tc_http_start(tt_fuzz_loop(), &opts, &hs, &port, &err) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    fprintf(stderr, "fuzz_http: cannot start: %s\n", err ? err : "socketpair");
    abort();
  }
  client_t cl = {
      .fd = fds[1], .check = !holds_head(data, size), .trace = getenv("TT_FUZZ_TRACE") != NULL};
  http_parser_init(&cl.parser, HTTP_RESPONSE);
  if (size && send(fds[1], data, size, 0) != (ssize_t)size) abort();
  hs->listener.on_accept(&hs->listener, fds[0]);
  settle(hs, &cl, fds[0]);
  shutdown(fds[1], SHUT_WR);
  int done = 0;
  while (hs->n_conns || hs->n_calls) {
    uv_run(tt_fuzz_loop(), UV_RUN_NOWAIT);
    client_read(&cl);
  }
  client_read(&cl);
  close(fds[1]);
  tc_http_stop(hs, set_flag, &done);
  tt_fuzz_run_until(&done, "the HTTP server's stop");
  tt_fuzz_server_close(srv);
  return 0;
}
