/* The serialized google.protobuf.FileDescriptorSet of every service
 * tuplecast serves over gRPC (base.v1, grpc.health.v1 and both reflection
 * packages) with all the files they import, made by protoc-c at build time
 * (--include_imports) and compiled in (proto/embed.cmake).  gRPC server
 * reflection answers from it.
 *
 * Threading: constant data, any thread.
 * Ownership: static; never freed.
 */
#ifndef TC_DESCRIPTOR_SET_H
#define TC_DESCRIPTOR_SET_H

#include <stddef.h>

extern const unsigned char tc_descriptor_set[];
extern const size_t tc_descriptor_set_len;

#endif
