/* TLS connections that cost the server without bound unless it holds back,
 * against the real binary with a certificate made at test time and an
 * OpenSSL client written here (the openssl and curl binaries cannot send key
 * updates without reading).
 *
 * HTTPS: a client that sends TLS 1.3 KeyUpdate requests and reads nothing
 * makes the server queue one answer per request; the server must stop
 * reading it once that queue is long, so the client's sends block after a
 * bounded amount, and once it reads again the connection serves requests.
 * gRPC: a TLS connection counts against server.grpc.max_connections while it
 * is open, and its room comes back when it closes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server_proc.h"

#define WAIT_MS 20000
/* Key update bytes a client may send without reading before the server must
 * have stopped reading it.  The server's bound is 256 KiB of queued answers
 * (about 0.5 MB of what the client sends); the rest is kernel buffers, the
 * server's send buffer above all (up to 4 MB by tcp_wmem): the sends blocked
 * after 8.1 MB here with the bound, and without it passed this limit in 15 s
 * (Debug build) without ever blocking. */
#define KEY_UPDATE_LIMIT ((size_t)24 << 20)
/* Sends that make no progress for this long: the server stopped reading. */
#define BLOCKED_MS 1000

typedef struct {
  char *dir;
  tc_proc_t proc;
  int http_port;
  SSL_CTX *ctx;
} fx_t;

static int start(fx_t *f, const char *grpc_max) {
  char cert[1024], key[1024], cmd[4096];
  snprintf(cert, sizeof cert, "%s/cert.pem", f->dir);
  snprintf(key, sizeof key, "%s/key.pem", f->dir);
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
           "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
           "2>/dev/null",
           key, cert);
  if (system(cmd) != 0) return -1;
  const char *const extra[] = {"--grpc-max-connections", grpc_max, "--http-header-timeout", "120s",
                               NULL};
  if (tc_proc_start_tls(&f->proc, f->dir, extra) != 0) return -1;
  f->http_port = tc_proc_http_port(&f->proc, WAIT_MS);
  return f->http_port > 0 ? 0 : -1;
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  *state = f;
  f->dir = tc_temp_dir();
  f->ctx = SSL_CTX_new(TLS_client_method());
  if (!f->ctx) return -1;
  /* Key updates are TLS 1.3's; nothing here checks the certificate. */
  SSL_CTX_set_min_proto_version(f->ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(f->ctx, SSL_VERIFY_NONE, NULL);
  return start(f, "1");
}

static int teardown(void **state) {
  fx_t *f = *state;
  int rc = tc_proc_teardown(&f->proc, f->dir);
  SSL_CTX_free(f->ctx);
  free(f);
  return rc;
}

/* A TLS connection to 127.0.0.1:port, handshaken, its socket non-blocking
 * afterwards; NULL when the server closed it or failed the handshake. */
