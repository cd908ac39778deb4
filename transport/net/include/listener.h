/* A TCP listener on the loop that survives descriptor exhaustion.
 *
 * Both transports accept through it: it binds and listens itself
 * (SO_REUSEADDR, never SO_REUSEPORT, so a second server cannot share the port
 * silently), watches the listening socket with a uv_poll_t and accepts with
 * accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) until EAGAIN, handing each new
 * descriptor to on_accept.  When the process is out of descriptors
 * (EMFILE/ENFILE) it refuses the clients waiting in the backlog with a spare
 * descriptor it keeps open for that (close the spare, accept, close, repeat,
 * reopen the spare), stops watching for a backoff that doubles from
 * TC_LISTENER_BACKOFF_MIN_MS to TC_LISTENER_BACKOFF_MAX_MS, and resumes by
 * itself.  An episode ends at the first connection accepted
 * TC_LISTENER_QUIET_MS after the last exhaustion; it is logged once when it
 * starts and once when it ends, however many connections it refused.
 * Everything runs on the loop thread.
 *
 * Ownership: the caller owns the tc_listener_t memory (usually embedded) and
 * keeps it alive until the close callback; the listener owns the listening
 * socket and the spare descriptor.  Each descriptor given to on_accept is the
 * callee's to close.
 */
#ifndef TC_LISTENER_H
#define TC_LISTENER_H

#include <uv.h>

/* The first backoff after exhaustion, and its cap: short enough that
 * accepting resumes within half a second of descriptors coming free, long
 * enough that a flood against an exhausted process costs at most one drain of
 * the backlog per backoff. */
#define TC_LISTENER_BACKOFF_MIN_MS 50
#define TC_LISTENER_BACKOFF_MAX_MS 500
#define TC_LISTENER_QUIET_MS 1000

typedef struct tc_listener_s tc_listener_t;
typedef void (*tc_listener_accept_fn)(tc_listener_t *l, int fd);
typedef void (*tc_listener_close_fn)(tc_listener_t *l);

struct tc_listener_s {
  void *data;       /* the caller's */
  const char *name; /* "grpc", "http": names the listener in log lines */
  tc_listener_accept_fn on_accept;
  tc_listener_close_fn on_close;
  uv_poll_t poll;
  uv_timer_t backoff;
  int fd, spare;
  int polling;             /* poll is started */
  unsigned backoff_ms;     /* 0: not in an exhaustion episode */
  uint64_t last_exhausted; /* uv_now() of the last EMFILE/ENFILE */
  unsigned long refused;   /* clients refused in this exhaustion episode */
  int handles;             /* open uv handles, for close */
};

/* Loop thread.  Binds host:port ("" or NULL: 0.0.0.0; port 0: any), listens
 * and starts accepting.  *bound_port gets the port bound.  On failure returns
 * TC_ECONFIG (host does not resolve, address in use, no permission) or
 * TC_EINTERNAL, with *errmsg set (malloc'd, one line); nothing is left open.
 * Set data, name, on_accept and on_close first. */
int tc_listener_open(tc_listener_t *l, uv_loop_t *loop, const char *host, int port, int *bound_port,
                     char **errmsg);

/* Loop thread, once after a successful open.  Stops accepting, closes the
 * socket; on_close(l) runs on a later loop turn (may be NULL). */
void tc_listener_close(tc_listener_t *l);

/* The TCP peer of socket fd as "ip:port" ("[ip]:port" for IPv6) into buf,
 * for the request log; 0, or -1 (buf "") when fd is not a TCP socket. */
int tc_net_peer_name(int fd, char *buf, size_t len);

#endif
