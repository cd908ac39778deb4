/* gRPC's connections: our listener accepts them (gRPC 1.51's own listener
 * closes its port for good on the first EMFILE), a plaintext connection waits
 * on the loop until its HTTP/2 client preface has arrived, and is then handed
 * to gRPC; a connection limit covers the connections gRPC holds and those
 * still in handshake.
 *
 * gRPC closes a handed connection itself and says nothing, so each one is
 * remembered as (descriptor, socket inode) and an entry is stale once fstat()
 * fails or finds another inode there (a socket's inode is unique while it is
 * open).  Stale entries are swept when the count reaches the limit, at most
 * once per SWEEP_INTERVAL_MS.  A TLS relay is counted instead from its
 * handshake's end to its close (n_relays), and its socketpair end is not
 * recorded. */
#define _GNU_SOURCE /* SO_RCVLOWAT's companions, TCP_NODELAY */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>

#include "grpc_internal.h"
#include "log.h"

/* A sweep fstat()s every entry (≈0.3 µs each here): at most this often. */
#define SWEEP_INTERVAL_MS 20
/* For /metrics, which anyone may ask for as often as they like: at most
 * once a second, so a scrape's count may hold connections closed since. */
#define METRICS_SWEEP_MS 1000

struct tc__grpc_preface_s {
  uv_poll_t poll;
  uv_timer_t timer;
  tc_grpc_server_t *s;
  tc__grpc_preface_t *prev, *next;
  int fd; /* -1 once handed to gRPC */
  int handles;
};

/* ---- counting ---- */

static void sweep(tc_grpc_server_t *s) {
  s->last_sweep = uv_now(s->loop);
  int kept = 0;
  for (int i = 0; i < s->n_owned; i++) {
    struct stat st;
    tc__grpc_owned_t o = s->owned[i];
    if (fstat(o.fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == o.ino) s->owned[kept++] = o;
  }
  s->n_owned = kept;
}

/* Sweeps unless the last sweep is less than ms old. */
static void sweep_unless_within(tc_grpc_server_t *s, uint64_t ms) {
  uint64_t now = uv_now(s->loop);
  if (now - s->last_sweep >= ms || now < s->last_sweep) sweep(s);
}

int tc__grpc_conn_room(tc_grpc_server_t *s) {
  if (s->stopping) return 0;
  if (!s->max_conns) return 1;
  if (s->n_owned + s->n_handshaking + s->n_relays < s->max_conns) return 1;
  sweep_unless_within(s, SWEEP_INTERVAL_MS);
  return s->n_owned + s->n_handshaking + s->n_relays < s->max_conns;
}

size_t tc_grpc_connections(tc_grpc_server_t *s) {
  sweep_unless_within(s, METRICS_SWEEP_MS);
  return (size_t)(s->n_owned + s->n_handshaking + s->n_relays);
}

void tc__grpc_handshake_begin(tc_grpc_server_t *s) { s->n_handshaking++; }

void tc__grpc_relay_begin(tc_grpc_server_t *s) { s->n_relays++; }

void tc__grpc_relay_end(tc_grpc_server_t *s) { s->n_relays--; }

void tc__grpc_handshake_end(tc_grpc_server_t *s) {
  s->n_handshaking--;
  tc__grpc_server_released(s);
}

void tc__grpc_adopt_fd(tc_grpc_server_t *s, int fd) {
  if (s->stopping) {
    close(fd);
    return;
  }
  if (s->max_conns) {
    struct stat st;
    if (s->n_owned == s->max_conns) sweep(s);
    if (s->n_owned == s->max_conns || fstat(fd, &st) != 0) {
      close(fd); /* a caller that skipped tc__grpc_conn_room() */
      return;
    }
    s->owned[s->n_owned++] = (tc__grpc_owned_t){.fd = fd, .ino = st.st_ino};
  }
  tc__grpc_give_fd(s, fd);
}

void tc__grpc_give_fd(tc_grpc_server_t *s, int fd) {
  if (s->stopping)
    close(fd);
  else
    grpc_server_add_channel_from_fd(s->server, fd, s->insecure);
}

/* ---- the preface wait ---- */

static void on_preface_closed(uv_handle_t *h) {
  tc__grpc_preface_t *p = h->data;
  if (--p->handles) return;
  tc_grpc_server_t *s = p->s;
  if (p->fd >= 0) close(p->fd);
  if (p->prev)
    p->prev->next = p->next;
  else
    s->prefaces = p->next;
  if (p->next) p->next->prev = p->prev;
  free(p);
  tc__grpc_handshake_end(s);
}

/* Closing the poll handle takes the descriptor out of the loop's epoll set
 * at once, so after this the descriptor may be given away. */
static void preface_close(tc__grpc_preface_t *p) {
  if (uv_is_closing((uv_handle_t *)&p->timer)) return;
  uv_close((uv_handle_t *)&p->poll, on_preface_closed);
  uv_close((uv_handle_t *)&p->timer, on_preface_closed);
}

static void hand_over(tc__grpc_preface_t *p) {
  int fd = p->fd, one = 1;
  p->fd = -1;
  preface_close(p);
  setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  tc__grpc_adopt_fd(p->s, fd);
}

/* Readable: SO_RCVLOWAT holds this back until the whole preface is there, so
 * fewer bytes mean the client closed or failed.  MSG_PEEK leaves the bytes
 * for gRPC. */
static void on_preface_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  tc__grpc_preface_t *p = h->data;
  char buf[TC__GRPC_PREFACE_LEN];
  ssize_t n = status < 0 ? -1 : recv(p->fd, buf, sizeof buf, MSG_PEEK);
  if (n < 0 && status >= 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n == (ssize_t)sizeof buf && memcmp(buf, TC__GRPC_PREFACE, sizeof buf) == 0)
    hand_over(p);
  else
    preface_close(p);
}

