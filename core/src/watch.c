#include "watch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "format.h"
#include "idmap.h"
#include "log.h"
#include "metrics_record.h"
#include "error.h"
#include "service.h"
#include "tenant.h"
#include "watch_boot.h"
#include "watch_items.h"

#define RING_CAP 1024    /* recent transactions kept per tenant feed (a power of two) */
#define RING_FIRST 8     /* entries of a feed's ring when its first transaction comes */
#define READ_LIMIT 1000u /* changes the feed asks of the backend per read */
/* ring_at masks and ring_grow doubles from RING_FIRST: both must be powers of
 * two, or the ring would pass RING_CAP and index past its end.  test_watch.c's
 * test_ring_growth writes past RING_CAP transactions to wrap the ring. */
_Static_assert((RING_CAP & (RING_CAP - 1)) == 0 && (RING_FIRST & (RING_FIRST - 1)) == 0 &&
                   RING_FIRST <= RING_CAP,
               "RING_CAP and RING_FIRST: powers of two, RING_FIRST <= RING_CAP");

/* A position (snap token) shared by the ring and the streams' queues. */
typedef struct {
  size_t refs;
  uint64_t learned_ns; /* a ring entry's: its feed's wake-up (metrics: watch lag); else 0 */
  char text[];
} tok_t;

static tok_t *tok_new(const char *text) {
  size_t len = strlen(text) + 1;
  tok_t *t = malloc(sizeof *t + len);
  if (!t) return NULL;
  t->refs = 1;
  t->learned_ns = 0;
  memcpy(t->text, text, len);
  return t;
}

static tok_t *tok_ref(tok_t *t) {
  t->refs++;
  return t;
}

static void tok_unref(tok_t *t) {
  if (t && --t->refs == 0) free(t);
}

/* One transaction, ready to send: its changes as DataChange messages, and
 * its number in this feed (seq) and position after it (token).  An entry with
 * no changes marks a position the backend moved to past transactions that
 * changed nothing. */
typedef struct {
  uint64_t seq;
  tok_t *token;
  Base__V1__DataChange **changes;
  size_t n;
  const char *schema_version; /* a schema write's (no changes), in the arena */
  tc_arena_t arena;
} entry_t;

typedef struct stream_s stream_t;

struct tc_feed_s {
  tc__idmap_link_t link; /* in srv->feeds */
  tc_server_t *srv;
  char *tenant_id;
  int ready;   /* base is known */
  int reading; /* a backend read is in flight */
  int dirty;   /* woken while reading: read again */
  int pins;    /* feed code is walking its streams: do not free it yet */
  /* uv_hrtime() of the first wake-up no read has served yet, and of the one
   * the current read serves (metrics: watch lag); 0: none. */
  uint64_t wake_ns, read_wake_ns;
  /* Positions are backend tokens; entries are numbered in feed order.  The
   * ring holds every transaction after position `base` (number base_seq);
   * the feed is at its last entry (feed_last, feed_last_seq).  The ring
   * grows by doubling up to RING_CAP entries (ring_grow), so an idle feed
   * holds none: 10,000 watched tenants paid 64 KiB each for whole rings
   * (bench/README.md, "At scale"). */
  tok_t *base;
  uint64_t base_seq;
  entry_t *ring;
  size_t ring_cap, ring_first, ring_len; /* ring_cap: 0 or a power of two */
  stream_t *streams;
};

enum { S_STARTING, S_WAIT_FEED, S_CATCHUP, S_LIVE, S_ENDED, S_INITIAL };

struct stream_s {
  tc_job_t job; /* first: the tenant check runs as a job */
  stream_t *prev, *next;
  tc_server_t *srv;
  tc_call_t *call; /* NULL once done() was called */
  tc_feed_t *feed;
  const char *tenant_id;
  const Base__V1__WatchFilter *filter; /* NULL: everything */
  int state;
  int refs; /* the call, the timer, each backend operation in flight */
  /* Where the stream is: every transaction up to pos was sent or skipped.
   * In the ring (in_ring), seq is pos's number in the feed. */
  tok_t *pos;
  uint64_t seq;
  int in_ring;
  /* Catching up from the backend: reads stop at the feed's position then
   * (upto_seq); a stream already past it (parked) waits for the feed to move. */
  uint64_t upto_seq;
  int parked;
  tok_t *resume;  /* newest position whose message left the queue */
  int reading;    /* a catch-up read is in flight */
  size_t limit;   /* most messages queued before the stream is ended */
  tok_t **queued; /* positions of queued messages, a FIFO ring */
  size_t q_cap, q_first, q_len;
  uv_timer_t checkpoint;
  int has_timer;
  tc_boot_t *boot;            /* sending the initial state (S_INITIAL) */
  int schemas;                /* include_schema_changes */
  const char *schema_version; /* set while stream_send sends a schema write's message */
  int booted;                 /* the initial state ended with the start position's message */
};

