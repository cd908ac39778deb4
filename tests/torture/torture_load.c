/* The load: writers (each on one tenant, one operation at a time, every
 * answer recorded) and watchers (each on one tenant, dropping and resuming
 * from its last token on a node picked at random; the slow ones stop
 * reading for seconds at a time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "any.h"
#include "base/v1/service.pb-c.h"
#include "torture.h"
#include "tt_api.h"

const char *const torture_op_names[OP_KINDS] = {"single", "batch",  "attribute",
                                                "mark",   "delete", "bundle"};

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int torture_parse_item(const char *id, int *k, int *w, int *n, int *x) {
  int used = 0;
  if (sscanf(id, "k%dw%dn%dx%d%n", k, w, n, x, &used) != 4 || id[used]) return -1;
  return 0;
}

/* ---- writers --------------------------------------------------------------- */

#define MAX_ITEMS 24

typedef struct {
  char id[MAX_ITEMS][48];
  Base__V1__Entity ent[MAX_ITEMS];
  Base__V1__Subject sub[MAX_ITEMS];
  Base__V1__Tuple tup[MAX_ITEMS];
  Base__V1__Tuple *tp[MAX_ITEMS];
} items_t;

/* A long subject id for batches: big messages fill a slow watcher's
 * connection window sooner, so the server's own queue is what overflows. */
#define WIDE_USER                                                                 \
  "u-wide-0123456789012345678901234567890123456789012345678901234567890123456789" \
  "0123456789012345678901234567890123456789"

/* Tuples doc:<base>x<i>#<rel>@user:u (user WIDE_USER for viewers), i < n. */
static void fill_items(items_t *it, const char *base, int n, const char *rel) {
  for (int i = 0; i < n; i++) {
    snprintf(it->id[i], sizeof it->id[i], "%sx%d", base, i);
    base__v1__entity__init(&it->ent[i]);
    base__v1__subject__init(&it->sub[i]);
    base__v1__tuple__init(&it->tup[i]);
    it->ent[i].type = "doc";
    it->ent[i].id = it->id[i];
    it->sub[i].type = "user";
    it->sub[i].id = strcmp(rel, "viewer") ? "u" : WIDE_USER;
    it->tup[i].entity = &it->ent[i];
    it->tup[i].relation = (char *)rel;
    it->tup[i].subject = &it->sub[i];
    it->tp[i] = &it->tup[i];
  }
}

static int call(tc_client_t *c, const char *method, const ProtobufCMessage *req) {
  return tc_client_unary(c, method, req, NULL, NULL, NULL, NULL, TORTURE_TIMEOUT_MS);
}

static int data_write(tc_client_t *c, const char *tenant, Base__V1__Tuple **t, size_t nt,
                      Base__V1__Attribute **a, size_t na) {
  Base__V1__DataWriteRequest req;
  Base__V1__DataWriteRequestMetadata md;
  tt_data_write_req(&req, &md, tenant, t, nt, a, na);
  return call(c, "/base.v1.Data/Write", &req.base);
}

static int attr_write(tc_client_t *c, const char *tenant, const char *eid, int value) {
  Base__V1__IntegerValue v = BASE__V1__INTEGER_VALUE__INIT;
  v.data = value;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  if (tc_any_pack(&v.base, &any) != 0) abort();
  Base__V1__Entity e = BASE__V1__ENTITY__INIT;
  e.type = "doc";
  e.id = (char *)eid;
  Base__V1__Attribute a = BASE__V1__ATTRIBUTE__INIT, *ap = &a;
  a.entity = &e;
  a.attribute = "level";
  a.value = &any;
  int rc = data_write(c, tenant, NULL, 0, &ap, 1);
  tc_any_clear(&any);
  return rc;
}

/* Data.Delete of the marker items by id (the attribute filter, which
 * Permify requires, names the same entities, which have none). */
