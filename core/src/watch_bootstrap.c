#include "watch_boot.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "service.h"

/* Rows asked of the backend per read: one round trip per 1,000 rows keeps
 * the per-page cost small against the rows' own (see bench/README.md,
 * "bootstrap"), and a page of converted rows stays well under a megabyte. */
#define BOOT_PAGE 1000u
/* A message holds at most this many changes, and is cut once its changes
 * pass BOOT_MSG_BYTES: far below gRPC's default 4 MiB receive limit, which
 * Permify's clients keep. */
#define BOOT_MSG_CHANGES 1000u
#define BOOT_MSG_BYTES (1024u * 1024u)

enum { PHASE_TUPLES, PHASE_ATTRS, PHASE_DONE };

struct tc_boot_s {
  tc_server_t *srv;
  const char *tenant_id;
  char *token;
  const Base__V1__WatchFilter *filter; /* NULL: every row */
  tc_boot_sink_t sink;
  void *arg;
  int phase;
  tc_cursor_t cursor;
  int reading; /* a page read is in flight */
  int in_cb;   /* a page is being handed to the sink */
  int stopped; /* the stream went: call nothing more */
  tc_tuple_filter_t tf;
  tc_attr_filter_t af;
};

/* ---- which rows pass ------------------------------------------------------ */

static int listed(char *const *names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(names[i], name)) return 1;
  return 0;
}

int tc__watch_filter_passes(const Base__V1__WatchFilter *f, int operation, int is_tuple,
                            const char *type, const char *name) {
  if (f->operation && operation != (int)f->operation) return 0;
  if (f->n_entity_types && !listed(f->entity_types, f->n_entity_types, type)) return 0;
  if (!f->n_relations && !f->n_attributes) return 1;
  return is_tuple ? listed(f->relations, f->n_relations, name)
                  : listed(f->attributes, f->n_attributes, name);
}

/* A row of the initial state (a CREATE) that the stream's filter passes. */
static int row_passes(const Base__V1__WatchFilter *f, int is_tuple, const char *type,
                      const char *name) {
  return !f || tc__watch_filter_passes(f, BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE,
                                       is_tuple, type, name);
}

/* The first phase with rows that can pass, from `from` on. */
static int next_phase(const Base__V1__WatchFilter *f, int from) {
  if (f && f->operation == BASE__V1__DATA_CHANGE__OPERATION__OPERATION_DELETE) return PHASE_DONE;
  int tuples = !f || f->n_relations || !f->n_attributes;
  int attrs = !f || f->n_attributes || !f->n_relations;
  if (from <= PHASE_TUPLES && tuples) return PHASE_TUPLES;
  if (from <= PHASE_ATTRS && attrs) return PHASE_ATTRS;
  return PHASE_DONE;
}

/* What of the filter the backend can apply itself: one entity type, one
 * relation, a list of attribute names.  The rest is checked here. */
static void pushdown(tc_boot_t *b) {
  const Base__V1__WatchFilter *f = b->filter;
  const char *type = f && f->n_entity_types == 1 ? f->entity_types[0] : "";
  b->tf = (tc_tuple_filter_t){.entity_type = type,
                              .relation = f && f->n_relations == 1 ? f->relations[0] : "",
                              .subject_type = "",
                              .subject_relation = ""};
  b->af = (tc_attr_filter_t){.entity_type = type};
  if (f && f->n_attributes) {
    b->af.attributes = (const char *const *)f->attributes;
    b->af.n_attributes = f->n_attributes;
  }
}

/* ---- one page --------------------------------------------------------------- */

typedef struct {
  tc_boot_t *b;
  tc_arena_t arena;
  Base__V1__DataChange **msg;
  size_t n, bytes;
} batch_t;

/* Sends what the batch holds as one message; non-zero if the stream ended. */
static int batch_flush(batch_t *m) {
  if (!m->n) return 0;
  int rc = m->b->sink.send(m->b->arg, m->msg, m->n);
  m->n = m->bytes = 0;
  if (rc) m->b->stopped = 1;
  return rc;
}

static int batch_add(batch_t *m, Base__V1__Tuple *t, Base__V1__Attribute *a) {
  if (!t && !a) return TC_ENOMEM;
  Base__V1__DataChange *d = tc_arena_alloc(&m->arena, sizeof *d);
  if (!d) return TC_ENOMEM;
  base__v1__data_change__init(d);
  d->operation = BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE;
  d->type_case = t ? BASE__V1__DATA_CHANGE__TYPE_TUPLE : BASE__V1__DATA_CHANGE__TYPE_ATTRIBUTE;
  if (t)
    d->tuple = t;
  else
    d->attribute = a;
  m->msg[m->n++] = d;
  m->bytes += protobuf_c_message_get_packed_size(&d->base);
  if (m->n < BOOT_MSG_CHANGES && m->bytes < BOOT_MSG_BYTES) return 0;
  return batch_flush(m);
}