static void stream_unref(stream_t *s) {
  if (--s->refs > 0) return;
  for (size_t i = 0; i < s->q_len; i++) tok_unref(s->queued[(s->q_first + i) % s->q_cap]);
  free(s->queued);
  tok_unref(s->pos);
  tok_unref(s->resume);
  free(s);
}

/* Moves the stream's position to t (which it references). */
static void stream_move(stream_t *s, tok_t *t) {
  tok_t *old = s->pos;
  s->pos = tok_ref(t);
  tok_unref(old);
}

/* One of s's operations (tenant job, backend read) has come back: drops its
 * reference; non-zero if the stream ended meanwhile (s may be gone then). */
static int op_done(stream_t *s) {
  int ended = s->state == S_ENDED;
  stream_unref(s);
  return ended;
}

static void on_timer_closed(uv_handle_t *h) { stream_unref(h->data); }

/* Ends the stream (once): answers the call and leaves the feed. */
static void stream_end(stream_t *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void feed_release(tc_feed_t *f);

static void stream_end(stream_t *s, int status, const char *fmt, ...) {
  if (s->state == S_ENDED) return;
  int was_attached = s->state != S_STARTING;
  tc_feed_t *feed = was_attached ? s->feed : NULL;
  s->state = S_ENDED;
  if (s->boot) tc__boot_stop(s->boot);
  s->boot = NULL;
  if (feed) {
    if (s->prev)
      s->prev->next = s->next;
    else
      s->feed->streams = s->next;
    if (s->next) s->next->prev = s->prev;
  }
  if (s->has_timer) uv_close((uv_handle_t *)&s->checkpoint, on_timer_closed);
  char *msg = NULL;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    msg = tc_vformat(fmt, ap);
    va_end(ap);
  }
  tc_call_t *call = s->call;
  s->call = NULL;
  call->handler = NULL;
  tc__metrics_watch_ended(status, s->srv->stopping);
  call->done(call, status, status ? (msg ? msg : "watch stream ended") : NULL, NULL);
  free(msg);
  stream_unref(s);
  if (feed) feed_release(feed);
}

/* Ends the stream with a message that says where to resume. */
static void stream_end_resume(stream_t *s, int status, const char *why) {
  if (s->resume && !*s->resume->text) { /* the initial state was not all sent */
    stream_end(s, status, "%s; " TC_WATCH_RESTART, why);
    return;
  }
  stream_end(s, status, "%s; resume with snap token %s", why, s->resume ? s->resume->text : "");
}

/* ---- sending ------------------------------------------------------------- */

static int queue_push(stream_t *s, tok_t *token) {
  if (s->q_len == s->q_cap) {
    size_t cap = s->q_cap ? s->q_cap * 2 : 8;
    tok_t **q = malloc(cap * sizeof *q);
    if (!q) return TC_ENOMEM;
    for (size_t i = 0; i < s->q_len; i++) q[i] = s->queued[(s->q_first + i) % s->q_cap];
    free(s->queued);
    s->queued = q;
    s->q_cap = cap;
    s->q_first = 0;
  }
  s->queued[(s->q_first + s->q_len++) % s->q_cap] = tok_ref(token);
  return 0;
}

static int change_matches(const Base__V1__WatchFilter *f, const Base__V1__DataChange *c) {
  int is_tuple = c->type_case == BASE__V1__DATA_CHANGE__TYPE_TUPLE;
  const Base__V1__Entity *e = is_tuple ? c->tuple->entity : c->attribute->entity;
  return tc__watch_filter_passes(f, (int)c->operation, is_tuple, e->type,
                                 is_tuple ? c->tuple->relation : c->attribute->attribute);
}

/* Sends one transaction (the changes that pass the filter; nothing if none
 * does) and moves the stream past it; a checkpoint sends its position with no
 * changes.  0, or the stream was ended. */
