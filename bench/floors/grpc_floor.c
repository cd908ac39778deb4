/* tuplecast-grpc-floor: the stream floor of gRPC C core.  A minimal server
 * that speaks just enough of Permify's protocol for tuplecast-bench's fan-out
 * scenario to drive it unchanged:
 *
 *   /base.v1.Watch/Watch   sends one checkpoint (a DataChanges without
 *                          changes) and then holds the stream idle;
 *   /base.v1.Data/Write    answers at once and sends one change message to
 *                          every open Watch stream (the fan-out command);
 *   /base.v1.Schema/List   answers with a head, so the bench's tenant setup
 *                          and connection warm-up pass.
 *
 * Everything else gets UNIMPLEMENTED.  One thread, one completion queue, no
 * storage: its RSS per stream and its time until the last stream has a
 * message are what gRPC itself costs (bench/README.md, "tuplecast-grpc-floor").
 * It stops on SIGTERM or SIGINT, or by itself after --max-seconds.
 *
 * Ownership: a stream_t lives from its call's arrival until its client ends
 * it and no batch of it is pending; the fan-out message is one slice that
 * every send references.
 */
#include "bench.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>

#define PENDING_REQUESTS 512 /* calls wait in the server unless one is requested */

typedef struct {
  grpc_server *server;
  grpc_completion_queue *cq;
  grpc_slice checkpoint, change; /* packed WatchResponses */
  grpc_slice write_resp, list_resp;
  struct stream_s **streams; /* open Watch streams, for the fan-out */
  size_t n_streams, cap_streams;
  uint64_t fanouts;
} floor_t;

static floor_t F;
static volatile sig_atomic_t stopping;

typedef struct stream_s {
  bench_tag_t start_tag, send_tag, close_tag;
  grpc_call *call;
  grpc_byte_buffer *recv, *send;
  int cancelled;
  int pending; /* batches started and not completed */
  int sending; /* one SEND_MESSAGE in flight at most per call */
  int owed;    /* fan-out messages waiting for the send in flight */
  int closed;
  size_t index; /* in F.streams while open */
} stream_t;

typedef struct {
  bench_tag_t tag;
  grpc_call *call;
  grpc_byte_buffer *recv, *send;
  grpc_slice status_details;
  int cancelled;
} unary_t;

typedef struct {
  bench_tag_t tag;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array md;
} incoming_t;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static grpc_slice pack(const ProtobufCMessage *m) {
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  protobuf_c_message_pack(m, buf);
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
  free(buf);
  return s;
}

/* The messages, packed once: a checkpoint, and a change the size of one
 * tuplecast sends for a bench write. */
static void make_messages(void) {
  Base__V1__Entity e = BASE__V1__ENTITY__INIT;
  Base__V1__Subject su = BASE__V1__SUBJECT__INIT;
  Base__V1__Tuple t = BASE__V1__TUPLE__INIT;
  Base__V1__DataChange dc = BASE__V1__DATA_CHANGE__INIT;
  Base__V1__DataChange *dcs[] = {&dc};
  Base__V1__DataChanges chg = BASE__V1__DATA_CHANGES__INIT;
  Base__V1__WatchResponse wr = BASE__V1__WATCH_RESPONSE__INIT;
  e.type = "repository";
  e.id = "b18a0c2f3e4d5b6a7c81234-1000000-0";
  su.type = "user";
  su.id = "u0";
  t.entity = &e;
  t.relation = "owner";
  t.subject = &su;
  dc.operation = BASE__V1__DATA_CHANGE__OPERATION__OPERATION_CREATE;
  dc.type_case = BASE__V1__DATA_CHANGE__TYPE_TUPLE;
  dc.tuple = &t;
  chg.snap_token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  wr.changes = &chg;
  F.checkpoint = pack(&wr.base);
  chg.data_changes = dcs;
  chg.n_data_changes = 1;
  F.change = pack(&wr.base);
  Base__V1__DataWriteResponse dw = BASE__V1__DATA_WRITE_RESPONSE__INIT;
  dw.snap_token = chg.snap_token;
  F.write_resp = pack(&dw.base);
  Base__V1__SchemaListResponse sl = BASE__V1__SCHEMA_LIST_RESPONSE__INIT;
  sl.head = "floor";
  F.list_resp = pack(&sl.base);
}

static grpc_byte_buffer *buffer_of(grpc_slice s) { return grpc_raw_byte_buffer_create(&s, 1); }

