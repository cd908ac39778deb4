/* The checker: what each tenant holds at the end (read back at the head),
 * what each watcher was delivered, and what each writer was answered, held
 * against each other (the promises are listed in README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "any.h"
#include "base/v1/service.pb-c.h"
#include "torture.h"

/* What tenant k holds, per writer: items stored per operation, and the
 * attribute's value (-1: none). */
typedef struct {
  int *present;
  int attr;
} held_t;

static writer_t *writer_of(int k, int w) {
  if (w < 0 || w >= T->writers_per_tenant) return NULL;
  return &T->writers[k * T->writers_per_tenant + w];
}

/* One page of a read, retried while the servers recover (deadline 60 s). */
static ProtobufCMessage *read_page(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                                   const ProtobufCMessageDescriptor *desc) {
  long long deadline = torture_now_ms() + 60000;
  for (;;) {
    ProtobufCMessage *resp = NULL;
    char *details = NULL;
    int code = tc_client_unary(c, method, req, desc, &resp, &details, NULL, TORTURE_TIMEOUT_MS);
    if (code == 0) {
      free(details);
      return resp;
    }
    if (torture_now_ms() > deadline) {
      fprintf(stderr, "torture: %s failed: %d %s\n", method, code, details ? details : "");
      free(details);
      return NULL;
    }
    free(details);
  }
}

/* Reads every page of a paged Read request (continuous token in *token) and
 * hands each page to each, which takes its items and returns the page's next
 * token (borrowed from the page); what names the items in a violation. */
typedef const char *(*page_fn)(int k, held_t *h, const ProtobufCMessage *page);

static void read_pages(tc_client_t *c, int k, held_t *h, const char *what, const char *method,
                       const ProtobufCMessage *req, char **token,
                       const ProtobufCMessageDescriptor *desc, page_fn each) {
  char *cont = strdup("");
  do {
    *token = cont;
    ProtobufCMessage *r = read_page(c, method, req, desc);
    if (!r) {
      torture_violation("tenant k%d: its %s could not be read back", k, what);
      break;
    }
    const char *next = each(k, h, r);
    free(cont);
    cont = strdup(next);
    protobuf_c_message_free_unpacked(r, NULL);
  } while (*cont);
  free(cont);
}

static void held_tuple(int k, held_t *h, const char *id) {
  int kk, w, n, x, used = 0;
  if (torture_parse_item(id, &kk, &w, &n, &x) == 0) {
    writer_t *wr = kk == k ? writer_of(k, w) : NULL;
    if (wr && n >= 0 && n < wr->n_ops && x >= 0 && x < wr->ops[n].items) {
      h[w].present[n]++;
      return;
    }
  } else if ((sscanf(id, "k%dend%*d%n", &kk, &used) == 1 && !id[used] && kk == k) ||
             (sscanf(id, "k%dstart%n", &kk, &used) == 1 && !id[used] && kk == k)) {
    return; /* the set-up's first write and the last writes */
  }
  torture_violation("tenant k%d holds %s, which no writer wrote there", k, id);
}

static const char *tuple_page(int k, held_t *h, const ProtobufCMessage *page) {
  const Base__V1__RelationshipReadResponse *r = (const void *)page;
  for (size_t i = 0; i < r->n_tuples; i++) held_tuple(k, h, r->tuples[i]->entity->id);
  return r->continuous_token;
}

static void read_tuples(tc_client_t *c, int k, const char *tenant, held_t *h) {
  Base__V1__EntityFilter ef = BASE__V1__ENTITY_FILTER__INIT;
  ef.type = "doc";
  Base__V1__TupleFilter tf = BASE__V1__TUPLE_FILTER__INIT;
  tf.entity = &ef;
  Base__V1__RelationshipReadRequestMetadata md = BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT;
  Base__V1__RelationshipReadRequest req = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.metadata = &md;
  req.filter = &tf;
  req.page_size = 100;
  read_pages(c, k, h, "tuples", "/base.v1.Data/ReadRelationships", &req.base, &req.continuous_token,
             &base__v1__relationship_read_response__descriptor, tuple_page);
}

static void held_attr(int k, held_t *h, const Base__V1__Attribute *a) {
  int kk, w, used = 0;
  writer_t *wr = NULL;
  if (sscanf(a->entity->id, "k%dw%dattr%n", &kk, &w, &used) == 2 && !a->entity->id[used] && kk == k)
    wr = writer_of(k, w);
  ProtobufCMessage *v = wr ? tc_any_unpack(a->value) : NULL;
  if (!v || v->descriptor != &base__v1__integer_value__descriptor || h[w].attr != -1)
    torture_violation("tenant k%d holds attribute %s of %s, not one writer's one value", k,
                      a->attribute, a->entity->id);
  else
    h[w].attr = ((Base__V1__IntegerValue *)v)->data;
  if (v) protobuf_c_message_free_unpacked(v, NULL);
}

