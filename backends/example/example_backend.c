/* The example backend: the whole plugin ABI (major 2) of tuplecast/backend.h,
 * kept in memory and written to be read.  docs/backend-plugins.md is its guide.
 *
 * One thread, the loop's.  Each call copies its inputs into an operation and
 * posts it with host->post(); the host runs posted items in FIFO order on a
 * later loop turn, and the operation then does its work and calls back at
 * once.  That keeps every promise of the ABI: no callback is synchronous,
 * calls complete in submission order (across tenants too), and a read sees
 * every write submitted before it.  Since operations finish in the order
 * they were posted, the example needs no in-order delivery queue (the
 * support library's tc_order_t, which the sqlite and postgres backends use
 * because their operations finish in any order).  The copies of a call's
 * inputs go into the operation's arena (tc_arena_t, tc_copy_*).  destroy()
 * posts one last item behind the queued work; it frees everything and calls
 * back.
 *
 * The data, per tenant, in plain arrays: tuple and attribute rows with MVCC
 * revisions (a row is visible at R when created_rev <= R < expired_rev), the
 * change log in revision order, the schemas in version order.  Revisions and
 * row ids are global and increasing; each write is one revision.
 *
 * Positions are snap tokens, and a revision is all a position needs here: the
 * tokens are "tc1:<instance id>:<revision>" in base64, minted and parsed by
 * the support library's tc_rev_token_encode/decode (shared with the sqlite
 * backend).  Each call
 * turns its tokens into revisions before it queues, so a bad token is refused
 * at once; "" (the head) becomes NOW, which sees every active row.
 *
 * With the uri "example:retain=N" the change log keeps only the changes of
 * the last N revisions; a tenant remembers the newest revision whose changes
 * it dropped, and read_changes from before that answers TC_EOUT_OF_RANGE (the
 * server tells the watcher what to do).  Otherwise nothing is pruned.  The
 * database lives and dies with the backend: instance_id is new at each
 * create().  There are no administrative commands (admin is NULL).
 *
 * Ownership: the backend owns its tenants, rows, schemas and queued
 * operations; an operation owns the copies of its inputs.  Results handed to
 * callbacks point into these and are valid during the callback only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuplecast/backend.h"
#include "tuplecast/support.h"

#define ACTIVE UINT64_MAX /* expired_rev of a row that was never deleted */
#define NOW (ACTIVE - 1)  /* the revision of a read at the head: every active row */
#define URI "example:"

/* ---- a growable array ------------------------------------------------------ */

/* An array of pointers; whoever owns the array frees what they point to. */
typedef struct vec_s {
  void **v;
  size_t n, cap;
} vec_t;

/* Makes room for `extra` more items: 0 or TC_ENOMEM. */
static int vec_reserve(vec_t *a, size_t extra) {
  if (a->n + extra <= a->cap) return 0;
  size_t cap = a->cap ? a->cap : 8;
  while (cap < a->n + extra) cap *= 2;
  void **v = realloc(a->v, cap * sizeof *v);
  if (!v) return TC_ENOMEM;
  a->v = v;
  a->cap = cap;
  return 0;
}

static const vec_t no_items; /* stands in for the arrays of an absent tenant */

/* Inserts p at index i (i == n appends); room must have been reserved. */
static void vec_insert(vec_t *a, size_t i, void *p) {
  memmove(&a->v[i + 1], &a->v[i], (a->n - i) * sizeof *a->v);
  a->v[i] = p;
  a->n++;
}

static void vec_remove(vec_t *a, size_t i) {
  memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof *a->v);
  a->n--;
}

/* Frees every item, then the array. */
static void vec_free(vec_t *a) {
  for (size_t i = 0; i < a->n; i++) free(a->v[i]);
  free(a->v);
}

/* In an array sorted by key_of(item): the item whose key is `key`, or NULL;
 * *pos (if not NULL) gets its index, or the index where it would go. */
static void *vec_find(const vec_t *a, const char *key, const char *(*key_of)(const void *),
                      size_t *pos) {
  size_t i = 0;
  int cmp = 1;
  while (i < a->n && (cmp = strcmp(key_of(a->v[i]), key)) < 0) i++;
  if (pos) *pos = i;
  return i < a->n && cmp == 0 ? a->v[i] : NULL;
}

/* ---- the data -------------------------------------------------------------- */

/* One stored version of a tuple or of an attribute value, in one allocation
 * with its strings.  Only the member of its kind is set. */
typedef struct row_s {
  uint64_t id; /* the paging cursor: global, increasing */
  uint64_t created_rev, expired_rev;
  int is_attr;
  tc_tuple_t tuple;
  tc_attr_t attr;
} row_t;

/* One entry of the change log: a row created or expired at a revision, or
 * (op TC_CHANGE_SCHEMA, row NULL) a schema version stored there. */
typedef struct change_s {
  uint64_t rev;
  int op; /* enum tc_change_op */
  row_t *row;
  const char *version; /* TC_CHANGE_SCHEMA: the schema_t's, which the tenant keeps */
} change_t;

/* One schema version, in one allocation with its strings. */
typedef struct schema_s {
  const char *version, *text;
  int64_t created_at_ms;
} schema_t;

/* One stored data bundle, in one allocation with its name and payload. */
typedef struct bundle_s {
  const char *name;
  const uint8_t *payload;
  size_t len;
} bundle_t;

/* Everything stored under one tenant id.  The server, not the backend, checks
 * that a tenant exists before it writes, so a record may hold data without
 * having been created (name NULL): such a record is not a tenant to
 * tenant_get/list/delete. */
typedef struct tenant_s {
  char *id, *name;
  int64_t created_at_ms;
  uint64_t head;       /* the newest revision written, 0 if none */
  uint64_t pruned;     /* the newest revision whose changes retain dropped, 0 if none */
  vec_t tuples, attrs; /* row_t *, in id order */
  vec_t changes;       /* change_t *, in revision order */
  vec_t schemas;       /* schema_t *, in version order */
  vec_t bundles;       /* bundle_t *, in name order */
} tenant_t;