static int start(grpc_call *call, const grpc_op *ops, size_t n, bench_tag_t *tag) {
  return grpc_call_start_batch(call, ops, n, tag, NULL) == GRPC_CALL_OK ? 0 : -1;
}

/* ---- Watch streams ---------------------------------------------------------- */

static void stream_maybe_free(stream_t *s) {
  if (!s->closed || s->pending) return;
  if (s->recv) grpc_byte_buffer_destroy(s->recv);
  grpc_call_unref(s->call);
  free(s);
}

static void stream_send(stream_t *s) {
  grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
  op.data.send_message.send_message = s->send = buffer_of(F.change);
  s->sending = 1;
  if (start(s->call, &op, 1, &s->send_tag) == 0)
    s->pending++;
  else {
    grpc_byte_buffer_destroy(s->send);
    s->send = NULL;
    s->sending = 0;
  }
}

static void stream_sent(bench_tag_t *tag, int ok) {
  stream_t *s = (stream_t *)((char *)tag - offsetof(stream_t, send_tag));
  (void)ok;
  s->pending--;
  grpc_byte_buffer_destroy(s->send);
  s->send = NULL;
  s->sending = 0;
  if (s->owed && !s->closed) {
    s->owed--;
    stream_send(s);
  }
  stream_maybe_free(s);
}

/* The first batch (metadata, request, checkpoint) is done: free its buffers
 * now, so an idle stream holds only what gRPC needs. */
static void stream_started(bench_tag_t *tag, int ok) {
  stream_t *s = (stream_t *)((char *)tag - offsetof(stream_t, start_tag));
  (void)ok;
  if (s->recv) grpc_byte_buffer_destroy(s->recv);
  s->recv = NULL;
  stream_sent(&s->send_tag, ok);
}

static void stream_closed(bench_tag_t *tag, int ok) {
  stream_t *s = (stream_t *)((char *)tag - offsetof(stream_t, close_tag));
  (void)ok;
  s->pending--;
  s->closed = 1;
  F.streams[s->index] = F.streams[--F.n_streams];
  F.streams[s->index]->index = s->index;
  stream_maybe_free(s);
}

static void watch_start(grpc_call *call) {
  stream_t *s = calloc(1, sizeof *s);
  s->start_tag.fn = stream_started;
  s->send_tag.fn = stream_sent;
  s->close_tag.fn = stream_closed;
  s->call = call;
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_RECV_MESSAGE;
  ops[1].data.recv_message.recv_message = &s->recv;
  ops[2].op = GRPC_OP_SEND_MESSAGE;
  ops[2].data.send_message.send_message = s->send = buffer_of(F.checkpoint);
  grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
  close_op.data.recv_close_on_server.cancelled = &s->cancelled;
  s->sending = 1;
  /* RECV_CLOSE_ON_SERVER completes only when the call ends: its own batch. */
  if (start(call, ops, 3, &s->start_tag) < 0 || start(call, &close_op, 1, &s->close_tag) < 0) {
    grpc_call_cancel(call, NULL);
    fprintf(stderr, "tuplecast-grpc-floor: start_batch failed on a new stream\n");
    return; /* leaked: never happens with a fresh call */
  }
  s->pending = 2;
  if (F.n_streams == F.cap_streams) {
    F.cap_streams = F.cap_streams ? 2 * F.cap_streams : 1024;
    F.streams = realloc(F.streams, F.cap_streams * sizeof *F.streams);
  }
  s->index = F.n_streams;
  F.streams[F.n_streams++] = s;
}

/* One message to every open stream; a stream still sending the previous one
 * gets it when that completes. */
static void fan_out(void) {
  F.fanouts++;
  for (size_t i = 0; i < F.n_streams; i++) {
    stream_t *s = F.streams[i];
    if (s->sending)
      s->owed++;
    else
      stream_send(s);
  }
}

/* ---- unary calls -------------------------------------------------------------- */

static void unary_done(bench_tag_t *tag, int ok) {
  unary_t *u = (unary_t *)tag;
  (void)ok;
  if (u->recv) grpc_byte_buffer_destroy(u->recv);
  if (u->send) grpc_byte_buffer_destroy(u->send);
  grpc_call_unref(u->call);
  free(u);
}

