#include "grpc_client.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "grpc_codec.h"

struct tc_client_s {
  grpc_channel *channel;
  grpc_completion_queue *cq;
};

/* Takes creds.  small_window: tc_client_new_small_window's. */
static tc_client_t *client_new(const char *target, grpc_channel_credentials *creds,
                               int small_window) {
  tc_client_t *c = calloc(1, sizeof *c);
  if (!c) {
    grpc_channel_credentials_release(creds);
    return NULL;
  }
  /* A local subchannel pool gives each client its own connection instead of
   * one shared by every channel with the same args. */
  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_BDP_PROBE, .value.integer = 0},
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
       .value.integer = 16384},
  };
  grpc_channel_args chargs = {.num_args = sizeof args / sizeof args[0] - (small_window ? 0 : 2),
                              .args = args};
  c->channel = grpc_channel_create(target, creds, &chargs);
  grpc_channel_credentials_release(creds);
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  return c;
}

tc_client_t *tc_client_new(const char *target) {
  grpc_init();
  return client_new(target, grpc_insecure_credentials_create(), 0);
}

tc_client_t *tc_client_new_small_window(const char *target) {
  grpc_init();
  return client_new(target, grpc_insecure_credentials_create(), 1);
}

tc_client_t *tc_client_new_tls(const char *target, const char *root_pem) {
  grpc_init();
  return client_new(target, grpc_ssl_credentials_create(root_pem, NULL, NULL, NULL), 0);
}

void tc_client_free(tc_client_t *c) {
  if (!c) return;
  grpc_channel_destroy(c->channel);
  grpc_completion_queue_shutdown(c->cq);
  grpc_completion_queue_destroy(c->cq);
  free(c);
  grpc_shutdown();
}

static char *slice_dup(grpc_slice s) {
  size_t len = GRPC_SLICE_LENGTH(s);
  char *p = malloc(len + 1);
  if (!p) return NULL;
  memcpy(p, GRPC_SLICE_START_PTR(s), len);
  p[len] = '\0';
  return p;
}

static gpr_timespec after_ms(int ms) {
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static grpc_call *new_call(tc_client_t *c, const char *method, gpr_timespec deadline) {
  grpc_slice path = grpc_slice_from_copied_string(method);
  grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, path,
                                             NULL, deadline, NULL);
  grpc_slice_unref(path);
  return call;
}

/* ops[0..4): SEND_INITIAL_METADATA (md only if with_auth), SEND_MESSAGE,
 * SEND_CLOSE and RECV_INITIAL_METADATA. */
