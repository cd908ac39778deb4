/* libpq connections on the libuv loop (pg_conn.h).
 *
 * A link is one libpq connection and its life: connect with PQconnectPoll,
 * run a setup query, serve, and on failure tear down and retry with backoff.
 * The pool runs units over pipelined links; the listener keeps one link
 * LISTENing.  libpq resolves host names inside PQconnectStart/PQconnectPoll,
 * which blocks the loop: use Unix sockets or IP addresses where that matters.
 */
#include "pg_conn.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tuplecast/backend.h" /* enum tc_log_level */
#include "tuplecast/errors.h"

enum {
  BACKOFF_MIN_MS = 50,
  BACKOFF_MAX_MS = 2000,
  CONNECT_TIMEOUT_MS = 10000, /* libpq leaves connect_timeout to us in async mode */
  QUEUE_TIMEOUT_MS = 5000,
  MAX_PARAMS = 65535, /* the protocol's limit */
  MAX_IDENT = 63,     /* NAMEDATALEN - 1 */
};

#define LOST_MSG                                                              \
  "connection to PostgreSQL lost before the outcome was known: the unit may " \
  "or may not have committed"

/* ---- owners of libuv handles --------------------------------------------- */

/* A pool or a listener: freed by finish() once its last handle has closed. */
typedef struct home_s home_t;
struct home_s {
  uv_loop_t *loop;
  void (*log)(int level, const char *fmt, ...);
  unsigned handles;
  int closing;
  uint64_t reconnects; /* links ready again after a failure (metrics) */
  void (*finish)(home_t *h);
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
say(const home_t *h, int level, const char *fmt, ...) {
  if (!h->log) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  /* libpq's messages span lines; a log line does not. */
  size_t n = 0;
  for (const char *c = buf; *c; c++) {
    int space = *c == '\n' || *c == '\t' || *c == ' ';
    if (space && (n == 0 || buf[n - 1] == ' ')) continue;
    buf[n++] = space ? ' ' : *c;
  }
  while (n > 0 && buf[n - 1] == ' ') n--;
  buf[n] = '\0';
  h->log(level, "%s", buf);
}

/* libpq's messages end in a newline; errmsg does not. */
static int trimmed(const char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
  return (int)n;
}

static void handle_closed(uv_handle_t *h) {
  home_t *home = h->data;
  if (--home->handles == 0) home->finish(home);
}

static void poll_closed(uv_handle_t *h) {
  home_t *home = h->data;
  free(h);
  if (--home->handles == 0) home->finish(home);
}

static void close_handle(home_t *home, uv_handle_t *h, uv_close_cb cb) {
  h->data = home;
  uv_close(h, cb);
}

/* ---- links: one connection's life ---------------------------------------- */

typedef enum { LINK_DOWN, LINK_CONNECTING, LINK_SETUP, LINK_READY } link_state_t;

typedef struct link_s link_t;
typedef struct link_ops_s {
  void (*ready)(link_t *l);          /* setup done: serve */
  void (*io)(link_t *l, int events); /* socket readiness once ready */
} link_ops_t;

struct link_s {
  home_t *home;
  const link_ops_t *ops;
  void *owner;
  const char *conninfo; /* owned by the owner */
  const char *setup;    /* simple query run before ready; NULL: none */
  char label[96];
  PGconn *pg;
  /* A handle cannot be re-inited for a new socket, so each socket gets its
   * own, freed in its close callback. */
  uv_poll_t *poll;
  int fd;
  ino_t ino;
  int events;       /* what poll is started with */
  uv_timer_t timer; /* connect timeout, or the wait before a retry */
  unsigned backoff_ms;
  link_state_t state;
  int failing; /* a failure was logged: log the recovery, not each retry */
};

static void on_poll(uv_poll_t *h, int status, int events);

static void link_init(link_t *l, home_t *home, const link_ops_t *ops, void *owner,
                      const char *conninfo, const char *setup) {
  l->home = home;
  l->ops = ops;
  l->owner = owner;
  l->conninfo = conninfo;
  l->setup = setup;
  l->backoff_ms = BACKOFF_MIN_MS;
  uv_timer_init(home->loop, &l->timer);
  l->timer.data = l;
  home->handles++;
}

static void close_poll(link_t *l) {
  if (!l->poll) return;
  uv_poll_stop(l->poll);
  close_handle(l->home, (uv_handle_t *)l->poll, poll_closed);
  l->poll = NULL;
}

static void link_arm(link_t *l, int events) {
  if (events == l->events) return;
  uv_poll_start(l->poll, events, on_poll);
  l->events = events;
}

/* libpq replaces the socket while it tries a connection string's addresses,
 * possibly under the same descriptor number; a new socket has a new inode. */
static int watch_socket(link_t *l) {
  int fd = PQsocket(l->pg);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return -1;
  if (l->poll && fd == l->fd && st.st_ino == l->ino) return 0;
  close_poll(l);
  uv_poll_t *h = malloc(sizeof *h);
  if (!h) return -1;
  if (uv_poll_init_socket(l->home->loop, h, fd) != 0) {
    free(h);
    return -1;
  }
  h->data = l;
  l->home->handles++;
  l->poll = h;
  l->fd = fd;
  l->ino = st.st_ino;
  l->events = 0;
  return 0;
}

/* Sends what libpq has buffered; while some is left, waits for writability. */
static int link_flush(link_t *l) {
  int r = PQflush(l->pg);
  if (r < 0) return -1;
  link_arm(l, r ? UV_READABLE | UV_WRITABLE : UV_READABLE);
  return 0;
}

static void link_shut(link_t *l) {
  close_poll(l); /* before PQfinish closes the socket under it */
  if (l->pg) PQfinish(l->pg);
  l->pg = NULL;
  uv_timer_stop(&l->timer);
  l->state = LINK_DOWN;
}

static void link_connect(link_t *l);

static void on_retry(uv_timer_t *t) { link_connect(t->data); }

/* why may belong to l->pg: it is logged before the connection goes. */
static void link_fail(link_t *l, const char *why) {
  int lost = l->state == LINK_READY;
  /* A link's first failure to connect is a warning without the link's name,
   * so every link of every pool failing for one reason is one line and a
   * count (the log's repeat limiter keys on the text less its digits); each
   * retry is a debug line with the name. */
  if (lost)
    say(l->home, TC_LOG_WARN, "%s: connection lost: %s", l->label, why);
  else if (!l->failing)
    say(l->home, TC_LOG_WARN, "postgres: cannot connect, retrying: %s", why);
  else
    say(l->home, TC_LOG_DEBUG, "%s: cannot connect, retrying: %s", l->label, why);
  l->failing = 1;
  link_shut(l);
  if (l->home->closing) return;
  uv_timer_start(&l->timer, on_retry, l->backoff_ms, 0);
  l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void on_connect_timeout(uv_timer_t *t) { link_fail(t->data, "timed out"); }

/* Server notices would go to stderr by default. */
static void notice(void *arg, const char *msg) {
  link_t *l = arg;
  say(l->home, TC_LOG_DEBUG, "%s: %s", l->label, msg);
}

static void link_connect(link_t *l) {
  l->pg = PQconnectStart(l->conninfo);
  if (!l->pg) {
    link_fail(l, "out of memory");
    return;
  }
  l->state = LINK_CONNECTING;
  if (PQstatus(l->pg) == CONNECTION_BAD) {
    link_fail(l, PQerrorMessage(l->pg));
    return;
  }
  PQsetNoticeProcessor(l->pg, notice, l);
  if (watch_socket(l) != 0) {
    link_fail(l, "cannot watch the socket");
    return;
  }
  link_arm(l, UV_WRITABLE); /* libpq: before the first poll, wait to write */
  uv_timer_start(&l->timer, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
}

static void link_ready(link_t *l) {
  uv_timer_stop(&l->timer);
  l->state = LINK_READY;
  l->backoff_ms = BACKOFF_MIN_MS;
  if (l->failing) l->home->reconnects++;
  say(l->home, l->failing ? TC_LOG_INFO : TC_LOG_DEBUG, "%s: %s", l->label,
      l->failing ? "connected again" : "connected");
  l->failing = 0;
  link_arm(l, UV_READABLE);
  l->ops->ready(l);
}

static void connect_step(link_t *l) {
  PostgresPollingStatusType r = PQconnectPoll(l->pg);
  if (r == PGRES_POLLING_FAILED) {
    link_fail(l, PQerrorMessage(l->pg));
    return;
  }
  if (watch_socket(l) != 0) {
    link_fail(l, "cannot watch the socket");
    return;
  }
  if (r != PGRES_POLLING_OK) {
    link_arm(l, r == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE);
    return;
  }
  if (PQsetnonblocking(l->pg, 1) != 0) {
    link_fail(l, PQerrorMessage(l->pg));
    return;
  }
  if (!l->setup) {
    link_ready(l);
    return;
  }
  l->state = LINK_SETUP;
  if (!PQsendQuery(l->pg, l->setup) || link_flush(l) < 0) link_fail(l, PQerrorMessage(l->pg));
}

static void setup_step(link_t *l, int events) {
  if ((events & UV_WRITABLE) && link_flush(l) < 0) {
    link_fail(l, PQerrorMessage(l->pg));
    return;
  }
  if (!(events & UV_READABLE)) return;
  if (!PQconsumeInput(l->pg)) {
    link_fail(l, PQerrorMessage(l->pg));
    return;
  }
  while (!PQisBusy(l->pg)) {
    PGresult *r = PQgetResult(l->pg);
    if (!r) {
      link_ready(l);
      return;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
      link_fail(l, PQresultErrorMessage(r));
      PQclear(r);
      return;
    }
    PQclear(r);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  link_t *l = h->data;
  if (status < 0) {
    /* libuv stopped the handle on a socket error: let libpq find out what. */
    l->events = 0;
    events = UV_READABLE | UV_WRITABLE;
  }
  switch (l->state) {
  case LINK_CONNECTING: connect_step(l); break;
  case LINK_SETUP: setup_step(l, events); break;
  case LINK_READY: l->ops->io(l, events); break;
  case LINK_DOWN: break;
  }
}

/* ---- the pool ------------------------------------------------------------ */

typedef struct unit_s unit_t;
struct unit_s {
  unit_t *next;
  tc__pg_unit_cb cb;
  void *arg;
  uint64_t queued_ns; /* uv_hrtime() at submit */
  size_t n;
  tc__pg_stmt_t *stmts; /* copies, in the unit's own block */
  PGresult **results;
  const char **preps; /* names this unit prepares, sent ahead of its statements */
  size_t nprep;
  size_t got;    /* results so far: the prepares', then the statements' */
  PGresult *err; /* the first error */
  int err_owned; /* err is a prepare's result, not in results[] */
};

typedef struct conn_s {
  link_t link;
  tc__pg_pool_t *pool;
  unit_t *head, *tail; /* in flight, in send order */
  int inflight;
  int unflushed;
  char **names; /* statements prepared on this connection */
  size_t nnames, capnames;
} conn_t;

struct tc__pg_pool_s {
  home_t home; /* first: handles' data point at it */
  conn_t *conns;
  int size, depth;
  unsigned queue_timeout_ms;
  char *conninfo, *setup, *name;
  unit_t *qhead, *qtail;
  size_t pending;    /* queued and in flight */
  uv_timer_t kick;   /* dispatch and closing work, off the caller's stack */
  uv_timer_t expiry; /* fails queued units that waited too long */
  void (*done)(void *arg);
  void *done_arg;
};

static size_t align_up(size_t n) {
  const size_t a = _Alignof(max_align_t);
  return (n + a - 1) / a * a;
}

static char *put(char **cursor, const char *s) {
  size_t len = strlen(s) + 1;
  char *at = memcpy(*cursor, s, len);
  *cursor += len;
  return at;
}

/* One block: the unit, its statements, result slots, parameters and text. */
static unit_t *unit_copy(const tc__pg_stmt_t *stmts, size_t n) {
  size_t nvalues = 0, text = 0;
  for (size_t i = 0; i < n; i++) {
    const tc__pg_stmt_t *s = &stmts[i];
    text += strlen(s->sql) + 1 + (s->name ? strlen(s->name) + 1 : 0);
    nvalues += (size_t)s->nparams;
    for (int j = 0; j < s->nparams; j++)
      if (s->values[j]) text += strlen(s->values[j]) + 1;
  }
  if (n > SIZE_MAX / 4 / sizeof(tc__pg_stmt_t) || nvalues > SIZE_MAX / 4 / sizeof(char *))
    return NULL;
  size_t at_stmts = align_up(sizeof(unit_t));
  size_t at_results = at_stmts + align_up(n * sizeof(tc__pg_stmt_t));
  size_t at_preps = at_results + align_up(n * sizeof(PGresult *));
  size_t at_values = at_preps + align_up(n * sizeof(char *));
  size_t at_text = at_values + align_up(nvalues * sizeof(char *));
  char *mem = calloc(1, at_text + text);
  if (!mem) return NULL;
  unit_t *u = (unit_t *)mem;
  u->n = n;
  u->stmts = (tc__pg_stmt_t *)(mem + at_stmts);
  u->results = (PGresult **)(mem + at_results);
  u->preps = (const char **)(mem + at_preps);
  const char **values = (const char **)(mem + at_values);
  char *cursor = mem + at_text;
  for (size_t i = 0; i < n; i++) {
    const tc__pg_stmt_t *s = &stmts[i];
    tc__pg_stmt_t *d = &u->stmts[i];
    d->name = s->name ? put(&cursor, s->name) : NULL;
    d->sql = put(&cursor, s->sql);
    d->nparams = s->nparams;
    d->values = values;
    for (int j = 0; j < s->nparams; j++)
      values[j] = s->values[j] ? put(&cursor, s->values[j]) : NULL;
    values += s->nparams;
  }
  return u;
}

static void unit_finish(unit_t *u, int status, const char *sqlstate, const char *errmsg) {
  u->cb(u->arg, status, u->results, u->n, sqlstate, errmsg);
  for (size_t i = 0; i < u->n; i++) PQclear(u->results[i]);
  if (u->err_owned) PQclear(u->err);
  free(u);
}

static void unit_complete(unit_t *u) {
  if (!u->err) {
    unit_finish(u, 0, "", "");
    return;
  }
  const char *state = PQresultErrorField(u->err, PG_DIAG_SQLSTATE);
  const char *msg = PQresultErrorMessage(u->err);
  char *copy = strndup(msg, (size_t)trimmed(msg));
  unit_finish(u, TC_EDATASTORE, state ? state : "", copy ? copy : msg);
  free(copy);
}

static int knows_name(const conn_t *c, const char *name) {
  for (size_t i = 0; i < c->nnames; i++)
    if (strcmp(c->names[i], name) == 0) return 1;
  return 0;
}

static int remember_name(conn_t *c, const char *name) {
  if (c->nnames == c->capnames) {
    size_t cap = c->capnames ? c->capnames * 2 : 8;
    char **names = realloc(c->names, cap * sizeof *names);
    if (!names) return -1;
    c->names = names;
    c->capnames = cap;
  }
  char *copy = strdup(name);
  if (!copy) return -1;
  c->names[c->nnames++] = copy;
  return 0;
}

static void forget_name(conn_t *c, const char *name) {
  for (size_t i = 0; i < c->nnames; i++)
    if (strcmp(c->names[i], name) == 0) {
      free(c->names[i]);
      c->names[i] = c->names[--c->nnames];
      return;
    }
}

static void forget_names(conn_t *c) {
  for (size_t i = 0; i < c->nnames; i++) free(c->names[i]);
  c->nnames = 0;
}

static void on_kick_timer(uv_timer_t *t);

static void kick(tc__pg_pool_t *p) {
  if (!uv_is_active((uv_handle_t *)&p->kick)) uv_timer_start(&p->kick, on_kick_timer, 0, 0);
}

static void on_expiry(uv_timer_t *t);

/* Times the oldest queued unit. */
static void arm_expiry(tc__pg_pool_t *p) {
  if (!p->qhead) {
    uv_timer_stop(&p->expiry);
    return;
  }
  uint64_t waited = (uv_hrtime() - p->qhead->queued_ns) / 1000000;
  uint64_t limit = p->queue_timeout_ms;
  uv_timer_start(&p->expiry, on_expiry, waited >= limit ? 0 : limit - waited, 0);
}

static unit_t *dequeue(tc__pg_pool_t *p) {
  unit_t *u = p->qhead;
  p->qhead = u->next;
  if (!p->qhead) p->qtail = NULL;
  u->next = NULL;
  return u;
}

static int any_ready(const tc__pg_pool_t *p) {
  for (int i = 0; i < p->size; i++)
    if (p->conns[i].link.state == LINK_READY) return 1;
  return 0;
}

int tc__pg_pool_ready(const tc__pg_pool_t *p) {
  for (int i = 0; i < p->size; i++)
    if (p->conns[i].link.state == LINK_READY || !p->conns[i].link.failing) return 1;
  return 0;
}

static void on_expiry(uv_timer_t *t) {
  tc__pg_pool_t *p = t->data;
  char why[160];
  if (any_ready(p))
    snprintf(why, sizeof why, "PostgreSQL pool %s busy: unit not sent within %u ms", p->name,
             p->queue_timeout_ms);
  else
    snprintf(why, sizeof why, "no connection to PostgreSQL for %u ms", p->queue_timeout_ms);
  uint64_t now = uv_hrtime(), limit = (uint64_t)p->queue_timeout_ms * 1000000;
  while (p->qhead && now - p->qhead->queued_ns >= limit) {
    unit_t *u = dequeue(p);
    p->pending--;
    unit_finish(u, TC_EUNAVAILABLE, "", why);
  }
  arm_expiry(p);
}

/* Fails the units in flight: the server may have run any of them, so
 * their outcome is unknown (TC_EOUTCOME_UNKNOWN). */
static void conn_lost(conn_t *c) {
  tc__pg_pool_t *p = c->pool;
  link_fail(&c->link, PQerrorMessage(c->link.pg));
  forget_names(c);
  unit_t *u = c->head;
  c->head = c->tail = NULL;
  c->inflight = 0;
  c->unflushed = 0;
  while (u) {
    unit_t *next = u->next;
    p->pending--;
    unit_finish(u, TC_EOUTCOME_UNKNOWN, "", LOST_MSG);
    u = next;
  }
  kick(p);
}

static void on_result(conn_t *c, PGresult *r) {
  unit_t *u = c->head;
  if (!u) { /* nothing asked for it */
    PQclear(r);
    return;
  }
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_PIPELINE_SYNC) {
    PQclear(r);
    c->head = u->next;
    if (!c->head) c->tail = NULL;
    c->inflight--;
    c->pool->pending--;
    unit_complete(u);
    kick(c->pool);
    return;
  }
  size_t i = u->got++;
  int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  int first_err = !ok && st != PGRES_PIPELINE_ABORTED && !u->err;
  if (i < u->nprep) {
    if (!ok) forget_name(c, u->preps[i]); /* it does not exist on the server */
    if (first_err) {
      u->err = r;
      u->err_owned = 1;
    } else {
      PQclear(r);
    }
  } else if (i - u->nprep < u->n && st != PGRES_PIPELINE_ABORTED) {
    u->results[i - u->nprep] = r;
    if (first_err) u->err = r;
  } else if (first_err) {
    /* An error after every statement's result: the implicit COMMIT at the
     * Sync failed (a deferred constraint, or a serialization failure that
     * SERIALIZABLE detects only at commit), so nothing of the unit stayed.
     * Dropping it acknowledged writes that had rolled back (tests/torture). */
    u->err = r;
    u->err_owned = 1;
  } else {
    PQclear(r); /* a statement an earlier error kept from running */
  }
}

/* In pipeline mode a NULL ends each statement's results; a second NULL in a
 * row means nothing more has arrived. */
static void drain(conn_t *c) {
  PGconn *pg = c->link.pg;
  int nulls = 0;
  while (nulls < 2 && !PQisBusy(pg)) {
    PGresult *r = PQgetResult(pg);
    if (!r) {
      nulls++;
      continue;
    }
    nulls = 0;
    on_result(c, r);
  }
}

static void pool_io(link_t *l, int events) {
  conn_t *c = l->owner;
  if (events & UV_READABLE) {
    if (!PQconsumeInput(l->pg)) {
      conn_lost(c);
      return;
    }
    drain(c);
  }
  if (PQstatus(l->pg) == CONNECTION_BAD || link_flush(l) < 0) conn_lost(c);
}

static void pool_ready(link_t *l) {
  if (!PQenterPipelineMode(l->pg)) {
    link_fail(l, PQerrorMessage(l->pg));
    return;
  }
  kick(((conn_t *)l->owner)->pool);
}

static const link_ops_t pool_ops = {pool_ready, pool_io};

/* Prepares come first so that only another prepare's failure can abort
 * them: later units on this connection count on them existing. */
static int send_unit(conn_t *c, unit_t *u) {
  PGconn *pg = c->link.pg;
  u->nprep = 0;
  u->got = 0;
  for (size_t i = 0; i < u->n; i++) {
    const tc__pg_stmt_t *s = &u->stmts[i];
    /* Without memory to remember a name, the statement goes unnamed. */
    if (!s->name || knows_name(c, s->name) || remember_name(c, s->name) != 0) continue;
    if (!PQsendPrepare(pg, s->name, s->sql, s->nparams, NULL)) return -1;
    u->preps[u->nprep++] = s->name;
  }
  for (size_t i = 0; i < u->n; i++) {
    const tc__pg_stmt_t *s = &u->stmts[i];
    int ok = s->name && knows_name(c, s->name)
                 ? PQsendQueryPrepared(pg, s->name, s->nparams, s->values, NULL, NULL, 0)
                 : PQsendQueryParams(pg, s->sql, s->nparams, NULL, s->values, NULL, NULL, 0);
    if (!ok) return -1;
  }
  return PQpipelineSync(pg) ? 0 : -1;
}

static conn_t *least_busy(tc__pg_pool_t *p) {
  conn_t *best = NULL;
  for (int i = 0; i < p->size; i++) {
    conn_t *c = &p->conns[i];
    if (c->link.state == LINK_READY && c->inflight < p->depth &&
        (!best || c->inflight < best->inflight))
      best = c;
  }
  return best;
}

static void dispatch(tc__pg_pool_t *p) {
  conn_t *c;
  while (p->qhead && !p->home.closing && (c = least_busy(p))) {
    unit_t *u = dequeue(p);
    if (send_unit(c, u) != 0) {
      /* Without its Sync the server commits none of it: it may go again. */
      u->next = p->qhead;
      p->qhead = u;
      if (!p->qtail) p->qtail = u;
      arm_expiry(p);
      conn_lost(c);
      continue;
    }
    if (c->tail)
      c->tail->next = u;
    else
      c->head = u;
    c->tail = u;
    c->inflight++;
    c->unflushed = 1;
  }
  for (int i = 0; i < p->size; i++) {
    c = &p->conns[i];
    if (!c->unflushed) continue;
    c->unflushed = 0;
    if (link_flush(&c->link) < 0) conn_lost(c);
  }
}

static void fail_queued(tc__pg_pool_t *p, const char *why) {
  while (p->qhead) {
    unit_t *u = dequeue(p);
    p->pending--;
    unit_finish(u, TC_EUNAVAILABLE, "", why);
  }
}

static void on_kick_timer(uv_timer_t *t) {
  tc__pg_pool_t *p = t->data;
  if (!p->home.closing) {
    dispatch(p);
    return;
  }
  fail_queued(p, "PostgreSQL pool is closing");
  for (int i = 0; i < p->size; i++) {
    conn_t *c = &p->conns[i];
    if (c->inflight) continue;
    link_shut(&c->link);
    forget_names(c);
  }
  if (p->pending) return; /* in flight: their completions kick again */
  close_handle(&p->home, (uv_handle_t *)&p->kick, handle_closed);
  close_handle(&p->home, (uv_handle_t *)&p->expiry, handle_closed);
  for (int i = 0; i < p->size; i++)
    close_handle(&p->home, (uv_handle_t *)&p->conns[i].link.timer, handle_closed);
}

static void pool_free(tc__pg_pool_t *p) {
  if (p->conns)
    for (int i = 0; i < p->size; i++) free(p->conns[i].names);
  free(p->conns);
  free(p->conninfo);
  free(p->setup);
  free(p->name);
  free(p);
}

static void pool_finish(home_t *h) {
  tc__pg_pool_t *p = (tc__pg_pool_t *)h;
  void (*done)(void *) = p->done;
  void *arg = p->done_arg;
  pool_free(p);
  if (done) done(arg);
}

static int check_conninfo(const char *conninfo, void (*log)(int, const char *, ...)) {
  char *err = NULL;
  PQconninfoOption *o = PQconninfoParse(conninfo, &err);
  if (o) {
    PQconninfoFree(o);
    return 0;
  }
  if (!err) return TC_ENOMEM;
  if (log) log(TC_LOG_ERROR, "postgres: bad connection string: %.*s", trimmed(err), err);
  PQfreemem(err);
  return TC_EINVAL;
}

/* The setup statements as one simple query; NULL when there are none. */
static int join_setup(const char *const *setup, char **out) {
  size_t len = 0;
  for (const char *const *s = setup; s && *s; s++) len += strlen(*s) + 2;
  *out = NULL;
  if (len == 0) return 0;
  char *sql = malloc(len + 1), *at = sql;
  if (!sql) return TC_ENOMEM;
  for (const char *const *s = setup; *s; s++) at += sprintf(at, "%s;\n", *s);
  *out = sql;
  return 0;
}

int tc__pg_pool_create(uv_loop_t *loop, const tc__pg_pool_opts_t *opts, tc__pg_pool_t **out) {
  if (!loop || !opts || !out || !opts->conninfo || opts->size < 1 || opts->depth < 1)
    return TC_EINVAL;
  int rc = check_conninfo(opts->conninfo, opts->log);
  if (rc) return rc;
  tc__pg_pool_t *p = calloc(1, sizeof *p);
  if (!p) return TC_ENOMEM;
  p->size = opts->size;
  p->depth = opts->depth;
  p->queue_timeout_ms = opts->queue_timeout_ms ? opts->queue_timeout_ms : QUEUE_TIMEOUT_MS;
  p->conns = calloc((size_t)p->size, sizeof *p->conns);
  p->conninfo = strdup(opts->conninfo);
  p->name = strdup(opts->name ? opts->name : "postgres");
  if (!p->conns || !p->conninfo || !p->name || join_setup(opts->setup, &p->setup) != 0) {
    pool_free(p);
    return TC_ENOMEM;
  }
  p->home.loop = loop;
  p->home.log = opts->log;
  p->home.finish = pool_finish;
  uv_timer_init(loop, &p->kick);
  uv_timer_init(loop, &p->expiry);
  p->kick.data = p->expiry.data = p;
  p->home.handles += 2;
  for (int i = 0; i < p->size; i++) {
    conn_t *c = &p->conns[i];
    c->pool = p;
    link_init(&c->link, &p->home, &pool_ops, c, p->conninfo, p->setup);
    snprintf(c->link.label, sizeof c->link.label, "postgres pool %s #%d", p->name, i);
  }
  for (int i = 0; i < p->size; i++) link_connect(&p->conns[i].link);
  *out = p;
  return 0;
}

int tc__pg_pool_submit(tc__pg_pool_t *p, const tc__pg_stmt_t *stmts, size_t n, tc__pg_unit_cb cb,
                       void *arg) {
  if (!p || !stmts || n == 0 || !cb) return TC_EINVAL;
  if (p->home.closing) return TC_EUNAVAILABLE;
  for (size_t i = 0; i < n; i++) {
    const tc__pg_stmt_t *s = &stmts[i];
    if (!s->sql || (s->name && !*s->name) || s->nparams < 0 || s->nparams > MAX_PARAMS ||
        (s->nparams && !s->values))
      return TC_EINVAL;
  }
  unit_t *u = unit_copy(stmts, n);
  if (!u) return TC_ENOMEM;
  u->cb = cb;
  u->arg = arg;
  u->queued_ns = uv_hrtime();
  if (p->qtail)
    p->qtail->next = u;
  else
    p->qhead = u;
  p->qtail = u;
  p->pending++;
  if (p->qhead == u) arm_expiry(p);
  kick(p);
  return 0;
}

size_t tc__pg_pool_pending(const tc__pg_pool_t *p) { return p->pending; }

void tc__pg_pool_stats(const tc__pg_pool_t *p, tc__pg_pool_stats_t *out) {
  *out = (tc__pg_pool_stats_t){.reconnects = p->home.reconnects};
  size_t inflight = 0;
  for (int i = 0; i < p->size; i++) {
    const conn_t *c = &p->conns[i];
    out->ready += c->link.state == LINK_READY;
    out->busy += c->inflight > 0;
    inflight += (size_t)c->inflight;
  }
  out->waiting = p->pending - inflight;
}

void tc__pg_pool_close(tc__pg_pool_t *p, void (*done)(void *arg), void *arg) {
  if (!p || p->home.closing) return;
  p->home.closing = 1;
  p->done = done;
  p->done_arg = arg;
  kick(p);
}

/* ---- the listener -------------------------------------------------------- */

struct tc__pg_listener_s {
  home_t home; /* first: handles' data point at it */
  link_t link;
  char *conninfo;
  char *listen; /* LISTEN "channel" */
  void (*on_notify)(void *arg, const char *payload);
  void (*on_ready)(void *arg);
  void *arg;
  void (*done)(void *arg);
  void *done_arg;
};

/* Stops if a callback closed the listener. */
static void deliver(tc__pg_listener_t *ls) {
  PGnotify *n;
  while (ls->link.pg && (n = PQnotifies(ls->link.pg))) {
    ls->on_notify(ls->arg, n->extra);
    PQfreemem(n);
  }
}

static void listener_ready(link_t *l) {
  tc__pg_listener_t *ls = l->owner;
  if (ls->on_ready) ls->on_ready(ls->arg);
  deliver(ls); /* ones that came in with LISTEN's reply wake no poll */
}

static void listener_io(link_t *l, int events) {
  if (events & UV_READABLE) {
    if (!PQconsumeInput(l->pg)) {
      link_fail(l, PQerrorMessage(l->pg));
      return;
    }
    PGresult *r;
    while (!PQisBusy(l->pg) && (r = PQgetResult(l->pg))) PQclear(r);
    deliver(l->owner);
    if (!l->pg) return;
  }
  if (PQstatus(l->pg) == CONNECTION_BAD || link_flush(l) < 0) link_fail(l, PQerrorMessage(l->pg));
}

static const link_ops_t listener_ops = {listener_ready, listener_io};

/* Quoted, so that it names the same channel as pg_notify()'s text argument. */
static int plain_ident(const char *s) {
  size_t n = 0;
  for (; s[n]; n++) {
    char ch = s[n];
    int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
    if (!alpha && (n == 0 || !((ch >= '0' && ch <= '9') || ch == '$'))) return 0;
  }
  return n > 0 && n <= MAX_IDENT;
}

static void listener_free(tc__pg_listener_t *ls) {
  free(ls->conninfo);
  free(ls->listen);
  free(ls);
}

static void listener_finish(home_t *h) {
  tc__pg_listener_t *ls = (tc__pg_listener_t *)h;
  void (*done)(void *) = ls->done;
  void *arg = ls->done_arg;
  listener_free(ls);
  if (done) done(arg);
}

int tc__pg_listener_start(uv_loop_t *loop, const tc__pg_listener_opts_t *opts,
                          tc__pg_listener_t **out) {
  if (!loop || !opts || !out || !opts->conninfo || !opts->channel || !opts->on_notify ||
      !plain_ident(opts->channel))
    return TC_EINVAL;
  int rc = check_conninfo(opts->conninfo, opts->log);
  if (rc) return rc;
  tc__pg_listener_t *ls = calloc(1, sizeof *ls);
  if (!ls) return TC_ENOMEM;
  ls->conninfo = strdup(opts->conninfo);
  ls->listen = malloc(strlen(opts->channel) + sizeof "LISTEN \"\"");
  if (!ls->conninfo || !ls->listen) {
    listener_free(ls);
    return TC_ENOMEM;
  }
  sprintf(ls->listen, "LISTEN \"%s\"", opts->channel);
  ls->on_notify = opts->on_notify;
  ls->on_ready = opts->on_ready;
  ls->arg = opts->arg;
  ls->home.loop = loop;
  ls->home.log = opts->log;
  ls->home.finish = listener_finish;
  link_init(&ls->link, &ls->home, &listener_ops, ls, ls->conninfo, ls->listen);
  snprintf(ls->link.label, sizeof ls->link.label, "postgres listener %s", opts->channel);
  link_connect(&ls->link);
  *out = ls;
  return 0;
}

void tc__pg_listener_close(tc__pg_listener_t *ls, void (*done)(void *arg), void *arg) {
  if (!ls || ls->home.closing) return;
  ls->home.closing = 1;
  ls->done = done;
  ls->done_arg = arg;
  link_shut(&ls->link);
  close_handle(&ls->home, (uv_handle_t *)&ls->link.timer, handle_closed);
}
