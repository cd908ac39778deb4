/* Fuzz target: the proto3 JSON codec (transport/json/pbjson.c) over every
 * request and response message of the method table.
 *
 * An input is [selector byte][JSON text]: the selector picks the method
 * (modulo the table's size) and its input message, or, with the high bit
 * set, its output message.  The text is decoded as the HTTP gateway decodes
 * a body; what decodes is encoded again and the encoding decoded: the second
 * message must encode to the same text and pack to as many protobuf bytes
 * (a value the codec reads is a value it writes back unchanged; map entries
 * may come back in another order, the encoding sorts them by key).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "pbjson.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len ? *len : 1);
  if (!buf || protobuf_c_message_pack(m, buf) != *len) abort();
  return buf;
}

static void round_trip(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m) {
  char *text = tc_json_encode(m);
  if (!text) return; /* an Any of a type we do not know, as protojson refuses it */
  ProtobufCMessage *again = NULL;
  char *err = NULL;
  if (tc_json_decode(d, text, strlen(text), &again, &err) != 0) {
    fprintf(stderr, "fuzz_json: %s: our own encoding %s does not decode: %s\n", d->name, text,
            err ? err : "out of memory");
    abort();
  }
  char *text2 = tc_json_encode(again);
  size_t n1, n2;
  uint8_t *b1 = pack(m, &n1), *b2 = pack(again, &n2);
  if (!text2 || strcmp(text, text2) != 0 || n1 != n2) {
    fprintf(stderr, "fuzz_json: %s: %s decodes to another message: %s\n", d->name, text,
            text2 ? text2 : "(not encodable)");
    abort();
  }
  free(b1);
  free(b2);
  free(text2);
  protobuf_c_message_free_unpacked(again, NULL);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static size_t nm;
  if (!nm)
    while (tc_method_at(nm)) nm++;
  if (size < 1) return 0;
  const tc_method_t *m = tc_method_at((data[0] & 0x7f) % nm);
  const ProtobufCMessageDescriptor *d = data[0] & 0x80 ? m->output : m->input;
  ProtobufCMessage *msg = NULL;
  char *err = NULL;
  if (tc_json_decode(d, (const char *)data + 1, size - 1, &msg, &err) == 0) {
    if (err) abort(); /* no message with a success */
    round_trip(d, msg);
    protobuf_c_message_free_unpacked(msg, NULL);
  } else if (msg)
    abort(); /* no message with a failure */
  free(err);
  return 0;
}
