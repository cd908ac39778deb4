/* Wake-ups: coalesced NOTIFY after commits, LISTEN, and the node-wide
 * safety poll (pg_wake.h). */
#include "pg_wake.h"

#include <stdlib.h>
#include <string.h>

#include "pg_token.h"
#include "tuplecast/errors.h"

#define CHANNEL "tuplecast"
#define PAYLOAD_MAX 7900 /* Postgres refuses payloads of 8000 bytes or more */
#define RETRY_MS 500     /* a failed poll is retried this soon at the latest */
/* A NOTIFY unit starts at least this long after the one before.  Each is a
 * transaction of its own (an xid, a commit record, every listening backend
 * woken to read the queue, every node parsing the payload); with only one in
 * flight, at 4,000-5,000 single-item writes/s one went out every other write
 * (pg_stat_statements: 6,525 NOTIFYs for 12,624 writes).  This caps them at
 * 500/s for at most 2 ms more before another node hears of a write. */
#define NOTIFY_GAP_MS 2

static const char notify_sql[] = "SELECT pg_notify('" CHANNEL "', $1)";

/* The transactions visible now (C) but not in G (same shape as the feed's
 * query, without the tenant condition), one row each with its tenant, in
 * tenant order; C, and the newest transaction M visible in C, above which
 * the new G is truncated (C may count as done xids a crash hands out again;
 * none at or below M, whose commit is durable: "Crash safety of positions"
 * in docs/backend-postgres.md).  Its rows are the transactions since the
 * last poll, whatever the number of tenants.  $1 NULL (the first poll) only
 * takes G. */
static const char poll_sql[] =
    "SELECT s.cur::text, t.tenant_id, s.m::text, t.id::text FROM (SELECT pg_current_snapshot()"
    " AS cur, (SELECT id FROM transactions ORDER BY id DESC LIMIT 1) AS m) s"
    " LEFT JOIN LATERAL ("
    "   SELECT tenant_id, id FROM transactions WHERE id >= pg_snapshot_xmax($1::pg_snapshot)"
    "    AND pg_visible_in_snapshot(id, s.cur)"
    "   UNION ALL"
    "   SELECT tenant_id, id FROM transactions"
    "    WHERE id = ANY(ARRAY(SELECT pg_snapshot_xip($1::pg_snapshot)))"
    "    AND pg_visible_in_snapshot(id, s.cur)"
    " ) t ON true ORDER BY t.tenant_id";

/* This node's own transactions the poll has not passed yet are kept to at
 * most this many (8 bytes each); past it a write is not recorded, and the
 * poll wakes its tenant once more, as it would without the record. */
#define LOCAL_MAX 65536

struct tc__pg_wake_s {
  const tc_host_api_t *host;
  char *node_id;
  unsigned interval_ms;
  tc__pg_pool_t *read_pool, *notify_pool;
  tc__pg_listener_t *listener;
  uv_timer_t timer;
  uv_timer_t flush_timer; /* zero timeout: after this loop turn's callbacks */
  char **pending;         /* tenants written this turn, not yet sent */
  size_t npending, cappending;
  int notifying;           /* a NOTIFY unit is in flight */
  uint64_t notified_at;    /* loop time the last NOTIFY unit started */
  int polling, poll_again; /* a poll is in flight; run another after it */
  char *g;                 /* the poll's cursor snapshot; NULL before the first */
  uint64_t *local;         /* xids this node's writes committed, not yet passed by g */
  size_t nlocal, caplocal;
  int local_sorted;
  int closing, open; /* parts still to close: handles, listener, pool */
  void (*done)(void *arg);
  void *done_arg;
};

/* ---- closing ----------------------------------------------------------------- */

static void maybe_free(tc__pg_wake_t *w) {
  if (!w->closing || w->open || w->polling || w->notifying) return;
  for (size_t i = 0; i < w->npending; i++) free(w->pending[i]);
  free(w->pending);
  free(w->g);
  free(w->local);
  free(w->node_id);
  void (*done)(void *) = w->done;
  void *arg = w->done_arg;
  free(w);
  if (done) done(arg);
}

static void part_closed(void *arg) {
  tc__pg_wake_t *w = arg;
  w->open--;
  maybe_free(w);
}

static void handle_closed(uv_handle_t *h) { part_closed(h->data); }