static const char *attr_page(int k, held_t *h, const ProtobufCMessage *page) {
  const Base__V1__AttributeReadResponse *r = (const void *)page;
  for (size_t i = 0; i < r->n_attributes; i++) held_attr(k, h, r->attributes[i]);
  return r->continuous_token;
}

static void read_attrs(tc_client_t *c, int k, const char *tenant, held_t *h) {
  Base__V1__EntityFilter ef = BASE__V1__ENTITY_FILTER__INIT;
  ef.type = "doc";
  Base__V1__AttributeFilter af = BASE__V1__ATTRIBUTE_FILTER__INIT;
  af.entity = &ef;
  Base__V1__AttributeReadRequestMetadata md = BASE__V1__ATTRIBUTE_READ_REQUEST_METADATA__INIT;
  Base__V1__AttributeReadRequest req = BASE__V1__ATTRIBUTE_READ_REQUEST__INIT;
  req.tenant_id = (char *)tenant;
  req.metadata = &md;
  req.filter = &af;
  req.page_size = 100;
  read_pages(c, k, h, "attributes", "/base.v1.Data/ReadAttributes", &req.base,
             &req.continuous_token, &base__v1__attribute_read_response__descriptor, attr_page);
}

/* ---- what is stored ----------------------------------------------------------- */

static int is_tuple_write(int kind) {
  return kind == OP_SINGLE || kind == OP_BATCH || kind == OP_BUNDLE || kind == OP_MARK;
}

/* Wholly present or wholly absent; acknowledged and never deleted: present. */
static void check_stored(int k, const writer_t *wr, const held_t *h) {
  for (int n = 0; n < wr->n_ops; n++) {
    const op_t *op = &wr->ops[n];
    if (!is_tuple_write(op->kind)) continue;
    int c = h->present[n];
    if (c && c != op->items)
      torture_violation("k%dw%dn%d (%s, %s): %d of its %d tuples stored", k, wr->w, n,
                        torture_op_names[op->kind], op->acked ? "acked" : "not acked", c,
                        op->items);
    if (op->acked && op->kind != OP_MARK && c != op->items)
      torture_violation(
          "k%dw%dn%d (%s): acknowledged by node %d (sent +%d ms, answered +%d ms), "
          "not stored",
          k, wr->w, n, torture_op_names[op->kind], op->node, op->t0, op->t1);
    if (op->kind != OP_MARK && c != op->items && (op->acked || c)) {
      char id[48];
      snprintf(id, sizeof id, "k%dw%dn%dx0", k, wr->w, n);
      torture_explain(id);
    }
  }
}

/* ---- what each watcher was delivered ----------------------------------------- */

typedef struct {
  int *count;    /* per operation: messages delivered */
  int last_attr; /* the value of the last ATTR delivered, or -1 */
  int last_acked;
} seen_t;

static uint32_t full(int items) { return items >= 32 ? ~0u : (1u << items) - 1; }

/* The operation a message delivers, or -1 (a violation, reported). */
static int message_op(const watcher_t *wt, const msg_t *m, const writer_t *wr, seen_t *s) {
  const char *who = "";
  if (m->n < 0 || m->n >= wr->n_ops) {
    who = "an operation never made";
  } else if (m->attr) {
    const op_t *op = &wr->ops[m->n];
    int last = s[m->w].last_attr;
    s[m->w].last_attr = m->n; /* one overwrite missed is one violation, not one per message */
    if (op->kind == OP_ATTR && m->creates == 1 && !m->deletes && m->attr_old == last) return m->n;
    torture_violation(
        "tenant k%d watcher %d: the message of attribute write k%dw%dn%d (%s) "
        "deleted value %d, the last delivered was %d",
        wt->tenant, wt->idx, wt->tenant, m->w, m->n, op->acked ? "acked" : "not acked", m->attr_old,
        last);
    if (wt->idx == 0) {
      char id[48];
      snprintf(id, sizeof id, "k%dw%dattr", wt->tenant, m->w);
      torture_explain(id);
    }
    return op->kind == OP_ATTR ? m->n : -1; /* delivered, if not as it should be */
  } else if (m->deletes) {
    const op_t *mark = &wr->ops[m->n];
    if (mark->kind != OP_MARK || mark->target < 0 || m->creates || m->mask != full(mark->items) ||
        !s[m->w].count[m->n])
      who = "not the whole delete of markers delivered before";
    else
      return mark->target;
  } else {
    const op_t *op = &wr->ops[m->n];
    if (!is_tuple_write(op->kind) || m->creates != op->items || m->mask != full(op->items))
      who = "not the whole write of one operation";
    else
      return m->n;
  }
  torture_violation("tenant k%d watcher %d: a message of k%dw%dn%d (%u creates, %u deletes) is %s",
                    wt->tenant, wt->idx, wt->tenant, m->w, m->n, m->creates, m->deletes, who);
  return -1;
}