struct tc_backend_s {
  tc_completion_t finish; /* first: posted by destroy(), see finish() */
  const tc_host_api_t *host;
  char instance_id[33]; /* 128 random bits in hex */
  vec_t tenants;        /* tenant_t *, in id order */
  uint64_t revision;    /* the last revision given out */
  uint64_t row_id;      /* the last row id given out */
  uint64_t retain;      /* revisions the change log keeps; 0 = all */
  tc_backend_stats_t stats;
  size_t queued; /* operations posted, not yet run (metrics) */
  int closing;   /* destroy() was called: calls are refused */
  void (*destroy_cb)(void *arg);
  void *destroy_arg;
};

/* Unix epoch milliseconds.  (host->now_ms is a monotonic clock, not a date.) */
static int64_t wall_ms(void) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Copies len bytes of s to *p, moves *p past them and returns the copy. */
static char *pack(char **p, const void *s, size_t len) {
  char *copy = *p;
  if (len) memcpy(copy, s, len);
  *p += len;
  return copy;
}

static const char *pack_str(char **p, const char *s) { return pack(p, s, strlen(s) + 1); }

static row_t *row_new_tuple(const tc_tuple_t *t) {
  size_t size = sizeof(row_t) + strlen(t->entity_type) + strlen(t->entity_id) +
                strlen(t->relation) + strlen(t->subject_type) + strlen(t->subject_id) +
                strlen(t->subject_relation) + 6;
  row_t *row = calloc(1, size);
  if (!row) return NULL;
  char *p = (char *)(row + 1);
  row->tuple.entity_type = pack_str(&p, t->entity_type);
  row->tuple.entity_id = pack_str(&p, t->entity_id);
  row->tuple.relation = pack_str(&p, t->relation);
  row->tuple.subject_type = pack_str(&p, t->subject_type);
  row->tuple.subject_id = pack_str(&p, t->subject_id);
  row->tuple.subject_relation = pack_str(&p, t->subject_relation);
  return row;
}

static row_t *row_new_attr(const tc_attr_t *a) {
  size_t size = sizeof(row_t) + strlen(a->entity_type) + strlen(a->entity_id) +
                strlen(a->attribute) + 3 + a->value_len;
  row_t *row = calloc(1, size);
  if (!row) return NULL;
  char *p = (char *)(row + 1);
  row->is_attr = 1;
  row->attr.entity_type = pack_str(&p, a->entity_type);
  row->attr.entity_id = pack_str(&p, a->entity_id);
  row->attr.attribute = pack_str(&p, a->attribute);
  row->attr.value = (const uint8_t *)pack(&p, a->value, a->value_len);
  row->attr.value_len = a->value_len;
  return row;
}

static const char *tenant_key(const void *t) { return ((const tenant_t *)t)->id; }
static const char *schema_key(const void *s) { return ((const schema_t *)s)->version; }
static const char *bundle_key(const void *x) { return ((const bundle_t *)x)->name; }

static tenant_t *tenant_find(tc_backend_t *b, const char *id, size_t *pos) {
  return vec_find(&b->tenants, id, tenant_key, pos);
}

/* The record for id, added empty if there is none; NULL if out of memory. */
static tenant_t *tenant_touch(tc_backend_t *b, const char *id) {
  size_t pos;
  tenant_t *t = tenant_find(b, id, &pos);
  if (t) return t;
  if (vec_reserve(&b->tenants, 1) != 0 || !(t = calloc(1, sizeof *t))) return NULL;
  if (!(t->id = strdup(id))) {
    free(t);
    return NULL;
  }
  vec_insert(&b->tenants, pos, t);
  return t;
}

/* Makes the record a tenant (tenant_create): 0 or TC_ENOMEM. */
static int tenant_name(tenant_t *t, const char *name) {
  if (!(t->name = strdup(name))) return TC_ENOMEM;
  t->created_at_ms = wall_ms();
  return 0;
}

static void tenant_free(tenant_t *t) {
  vec_free(&t->tuples);
  vec_free(&t->attrs);
  vec_free(&t->changes);
  vec_free(&t->schemas);
  vec_free(&t->bundles);
  free(t->name);
  free(t->id);
  free(t);
}

static void backend_free(tc_backend_t *b) {
  for (size_t i = 0; i < b->tenants.n; i++) tenant_free(b->tenants.v[i]);
  free(b->tenants.v);
  free(b);
}

/* ---- filters ----------------------------------------------------------------- */

/* An unset member ("", or no ids) does not constrain. */
static int str_is(const char *s, const char *want) { return !*want || strcmp(s, want) == 0; }

static int str_in(const char *s, const char *const *set, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, set[i]) == 0) return 1;
  return n == 0;
}

static int tuple_matches(const tc_tuple_filter_t *f, const tc_tuple_t *t) {
  return str_is(t->entity_type, f->entity_type) &&
         str_in(t->entity_id, f->entity_ids, f->n_entity_ids) && str_is(t->relation, f->relation) &&
         str_is(t->subject_type, f->subject_type) &&
         str_in(t->subject_id, f->subject_ids, f->n_subject_ids) &&
         str_is(t->subject_relation, f->subject_relation);
}

static int attr_matches(const tc_attr_filter_t *f, const tc_attr_t *a) {
  return str_is(a->entity_type, f->entity_type) &&
         str_in(a->entity_id, f->entity_ids, f->n_entity_ids) &&
         str_in(a->attribute, f->attributes, f->n_attributes);
}

/* ---- writes ------------------------------------------------------------------ */

/* A change_t with room for it in t's log, or NULL if out of memory. */
static change_t *change_new(tenant_t *t) {
  change_t *c = malloc(sizeof *c);
  if (c && vec_reserve(&t->changes, 1) != 0) {
    free(c);
    c = NULL;
  }
  return c;
}

static void change_log(tenant_t *t, change_t *c, uint64_t rev, int op, row_t *row) {
  *c = (change_t){rev, op, row, NULL};
  vec_insert(&t->changes, t->changes.n, c);
}