/* ---- NOTIFY ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void flush(tc__pg_wake_t *w);
static void notify_drain(tc__pg_wake_t *w);

static void on_notified(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                        const char *errmsg) {
  tc__pg_wake_t *w = arg;
  (void)res;
  (void)n;
  w->notifying = 0;
  /* Lost wake-ups are found by the other nodes' safety polls. */
  if (status)
    w->host->log(TC_LOG_WARN, "postgres: NOTIFY failed: %s %s", sqlstate ? sqlstate : "",
                 errmsg ? errmsg : "");
  if (w->closing)
    notify_drain(w);
  else
    flush(w); /* what was written meanwhile */
}

/* Sends the pending tenants, de-duplicated, as payloads under PAYLOAD_MAX
 * bytes, in one unit. */
static void send_pending(tc__pg_wake_t *w) {
  w->notified_at = uv_now(w->flush_timer.loop);
  qsort(w->pending, w->npending, sizeof *w->pending, cmp_str);
  size_t head = strlen(w->node_id), npay = 0, cap = 0, cur = 0;
  char **pay = NULL;
  const char **vals = NULL;
  int rc = 0;
  for (size_t i = 0; i < w->npending && !rc; i++) {
    const char *t = w->pending[i];
    if (i && !strcmp(t, w->pending[i - 1])) continue;
    size_t tl = strlen(t);
    if (!npay || cur + 1 + tl >= PAYLOAD_MAX) {
      if (npay == cap) {
        cap = cap ? 2 * cap : 4;
        char **grown = realloc(pay, cap * sizeof *grown);
        if (!grown) {
          rc = TC_ENOMEM;
          break;
        }
        pay = grown;
      }
      if (!(pay[npay] = malloc(PAYLOAD_MAX))) {
        rc = TC_ENOMEM;
        break;
      }
      memcpy(pay[npay], w->node_id, head + 1);
      cur = head;
      npay++;
    }
    char *p = pay[npay - 1] + cur;
    *p++ = '\n';
    memcpy(p, t, tl + 1);
    cur += 1 + tl;
  }
  tc__pg_stmt_t *st = rc ? NULL : malloc(npay * sizeof *st);
  vals = rc ? NULL : malloc(npay * sizeof *vals);
  if (!rc && st && vals) {
    for (size_t i = 0; i < npay; i++) {
      vals[i] = pay[i];
      st[i] = (tc__pg_stmt_t){"tcw_notify", notify_sql, 1, vals + i};
    }
    rc = tc__pg_pool_submit(w->notify_pool, st, npay, on_notified, w);
    w->notifying = rc == 0;
  } else {
    rc = TC_ENOMEM;
  }
  if (rc) w->host->log(TC_LOG_WARN, "postgres: NOTIFY not sent: error %d", rc);
  for (size_t i = 0; i < npay; i++) free(pay[i]);
  free(pay);
  free(st);
  free(vals);
  for (size_t i = 0; i < w->npending; i++) free(w->pending[i]);
  w->npending = 0;
}

static void on_flush_timer(uv_timer_t *t) { flush(t->data); }

/* One unit in flight at a time, NOTIFY_GAP_MS from the start of one to the
 * next: writes that commit meanwhile join the next one. */
static void flush(tc__pg_wake_t *w) {
  if (w->notifying || !w->npending) return;
  uint64_t now = uv_now(w->flush_timer.loop), next = w->notified_at + NOTIFY_GAP_MS;
  if (w->notified_at && now < next)
    uv_timer_start(&w->flush_timer, on_flush_timer, next - now, 0);
  else
    send_pending(w);
}

void tc__pg_wake_written(tc__pg_wake_t *w, const char *tenant_id) {
  if (w->closing) return;
  if (w->npending == w->cappending) {
    size_t cap = w->cappending ? 2 * w->cappending : 16;
    char **grown = realloc(w->pending, cap * sizeof *grown);
    if (!grown) return; /* the safety poll covers it */
    w->pending = grown;
    w->cappending = cap;
  }
  char *t = strdup(tenant_id);
  if (!t) return;
  w->pending[w->npending++] = t;
  /* After this loop turn's callbacks (or the gap's end, if its timer runs):
   * one NOTIFY for all of them. */
  if (!uv_is_active((uv_handle_t *)&w->flush_timer))
    uv_timer_start(&w->flush_timer, on_flush_timer, 0, 0);
}

/* Closing: sends what is still pending once no unit is in flight, gap or
 * not (unless the pool has no connection to send it on), then closes the
 * NOTIFY pool: it fails the units still queued when it closes, so only
 * after the last one is answered. */
