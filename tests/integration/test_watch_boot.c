/* Watch with initial_state (docs/watch.md, "Initial state"), end to end
 * against the real binary, once per engine (sqlite, memory, postgres in a
 * throwaway cluster): the tenant's rows at the start position S as CREATEs
 * in messages with an empty snap token, the first message with a token
 * carrying S, then the changes after S.  The contract, while writers run:
 * the initial state plus every later message, applied in order, equals the
 * tenant's data read at the last token received, for tenants from empty to
 * many rows, filtered and unfiltered, from the head and from an older
 * token.  TUPLECAST_TEST_LONG=1 runs instead a tenant of 100,000 tuples and
 * 100,000 attributes. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "pg_fixture.h"
#include "tuplecast/support.h"
#include "server_proc.h"
#include "tt_api.h"

#define WATCH "/base.v1.Watch/Watch"

static tc_pg_t *pg; /* the postgres engine's cluster */

static const char schema[] =
    "entity user {}\n"
    "entity doc {\n  relation owner @user\n  relation viewer @user\n  attribute pub boolean\n"
    "  attribute rank integer\n}\n"
    "entity folder {\n  relation owner @user\n}\n";

/* The engine under test: TUPLECAST_TEST_ENGINE, SQLite by default. */
static const char *engine(void) {
  const char *e = getenv("TUPLECAST_TEST_ENGINE");
  return e && *e ? e : "sqlite";
}

typedef struct {
  tc_proc_t proc;
  tc_client_t *client;
  char *dir, *db;  /* the temporary directory, and the SQLite file in it */
  const char *uri; /* the database (postgres: the cluster's, owned by it) */
} fx_t;

/* A server on a database of its own, with extra flags (NULL-terminated). */
static fx_t *fx_new(const char *const *extra) {
  static int n; /* a Postgres database of its own for each server */
  char dbname[32];
  snprintf(dbname, sizeof dbname, "boot%d", ++n);
  fx_t *f = calloc(1, sizeof *f);
  f->dir = tc_temp_dir();
  f->db = tc_format("%s/tuplecast.db", f->dir);
  const char *uri = strcmp(engine(), "postgres") == 0 ? tc_pg_uri_db(pg, dbname) : f->db;
  assert_non_null(uri);
  f->uri = uri;
  const char *args[32] = {"--grpc-port",       "0",      "--http-port",    "0",
                          "--database-engine", engine(), "--database-uri", uri};
  size_t k = 8;
  for (size_t i = 0; extra && extra[i]; i++) args[k++] = extra[i];
  args[k] = NULL;
  assert_int_equal(tc_proc_start(&f->proc, args), 0);
  f->client = tc_client_new(f->proc.target);
  assert_non_null(f->client);
  tt_write_schema_text(f->client, "t1", schema, NULL);
  return f;
}

static void fx_free(fx_t *f) {
  tc_client_free(f->client);
  assert_int_equal(tc_proc_stop(&f->proc, NULL), 0);
  tc_temp_dir_remove(f->dir);
  free(f->db);
  free(f->dir);
  free(f);
}

/* ---- a set of rows, as strings ----------------------------------------------- */

typedef struct node_s {
  struct node_s *next;
  char key[];
} node_t;

typedef struct {
  node_t **b;
  size_t nb, n;
} set_t;

static void set_init(set_t *s) {
  s->nb = 1 << 18;
  s->b = calloc(s->nb, sizeof *s->b);
  s->n = 0;
}

static node_t **set_find(set_t *s, const char *key) {
  node_t **p = &s->b[tc_hash(TC_HASH_INIT, key, strlen(key)) & (s->nb - 1)];
  while (*p && strcmp((*p)->key, key)) p = &(*p)->next;
  return p;
}

static void set_add(set_t *s, const char *key) {
  node_t **p = set_find(s, key);
  if (*p) return;
  node_t *n = malloc(sizeof *n + strlen(key) + 1);
  n->next = NULL;
  strcpy(n->key, key);
  *p = n;
  s->n++;
}

static void set_del(set_t *s, const char *key) {
  node_t **p = set_find(s, key);
  if (!*p) return;
  node_t *n = *p;
  *p = n->next;
  free(n);
  s->n--;
}

static void set_free(set_t *s) {
  for (size_t i = 0; i < s->nb; i++)
    for (node_t *n = s->b[i], *next; n; n = next) {
      next = n->next;
      free(n);
    }
  free(s->b);
}

/* a's members missing from b: printed, counted. */
static size_t set_missing(set_t *a, set_t *b, const char *what) {
  size_t miss = 0;
  for (size_t i = 0; i < a->nb; i++)
    for (node_t *n = a->b[i]; n; n = n->next)
      if (!*set_find(b, n->key) && miss++ < 5) fprintf(stderr, "  %s: %s\n", what, n->key);
  return miss;
}

