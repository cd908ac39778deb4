/* One RPC in flight, as the transport hands it to the core, and the table of
 * methods the core serves.  Transport-neutral: gRPC and the HTTP gateway both
 * decode a request, look its method up here and call the handler.
 *
 * Ownership: the transport owns tc_call_t and the decoded request, and keeps
 * both alive until done() has been called (and, for a cancelled call, until
 * the handler's pending work has called done()).  The response passed to
 * done() is borrowed for the duration of that call.
 */
#ifndef TC_CALL_H
#define TC_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

typedef struct tc_server_s tc_server_t;
typedef struct tc_call_s tc_call_t;

/* status 0: response is the reply; else status is a TC_E* code and message
 * the text for the client (never NULL then). */
typedef void (*tc_call_done_fn)(tc_call_t *call, int status, const char *message,
                                const ProtobufCMessage *response);
/* Server streaming: queues one message (packed at once; msg is borrowed).
 * Returns 0, or TC_ECANCELLED once the client has left. */
typedef int (*tc_call_send_fn)(tc_call_t *call, const ProtobufCMessage *msg);
typedef void (*tc_call_event_fn)(tc_call_t *call);

struct tc_call_s {
  tc_server_t *server;
  const struct tc_method_s *method;
  const ProtobufCMessage *request;
  const char *authorization; /* "authorization" metadata value, or NULL */
  size_t authorization_len;  /* its real length (it may hold a NUL) */
  int cancelled;             /* set by the transport when the client left */
  tc_call_done_fn done;      /* set by the transport */
  void *transport;           /* transport's own per-call state */

  /* Server-streaming calls only.  The transport keeps one message in flight
   * and queues the rest; done() with status 0 ends the stream after the queue
   * is sent, done() with an error ends it at once, dropping the queue. */
  tc_call_send_fn send;       /* set by the transport */
  size_t pending;             /* transport: messages queued or in flight */
  tc_call_event_fn on_sent;   /* handler, optional: a message left the queue
                                * (its SEND_MESSAGE completed) */
  tc_call_event_fn on_cancel; /* handler: the client went away (cancel,
                                * deadline, disconnect); done() is still owed */
  tc_call_event_fn open;      /* set by the transport, optional: sends the
                                * response headers now, before any message
                                * (an HTTP client waits for them) */
  void *handler;              /* handler's own per-call state */
  char *errmsg;               /* malloc'd; set by tc_call_error(), freed by the transport */
  char peer[64];              /* transport, optional: the client's "ip:port" for the log */
  uint64_t started_ns;        /* set by tc_call_start (uv_hrtime) */

  /* Client-streaming (bidirectional) calls only.  The handler calls read()
   * for the client's next message, one at a time; on_message then runs with
   * call->request set to it (the previous one is freed), or NULL once the
   * client has sent its last.  A message that does not decode ends the call
   * with INVALID_ARGUMENT and runs on_cancel; done() is still owed. */
  tc_call_event_fn read;       /* set by the transport */
  tc_call_event_fn on_message; /* handler */
};

/* A handler either returns a negative TC_E* code at once (after
 * tc_call_error() set the message), in which case done() is never called, or
 * returns 0 and calls call->done exactly once on a later loop turn. */
typedef int (*tc_handler_fn)(tc_call_t *call);

typedef struct tc_method_s {
  const char *path; /* "/base.v1.Data/Write" */
  const ProtobufCMessageDescriptor *input, *output;
  tc_handler_fn handler; /* NULL: answered UNIMPLEMENTED, once admitted */
  int server_streaming;
  int client_streaming; /* the client sends a stream too (call->read) */
  /* A transport's own method that still passes the admission gate, as
   * Permify's middleware covers it (gRPC server reflection). */
  int admit;
} tc_method_t;

/* Runs a decoded call, on tc_handler_fn's contract: a method of the table
 * passes the admission gate first (validation, rate limit, authentication,
 * as Permify's middleware does: before anything else, even for a method we
 * do not implement); a transport's own method (gRPC health) goes straight
 * to its handler unless it sets admit.  A method without a handler is answered UNIMPLEMENTED. */
int tc_call_start(tc_call_t *call);

/* NULL when the path names no method of ours (answer UNIMPLEMENTED). */
const tc_method_t *tc_method_find(const char *path);
/* The table's i-th method, NULL past its end: tests walk every method. */
const tc_method_t *tc_method_at(size_t i);

/* The call's request line at info (method, tenant, status, duration, peer;
 * gRPC health checks at debug), from the transport's done(): protocol is
 * "grpc" or "http", status and message as done() got them.  Also counts the
 * call for /metrics (metrics.h), whatever the log level. */
void tc_call_log_end(const tc_call_t *call, const char *protocol, int status, const char *message);

/* Sets call->errmsg (printf-style) and returns code, for `return tc_call_error(...)`. */
int tc_call_error(tc_call_t *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
