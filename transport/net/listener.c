/* The TCP listener: bind, accept loop, exhaustion backoff (listener.h). */
#define _GNU_SOURCE /* accept4 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tuplecast/support.h" /* tc_format */
#include "log.h"
#include "tuplecast/errors.h"

/* Accepts per readiness event: the rest wait for the next loop turn, so a
 * flood of connections cannot starve the calls already being served. */
#define ACCEPT_BATCH 128

static int open_spare(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

static void on_readable(uv_poll_t *h, int status, int events);

static void start_polling(tc_listener_t *l) {
  if (!l->polling) uv_poll_start(&l->poll, UV_READABLE, on_readable);
  l->polling = 1;
}

static void on_backoff_over(uv_timer_t *t) {
  tc_listener_t *l = t->data;
  if (l->spare < 0) l->spare = open_spare();
  start_polling(l);
}

/* Out of descriptors: refuse everyone waiting (the spare's slot lets each
 * accept succeed, and closing the connection at once tells the client, where
 * leaving it in the backlog would leave it hanging), then wait a while. */
static void exhausted(tc_listener_t *l, int err) {
  if (l->spare >= 0) {
    close(l->spare);
    l->spare = -1;
    int fd;
    while ((fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0 || errno == EINTR) {
      if (fd < 0) continue;
      close(fd);
      l->refused++;
    }
    l->spare = open_spare();
  }
  l->last_exhausted = uv_now(l->poll.loop);
  if (!l->backoff_ms) {
    tc_log(TC_LOG_WARN, "%s: out of file descriptors (%s): refusing connections until some close",
           l->name, strerror(err));
    l->backoff_ms = TC_LISTENER_BACKOFF_MIN_MS;
  } else if (l->backoff_ms < TC_LISTENER_BACKOFF_MAX_MS) {
    l->backoff_ms *= 2;
    if (l->backoff_ms > TC_LISTENER_BACKOFF_MAX_MS) l->backoff_ms = TC_LISTENER_BACKOFF_MAX_MS;
  }
  uv_poll_stop(&l->poll);
  l->polling = 0;
  uv_timer_start(&l->backoff, on_backoff_over, l->backoff_ms, 0);
}

static void recovered(tc_listener_t *l) {
  tc_log(TC_LOG_INFO, "%s: accepting connections again (%lu refused while out of descriptors)",
         l->name, l->refused);
  l->backoff_ms = 0;
  l->refused = 0;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  tc_listener_t *l = h->data;
  if (status < 0) {
    /* libuv has stopped the handle: poll again after a pause, or the port
     * would stay deaf until a restart. */
    tc_log(TC_LOG_WARN, "%s: listener poll: %s; polling again in %d ms", l->name,
           uv_strerror(status), TC_LISTENER_BACKOFF_MAX_MS);
    l->polling = 0;
    uv_timer_start(&l->backoff, on_backoff_over, TC_LISTENER_BACKOFF_MAX_MS, 0);
    return;
  }
  for (int i = 0; i < ACCEPT_BATCH && l->polling; i++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (l->backoff_ms && uv_now(l->poll.loop) - l->last_exhausted >= TC_LISTENER_QUIET_MS)
        recovered(l);
      l->on_accept(l, fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      exhausted(l, errno);
      return;
    }
    /* Anything else is the peer's problem (ENETDOWN, EHOSTUNREACH...). */
    tc_log(TC_LOG_DEBUG, "%s: accept: %s", l->name, strerror(errno));
  }
}

/* The socket bound to host:port and listening, or -1 with *errmsg set. */
static int bind_socket(const char *name, const char *host, int port, int *rc, char **errmsg) {
  const char *h = host && *host ? host : "0.0.0.0";
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(h, service, &hints, &res);
  if (gai != 0) {
    *errmsg = tc_format("server.host: %s: %s", h, gai_strerror(gai));
    *rc = TC_ECONFIG;
    return -1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
    *errmsg = tc_format("%s: cannot listen on %s:%d: %s", name, h, port, strerror(errno));
    *rc = TC_ECONFIG;
    if (fd >= 0) close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

static int local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -1;
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
}

int tc_listener_open(tc_listener_t *l, uv_loop_t *loop, const char *host, int port, int *bound_port,
                     char **errmsg) {
  *errmsg = NULL;
  int rc = 0;
  l->fd = bind_socket(l->name, host, port, &rc, errmsg);
  if (l->fd < 0) return rc;
  l->spare = open_spare();
  if ((rc = uv_poll_init_socket(loop, &l->poll, l->fd)) != 0) {
    *errmsg = tc_format("%s: cannot watch the listening socket: %s", l->name, uv_strerror(rc));
    close(l->fd);
    if (l->spare >= 0) close(l->spare);
    return TC_EINTERNAL;
  }
  uv_timer_init(loop, &l->backoff);
  l->poll.data = l->backoff.data = l;
  l->handles = 2;
  l->polling = 0;
  l->backoff_ms = 0;
  l->refused = 0;
  l->last_exhausted = 0;
  *bound_port = local_port(l->fd);
  start_polling(l);
  return 0;
}

static void on_handle_closed(uv_handle_t *h) {
  tc_listener_t *l = h->data;
  if (--l->handles) return;
  close(l->fd);
  if (l->spare >= 0) close(l->spare);
  l->fd = l->spare = -1;
  if (l->on_close) l->on_close(l);
}

void tc_listener_close(tc_listener_t *l) {
  l->polling = 0;
  uv_close((uv_handle_t *)&l->poll, on_handle_closed);
  uv_close((uv_handle_t *)&l->backoff, on_handle_closed);
}

int tc_net_peer_name(int fd, char *buf, size_t len) {
  struct sockaddr_storage sa;
  socklen_t n = sizeof sa;
  char ip[INET6_ADDRSTRLEN];
  buf[0] = '\0';
  if (getpeername(fd, (struct sockaddr *)&sa, &n) != 0) return -1;
  if (sa.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&sa;
    if (!inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip)) return -1;
    snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
  } else if (sa.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&sa;
    if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip)) return -1;
    snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
  } else
    return -1;
  return 0;
}