static void tuple_key(char *out, size_t cap, const Base__V1__Tuple *t) {
  snprintf(out, cap, "T %s:%s#%s@%s:%s#%s", t->entity->type, t->entity->id, t->relation,
           t->subject->type, t->subject->id, t->subject->relation ? t->subject->relation : "");
}

static void attr_key(char *out, size_t cap, const Base__V1__Attribute *a) {
  size_t len =
      (size_t)snprintf(out, cap, "A %s:%s$%s=", a->entity->type, a->entity->id, a->attribute);
  const Google__Protobuf__Any *v = a->value;
  for (size_t i = 0; v && i < v->value.len && len + 3 < cap; i++)
    len += (size_t)snprintf(out + len, cap - len, "%02x", v->value.data[i]);
}

/* ---- the watch filter, as the client expects it to apply ------------------------ */

static int listed(char **names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(names[i], name)) return 1;
  return !n;
}

static int passes(const Base__V1__WatchFilter *f, int is_tuple, const char *type,
                  const char *name) {
  if (!f) return 1;
  if (!listed(f->entity_types, f->n_entity_types, type)) return 0;
  if (!f->n_relations && !f->n_attributes) return 1;
  if (is_tuple) return f->n_relations && listed(f->relations, f->n_relations, name);
  return f->n_attributes && listed(f->attributes, f->n_attributes, name);
}

/* Applies a message's changes to the set. */
static void apply(set_t *s, const Base__V1__DataChanges *dc, int *creates_only) {
  char key[512];
  for (size_t i = 0; i < dc->n_data_changes; i++) {
    const Base__V1__DataChange *c = dc->data_changes[i];
    if (c->type_case == BASE__V1__DATA_CHANGE__TYPE_TUPLE)
      tuple_key(key, sizeof key, c->tuple);
    else
      attr_key(key, sizeof key, c->attribute);
    if (c->operation == BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE) {
      set_add(s, key);
    } else {
      set_del(s, key);
      if (creates_only) *creates_only = 0;
    }
  }
}

/* ---- reading the tenant at a token ------------------------------------------------- */

/* One page of ReadRelationships (tuples) or ReadAttributes at token. */
static tt_result_t read_page(tc_client_t *c, int tuples, const char *token, char *cont) {
  /* The members both requests have. */
#define READ_AT(req, md, flt)                                                       \
  ((md).snap_token = (char *)token, (req).tenant_id = "t1", (req).metadata = &(md), \
   (req).filter = &(flt), (req).page_size = 5000, (req).continuous_token = cont)
  if (tuples) {
    Base__V1__RelationshipReadRequest req = BASE__V1__RELATIONSHIP_READ_REQUEST__INIT;
    Base__V1__RelationshipReadRequestMetadata md =
        BASE__V1__RELATIONSHIP_READ_REQUEST_METADATA__INIT;
    Base__V1__TupleFilter tf = BASE__V1__TUPLE_FILTER__INIT;
    READ_AT(req, md, tf);
    return tt_call_ok(c, "/base.v1.Data/ReadRelationships", &req.base,
                      &base__v1__relationship_read_response__descriptor);
  }
  Base__V1__AttributeReadRequest req = BASE__V1__ATTRIBUTE_READ_REQUEST__INIT;
  Base__V1__AttributeReadRequestMetadata md = BASE__V1__ATTRIBUTE_READ_REQUEST_METADATA__INIT;
  Base__V1__AttributeFilter af = BASE__V1__ATTRIBUTE_FILTER__INIT;
  READ_AT(req, md, af);
#undef READ_AT
  return tt_call_ok(c, "/base.v1.Data/ReadAttributes", &req.base,
                    &base__v1__attribute_read_response__descriptor);
}

/* Adds the tenant's rows of one kind at token that pass wf to out. */
static void read_at(tc_client_t *c, int tuples, const char *token, const Base__V1__WatchFilter *wf,
                    set_t *out) {
  char *cont = strdup("");
  char key[512];
  do {
    tt_result_t r = read_page(c, tuples, token, cont);
    const char *next;
    if (tuples) {
      Base__V1__RelationshipReadResponse *resp = (void *)r.resp;
      for (size_t i = 0; i < resp->n_tuples; i++) {
        const Base__V1__Tuple *t = resp->tuples[i];
        tuple_key(key, sizeof key, t);
        if (passes(wf, 1, t->entity->type, t->relation)) set_add(out, key);
      }
      next = resp->continuous_token;
    } else {
      Base__V1__AttributeReadResponse *resp = (void *)r.resp;
      for (size_t i = 0; i < resp->n_attributes; i++) {
        const Base__V1__Attribute *a = resp->attributes[i];
        attr_key(key, sizeof key, a);
        if (passes(wf, 0, a->entity->type, a->attribute)) set_add(out, key);
      }
      next = resp->continuous_token;
    }
    free(cont);
    cont = strdup(next);
    tt_result_free(&r);
  } while (*cont);
  free(cont);
}

