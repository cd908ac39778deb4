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

ProtobufCMessage *tc_grpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader reader;
  if (!bb || !grpc_byte_buffer_reader_init(&reader, bb)) return NULL;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  ProtobufCMessage *msg =
      protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  return msg;
}