static void request_ops(grpc_op ops[4], grpc_metadata *md, int with_auth, grpc_byte_buffer *send,
                        grpc_metadata_array *initial) {
  memset(ops, 0, 4 * sizeof *ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = with_auth ? 1 : 0;
  ops[0].data.send_initial_metadata.metadata = md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = initial;
}

static void status_op(grpc_op *op, grpc_metadata_array *trailing, grpc_status_code *status,
                      grpc_slice *details) {
  memset(op, 0, sizeof *op);
  op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op->data.recv_status_on_client.trailing_metadata = trailing;
  op->data.recv_status_on_client.status = status;
  op->data.recv_status_on_client.status_details = details;
}

static int call(tc_client_t *c, const char *method, grpc_slice payload,
                const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                char **details, const char *authorization, int timeout_ms) {
  if (resp) *resp = NULL;
  if (details) *details = NULL;
  grpc_call *gcall = new_call(c, method, after_ms(timeout_ms));

  grpc_metadata md = {.key = grpc_slice_from_static_string("authorization"),
                      .value = grpc_slice_from_copied_string(authorization ? authorization : "")};
  grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_byte_buffer *recv = NULL;
  grpc_metadata_array initial, trailing;
  grpc_metadata_array_init(&initial);
  grpc_metadata_array_init(&trailing);
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice status_details = grpc_empty_slice();

  grpc_op ops[6];
  request_ops(ops, &md, authorization != NULL, send, &initial);
  memset(&ops[4], 0, sizeof ops[4]);
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  status_op(&ops[5], &trailing, &status, &status_details);

  int tag;
  if (grpc_call_start_batch(gcall, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
    /* The call's deadline bounds the wait. */
    grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
  } else {
    status = GRPC_STATUS_INTERNAL;
    status_details = grpc_slice_from_static_string("client: start_batch failed");
  }

  if (status == GRPC_STATUS_OK && resp_desc && resp) {
    *resp = recv ? tc_grpc_unpack(resp_desc, recv) : NULL;
    if (!*resp) {
      status = GRPC_STATUS_INTERNAL;
      grpc_slice_unref(status_details);
      status_details = grpc_slice_from_static_string("client: cannot decode the response");
    }
  }
  if (details) *details = slice_dup(status_details);

  grpc_slice_unref(status_details);
  grpc_slice_unref(md.value);
  grpc_metadata_array_destroy(&initial);
  grpc_metadata_array_destroy(&trailing);
  grpc_byte_buffer_destroy(send);
  if (recv) grpc_byte_buffer_destroy(recv);
  grpc_call_unref(gcall);
  return (int)status;
}

int tc_client_unary(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                    char **details, const char *authorization, int timeout_ms) {
  grpc_slice payload = tc_grpc_pack_slice(req);
  int status = call(c, method, payload, resp_desc, resp, details, authorization, timeout_ms);
  grpc_slice_unref(payload);
  return status;
}

int tc_client_unary_raw(tc_client_t *c, const char *method, const void *buf, size_t len,
                        const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                        char **details, int timeout_ms) {
  grpc_slice payload = grpc_slice_from_copied_buffer(buf, len);
  int status = call(c, method, payload, resp_desc, resp, details, NULL, timeout_ms);
  grpc_slice_unref(payload);
  return status;
}

/* A server-streaming call: three batches, each tagged with the address of
 * its *_pending flag, plucked from the client's queue by that tag.  start
 * sends the request and receives the initial metadata; recv is one
 * RECV_MESSAGE, re-armed after each message; status is RECV_STATUS_ON_CLIENT.
 * A wait that times out leaves its batch pending for the next wait. */
struct tc_stream_s {
  tc_client_t *c;
  grpc_call *call;
  grpc_slice authorization;
  grpc_byte_buffer *req;
  grpc_metadata_array initial, trailing;
  grpc_byte_buffer *recv;
  grpc_status_code status;
  grpc_slice status_details;
  char *details;
  int start_pending, recv_pending, status_pending, send_pending;
  int ended; /* tc_stream_next() returned 1 */
};

static int stream_batch(tc_stream_t *s, const grpc_op *ops, size_t n, int *pending) {
  if (grpc_call_start_batch(s->call, ops, n, pending, NULL) != GRPC_CALL_OK) return -1;
  *pending = 1;
  return 0;
}

/* 1 once the batch tagged pending has completed, 0 if deadline came first. */
static int stream_wait(tc_stream_t *s, int *pending, gpr_timespec deadline) {
  if (*pending &&
      grpc_completion_queue_pluck(s->c->cq, pending, deadline, NULL).type != GRPC_OP_COMPLETE)
    return 0;
  *pending = 0;
  return 1;
}

static int arm_recv(tc_stream_t *s) {
  grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
  op.data.recv_message.recv_message = &s->recv;
  return stream_batch(s, &op, 1, &s->recv_pending);
}

tc_stream_t *tc_client_stream_open(tc_client_t *c, const char *method, const ProtobufCMessage *req,
                                   const char *authorization, int deadline_ms) {
  tc_stream_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->c = c;
  s->call = new_call(c, method,
                     deadline_ms > 0 ? after_ms(deadline_ms) : gpr_inf_future(GPR_CLOCK_MONOTONIC));
  s->authorization = grpc_slice_from_copied_string(authorization ? authorization : "");
  s->req = req ? tc_grpc_pack(req) : NULL;
  grpc_metadata_array_init(&s->initial);
  grpc_metadata_array_init(&s->trailing);
  s->status = GRPC_STATUS_UNKNOWN;
  s->status_details = grpc_empty_slice();

  grpc_metadata md = {.key = grpc_slice_from_static_string("authorization"),
                      .value = s->authorization};
  grpc_op ops[4], status;
  request_ops(ops, &md, authorization != NULL, s->req, &s->initial);
  status_op(&status, &s->trailing, &s->status, &s->status_details);
  /* Without req only the headers go now; tc_stream_send_raw the messages. */
  grpc_op head[2] = {ops[0], ops[3]};
  if ((req ? stream_batch(s, ops, 4, &s->start_pending)
           : stream_batch(s, head, 2, &s->start_pending)) < 0 ||
      stream_batch(s, &status, 1, &s->status_pending) < 0 || arm_recv(s) < 0) {
    tc_stream_free(s);
    return NULL;
  }
  return s;
}

int tc_stream_send_raw(tc_stream_t *s, const void *buf, size_t len, int last) {
  if (!stream_wait(s, &s->send_pending, gpr_inf_future(GPR_CLOCK_MONOTONIC))) return -1;
  if (s->req) grpc_byte_buffer_destroy(s->req);
  grpc_slice slice = grpc_slice_from_copied_buffer(buf, len);
  s->req = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_MESSAGE;
  ops[0].data.send_message.send_message = s->req;
  ops[1].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  return stream_batch(s, ops, last ? 2 : 1, &s->send_pending);
}

int tc_stream_send_request(tc_stream_t *s, const ProtobufCMessage *req) {
  grpc_slice packed = tc_grpc_pack_slice(req);
  int rc = tc_stream_send_raw(s, GRPC_SLICE_START_PTR(packed), GRPC_SLICE_LENGTH(packed), 1);
  grpc_slice_unref(packed);
  return rc;
}

int tc_stream_next(tc_stream_t *s, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg,
                   int timeout_ms) {
  *msg = NULL;
  if (s->ended) return 1;
  gpr_timespec deadline = after_ms(timeout_ms);
  if (!stream_wait(s, &s->recv_pending, deadline)) return -1;
  if (s->recv) {
    *msg = tc_grpc_unpack(desc, s->recv);
    grpc_byte_buffer_destroy(s->recv);
    s->recv = NULL;
    if (*msg && arm_recv(s) == 0) return 0;
    if (*msg) protobuf_c_message_free_unpacked(*msg, NULL);
    *msg = NULL;
    grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL,
                                 "client: cannot decode a stream message", NULL);
  }
  /* No message: the call is over and its status on the way. */
  if (!stream_wait(s, &s->status_pending, deadline)) return -1;
  s->details = slice_dup(s->status_details);
  s->ended = 1;
  return 1;
}

int tc_stream_status(tc_stream_t *s, const char **details) {
  if (details) *details = s->ended ? s->details : NULL;
  return s->ended ? (int)s->status : -1;
}

void tc_stream_cancel(tc_stream_t *s) { grpc_call_cancel(s->call, NULL); }

void tc_stream_free(tc_stream_t *s) {
  if (!s) return;
  if (s->status_pending) grpc_call_cancel(s->call, NULL);
  /* Cancelled or over, so every batch completes. */
  gpr_timespec never = gpr_inf_future(GPR_CLOCK_MONOTONIC);
  stream_wait(s, &s->start_pending, never);
  stream_wait(s, &s->send_pending, never);
  stream_wait(s, &s->recv_pending, never);
  stream_wait(s, &s->status_pending, never);
  if (s->recv) grpc_byte_buffer_destroy(s->recv);
  if (s->req) grpc_byte_buffer_destroy(s->req);
  grpc_slice_unref(s->authorization);
  grpc_slice_unref(s->status_details);
  grpc_metadata_array_destroy(&s->initial);
  grpc_metadata_array_destroy(&s->trailing);
  free(s->details);
  grpc_call_unref(s->call);
  free(s);
}
