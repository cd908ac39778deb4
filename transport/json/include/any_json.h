/* A packed google.protobuf.Any as protojson text and back: the form Permify
 * keeps attribute values in (Postgres attributes.value), handed to backends
 * through the host API.
 *
 * Ownership: results are malloc'd; the caller frees them.
 */
#ifndef TC_JSON_ANY_JSON_H
#define TC_JSON_ANY_JSON_H

#include <stddef.h>
#include <stdint.h>

/* 0, TC_EINVAL (bytes that are no Any of a known type), or TC_ENOMEM. */
int tc_any_to_json(const uint8_t *any, size_t len, char **json);
/* 0, TC_EINVAL (text that is no Any), or TC_ENOMEM. */
int tc_any_from_json(const char *json, uint8_t **any, size_t *len);

#endif