/* Stores row (NULL: its allocation failed) as created at rev, with its
 * CREATE change: 0, or TC_ENOMEM with nothing changed. */
static int row_create(tc_backend_t *b, tenant_t *t, row_t *row, uint64_t rev) {
  vec_t *rows = row && row->is_attr ? &t->attrs : &t->tuples;
  change_t *c = row ? change_new(t) : NULL;
  if (!c || vec_reserve(rows, 1) != 0) {
    free(c);
    free(row);
    return TC_ENOMEM;
  }
  row->id = ++b->row_id;
  row->created_rev = rev;
  row->expired_rev = ACTIVE;
  vec_insert(rows, rows->n, row);
  change_log(t, c, rev, TC_CHANGE_CREATE, row);
  return 0;
}

/* Expires an active row at rev, with its DELETE change: 0, or TC_ENOMEM with
 * nothing changed. */
static int row_expire(tenant_t *t, row_t *row, uint64_t rev) {
  change_t *c = change_new(t);
  if (!c) return TC_ENOMEM;
  row->expired_rev = rev;
  change_log(t, c, rev, TC_CHANGE_DELETE, row);
  return 0;
}

static row_t *tuple_find_active(const tenant_t *t, const tc_tuple_t *want) {
  for (size_t i = 0; i < t->tuples.n; i++) {
    row_t *row = t->tuples.v[i];
    const tc_tuple_t *r = &row->tuple;
    if (row->expired_rev == ACTIVE && !strcmp(r->entity_type, want->entity_type) &&
        !strcmp(r->entity_id, want->entity_id) && !strcmp(r->relation, want->relation) &&
        !strcmp(r->subject_type, want->subject_type) && !strcmp(r->subject_id, want->subject_id) &&
        !strcmp(r->subject_relation, want->subject_relation))
      return row;
  }
  return NULL;
}

/* The active value of (entity, attribute), if any. */
static row_t *attr_find_active(const tenant_t *t, const tc_attr_t *want) {
  for (size_t i = 0; i < t->attrs.n; i++) {
    row_t *row = t->attrs.v[i];
    const tc_attr_t *r = &row->attr;
    if (row->expired_rev == ACTIVE && !strcmp(r->entity_type, want->entity_type) &&
        !strcmp(r->entity_id, want->entity_id) && !strcmp(r->attribute, want->attribute))
      return row;
  }
  return NULL;
}

/* Takes back a write that failed part-way.  Each of its steps logged a
 * change at rev, so undoing the log from its end restores the rows. */
static void write_undo(tenant_t *t, uint64_t rev) {
  while (t->changes.n > 0) {
    change_t *c = t->changes.v[t->changes.n - 1];
    if (c->rev != rev) break;
    t->changes.n--;
    if (c->op == TC_CHANGE_DELETE) {
      c->row->expired_rev = ACTIVE;
    } else {
      (c->row->is_attr ? &t->attrs : &t->tuples)->n--; /* the newest row of its array */
      free(c->row);
    }
    free(c);
  }
}

/* Applies a batch at revision rev in the ABI's order of effects: tuple
 * deletes, attribute deletes (filters, then exact rows), tuples, attributes.
 * All or nothing. */
static int write_apply(tc_backend_t *b, tenant_t *t, const tc_write_batch_t *w, uint64_t rev) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && w->tuple_delete && i < t->tuples.n; i++) {
    row_t *row = t->tuples.v[i];
    if (row->expired_rev == ACTIVE && tuple_matches(w->tuple_delete, &row->tuple))
      rc = row_expire(t, row, rev);
  }
  for (size_t i = 0; rc == 0 && w->attr_delete && i < t->attrs.n; i++) {
    row_t *row = t->attrs.v[i];
    if (row->expired_rev == ACTIVE && attr_matches(w->attr_delete, &row->attr))
      rc = row_expire(t, row, rev);
  }
  for (size_t i = 0; rc == 0 && i < w->n_tuple_deletes; i++) {
    row_t *row = tuple_find_active(t, &w->tuple_deletes[i]);
    if (row) rc = row_expire(t, row, rev);
  }
  for (size_t i = 0; rc == 0 && i < w->n_attr_deletes; i++) {
    row_t *row = attr_find_active(t, &w->attr_deletes[i]);
    if (row) rc = row_expire(t, row, rev);
  }
  /* A tuple identical to an active one (or to one earlier in the batch) is a no-op. */
  for (size_t i = 0; rc == 0 && i < w->n_tuples; i++)
    if (!tuple_find_active(t, &w->tuples[i]))
      rc = row_create(b, t, row_new_tuple(&w->tuples[i]), rev);
  /* An attribute replaces the active value: its DELETE, then the new CREATE. */
  for (size_t i = 0; rc == 0 && i < w->n_attrs; i++) {
    row_t *old = attr_find_active(t, &w->attrs[i]);
    if (old) rc = row_expire(t, old, rev);
    if (rc == 0) rc = row_create(b, t, row_new_attr(&w->attrs[i]), rev);
  }
  if (rc != 0) write_undo(t, rev);
  return rc;
}

/* ---- operations: a call's copied inputs, queued until a later loop turn ----- */

typedef struct op_s op_t;
struct op_s {
  tc_completion_t c; /* first: op_run() gets the op back from it */
  tc_backend_t *b;
  void (*run)(op_t *op); /* does the work and calls back */
  tc_backend_cb_t cb;
  void *arg;
  tc_arena_t mem; /* the copies of the inputs below */
  int nomem;      /* a copy failed: the call answers TC_ENOMEM */
  /* Inputs, as the call needs them.  key: a tenant name, a schema version or
   * a list position. */
  const char *tenant_id, *key, *text;
  /* Positions, from the call's tokens: a read is at `revision` (NOW: the
   * head); read_changes reads after `revision` up to `upto` (NOW: no bound)
   * and keeps both tokens as given, to hand back unchanged. */
  uint64_t revision, upto;
  const char *token, *upto_token;
  tc_cursor_t after;
  uint32_t limit;
  int attrs; /* a read of attributes, not tuples */
  int feed;  /* read_feed: schema writes among the changes */
  tc_tuple_filter_t tuple_filter;
  tc_attr_filter_t attr_filter;
  tc_write_batch_t batch;
  tc_bundle_t *bundles; /* bundle_write's, copies in mem */
  size_t n_bundles;
};

