/* The write load: Data.Write calls of new, unique tuples, closed-loop at a
 * fixed number of outstanding calls or open-loop at a fixed rate.
 *
 * Ownership: bench_writer_run allocates its slots and request builder and
 * frees them before returning; the writer keeps only its results
 * (bench_writer_release frees the latency samples).
 */
#include "bench.h"
#include "grpc_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WRITE_METHOD "/base.v1.Data/Write"
#define RATE_SLOTS 1024 /* outstanding calls at most in rate mode */
#define ID_LEN 80

/* Tuples of one request, reused call after call (a request is packed when
 * its call starts). */
typedef struct {
  size_t n;
  Base__V1__Entity *entities;
  Base__V1__Subject *subjects;
  Base__V1__Tuple *tuples;
  Base__V1__Tuple **ptrs;
  char *ids; /* n entity ids, then n subject ids, ID_LEN each */
  Base__V1__DataWriteRequestMetadata md;
  Base__V1__DataWriteRequest req;
} builder_t;

/* Entity ids never repeat: a prefix unique to this process and a counter. */
static char id_prefix[32];
static uint64_t next_id;

static void builder_init(builder_t *b, const char *tenant, size_t n) {
  if (!id_prefix[0]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(id_prefix, sizeof id_prefix, "b%llx%x",
             (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
             (unsigned)getpid());
  }
  b->n = n;
  b->entities = calloc(n, sizeof *b->entities);
  b->subjects = calloc(n, sizeof *b->subjects);
  b->tuples = calloc(n, sizeof *b->tuples);
  b->ptrs = calloc(n, sizeof *b->ptrs);
  b->ids = calloc(2 * n, ID_LEN);
  for (size_t k = 0; k < n; k++) {
    base__v1__entity__init(&b->entities[k]);
    base__v1__subject__init(&b->subjects[k]);
    base__v1__tuple__init(&b->tuples[k]);
    char *sid = b->ids + (n + k) * ID_LEN;
    snprintf(sid, ID_LEN, "u%zu", k);
    b->entities[k].type = "repository";
    b->entities[k].id = b->ids + k * ID_LEN;
    b->subjects[k].type = "user";
    b->subjects[k].id = sid;
    b->tuples[k].entity = &b->entities[k];
    b->tuples[k].relation = "owner";
    b->tuples[k].subject = &b->subjects[k];
    b->ptrs[k] = &b->tuples[k];
  }
  base__v1__data_write_request_metadata__init(&b->md);
  base__v1__data_write_request__init(&b->req);
  b->req.tenant_id = (char *)tenant;
  b->req.metadata = &b->md;
  b->req.tuples = b->ptrs;
  b->req.n_tuples = n;
}

/* The entity id of tuple k of the request numbered id. */
static void entity_id(char *out, uint64_t id, size_t k) {
  snprintf(out, ID_LEN, "%s-%llu-%zu", id_prefix, (unsigned long long)id, k);
}

/* Fresh entity ids for the next request; *id_out its number. */
static const ProtobufCMessage *builder_next(builder_t *b, uint64_t *id_out) {
  uint64_t id = next_id++;
  if (id_out) *id_out = id;
  for (size_t k = 0; k < b->n; k++) entity_id(b->ids + k * ID_LEN, id, k);
  return &b->req.base;
}

static void builder_free(builder_t *b) {
  free(b->entities);
  free(b->subjects);
  free(b->tuples);
  free(b->ptrs);
  free(b->ids);
}

typedef struct run_s run_t;
typedef struct {
  bench_unary_t u;
  run_t *run;
  uint64_t seq;
  uint64_t id; /* the request's number (entity ids) */
} slot_t;

struct run_s {
  bench_writer_t *w;
  builder_t b;
  slot_t *slots;
  size_t *free_list, n_free;
  size_t outstanding;
};

static int may_issue(const bench_writer_t *w, int64_t now) {
  return now < w->end_ns && (w->limit == 0 || w->issued < w->limit);
}

static void write_done(bench_unary_t *u, grpc_status_code status, grpc_byte_buffer *resp,
                       const char *details);

static void issue(run_t *r, slot_t *s) {
  bench_writer_t *w = r->w;
  s->seq = w->issued++;
  r->outstanding++;
  if (w->n_tenants) r->b.req.tenant_id = (char *)w->tenants[s->seq % w->n_tenants];
  if (bench_unary_start(w->client, (int)(s->seq % (uint64_t)bench_client_connections(w->client)),
                        &s->u, WRITE_METHOD, builder_next(&r->b, &s->id), write_done, s) == 0)
    return;
  r->outstanding--;
  w->errors++;
  if (!w->first_error[0]) snprintf(w->first_error, sizeof w->first_error, "start_batch failed");
  r->free_list[r->n_free++] = (size_t)(s - r->slots);
}

static void write_done(bench_unary_t *u, grpc_status_code status, grpc_byte_buffer *resp,
                       const char *details) {
  (void)resp; /* the response's token is not needed: writes are known by their ids */
  slot_t *s = u->arg;
  run_t *r = s->run;
  bench_writer_t *w = r->w;
  int64_t now = bench_now_ns();
  r->outstanding--;
  if (status == GRPC_STATUS_OK) {
    w->acked++;
    w->last_ack_ns = now;
    bench_samples_add(&w->latency, now - u->started_ns);
    if (w->on_ack) {
      char key[ID_LEN];
      entity_id(key, s->id, 0);
      w->on_ack(w, s->seq, key, u->started_ns, now);
    }
  } else {
    w->errors++;
    if (!w->first_error[0])
      snprintf(w->first_error, sizeof w->first_error, "status %d: %s", (int)status, details);
  }
  if (w->rate <= 0 && may_issue(w, now))
    issue(r, s);
  else
    r->free_list[r->n_free++] = (size_t)(s - r->slots);
}

int bench_writer_run(bench_writer_t *w) {
  run_t r = {.w = w};
  size_t n_slots = w->rate > 0 ? RATE_SLOTS : (size_t)w->opts->concurrency;
  builder_init(&r.b, w->opts->tenant, (size_t)w->opts->batch);
  r.slots = calloc(n_slots, sizeof *r.slots);
  r.free_list = calloc(n_slots, sizeof *r.free_list);
  for (size_t i = 0; i < n_slots; i++) {
    r.slots[i].run = &r;
    r.free_list[r.n_free++] = n_slots - 1 - i;
  }
  w->start_ns = bench_now_ns();
  w->last_ack_ns = w->start_ns;
  int64_t interval = w->rate > 0 ? (int64_t)(1e9 / w->rate) : 0;
  int64_t next_due = w->start_ns;
  if (w->rate <= 0)
    while (r.n_free > 0 && may_issue(w, w->start_ns)) issue(&r, &r.slots[r.free_list[--r.n_free]]);

  int64_t drain_until = 0;
  for (;;) {
    int64_t now = bench_now_ns();
    if (w->on_tick) w->on_tick(w, now);
    if (w->rate > 0)
      while (next_due <= now && r.n_free > 0 && may_issue(w, now)) {
        issue(&r, &r.slots[r.free_list[--r.n_free]]);
        next_due += interval;
      }
    int issuing = may_issue(w, now);
    if (!issuing && r.outstanding == 0) break;
    if (!issuing && !drain_until) drain_until = now + (int64_t)BENCH_WAIT_S * 1000000000;
    int64_t until = issuing ? (w->rate > 0 ? next_due : w->end_ns) : drain_until;
    if (issuing && until > w->end_ns) until = w->end_ns;
    if (bench_client_poll(w->client, until) < 0 && drain_until && bench_now_ns() >= drain_until)
      break;
  }
  int rc = r.outstanding == 0 ? 0 : -1;
  builder_free(&r.b);
  /* Calls still out after the bound keep their slots: leak them, not free
   * memory gRPC may still write to. */
  if (rc == 0) free(r.slots);
  free(r.free_list);
  return rc;
}

void bench_writer_release(bench_writer_t *w) { bench_samples_free(&w->latency); }

int bench_write_one(bench_client_t *c, const bench_opts_t *o, char **token) {
  builder_t b;
  builder_init(&b, o->tenant, 1);
  Base__V1__DataWriteResponse *resp = NULL;
  char *details = NULL;
  int status = bench_unary_call(c, WRITE_METHOD, builder_next(&b, NULL),
                                &base__v1__data_write_response__descriptor,
                                (ProtobufCMessage **)&resp, &details);
  builder_free(&b);
  if (status != GRPC_STATUS_OK) {
    fprintf(stderr, "tuplecast-bench: Data.Write: status %d: %s\n", status, details ? details : "");
    free(details);
    return -1;
  }
  *token = strdup(resp->snap_token);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return 0;
}
