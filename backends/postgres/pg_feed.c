/* The change feed: head and read_changes over Permify's tables (pg_feed.h).
 *
 * One read is a small state machine of units on the read pool:
 *   [lookup]  the stored snapshot of a Permify token's transaction X, for
 *             after and/or upto (only when one is a Permify token);
 *   page      the tenant's changed rows of transactions visible in C (and
 *             U) but not in P, in (xid, section, row id) order, at most
 *             R+1, with C from the same statement and so from the same
 *             snapshot as the rows; then the tenant's GC horizon;
 *   [rest]    the remaining rows of a transaction the row limit cut;
 * then the whole transactions of the page are delivered.  A transaction
 * that changed nothing has no rows and is passed over by moving the
 * position, so a page with fewer than `limit` changes is complete.
 */
#include "pg_feed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_internal.h"
#include "pg_token.h"
#include "tuplecast/errors.h"

#define CHUNK 65536

static const char now_sql[] = "SELECT pg_current_snapshot()::text";


static const char tx_sql[] = "SELECT snapshot::text FROM transactions WHERE id = $1::xid8";

static const char horizon_sql[] = "SELECT horizon::text FROM tuplecast_gc WHERE tenant_id = $1";

/* The rows a transaction changed, one SELECT per section, in the order
 * its changes are delivered: tuple DELETEs, attribute DELETEs, tuple
 * CREATEs, attribute CREATEs.  `expired_tx_id = X` is a DELETE,
 * `created_tx_id = X` a CREATE unless X also expired the row (then it is
 * one DELETE).  cond(col) constrains the transaction's column. */
#define DELETED_TUPLES(cond)                                                    \
  "SELECT expired_tx_id AS tx, 0 AS sec, id, entity_type AS a, entity_id AS b," \
  " relation AS c, subject_type AS d, subject_id AS e, subject_relation AS f,"  \
  " NULL::text AS v FROM relation_tuples WHERE tenant_id = $1"                  \
  " AND expired_tx_id <> " TC_PG_ACTIVE_TX cond("expired_tx_id")
#define DELETED_ATTRS(cond)                                                           \
  "SELECT expired_tx_id, 1, id, entity_type, entity_id, attribute, NULL, NULL, NULL," \
  " value::text FROM attributes WHERE tenant_id = $1"                                 \
  " AND expired_tx_id <> " TC_PG_ACTIVE_TX cond("expired_tx_id")
#define CREATED_TUPLES(cond)                                                      \
  "SELECT created_tx_id, 2, id, entity_type, entity_id, relation, subject_type,"  \
  " subject_id, subject_relation, NULL FROM relation_tuples WHERE tenant_id = $1" \
  " AND expired_tx_id <> created_tx_id" cond("created_tx_id")
#define CREATED_ATTRS(cond)                                                           \
  "SELECT created_tx_id, 3, id, entity_type, entity_id, attribute, NULL, NULL, NULL," \
  " value::text FROM attributes WHERE tenant_id = $1"                                 \
  " AND expired_tx_id <> created_tx_id" cond("created_tx_id")
#define SECTIONS(cond)                                                                         \
  "(" DELETED_TUPLES(cond) ") UNION ALL (" DELETED_ATTRS(cond) ") UNION ALL (" CREATED_TUPLES( \
      cond) ") UNION ALL (" CREATED_ATTRS(cond) ")"

/* read_feed's schema writes: the tenant's schema_definitions rows (a
 * version's rows share their transaction), section -1, so a transaction's
 * schema comes first; `a` is the version.  The table has no transaction
 * column, so the rows' xmin (the inserting transaction, ours or a Permify
 * server's) is widened to an xid8 with the epoch of the current snapshot's
 * xmax (one epoch back if it is above xmax's low 32 bits: xmin < xmax, less
 * than 2^31 back). */
#define SCHEMA_XID8                                                                            \
  "((pg_snapshot_xmax(pg_current_snapshot())::text::int8 >> 32 << 32)"                         \
  " + d.xmin::text::int8 - CASE WHEN d.xmin::text::int8 >"                                     \
  " (pg_snapshot_xmax(pg_current_snapshot())::text::int8 & 4294967295) THEN 4294967296 ELSE 0" \
  " END)::text::xid8"
#define SCHEMAS(cond)                                                                            \
  "(SELECT x, -1, 0, version, NULL, NULL, NULL, NULL, NULL, NULL FROM (SELECT DISTINCT version," \
  " " SCHEMA_XID8                                                                                \
  " AS x FROM schema_definitions d WHERE tenant_id = $1) sd WHERE true" cond("x") ")"

/* The heads of the tenants $1 (an array): the current snapshot C, the
 * newest data write of all, M, and for each tenant (by its place in $1) its
 * newest transaction (a data write's or a schema write's, a feed transaction
 * too), which its head's token names; one statement, so all visible in C.
 * A tenant's head is C truncated above the newer of M and its own: their
 * commits are durable, so no xid below them comes again after a crash,
 * which xids of C above them might ("Crash safety of positions" in
 * docs/backend-postgres.md).  Many tenants in one statement: 10,000 Watch
 * streams opened at once on 10,000 tenants were 10,000 head statements
 * through the 2 read connections, and most waited past the pool's 5 s. */