/* A copy of s in the op's arena ("" for NULL). */
static const char *op_str(op_t *op, const char *s) {
  const char *copy = tc_arena_strdup(&op->mem, s);
  if (!copy) op->nomem = 1;
  return copy ? copy : "";
}

/* Notes a failed copy of the support library's (0 or TC_ENOMEM). */
static void op_copied(op_t *op, int rc) {
  if (rc != 0) op->nomem = 1;
}

static void op_free(op_t *op) {
  tc_arena_free(&op->mem);
  free(op);
}

/* Runs on the loop thread, a later turn than the call that queued it. */
static void op_run(tc_completion_t *c) {
  op_t *op = (op_t *)c;
  op->b->queued--;
  op->run(op);
  op_free(op);
}

/* A new operation for a call on tenant_id, answered through cb, with a copy
 * of the call's one string input, key (a name, version or cursor; NULL
 * copies as ""), or NULL: refused after destroy(), or out of memory
 * (op_submit() tells which). */
static op_t *op_new(tc_backend_t *b, void (*run)(op_t *), const char *tenant_id, const char *key,
                    tc_backend_cb_t cb, void *arg) {
  op_t *op = b->closing ? NULL : calloc(1, sizeof *op);
  if (!op) return NULL;
  op->c.run = op_run;
  op->b = b;
  op->run = run;
  op->cb = cb;
  op->arg = arg;
  op->tenant_id = op_str(op, tenant_id);
  op->key = op_str(op, key);
  return op;
}

/* Queues op behind everything submitted before it: 0.  Or refuses the call,
 * with no callback then: TC_EUNAVAILABLE after destroy(), TC_ENOMEM if op or
 * a copy of its inputs could not be made. */
static int op_submit(tc_backend_t *b, op_t *op) {
  if (!op) return b->closing ? TC_EUNAVAILABLE : TC_ENOMEM;
  if (op->nomem) {
    op_free(op);
    return TC_ENOMEM;
  }
  b->queued++;
  b->host->post(b->host, &op->c);
  return 0;
}

/* ---- running the operations (loop thread) ------------------------------------ */

static void reply_tenant(op_t *op, int status, const tenant_t *t) {
  tc_tenant_row_t row = {0};
  if (status == 0) row = (tc_tenant_row_t){t->id, t->name, t->created_at_ms};
  op->cb.tenant(op->arg, status, status == 0 ? &row : NULL);
}

static void run_tenant_create(op_t *op) {
  tenant_t *t = tenant_touch(op->b, op->tenant_id);
  int status = !t ? TC_ENOMEM : t->name ? TC_EUNIQUE : tenant_name(t, op->key);
  reply_tenant(op, status, t);
}

static void run_tenant_get(op_t *op) {
  tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  reply_tenant(op, t && t->name ? 0 : TC_ENOTFOUND, t);
}

static void run_tenant_delete(op_t *op) {
  size_t pos;
  tenant_t *t = tenant_find(op->b, op->tenant_id, &pos);
  if (!t || !t->name) {
    reply_tenant(op, TC_ENOTFOUND, NULL);
    return;
  }
  reply_tenant(op, 0, t); /* the row points into t: free it after */
  vec_remove(&op->b->tenants, pos);
  tenant_free(t);
}

static void run_tenant_list(op_t *op) {
  const vec_t *all = &op->b->tenants;
  size_t i;
  tenant_find(op->b, op->key, &i); /* the first id >= after */
  tc_tenant_row_t *rows = malloc((all->n - i + 1) * sizeof *rows);
  if (!rows) {
    op->cb.tenants(op->arg, TC_ENOMEM, NULL, 0, NULL);
    return;
  }
  size_t n = 0;
  const char *next = NULL;
  for (; i < all->n; i++) {
    const tenant_t *t = all->v[i];
    if (!t->name) continue; /* data only */
    if (op->limit && n == op->limit) {
      next = t->id;
      break;
    }
    rows[n++] = (tc_tenant_row_t){t->id, t->name, t->created_at_ms};
  }
  op->cb.tenants(op->arg, 0, rows, n, next);
  free(rows);
}

static void prune_changes(tc_backend_t *b);

static void run_schema_write(op_t *op) {
  tenant_t *t = tenant_touch(op->b, op->tenant_id);
  size_t pos;
  int status = !t ? TC_ENOMEM : vec_find(&t->schemas, op->key, schema_key, &pos) ? TC_EUNIQUE : 0;
  schema_t *s = NULL;
  change_t *c = NULL;
  if (status == 0) {
    s = malloc(sizeof *s + strlen(op->key) + strlen(op->text) + 2);
    if (!s || vec_reserve(&t->schemas, 1) != 0 || !(c = change_new(t))) status = TC_ENOMEM;
  }
  if (status == 0) {
    char *p = (char *)(s + 1);
    s->version = pack_str(&p, op->key);
    s->text = pack_str(&p, op->text);
    s->created_at_ms = wall_ms();
    vec_insert(&t->schemas, pos, s);
    /* A revision of its own, which read_feed reports and read_changes passes over. */
    change_log(t, c, op->b->revision = t->head = op->b->revision + 1, TC_CHANGE_SCHEMA, NULL);
    c->version = s->version;
    prune_changes(op->b);
  } else {
    free(s);
  }
  op->cb.status(op->arg, status);
}

static void run_schema_read(op_t *op) {
  const tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  const schema_t *s = NULL;
  if (t && t->schemas.n) /* "" is the head: the largest version */
    s = *op->key ? vec_find(&t->schemas, op->key, schema_key, NULL)
                 : t->schemas.v[t->schemas.n - 1];
  if (s)
    op->cb.schema(op->arg, 0, s->version, s->text);
  else
    op->cb.schema(op->arg, TC_ESCHEMA_NOT_FOUND, NULL, NULL);
}

