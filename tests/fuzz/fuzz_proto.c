/* Fuzz target: protobuf requests to every method of the table, end to end.
 *
 * An input is a sequence of up to MAX_CALLS requests, each [method byte]
 * [length, 2 bytes little-endian][protobuf bytes]: the method is the byte
 * modulo the table's size (0xff instead cancels the newest open stream).
 * Each one is unpacked with protobuf-c as the gRPC transport does and
 * started with tc_call_start on a fresh server (fuzz_server.h): Permify's
 * validation, the gate, the handler, the tenant actor and the example
 * backend.  A unary call must answer within 10 s; a Watch stays open while
 * the next requests run and is ended by the server's stop.  Answers are
 * packed and encoded as JSON, as the transports would.  With TT_FUZZ_TRACE
 * set in the environment each call's outcome is printed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "fuzz_server.h"
#include "pbjson.h"
#include "tuplecast/errors.h"

#define MAX_CALLS 32

typedef struct fcall_s {
  tc_call_t call;
  ProtobufCMessage *request;
  int done;
} fcall_t;

static void encode(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  if (buf && protobuf_c_message_pack(m, buf) != n) abort();
  free(buf);
  free(tc_json_encode(m));
}

static void on_done(tc_call_t *call, int status, const char *message,
                    const ProtobufCMessage *response) {
  fcall_t *fc = (fcall_t *)call;
  if (fc->done++) abort(); /* done() twice */
  if (getenv("TT_FUZZ_TRACE"))
    fprintf(stderr, "fuzz_proto: %s: %d %s\n", call->method->path, status, message ? message : "");
  if (status == 0 && response) encode(response);
  if (status != 0 && !message) abort(); /* the contract: a message with every error */
}

static int on_send(tc_call_t *call, const ProtobufCMessage *msg) {
  if (call->cancelled) return TC_ECANCELLED;
  encode(msg);
  call->pending++;
  return 0;
}

/* Every queued stream message leaves the queue (the transport's on_sent). */
static void drain(fcall_t **calls, size_t n) {
  for (size_t i = 0; i < n; i++) {
    tc_call_t *c = &calls[i]->call;
    while (!calls[i]->done && !c->cancelled && c->pending) {
      c->pending--;
      if (c->on_sent) c->on_sent(c);
    }
  }
}

static void cancel_newest(fcall_t **calls, size_t n) {
  for (size_t i = n; i-- > 0;) {
    tc_call_t *c = &calls[i]->call;
    if (c->send && !calls[i]->done && !c->cancelled) {
      c->cancelled = 1;
      c->pending = 0;
      if (c->on_cancel) c->on_cancel(c);
      return;
    }
  }
}

static fcall_t *start(tc_server_t *srv, const tc_method_t *m, const uint8_t *p, size_t len) {
  ProtobufCMessage *req = protobuf_c_message_unpack(m->input, NULL, len, p);
  if (!req) return NULL; /* the transport answers INTERNAL without a call */
  fcall_t *fc = calloc(1, sizeof *fc);
  if (!fc) abort();
  fc->request = req;
  fc->call.server = srv;
  fc->call.method = m;
  fc->call.request = req;
  fc->call.done = on_done;
  if (m->server_streaming) fc->call.send = on_send;
  int rc = tc_call_start(&fc->call);
  if (rc != 0) {
    if (rc > 0 || !fc->call.errmsg) abort(); /* a refusal says why */
    fc->done = 1;
  }
  if (!m->server_streaming) tt_fuzz_run_until(&fc->done, m->path);
  return fc;
}

static size_t n_methods(void) {
  size_t n = 0;
  while (tc_method_at(n)) n++;
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static size_t nm;
  if (!nm) nm = n_methods();
  tc_server_t *srv = tt_fuzz_server_open();
  fcall_t *calls[MAX_CALLS];
  size_t n = 0;
  for (size_t off = 0; off + 3 <= size && n < MAX_CALLS;) {
    uint8_t sel = data[off];
    size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
    off += 3;
    if (len > size - off) len = size - off;
    if (sel == 0xff)
      cancel_newest(calls, n);
    else if ((calls[n] = start(srv, tc_method_at(sel % nm), data + off, len)))
      n++;
    off += len;
    for (int i = 0; i < 4; i++) uv_run(tt_fuzz_loop(), UV_RUN_NOWAIT);
    drain(calls, n);
  }
  tt_fuzz_server_close(srv);
  for (size_t i = 0; i < n; i++) {
    if (!calls[i]->done) abort(); /* a stream the server's stop did not end */
    protobuf_c_message_free_unpacked(calls[i]->request, NULL);
    free(calls[i]->call.errmsg);
    free(calls[i]);
  }
  return 0;
}