static const char heads_sql[] =
    "SELECT s.cur::text, s.m::text, u.i, GREATEST((SELECT t.id FROM transactions t"
    " WHERE t.tenant_id = u.tid ORDER BY t.id DESC LIMIT 1), (SELECT " SCHEMA_XID8
    " AS x FROM schema_definitions d WHERE d.tenant_id = u.tid ORDER BY 1 DESC LIMIT 1))::text"
    " FROM (SELECT pg_current_snapshot() AS cur, (SELECT t.id FROM transactions t"
    " ORDER BY t.id DESC LIMIT 1) AS m) s, unnest($1::text[]) WITH ORDINALITY AS u(tid, i)";
#define HEAD_BATCH_MAX 4096 /* tenants in one head statement */

/* A page: transactions at or above P's xmax, and those of P's in-progress
 * list.  Each SELECT of the first kind walks its index in xid order, up to
 * U's xmax, and stops after R+1 rows (sorting the tenant's whole newer
 * history took 25 ms at 50,000 transactions back, against 0.5 ms); a
 * transaction cut there is the last one it returns, so it is either past
 * the page's R+1 rows or the one the row limit cuts, which `rest`
 * completes.  Those of the second kind probe the index once per xid of P's
 * list and have no limit: with one, the planner walked the tenant's whole
 * history in xid order and filtered it by the list (165 ms a page at a
 * million tuples).  Rows of a transaction running at C are not visible to
 * the statement, which holds C. */
#define VISIBLE_IN_U(col) \
  " AND ($3::pg_snapshot IS NULL OR pg_visible_in_snapshot(" col ", $3::pg_snapshot))"
#define NEW_SINCE_P(col)                                                        \
  " AND " col                                                                   \
  " >= pg_snapshot_xmax($2::pg_snapshot)"                                       \
  " AND " col " < coalesce(pg_snapshot_xmax($3::pg_snapshot), " TC_PG_ACTIVE_TX \
  ")" VISIBLE_IN_U(col) " ORDER BY " col " LIMIT $4::int8"
#define RUNNING_AT_P(col) \
  " AND " col " = ANY(ARRAY(SELECT pg_snapshot_xip($2::pg_snapshot)))" VISIBLE_IN_U(col)
#define PAGE_SQL(new_since_p, running_at_p)                                    \
  "SELECT c.tx::text, c.sec, c.a, c.b, c.c, c.d, c.e, c.f, c.v, s.cur::text,"  \
  " (extract(epoch FROM pg_xact_commit_timestamp(c.tx::xid)) * 1000000)::int8" \
  " FROM (SELECT pg_current_snapshot() AS cur) s LEFT JOIN LATERAL ("          \
  "  SELECT * FROM (" new_since_p " UNION ALL " running_at_p                   \
  ") u"                                                                        \
  "  ORDER BY u.tx, u.sec, u.id LIMIT $4::int8"                                \
  " ) c ON true ORDER BY c.tx, c.sec, c.id"
/* With the schema writes, for read_changes too (finish() drops them there). */
static const char page_sql[] = PAGE_SQL(SECTIONS(NEW_SINCE_P) " UNION ALL " SCHEMAS(NEW_SINCE_P),
                                        SECTIONS(RUNNING_AT_P) " UNION ALL " SCHEMAS(RUNNING_AT_P));

#define IS_X(col) " AND " col " = $2::xid8"
static const char rest_sql[] =
    "SELECT c.tx::text, c.sec, c.a, c.b, c.c, c.d, c.e, c.f, c.v FROM (" SECTIONS(
        IS_X) ") c ORDER BY c.tx, c.sec, c.id";

/* ---- snapshots ------------------------------------------------------------- */

/* The first of n elements of `size` bytes at base, sorted by the uint64_t
 * each begins with, whose key is not below key. */
static size_t lower_bound(const void *base, size_t n, size_t size, uint64_t key) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint64_t k;
    memcpy(&k, (const char *)base + mid * size, sizeof k);
    if (k < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Sorts and de-duplicates xip[0..n), sets s = (xmin, xmax, xip) with xmin
 * the smallest xid not known visible.  Takes xip. */
static void snap_set(tc__pg_snap_t *s, uint64_t xmax, uint64_t *xip, size_t n) {
  qsort(xip, n, sizeof *xip, tc__pg_xid_cmp);
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (!m || xip[i] != xip[m - 1]) xip[m++] = xip[i];
  *s = (tc__pg_snap_t){m ? xip[0] : xmax, xmax, m, xip};
  if (!m) {
    free(xip);
    s->xip = NULL;
  }
}

/* The position of a Permify token: what transaction x saw (its stored
 * snapshot st) plus x itself.  The xids between st.xmax and x were running
 * when st was taken, so they stay invisible; the adjusted snapshot inside a
 * Permify token would count them as seen. */
static int snap_after_x(const tc__pg_snap_t *st, uint64_t x, tc__pg_snap_t *out) {
  uint64_t gap = x > st->xmax ? x - st->xmax : 0;
  uint64_t *xip = malloc((st->nxip + gap + 1) * sizeof *xip);
  if (!xip) return TC_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < st->nxip; i++)
    if (st->xip[i] != x) xip[n++] = st->xip[i];
  for (uint64_t g = st->xmax; g < x; g++) xip[n++] = g;
  snap_set(out, st->xmax > x + 1 ? st->xmax : x + 1, xip, n);
  return 0;
}

