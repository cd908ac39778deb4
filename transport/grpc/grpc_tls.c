/* gRPC over TLS: TLS ends on the loop, and gRPC gets plaintext HTTP/2 over a
 * socketpair.  gRPC 1.51 cannot be given an accepted descriptor together with
 * TLS credentials (grpc_server_add_channel_from_fd is plaintext only), and its
 * own listener stops for good on EMFILE; so our listener accepts, the TLS
 * engine (transport/tls) runs the handshake, the client's HTTP/2 preface is
 * awaited as for plaintext (both within server.grpc.handshake_timeout), and
 * then one end of a socketpair(AF_UNIX) goes to gRPC (tc__grpc_give_fd)
 * while the loop relays between the TLS connection and the other end.  The
 * relay counts against server.grpc.max_connections until it is closed
 * (tc__grpc_relay_begin/end), not through gRPC's end.
 *
 * Backpressure: each direction stops reading its source while the write
 * queue of its destination holds more than RELAY_BOUND bytes, and resumes
 * when a write completes below it; nothing is buffered beyond that (plus one
 * read).  The client is also not read while its own write queue is over the
 * bound: reading it makes TLS answer it too (alerts, key updates), so a
 * client that sends without reading would otherwise grow that queue without
 * end.  End of stream or an error on either side closes both; while gRPC's
 * side is not read, its close is looked for every PAUSED_CHECK_MS.
 */
#define _GNU_SOURCE /* SOCK_NONBLOCK, SOCK_CLOEXEC, POLLRDHUP */
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_internal.h"
#include "log.h"
#include "listener.h"
#include "tls_conn.h"

/* Per direction: about four HTTP/2 flow-control windows of 64 KiB. */
#define RELAY_BOUND ((size_t)256 << 10)
/* How often a relay that does not read gRPC's side looks for its close. */
#define PAUSED_CHECK_MS 250

struct tc__grpc_tls_s {
  uv_tcp_t tcp;     /* the client: ciphertext */
  uv_pipe_t pipe;   /* our end of the socketpair: plaintext to and from gRPC */
  uv_timer_t timer; /* the deadline of the handshake and the preface */
  tc_tls_conn_t *tls;
  tc_grpc_server_t *s; /* NULL once the server is gone */
  tc__grpc_tls_t *prev, *next;
  int handles, closing;
  int handshaking;     /* counted by tc__grpc_handshake_begin */
  int pipe_open;       /* gRPC has its end: the preface is in */
  int grpc_fd;         /* gRPC's end, once pipe_open (its peer is "fd:N") */
  int relaying;        /* counted by tc__grpc_relay_begin */
  size_t preface_seen; /* bytes of the HTTP/2 preface received */
  int tcp_paused, pipe_paused;
};

typedef struct pwrite_s {
  uv_write_t req;
  char data[];
} pwrite_t;

static void unlink_conn(tc__grpc_tls_t *p) {
  tc_grpc_server_t *s = p->s;
  if (!s) return;
  if (p->prev)
    p->prev->next = p->next;
  else
    s->tls_conns = p->next;
  if (p->next) p->next->prev = p->prev;
  if (p->pipe_open && (size_t)p->grpc_fd < s->n_tls_by_fd && s->tls_by_fd[p->grpc_fd] == p)
    s->tls_by_fd[p->grpc_fd] = NULL;
  p->s = NULL;
  if (p->handshaking) tc__grpc_handshake_end(s);
  if (p->relaying) tc__grpc_relay_end(s);
}

static void on_closed(uv_handle_t *h) {
  tc__grpc_tls_t *p = h->data;
  if (--p->handles) return;
  unlink_conn(p);
  tc_tls_conn_free(p->tls);
  free(p);
}

static void relay_close(tc__grpc_tls_t *p) {
  if (p->closing) return;
  p->closing = 1;
  uv_close((uv_handle_t *)&p->tcp, on_closed);
  uv_close((uv_handle_t *)&p->timer, on_closed);
  if (p->pipe_open) uv_close((uv_handle_t *)&p->pipe, on_closed);
}

static size_t queued(void *stream) { return uv_stream_get_write_queue_size(stream); }

static void on_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* The client's bytes go to gRPC's queue, and TLS's answers to its own. */
static int tcp_over(tc__grpc_tls_t *p) {
  return queued(&p->tcp) > RELAY_BOUND || (p->pipe_open && queued(&p->pipe) > RELAY_BOUND);
}

static void tcp_resume(tc__grpc_tls_t *p) {
  if (!p->tcp_paused || tcp_over(p)) return;
  p->tcp_paused = 0;
  uv_read_start((uv_stream_t *)&p->tcp, tc_tls_conn_alloc, on_tcp_read);
}