/* v2.5: whether the tenant exists and its head schema, the text only when
 * the head is not the version the caller holds (key). */
static void run_tenant_state(op_t *op) {
  const tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  if (!t || !t->name) {
    op->cb.tenant_state(op->arg, TC_ENOTFOUND, NULL, NULL);
    return;
  }
  const schema_t *s = t->schemas.n ? t->schemas.v[t->schemas.n - 1] : NULL;
  if (!s)
    op->cb.tenant_state(op->arg, 0, "", NULL);
  else
    op->cb.tenant_state(op->arg, 0, s->version, strcmp(s->version, op->key) ? s->text : NULL);
}

/* Stores one bundle, replacing one of the same name: 0 or TC_ENOMEM. */
static int bundle_put(tenant_t *t, const tc_bundle_t *in) {
  size_t pos;
  bundle_t *old = vec_find(&t->bundles, in->name, bundle_key, &pos);
  bundle_t *x = malloc(sizeof *x + strlen(in->name) + 1 + in->payload_len);
  if (!x || (!old && vec_reserve(&t->bundles, 1) != 0)) {
    free(x);
    return TC_ENOMEM;
  }
  char *p = (char *)(x + 1);
  x->name = pack_str(&p, in->name);
  x->payload = (const uint8_t *)pack(&p, in->payload, in->payload_len);
  x->len = in->payload_len;
  if (old) {
    free(old);
    t->bundles.v[pos] = x;
  } else {
    vec_insert(&t->bundles, pos, x);
  }
  return 0;
}

/* All or nothing: room for every new name is reserved before the first put,
 * so only a put's own allocation can fail, and then earlier ones stay.  That
 * is a partial write on out of memory only. */
static void run_bundle_write(op_t *op) {
  tenant_t *t = tenant_touch(op->b, op->tenant_id);
  int status = !t || vec_reserve(&t->bundles, op->n_bundles) != 0 ? TC_ENOMEM : 0;
  for (size_t i = 0; status == 0 && i < op->n_bundles; i++) status = bundle_put(t, &op->bundles[i]);
  op->cb.status(op->arg, status);
}

static void run_bundle_read(op_t *op) {
  const tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  const bundle_t *x = t ? vec_find(&t->bundles, op->key, bundle_key, NULL) : NULL;
  if (x)
    op->cb.bundle(op->arg, 0, x->payload, x->len);
  else
    op->cb.bundle(op->arg, TC_EBUNDLE_NOT_FOUND, NULL, 0);
}

static void run_bundle_delete(op_t *op) {
  tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  size_t pos;
  bundle_t *x = t ? vec_find(&t->bundles, op->key, bundle_key, &pos) : NULL;
  if (x) {
    vec_remove(&t->bundles, pos);
    free(x);
  }
  op->cb.status(op->arg, 0);
}

static void run_schema_list(op_t *op) {
  const tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  const vec_t *all = t ? &t->schemas : &no_items;
  const char *head = all->n ? schema_key(all->v[all->n - 1]) : NULL;
  /* end: how many versions are <= before */
  size_t end = all->n;
  if (*op->key && vec_find(all, op->key, schema_key, &end)) end++;
  tc_schema_row_t *rows = malloc((end + 1) * sizeof *rows);
  if (!rows) {
    op->cb.schemas(op->arg, TC_ENOMEM, NULL, NULL, 0, NULL);
    return;
  }
  size_t n = 0;
  const char *next = NULL;
  for (size_t i = end; i-- > 0;) { /* newest first */
    const schema_t *s = all->v[i];
    if (op->limit && n == op->limit) {
      next = s->version;
      break;
    }
    rows[n++] = (tc_schema_row_t){s->version, s->created_at_ms};
  }
  op->cb.schemas(op->arg, 0, head, rows, n, next);
  free(rows);
}

/* With retain = N: drops the changes of revisions older than the last N.
 * Each tenant remembers the newest revision it dropped (`pruned`): a caller
 * reading changes from before it has lost history. */
static void prune_changes(tc_backend_t *b) {
  if (!b->retain || b->revision <= b->retain) return;
  uint64_t oldest = b->revision - b->retain + 1; /* the oldest revision kept */
  for (size_t i = 0; i < b->tenants.n; i++) {
    tenant_t *t = b->tenants.v[i];
    vec_t *log = &t->changes;
    size_t drop = 0;
    for (change_t *c; drop < log->n && (c = log->v[drop])->rev < oldest; drop++) {
      t->pruned = c->rev;
      free(c);
    }
    if (drop) memmove(log->v, log->v + drop, (log->n - drop) * sizeof *log->v);
    log->n -= drop;
  }
}

static void run_write(op_t *op) {
  tc_backend_t *b = op->b;
  uint64_t rev = b->revision + 1; /* given out even when nothing changes */
  tenant_t *t = tenant_touch(b, op->batch.tenant_id);
  int status = t ? write_apply(b, t, &op->batch, rev) : TC_ENOMEM;
  if (status == 0) b->revision = t->head = rev;
  if (status == 0) prune_changes(b);
  b->stats.writes++;
  tc_rev_token_reply(op->cb.write, op->arg, status, b->instance_id, rev);
}

/* The next row from index *i that a read at rev sees: visible at rev, at or
 * after the cursor, matching the op's filter; NULL at the end. */
static const row_t *scan_next(const op_t *op, const vec_t *rows, size_t *i, uint64_t rev) {
  while (*i < rows->n) {
    const row_t *row = rows->v[(*i)++];
    if (row->id < op->after || row->created_rev > rev || rev >= row->expired_rev) continue;
    if (op->attrs ? attr_matches(&op->attr_filter, &row->attr)
                  : tuple_matches(&op->tuple_filter, &row->tuple))
      return row;
  }
  return NULL;
}

/* read_tuples and read_attrs: the page of rows (of the kind asked for) a read
 * at the revision sees from the cursor on; `next` is the row after it. */
