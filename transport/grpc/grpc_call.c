/* One gRPC call, from its accept slot to its last completed batch.
 *
 * Batches: RECV_CLOSE_ON_SERVER on its own (completes when the call ends for
 * any reason, which is how a client leaving is noticed), RECV_MESSAGE for the
 * request, and the answer on send_tag/send_buf.  A unary call sends its reply
 * and status in one batch.  A server-streaming call queues packed messages
 * and sends them one SEND_MESSAGE at a time on msg_tag (gRPC allows one in
 * flight per call), then the status in a batch of its own; an error ends it
 * at once with grpc_call_cancel_with_status(), which does not wait for a send
 * stuck on flow control.  A call is freed when no batch is outstanding and no
 * handler still owes done().  A bidirectional call (gRPC reflection) is a
 * server stream that also reads: after the first message, which goes
 * through dispatch like any request, each call->read() posts one more
 * RECV_MESSAGE on more_tag, so at most one read is outstanding.
 *
 * The send chain is the one place where the poller thread acts on a call:
 * when a message's send completes and more are queued, it starts the next
 * one itself.  Through the loop, each message cost a round trip of two
 * thread wake-ups (measured with gRPC 1.51 on 2 cores: a unary call whose
 * completion is forwarded to a libuv thread cost 25-40 us of server CPU
 * against ~14 us handled on the poller thread, and 37-66 % of the calls/s,
 * about one context switch per call); a catch-up of thousands
 * of messages queued on one stream was bound by it.  The loop still decides
 * what is queued and when a call ends; it hears what was sent through one
 * post of msg_tag at a time.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/support/alloc.h>

#include "error.h"
#include "metrics.h"
#include "tuplecast/support.h" /* tc_format */
#include "grpc_codec.h"
#include "grpc_internal.h"
#include "listener.h"
#include "log.h"
#include "validate.h"

/* One queued stream message: packed once, here, and handed to gRPC as the
 * memory of its slice, which frees it when gRPC lets go of the bytes. */
typedef struct tc__grpc_msg_s {
  struct tc__grpc_msg_s *next;
  size_t len;
  uint8_t data[];
} tc__grpc_msg_t;

struct tc__grpc_call_s {
  tc_call_t call; /* what the handler sees; call.transport points back here */
  tc_grpc_server_t *srv;
  tc__grpc_call_t *prev, *next; /* srv->calls, once accepted */
  grpc_call *gcall;
  grpc_call_details details;
  grpc_metadata_array md;
  grpc_byte_buffer *recv_buf;
  grpc_byte_buffer *send_buf; /* the answer's message */
  /* The send chain, shared with the poller thread: only under lock. */
  pthread_mutex_t lock;
  tc__grpc_msg_t *queue, *queue_tail; /* waiting behind the one in flight */
  grpc_byte_buffer *msg_buf;          /* the SEND_MESSAGE in flight */
  int msg_in_flight;
  int chain_sent;   /* messages done (sent or failed) since the loop looked */
  int chain_ended;  /* chains that ran dry since: each was one batch */
  int chain_failed; /* a send failed: the call is over */
  int chain_posted; /* msg_tag is posted and the loop has not run it yet */
  ProtobufCMessage *request;
  char *authorization;
  tc__grpc_tag_t accept_tag, recv_tag, send_tag, msg_tag, close_tag, more_tag;
  int close_cancelled; /* out-parameter of RECV_CLOSE_ON_SERVER */
  int batches;         /* started and not yet completed */
  int owed;            /* the handler took the call and has not called done() */
  int in_handler;      /* inside a handler callback: done() may run but must not free */
  int md_sent;         /* initial metadata sent */
  int end_ok;          /* stream: done(0) called, status OK once the queue is sent */
  int answered;        /* status sent, or the call cancelled with one */
  int refused; /* a client stream's message did not decode: the status sent, which done() logs */
};

static void on_accept(tc_completion_t *comp);
static void on_recv(tc_completion_t *comp);
static void on_send(tc_completion_t *comp);
static void on_msg_sent(tc_completion_t *comp);
static void on_msg_poller(tc__grpc_tag_t *tag);
static void on_close(tc_completion_t *comp);
static void on_more(tc_completion_t *comp);

/* Drops the stream messages not yet handed to gRPC (under lock once the
 * call was accepted). */
static void drop_queue(tc__grpc_call_t *c) {
  while (c->queue) {
    tc__grpc_msg_t *m = c->queue;
    c->queue = m->next;
    free(m);
    c->call.pending--;
  }
  c->queue_tail = NULL;
}