static int delete_items(tc_client_t *c, const char *tenant, items_t *it, int n) {
  char *ids[MAX_ITEMS];
  for (int i = 0; i < n; i++) ids[i] = it->id[i];
  Base__V1__EntityFilter ef = BASE__V1__ENTITY_FILTER__INIT;
  ef.type = "doc";
  ef.ids = ids;
  ef.n_ids = (size_t)n;
  Base__V1__TupleFilter tf = BASE__V1__TUPLE_FILTER__INIT;
  tf.entity = &ef;
  Base__V1__AttributeFilter af = BASE__V1__ATTRIBUTE_FILTER__INIT;
  af.entity = &ef;
  Base__V1__DataDeleteRequest req = BASE__V1__DATA_DELETE_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.tuple_filter = &tf;
  req.attribute_filter = &af;
  return call(c, "/base.v1.Data/Delete", &req.base);
}

static int run_bundle(tc_client_t *c, const char *tenant, const char *id) {
  Base__V1__BundleRunRequest__ArgumentsEntry arg =
      BASE__V1__BUNDLE_RUN_REQUEST__ARGUMENTS_ENTRY__INIT;
  Base__V1__BundleRunRequest__ArgumentsEntry *args = &arg;
  arg.key = "id";
  arg.value = (char *)id;
  Base__V1__BundleRunRequest req = BASE__V1__BUNDLE_RUN_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.name = "tort";
  req.arguments = &args;
  req.n_arguments = 1;
  return call(c, "/base.v1.Data/RunBundle", &req.base);
}

static enum op_kind pick_kind(writer_t *w) {
  unsigned r = rand_r(&w->seed) % 100;
  if (w->open_mark >= 0 && r < 12) return OP_DELETE;
  if (r < 30) return OP_SINGLE;
  if (r < 50) return OP_BATCH;
  if (r < 68) return OP_ATTR;
  if (r < 80) return w->open_mark < 0 ? OP_MARK : OP_SINGLE;
  return OP_BUNDLE;
}

/* Makes operation n of kind on node c and returns its status. */
static int do_op(writer_t *w, tc_client_t *c, const char *tenant, int n, op_t *op) {
  char base[40];
  items_t it;
  snprintf(base, sizeof base, "k%dw%dn%d", w->tenant, w->w, n);
  switch (op->kind) {
  case OP_SINGLE:
    fill_items(&it, base, 1, "owner");
    return data_write(c, tenant, it.tp, 1, NULL, 0);
  case OP_BATCH:
  case OP_MARK:
    fill_items(&it, base, op->items, "viewer");
    return data_write(c, tenant, it.tp, op->items, NULL, 0);
  case OP_ATTR:
    snprintf(base, sizeof base, "k%dw%dattr", w->tenant, w->w);
    return attr_write(c, tenant, base, n);
  case OP_DELETE:
    snprintf(base, sizeof base, "k%dw%dn%d", w->tenant, w->w, op->target);
    fill_items(&it, base, op->items, "viewer");
    return delete_items(c, tenant, &it, op->items);
  default: return run_bundle(c, tenant, base);
  }
}

static op_t *next_op(writer_t *w) {
  if (w->n_ops == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 256;
    w->ops = realloc(w->ops, (size_t)w->cap * sizeof *w->ops);
  }
  op_t *op = &w->ops[w->n_ops];
  memset(op, 0, sizeof *op);
  op->target = -1;
  op->kind = (uint8_t)pick_kind(w);
  if (op->kind == OP_SINGLE) op->items = 1;
  if (op->kind == OP_BATCH) op->items = (uint8_t)(2 + rand_r(&w->seed) % (MAX_ITEMS - 1));
  if (op->kind == OP_MARK) op->items = (uint8_t)(1 + rand_r(&w->seed) % 3);
  if (op->kind == OP_BUNDLE) op->items = 2;
  if (op->kind == OP_DELETE) {
    op->target = w->open_mark;
    op->items = w->ops[w->open_mark].items;
    w->ops[w->open_mark].target = w->n_ops;
    w->open_mark = -1;
  }
  if (op->kind == OP_MARK) w->open_mark = w->n_ops;
  return op;
}