static void check_order(const watcher_t *wt, const writer_t *wr, seen_t *s, int n) {
  if (!wr->ops[n].acked) return;
  if (n < s->last_acked)
    torture_violation("tenant k%d watcher %d: writer %d's acked n%d after its acked n%d",
                      wt->tenant, wt->idx, wr->w, n, s->last_acked);
  s->last_acked = n;
}

/* Every acknowledged operation exactly once, any other at most once and
 * only if stored; the attribute's last value is the one held. */
static void check_delivered(int k, const writer_t *wr, const seen_t *s, const held_t *h, int idx) {
  for (int n = 0; n < wr->n_ops; n++) {
    const op_t *op = &wr->ops[n];
    int c = s->count[n], want = -1; /* -1: 0 or 1 */
    if (is_tuple_write(op->kind) && op->kind != OP_MARK) want = h->present[n] ? 1 : 0;
    if (op->kind == OP_MARK) {
      int deleted = op->target >= 0 && s->count[op->target];
      int held = h->present[n] != 0;
      if (held != (c && !deleted))
        torture_violation("tenant k%d watcher %d: marker k%dw%dn%d %s, delivered %d, its delete %s",
                          k, idx, k, wr->w, n, held ? "held" : "not held", c,
                          deleted ? "delivered" : "not delivered");
    }
    if (op->kind == OP_DELETE && op->acked && wr->ops[op->target].acked) want = 1;
    if (op->acked && op->kind != OP_DELETE) want = 1;
    if (c > 1 || (want >= 0 && c != want))
      torture_violation(
          "tenant k%d watcher %d: k%dw%dn%d (%s, %s, status %d, node %d, +%d..%d ms) "
          "delivered %d times",
          k, idx, k, wr->w, n, torture_op_names[op->kind], op->acked ? "acked" : "not acked",
          op->code, op->node, op->t0, op->t1, c);
  }
  if (s->last_attr != h->attr)
    torture_violation("tenant k%d watcher %d: writer %d's attribute holds %d, last delivered %d", k,
                      idx, wr->w, h->attr, s->last_attr);
}

static void check_watcher(const watcher_t *wt, const held_t *h) {
  int k = wt->tenant, nw = T->writers_per_tenant;
  seen_t *s = calloc((size_t)nw, sizeof *s);
  for (int w = 0; w < nw; w++) {
    s[w].count = calloc((size_t)writer_of(k, w)->n_ops + 1, sizeof(int));
    s[w].last_attr = s[w].last_acked = -1;
  }
  for (int i = 0; i < wt->n_msgs; i++) {
    const msg_t *m = &wt->msgs[i];
    const writer_t *wr = writer_of(k, m->w);
    int n = wr ? message_op(wt, m, wr, s) : -1;
    if (!wr) torture_violation("tenant k%d watcher %d: a message of writer %d", k, wt->idx, m->w);
    if (n < 0) continue;
    s[m->w].count[n]++;
    check_order(wt, wr, &s[m->w], n);
  }
  for (int w = 0; w < nw; w++) {
    check_delivered(k, writer_of(k, w), &s[w], &h[w], wt->idx);
    free(s[w].count);
  }
  free(s);
}

void torture_check(tc_client_t *c) {
  int nw = T->writers_per_tenant;
  for (int k = 0; k < T->tenants; k++) {
    char tenant[16];
    snprintf(tenant, sizeof tenant, "k%d", k);
    held_t *h = calloc((size_t)nw, sizeof *h);
    for (int w = 0; w < nw; w++) {
      h[w].present = calloc((size_t)writer_of(k, w)->n_ops + 1, sizeof(int));
      h[w].attr = -1;
    }
    read_tuples(c, k, tenant, h);
    read_attrs(c, k, tenant, h);
    for (int w = 0; w < nw; w++) check_stored(k, writer_of(k, w), &h[w]);
    for (int i = 0; i < T->watchers_per_tenant; i++)
      check_watcher(&T->watchers[k * T->watchers_per_tenant + i], h);
    for (int w = 0; w < nw; w++) free(h[w].present);
    free(h);
  }
}