static SSL *tls_dial(fx_t *f, int port, const char *alpn, int small_buffers) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (small_buffers) { /* so the kernel holds little of what is not read */
    int sz = 16384;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
  struct timeval tv = {.tv_sec = WAIT_MS / 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  SSL *ssl = SSL_new(f->ctx);
  assert_non_null(ssl);
  if (alpn) SSL_set_alpn_protos(ssl, (const unsigned char *)alpn, (unsigned)strlen(alpn));
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) {
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return NULL;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return ssl;
}

static void tls_close(SSL *ssl) {
  int fd = SSL_get_fd(ssl);
  SSL_free(ssl);
  close(fd);
}

/* Waits until the socket is ready for what SSL wants after r; 0 on timeout. */
static int wait_for(SSL *ssl, int r, int timeout_ms) {
  int err = SSL_get_error(ssl, r);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
    fprintf(stderr, "TLS error %d (errno %d): %s\n", err, errno,
            ERR_reason_error_string(ERR_peek_last_error()));
  assert_true(err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE);
  struct pollfd pfd = {.fd = SSL_get_fd(ssl),
                       .events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
  return poll(&pfd, 1, timeout_ms) == 1;
}

/* The body of a POST that never ends: one byte after each key update (after
 * 32 key updates in a row without data OpenSSL ends the connection). */
static const char POST_HEAD[] =
    "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n";

/* After the handshake the key-update client moves its ciphertext itself,
 * through memory BIOs: over a socket BIO, OpenSSL does not read while a
 * write of its own is stuck, and here the server stops reading until the
 * client reads, so such a client and the server would each wait for the
 * other (it happened with four of these tests at once on two cores). */
typedef struct {
  SSL *ssl;
  int fd;
  BIO *in, *out; /* ciphertext from the server / for the server */
} mem_tls_t;

static mem_tls_t mem_tls(SSL *ssl) {
  mem_tls_t c = {ssl, SSL_get_fd(ssl), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem())};
  assert_non_null(c.in);
  assert_non_null(c.out);
  BIO_set_mem_eof_return(c.in, -1);
  SSL_set_bio(ssl, c.in, c.out); /* the socket BIO goes; it leaves the descriptor open */
  return c;
}

/* Writes as much of what SSL produced as the socket takes; the bytes sent. */
static size_t push_out(mem_tls_t *c) {
  size_t sent = 0;
  char *p, skip[65536];
  long n;
  while ((n = BIO_get_mem_data(c->out, &p)) > 0) {
    ssize_t w = send(c->fd, p, (size_t)n, MSG_DONTWAIT);
    if (w <= 0) break;
    for (size_t left = (size_t)w; left > 0;)
      left -= (size_t)BIO_read(c->out, skip, (int)(left < sizeof skip ? left : sizeof skip));
    sent += (size_t)w;
  }
  return sent;
}

/* Reads what the socket holds into SSL, and SSL's plaintext away; the
 * ciphertext bytes read. */
static size_t pull_in(mem_tls_t *c) {
  char buf[65536];
  size_t got = 0;
  ssize_t r;
  while ((r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
    assert_int_equal(BIO_write(c->in, buf, (int)r), (int)r);
    got += (size_t)r;
  }
  while (SSL_read(c->ssl, buf, sizeof buf) > 0) {
  }
  ERR_clear_error();
  return got;
}

/* 1 when the socket has one of events within timeout_ms. */
static int ready(int fd, short events, int timeout_ms) {
  struct pollfd pfd = {.fd = fd, .events = events};
  return poll(&pfd, 1, timeout_ms) == 1;
}

/* Sends KeyUpdate requests, each with a byte of the body, reading nothing,
 * until the sends block for BLOCKED_MS; returns the bytes sent by then (or
 * over KEY_UPDATE_LIMIT). */
static size_t key_updates_until_blocked(mem_tls_t *c) {
  size_t sent = 0;
  while (sent <= KEY_UPDATE_LIMIT) {
    if (BIO_ctrl_pending(c->out) == 0) {
      assert_int_equal(SSL_key_update(c->ssl, SSL_KEY_UPDATE_REQUESTED), 1);
      assert_int_equal(SSL_write(c->ssl, "x", 1), 1);
    }
    sent += push_out(c);
    if (BIO_ctrl_pending(c->out) && !ready(c->fd, POLLOUT, BLOCKED_MS)) break;
  }
  return sent;
}

/* Reads everything the server sent and sends what is left, until nothing is
 * left to send and the server is quiet for 200 ms.  Reading lets the server
 * read again, and it answers as many key updates as sending them took, so
 * this may take as long (sending_ms) again: about 20 s with four such tests
 * at once on two cores. */
static void drain(mem_tls_t *c, long long sending_ms) {
  long long deadline = tc_now_ms() + WAIT_MS + 2 * sending_ms;
  for (int quiet = 0; !quiet;) {
    assert_true(tc_now_ms() < deadline);
    push_out(c);
    pull_in(c);
    if (BIO_ctrl_pending(c->out))
      ready(c->fd, POLLIN | POLLOUT, 200);
    else
      quiet = !ready(c->fd, POLLIN, 200);
  }
}

static void test_https_key_updates_unread(void **state) {
  fx_t *f = *state;
  SSL *ssl = tls_dial(f, f->http_port, NULL, 1);
  assert_non_null(ssl);
  mem_tls_t c = mem_tls(ssl);
  assert_int_equal(SSL_write(ssl, POST_HEAD, sizeof POST_HEAD - 1), (int)sizeof POST_HEAD - 1);
  long long t0 = tc_now_ms();
  size_t sent = key_updates_until_blocked(&c);
  long long sending_ms = tc_now_ms() - t0;
  print_message("key updates: %zu bytes sent before the server stopped reading (%lld ms)\n", sent,
                sending_ms);
  assert_true(sent <= KEY_UPDATE_LIMIT);
  /* Once the client reads, the server reads it again: a key update gets its
   * answer. */
  drain(&c, sending_ms);
  assert_int_equal(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
  assert_int_equal(SSL_write(ssl, "x", 1), 1);
  long long deadline = tc_now_ms() + WAIT_MS;
  for (size_t got = 0; !got; got = pull_in(&c)) {
    assert_true(tc_now_ms() < deadline);
    push_out(&c);
    ready(c.fd, POLLIN, 100);
  }
  SSL_free(ssl);
  close(c.fd);
}

/* An HTTP/2 preface and empty SETTINGS frame on ssl; 1 once gRPC answered
 * with a frame (its SETTINGS). */
static int grpc_answers(SSL *ssl) {
  static const char hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  int r = SSL_write(ssl, hello, sizeof hello - 1);
  if (r != (int)sizeof hello - 1) return 0;
  unsigned char head[9];
  long long deadline = tc_now_ms() + WAIT_MS;
  while (tc_now_ms() < deadline) {
    r = SSL_read(ssl, head, sizeof head);
    if (r > 0) return head[3] == 4 || r < 4;
    int err = SSL_get_error(ssl, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return 0;
    wait_for(ssl, r, 100);
  }
  return 0;
}

/* With server.grpc.max_connections 1: a second TLS connection is closed at
 * once while the first is open, and has room as soon as the first closed. */
static void test_grpc_tls_connection_counted(void **state) {
  fx_t *f = *state;
  int port = f->proc.grpc_port;
  SSL *a = tls_dial(f, port, "\x02h2", 0);
  assert_non_null(a);
  assert_true(grpc_answers(a));
  for (int i = 0; i < 3; i++) { /* held, also after gRPC swept its entries */
    SSL *over = tls_dial(f, port, "\x02h2", 0);
    if (over) {
      assert_false(grpc_answers(over));
      tls_close(over);
    }
  }
  tls_close(a);
  long long t0 = tc_now_ms();
  int again = 0;
  while (!again && tc_now_ms() - t0 < 2000) {
    SSL *b = tls_dial(f, port, "\x02h2", 0);
    again = b && grpc_answers(b);
    if (b) tls_close(b);
  }
  print_message("room again %lld ms after the TLS connection closed\n", tc_now_ms() - t0);
  assert_true(again);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_https_key_updates_unread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_grpc_tls_connection_counted, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