/* P plus the delivered members A of kept[0..k) (sorted by xid), exactly:
 * with y = max(A), xmax = max(P.xmax, y+1) and the invisible xids below it
 * are P's beyond y, the ones running in `run` (C or U) up to y that P had
 * not seen, and the kept ones not delivered yet up to y.  With every kept
 * one delivered this is the page's new position P'. */
static int snap_plus(const tc__pg_snap_t *p, const tc__pg_snap_t *run, const uint64_t *kept,
                     size_t k, const unsigned char *delivered, tc__pg_snap_t *out) {
  uint64_t y = 0;
  for (size_t i = 0; i < k; i++)
    if (delivered[i] && kept[i] > y) y = kept[i];
  uint64_t *xip = malloc((p->nxip + run->nxip + k + 1) * sizeof *xip);
  if (!xip) return TC_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < p->nxip; i++)
    if (p->xip[i] > y) xip[n++] = p->xip[i];
  for (size_t i = 0; i < run->nxip; i++) {
    uint64_t u = run->xip[i];
    if (u <= y && !tc__pg_snap_visible(p, u)) xip[n++] = u;
  }
  for (size_t i = 0; i < k; i++)
    if (!delivered[i] && kept[i] <= y) xip[n++] = kept[i];
  snap_set(out, p->xmax > y + 1 ? p->xmax : y + 1, xip, n);
  return 0;
}

/* ---- one read ----------------------------------------------------------------- */

typedef struct chunk_s {
  struct chunk_s *next;
  size_t used, cap;
  max_align_t data[];
} chunk_t;

typedef struct row_s {
  uint64_t tx;
  tc_change_t ch;
  const char *version; /* a schema write's (op TC_CHANGE_SCHEMA) */
} row_t;

typedef struct txn_s {
  uint64_t xid;
  int64_t ts; /* commit time, µs; INT64_MIN when unknown */
} txn_t;

typedef struct read_s {
  tc__pg_pool_t *pool;
  tc_backend_stats_t *stats;
  const tc_host_api_t *host;
  char *instance_id, *tenant, *after, *upto;
  uint32_t limit;
  tc_changes_cb cb;
  tc_feed_cb feed_cb; /* read_feed: schema writes too, answered as items */
  tc_head_cb head_cb;
  void *arg;
  tc__pg_token_t after_tok, upto_tok;
  tc__pg_snap_t p, u, c; /* position, upto, current */
  int has_upto;
  const char *last; /* the position reached, as a token string */
  /* the page */
  txn_t *kept;
  size_t nkept, nk; /* the page's transactions, the delivered prefix */
  int cut;          /* the page had more than R rows */
  row_t *rows;
  size_t nrows, caprows;
  /* the result */
  tc_feed_item_t *out;
  size_t nout, capout;
  char **toks;
  size_t ntoks, captoks;
  chunk_t *chunks;
} read_t;

static void *arena(read_t *r, size_t n) {
  n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  chunk_t *c = r->chunks;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > CHUNK ? n : CHUNK;
    if (!(c = malloc(sizeof *c + cap))) return NULL;
    *c = (chunk_t){r->chunks, 0, cap};
    r->chunks = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += n;
  return p;
}

static char *arena_str(read_t *r, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = arena(r, n);
  if (p) memcpy(p, s, n);
  return p;
}

/* Keeps tok (malloc'd) until the read ends and returns it; NULL (tok freed)
 * when tok is NULL or cannot be kept. */
static const char *keep_tok(read_t *r, char *tok) {
  if (tok && r->ntoks == r->captoks) {
    size_t cap = r->captoks ? 2 * r->captoks : 8;
    char **grown = realloc(r->toks, cap * sizeof *grown);
    if (!grown) {
      free(tok);
      return NULL;
    }
    r->toks = grown;
    r->captoks = cap;
  }
  if (tok) r->toks[r->ntoks++] = tok;
  return tok;
}