static int stream_send(stream_t *s, tok_t *token, Base__V1__DataChange **changes, size_t n,
                       int checkpoint) {
  Base__V1__DataChange **pass = changes;
  size_t n_pass = n;
  if (s->filter && !checkpoint) {
    pass = malloc((n + 1) * sizeof *pass);
    if (!pass) {
      stream_end_resume(s, TC_ENOMEM, "out of memory");
      return TC_ENOMEM;
    }
    n_pass = 0;
    for (size_t i = 0; i < n; i++)
      if (change_matches(s->filter, changes[i])) pass[n_pass++] = changes[i];
  }
  int rc = 0;
  if (n_pass || checkpoint || s->schema_version) {
    if (s->call->pending >= s->limit) {
      char why[160];
      snprintf(why, sizeof why,
               "watch stream fell more than %zu messages behind "
               "(database.watch_buffer_size) and was ended",
               s->limit);
      stream_end_resume(s, TC_EEXHAUSTED, why);
      rc = TC_EEXHAUSTED;
    } else {
      Base__V1__DataChanges dc = BASE__V1__DATA_CHANGES__INIT;
      Base__V1__WatchResponse resp = BASE__V1__WATCH_RESPONSE__INIT;
      dc.snap_token = token->text;
      dc.data_changes = pass;
      dc.n_data_changes = n_pass;
      resp.changes = &dc;
      if (s->schema_version) {
        resp.schema_change_case = BASE__V1__WATCH_RESPONSE__SCHEMA_CHANGE_SCHEMA_VERSION;
        resp.schema_version = (char *)s->schema_version;
      }
      rc = queue_push(s, token);
      if (rc == 0) rc = s->call->send(s->call, &resp.base);
      if (rc != 0) stream_end_resume(s, rc, "the stream could not be written");
      if (rc == 0 && !checkpoint && token->learned_ns) tc__metrics_watch_lag(token->learned_ns);
    }
  }
  if (pass != changes) free(pass);
  if (rc == 0 && !checkpoint) stream_move(s, token);
  return rc;
}

/* ---- building transactions from backend changes --------------------------- */

static Base__V1__DataChange *change_to_proto(tc_arena_t *a, const tc_change_t *c) {
  Base__V1__DataChange *d = tc_arena_alloc(a, sizeof *d);
  if (!d) return NULL;
  base__v1__data_change__init(d);
  d->operation = c->op == TC_CHANGE_CREATE ? BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE
                                           : BASE__V1__DATA_CHANGE__OPERATION__OPERATION_DELETE;
  if (c->tuple) {
    d->type_case = BASE__V1__DATA_CHANGE__TYPE_TUPLE;
    d->tuple = tc_tuple_to_proto(a, c->tuple);
    return d->tuple ? d : NULL;
  }
  d->type_case = BASE__V1__DATA_CHANGE__TYPE_ATTRIBUTE;
  d->attribute = tc_attr_to_proto(a, c->attr);
  return d->attribute ? d : NULL;
}

/* Fills e with one transaction: its n changes (none for a marker) and the
 * position after it.  On failure e holds nothing to free but its arena. */
static int entry_build(entry_t *e, const char *token, const tc_feed_item_t *c, size_t n) {
  tc_arena_init(&e->arena);
  e->schema_version = NULL;
  if (n && c[0].change.op == TC_CHANGE_SCHEMA) { /* a schema write: its item comes first */
    if (!(e->schema_version = tc_arena_strdup(&e->arena, c[0].schema_version))) return TC_ENOMEM;
    c++;
    n--;
  }
  e->n = n;
  e->changes = tc_arena_alloc(&e->arena, (n + 1) * sizeof *e->changes);
  if (!e->changes || !(e->token = tok_new(token))) return TC_ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (!(e->changes[i] = change_to_proto(&e->arena, &c[i].change))) {
      tok_unref(e->token);
      return TC_EINTERNAL;
    }
  return 0;
}

static void entry_free(entry_t *e) {
  tok_unref(e->token);
  tc_arena_free(&e->arena);
}

/* Sends a transaction; a schema write's message names the version
 * (include_schema_changes; its data changes, were a transaction to hold
 * both, ride along), else it is a move past it.  0, or the stream was
 * ended (and may be gone). */
static int entry_send(stream_t *s, entry_t *e) {
  if (!e->schema_version || !s->schemas) return stream_send(s, e->token, e->changes, e->n, 0);
  s->schema_version = e->schema_version;
  int rc = stream_send(s, e->token, e->changes, e->n, 0);
  if (rc == 0) s->schema_version = NULL;
  return rc;
}

/* Calls fn for each transaction's run of changes, in order; stops on
 * non-zero.  A transaction's changes share one token. */
static int for_each_transaction(const tc_feed_item_t *c, size_t n,
                                int (*fn)(void *arg, const tc_feed_item_t *c, size_t n),
                                void *arg) {
  size_t i = 0;
  while (i < n) {
    size_t j = i + 1;
    while (j < n && (c[j].change.token == c[i].change.token ||
                     !strcmp(c[j].change.token, c[i].change.token)))
      j++;
    int rc = fn(arg, c + i, j - i);
    if (rc != 0) return rc;
    i = j;
  }
  return 0;
}

