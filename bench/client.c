/* The event-driven gRPC client of tuplecast-bench: one completion queue,
 * drained by the calling thread with grpc_completion_queue_next; every batch
 * carries a bench_tag_t whose handler moves its call along.
 *
 * Ownership: the client owns its channels, queue and authorization slice;
 * calls and streams are caller memory that the client borrows while a batch
 * of theirs is pending (counted in `pending`).
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>

#include "grpc_codec.h"

#define UNARY_TIMEOUT_MS 30000

struct bench_client_s {
  grpc_completion_queue *cq;
  grpc_channel **channels;
  int n_channels;
  grpc_slice authorization;
  int has_authorization;
  size_t pending; /* batches started and not yet completed */
};

int64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gpr_timespec to_gpr(int64_t ns) {
  int64_t left = ns - bench_now_ns();
  if (left < 0) left = 0;
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(left, GPR_TIMESPAN));
}

/* The whole of a PEM file, malloc'd; NULL if it cannot be read. */
static char *read_pem(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *text = calloc(1, 1 << 20);
  size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (text && !n) {
    free(text);
    text = NULL;
  }
  return text;
}

bench_client_t *bench_client_new(const char *target, int connections, const char *token,
                                 const char *tls_ca) {
  char *roots = tls_ca ? read_pem(tls_ca) : NULL;
  if (tls_ca && !roots) return NULL;
  bench_client_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  grpc_init();
  c->cq = grpc_completion_queue_create_for_next(NULL);
  c->n_channels = connections;
  c->channels = calloc((size_t)connections, sizeof *c->channels);
  grpc_channel_credentials *creds = roots ? grpc_ssl_credentials_create(roots, NULL, NULL, NULL)
                                          : grpc_insecure_credentials_create();
  free(roots);
  for (int i = 0; i < connections; i++) {
    /* Channels with equal args share one connection: the local pool and a
     * distinct id give each its own. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
        {.type = GRPC_ARG_INTEGER, .key = "bench.channel_id", .value.integer = i},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1},
    };
    grpc_channel_args chargs = {.num_args = sizeof args / sizeof args[0], .args = args};
    c->channels[i] = grpc_channel_create(target, creds, &chargs);
  }
  grpc_channel_credentials_release(creds);
  if (token) {
    char *v = malloc(strlen(token) + 8);
    sprintf(v, "Bearer %s", token);
    c->authorization = grpc_slice_from_copied_string(v);
    c->has_authorization = 1;
    free(v);
  } else {
    c->authorization = grpc_empty_slice();
  }
  return c;
}

void bench_client_free(bench_client_t *c) {
  if (!c) return;
  for (int i = 0; i < c->n_channels; i++) grpc_channel_destroy(c->channels[i]);
  free(c->channels);
  grpc_completion_queue_shutdown(c->cq);
  while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(c->cq);
  grpc_slice_unref(c->authorization);
  free(c);
  grpc_shutdown();
}

int bench_client_connections(const bench_client_t *c) { return c->n_channels; }

int bench_client_poll(bench_client_t *c, int64_t until_ns) {
  grpc_event ev = grpc_completion_queue_next(c->cq, to_gpr(until_ns), NULL);
  if (ev.type != GRPC_OP_COMPLETE) return -1;
  c->pending--;
  bench_tag_t *tag = ev.tag;
  tag->fn(tag, ev.success);
  return 0;
}

int bench_client_drain(bench_client_t *c, int64_t until_ns) {
  while (c->pending > 0)
    if (bench_client_poll(c, until_ns) < 0) return -1;
  return 0;
}

static grpc_call *new_call(bench_client_t *c, int conn, const char *method, int64_t deadline_ns) {
  grpc_slice path = grpc_slice_from_copied_string(method);
  gpr_timespec deadline = deadline_ns ? to_gpr(deadline_ns) : gpr_inf_future(GPR_CLOCK_MONOTONIC);
  grpc_call *call =
      grpc_channel_create_call(c->channels[conn % c->n_channels], NULL, GRPC_PROPAGATE_DEFAULTS,
                               c->cq, path, NULL, deadline, NULL);
  grpc_slice_unref(path);
  return call;
}

static int start_batch(bench_client_t *c, grpc_call *call, const grpc_op *ops, size_t n,
                       bench_tag_t *tag) {
  if (grpc_call_start_batch(call, ops, n, tag, NULL) != GRPC_CALL_OK) return -1;
  c->pending++;
  return 0;
}

/* SEND_INITIAL_METADATA (with authorization), SEND_MESSAGE, SEND_CLOSE. */
static size_t request_ops(bench_client_t *c, grpc_op *ops, grpc_metadata *md,
                          grpc_byte_buffer *req) {
  md->key = grpc_slice_from_static_string("authorization");
  md->value = c->authorization;
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = c->has_authorization ? 1 : 0;
  ops[0].data.send_initial_metadata.metadata = md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = req;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  return 3;
}

static char *slice_str(grpc_slice s) {
  size_t len = GRPC_SLICE_LENGTH(s);
  char *p = malloc(len + 1);
  memcpy(p, GRPC_SLICE_START_PTR(s), len);
  p[len] = '\0';
  return p;
}

/* Opens the call and sets ops[] to the request's three ops and
 * RECV_INITIAL_METADATA; returns how many ops it set. */
static size_t rpc_open(bench_client_t *c, int conn, bench_rpc_t *k, const char *method,
                       int64_t deadline_ns, const ProtobufCMessage *req, grpc_op *ops,
                       grpc_metadata *md) {
  k->call = new_call(c, conn, method, deadline_ns);
  k->send = tc_grpc_pack(req);
  k->recv = NULL;
  grpc_metadata_array_init(&k->initial);
  grpc_metadata_array_init(&k->trailing);
  k->status = GRPC_STATUS_UNKNOWN;
  k->details = grpc_empty_slice();
  size_t n = request_ops(c, ops, md, k->send);
  ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[n++].data.recv_initial_metadata.recv_initial_metadata = &k->initial;
  return n;
}

static void rpc_status_op(grpc_op *op, bench_rpc_t *k) {
  op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op->data.recv_status_on_client.trailing_metadata = &k->trailing;
  op->data.recv_status_on_client.status = &k->status;
  op->data.recv_status_on_client.status_details = &k->details;
}

/* Frees what rpc_open made but the received message and the details. */
static void rpc_close(bench_rpc_t *k) {
  grpc_metadata_array_destroy(&k->initial);
  grpc_metadata_array_destroy(&k->trailing);
  grpc_byte_buffer_destroy(k->send);
  grpc_call_unref(k->call);
  k->call = NULL;
  k->send = NULL;
}

/* ---- unary ---------------------------------------------------------------- */

static void unary_done(bench_tag_t *tag, int ok) {
  bench_unary_t *u = (bench_unary_t *)tag;
  grpc_status_code status = ok ? u->rpc.status : GRPC_STATUS_INTERNAL;
  grpc_byte_buffer *resp = u->rpc.recv;
  char *details = slice_str(u->rpc.details);
  grpc_slice_unref(u->rpc.details);
  rpc_close(&u->rpc);
  u->rpc.recv = NULL;
  u->done(u, status, status == GRPC_STATUS_OK ? resp : NULL, details);
  if (resp) grpc_byte_buffer_destroy(resp);
  free(details);
}

int bench_unary_start(bench_client_t *c, int conn, bench_unary_t *u, const char *method,
                      const ProtobufCMessage *req, bench_unary_fn done, void *arg) {
  u->tag.fn = unary_done;
  u->client = c;
  u->done = done;
  u->arg = arg;
  u->started_ns = bench_now_ns();
  grpc_op ops[6];
  grpc_metadata md;
  memset(ops, 0, sizeof ops);
  size_t n = rpc_open(c, conn, &u->rpc, method, u->started_ns + (int64_t)UNARY_TIMEOUT_MS * 1000000,
                      req, ops, &md);
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &u->rpc.recv;
  rpc_status_op(&ops[n++], &u->rpc);
  if (start_batch(c, u->rpc.call, ops, n, &u->tag) < 0) {
    grpc_slice_unref(u->rpc.details);
    rpc_close(&u->rpc);
    return -1;
  }
  return 0;
}

typedef struct {
  int finished;
  int status;
  const ProtobufCMessageDescriptor *resp_desc;
  ProtobufCMessage *resp;
  char *details;
} sync_call_t;

static void sync_done(bench_unary_t *u, grpc_status_code status, grpc_byte_buffer *resp,
                      const char *details) {
  sync_call_t *s = u->arg;
  s->finished = 1;
  s->status = status;
  if (resp && s->resp_desc) {
    s->resp = tc_grpc_unpack(s->resp_desc, resp);
    if (!s->resp) {
      s->status = GRPC_STATUS_INTERNAL;
      details = "bench: cannot decode the response";
    }
  }
  if (s->status != GRPC_STATUS_OK) s->details = strdup(details);
}

int bench_unary_call(bench_client_t *c, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                     char **details) {
  sync_call_t s = {.resp_desc = resp_desc};
  bench_unary_t u;
  if (bench_unary_start(c, 0, &u, method, req, sync_done, &s) < 0) {
    if (details) *details = strdup("bench: start_batch failed");
    return GRPC_STATUS_INTERNAL;
  }
  /* The call's own deadline ends it, so this wait is bounded. */
  while (!s.finished) bench_client_poll(c, bench_now_ns() + 1000000000);
  if (resp)
    *resp = s.resp;
  else if (s.resp)
    protobuf_c_message_free_unpacked(s.resp, NULL);
  if (details)
    *details = s.details;
  else
    free(s.details);
  return s.status;
}

/* ---- server streaming ------------------------------------------------------ */

static int arm_recv(bench_stream_t *s) {
  grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
  op.data.recv_message.recv_message = &s->rpc.recv;
  int rc = start_batch(s->client, s->rpc.call, &op, 1, &s->recv_tag);
  s->recv_pending = rc == 0;
  return rc;
}

static void stream_started(bench_tag_t *tag, int ok) { (void)tag, (void)ok; }

static void stream_recv(bench_tag_t *tag, int ok) {
  bench_stream_t *s = (bench_stream_t *)((char *)tag - offsetof(bench_stream_t, recv_tag));
  s->recv_pending = 0;
  if (!ok || !s->rpc.recv) return; /* the call is over; status_tag reports it */
  grpc_byte_buffer *bb = s->rpc.recv;
  s->rpc.recv = NULL;
  s->on_msg(s, bb);
  grpc_byte_buffer_destroy(bb);
  if (arm_recv(s) < 0) grpc_call_cancel(s->rpc.call, NULL);
}

static void stream_status(bench_tag_t *tag, int ok) {
  bench_stream_t *s = (bench_stream_t *)((char *)tag - offsetof(bench_stream_t, status_tag));
  if (!ok) s->rpc.status = GRPC_STATUS_INTERNAL;
  s->ended = 1;
  if (s->on_end) s->on_end(s);
}

int bench_stream_start(bench_client_t *c, int conn, bench_stream_t *s, const char *method,
                       const ProtobufCMessage *req, void *arg) {
  s->start_tag.fn = stream_started;
  s->recv_tag.fn = stream_recv;
  s->status_tag.fn = stream_status;
  s->client = c;
  s->arg = arg;
  s->ended = 0;
  grpc_op ops[4];
  grpc_metadata md;
  memset(ops, 0, sizeof ops);
  size_t n = rpc_open(c, conn, &s->rpc, method, 0, req, ops, &md);
  grpc_op status_op = {0};
  rpc_status_op(&status_op, &s->rpc);
  /* RECV_STATUS completes only at the end of the call: its own batch. */
  if (start_batch(c, s->rpc.call, ops, n, &s->start_tag) < 0) return -1;
  if (start_batch(c, s->rpc.call, &status_op, 1, &s->status_tag) < 0 || arm_recv(s) < 0) {
    grpc_call_cancel(s->rpc.call, NULL);
    return -1;
  }
  return 0;
}

void bench_stream_cancel(bench_stream_t *s) {
  if (s->rpc.call && !s->ended) grpc_call_cancel(s->rpc.call, NULL);
}

void bench_stream_release(bench_stream_t *s) {
  if (!s->rpc.call) return;
  if (s->rpc.recv) grpc_byte_buffer_destroy(s->rpc.recv);
  grpc_slice_unref(s->rpc.details);
  rpc_close(&s->rpc);
}