static void read_free(read_t *r) {
  for (chunk_t *c = r->chunks, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  for (size_t i = 0; i < r->ntoks; i++) free(r->toks[i]);
  free(r->toks);
  free(r->out);
  free(r->rows);
  free(r->kept);
  tc__pg_snap_clear(&r->p);
  tc__pg_snap_clear(&r->u);
  tc__pg_snap_clear(&r->c);
  tc__pg_token_clear(&r->after_tok);
  tc__pg_token_clear(&r->upto_tok);
  free(r->instance_id);
  free(r->tenant);
  free(r->after);
  free(r->upto);
  free(r);
}

/* read_changes reads the schema writes too, so that its positions move over
 * them as over any durable commit ("Crash safety of positions"), and passes
 * them over here. */
static void finish(read_t *r, int status) {
  tc_change_t *changes = NULL;
  size_t n = 0;
  if (!status && !r->feed_cb && !(changes = malloc((r->nout + 1) * sizeof *changes)))
    status = TC_ENOMEM;
  for (size_t i = 0; !status && changes && i < r->nout; i++)
    if (r->out[i].change.op != TC_CHANGE_SCHEMA) changes[n++] = r->out[i].change;
  if (r->feed_cb)
    r->feed_cb(r->arg, status, status ? NULL : r->out, status ? 0 : r->nout,
               status ? r->after : r->last);
  else
    r->cb(r->arg, status, changes, status ? 0 : n, status ? r->after : r->last);
  free(changes);
  read_free(r);
}

/* A unit's failure: logs it and ends the read. */
static int unit_failed(read_t *r, int status, const char *sqlstate, const char *errmsg) {
  if (!status) return 0;
  if (status == TC_EOUTCOME_UNKNOWN) status = TC_EUNAVAILABLE; /* a read: nothing changed */
  r->host->log(TC_LOG_WARN, "postgres: tenant %s: reading changes failed: %s %s", r->tenant,
               sqlstate ? sqlstate : "", errmsg ? errmsg : "");
  finish(r, status);
  return 1;
}

/* OUT_OF_RANGE when GC may have removed transactions P has not seen. */
static int horizon_passed(const read_t *r, const PGresult *h) {
  if (PQntuples(h) == 0) return 0;
  return r->p.xmin < strtoull(PQgetvalue(h, 0, 0), NULL, 10);
}

static int page_send(read_t *r);

/* ---- positions of the tokens -------------------------------------------------- */

/* The position of a parsed token into *s; row: the stored snapshot of the
 * token's X (Permify kinds with X > 0), NULL when it is missing. */
static int position(const tc__pg_token_t *t, const char *row, tc__pg_snap_t *s) {
  if (t->kind == TC_PG_TOKEN_SNAP) return tc__pg_snap_parse(t->snapshot, s);
  if (t->x == 0) { /* Permify's token for a tenant with no transactions */
    *s = (tc__pg_snap_t){1, 1, 0, NULL};
    return 0;
  }
  if (!row) return TC_EOUT_OF_RANGE;
  tc__pg_snap_t st;
  int rc = tc__pg_snap_parse(row, &st);
  if (rc == TC_EINVAL) rc = TC_EDATASTORE;
  if (!rc) rc = snap_after_x(&st, t->x, s);
  tc__pg_snap_clear(&st);
  return rc;
}

static int needs_lookup(const tc__pg_token_t *t) { return t->kind != TC_PG_TOKEN_SNAP && t->x; }

static const char *stored_row(PGresult *res) {
  return res && PQntuples(res) ? PQgetvalue(res, 0, 0) : NULL;
}

static void on_lookup(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                      const char *errmsg) {
  read_t *r = arg;
  if (unit_failed(r, status, sqlstate, errmsg)) return;
  size_t i = 0;
  const char *a = needs_lookup(&r->after_tok) ? stored_row(res[i++]) : NULL;
  int rc = position(&r->after_tok, a, &r->p);
  if (!rc && r->has_upto)
    rc = position(&r->upto_tok, needs_lookup(&r->upto_tok) ? stored_row(res[i++]) : NULL, &r->u);
  /* Its transaction is not stored: collected, or not reached yet (the last
   * statement is the current snapshot). */
  const char *now = i < n ? stored_row(res[i]) : NULL;
  tc__pg_snap_t cur;
  if (rc == TC_EOUT_OF_RANGE && now && !tc__pg_snap_parse(now, &cur)) {
    if (tc__pg_token_need(&r->after_tok) > cur.xmax) rc = TC_ESNAP_TOKEN;
    tc__pg_snap_clear(&cur);
  }
  if (!rc) rc = page_send(r);
  if (rc) finish(r, rc);
}

/* ---- changes -------------------------------------------------------------------- */

/* Appends the rows of a page or rest result to r->rows (a page with no rows
 * has one, whose transaction is NULL). */
static int take_rows(read_t *r, const PGresult *res) {
  int n = PQntuples(res);
  if (r->nrows + (size_t)n > r->caprows) {
    size_t cap = r->nrows + (size_t)n;
    row_t *grown = realloc(r->rows, cap * sizeof *grown);
    if (!grown) return TC_ENOMEM;
    r->rows = grown;
    r->caprows = cap;
  }
  for (int i = 0; i < n; i++) {
    if (PQgetisnull(res, i, 0)) continue;
    row_t *w = &r->rows[r->nrows];
    int sec = atoi(PQgetvalue(res, i, 1));
    const char *v[6];
    for (int k = 0; k < 6; k++)
      if (!(v[k] = arena_str(r, PQgetvalue(res, i, 2 + k)))) return TC_ENOMEM;
    *w = (row_t){strtoull(PQgetvalue(res, i, 0), NULL, 10),
                 {NULL, sec < 2 ? TC_CHANGE_DELETE : TC_CHANGE_CREATE, NULL, NULL},
                 NULL};
    if (sec < 0) { /* a schema write: its version */
      w->ch.op = TC_CHANGE_SCHEMA;
      w->version = v[0];
    } else if (sec == 0 || sec == 2) {
      tc_tuple_t *t = arena(r, sizeof *t);
      if (!t) return TC_ENOMEM;
      *t = (tc_tuple_t){v[0], v[1], v[2], v[3], v[4], v[5]};
      w->ch.tuple = t;
    } else {
      tc_attr_t *a = arena(r, sizeof *a);
      uint8_t *any = NULL;
      size_t len = 0;
      int rc = r->host->any_from_json(PQgetvalue(res, i, 8), &any, &len);
      if (rc) {
        r->host->log(TC_LOG_ERROR,
                     "postgres: tenant %s: attribute %s:%s$%s of transaction %s: the stored "
                     "value does not convert",
                     r->tenant, v[0], v[1], v[2], PQgetvalue(res, i, 0));
        return TC_EDATASTORE;
      }
      uint8_t *copy = arena(r, len ? len : 1);
      if (copy && len) memcpy(copy, any, len);
      free(any);
      if (!a || !copy) return TC_ENOMEM;
      *a = (tc_attr_t){v[0], v[1], v[2], copy, len};
      w->ch.attr = a;
    }
    r->nrows++;
  }
  return 0;
}

/* Index of xid in kept (sorted by xid). */
static size_t kept_index(const read_t *r, uint64_t xid) {
  return lower_bound(r->kept, r->nkept, sizeof *r->kept, xid);
}

/* First row of transaction xid or later (rows are sorted by tx). */
static size_t first_row(const read_t *r, uint64_t xid) {
  return lower_bound(r->rows, r->nrows, sizeof *r->rows, xid);
}

static int cmp_commit(const void *a, const void *b) {
  const txn_t *x = a, *y = b;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return tc__pg_xid_cmp(&x->xid, &y->xid);
}

static int append_out(read_t *r, const row_t *from, size_t n, const char *tok) {
  if (r->nout + n > r->capout) {
    size_t cap = r->capout ? 2 * r->capout : 64;
    while (cap < r->nout + n) cap *= 2;
    tc_feed_item_t *grown = realloc(r->out, cap * sizeof *grown);
    if (!grown) return TC_ENOMEM;
    r->out = grown;
    r->capout = cap;
  }
  for (size_t i = 0; i < n; i++) {
    r->out[r->nout] = (tc_feed_item_t){from[i].ch, from[i].version};
    r->out[r->nout++].change.token = tok;
  }
  return 0;
}

/* Everything visible in a or in b: a stream's position P and a bound U do
 * not always nest (P may come from another node, or be ahead of this one's
 * feed), and ending a bounded read at U alone would forget what P had seen. */
static int snap_union(const tc__pg_snap_t *a, const tc__pg_snap_t *b, tc__pg_snap_t *out) {
  uint64_t *xip = malloc((a->nxip + b->nxip + 1) * sizeof *xip);
  if (!xip) return TC_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < a->nxip; i++)
    if (!tc__pg_snap_visible(b, a->xip[i])) xip[n++] = a->xip[i];
  for (size_t i = 0; i < b->nxip; i++)
    if (!tc__pg_snap_visible(a, b->xip[i])) xip[n++] = b->xip[i];
  snap_set(out, a->xmax > b->xmax ? a->xmax : b->xmax, xip, n);
  return 0;
}