/* ---- the feed ------------------------------------------------------------ */

static entry_t *ring_at(tc_feed_t *f, size_t i) {
  return &f->ring[(f->ring_first + i) & (f->ring_cap - 1)];
}

/* Where the feed is: after its newest entry, or at its base. */
static tok_t *feed_last(tc_feed_t *f) {
  return f->ring_len ? ring_at(f, f->ring_len - 1)->token : f->base;
}

static uint64_t feed_last_seq(const tc_feed_t *f) { return f->base_seq + f->ring_len; }

static void end_all(tc_feed_t *f, int status, const char *why) {
  f->pins++;
  while (f->streams) stream_end_resume(f->streams, status, why);
  f->pins--;
}

static void feed_free(tc_feed_t *f) {
  tc__idmap_remove(&f->srv->feeds, &f->link);
  for (size_t i = 0; i < f->ring_len; i++) entry_free(ring_at(f, i));
  free(f->ring);
  tok_unref(f->base);
  free(f->tenant_id);
  free(f);
}

/* A feed nobody watches goes: its ring is memory no stream needs, and a
 * later stream rebuilds it from the backend. */
static void feed_release(tc_feed_t *f) {
  if (!f->streams && !f->reading && !f->pins && !f->srv->stopping) feed_free(f);
}

static void feed_read(tc_feed_t *f);
static void stream_attach(stream_t *s);
static void catchup_step(stream_t *s);

/* Room for one more entry in a full ring below RING_CAP: twice the entries.
 * The ring wraps only once it holds RING_CAP (only then is the oldest
 * dropped), so a ring that grows starts at ring_first 0 and realloc keeps
 * its order. */
static int ring_grow(tc_feed_t *f) {
  size_t cap = f->ring_cap ? 2 * f->ring_cap : RING_FIRST;
  entry_t *ring = realloc(f->ring, cap * sizeof *ring);
  if (!ring) return TC_ENOMEM;
  f->ring = ring;
  f->ring_cap = cap;
  return 0;
}

/* Appends a transaction (or a marker: n = 0) at position token to the ring
 * and hands it to the live streams. */
static int feed_append(tc_feed_t *f, const char *token, const tc_feed_item_t *c, size_t n) {
  if (f->ring_len == f->ring_cap && f->ring_cap < RING_CAP) {
    int rc = ring_grow(f);
    if (rc != 0) return rc;
  }
  if (f->ring_len == RING_CAP) {
    entry_t *old = ring_at(f, 0);
    tok_unref(f->base);
    f->base = tok_ref(old->token);
    f->base_seq = old->seq;
    entry_free(old);
    f->ring_first = (f->ring_first + 1) & (RING_CAP - 1);
    f->ring_len--;
  }
  entry_t *e = ring_at(f, f->ring_len);
  int rc = entry_build(e, token, c, n);
  if (rc != 0) {
    tc_arena_free(&e->arena);
    return rc;
  }
  f->ring_len++;
  e->seq = f->base_seq + f->ring_len;
  e->token->learned_ns = f->read_wake_ns ? f->read_wake_ns : uv_hrtime();
  for (stream_t *s = f->streams, *next; s; s = next) {
    next = s->next;
    /* A failed send ended the stream, which may be gone now. */
    if (s->state == S_LIVE) {
      if (entry_send(s, e) == 0) s->seq = e->seq;
    } else if (s->state == S_CATCHUP && s->parked) {
      catchup_step(s);
    }
  }
  return 0;
}

static int feed_push(void *arg, const tc_feed_item_t *c, size_t n) {
  return feed_append(arg, c[0].change.token, c, n);
}

static void on_feed_changes(void *arg, int status, const tc_feed_item_t *changes, size_t n,
                            const char *last) {
  tc_feed_t *f = arg;
  f->reading = 0;
  tc__metrics_feed_read(0, status == 0 ? n : 0);
  if (f->srv->stopping) return;
  f->pins++;
  if (status == 0) status = for_each_transaction(changes, n, feed_push, f);
  /* The backend moved past transactions that changed nothing. */
  if (status == 0 && strcmp(last, feed_last(f)->text) != 0) status = feed_append(f, last, NULL, 0);
  if (status != 0) {
    tc_log(TC_LOG_ERROR, "watch: tenant %s: reading changes after %s failed: %s", f->tenant_id,
           feed_last(f)->text, tc_err_symbol(status));
    end_all(f, TC_EUNAVAILABLE, "the change feed could not be read");
  } else {
    if (n >= READ_LIMIT || f->dirty) {
      f->dirty = 0;
      feed_read(f);
    }
  }
  f->pins--;
  feed_release(f);
}

