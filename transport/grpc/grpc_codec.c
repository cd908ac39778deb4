#include "grpc_codec.h"

#include <grpc/byte_buffer_reader.h>

grpc_slice tc_grpc_pack_slice(const ProtobufCMessage *msg) {
  grpc_slice slice = grpc_slice_malloc(protobuf_c_message_get_packed_size(msg));
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
  return slice;
}

grpc_byte_buffer *tc_grpc_pack(const ProtobufCMessage *msg) {
  grpc_slice slice = tc_grpc_pack_slice(msg);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return bb;
}

int tc_grpc_unpack_checked(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
                           tc_grpc_check_fn check, ProtobufCMessage **out, char **errmsg) {
  grpc_byte_buffer_reader reader;
  *out = NULL;
  *errmsg = NULL;
  if (!bb || !grpc_byte_buffer_reader_init(&reader, bb)) return 0;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  const uint8_t *data = GRPC_SLICE_START_PTR(all);
  size_t len = GRPC_SLICE_LENGTH(all);
  int rc = check ? check(desc, data, len, errmsg) : 0;
  if (rc == 0) *out = protobuf_c_message_unpack(desc, NULL, len, data);
  grpc_slice_unref(all);
  return rc;
}

ProtobufCMessage *tc_grpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb) {
  ProtobufCMessage *msg;
  char *err;
  tc_grpc_unpack_checked(desc, bb, NULL, &msg, &err);
  return msg;
}