/* The stream's state must equal the tenant's data at token, filtered. */
static void expect_state_at(tc_client_t *c, set_t *got, const char *token,
                            const Base__V1__WatchFilter *wf, const char *when) {
  set_t want;
  set_init(&want);
  read_at(c, 1, token, wf, &want);
  read_at(c, 0, token, wf, &want);
  size_t missing = set_missing(&want, got, "missing from the stream");
  size_t extra = set_missing(got, &want, "not in the data");
  if (missing || extra || want.n != got->n)
    fail_msg(
        "%s: the stream's state (%zu rows) differs from the data at its token (%zu rows): "
        "%zu missing, %zu extra",
        when, got->n, want.n, missing, extra);
  set_free(&want);
}

/* ---- writing --------------------------------------------------------------------------- */

/* Data.Write of a batch of 1,000: a minute's deadline (a loaded machine
 * under ASan took more than the usual 10 s for 1,000 attributes on
 * postgres).  The snap token. */
static char *write_slow(tc_client_t *c, Base__V1__Tuple **ts, size_t nt, Base__V1__Attribute **as,
                        size_t na) {
  Base__V1__DataWriteRequest req = BASE__V1__DATA_WRITE_REQUEST__INIT;
  Base__V1__DataWriteRequestMetadata md = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
  req.tenant_id = "t1";
  req.metadata = &md;
  req.tuples = ts;
  req.n_tuples = nt;
  req.attributes = as;
  req.n_attributes = na;
  ProtobufCMessage *resp = NULL;
  char *details = NULL;
  int code =
      tc_client_unary(c, "/base.v1.Data/Write", &req.base,
                      &base__v1__data_write_response__descriptor, &resp, &details, NULL, 60000);
  if (code != 0) fail_msg("Data.Write of %zu rows: %d %s", nt + na, code, details ? details : "");
  char *token = strdup(((Base__V1__DataWriteResponse *)resp)->snap_token);
  protobuf_c_message_free_unpacked(resp, NULL);
  free(details);
  return token;
}

/* n tuples (doc:d<i>#owner@user:u<i%97>, and folder owners every 4th) and n
 * attributes (doc:d<i>$rank), in writes of 1000. */
static char *prefill(tc_client_t *c, int n) {
  char *token = NULL;
  for (int at = 0; at < n; at += 1000) {
    int m = n - at < 1000 ? n - at : 1000;
    tt_tuple_buf_t *tb = calloc((size_t)m, sizeof *tb);
    Base__V1__Tuple **ts = calloc((size_t)m, sizeof *ts);
    char(*ids)[2][24] = calloc((size_t)m, sizeof *ids);
    for (int i = 0; i < m; i++) {
      int k = at + i;
      snprintf(ids[i][0], 24, "d%d", k);
      snprintf(ids[i][1], 24, "u%d", k % 97);
      ts[i] = tt_tuple(&tb[i], k % 4 ? "doc" : "folder", ids[i][0], "owner", "user", ids[i][1], "");
    }
    free(token);
    token = write_slow(c, ts, (size_t)m, NULL, 0);
    Base__V1__Attribute **as = calloc((size_t)m, sizeof *as);
    Base__V1__IntegerValue *iv = calloc((size_t)m, sizeof *iv);
    Google__Protobuf__Any *any = calloc((size_t)m, sizeof *any);
    Base__V1__Attribute *attr = calloc((size_t)m, sizeof *attr);
    Base__V1__Entity *ent = calloc((size_t)m, sizeof *ent);
    for (int i = 0; i < m; i++) {
      base__v1__integer_value__init(&iv[i]);
      iv[i].data = at + i;
      google__protobuf__any__init(&any[i]);
      assert_int_equal(tc_any_pack(&iv[i].base, &any[i]), 0);
      base__v1__entity__init(&ent[i]);
      ent[i].type = "doc";
      ent[i].id = ids[i][0];
      base__v1__attribute__init(&attr[i]);
      attr[i].entity = &ent[i];
      attr[i].attribute = "rank";
      attr[i].value = &any[i];
      as[i] = &attr[i];
    }
    free(token);
    token = write_slow(c, NULL, 0, as, (size_t)m);
    for (int i = 0; i < m; i++) tc_any_clear(&any[i]);
    free(as);
    free(iv);
    free(any);
    free(attr);
    free(ent);
    free(tb);
    free(ts);
    free(ids);
  }
  return token;
}

typedef struct {
  fx_t *f;
  int id;
  atomic_int *stop;
  atomic_int writes;
} writer_t;

/* Transactions of every kind until stopped: new viewers (some already
 * there), an attribute overwritten, a document's viewers deleted. */