static void feed_read(tc_feed_t *f) {
  if (!f->ready || f->reading) {
    f->dirty = 1;
    return;
  }
  f->reading = 1;
  if (f->wake_ns) { /* a read past READ_LIMIT serves the same wake-up */
    f->read_wake_ns = f->wake_ns;
    f->wake_ns = 0;
  }
  tc_server_t *srv = f->srv;
  int rc =
      tc__watch_read(srv, f->tenant_id, feed_last(f)->text, NULL, READ_LIMIT, on_feed_changes, f);
  if (rc != 0) on_feed_changes(f, rc, NULL, 0, feed_last(f)->text);
}

static void on_feed_head(void *arg, int status, const char *token) {
  tc_feed_t *f = arg;
  f->reading = 0;
  if (f->srv->stopping) return;
  f->pins++;
  if (status == 0 && !(f->base = tok_new(token))) status = TC_ENOMEM;
  if (status != 0) {
    end_all(f, TC_EUNAVAILABLE, "the change feed could not be started");
  } else {
    f->ready = 1;
    for (stream_t *s = f->streams, *next; s; s = next) {
      next = s->next;
      if (s->state == S_WAIT_FEED) stream_attach(s);
    }
    if (f->dirty) {
      f->dirty = 0;
      feed_read(f);
    }
  }
  f->pins--;
  feed_release(f);
}

static tc_feed_t *feed_find(tc_server_t *srv, const char *tenant_id) {
  tc__idmap_link_t *l = tc__idmap_find(&srv->feeds, tenant_id);
  return l ? TC_CONTAINER_OF(l, tc_feed_t, link) : NULL;
}

/* The tenant's feed, started if there is none: 0 and *out.  A feed head()
 * refuses is unlinked again, so a refusal leaves nothing behind and the next
 * Watch on the tenant starts the feed afresh: the refusal's code. */
static int feed_get(tc_server_t *srv, const char *tenant_id, tc_feed_t **out) {
  tc_feed_t *f = feed_find(srv, tenant_id);
  if (!f) {
    f = calloc(1, sizeof *f);
    if (!f || !(f->tenant_id = strdup(tenant_id))) {
      free(f);
      return TC_ENOMEM;
    }
    f->srv = srv;
    /* The head when the feed starts: the ring covers what commits after it. */
    f->reading = 1;
    int rc = tc__idmap_add(&srv->feeds, &f->link, f->tenant_id);
    if (rc == 0 && (rc = srv->api->head(srv->backend, tenant_id, on_feed_head, f)) != 0)
      tc__idmap_remove(&srv->feeds, &f->link);
    if (rc != 0) {
      free(f->tenant_id);
      free(f);
      return rc;
    }
  }
  *out = f;
  return 0;
}

void tc_watch_notify(tc_server_t *srv, const char *tenant_id) {
  tc_feed_t *f = feed_find(srv, tenant_id);
  if (f && !f->wake_ns) f->wake_ns = uv_hrtime();
  if (f) feed_read(f);
}

/* ---- a stream's life ------------------------------------------------------- */

static int catchup_send(void *arg, const tc_feed_item_t *c, size_t n) {
  stream_t *s = arg;
  entry_t e;
  int rc = entry_build(&e, c[0].change.token, c, n);
  if (rc == 0) {
    rc = entry_send(s, &e);
    entry_free(&e);
  } else {
    tc_arena_free(&e.arena);
    stream_end_resume(s, rc, "a change could not be read");
  }
  return rc;
}

/* A DataChanges with no changes and the token of the stream's position. */
static int send_checkpoint(stream_t *s) { return stream_send(s, s->pos, NULL, 0, 1); }

/* Ends the stream if a read of its history from its position failed (why:
 * what could not be read, for other errors than these two); non-zero then. */
static int history_failed(stream_t *s, int status, const char *why) {
  if (status == TC_EOUT_OF_RANGE)
    stream_end(s, TC_EOUT_OF_RANGE,
               "snap token %s is older than the retained change history; start a new watch "
               "with an empty snap token after re-reading the data",
               s->pos->text);
  else if (status == TC_ESNAP_TOKEN)
    stream_end(s, TC_ESNAP_TOKEN, TC_TOKEN_AHEAD_FMT, s->pos->text);
  else if (status != 0)
    stream_end_resume(s, TC_EUNAVAILABLE, why);
  return status != 0;
}