static void run_read(op_t *op) {
  const tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  const vec_t *all = !t ? &no_items : op->attrs ? &t->attrs : &t->tuples;
  uint64_t rev = op->revision;
  op->b->stats.reads++;
  size_t room = (op->limit && op->limit < all->n ? op->limit : all->n) + 1;
  tc_tuple_t *tuples = op->attrs ? NULL : malloc(room * sizeof *tuples);
  tc_attr_t *attrs = op->attrs ? malloc(room * sizeof *attrs) : NULL;
  int status = tuples || attrs ? 0 : TC_ENOMEM;
  size_t i = 0, n = 0;
  tc_cursor_t next = 0;
  for (const row_t *row; status == 0 && (row = scan_next(op, all, &i, rev));) {
    if (op->limit && n == op->limit) {
      next = row->id;
      break;
    }
    if (op->attrs)
      attrs[n++] = row->attr;
    else
      tuples[n++] = row->tuple;
  }
  if (op->attrs)
    op->cb.attrs(op->arg, status, attrs, n, next);
  else
    op->cb.tuples(op->arg, status, tuples, n, next);
  free(tuples);
  free(attrs);
}

/* The tenant's head: the newest revision written to it (0, before its first
 * write, is a position too: a read there sees nothing). */
static void run_head(op_t *op) {
  const tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  tc_rev_token_reply(op->cb.head, op->arg, 0, op->b->instance_id, t ? t->head : 0);
}

static uint64_t change_rev(const vec_t *log, size_t i) {
  return ((const change_t *)log->v[i])->rev;
}

/* Answers read_feed with items, or read_changes with their changes. */
static void answer_changes(op_t *op, int status, const tc_feed_item_t *items, size_t n,
                           const char *last) {
  if (op->feed) {
    op->cb.feed(op->arg, status, status ? NULL : items, status ? 0 : n, status ? "" : last);
    return;
  }
  tc_change_t *changes = status ? NULL : malloc((n + 1) * sizeof *changes);
  if (!status && !changes) status = TC_ENOMEM;
  for (size_t i = 0; !status && i < n; i++) changes[i] = items[i].change;
  op->cb.changes(op->arg, status, changes, status ? 0 : n, status ? "" : last);
  free(changes);
}

/* The changes of the revisions after op->revision, up to op->upto, in whole
 * revisions; `last` is where to continue.  The changes of one revision share
 * one token, minted here and freed after the callback. */
static void run_read_changes(op_t *op) {
  const tenant_t *t = tenant_find(op->b, op->tenant_id, NULL);
  const vec_t *log = t ? &t->changes : &no_items;
  uint64_t after = op->revision, upto = op->upto;
  op->b->stats.change_reads++;
  if (t && after < t->pruned) { /* changes after `after` were dropped */
    op->cb.changes(op->arg, TC_EOUT_OF_RANGE, NULL, 0, "");
    return;
  }
  size_t first = 0;
  while (first < log->n && change_rev(log, first) <= after) first++;
  /* Whole revisions: once limit changes are in, stop where a revision starts. */
  size_t end = first;
  while (
      end < log->n && change_rev(log, end) <= upto &&
      !(op->limit && end - first >= op->limit && change_rev(log, end) != change_rev(log, end - 1)))
    end++;
  /* Stopped early: continue after the last revision returned.  Otherwise all
   * is read up to `upto`, or up to the head (past writes that changed
   * nothing); never before `after`. */
  int complete = end == log->n || change_rev(log, end) > upto;
  uint64_t head = t ? t->head : 0;
  uint64_t last = !complete ? change_rev(log, end - 1) : upto != NOW ? upto : head;
  if (last < after) last = after;

  tc_feed_item_t *items = malloc((end - first + 1) * sizeof *items);
  size_t n = 0;
  vec_t tokens = {0}; /* char *, one per revision returned */
  int status = items ? 0 : TC_ENOMEM;
  for (size_t i = first; status == 0 && i < end; i++) {
    const change_t *c = log->v[i];
    if (i == first || c->rev != change_rev(log, i - 1)) { /* a new revision: its token */
      char *token =
          vec_reserve(&tokens, 1) == 0 ? tc_rev_token_encode(op->b->instance_id, c->rev) : NULL;
      if (!token) {
        status = TC_ENOMEM;
        break;
      }
      vec_insert(&tokens, tokens.n, token);
    }
    if (c->op == TC_CHANGE_SCHEMA && !op->feed) continue; /* read_changes passes over it */
    const row_t *row = c->row;
    items[n++] =
        (tc_feed_item_t){{tokens.v[tokens.n - 1], c->op, row && !row->is_attr ? &row->tuple : NULL,
                          row && row->is_attr ? &row->attr : NULL},
                         c->version};
  }
  /* `last` as a token: the caller's own string when it names the same
   * position, so a caller that compares tokens sees it unchanged. */
  char *minted = NULL;
  const char *last_token = last == after ? op->token
                           : *op->upto_token && last == upto
                               ? op->upto_token
                               : (minted = tc_rev_token_encode(op->b->instance_id, last));
  if (!last_token) status = TC_ENOMEM;
  answer_changes(op, status, items, n, last_token);
  free(minted);
  vec_free(&tokens);
  free(items);
}

/* ---- the calls: copy the inputs, queue ------------------------------------------ */

static int tenant_create(tc_backend_t *b, const char *id, const char *name, tc_tenant_cb cb,
                         void *arg) {
  return op_submit(b, op_new(b, run_tenant_create, id, name, (tc_backend_cb_t){.tenant = cb}, arg));
}

static int tenant_get(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
  return op_submit(b, op_new(b, run_tenant_get, id, NULL, (tc_backend_cb_t){.tenant = cb}, arg));
}

static int tenant_delete(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg) {
  return op_submit(b, op_new(b, run_tenant_delete, id, NULL, (tc_backend_cb_t){.tenant = cb}, arg));
}

static int tenant_list(tc_backend_t *b, const char *after, uint32_t limit, tc_tenants_cb cb,
                       void *arg) {
  op_t *op = op_new(b, run_tenant_list, NULL, after, (tc_backend_cb_t){.tenants = cb}, arg);
  if (op) op->limit = limit;
  return op_submit(b, op);
}