/* ---- client -> gRPC ---- */

static void on_pipe_written(uv_write_t *req, int status);

/* Plaintext for gRPC, on the socketpair. */
static int pipe_write(tc__grpc_tls_t *p, const char *data, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  if (!queued(&p->pipe)) { /* the common case: the socketpair takes it at once */
    int n = uv_try_write((uv_stream_t *)&p->pipe, &buf, 1);
    if (n == (int)len) return 0;
    if (n > 0) buf = uv_buf_init(buf.base + n, buf.len - (unsigned)n);
  }
  pwrite_t *w = malloc(sizeof *w + buf.len);
  if (!w) return TC_ENOMEM;
  memcpy(w->data, buf.base, buf.len);
  buf.base = w->data;
  if (uv_write(&w->req, (uv_stream_t *)&p->pipe, &buf, 1, on_pipe_written) != 0) {
    free(w);
    return TC_ECANCELLED;
  }
  return 0;
}

static int hand_over(tc__grpc_tls_t *p);

/* Decrypted bytes from the client.  Until the HTTP/2 preface is complete
 * they are only compared with it (so nothing needs keeping); then gRPC gets
 * its connection, the preface, and everything after it. */
static int to_grpc(void *arg, const char *data, size_t len) {
  tc__grpc_tls_t *p = arg;
  if (p->closing) return TC_ECANCELLED;
  if (!p->pipe_open) {
    size_t n = TC__GRPC_PREFACE_LEN - p->preface_seen;
    if (n > len) n = len;
    if (memcmp(data, TC__GRPC_PREFACE + p->preface_seen, n) != 0) return TC_ECANCELLED;
    p->preface_seen += n;
    if (p->preface_seen < TC__GRPC_PREFACE_LEN) return 0;
    int rc = hand_over(p);
    if (rc == 0) rc = pipe_write(p, TC__GRPC_PREFACE, TC__GRPC_PREFACE_LEN);
    if (rc != 0 || n == len) return rc;
    data += n;
    len -= n;
  }
  return pipe_write(p, data, len);
}

static void on_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  tc__grpc_tls_t *p = stream->data;
  if (nread < 0 || tc_tls_conn_feed(p->tls, buf->base, (size_t)nread) != 0) {
    relay_close(p);
    return;
  }
  if (!p->closing && tcp_over(p)) {
    uv_read_stop(stream);
    p->tcp_paused = 1;
  }
}

static void on_pipe_written(uv_write_t *req, int status) {
  tc__grpc_tls_t *p = req->handle->data;
  free(req);
  if (p->closing) return;
  if (status < 0) {
    relay_close(p);
    return;
  }
  tcp_resume(p);
}

/* ---- gRPC -> client ---- */

/* While gRPC's side is not read, its close is not seen either: the relay
 * looks for it on its timer (idle since the handshake) and closes, rather
 * than live on for a client that does not read. */
static void on_paused_check(uv_timer_t *t) {
  tc__grpc_tls_t *p = t->data;
  uv_os_fd_t fd;
  if (p->closing || uv_fileno((uv_handle_t *)&p->pipe, &fd) != 0) return;
  struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};
  if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
    tc_log(TC_LOG_DEBUG, "grpc: tls: gRPC closed a connection whose client does not read");
    relay_close(p);
  }
}

static void on_pipe_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  tc__grpc_tls_t *p = stream->data;
  if (nread < 0 || tc_tls_conn_write(p->tls, buf->base, (size_t)nread, p) != 0) {
    relay_close(p); /* gRPC closed the connection, or the write failed */
    return;
  }
  if (queued(&p->tcp) > RELAY_BOUND) {
    uv_read_stop(stream);
    p->pipe_paused = 1;
    uv_timer_start(&p->timer, on_paused_check, PAUSED_CHECK_MS, PAUSED_CHECK_MS);
  }
}

/* The client's write queue went down: both directions may read again. */
static void tcp_drained(void *arg) {
  tc__grpc_tls_t *p = arg;
  if (p->closing) return;
  if (p->pipe_paused && queued(&p->tcp) <= RELAY_BOUND) {
    p->pipe_paused = 0;
    uv_timer_stop(&p->timer);
    uv_read_start((uv_stream_t *)&p->pipe, tc_tls_conn_alloc, on_pipe_read);
  }
  tcp_resume(p);
}

/* tc_tls_conn_write's completion (token p). */
static void on_tls_written(void *arg, void *token, int status) {
  tc__grpc_tls_t *p = arg;
  (void)token;
  if (!p->closing && status < 0) relay_close(p);
  tcp_drained(p);
}