static void release(tc__grpc_call_t *c) {
  tc_grpc_server_t *s = c->srv;
  drop_queue(c);
  if (c->gcall) grpc_call_unref(c->gcall);
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->md);
  if (c->recv_buf) grpc_byte_buffer_destroy(c->recv_buf);
  if (c->send_buf) grpc_byte_buffer_destroy(c->send_buf);
  pthread_mutex_destroy(&c->lock);
  if (c->request) protobuf_c_message_free_unpacked(c->request, NULL);
  free(c->call.errmsg);
  free(c->authorization);
  if (c->prev)
    c->prev->next = c->next;
  else if (s->calls == c)
    s->calls = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c);
  tc__grpc_server_released(s);
}

static void maybe_release(tc__grpc_call_t *c) {
  if (c->batches || c->owed || c->in_handler) return;
  release(c);
}

static void start_batch(tc__grpc_call_t *c, const grpc_op *ops, size_t n, tc__grpc_tag_t *tag) {
  tc__grpc_poller_batch_started(c->srv);
  grpc_call_error e = grpc_call_start_batch(c->gcall, ops, n, tag, NULL);
  if (e == GRPC_CALL_OK) {
    c->batches++;
    return;
  }
  /* The tag will never fire; cancelling makes the other batches end. */
  tc_log(TC_LOG_ERROR, "grpc: start_batch failed: %s", grpc_call_error_to_string(e));
  grpc_call_cancel(c->gcall, NULL);
}

/* Sends initial metadata unless a stream message carried it already, msg if
 * any (ownership passes to the call) and the status, with details verbatim. */
static void answer(tc__grpc_call_t *c, grpc_status_code code, const char *details,
                   grpc_byte_buffer *msg) {
  grpc_op ops[3];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!c->md_sent) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  c->md_sent = 1;
  if (msg) {
    c->send_buf = msg;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = msg;
  }
  grpc_slice text = grpc_slice_from_copied_string(details ? details : "");
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  ops[n++].data.send_status_from_server.status_details = details ? &text : NULL;
  c->answered = 1;
  start_batch(c, ops, n, &c->send_tag);
  grpc_slice_unref(text);
}

static void answer_fmt(tc__grpc_call_t *c, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void answer_fmt(tc__grpc_call_t *c, grpc_status_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = tc_vformat(fmt, ap);
  va_end(ap);
  answer(c, code, text ? text : "out of memory", NULL);
  free(text);
}

/* Hands the first queued message to gRPC, with initial metadata if with_md;
 * more queued lets gRPC buffer it with the next.  Under lock, on either
 * thread.  On failure the message is gone, nothing is in flight and the call
 * is cancelled, which ends its other batches. */
static grpc_call_error start_msg(tc__grpc_call_t *c, int with_md) {
  tc__grpc_msg_t *m = c->queue;
  c->queue = m->next;
  if (!c->queue) c->queue_tail = NULL;
  grpc_slice slice = grpc_slice_new_with_user_data(m->data, m->len, free, m);
  c->msg_buf = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (with_md) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].flags = c->queue ? GRPC_WRITE_BUFFER_HINT : 0;
  ops[n++].data.send_message.send_message = c->msg_buf;
  grpc_call_error e = grpc_call_start_batch(c->gcall, ops, n, &c->msg_tag, NULL);
  c->msg_in_flight = e == GRPC_CALL_OK;
  if (e != GRPC_CALL_OK) {
    grpc_byte_buffer_destroy(c->msg_buf);
    c->msg_buf = NULL;
    tc_log(TC_LOG_ERROR, "grpc: start_batch failed: %s", grpc_call_error_to_string(e));
    grpc_call_cancel(c->gcall, NULL);
  }
  return e;
}

/* A stream's next send, if none is in flight: a queued message (a new chain,
 * one batch until it runs dry), else the status OK once done(0) was called. */
static void pump(tc__grpc_call_t *c) {
  if (c->answered || c->call.cancelled) return;
  pthread_mutex_lock(&c->lock);
  int idle = !c->msg_in_flight, queued = c->queue != NULL;
  grpc_call_error e = idle && queued ? start_msg(c, !c->md_sent) : GRPC_CALL_OK;
  pthread_mutex_unlock(&c->lock);
  if (!idle) return;
  if (!queued) {
    if (c->end_ok) answer(c, GRPC_STATUS_OK, NULL, NULL);
    return;
  }
  if (e == GRPC_CALL_OK) {
    c->md_sent = 1;
    c->batches++;
    tc__grpc_poller_batch_started(c->srv);
  } else {
    c->call.pending--; /* the message start_msg dropped */
  }
}