static int schema_write(tc_backend_t *b, const char *tenant_id, const char *version,
                        const char *text, tc_status_cb cb, void *arg) {
  op_t *op = op_new(b, run_schema_write, tenant_id, version, (tc_backend_cb_t){.status = cb}, arg);
  if (op) op->text = op_str(op, text);
  return op_submit(b, op);
}

static int schema_read(tc_backend_t *b, const char *tenant_id, const char *version, tc_schema_cb cb,
                       void *arg) {
  return op_submit(
      b, op_new(b, run_schema_read, tenant_id, version, (tc_backend_cb_t){.schema = cb}, arg));
}

static int tenant_state(tc_backend_t *b, const char *id, const char *known_version,
                        tc_tenant_state_cb cb, void *arg) {
  return op_submit(b, op_new(b, run_tenant_state, id, known_version,
                             (tc_backend_cb_t){.tenant_state = cb}, arg));
}

static int schema_list(tc_backend_t *b, const char *tenant_id, const char *before, uint32_t limit,
                       tc_schemas_cb cb, void *arg) {
  op_t *op = op_new(b, run_schema_list, tenant_id, before, (tc_backend_cb_t){.schemas = cb}, arg);
  if (op) op->limit = limit;
  return op_submit(b, op);
}

static int bundle_write(tc_backend_t *b, const char *tenant_id, const tc_bundle_t *bundles,
                        size_t n, tc_status_cb cb, void *arg) {
  op_t *op = op_new(b, run_bundle_write, tenant_id, NULL, (tc_backend_cb_t){.status = cb}, arg);
  if (!op) return op_submit(b, op);
  op->bundles = tc_arena_alloc(&op->mem, (n + 1) * sizeof *op->bundles);
  op_copied(op, op->bundles ? 0 : TC_ENOMEM);
  for (size_t i = 0; op->bundles && i < n; i++) {
    uint8_t *copy = tc_arena_alloc(&op->mem, bundles[i].payload_len + 1);
    op_copied(op, copy ? 0 : TC_ENOMEM);
    if (copy) memcpy(copy, bundles[i].payload, bundles[i].payload_len);
    op->bundles[i] = (tc_bundle_t){op_str(op, bundles[i].name), copy, bundles[i].payload_len};
  }
  op->n_bundles = n;
  return op_submit(b, op);
}

static int bundle_read(tc_backend_t *b, const char *tenant_id, const char *name, tc_bundle_cb cb,
                       void *arg) {
  return op_submit(
      b, op_new(b, run_bundle_read, tenant_id, name, (tc_backend_cb_t){.bundle = cb}, arg));
}

/* v2.3 readiness: memory is always there; the answer still comes through
 * the queue, on a later turn, like every callback. */
static void run_ping(op_t *op) { op->cb.status(op->arg, 0); }

static int ping(tc_backend_t *b, tc_status_cb cb, void *arg) {
  return op_submit(b, op_new(b, run_ping, NULL, NULL, (tc_backend_cb_t){.status = cb}, arg));
}

static int bundle_delete(tc_backend_t *b, const char *tenant_id, const char *name, tc_status_cb cb,
                         void *arg) {
  return op_submit(
      b, op_new(b, run_bundle_delete, tenant_id, name, (tc_backend_cb_t){.status = cb}, arg));
}

static int write_batch(tc_backend_t *b, const tc_write_batch_t *batch, tc_write_cb cb, void *arg) {
  op_t *op = op_new(b, run_write, batch->tenant_id, NULL, (tc_backend_cb_t){.write = cb}, arg);
  if (op) op_copied(op, tc_copy_write_batch(&op->mem, &op->batch, batch));
  return op_submit(b, op);
}

/* The revision of a token: NOW for "" (the head).  0, or TC_ESNAP_TOKEN
 * for a token this database did not mint (the server checks tokens with
 * token_check first, so that is a caller's bug). */
static int token_revision(tc_backend_t *b, const char *token, uint64_t *rev) {
  *rev = NOW;
  if (!token || !*token) return 0;
  char *why = NULL;
  int rc = tc_rev_token_decode(token, b->instance_id, rev, &why);
  free(why);
  return rc;
}

static int token_check(tc_backend_t *b, const char *token, char **errmsg) {
  *errmsg = NULL;
  return tc_rev_token_check(token, b->instance_id, b->revision, errmsg);
}

/* A read of tuples (tf) or attributes (af) at token, answered through cb. */
static int submit_read(tc_backend_t *b, const char *tenant_id, const char *token,
                       const tc_tuple_filter_t *tf, const tc_attr_filter_t *af, tc_cursor_t after,
                       uint32_t limit, tc_backend_cb_t cb, void *arg) {
  uint64_t rev;
  int status = token_revision(b, token, &rev);
  if (status != 0) return status;
  op_t *op = op_new(b, run_read, tenant_id, NULL, cb, arg);
  if (op) {
    op->revision = rev;
    op->after = after;
    op->limit = limit;
    op->attrs = af != NULL;
    op_copied(op, tf ? tc_copy_tuple_filter(&op->mem, &op->tuple_filter, tf)
                     : tc_copy_attr_filter(&op->mem, &op->attr_filter, af));
  }
  return op_submit(b, op);
}

static int read_tuples(tc_backend_t *b, const char *tenant_id, const char *token,
                       const tc_tuple_filter_t *f, tc_cursor_t after, uint32_t limit,
                       tc_tuples_cb cb, void *arg) {
  return submit_read(b, tenant_id, token, f, NULL, after, limit, (tc_backend_cb_t){.tuples = cb},
                     arg);
}

static int read_attrs(tc_backend_t *b, const char *tenant_id, const char *token,
                      const tc_attr_filter_t *f, tc_cursor_t after, uint32_t limit, tc_attrs_cb cb,
                      void *arg) {
  return submit_read(b, tenant_id, token, NULL, f, after, limit, (tc_backend_cb_t){.attrs = cb},
                     arg);
}

