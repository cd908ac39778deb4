/* Any packing and the base.v1 type registry behind Any unpacking. */
#include "any.h"

#include <stdlib.h>
#include <string.h>

#include "base/v1/base.pb-c.h"
#include "base/v1/errors.pb-c.h"
#include "base/v1/service.pb-c.h"
#include "tuplecast/errors.h"

#define TYPE_URL_PREFIX "type.googleapis.com/"

/* protobuf-c has no per-file list of messages, so this table is kept by hand;
 * test_proto checks it against the generated headers.  The value wrappers
 * come first: they are what Attribute.value carries. */
static const ProtobufCMessageDescriptor *const registry[] = {
    &base__v1__string_value__descriptor,
    &base__v1__integer_value__descriptor,
    &base__v1__double_value__descriptor,
    &base__v1__boolean_value__descriptor,
    &base__v1__string_array_value__descriptor,
    &base__v1__integer_array_value__descriptor,
    &base__v1__double_array_value__descriptor,
    &base__v1__boolean_array_value__descriptor,
    &base__v1__child__descriptor,
    &base__v1__leaf__descriptor,
    &base__v1__rewrite__descriptor,
    &base__v1__schema_definition__descriptor,
    &base__v1__entity_definition__descriptor,
    &base__v1__rule_definition__descriptor,
    &base__v1__attribute_definition__descriptor,
    &base__v1__relation_definition__descriptor,
    &base__v1__permission_definition__descriptor,
    &base__v1__relation_reference__descriptor,
    &base__v1__argument__descriptor,
    &base__v1__call__descriptor,
    &base__v1__computed_attribute__descriptor,
    &base__v1__computed_user_set__descriptor,
    &base__v1__tuple_to_user_set__descriptor,
    &base__v1__tuple_set__descriptor,
    &base__v1__tuple__descriptor,
    &base__v1__attribute__descriptor,
    &base__v1__tuples__descriptor,
    &base__v1__attributes__descriptor,
    &base__v1__entity__descriptor,
    &base__v1__entity_and_relation__descriptor,
    &base__v1__subject__descriptor,
    &base__v1__attribute_filter__descriptor,
    &base__v1__tuple_filter__descriptor,
    &base__v1__entity_filter__descriptor,
    &base__v1__subject_filter__descriptor,
    &base__v1__tenant__descriptor,
    &base__v1__data_changes__descriptor,
    &base__v1__data_change__descriptor,
    &base__v1__data_bundle__descriptor,
    &base__v1__operation__descriptor,
    &base__v1__partials__descriptor,
    &base__v1__error_response__descriptor,
    &base__v1__watch_request__descriptor,
    &base__v1__watch_response__descriptor,
    &base__v1__watch_filter__descriptor,
    &base__v1__schema_write_request__descriptor,
    &base__v1__schema_write_response__descriptor,
    &base__v1__schema_partial_write_request__descriptor,
    &base__v1__schema_partial_write_request_metadata__descriptor,
    &base__v1__schema_partial_write_response__descriptor,
    &base__v1__schema_read_request__descriptor,
    &base__v1__schema_read_request_metadata__descriptor,
    &base__v1__schema_read_response__descriptor,
    &base__v1__schema_list_request__descriptor,
    &base__v1__schema_list_response__descriptor,
    &base__v1__schema_list__descriptor,
    &base__v1__data_write_request__descriptor,
    &base__v1__data_write_request_metadata__descriptor,
    &base__v1__data_write_response__descriptor,
    &base__v1__relationship_write_request__descriptor,
    &base__v1__relationship_write_request_metadata__descriptor,
    &base__v1__relationship_write_response__descriptor,
    &base__v1__relationship_read_request__descriptor,
    &base__v1__relationship_read_request_metadata__descriptor,
    &base__v1__relationship_read_response__descriptor,
    &base__v1__attribute_read_request__descriptor,
    &base__v1__attribute_read_request_metadata__descriptor,
    &base__v1__attribute_read_response__descriptor,
    &base__v1__data_delete_request__descriptor,
    &base__v1__data_delete_response__descriptor,
    &base__v1__relationship_delete_request__descriptor,
    &base__v1__relationship_delete_response__descriptor,
    &base__v1__bundle_run_request__descriptor,
    &base__v1__bundle_run_response__descriptor,
    &base__v1__bundle_write_request__descriptor,
    &base__v1__bundle_write_response__descriptor,
    &base__v1__bundle_read_request__descriptor,
    &base__v1__bundle_read_response__descriptor,
    &base__v1__bundle_delete_request__descriptor,
    &base__v1__bundle_delete_response__descriptor,
    &base__v1__tenant_create_request__descriptor,
    &base__v1__tenant_create_response__descriptor,
    &base__v1__tenant_delete_request__descriptor,
    &base__v1__tenant_delete_response__descriptor,
    &base__v1__tenant_list_request__descriptor,
    &base__v1__tenant_list_response__descriptor,
};

#define REGISTRY_LEN (sizeof(registry) / sizeof(registry[0]))

int tc_any_pack(const ProtobufCMessage *msg, Google__Protobuf__Any *out) {
  const char *name = msg->descriptor->name;
  size_t prefix_len = strlen(TYPE_URL_PREFIX);
  size_t name_len = strlen(name);
  size_t size = protobuf_c_message_get_packed_size(msg);
  char *url = malloc(prefix_len + name_len + 1);
  /* malloc(0) may return NULL, and an empty message packs to zero bytes. */
  uint8_t *value = malloc(size ? size : 1);

  if (url == NULL || value == NULL) {
    free(url);
    free(value);
    return TC_ENOMEM;
  }
  memcpy(url, TYPE_URL_PREFIX, prefix_len);
  memcpy(url + prefix_len, name, name_len + 1);
  protobuf_c_message_pack(msg, value);
  out->type_url = url;
  out->value.data = value;
  out->value.len = size;
  return 0;
}

void tc_any_clear(Google__Protobuf__Any *any) {
  /* protobuf-c's default for an unset string is a shared static "", never
   * heap memory. */
  if (any->type_url != protobuf_c_empty_string) free(any->type_url);
  free(any->value.data);
  google__protobuf__any__init(any);
}

const ProtobufCMessageDescriptor *tc_any_lookup(const char *type_url) {
  const char *slash = strrchr(type_url, '/');
  const char *name = slash ? slash + 1 : type_url;
  size_t i;

  for (i = 0; i < REGISTRY_LEN; i++) {
    if (strcmp(registry[i]->name, name) == 0) return registry[i];
  }
  return NULL;
}

ProtobufCMessage *tc_any_unpack(const Google__Protobuf__Any *any) {
  const ProtobufCMessageDescriptor *desc;

  if (any->type_url == NULL) return NULL;
  desc = tc_any_lookup(any->type_url);
  if (desc == NULL) return NULL;
  return protobuf_c_message_unpack(desc, NULL, any->value.len, any->value.data);
}

const ProtobufCMessageDescriptor *const *tc_proto_messages(size_t *n) {
  *n = REGISTRY_LEN;
  return registry;
}