void *torture_writer_run(void *arg) {
  writer_t *w = arg;
  conns_t cs = {0};
  char tenant[16];
  snprintf(tenant, sizeof tenant, "k%d", w->tenant);
  w->open_mark = -1;
  while (!T->stop_writers) {
    op_t *op = next_op(w);
    int n = w->n_ops++;
    op->node = (uint8_t)(rand_r(&w->seed) % 2);
    op->t0 = (int)(torture_now_ms() - T->start_ms);
    int code = do_op(w, torture_client(&cs, op->node), tenant, n, op);
    op->t1 = (int)(torture_now_ms() - T->start_ms);
    op->code = (uint8_t)code;
    op->acked = code == 0;
    /* A refused call (a node down, Postgres restarting) is retried at once
     * by no one: the next operation is new.  Back off a little. */
    if (code) pause_ms(20 + rand_r(&w->seed) % 100);
  }
  torture_conns_free(&cs);
  return NULL;
}

/* ---- watchers -------------------------------------------------------------- */

static int int_value(const Google__Protobuf__Any *any) {
  ProtobufCMessage *m = any ? tc_any_unpack(any) : NULL;
  int v = -2;
  if (m && m->descriptor == &base__v1__integer_value__descriptor)
    v = ((Base__V1__IntegerValue *)m)->data;
  if (m) protobuf_c_message_free_unpacked(m, NULL);
  return v;
}

static msg_t *new_msg(watcher_t *wt) {
  if (wt->n_msgs == wt->cap) {
    wt->cap = wt->cap ? 2 * wt->cap : 1024;
    wt->msgs = realloc(wt->msgs, (size_t)wt->cap * sizeof *wt->msgs);
  }
  msg_t *m = &wt->msgs[wt->n_msgs++];
  memset(m, 0, sizeof *m);
  m->w = m->n = -1;
  m->attr_old = -1;
  return m;
}

/* One operation per message: (w, n) the same for every change in it. */
static void same_op(watcher_t *wt, msg_t *m, int w, int n, const char *what) {
  if (m->w < 0 && m->n < 0) {
    m->w = w, m->n = n;
  } else if (m->w != w || m->n != n) {
    torture_violation("tenant k%d watcher %d: one message holds changes of k%dw%dn%d and %s",
                      wt->tenant, wt->idx, wt->tenant, m->w, m->n, what);
  }
}

static void tuple_change(watcher_t *wt, msg_t *m, const Base__V1__Tuple *t, int create) {
  const char *id = t && t->entity ? t->entity->id : "";
  int k, w, n, x;
  if (torture_parse_item(id, &k, &w, &n, &x) == 0) {
    if (k != wt->tenant)
      torture_violation("tenant k%d watcher %d: a change of tenant k%d's entity %s", wt->tenant,
                        wt->idx, k, id);
    same_op(wt, m, w, n, id);
    if (x < 0 || x >= 32 || m->mask & (1u << x))
      torture_violation("tenant k%d watcher %d: item %s twice in one message", wt->tenant, wt->idx,
                        id);
    else
      m->mask |= 1u << x;
    if (create)
      m->creates++;
    else
      m->deletes++;
    return;
  }
  int attempt, used = 0;
  if (sscanf(id, "k%dend%d%n", &k, &attempt, &used) == 2 && !id[used] && k == wt->tenant &&
      attempt >= 0 && attempt < 64) {
    wt->ends_seen |= 1ull << attempt;
    return;
  }
  torture_violation("tenant k%d watcher %d: a change of an entity no writer wrote: %s", wt->tenant,
                    wt->idx, id);
}

static void attr_change(watcher_t *wt, msg_t *m, const Base__V1__Attribute *a, int create) {
  const char *id = a && a->entity ? a->entity->id : "";
  int k, w, used = 0;
  if (sscanf(id, "k%dw%dattr%n", &k, &w, &used) != 2 || id[used] || k != wt->tenant) {
    torture_violation("tenant k%d watcher %d: an attribute change of %s", wt->tenant, wt->idx, id);
    return;
  }
  int v = int_value(a->value);
  m->attr = 1;
  m->attr_w = w;
  if (!create) {
    if (m->attr_old >= 0)
      torture_violation("tenant k%d watcher %d: two attribute deletes in one message", wt->tenant,
                        wt->idx);
    m->attr_old = v;
    return;
  }
  same_op(wt, m, w, v, id);
  m->creates++;
}