static int snap_same(const tc__pg_snap_t *a, const tc__pg_snap_t *b) {
  return a->xmax == b->xmax && a->nxip == b->nxip &&
         (!a->nxip || !memcmp(a->xip, b->xip, a->nxip * sizeof *a->xip));
}

/* The token of position s naming transaction x: `upto`'s own string when
 * it names the same (with any_x, any) transaction at s, `after`'s (the
 * current `last`) with any_x when s is P, else a new one.  any_x: the read
 * delivered nothing, so no message's transaction must be named.  A read up
 * to a write ack always answers a new, exact one (the ABI: Watch's initial
 * state pins its start so). */
static const char *position_token(read_t *r, const tc__pg_snap_t *s, uint64_t x, int any_x) {
  const tc__pg_token_t *u = &r->upto_tok;
  int exact = !r->has_upto || !needs_lookup(u);
  if (exact && r->has_upto && snap_same(s, &r->u) &&
      (any_x || (u->kind == TC_PG_TOKEN_SNAP && u->x == x)))
    return r->upto;
  if (exact && any_x && snap_same(s, &r->p)) return r->last;
  return keep_tok(r, tc__pg_token_at(x, s));
}

/* The page's new position P': P together with U when a read up to U holds
 * every change (P and U need not nest: P may come from another node, or be
 * ahead of this one's feed), else P plus its transactions.  Never P with C:
 * C may count as done xids a crash hands out again, P plus the delivered
 * ones only those up to a durable commit ("Crash safety of positions" in
 * docs/backend-postgres.md). */
static int next_position(read_t *r, const tc__pg_snap_t *run, const uint64_t *ids,
                         unsigned char *delivered, tc__pg_snap_t *next) {
  size_t k = r->nk;
  if (!r->cut && r->has_upto) return snap_union(&r->p, run, next);
  memset(delivered, 1, k);
  int rc = snap_plus(&r->p, run, ids, k, delivered, next);
  memset(delivered, 0, k);
  return rc;
}

/* The lag of a transaction delivered now that committed at ts (µs since
 * the epoch, the database's clock: the same machine's, or close to it). */
static void count_lag(tc_backend_stats_t *st, int64_t ts) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t lag = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 - ts;
  if (lag < 0) lag = 0;
  st->feed_txns++;
  st->feed_lag_us_sum += (uint64_t)lag;
  if ((uint64_t)lag > st->feed_lag_us_max) st->feed_lag_us_max = (uint64_t)lag;
}