static void on_catchup(void *arg, int status, const tc_feed_item_t *changes, size_t n,
                       const char *last) {
  stream_t *s = arg;
  s->reading = 0;
  tc__metrics_feed_read(1, status == 0 ? n : 0);
  if (op_done(s)) return;
  if (history_failed(s, status, "the change history could not be read")) return;
  if (for_each_transaction(changes, n, catchup_send, s) != 0) return;
  /* Nothing between the stream and the feed's position: the stream is at
   * it, or ahead of it (a token from another node, or a write the feed has
   * not read yet). */
  int moved = strcmp(last, s->pos->text) != 0;
  s->parked = !n && !moved;
  if (moved) {
    tok_t *t = tok_new(last);
    if (!t) {
      stream_end_resume(s, TC_ENOMEM, "out of memory");
      return;
    }
    stream_move(s, t);
    tok_unref(t);
  }
  catchup_step(s);
}

/* Finds the stream's position in the ring (the base, or an entry's token):
 * from there on the ring has every later transaction. */
static int ring_locate(tc_feed_t *f, stream_t *s) {
  if (!strcmp(s->pos->text, f->base->text)) {
    s->seq = f->base_seq;
    return 1;
  }
  for (size_t i = f->ring_len; i-- > 0;) {
    entry_t *e = ring_at(f, i);
    if (e->token == s->pos || !strcmp(e->token->text, s->pos->text)) {
      s->seq = e->seq;
      return 1;
    }
  }
  return 0;
}

/* A stream behind the live feed takes transactions from the backend while it
 * is behind the ring, then from the ring, and goes live once it has reached
 * the feed.  It reads the next page as soon as the page fits in its queue, so
 * the backend works while the client takes the last one, and takes ring
 * entries while its queue is at most half full; on_sent drives it on.  So a
 * deep catch-up is paced by the client, never ended for it. */
static void catchup_step(stream_t *s) {
  tc_feed_t *f = s->feed;
  size_t page = s->limit / 4 ? s->limit / 4 : 1;
  while (s->state == S_CATCHUP && !s->reading) {
    /* A stream paused in the ring may have fallen out of it meanwhile. */
    if (s->in_ring && s->seq < f->base_seq) s->in_ring = 0;
    if (!s->in_ring && !(s->in_ring = ring_locate(f, s))) {
      if (s->parked && s->upto_seq == feed_last_seq(f)) return; /* feed_append calls again */
      if (s->call->pending + page > s->limit) return;
      /* Not in the ring: read from the backend up to the feed's position,
       * where the ring takes over. */
      s->parked = 0;
      s->upto_seq = feed_last_seq(f);
      s->reading = 1;
      s->refs++;
      int rc = tc__watch_read(s->srv, s->tenant_id, s->pos->text, feed_last(f)->text,
                              (uint32_t)page, on_catchup, s);
      if (rc != 0) on_catchup(s, rc, NULL, 0, s->pos->text);
      return;
    }
    if (s->seq == feed_last_seq(f)) {
      s->state = S_LIVE;
      return;
    }
    if (s->call->pending > s->limit / 2) return;
    entry_t *e = ring_at(f, (size_t)(s->seq - f->base_seq));
    /* A failed send ended the stream, which may be gone now. */
    if (entry_send(s, e) != 0) return;
    s->seq = e->seq;
  }
}

/* The feed is ready: the stream catches up to it, then is live. */
static void stream_attach(stream_t *s) {
  s->state = S_CATCHUP;
  /* The first checkpoint goes at once: the client learns its starting
   * position (the head, for an empty token) without waiting. */
  if (s->has_timer && !s->booted && send_checkpoint(s)) return;
  catchup_step(s);
}

static void on_checkpoint(uv_timer_t *t) {
  stream_t *s = t->data;
  if (s->state == S_LIVE || s->state == S_CATCHUP) send_checkpoint(s);
}

/* ---- the initial state (watch_bootstrap.c) ----------------------------------- */

/* Queues one message of the initial state, or the one carrying its position
 * (token), outside the stream's limit: the boot reads a page only when the
 * queue is at most half full, which bounds it.  0, or the stream ended. */
static int initial_push(stream_t *s, const char *token, Base__V1__DataChange **changes, size_t n) {
  Base__V1__DataChanges dc = BASE__V1__DATA_CHANGES__INIT;
  Base__V1__WatchResponse resp = BASE__V1__WATCH_RESPONSE__INIT;
  dc.snap_token = (char *)token;
  dc.data_changes = changes;
  dc.n_data_changes = n;
  resp.changes = &dc;
  tok_t *t = tok_new(token);
  int rc = t ? queue_push(s, t) : TC_ENOMEM;
  tok_unref(t);
  if (rc == 0) rc = s->call->send(s->call, &resp.base);
  if (rc != 0) stream_end_resume(s, rc, "the stream could not be written");
  return rc;
}