static void take(watcher_t *wt, Base__V1__WatchResponse *r) {
  Base__V1__DataChanges *ch = r->changes;
  if (!ch || !ch->n_data_changes) {
    torture_violation("tenant k%d watcher %d: a message without changes", wt->tenant, wt->idx);
    return;
  }
  msg_t *m = new_msg(wt);
  for (size_t i = 0; i < ch->n_data_changes; i++) {
    Base__V1__DataChange *d = ch->data_changes[i];
    int create = d->operation == BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE;
    if (d->type_case == BASE__V1__DATA_CHANGE__TYPE_TUPLE)
      tuple_change(wt, m, d->tuple, create);
    else
      attr_change(wt, m, d->attribute, create);
  }
  wt->changes += (long)ch->n_data_changes;
  if (m->attr && !m->creates) {
    torture_violation(
        "tenant k%d watcher %d: a message deletes attribute value %d and creates "
        "none (token %s, %zu changes)",
        wt->tenant, wt->idx, m->attr_old, ch->snap_token, ch->n_data_changes);
    char id[48];
    snprintf(id, sizeof id, "k%dw%dattr", wt->tenant, m->attr_w);
    if (wt->idx == 0) torture_explain(id);
  }
  if (m->w < 0) wt->n_msgs--; /* a sentinel or start write: not an operation's */
  free(wt->token);
  wt->token = strdup(ch->snap_token);
}

/* The run is over for this watcher: it has the tenant's last write. */
static int finished(const watcher_t *wt) {
  int r = __atomic_load_n(&T->sentinel[wt->tenant], __ATOMIC_ACQUIRE);
  return r >= 0 && (wt->ends_seen >> r & 1);
}

/* Reads one stream until the quota runs out, it ends, or the watcher is
 * done; a slow watcher stops reading for a while now and then. */
static void read_stream(watcher_t *wt, tc_stream_t *s) {
  int quota = wt->slow ? 1 << 30 : 1 + (int)(rand_r(&wt->seed) % 200);
  static __thread long long next_pause;
  while (quota > 0 && !finished(wt)) {
    if (T->stop_watchers) return;
    /* While the load runs, a slow consumer stops reading for 3 to 9 s
     * every 3 to 8 s: the server may end its stream (RESOURCE_EXHAUSTED). */
    if (wt->slow && !T->stop_writers && torture_now_ms() >= next_pause) {
      wt->pauses++;
      pause_ms(3000 + rand_r(&wt->seed) % 6000);
      next_pause = torture_now_ms() + 3000 + rand_r(&wt->seed) % 5000;
    }
    ProtobufCMessage *msg = NULL;
    int rc = tc_stream_next(s, &base__v1__watch_response__descriptor, &msg, 500);
    if (rc == -1) continue;
    if (rc == 1) {
      const char *details = NULL;
      int code = tc_stream_status(s, &details);
      wt->ended[code >= 0 && code < 17 ? code : 2]++;
      /* A node killed or restarting (UNAVAILABLE), a slow reader ended
       * (RESOURCE_EXHAUSTED): resume.  Anything else is not in the contract. */
      if (code != 14 && code != 8)
        torture_violation("tenant k%d watcher %d: the stream ended with %d %s", wt->tenant, wt->idx,
                          code, details ? details : "");
      return;
    }
    take(wt, (Base__V1__WatchResponse *)msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (--quota == 0) wt->drops++;
  }
}

void *torture_watcher_run(void *arg) {
  watcher_t *wt = arg;
  conns_t cs = {.small_window = wt->slow};
  char tenant[16];
  snprintf(tenant, sizeof tenant, "k%d", wt->tenant);
  wt->token = strdup(T->start_token[wt->tenant]);
  while (!finished(wt) && !T->stop_watchers) {
    Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
    req.tenant_id = tenant;
    req.snap_token = wt->token;
    tc_client_t *c = torture_client(&cs, (int)(rand_r(&wt->seed) % 2));
    tc_stream_t *s = tc_client_stream_open(c, "/base.v1.Watch/Watch", &req.base, NULL, 0);
    if (s) read_stream(wt, s);
    tc_stream_free(s);
    wt->resumes++;
    if (!finished(wt)) pause_ms(rand_r(&wt->seed) % 50);
  }
  torture_conns_free(&cs);
  return NULL;
}