void tc__grpc_tls_peer(tc_grpc_server_t *s, int fd, char *buf, size_t len) {
  tc__grpc_tls_t *p = fd >= 0 && (size_t)fd < s->n_tls_by_fd ? s->tls_by_fd[fd] : NULL;
  uv_os_fd_t tcp;
  if (p && uv_fileno((uv_handle_t *)&p->tcp, &tcp) == 0) tc_net_peer_name(tcp, buf, len);
}

/* Records p under gRPC's end of its socketpair (a descriptor number, so
 * the table stays below RLIMIT_NOFILE); without memory, p has no peer. */
static void index_relay(tc_grpc_server_t *s, tc__grpc_tls_t *p, int fd) {
  p->grpc_fd = fd;
  if ((size_t)fd >= s->n_tls_by_fd) {
    size_t n = (size_t)fd * 2 + 16;
    tc__grpc_tls_t **t = realloc(s->tls_by_fd, n * sizeof *t);
    if (!t) return;
    memset(t + s->n_tls_by_fd, 0, (n - s->n_tls_by_fd) * sizeof *t);
    s->tls_by_fd = t;
    s->n_tls_by_fd = n;
  }
  s->tls_by_fd[fd] = p;
}

/* ---- the handshake ---- */

/* TLS is up and the preface is in: gRPC gets its end of a socketpair, and
 * the relay starts.  0, or a negative code (the caller closes). */
static int hand_over(tc__grpc_tls_t *p) {
  tc_grpc_server_t *s = p->s;
  int sv[2];
  uv_timer_stop(&p->timer);
  if (!s || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    tc_log(TC_LOG_WARN, "grpc: tls: no socketpair for a connection, closing it");
    return TC_ECANCELLED;
  }
  uv_pipe_init(s->loop, &p->pipe, 0);
  p->pipe.data = p;
  p->handles++;
  p->pipe_open = 1;
  if (uv_pipe_open(&p->pipe, sv[0]) != 0) {
    close(sv[0]);
    close(sv[1]);
    return TC_ECANCELLED;
  }
  p->handshaking = 0;
  p->relaying = 1;
  index_relay(s, p, sv[1]);
  tc__grpc_relay_begin(s);
  tc__grpc_give_fd(s, sv[1]);
  tc__grpc_handshake_end(s);
  uv_read_start((uv_stream_t *)&p->pipe, tc_tls_conn_alloc, on_pipe_read);
  return 0;
}

static void on_handshake_timeout(uv_timer_t *t) {
  tc_log(TC_LOG_DEBUG, "grpc: tls: no TLS handshake and HTTP/2 preface in time");
  relay_close(t->data);
}

static const tc_tls_conn_cbs_t cbs = {
    .on_plain = to_grpc, .on_written = on_tls_written, .on_flushed = tcp_drained};

void tc__grpc_tls_accept(tc_grpc_server_t *s, int fd) {
  tc__grpc_tls_t *p = tc__grpc_conn_room(s) ? calloc(1, sizeof *p) : NULL;
  if (!p || uv_tcp_init(s->loop, &p->tcp) != 0) {
    free(p);
    close(fd);
    return;
  }
  p->s = s;
  p->tcp.data = p;
  uv_timer_init(s->loop, &p->timer);
  p->timer.data = p;
  p->handles = 2;
  p->next = s->tls_conns;
  if (p->next) p->next->prev = p;
  s->tls_conns = p;
  p->handshaking = 1;
  tc__grpc_handshake_begin(s);
  if (uv_tcp_open(&p->tcp, fd) != 0) {
    close(fd);
    relay_close(p);
    return;
  }
  uv_tcp_nodelay(&p->tcp, 1);
  p->tls = tc_tls_conn_new(s->tls, (uv_stream_t *)&p->tcp, &cbs, p);
  if (!p->tls) {
    relay_close(p);
    return;
  }
  uv_timer_start(&p->timer, on_handshake_timeout, (uint64_t)s->handshake_timeout_ms, 0);
  uv_read_start((uv_stream_t *)&p->tcp, tc_tls_conn_alloc, on_tcp_read);
}

void tc__grpc_tls_stop(tc_grpc_server_t *s) {
  for (tc__grpc_tls_t *p = s->tls_conns; p; p = p->next)
    if (p->handshaking) relay_close(p);
}

void tc__grpc_tls_free(tc_grpc_server_t *s) {
  /* gRPC is destroyed: what is left of its connections closes now, and no
   * longer refers to the server. */
  tc__grpc_tls_t *p = s->tls_conns;
  s->tls_conns = NULL;
  free(s->tls_by_fd);
  s->tls_by_fd = NULL;
  s->n_tls_by_fd = 0;
  while (p) {
    tc__grpc_tls_t *next = p->next;
    p->s = NULL;
    p->prev = p->next = NULL;
    relay_close(p);
    p = next;
  }
}