static void notify_drain(tc__pg_wake_t *w) {
  if (w->notifying || !w->notify_pool) return;
  if (w->npending && tc__pg_pool_ready(w->notify_pool)) send_pending(w);
  if (w->notifying) return;
  tc__pg_pool_t *p = w->notify_pool;
  w->notify_pool = NULL;
  tc__pg_pool_close(p, part_closed, w);
}

/* ---- LISTEN ------------------------------------------------------------------ */

static void on_notify(void *arg, const char *payload) {
  tc__pg_wake_t *w = arg;
  const char *nl = strchr(payload, '\n');
  size_t head = strlen(w->node_id);
  if (w->closing || !nl || ((size_t)(nl - payload) == head && !memcmp(payload, w->node_id, head)))
    return; /* our own writes woke our feeds in-process */
  for (const char *t = nl + 1; *t;) {
    size_t len = strcspn(t, "\n");
    char *tenant = strndup(t, len);
    if (tenant && len) w->host->changed(w->host, tenant);
    free(tenant);
    t += len + (t[len] == '\n');
  }
}

/* ---- this node's own transactions ------------------------------------------------- */

void tc__pg_wake_local(tc__pg_wake_t *w, uint64_t xid) {
  if (w->closing || w->nlocal == LOCAL_MAX) return;
  if (w->nlocal == w->caplocal) {
    size_t cap = w->caplocal ? 2 * w->caplocal : 64;
    uint64_t *grown = realloc(w->local, cap * sizeof *grown);
    if (!grown) return; /* the poll wakes the tenant once more */
    w->local = grown;
    w->caplocal = cap;
  }
  if (w->nlocal && xid < w->local[w->nlocal - 1]) w->local_sorted = 0;
  w->local[w->nlocal++] = xid;
}

static int is_local(tc__pg_wake_t *w, uint64_t x) {
  if (!w->nlocal) return 0;
  if (!w->local_sorted) {
    qsort(w->local, w->nlocal, sizeof *w->local, tc__pg_xid_cmp);
    w->local_sorted = 1;
  }
  return bsearch(&x, w->local, w->nlocal, sizeof x, tc__pg_xid_cmp) != NULL;
}

/* Drops the xids the cursor has passed: a poll has looked at each of them
 * (every xid visible in g was visible in that poll's C and not in the
 * cursor before it).  What stays is at most the writes since the last poll. */
static void local_prune(tc__pg_wake_t *w) {
  tc__pg_snap_t g;
  if (!w->g || tc__pg_snap_parse(w->g, &g)) return;
  size_t m = 0;
  for (size_t i = 0; i < w->nlocal; i++)
    if (!tc__pg_snap_visible(&g, w->local[i])) w->local[m++] = w->local[i];
  w->nlocal = m;
  tc__pg_snap_clear(&g);
  if (!m && w->caplocal > 1024) { /* give back a burst's array */
    free(w->local);
    w->local = NULL;
    w->caplocal = 0;
  }
}

/* Hands to changed() each tenant with a transaction that is not one of
 * this node's writes, whose feeds the write woke in-process.  A transaction
 * of ours not recorded yet (its reply still on the way, or lost) is taken
 * for another's: one read too many, never one too few.  res: poll_sql's
 * rows, one per transaction, in tenant order. */
static void wake_foreign(tc__pg_wake_t *w, PGresult *res) {
  int rows = PQntuples(res);
  for (int i = 0, j; i < rows; i = j) {
    const char *t = PQgetvalue(res, i, 1);
    int foreign = 0;
    for (j = i; j < rows && !strcmp(t, PQgetvalue(res, j, 1)); j++)
      if (!foreign && !is_local(w, strtoull(PQgetvalue(res, j, 3), NULL, 10))) foreign = 1;
    if (foreign && !PQgetisnull(res, i, 1)) w->host->changed(w->host, t);
  }
}

/* ---- the safety poll ----------------------------------------------------------- */

static void poll_now(tc__pg_wake_t *w);
static void on_tick(uv_timer_t *t);

/* The new cursor: C truncated above M, the newest transaction visible in
 * C ("" when there is none), and never below the old cursor g's xmax (the
 * newest may be gone: a deleted tenant's), which was such a bound already.
 * Every transactions row visible in C is at or below M, so the truncation
 * passes over none of them.  malloc'd; NULL when C does not parse or out of
 * memory (the cursor stays). */