static void on_preface_timeout(uv_timer_t *t) { preface_close(t->data); }

/* The listener's callback: a new plaintext connection. */
static void on_accept(tc_listener_t *l, int fd) {
  tc_grpc_server_t *s = l->data;
  if (s->tls) {
    tc__grpc_tls_accept(s, fd);
    return;
  }
  tc__grpc_preface_t *p = tc__grpc_conn_room(s) ? calloc(1, sizeof *p) : NULL;
  int lowat = (int)TC__GRPC_PREFACE_LEN;
  if (!p || setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0 ||
      uv_poll_init_socket(s->loop, &p->poll, fd) != 0) {
    free(p);
    close(fd);
    return;
  }
  p->s = s;
  p->fd = fd;
  p->handles = 2;
  uv_timer_init(s->loop, &p->timer);
  p->poll.data = p->timer.data = p;
  p->next = s->prefaces;
  if (p->next) p->next->prev = p;
  s->prefaces = p;
  tc__grpc_handshake_begin(s);
  uv_poll_start(&p->poll, UV_READABLE | UV_DISCONNECT, on_preface_readable);
  uv_timer_start(&p->timer, on_preface_timeout, (uint64_t)s->handshake_timeout_ms, 0);
}

/* ---- lifetime ---- */

static void on_listener_closed(tc_listener_t *l) {
  tc_grpc_server_t *s = l->data;
  s->listener_open = 0;
  tc__grpc_server_released(s);
}

int tc__grpc_conn_start(tc_grpc_server_t *s, const tc_grpc_opts_t *opts, int *bound_port,
                        char **errmsg) {
  s->max_conns = opts->max_connections;
  s->tls = opts->tls;
  s->handshake_timeout_ms = opts->handshake_timeout_ms > 0 ? opts->handshake_timeout_ms : 10000;
  if (s->max_conns && !(s->owned = calloc((size_t)s->max_conns, sizeof *s->owned)))
    return TC_ENOMEM;
  s->insecure = grpc_insecure_server_credentials_create();
  s->listener.data = s;
  s->listener.name = "grpc";
  s->listener.on_accept = on_accept;
  s->listener.on_close = on_listener_closed;
  int rc = tc_listener_open(&s->listener, s->loop, opts->host, opts->port, bound_port, errmsg);
  s->listener_open = rc == 0;
  return rc;
}

void tc__grpc_conn_stop(tc_grpc_server_t *s) {
  if (s->listener_open) tc_listener_close(&s->listener);
  for (tc__grpc_preface_t *p = s->prefaces; p; p = p->next) preface_close(p);
  tc__grpc_tls_stop(s);
}

int tc__grpc_conn_busy(const tc_grpc_server_t *s) { return s->listener_open || s->n_handshaking; }

void tc__grpc_conn_free(tc_grpc_server_t *s) {
  tc__grpc_tls_free(s);
  if (s->insecure) grpc_server_credentials_release(s->insecure);
  s->insecure = NULL;
  free(s->owned);
  s->owned = NULL;
}