/* Delivers kept[0..nk) in commit order, each transaction's changes with the
 * token naming it at "P plus the ones delivered so far" (the last one's is
 * P'), and moves P to P'.  With nothing delivered (a read up to U), P' is
 * named by the newest transaction P or U is known to contain. */
static int deliver(read_t *r) {
  size_t k = r->nk;
  const tc__pg_snap_t *run = r->has_upto ? &r->u : &r->c;
  uint64_t *ids = malloc((k + 1) * sizeof *ids);
  txn_t *order = malloc((k + 1) * sizeof *order);
  unsigned char *delivered = calloc(k + 1, 1);
  tc__pg_snap_t next = {0}, mid;
  const char *tok = NULL;
  int rc = ids && order && delivered ? 0 : TC_ENOMEM;
  if (!rc) {
    for (size_t i = 0; i < k; i++) ids[i] = r->kept[i].xid;
    memcpy(order, r->kept, k * sizeof *order);
    qsort(order, k, sizeof *order, cmp_commit);
    rc = next_position(r, run, ids, delivered, &next);
  }
  if (!rc && !k) {
    uint64_t x = r->after_tok.x > r->upto_tok.x ? r->after_tok.x : r->upto_tok.x;
    if (!(tok = position_token(r, &next, x, 1))) rc = TC_ENOMEM;
  }
  for (size_t j = 0; !rc && j < k; j++) {
    uint64_t x = order[j].xid;
    delivered[kept_index(r, x)] = 1;
    size_t lo = first_row(r, x), hi = lo;
    while (hi < r->nrows && r->rows[hi].tx == x) hi++;
    if (j + 1 == k) {
      tok = position_token(r, &next, x, 0);
    } else if (!(rc = snap_plus(&r->p, run, ids, k, delivered, &mid))) {
      tok = keep_tok(r, tc__pg_token_at(x, &mid));
      tc__pg_snap_clear(&mid);
    }
    if (!rc && !tok) rc = TC_ENOMEM;
    if (!rc) rc = append_out(r, r->rows + lo, hi - lo, tok);
    if (!rc && order[j].ts != INT64_MIN) count_lag(r->stats, order[j].ts);
  }
  free(ids);
  free(order);
  free(delivered);
  if (rc) {
    tc__pg_snap_clear(&next);
    return rc;
  }
  tc__pg_snap_clear(&r->p);
  r->p = next;
  r->last = tok;
  return 0;
}

static void on_rest(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                    const char *errmsg) {
  read_t *r = arg;
  (void)n;
  if (unit_failed(r, status, sqlstate, errmsg)) return;
  if (horizon_passed(r, res[1])) return finish(r, TC_EOUT_OF_RANGE);
  int rc = take_rows(r, res[0]);
  finish(r, rc ? rc : deliver(r));
}

/* The page's transactions, with their commit times, from its rows. */
static int take_kept(read_t *r, const PGresult *res) {
  int n = PQntuples(res);
  if (!(r->kept = malloc(((size_t)n + 1) * sizeof *r->kept))) return TC_ENOMEM;
  r->nkept = 0;
  for (int i = 0; i < n; i++) {
    if (PQgetisnull(res, i, 0)) continue;
    uint64_t x = strtoull(PQgetvalue(res, i, 0), NULL, 10);
    if (r->nkept && r->kept[r->nkept - 1].xid == x) continue;
    r->kept[r->nkept++] =
        (txn_t){x, PQgetisnull(res, i, 10) ? INT64_MIN : strtoll(PQgetvalue(res, i, 10), NULL, 10)};
  }
  return 0;
}

static void on_page(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                    const char *errmsg) {
  read_t *r = arg;
  (void)n;
  if (unit_failed(r, status, sqlstate, errmsg)) return;
  if (horizon_passed(r, res[1])) return finish(r, TC_EOUT_OF_RANGE);
  PGresult *pg = res[0];
  if (PQntuples(pg) < 1 || tc__pg_snap_parse(PQgetvalue(pg, 0, 9), &r->c))
    return finish(r, TC_EDATASTORE);
  /* A position the database has not reached: a forged token, or another
   * database's.  Reading on would deliver nothing, silently. */
  if (tc__pg_token_need(&r->after_tok) > r->c.xmax) return finish(r, TC_ESNAP_TOKEN);
  int rc = take_kept(r, pg);
  if (!rc) rc = take_rows(r, pg);
  if (rc) return finish(r, rc);
  /* Nothing new: `after` stays the position (the ABI), unless a read up to
   * U is complete, which ends at U. */
  if (!r->nrows && !r->has_upto) return finish(r, 0);
  r->nk = r->nkept;
  size_t lim = r->limit;
  if (!(r->cut = r->nrows > lim)) return finish(r, deliver(r));
  /* More than R rows: whole transactions up to the one holding row R. */
  uint64_t t = r->rows[lim - 1].tx;
  r->nk = kept_index(r, t) + 1;
  int more = r->rows[lim].tx == t;
  size_t first = lim;
  while (first > 0 && r->rows[first - 1].tx == t) first--;
  r->nrows = more ? first : lim;
  if (!more) return finish(r, deliver(r));
  char x[24];
  snprintf(x, sizeof x, "%" PRIu64, t);
  const char *rv[2] = {r->tenant, x}, *hv[1] = {r->tenant};
  tc__pg_stmt_t st[2] = {{"tcf_rest", rest_sql, 2, rv}, {"tcf_horizon", horizon_sql, 1, hv}};
  if ((rc = tc__pg_pool_submit(r->pool, st, 2, on_rest, r))) finish(r, rc);
}