/* call->send for server-streaming calls. */
static int call_send(tc_call_t *call, const ProtobufCMessage *msg) {
  tc__grpc_call_t *c = call->transport;
  if (call->cancelled || c->answered) return TC_ECANCELLED;
  size_t len = protobuf_c_message_get_packed_size(msg);
  tc__grpc_msg_t *m = malloc(sizeof *m + len);
  if (!m) return TC_ENOMEM;
  m->next = NULL;
  m->len = protobuf_c_message_pack(msg, m->data);
  tc_metrics_stream_sent("grpc", m->len); /* before the poller thread may take m */
  pthread_mutex_lock(&c->lock);
  if (c->queue_tail)
    c->queue_tail->next = m;
  else
    c->queue = m;
  c->queue_tail = m;
  pthread_mutex_unlock(&c->lock);
  call->pending++;
  pump(c);
  return 0;
}

/* Ends the call with an error status at once.  A stream drops its queue; a
 * SEND_MESSAGE in flight may wait on flow control for ever (a client that
 * does not read), and a status batch would wait behind it, so cancelling
 * with the status is what ends that call now. */
static void fail(tc__grpc_call_t *c, int status, const char *message) {
  grpc_status_code code = (grpc_status_code)tc_err_grpc_status(status);
  pthread_mutex_lock(&c->lock);
  drop_queue(c);
  int busy = c->msg_in_flight;
  pthread_mutex_unlock(&c->lock);
  if (!busy) {
    answer(c, code, message, NULL);
    return;
  }
  c->answered = 1;
  grpc_call_cancel_with_status(c->gcall, code, message, NULL);
}

/* call->done for gRPC calls. */
static void call_done(tc_call_t *call, int status, const char *message,
                      const ProtobufCMessage *response) {
  tc__grpc_call_t *c = call->transport;
  c->owed = 0;
  if (c->refused) /* not the handler's CANCELLED: what the client got */
    tc_call_log_end(call, "grpc", c->refused, call->errmsg);
  else
    tc_call_log_end(call, "grpc", status, message);
  if (!call->cancelled && !c->answered) {
    if (status < 0)
      fail(c, status, message);
    else if (call->send) {
      c->end_ok = 1;
      pump(c);
    } else
      answer(c, GRPC_STATUS_OK, NULL, tc_grpc_pack(response));
  }
  maybe_release(c);
}

/* Runs a handler callback; done() called from it must not free the call. */
static void notify(tc__grpc_call_t *c, tc_call_event_fn fn) {
  if (!fn || !c->owed) return;
  c->in_handler = 1;
  fn(&c->call);
  c->in_handler = 0;
}

tc_grpc_server_t *tc__grpc_call_server(const tc_call_t *call) {
  return ((const tc__grpc_call_t *)call->transport)->srv;
}

int tc__grpc_call_accept(tc_grpc_server_t *s) {
  tc__grpc_call_t *c = calloc(1, sizeof *c);
  if (!c) {
    tc_log(TC_LOG_ERROR, "grpc: out of memory for an accept slot");
    return TC_ENOMEM;
  }
  c->srv = s;
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    tc_log(TC_LOG_ERROR, "grpc: cannot create an accept slot's lock");
    return TC_EINTERNAL;
  }
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->md);
  c->accept_tag.comp.run = on_accept;
  c->recv_tag.comp.run = on_recv;
  c->send_tag.comp.run = on_send;
  c->msg_tag.comp.run = on_msg_sent;
  c->msg_tag.on_poller = on_msg_poller;
  c->close_tag.comp.run = on_close;
  c->more_tag.comp.run = on_more;
  grpc_call_error e = grpc_server_request_call(s->server, &c->gcall, &c->details, &c->md, s->cq,
                                               s->cq, &c->accept_tag);
  if (e != GRPC_CALL_OK) {
    tc_log(TC_LOG_ERROR, "grpc: request_call failed: %s", grpc_call_error_to_string(e));
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return TC_EINTERNAL;
  }
  s->n_slots++;
  return 0;
}

static const tc_method_t *lookup(tc__grpc_call_t *c, char **path) {
  *path = grpc_slice_to_c_string(c->details.method);
  const tc_method_t *m = tc__grpc_health_find(*path);
  if (!m) m = tc__grpc_reflect_find(*path);
  return m ? m : c->srv->find_method(*path);
}