static char *next_cursor(const char *g, const char *cur, const char *m) {
  tc__pg_snap_t c, old, t;
  if (tc__pg_snap_parse(cur, &c)) return NULL;
  uint64_t bound = strtoull(m, NULL, 10) + 1;
  if (g && !tc__pg_snap_parse(g, &old)) {
    if (old.xmax > bound) bound = old.xmax;
    tc__pg_snap_clear(&old);
  }
  char *text = NULL;
  if (!tc__pg_snap_truncate(&c, bound, &t)) {
    text = tc__pg_snap_text(&t);
    tc__pg_snap_clear(&t);
  }
  tc__pg_snap_clear(&c);
  return text;
}

static void on_polled(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                      const char *errmsg) {
  tc__pg_wake_t *w = arg;
  (void)n;
  w->polling = 0;
  if (w->closing) return maybe_free(w);
  if (status) {
    w->host->log(TC_LOG_DEBUG, "postgres: safety poll failed: %s %s", sqlstate ? sqlstate : "",
                 errmsg ? errmsg : "");
    unsigned soon = w->interval_ms < RETRY_MS ? w->interval_ms : RETRY_MS;
    uv_timer_start(&w->timer, on_tick, soon, w->interval_ms);
    return;
  }
  PGresult *r = res[0];
  int rows = PQntuples(r);
  char *g = rows ? next_cursor(w->g, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 2)) : NULL;
  if (g) {
    free(w->g);
    w->g = g;
  }
  wake_foreign(w, r);
  local_prune(w);
  if (w->poll_again) poll_now(w);
}

static void poll_now(tc__pg_wake_t *w) {
  if (w->polling) {
    w->poll_again = 1;
    return;
  }
  w->poll_again = 0;
  const char *v[1] = {w->g};
  tc__pg_stmt_t st = {"tcw_poll", poll_sql, 1, v};
  int rc = tc__pg_pool_submit(w->read_pool, &st, 1, on_polled, w);
  if (rc)
    w->host->log(TC_LOG_WARN, "postgres: safety poll not sent: error %d", rc);
  else
    w->polling = 1;
}

static void on_tick(uv_timer_t *t) { poll_now(t->data); }

static void on_ready(void *arg) {
  tc__pg_wake_t *w = arg;
  if (!w->closing) poll_now(w); /* notifications sent while we were away are lost */
}

/* ---- start / close --------------------------------------------------------------- */

int tc__pg_wake_start(uv_loop_t *loop, const tc_host_api_t *host, const char *conninfo,
                      tc__pg_pool_t *read_pool, const char *node_id, unsigned poll_interval_ms,
                      tc__pg_wake_t **out) {
  tc__pg_wake_t *w = calloc(1, sizeof *w);
  if (!w) return TC_ENOMEM;
  w->host = host;
  w->read_pool = read_pool;
  w->interval_ms = poll_interval_ms ? poll_interval_ms : 100;
  uv_timer_init(loop, &w->timer);
  uv_timer_init(loop, &w->flush_timer);
  w->timer.data = w->flush_timer.data = w;
  w->open = 2;
  int rc = (w->node_id = strdup(node_id)) ? 0 : TC_ENOMEM;
  static const char *const setup[] = {"SET synchronous_commit = off", NULL};
  tc__pg_pool_opts_t po = {.conninfo = conninfo,
                           .size = 1,
                           .depth = 1,
                           .setup = setup,
                           .name = "notify",
                           .log = host->log};
  if (!rc && !(rc = tc__pg_pool_create(loop, &po, &w->notify_pool))) w->open++;
  tc__pg_listener_opts_t lo = {.conninfo = conninfo,
                               .channel = CHANNEL,
                               .on_notify = on_notify,
                               .on_ready = on_ready,
                               .arg = w,
                               .log = host->log};
  if (!rc && !(rc = tc__pg_listener_start(loop, &lo, &w->listener))) w->open++;
  if (rc) {
    tc__pg_wake_close(w, NULL, NULL);
    return rc;
  }
  uv_timer_start(&w->timer, on_tick, w->interval_ms, w->interval_ms);
  *out = w;
  return 0;
}

void tc__pg_wake_close(tc__pg_wake_t *w, void (*done)(void *arg), void *arg) {
  w->closing = 1;
  w->done = done;
  w->done_arg = arg;
  notify_drain(w); /* the last tenants */
  uv_close((uv_handle_t *)&w->timer, handle_closed);
  uv_close((uv_handle_t *)&w->flush_timer, handle_closed);
  if (w->listener) tc__pg_listener_close(w->listener, part_closed, w);
}