/* The page after P: at most R+1 rows (R = limit), then the horizon. */
static int page_send(read_t *r) {
  char *ptext = tc__pg_snap_text(&r->p), *utext = r->has_upto ? tc__pg_snap_text(&r->u) : NULL;
  char lim[24];
  snprintf(lim, sizeof lim, "%" PRIu64, (uint64_t)r->limit + 1);
  int rc = TC_ENOMEM;
  if (ptext && (utext || !r->has_upto)) {
    const char *pv[4] = {r->tenant, ptext, utext, lim};
    const char *hv[1] = {r->tenant};
    tc__pg_stmt_t st[2] = {{"tcf_page", page_sql, 4, pv}, {"tcf_horizon", horizon_sql, 1, hv}};
    rc = tc__pg_pool_submit(r->pool, st, 2, on_page, r);
  }
  free(ptext);
  free(utext);
  return rc;
}

/* ---- the API --------------------------------------------------------------------- */

/* Answers one head from its row of heads_sql (cur, m, x; NULL for none). */
static void head_answer(read_t *r, int status, const char *cur, const char *m_text,
                        const char *x_text) {
  char *tok = NULL;
  if (!status && tc__pg_snap_parse(cur, &r->c)) status = TC_EDATASTORE;
  if (!status) {
    uint64_t x = x_text ? strtoull(x_text, NULL, 10) : 0;
    uint64_t m = m_text ? strtoull(m_text, NULL, 10) : 0;
    tc__pg_snap_t h = {0};
    if (!tc__pg_snap_visible(&r->c, x)) x = 0; /* one statement's snapshot: cannot happen */
    if (!tc__pg_snap_visible(&r->c, m)) m = x;
    if ((status = tc__pg_snap_truncate(&r->c, (m > x ? m : x) + 1, &h)) == 0 &&
        !(tok = tc__pg_token_at(x, &h)))
      status = TC_ENOMEM;
    tc__pg_snap_clear(&h);
  }
  r->head_cb(r->arg, status, tok);
  free(tok);
  read_free(r);
}

typedef struct head_batch_s {
  tc__pg_feed_ctx_t *c;
  size_t n;
  read_t *r[]; /* in the order of $1 */
} head_batch_t;

static void heads_flush(tc__pg_feed_ctx_t *c);