static int initial_send(void *arg, Base__V1__DataChange **changes, size_t n) {
  return initial_push(arg, "", changes, n);
}

static int initial_room(void *arg) {
  stream_t *s = arg;
  return s->call->pending <= s->limit / 2;
}

/* A read of no transactions from the stream's position S up to S: its
 * `last` is the exact position S names (backend.h, read_changes), and it
 * fails once S has left the retained history.  Before the initial state it
 * pins S: a PostgreSQL write ack's own snapshot counts as seen transactions
 * that a Watch from it still sends, so rows read at it would come twice.
 * After, it proves the GC removed no row of S while the rows were read. */
static void initial_pin(stream_t *s, tc_changes_cb cb) {
  s->refs++;
  int rc = s->srv->api->read_changes(s->srv->backend, s->tenant_id, s->pos->text, s->pos->text, 1,
                                     cb, s);
  if (rc != 0) cb(s, rc, NULL, 0, s->pos->text);
}

/* S was still retained when the initial state was all read: its end is S's
 * message, then the stream goes on as a Watch from there. */
static void on_initial_kept(void *arg, int status, const tc_change_t *changes, size_t n,
                            const char *last) {
  stream_t *s = arg;
  (void)changes, (void)n, (void)last;
  if (op_done(s)) return;
  if (history_failed(s, status, "the change history could not be read")) return;
  if (initial_push(s, s->pos->text, NULL, 0) != 0) return;
  s->booted = 1;
  s->state = S_WAIT_FEED;
  if (s->feed->ready) stream_attach(s);
}

/* The initial state was read and sent. */
static void initial_done(void *arg, int status) {
  stream_t *s = arg;
  s->boot = NULL;
  if (history_failed(s, status, "the initial state could not be read")) return;
  initial_pin(s, on_initial_kept);
}

/* S is pinned to its exact position: the rows at it go out. */
static void on_initial_pinned(void *arg, int status, const tc_change_t *changes, size_t n,
                              const char *last) {
  static const tc_boot_sink_t sink = {initial_send, initial_room, initial_done};
  stream_t *s = arg;
  (void)changes, (void)n;
  if (op_done(s)) return;
  tok_t *t = status == 0 ? tok_new(last) : NULL;
  if (status == 0 && !t) status = TC_ENOMEM;
  if (t) stream_move(s, t);
  tok_unref(t);
  if (history_failed(s, status, "the start position could not be read")) return;
  int rc = tc__boot_start(s->srv, s->tenant_id, s->pos->text, s->filter, &sink, s, &s->boot);
  if (rc != 0) {
    stream_end_resume(s, rc, "the initial state could not be read");
    return;
  }
  tc__boot_pump(s->boot);
}

/* Sends the tenant's rows at the stream's position first (docs/watch.md,
 * "Initial state").  Until its end has left the queue, an ended stream
 * says to start over (an empty resume token). */
static void initial_begin(stream_t *s) {
  tok_t *blank = tok_new("");
  if (!blank) {
    stream_end_resume(s, TC_ENOMEM, "out of memory");
    return;
  }
  tok_unref(s->resume);
  s->resume = blank;
  s->state = S_INITIAL;
  initial_pin(s, on_initial_pinned);
}

static void stream_join(stream_t *s) {
  tc_feed_t *f;
  s->resume = tok_ref(s->pos);
  int rc = feed_get(s->srv, s->tenant_id, &f);
  if (rc != 0) {
    stream_end_resume(s, rc, "the change feed could not be started");
    return;
  }
  s->feed = f;
  s->state = S_WAIT_FEED;
  s->next = f->streams;
  if (f->streams) f->streams->prev = s;
  f->streams = s;
  const Base__V1__WatchRequest *r = (const void *)s->call->request;
  if (r->checkpoint_interval_seconds) {
    uint64_t ms = (uint64_t)r->checkpoint_interval_seconds * 1000;
    uv_timer_init(s->srv->loop, &s->checkpoint);
    s->checkpoint.data = s;
    s->has_timer = 1;
    s->refs++;
    uv_timer_start(&s->checkpoint, on_checkpoint, ms, ms);
  }
  /* Accepted: the headers go now, so a client of a quiet tenant does not
   * wait for them until the first change.  Opening may find the client gone
   * and end the stream. */
  s->refs++;
  if (s->call->open) s->call->open(s->call);
  if (op_done(s)) return;
  if (r->initial_state) {
    initial_begin(s);
    return;
  }
  if (f->ready) stream_attach(s);
}