static void boot_free(tc_boot_t *b) {
  free(b->token);
  free(b);
}

static void boot_read(tc_boot_t *b);

/* A page came back: its passing rows go out, then the next page is read if
 * the stream has room (else tc__boot_pump reads it). */
static void page_done(tc_boot_t *b, int status, tc_cursor_t next) {
  if (!b->stopped && status) {
    b->sink.done(b->arg, status);
    b->stopped = 1;
  }
  if (b->stopped) {
    boot_free(b);
    return;
  }
  b->cursor = next;
  if (!next) {
    b->phase = next_phase(b->filter, b->phase + 1);
    b->cursor = 0;
  }
  if (b->sink.room(b->arg)) boot_read(b);
}

/* One page of rows, tuples or attributes (the other NULL). */
static void page_take(tc_boot_t *b, int status, const tc_tuple_t *tuples, const tc_attr_t *attrs,
                      size_t n, tc_cursor_t next) {
  b->reading = 0;
  batch_t m = {.b = b};
  tc_arena_init(&m.arena);
  b->in_cb = 1;
  if (!status && !b->stopped && !(m.msg = malloc((n + 1) * sizeof *m.msg))) status = TC_ENOMEM;
  for (size_t i = 0; !status && !b->stopped && i < n; i++) {
    const tc_tuple_t *t = tuples ? &tuples[i] : NULL;
    const tc_attr_t *a = tuples ? NULL : &attrs[i];
    if (t ? row_passes(b->filter, 1, t->entity_type, t->relation)
          : row_passes(b->filter, 0, a->entity_type, a->attribute))
      status = batch_add(&m, t ? tc_tuple_to_proto(&m.arena, t) : NULL,
                         a ? tc_attr_to_proto(&m.arena, a) : NULL);
  }
  if (!status && !b->stopped) status = batch_flush(&m);
  b->in_cb = 0;
  free(m.msg);
  tc_arena_free(&m.arena);
  page_done(b, b->stopped ? 0 : status, next);
}

static void on_tuples(void *arg, int status, const tc_tuple_t *rows, size_t n, tc_cursor_t next) {
  page_take(arg, status, rows, NULL, n, next);
}

static void on_attrs(void *arg, int status, const tc_attr_t *rows, size_t n, tc_cursor_t next) {
  page_take(arg, status, NULL, rows, n, next);
}

/* Reads the next page, or reports the end. */
static void boot_read(tc_boot_t *b) {
  if (b->phase == PHASE_DONE) {
    b->stopped = 1;
    b->sink.done(b->arg, 0);
    boot_free(b);
    return;
  }
  const tc_backend_api_t *api = b->srv->api;
  int rc;
  b->reading = 1;
  if (b->phase == PHASE_TUPLES)
    rc = api->read_tuples(b->srv->backend, b->tenant_id, b->token, &b->tf, b->cursor, BOOT_PAGE,
                          on_tuples, b);
  else
    rc = api->read_attrs(b->srv->backend, b->tenant_id, b->token, &b->af, b->cursor, BOOT_PAGE,
                         on_attrs, b);
  if (rc) {
    b->reading = 0;
    page_done(b, rc, 0);
  }
}

/* ---- the interface ---------------------------------------------------------- */

int tc__boot_start(tc_server_t *srv, const char *tenant_id, const char *token,
                   const Base__V1__WatchFilter *filter, const tc_boot_sink_t *sink, void *arg,
                   tc_boot_t **out) {
  tc_boot_t *b = calloc(1, sizeof *b);
  if (!b || !(b->token = strdup(token))) {
    free(b);
    return TC_ENOMEM;
  }
  b->srv = srv;
  b->tenant_id = tenant_id;
  b->filter = filter;
  b->sink = *sink;
  b->arg = arg;
  b->phase = next_phase(filter, PHASE_TUPLES);
  pushdown(b);
  *out = b;
  return 0;
}

void tc__boot_pump(tc_boot_t *b) {
  if (!b->reading && !b->in_cb && !b->stopped) boot_read(b);
}

void tc__boot_stop(tc_boot_t *b) {
  int busy = b->reading || b->in_cb;
  b->stopped = 1;
  if (!busy) boot_free(b);
}