static void *writer_run(void *arg) {
  writer_t *w = arg;
  tc_client_t *c = tc_client_new(w->f->proc.target);
  unsigned seed = (unsigned)w->id * 7919u + 1;
  while (!atomic_load(w->stop)) {
    int doc = (int)(rand_r(&seed) % 50);
    char did[24], uid[24];
    snprintf(did, sizeof did, "d%d", doc * 4 + 1);
    if (w->writes % 5 == 4) {
      Base__V1__RelationshipDeleteRequest req = BASE__V1__RELATIONSHIP_DELETE_REQUEST__INIT;
      tt_filter_buf_t fb;
      req.tenant_id = "t1";
      req.filter = tt_entity_filter(&fb, "doc", did);
      fb.tuple.relation = "viewer";
      tt_result_t r = tt_call_ok(c, "/base.v1.Data/DeleteRelationships", &req.base,
                                 &base__v1__relationship_delete_response__descriptor);
      tt_result_free(&r);
    } else {
      snprintf(uid, sizeof uid, "v%u", rand_r(&seed) % 20);
      tt_tuple_buf_t tb;
      Base__V1__Tuple *t = tt_tuple(&tb, "doc", did, "viewer", "user", uid, "");
      tt_attr_buf_t ab;
      Base__V1__Attribute *a = tt_bool_attr(&ab, "doc", did, "pub", (int)(rand_r(&seed) % 2));
      /* Every third write also gives a folder an owner. */
      char fid[24];
      snprintf(fid, sizeof fid, "f%d", doc);
      tt_tuple_buf_t ob;
      Base__V1__Tuple *ts[2] = {t, tt_tuple(&ob, "folder", fid, "owner", "user", uid, "")};
      free(tt_write_data(c, "t1", ts, w->writes % 3 ? 1 : 2, &a, 1, NULL));
      tc_any_clear(&ab.any);
    }
    atomic_fetch_add(&w->writes, 1);
  }
  tc_client_free(c);
  return NULL;
}

/* ---- the stream ------------------------------------------------------------------------ */

static tc_stream_t *watch_boot(tc_client_t *c, const char *token, Base__V1__WatchFilter *filter) {
  Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
  req.tenant_id = "t1";
  req.snap_token = (char *)token;
  req.filter = filter;
  req.initial_state = 1;
  tc_stream_t *s = tc_client_stream_open(c, WATCH, &req.base, NULL, 0);
  assert_non_null(s);
  return s;
}

static Base__V1__WatchResponse *next_msg(tc_stream_t *s) { return tt_watch_next(s, 60000); }

/* Reads the initial state into *got; returns S (malloc'd), the first
 * message's token, and the count of initial messages in *msgs. */