static int head(tc_backend_t *b, const char *tenant_id, tc_head_cb cb, void *arg) {
  return op_submit(b, op_new(b, run_head, tenant_id, NULL, (tc_backend_cb_t){.head = cb}, arg));
}

/* after: a token, not "" (a feed starts from a position); upto: NULL or a
 * token. */
/* read_changes (changes set) or read_feed (feed set). */
static int submit_changes(tc_backend_t *b, const char *tenant_id, const char *after,
                          const char *upto, uint32_t limit, void *arg, tc_changes_cb changes,
                          tc_feed_cb feed) {
  uint64_t from, to = NOW;
  if (!after || !*after) return TC_EINVAL;
  int rc = token_revision(b, after, &from);
  if (rc == 0 && upto && *upto) rc = token_revision(b, upto, &to);
  if (rc != 0) return rc;
  tc_backend_cb_t cb =
      feed ? (tc_backend_cb_t){.feed = feed} : (tc_backend_cb_t){.changes = changes};
  op_t *op = op_new(b, run_read_changes, tenant_id, NULL, cb, arg);
  if (op) {
    op->feed = feed != NULL;
    op->revision = from;
    op->upto = to;
    op->token = op_str(op, after);
    op->upto_token = op_str(op, upto);
    op->limit = limit;
  }
  return op_submit(b, op);
}

static int read_changes(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                        uint32_t limit, tc_changes_cb cb, void *arg) {
  return submit_changes(b, tenant_id, after, upto, limit, arg, cb, NULL);
}

/* read_changes with the schema writes. */
static int read_feed(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                     uint32_t limit, tc_feed_cb cb, void *arg) {
  return submit_changes(b, tenant_id, after, upto, limit, arg, NULL, cb);
}

/* Loop thread, like every call here. */
static void stats(tc_backend_t *b, tc_backend_stats_t *out) { *out = b->stats; }

/* v2.2, optional: what /metrics shows of a backend.  The example has no
 * connections; it reports itself as a pool of one named "memory", in use
 * never (nothing runs between loop turns), with its posted operations
 * waiting. */
static void metrics(tc_backend_t *b, tc_backend_metric_fn emit, void *arg) {
  emit(arg, TC_BACKEND_METRIC_POOL_OPEN, "memory", 1);
  emit(arg, TC_BACKEND_METRIC_POOL_IN_USE, "memory", 0);
  emit(arg, TC_BACKEND_METRIC_POOL_WAITING, "memory", b->queued);
}

static const char *instance_id(tc_backend_t *b) { return b->instance_id; }

/* ---- create and destroy ------------------------------------------------------- */

/* Posted by destroy() behind every queued operation, so it runs after them. */
static void finish(tc_completion_t *c) {
  tc_backend_t *b = (tc_backend_t *)c;
  void (*cb)(void *) = b->destroy_cb;
  void *arg = b->destroy_arg;
  backend_free(b);
  if (cb) cb(arg);
}

static void destroy(tc_backend_t *b, void (*cb)(void *arg), void *arg) {
  b->closing = 1;
  b->destroy_cb = cb;
  b->destroy_arg = arg;
  b->finish.run = finish;
  b->host->post(b->host, &b->finish);
}

/* options: the example has none to read. */
static int create(const tc_host_api_t *host, const char *uri, const char *const *options,
                  tc_backend_t **out, char **errmsg) {
  (void)options;
  char msg[256];
  *out = NULL;
  *errmsg = NULL;
  int rc = tc_host_check(host, "example", errmsg);
  if (rc) return rc;
  unsigned long long retain = 0;
  char extra;
  if (uri && *uri && strcmp(uri, URI) != 0 &&
      (sscanf(uri, URI "retain=%llu%c", &retain, &extra) != 1 || retain == 0)) {
    snprintf(msg, sizeof msg,
             "example backend: uri must be \"\", \"%s\" or \"%sretain=N\" (N >= 1), found \"%s\"",
             URI, URI, uri);
    *errmsg = strdup(msg);
    return TC_EINVAL;
  }
  tc_backend_t *b = calloc(1, sizeof *b);
  if (!b) return TC_ENOMEM;
  b->host = host;
  b->retain = retain;

  /* A new database each time, so a new identity: 128 random bits. */
  unsigned char rnd[16];
  rc = uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL);
  if (rc != 0) {
    snprintf(msg, sizeof msg, "example backend: no random instance id: %s", uv_strerror(rc));
    *errmsg = strdup(msg);
    free(b);
    return TC_EINTERNAL;
  }
  for (size_t i = 0; i < sizeof rnd; i++) snprintf(b->instance_id + 2 * i, 3, "%02x", rnd[i]);

  tenant_t *t1 = tenant_touch(b, "t1"); /* Permify's default tenant */
  if (!t1 || tenant_name(t1, "example tenant") != 0) {
    backend_free(b);
    return TC_ENOMEM;
  }
  host->log(TC_LOG_DEBUG, "example backend: created, instance %s", b->instance_id);
  *out = b;
  return 0;
}

static const tc_backend_api_t api = {
    TC_BACKEND_API_HEADER("example", TC_VERSION), /* TC_VERSION: from the build */
    .create = create,
    .admin = NULL, /* no administrative commands: nothing to migrate */
    .destroy = destroy,
    .instance_id = instance_id,
    .token_check = token_check,
    .tenant_create = tenant_create,
    .tenant_get = tenant_get,
    .tenant_delete = tenant_delete,
    .tenant_list = tenant_list,
    .schema_write = schema_write,
    .schema_read = schema_read,
    .schema_list = schema_list,
    .write = write_batch,
    .read_tuples = read_tuples,
    .read_attrs = read_attrs,
    .head = head,
    .read_changes = read_changes,
    .stats = stats,
    .bundle_write = bundle_write,
    .bundle_read = bundle_read,
    .bundle_delete = bundle_delete,
    .metrics = metrics,
    .ping = ping,
    .read_feed = read_feed,
    .tenant_state = tenant_state,
};

/* The one exported symbol (the build hides everything else). */
TC_BACKEND_ENTRY(api)
