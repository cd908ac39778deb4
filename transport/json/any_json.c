#include "any_json.h"

#include <stdlib.h>
#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "pbjson.h"
#include "tuplecast/errors.h"

int tc_any_to_json(const uint8_t *any, size_t len, char **json) {
  ProtobufCMessage *m =
      protobuf_c_message_unpack(&google__protobuf__any__descriptor, NULL, len, any);
  if (!m) return TC_EINVAL;
  *json = tc_json_encode(m);
  protobuf_c_message_free_unpacked(m, NULL);
  return *json ? 0 : TC_EINVAL;
}

int tc_any_from_json(const char *json, uint8_t **any, size_t *len) {
  ProtobufCMessage *m = NULL;
  int rc = tc_json_decode(&google__protobuf__any__descriptor, json, strlen(json), &m, NULL);
  if (rc != 0) return rc;
  *len = protobuf_c_message_get_packed_size(m);
  *any = malloc(*len ? *len : 1);
  if (*any) protobuf_c_message_pack(m, *any);
  protobuf_c_message_free_unpacked(m, NULL);
  return *any ? 0 : TC_ENOMEM;
}