static char *read_initial(tc_stream_t *s, set_t *got, size_t *msgs) {
  *msgs = 0;
  for (;;) {
    Base__V1__WatchResponse *m = next_msg(s);
    assert_non_null(m->changes);
    int creates = 1;
    apply(got, m->changes, &creates);
    assert_true(creates); /* the initial state is creates only */
    assert_true(m->changes->n_data_changes <= 1000);
    char *token = *m->changes->snap_token ? strdup(m->changes->snap_token) : NULL;
    protobuf_c_message_free_unpacked(&m->base, NULL);
    if (token) return token;
    (*msgs)++;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The contract for a tenant of n tuples and n attributes: a stream opened
 * while writers run (from the head, or from the prefill's first token when
 * `older`), its state checked at S and again after `later` messages. */
static void contract(int n, Base__V1__WatchFilter *filter, int older) {
  fx_t *f = fx_new(NULL);
  double t0 = now_s();
  char *first = NULL;
  if (older) {
    char *t = prefill(f->client, n < 1000 ? n : 1000);
    first = t;
  }
  free(prefill(f->client, n));
  double t1 = now_s();
  set_t got;
  set_init(&got);
  /* An empty tenant's stream has its (empty) initial state before anything
   * is written. */
  tc_stream_t *s = NULL;
  char *S = NULL;
  size_t msgs = 0;
  if (!n) {
    s = watch_boot(f->client, "", filter);
    S = read_initial(s, &got, &msgs);
    assert_int_equal(got.n, 0);
  }
  atomic_int stop = 0;
  writer_t w[2] = {{.f = f, .id = 1, .stop = &stop}, {.f = f, .id = 2, .stop = &stop}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, writer_run, &w[i]);
  /* Writers are under way before the stream opens: a condition polled
   * every millisecond, for 30 s at most. */
  for (double end = now_s() + 30; atomic_load(&w[0].writes) + atomic_load(&w[1].writes) < 4;) {
    assert_true(now_s() < end);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (!s) {
    s = watch_boot(f->client, older ? first : "", filter);
    S = read_initial(s, &got, &msgs);
  }
  double t2 = now_s();
  size_t initial = got.n;
  expect_state_at(f->client, &got, S, filter, "at S");
  /* The changes after S, while the writers go on. */
  char *last = strdup(S);
  int later = 0;
  while (later < 40) {
    Base__V1__WatchResponse *m = next_msg(s);
    assert_string_not_equal(m->changes->snap_token, "");
    apply(&got, m->changes, NULL);
    free(last);
    last = strdup(m->changes->snap_token);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    later++;
    if (later == 20) expect_state_at(f->client, &got, last, filter, "while writers run");
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  expect_state_at(f->client, &got, last, filter, "at the last token");
  fprintf(stderr,
          "  %s n=%d%s%s: prefill %.1fs, initial state %zu rows in %zu messages in %.2fs, "
          "then %d messages\n",
          engine(), n, filter ? " filtered" : "", older ? " from an older token" : "", t1 - t0,
          initial, msgs, t2 - t1, later);
  tc_stream_cancel(s);
  tc_stream_free(s);
  set_free(&got);
  free(S);
  free(last);
  free(first);
  fx_free(f);
}

static void test_empty_tenant(void **state) {
  (void)state;
  contract(0, NULL, 0);
}

static void test_unfiltered(void **state) {
  (void)state;
  contract(2500, NULL, 0);
}

static Base__V1__WatchFilter *doc_filter(Base__V1__WatchFilter *f) {
  static char *types[] = {"doc"}, *rels[] = {"viewer"}, *attrs[] = {"pub"};
  base__v1__watch_filter__init(f);
  f->entity_types = types;
  f->n_entity_types = 1;
  f->relations = rels;
  f->n_relations = 1;
  f->attributes = attrs;
  f->n_attributes = 1;
  return f;
}

static void test_filtered(void **state) {
  (void)state;
  Base__V1__WatchFilter f;
  contract(2500, doc_filter(&f), 0);
}

/* A filter of one kind: only tuples of one relation; attributes skipped. */
static void test_filtered_relation(void **state) {
  (void)state;
  static char *rels[] = {"owner"};
  Base__V1__WatchFilter f = BASE__V1__WATCH_FILTER__INIT;
  f.relations = rels;
  f.n_relations = 1;
  contract(2500, &f, 0);
}

static void test_older_token(void **state) {
  (void)state;
  contract(2500, NULL, 1);
}

static void test_long(void **state) {
  (void)state;
  static char *types[] = {"doc"}, *rels[] = {"owner"}, *attrs[] = {"rank"};
  Base__V1__WatchFilter f = BASE__V1__WATCH_FILTER__INIT;
  f.entity_types = types;
  f.n_entity_types = 1;
  f.relations = rels;
  f.n_relations = 1;
  f.attributes = attrs;
  f.n_attributes = 1;
  contract(100000, NULL, 0);
  contract(100000, &f, 1);
}

/* A stream cut during its initial state says to start over; a client that
 * does not read only fills the queue, it is not ended for falling behind. */
static void test_cut_during_initial_state(void **state) {
  (void)state;
  static const char *const small[] = {"--database-watch-buffer-size", "4", NULL};
  fx_t *f = fx_new(small);
  free(prefill(f->client, 6000));
  tc_stream_t *s = watch_boot(f->client, "", NULL);
  Base__V1__WatchResponse *m = next_msg(s);
  assert_string_equal(m->changes->snap_token, "");
  protobuf_c_message_free_unpacked(&m->base, NULL);
  /* The server stops with the stream in its initial state (12,000 rows in
   * messages of at most 1,000, a queue of 4: far from its end). */
  assert_int_equal(tc_proc_stop(&f->proc, NULL), 0);
  int rc;
  size_t n = 0;
  while ((rc = tc_stream_next(s, &base__v1__watch_response__descriptor, (ProtobufCMessage **)&m,
                              TT_TIMEOUT)) == 0) {
    assert_string_equal(m->changes->snap_token, "");
    protobuf_c_message_free_unpacked(&m->base, NULL);
    n++;
  }
  assert_int_equal(rc, 1);
  assert_true(n < 11);
  const char *details = NULL;
  assert_int_equal(tc_stream_status(s, &details), 14 /* UNAVAILABLE */);
  assert_non_null(details);
  if (!strstr(details, "open the watch again to start it over"))
    fail_msg("unexpected end: %s", details);
  tc_stream_free(s);
  tc_client_free(f->client);
  tc_temp_dir_remove(f->dir);
  free(f->db);
  free(f->dir);
  free(f);
}

/* ---- include_schema_changes ------------------------------------------------------ */

/* A stream from token; from the head, it has its position when this
 * returns (the first checkpoint came), so what is written next follows. */
static tc_stream_t *watch_schemas(tc_client_t *c, const char *token, int schemas) {
  Base__V1__WatchRequest req = BASE__V1__WATCH_REQUEST__INIT;
  req.tenant_id = "t1";
  req.snap_token = (char *)token;
  req.include_schema_changes = schemas;
  req.checkpoint_interval_seconds = *token ? 0 : 3600;
  tc_stream_t *s = tc_client_stream_open(c, WATCH, &req.base, NULL, 0);
  assert_non_null(s);
  if (!*token) {
    Base__V1__WatchResponse *m = next_msg(s);
    assert_int_equal(m->changes->n_data_changes, 0);
    protobuf_c_message_free_unpacked(&m->base, NULL);
  }
  return s;
}

/* The next message must announce schema version want (no data change). */
static char *expect_schema(tc_stream_t *s, const char *want) {
  Base__V1__WatchResponse *m = next_msg(s);
  if (m->schema_change_case != BASE__V1__WATCH_RESPONSE__SCHEMA_CHANGE_SCHEMA_VERSION)
    fail_msg("expected schema version %s, got a message of %zu data changes", want,
             m->changes ? m->changes->n_data_changes : 0);
  assert_string_equal(m->schema_version, want);
  assert_int_equal(m->changes->n_data_changes, 0);
  char *token = strdup(m->changes->snap_token);
  assert_string_not_equal(token, "");
  protobuf_c_message_free_unpacked(&m->base, NULL);
  return token;
}

/* The next message must be data: one tuple whose subject id is want. */
static char *expect_subject(tc_stream_t *s, const char *want) {
  Base__V1__WatchResponse *m = next_msg(s);
  if (m->schema_change_case == BASE__V1__WATCH_RESPONSE__SCHEMA_CHANGE_SCHEMA_VERSION)
    fail_msg("expected the data write of %s, got schema version %s", want, m->schema_version);
  assert_int_equal(m->changes->n_data_changes, 1);
  assert_string_equal(m->changes->data_changes[0]->tuple->subject->id, want);
  char *token = strdup(m->changes->snap_token);
  protobuf_c_message_free_unpacked(&m->base, NULL);
  return token;
}

/* A data write validated against version (NULL: the head). */
static void write_viewer(tc_client_t *c, const char *version, const char *user) {
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "doc", "d1", "viewer", "user", user, "");
  Base__V1__DataWriteRequest req = BASE__V1__DATA_WRITE_REQUEST__INIT;
  Base__V1__DataWriteRequestMetadata md = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
  md.schema_version = (char *)(version ? version : "");
  req.tenant_id = "t1";
  req.metadata = &md;
  req.tuples = &t;
  req.n_tuples = 1;
  tt_result_t r =
      tt_call_ok(c, "/base.v1.Data/Write", &req.base, &base__v1__data_write_response__descriptor);
  tt_result_free(&r);
}

/* Schema.PartialWrite adding a relation to doc on top of version; returns
 * the new version. */
static char *partial_write(tc_client_t *c, const char *version) {
  Base__V1__SchemaPartialWriteRequest pw = BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST__INIT;
  Base__V1__SchemaPartialWriteRequestMetadata md =
      BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST_METADATA__INIT;
  Base__V1__Partials partial = BASE__V1__PARTIALS__INIT;
  char *writes[] = {"relation editor @user"};
  Base__V1__SchemaPartialWriteRequest__PartialsEntry entry =
      BASE__V1__SCHEMA_PARTIAL_WRITE_REQUEST__PARTIALS_ENTRY__INIT;
  Base__V1__SchemaPartialWriteRequest__PartialsEntry *entries[] = {&entry};
  partial.write = writes;
  partial.n_write = 1;
  entry.key = "doc";
  entry.value = &partial;
  md.schema_version = (char *)version;
  pw.tenant_id = "t1";
  pw.metadata = &md;
  pw.partials = entries;
  pw.n_partials = 1;
  tt_result_t r = tt_call_ok(c, "/base.v1.Schema/PartialWrite", &pw.base,
                             &base__v1__schema_partial_write_response__descriptor);
  char *v = strdup(((Base__V1__SchemaPartialWriteResponse *)r.resp)->schema_version);
  tt_result_free(&r);
  return v;
}

/* Schema.Write and PartialWrite each send a message naming the new version,
 * before the data written against it; a stream without the option and a
 * stream resumed from the schema message's token see the data only. */
static void test_schema_changes(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL);
  tc_stream_t *with = watch_schemas(f->client, "", 1);
  tc_stream_t *without = watch_schemas(f->client, "", 0);
  char *v2 = NULL;
  tt_write_schema_text(f->client, "t1", schema, &v2);
  write_viewer(f->client, v2, "a");
  char *at_v2 = expect_schema(with, v2);
  free(expect_subject(with, "a"));
  free(expect_subject(without, "a"));
  char *v3 = partial_write(f->client, v2);
  write_viewer(f->client, v3, "b");
  free(expect_schema(with, v3));
  free(expect_subject(with, "b"));
  free(expect_subject(without, "b"));
  /* Resuming from the schema message's token: what came after it. */
  tc_stream_t *resumed = watch_schemas(f->client, at_v2, 1);
  free(expect_subject(resumed, "a"));
  free(expect_schema(resumed, v3));
  free(expect_subject(resumed, "b"));
  tc_stream_free(resumed);
  tc_stream_free(with);
  tc_stream_free(without);
  free(at_v2);
  free(v2);
  free(v3);
  fx_free(f);
}

typedef struct {
  const char *target; /* the server the writer talks to */
  int n;
  char **versions; /* versions[k]: the k-th schema written */
} schemer_t;

/* Alternates schema writes and data writes validated against the version
 * just written (subject s<k>). */
static void *schemer_run(void *arg) {
  schemer_t *w = arg;
  tc_client_t *c = tc_client_new(w->target);
  for (int k = 0; k < w->n; k++) {
    tt_write_schema_text(c, "t1", schema, &w->versions[k]);
    char user[24];
    snprintf(user, sizeof user, "s%d", k);
    write_viewer(c, w->versions[k], user);
  }
  tc_client_free(c);
  return NULL;
}

/* While a writer on `target` writes schemas and data against each, a
 * stream on watcher gets no data write before the message of the version
 * it was validated against, and every version once, in order. */
static void run_schema_order(tc_client_t *watcher, const char *target) {
  tc_stream_t *s = watch_schemas(watcher, "", 1);
  enum { N = 30 };
  char *versions[N] = {0};
  schemer_t w = {.target = target, .n = N, .versions = versions};
  pthread_t th;
  pthread_create(&th, NULL, schemer_run, &w);
  int seen = 0; /* schema messages so far */
  char *announced[N + 1] = {0};
  for (int data = 0; data < N;) {
    Base__V1__WatchResponse *m = next_msg(s);
    if (m->schema_change_case == BASE__V1__WATCH_RESPONSE__SCHEMA_CHANGE_SCHEMA_VERSION) {
      assert_true(seen < N);
      announced[seen++] = strdup(m->schema_version);
    } else {
      int k = atoi(m->changes->data_changes[0]->tuple->subject->id + 1);
      if (k != data || k >= seen)
        fail_msg("the data write validated against schema %d arrived after %d schema messages", k,
                 seen);
      data++;
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
  }
  pthread_join(th, NULL);
  assert_int_equal(seen, N);
  for (int k = 0; k < N; k++) {
    assert_string_equal(announced[k], versions[k]);
    free(announced[k]);
    free(versions[k]);
  }
  tc_stream_free(s);
}

static void test_schema_order(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL);
  run_schema_order(f->client, f->proc.target);
  fx_free(f);
}

/* ---- schema writes from elsewhere (postgres) ------------------------------------- */

/* A second node on f's database. */
static void node_start(fx_t *f, tc_proc_t *proc, tc_client_t **client) {
  const char *args[] = {"--grpc-port",    "0",    "--http-port", "0", "--database-engine", engine(),
                        "--database-uri", f->uri, NULL};
  assert_int_equal(tc_proc_start(proc, args), 0);
  *client = tc_client_new(proc->target);
  assert_non_null(*client);
}

/* Schemas and data written through node B, watched on node A. */
static void test_schema_other_node(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL);
  tc_proc_t b;
  tc_client_t *cb;
  node_start(f, &b, &cb);
  run_schema_order(f->client, b.target);
  tc_client_free(cb);
  assert_int_equal(tc_proc_stop(&b, NULL), 0);
  fx_free(f);
}

/* A schema stored the way a Permify server stores one (one multi-row
 * INSERT into schema_definitions, autocommit, no transactions row), then
 * data validated against it through tuplecast: the version is announced,
 * before the data. */
static void test_schema_permify_row(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL);
  tc_stream_t *s = watch_schemas(f->client, "", 1);
  PGconn *db = PQconnectdb(f->uri);
  assert_int_equal(PQstatus(db), CONNECTION_OK);
  static const char version[] = "d4pv0a2qi3cjm0permif"; /* 20 characters, as rs/xid's */
  const char *v[] = {"user",  "entity user {}",
                     "doc",   "entity doc {\n  relation owner @user\n  relation viewer @user\n}",
                     version, "t1"};
  PGresult *r = PQexecParams(db,
                             "INSERT INTO schema_definitions (name, serialized_definition, version,"
                             " tenant_id) VALUES ($1, $2::bytea, $5, $6), ($3, $4::bytea, $5, $6)",
                             6, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("insert: %s", PQerrorMessage(db));
  PQclear(r);
  PQfinish(db);
  write_viewer(f->client, version, "p");
  free(expect_schema(s, version));
  free(expect_subject(s, "p"));
  tc_stream_free(s);
  fx_free(f);
}

/* Changes to doc:<id> in a message. */
static size_t count_doc(const Base__V1__DataChanges *dc, const char *id) {
  size_t n = 0;
  for (size_t i = 0; i < dc->n_data_changes; i++) {
    const Base__V1__DataChange *c = dc->data_changes[i];
    n += c->type_case == BASE__V1__DATA_CHANGE__TYPE_TUPLE && !strcmp(c->tuple->entity->id, id);
  }
  return n;
}

static void sql_ok(PGconn *db, const char *q) {
  PGresult *r = PQexec(db, q);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", q, PQerrorMessage(db));
  PQclear(r);
}

static char *sql_value(PGconn *db, const char *q) {
  PGresult *r = PQexec(db, q);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", q, PQerrorMessage(db));
  char *v = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

/* Transaction G writes doc:<id>, takes its xid before a tuplecast write X
 * takes its snapshot, and commits after X.  X's snap token; *in_gap when G
 * is at or above the xmax of the snapshot stored with X (another
 * transaction completing first can list G there instead). */
static char *gap_write(fx_t *f, const char *id, int *in_gap) {
  PGconn *g = PQconnectdb(f->uri);
  assert_int_equal(PQstatus(g), CONNECTION_OK);
  sql_ok(g, "BEGIN");
  sql_ok(g, "INSERT INTO transactions (tenant_id) VALUES ('t1')");
  PGresult *r = tc_pg_exec1(g,
                            "INSERT INTO relation_tuples (entity_type, entity_id, relation,"
                            " subject_type, subject_id, subject_relation, tenant_id) VALUES"
                            " ('doc', $1, 'viewer', 'user', 'g', '', 't1')",
                            id);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("insert: %s", PQerrorMessage(g));
  PQclear(r);
  tt_tuple_buf_t tb;
  Base__V1__Tuple *t = tt_tuple(&tb, "doc", "x", "viewer", "user", "x", "");
  char *x = write_slow(f->client, &t, 1, NULL, 0);
  char *v = sql_value(g,
                      "SELECT pg_snapshot_xmax(snapshot) <= pg_current_xact_id() FROM transactions"
                      " WHERE tenant_id = 't1' ORDER BY id DESC LIMIT 1");
  *in_gap = !strcmp(v, "t");
  free(v);
  sql_ok(g, "COMMIT");
  PQfinish(g);
  return x;
}

/* A write ack as S (docs/backend-postgres.md, "Tokens"): X's token counts
 * G (gap_write) as seen, and a Watch from it sends G after S, so the
 * initial state must not hold G too: G's tuple arrives exactly once. */
static void test_write_ack_gap(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL);
  int in_gap = 0;
  char *x = NULL, id[16];
  for (int i = 0; i < 10 && !in_gap; i++) {
    free(x);
    snprintf(id, sizeof id, "gap%d", i);
    x = gap_write(f, id, &in_gap);
  }
  assert_true(in_gap);
  tc_stream_t *s = watch_boot(f->client, x, NULL);
  size_t seen = 0, marker = 0;
  int initial = 1;
  while (!marker) {
    Base__V1__WatchResponse *m = next_msg(s);
    assert_non_null(m->changes);
    seen += count_doc(m->changes, id);
    marker = !initial && count_doc(m->changes, "z");
    if (initial && *m->changes->snap_token) { /* S: the end of the initial state */
      initial = 0;
      tt_tuple_buf_t tb;
      Base__V1__Tuple *z = tt_tuple(&tb, "doc", "z", "viewer", "user", "z", "");
      free(write_slow(f->client, &z, 1, NULL, 0));
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
  }
  assert_int_equal(seen, 1);
  tc_stream_free(s);
  free(x);
  fx_free(f);
}

int main(void) {
  int postgres = strcmp(engine(), "postgres") == 0;
  if (postgres && tc_pg_start(NULL, &pg) != 0) return 1;
  const char *lng = getenv("TUPLECAST_TEST_LONG");
  int long_mode = lng && *lng && strcmp(lng, "0") != 0;
  struct CMUnitTest tests[16] = {
      cmocka_unit_test(test_empty_tenant),   cmocka_unit_test(test_unfiltered),
      cmocka_unit_test(test_filtered),       cmocka_unit_test(test_filtered_relation),
      cmocka_unit_test(test_older_token),    cmocka_unit_test(test_cut_during_initial_state),
      cmocka_unit_test(test_schema_changes), cmocka_unit_test(test_schema_order),
  };
  size_t n = 8;
  /* Two servers on one database, and Permify's table: PostgreSQL's cases. */
  if (postgres) {
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_schema_other_node);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_schema_permify_row);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_write_ack_gap);
  }
  /* The long mode is a ctest of its own (test_watch_boot_long_*): its case only. */
  if (long_mode) {
    tests[0] = (struct CMUnitTest)cmocka_unit_test(test_long);
    n = 1;
  }
  int rc = _cmocka_run_group_tests("test_watch_boot", tests, n, NULL, NULL);
  tc_pg_stop(pg);
  return rc;
}