static const char *value_or_null(PGresult *res, int row, int col) {
  return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static void on_heads(void *arg, int status, PGresult *const *res, size_t n, const char *sqlstate,
                     const char *errmsg) {
  head_batch_t *hb = arg;
  (void)n;
  if (status)
    hb->c->host->log(TC_LOG_WARN,
                     "postgres: reading the head of %zu tenant(s) (%s, ...) failed: %s %s", hb->n,
                     hb->r[0]->tenant, sqlstate ? sqlstate : "", errmsg ? errmsg : "");
  int rows = status ? 0 : PQntuples(res[0]);
  for (int i = 0; i < rows; i++) {
    size_t k = strtoull(PQgetvalue(res[0], i, 2), NULL, 10) - 1;
    if (k >= hb->n || !hb->r[k]) continue;
    head_answer(hb->r[k], 0, PQgetvalue(res[0], i, 0), value_or_null(res[0], i, 1),
                value_or_null(res[0], i, 3));
    hb->r[k] = NULL;
  }
  for (size_t k = 0; k < hb->n; k++) /* not answered by a row */
    if (hb->r[k]) head_answer(hb->r[k], status ? status : TC_EDATASTORE, NULL, NULL, NULL);
  tc__pg_feed_ctx_t *c = hb->c;
  free(hb);
  c->heads.inflight--;
  heads_flush(c); /* the heads asked for meanwhile */
}

/* One statement for the heads r[0..n): 0, or a TC_E* code (nothing sent,
 * nothing answered). */
static int heads_send(tc__pg_feed_ctx_t *c, read_t *const *r, size_t n) {
  head_batch_t *hb = malloc(sizeof *hb + n * sizeof *r);
  const char **ids = malloc(n * sizeof *ids);
  char *arr = NULL;
  int rc = TC_ENOMEM;
  if (hb && ids) {
    for (size_t i = 0; i < n; i++) ids[i] = r[i]->tenant;
    arr = tc__pg_text_array(ids, n);
  }
  if (arr) {
    *hb = (head_batch_t){c, n};
    memcpy(hb->r, r, n * sizeof *r);
    const char *v[1] = {arr};
    tc__pg_stmt_t st = {"tcf_heads", heads_sql, 1, v};
    if ((rc = tc__pg_pool_submit(c->pool, &st, 1, on_heads, hb)) == 0) c->heads.inflight++;
  }
  if (rc) free(hb);
  free(ids);
  free(arr);
  return rc;
}

/* Sends the queued heads, HEAD_BATCH_MAX to a statement; those that cannot
 * be sent are answered with the error (never from tc__pg_feed_head itself). */
static void heads_flush(tc__pg_feed_ctx_t *c) {
  struct tc__pg_heads_s *h = &c->heads;
  if (h->inflight || !h->n) return;
  read_t **q = (read_t **)h->q;
  size_t n = h->n;
  *h = (struct tc__pg_heads_s){0};
  for (size_t i = 0; i < n; i += HEAD_BATCH_MAX) {
    size_t k = n - i < HEAD_BATCH_MAX ? n - i : HEAD_BATCH_MAX;
    int rc = heads_send(c, q + i, k);
    for (size_t j = 0; rc && j < k; j++) head_answer(q[i + j], rc, NULL, NULL, NULL);
  }
  free(q);
}

static read_t *read_new(const tc__pg_feed_ctx_t *c, const char *tenant_id, void *arg) {
  read_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->pool = c->pool;
  r->stats = c->stats;
  r->host = c->host;
  r->arg = arg;
  r->instance_id = strdup(c->instance_id);
  r->tenant = strdup(tenant_id);
  if (!r->instance_id || !r->tenant) {
    read_free(r);
    return NULL;
  }
  return r;
}

int tc__pg_feed_head(tc__pg_feed_ctx_t *c, const char *tenant_id, tc_head_cb cb, void *arg) {
  read_t *r = read_new(c, tenant_id, arg);
  if (!r) return TC_ENOMEM;
  r->head_cb = cb;
  struct tc__pg_heads_s *h = &c->heads;
  int rc = 0;
  if (!h->inflight) { /* none in flight: at once */
    rc = heads_send(c, &r, 1);
  } else if (h->n == h->cap) { /* else with the next statement */
    size_t cap = h->cap ? 2 * h->cap : 64;
    void **grown = realloc(h->q, cap * sizeof *grown);
    if (grown) {
      h->q = grown;
      h->cap = cap;
      h->q[h->n++] = r;
    } else {
      rc = TC_ENOMEM;
    }
  } else {
    h->q[h->n++] = r;
  }
  if (rc) read_free(r);
  return rc;
}

static int read_start(const tc__pg_feed_ctx_t *c, const char *tenant_id, const char *after,
                      const char *upto, uint32_t limit, tc_changes_cb cb, tc_feed_cb feed_cb,
                      void *arg) {
  c->stats->change_reads++;
  read_t *r = read_new(c, tenant_id, arg);
  if (!r) return TC_ENOMEM;
  r->cb = cb;
  r->feed_cb = feed_cb;
  r->limit = limit ? limit : UINT32_MAX; /* 0: no limit (the ABI) */
  r->has_upto = upto && *upto;
  char *err = NULL;
  int rc = (r->after = strdup(after)) ? 0 : TC_ENOMEM;
  if (!rc && r->has_upto && !(r->upto = strdup(upto))) rc = TC_ENOMEM;
  if (!rc) rc = tc__pg_token_parse(after, r->instance_id, &r->after_tok, &err);
  if (!rc && r->after_tok.kind == TC_PG_TOKEN_HEAD) rc = TC_EINVAL;
  if (!rc && r->has_upto) rc = tc__pg_token_parse(upto, r->instance_id, &r->upto_tok, &err);
  if (!rc && r->has_upto && r->upto_tok.kind == TC_PG_TOKEN_HEAD) rc = TC_EINVAL;
  if (rc) {
    if (err) r->host->log(TC_LOG_WARN, "postgres: tenant %s: read_changes: %s", r->tenant, err);
    free(err);
    read_free(r);
    return rc;
  }
  r->last = r->after;
  /* Permify tokens need their transaction's stored snapshot first. */
  char xa[24], xu[24];
  const char *va[1] = {xa}, *vu[1] = {xu};
  tc__pg_stmt_t st[3];
  size_t n = 0;
  if (needs_lookup(&r->after_tok)) {
    snprintf(xa, sizeof xa, "%" PRIu64, r->after_tok.x);
    st[n++] = (tc__pg_stmt_t){"tcf_tx", tx_sql, 1, va};
  }
  if (r->has_upto && needs_lookup(&r->upto_tok)) {
    snprintf(xu, sizeof xu, "%" PRIu64, r->upto_tok.x);
    st[n++] = (tc__pg_stmt_t){"tcf_tx", tx_sql, 1, vu};
  }
  if (n) {
    st[n++] = (tc__pg_stmt_t){"tcf_now", now_sql, 0, NULL};
    rc = tc__pg_pool_submit(r->pool, st, n, on_lookup, r);
  } else {
    rc = position(&r->after_tok, NULL, &r->p);
    if (!rc && r->has_upto) rc = position(&r->upto_tok, NULL, &r->u);
    if (!rc) rc = page_send(r);
  }
  if (rc) read_free(r);
  return rc;
}

int tc__pg_feed_read_changes(const tc__pg_feed_ctx_t *c, const char *tenant_id, const char *after,
                             const char *upto, uint32_t limit, tc_changes_cb cb, void *arg) {
  return read_start(c, tenant_id, after, upto, limit, cb, NULL, arg);
}

int tc__pg_feed_read_items(const tc__pg_feed_ctx_t *c, const char *tenant_id, const char *after,
                           const char *upto, uint32_t limit, tc_feed_cb cb, void *arg) {
  return read_start(c, tenant_id, after, upto, limit, NULL, cb, arg);
}