static void on_stream_head(void *arg, int status, const char *token) {
  stream_t *s = arg;
  if (op_done(s)) return;
  if (status == 0 && !(s->pos = tok_new(token))) status = TC_ENOMEM;
  if (status != 0) {
    stream_end(s, status, "the head position could not be read");
    return;
  }
  stream_join(s);
}

static void run_start(tc_job_t *job, int status, const tc_schema_t *schema) {
  (void)schema;
  stream_t *s = (stream_t *)job;
  if (op_done(s)) return;
  if (status != 0) {
    stream_end(s, status, "%s", tc_err_code_name(status));
    return;
  }
  if (s->pos) {
    stream_join(s);
    return;
  }
  /* An empty token starts at the head: after every committed transaction. */
  s->refs++;
  int rc = s->srv->api->head(s->srv->backend, s->tenant_id, on_stream_head, s);
  if (rc != 0) on_stream_head(s, rc, "");
}

static void on_sent(tc_call_t *call) {
  stream_t *s = call->handler;
  if (!s || !s->q_len) return;
  tok_unref(s->resume);
  s->resume = s->queued[s->q_first];
  s->q_first = (s->q_first + 1) % s->q_cap;
  s->q_len--;
  if (s->state == S_CATCHUP)
    catchup_step(s);
  else if (s->state == S_INITIAL && s->boot && initial_room(s))
    tc__boot_pump(s->boot);
}

static void on_cancel(tc_call_t *call) {
  stream_t *s = call->handler;
  if (s) stream_end(s, TC_ECANCELLED, "the client cancelled the watch");
}

int tc_watch_rpc(tc_call_t *call) {
  tc_server_t *srv = call->server;
  const Base__V1__WatchRequest *r = (const void *)call->request;
  int rc;
  if (!srv->cfg->watch_enabled)
    return tc_call_error(call, TC_EPRECONDITION,
                         "watch is disabled on this server: set service.watch.enabled to true "
                         "(flag --service-watch-enabled, env PERMIFY_SERVICE_WATCH_ENABLED)");
  if (srv->stopping) return tc_call_error(call, TC_EUNAVAILABLE, "the server is shutting down");
  if ((rc = tc_call_snap_token(call, r->snap_token)) != 0) return rc;
  if (r->include_schema_changes && !tc__watch_has_schemas(srv))
    return tc_call_error(call, TC_EUNIMPLEMENTED,
                         "include_schema_changes: this server's backend plugin does not report "
                         "schema writes (it predates plugin ABI 2.4)");
  stream_t *s = calloc(1, sizeof *s);
  if (!s) return TC_ENOMEM;
  if (r->snap_token && *r->snap_token && !(s->pos = tok_new(r->snap_token))) {
    free(s);
    return TC_ENOMEM;
  }
  s->srv = srv;
  s->call = call;
  s->tenant_id = r->tenant_id;
  s->limit = (size_t)srv->cfg->database_watch_buffer_size;
  s->schemas = r->include_schema_changes;
  const Base__V1__WatchFilter *f = r->filter;
  if (f && (f->n_entity_types || f->n_relations || f->n_attributes || f->operation)) s->filter = f;
  s->refs = 2; /* the call, and the tenant job below */
  call->handler = s;
  call->on_sent = on_sent;
  call->on_cancel = on_cancel;
  s->job.run = run_start;
  if ((rc = tc_tenant_submit(srv, r->tenant_id, &s->job)) != 0) {
    call->handler = NULL;
    tok_unref(s->pos);
    free(s);
    return rc;
  }
  tc__metrics_watch_started();
  return 0;
}

/* Feeds stay while the server stops (feed_release), so the walk is safe. */
void tc_watch_stop(tc_server_t *srv) {
  for (tc__idmap_link_t *l = tc__idmap_next(&srv->feeds, NULL); l;
       l = tc__idmap_next(&srv->feeds, l))
    end_all(TC_CONTAINER_OF(l, tc_feed_t, link), TC_EUNAVAILABLE, "the server is shutting down");
}

void tc_watch_free(tc_server_t *srv) {
  for (tc__idmap_link_t *l = tc__idmap_next(&srv->feeds, NULL), *next; l; l = next) {
    next = tc__idmap_next(&srv->feeds, l);
    feed_free(TC_CONTAINER_OF(l, tc_feed_t, link));
  }
  tc__idmap_free(&srv->feeds);
}