static void on_accept(tc_completion_t *comp) {
  tc__grpc_call_t *c = TC_CONTAINER_OF(comp, tc__grpc_call_t, accept_tag.comp);
  tc_grpc_server_t *s = c->srv;
  s->n_slots--;
  if (!c->accept_tag.ok) { /* the server is shutting down */
    release(c);
    return;
  }
  c->next = s->calls;
  if (s->calls) s->calls->prev = c;
  s->calls = c;
  if (!s->stopping) tc__grpc_call_accept(s);

  grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
  close_op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  start_batch(c, &close_op, 1, &c->close_tag);

  char *path;
  const tc_method_t *m = lookup(c, &path);
  if (!m)
    answer_fmt(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method %s", path);
  else {
    c->call.method = m;
    grpc_op recv_op = {.op = GRPC_OP_RECV_MESSAGE};
    recv_op.data.recv_message.recv_message = &c->recv_buf;
    start_batch(c, &recv_op, 1, &c->recv_tag);
  }
  gpr_free(path);
  maybe_release(c);
}

/* The first "authorization" metadata value (keys arrive lower-cased),
 * copied with its length. */
static char *find_authorization(const grpc_metadata_array *md, size_t *len) {
  for (size_t i = 0; i < md->count; i++) {
    if (grpc_slice_str_cmp(md->metadata[i].key, "authorization") != 0) continue;
    grpc_slice v = md->metadata[i].value;
    *len = GRPC_SLICE_LENGTH(v);
    char *copy = malloc(*len + 1);
    if (!copy) return NULL;
    memcpy(copy, GRPC_SLICE_START_PTR(v), *len);
    copy[*len] = '\0';
    return copy;
  }
  return NULL;
}

/* The client's "ip:port" for the request log.  Our listener hands gRPC
 * accepted descriptors, so gRPC names the peer "fd:N": N is the client's
 * TCP socket, or for TLS the socketpair end whose relay holds it. */
static void copy_peer(tc__grpc_call_t *c) {
  char *peer = grpc_call_get_peer(c->gcall);
  if (!peer) return;
  int fd = -1;
  if (sscanf(peer, "fd:%d", &fd) == 1 && tc_net_peer_name(fd, c->call.peer, sizeof c->call.peer))
    tc__grpc_tls_peer(c->srv, fd, c->call.peer, sizeof c->call.peer);
  gpr_free(peer);
}

static void drop_request(tc__grpc_call_t *c) {
  if (c->request) protobuf_c_message_free_unpacked(c->request, NULL);
  c->request = NULL;
  c->call.request = NULL;
}

/* Decodes recv_buf (consumed) into c->request, replacing the one before.
 * On failure returns the status with its text in *err (malloc'd). */
static int unpack_request(tc__grpc_call_t *c, char **err) {
  const tc_method_t *m = c->call.method;
  drop_request(c);
  *err = NULL;
  int bad = tc_grpc_unpack_checked(m->input, c->recv_buf, tc_validate_wire, &c->request, err);
  grpc_byte_buffer_destroy(c->recv_buf);
  c->recv_buf = NULL;
  if (bad) { /* a NUL or bad UTF-8 in a string: refused before anything is cut */
    if (!*err) *err = tc_format("%s", tc_err_code_name(bad));
    return bad;
  }
  if (!c->request) {
    *err = tc_format("malformed request: cannot decode %s as %s", m->path, m->input->name);
    return TC_EINVAL;
  }
  c->call.request = c->request;
  return 0;
}

/* call->read for client-streaming calls: one RECV_MESSAGE at a time. */
static void call_read(tc_call_t *call) {
  tc__grpc_call_t *c = call->transport;
  if (call->cancelled || c->answered) return; /* on_cancel has run or will */
  grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
  op.data.recv_message.recv_message = &c->recv_buf;
  start_batch(c, &op, 1, &c->more_tag);
}

/* The client's next message, or its half-close (no message). */
static void on_more(tc_completion_t *comp) {
  tc__grpc_call_t *c = TC_CONTAINER_OF(comp, tc__grpc_call_t, more_tag.comp);
  c->batches--;
  /* Not ok: the call is over; on_close tells the handler. */
  if (c->more_tag.ok && !c->call.cancelled && !c->answered) {
    char *err = NULL;
    int bad = 0;
    if (c->recv_buf)
      bad = unpack_request(c, &err);
    else
      drop_request(c);
    if (bad) {
      fail(c, bad, err ? err : "out of memory");
      c->refused = bad;
      free(c->call.errmsg);
      c->call.errmsg = err;
      err = NULL;
      c->call.cancelled = 1;
      notify(c, c->call.on_cancel);
    } else
      notify(c, c->call.on_message);
    free(err);
  }
  maybe_release(c);
}

static void dispatch(tc__grpc_call_t *c) {
  const tc_method_t *m = c->call.method;
  char *err;
  int bad = unpack_request(c, &err);
  if (bad) {
    answer_fmt(c, (grpc_status_code)tc_err_grpc_status(bad), "%s", err ? err : "out of memory");
    free(err);
    return;
  }
  c->authorization = find_authorization(&c->md, &c->call.authorization_len);
  /* Nothing else in the metadata is used; don't hold it for the call's life. */
  grpc_metadata_array_destroy(&c->md);
  grpc_metadata_array_init(&c->md);
  c->call.server = c->srv->core;
  copy_peer(c);
  c->call.authorization = c->authorization;
  c->call.done = call_done;
  if (m->server_streaming) c->call.send = call_send;
  if (m->client_streaming) c->call.read = call_read;
  c->call.transport = c;
  c->owed = 1;
  c->in_handler = 1;
  int rc = tc_call_start(&c->call);
  if (rc < 0) call_done(&c->call, rc, c->call.errmsg ? c->call.errmsg : tc_err_code_name(rc), NULL);
  c->in_handler = 0;
}

static void on_recv(tc_completion_t *comp) {
  tc__grpc_call_t *c = TC_CONTAINER_OF(comp, tc__grpc_call_t, recv_tag.comp);
  c->batches--;
  /* Not ok: the call is already over (cancelled, deadline, disconnect). */
  if (c->recv_tag.ok && !c->call.cancelled) {
    if (c->recv_buf)
      dispatch(c);
    else if (c->call.method->client_streaming) /* a stream of no requests: nothing to answer */
      answer(c, GRPC_STATUS_OK, NULL, NULL);
    else
      answer_fmt(c, GRPC_STATUS_INVALID_ARGUMENT, "request message missing");
  }
  maybe_release(c);
}

static void on_send(tc_completion_t *comp) {
  tc__grpc_call_t *c = TC_CONTAINER_OF(comp, tc__grpc_call_t, send_tag.comp);
  c->batches--;
  if (c->send_buf) {
    grpc_byte_buffer_destroy(c->send_buf);
    c->send_buf = NULL;
  }
  maybe_release(c);
}

/* On the poller thread: a stream message's send completed.  Starts the next
 * queued one at once and tells the loop, with one post until it looks. */
static void on_msg_poller(tc__grpc_tag_t *tag) {
  tc__grpc_call_t *c = TC_CONTAINER_OF(tag, tc__grpc_call_t, msg_tag);
  pthread_mutex_lock(&c->lock);
  grpc_byte_buffer_destroy(c->msg_buf);
  c->msg_buf = NULL;
  c->msg_in_flight = 0;
  c->chain_sent++;
  if (!tag->ok) {
    c->chain_failed = 1;
  } else if (c->queue && start_msg(c, 0) != GRPC_CALL_OK) {
    c->chain_sent++; /* the message start_msg dropped */
    c->chain_failed = 1;
  }
  if (!c->msg_in_flight) c->chain_ended++;
  int post = !c->chain_posted;
  c->chain_posted = 1;
  pthread_mutex_unlock(&c->lock);
  /* The call outlives this: its chain counts as a batch until the loop has
   * seen chain_ended. */
  if (post) tc_bridge_post(c->srv->bridge, &tag->comp);
}

/* On the loop: what the send chain did since the last look. */
static void on_msg_sent(tc_completion_t *comp) {
  tc__grpc_call_t *c = TC_CONTAINER_OF(comp, tc__grpc_call_t, msg_tag.comp);
  pthread_mutex_lock(&c->lock);
  int sent = c->chain_sent, ended = c->chain_ended, failed = c->chain_failed;
  c->chain_sent = c->chain_ended = c->chain_failed = c->chain_posted = 0;
  /* A send fails only once the call is over; on_close runs on_cancel. */
  if (failed) drop_queue(c);
  pthread_mutex_unlock(&c->lock);
  c->batches -= ended;
  if (failed) c->call.cancelled = 1;
  pump(c);
  /* The handler sees each message leave, one at a time. */
  for (int i = 0; i < sent; i++) {
    c->call.pending--;
    notify(c, c->call.on_sent);
  }
  maybe_release(c);
}

static void on_close(tc_completion_t *comp) {
  tc__grpc_call_t *c = TC_CONTAINER_OF(comp, tc__grpc_call_t, close_tag.comp);
  c->batches--;
  /* A failed send may have set cancelled already; on_cancel runs here. */
  if (c->close_cancelled) c->call.cancelled = 1;
  if (c->call.cancelled) {
    pthread_mutex_lock(&c->lock);
    drop_queue(c);
    pthread_mutex_unlock(&c->lock);
    notify(c, c->call.on_cancel);
  }
  maybe_release(c);
}
