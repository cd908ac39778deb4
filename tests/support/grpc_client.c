#include "grpc_client.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

struct tc_client_s {
  grpc_channel *channel;
  grpc_completion_queue *cq;
};

tc_client_t *tc_client_new(const char *target) {
  tc_client_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  grpc_init();
  /* A local subchannel pool gives each client its own connection instead of
   * one shared by every channel with the same args. */
  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1},
  };
  grpc_channel_args chargs = {.num_args = sizeof args / sizeof args[0], .args = args};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  c->channel = grpc_channel_create(target, creds, &chargs);
  grpc_channel_credentials_release(creds);
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  return c;
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

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) return NULL;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  ProtobufCMessage *msg =
      protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  return msg;
}

static int call(tc_client_t *c, const char *method, grpc_slice payload,
                const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                char **details, const char *authorization, int timeout_ms) {
  if (resp) *resp = NULL;
  if (details) *details = NULL;
  grpc_slice path = grpc_slice_from_copied_string(method);
  gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
  grpc_call *gcall = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                              path, NULL, deadline, NULL);
  grpc_slice_unref(path);

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
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = authorization ? 1 : 0;
  ops[0].data.send_initial_metadata.metadata = &md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &status_details;

  int tag;
  if (grpc_call_start_batch(gcall, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
    /* The call's deadline bounds the wait. */
    grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
  } else {
    status = GRPC_STATUS_INTERNAL;
    status_details = grpc_slice_from_static_string("client: start_batch failed");
  }

  if (status == GRPC_STATUS_OK && resp_desc && resp) {
    *resp = recv ? unpack(resp_desc, recv) : NULL;
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
  grpc_slice payload = grpc_slice_malloc(protobuf_c_message_get_packed_size(req));
  protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(payload));
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
