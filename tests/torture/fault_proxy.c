/* accept4() and pipe2() are GNU extensions. */
#define _GNU_SOURCE

#include "fault_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
#define MAX_PAIRS 512

/* One relayed connection: side 0 is the client's, side 1 upstream's; buf[i]
 * holds what was read from side i and is still to be written to the other. */
typedef struct {
  int fd[2];
  size_t len[2], off[2];
  char buf[2][BUF];
} pair_t;

struct tc_fproxy_s {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t done;
  int listen_fd, wake[2], port, upstream;
  int stalled, stop;
  int cut_asked, cut_done, last_cut; /* requests, how many served, and the last count */
  long accepted;
  pair_t *pairs[MAX_PAIRS];
  int n_pairs;
};

static void close_pair(tc_fproxy_t *fp, int k, int reset) {
  pair_t *p = fp->pairs[k];
  for (int i = 0; i < 2; i++) {
    if (reset) {
      struct linger l = {1, 0};
      setsockopt(p->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(p->fd[i]);
  }
  free(p);
  fp->pairs[k] = fp->pairs[--fp->n_pairs];
}

static int connect_upstream(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

/* A new client: relayed if upstream answers, else reset (as a refused
 * connection would be). */
static void on_accept(tc_fproxy_t *fp) {
  int c = accept4(fp->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0) return;
  int u = fp->n_pairs < MAX_PAIRS ? connect_upstream(fp->upstream) : -1;
  if (u < 0) {
    struct linger l = {1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(c);
    return;
  }
  fcntl(u, F_SETFL, fcntl(u, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pair_t *p = calloc(1, sizeof *p);
  p->fd[0] = c;
  p->fd[1] = u;
  fp->pairs[fp->n_pairs++] = p;
  pthread_mutex_lock(&fp->lock);
  fp->accepted++;
  pthread_mutex_unlock(&fp->lock);
}

/* Writes what side i read to the other side; -1 if that side is gone. */
static int flush_side(pair_t *p, int i) {
  while (p->off[i] < p->len[i]) {
    ssize_t n = write(p->fd[!i], p->buf[i] + p->off[i], p->len[i] - p->off[i]);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    p->off[i] += (size_t)n;
  }
  p->len[i] = p->off[i] = 0;
  return 0;
}

/* Reads side i if its buffer is empty and relays it; -1 when the pair ends
 * (EOF or error on either side; the rest of what was read goes first). */
static int relay(pair_t *p, int i, short revents) {
  if (revents & POLLOUT && flush_side(p, !i) < 0) return -1;
  if (!(revents & (POLLIN | POLLHUP | POLLERR)) || p->len[i]) return 0;
  ssize_t n = read(p->fd[i], p->buf[i], BUF);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (n == 0) return -1;
  p->len[i] = (size_t)n;
  return flush_side(p, i);
}

/* The poll set: the wake pipe, the listener, then both sides of each pair
 * unless stalled. */
static nfds_t poll_set(tc_fproxy_t *fp, struct pollfd *pfd, int stalled) {
  nfds_t n = 0;
  pfd[n++] = (struct pollfd){.fd = fp->wake[0], .events = POLLIN};
  pfd[n++] = (struct pollfd){.fd = fp->listen_fd, .events = POLLIN};
  for (int k = 0; !stalled && k < fp->n_pairs; k++)
    for (int i = 0; i < 2; i++) {
      pair_t *p = fp->pairs[k];
      short ev = (short)((p->len[i] ? 0 : POLLIN) | (p->len[!i] ? POLLOUT : 0));
      pfd[n++] = (struct pollfd){.fd = p->fd[i], .events = ev};
    }
  return n;
}

static void serve_cuts(tc_fproxy_t *fp) {
  pthread_mutex_lock(&fp->lock);
  int asked = fp->cut_asked > fp->cut_done;
  pthread_mutex_unlock(&fp->lock);
  if (!asked) return;
  int n = fp->n_pairs;
  while (fp->n_pairs) close_pair(fp, 0, 1);
  pthread_mutex_lock(&fp->lock);
  fp->last_cut = n;
  fp->cut_done = fp->cut_asked;
  pthread_cond_broadcast(&fp->done);
  pthread_mutex_unlock(&fp->lock);
}

static void *run(void *arg) {
  tc_fproxy_t *fp = arg;
  static struct pollfd pfd[2 + 2 * MAX_PAIRS];
  for (;;) {
    pthread_mutex_lock(&fp->lock);
    int stop = fp->stop, stalled = fp->stalled;
    pthread_mutex_unlock(&fp->lock);
    if (stop) break;
    serve_cuts(fp);
    int n_pairs = stalled ? 0 : fp->n_pairs;
    nfds_t n = poll_set(fp, pfd, stalled);
    if (poll(pfd, n, -1) < 0) continue;
    if (pfd[0].revents) {
      char drain[64];
      while (read(fp->wake[0], drain, sizeof drain) > 0) {
      }
    }
    /* Pairs from the back, so closing one (the last moves into its slot)
     * leaves the ones still to visit where poll_set put them. */
    for (int k = n_pairs - 1; k >= 0; k--)
      for (int i = 0; i < 2; i++)
        if (relay(fp->pairs[k], i, pfd[2 + 2 * k + i].revents) < 0) {
          close_pair(fp, k, 0);
          break;
        }
    if (pfd[1].revents & POLLIN) on_accept(fp);
  }
  while (fp->n_pairs) close_pair(fp, 0, 1);
  return NULL;
}

static void wake(tc_fproxy_t *fp) {
  ssize_t n = write(fp->wake[1], "x", 1);
  (void)n; /* a full pipe wakes the thread as well */
}

tc_fproxy_t *tc_fproxy_start(int upstream_port) {
  tc_fproxy_t *fp = calloc(1, sizeof *fp);
  if (!fp) return NULL;
  fp->upstream = upstream_port;
  fp->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fp->listen_fd < 0 || bind(fp->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(fp->listen_fd, 128) != 0 ||
      getsockname(fp->listen_fd, (struct sockaddr *)&a, &len) != 0 ||
      pipe2(fp->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    if (fp->listen_fd >= 0) close(fp->listen_fd);
    free(fp);
    return NULL;
  }
  fp->port = ntohs(a.sin_port);
  pthread_mutex_init(&fp->lock, NULL);
  pthread_cond_init(&fp->done, NULL);
  pthread_create(&fp->thread, NULL, run, fp);
  return fp;
}

int tc_fproxy_port(const tc_fproxy_t *fp) { return fp->port; }

int tc_fproxy_cut(tc_fproxy_t *fp) {
  pthread_mutex_lock(&fp->lock);
  int ticket = ++fp->cut_asked;
  wake(fp);
  while (fp->cut_done < ticket) pthread_cond_wait(&fp->done, &fp->lock);
  int n = fp->last_cut;
  pthread_mutex_unlock(&fp->lock);
  return n;
}

void tc_fproxy_stall(tc_fproxy_t *fp, int on) {
  pthread_mutex_lock(&fp->lock);
  fp->stalled = on;
  pthread_mutex_unlock(&fp->lock);
  wake(fp);
}

long tc_fproxy_accepted(tc_fproxy_t *fp) {
  pthread_mutex_lock(&fp->lock);
  long n = fp->accepted;
  pthread_mutex_unlock(&fp->lock);
  return n;
}

void tc_fproxy_stop(tc_fproxy_t *fp) {
  if (!fp) return;
  pthread_mutex_lock(&fp->lock);
  fp->stop = 1;
  pthread_mutex_unlock(&fp->lock);
  wake(fp);
  pthread_join(fp->thread, NULL);
  close(fp->listen_fd);
  close(fp->wake[0]);
  close(fp->wake[1]);
  pthread_cond_destroy(&fp->done);
  pthread_mutex_destroy(&fp->lock);
  free(fp);
}