/* Replies with resp (NULL: UNIMPLEMENTED) whatever the request says. */
static void unary_reply(grpc_call *call, const grpc_slice *resp) {
  unary_t *u = calloc(1, sizeof *u);
  u->tag.fn = unary_done;
  u->call = call;
  u->status_details = grpc_slice_from_static_string(resp ? "" : "not served by the floor");
  grpc_op ops[5];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &u->recv;
  if (resp) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = u->send = buffer_of(*resp);
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = resp ? GRPC_STATUS_OK : GRPC_STATUS_UNIMPLEMENTED;
  ops[n++].data.send_status_from_server.status_details = &u->status_details;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &u->cancelled;
  if (start(call, ops, n, &u->tag) < 0) unary_done(&u->tag, 0);
}

/* ---- incoming calls ------------------------------------------------------------- */

static void request(incoming_t *in) {
  in->call = NULL;
  grpc_call_details_init(&in->details);
  grpc_metadata_array_init(&in->md);
  grpc_server_request_call(F.server, &in->call, &in->details, &in->md, F.cq, F.cq, in);
}

static int method_is(const grpc_call_details *d, const char *m) {
  return grpc_slice_str_cmp(d->method, m) == 0;
}

static void incoming(bench_tag_t *tag, int ok) {
  incoming_t *in = (incoming_t *)tag;
  if (ok) {
    if (method_is(&in->details, "/base.v1.Watch/Watch")) {
      watch_start(in->call);
    } else if (method_is(&in->details, "/base.v1.Data/Write")) {
      unary_reply(in->call, &F.write_resp);
      fan_out();
    } else {
      unary_reply(in->call, method_is(&in->details, "/base.v1.Schema/List") ? &F.list_resp : NULL);
    }
  }
  grpc_call_details_destroy(&in->details);
  grpc_metadata_array_destroy(&in->md);
  if (ok && !stopping) request(in);
}

int main(int argc, char **argv) {
  static const struct option longs[] = {{"port", required_argument, NULL, 'p'},
                                        {"max-seconds", required_argument, NULL, 't'},
                                        {NULL, 0, NULL, 0}};
  int port = 0, opt;
  double max_s = 600;
  while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    if (opt == 'p')
      port = atoi(optarg);
    else if (opt == 't')
      max_s = atof(optarg);
    else {
      fputs("Usage: tuplecast-grpc-floor [--port N (0: any)] [--max-seconds S]\n", stderr);
      return 2;
    }
  }
  bench_raise_fd_limit(); /* as tuplecast does: a connection per descriptor */
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  grpc_init();
  make_messages();
  F.cq = grpc_completion_queue_create_for_next(NULL);
  F.server = grpc_server_create(NULL, NULL);
  grpc_server_register_completion_queue(F.server, F.cq, NULL);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int bound = grpc_server_add_http2_port(F.server, addr, creds);
  grpc_server_credentials_release(creds);
  if (bound <= 0) {
    fprintf(stderr, "tuplecast-grpc-floor: cannot listen on %s\n", addr);
    return 1;
  }
  grpc_server_start(F.server);
  incoming_t *ins = calloc(PENDING_REQUESTS, sizeof *ins);
  for (int i = 0; i < PENDING_REQUESTS; i++) {
    ins[i].tag.fn = incoming;
    request(&ins[i]);
  }
  /* The same line as tuplecast's, so scripts find the port the same way. */
  fprintf(stderr, "tuplecast-grpc-floor: grpc listening on port %d\n", bound);

  int64_t end = bench_now_ns() + (int64_t)(max_s * 1e9);
  while (!stopping && bench_now_ns() < end) {
    gpr_timespec until =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(F.cq, until, NULL);
    if (ev.type == GRPC_OP_COMPLETE) ((bench_tag_t *)ev.tag)->fn(ev.tag, ev.success);
  }
  fprintf(stderr, "tuplecast-grpc-floor: stopping; %zu streams open, %llu fan-outs\n", F.n_streams,
          (unsigned long long)F.fanouts);
  /* Ending thousands of calls one by one buys nothing for a benchmark
   * process: cancel them, give the shutdown a bounded moment, and exit. */
  stopping = 1;
  bench_tag_t shutdown_tag = {0};
  grpc_server_shutdown_and_notify(F.server, F.cq, &shutdown_tag);
  grpc_server_cancel_all_calls(F.server);
  int64_t bound_ns = bench_now_ns() + 5000000000;
  while (bench_now_ns() < bound_ns) {
    gpr_timespec until =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(F.cq, until, NULL);
    if (ev.type != GRPC_OP_COMPLETE) continue;
    if (ev.tag == &shutdown_tag) break;
    ((bench_tag_t *)ev.tag)->fn(ev.tag, ev.success);
  }
  return 0;
}
