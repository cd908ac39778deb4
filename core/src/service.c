#include "service.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "format.h"
#include "token.h"
#include "validate.h"

tc_op_t *tc_op_new(tc_call_t *call, size_t size) {
  tc_op_t *op = calloc(1, size);
  if (!op) return NULL;
  op->call = call;
  op->srv = call->server;
  tc_arena_init(&op->arena);
  return op;
}

void tc_op_discard(tc_op_t *op) {
  free(op->errmsg);
  tc_arena_free(&op->arena);
  free(op);
}

/* TC_EOUTCOME_UNKNOWN: what happened, and how the client finds out. */
static const char outcome_unknown[] =
    "the outcome of this request is unknown: the connection to the database was lost while it "
    "committed, so it may or may not have been applied; read at the head (an empty snap token) "
    "to see whether it was, or watch from the last snap token you have";

void tc_op_finish(tc_op_t *op, int status, const ProtobufCMessage *resp) {
  const char *msg = status == 0                     ? NULL
                    : op->errmsg                    ? op->errmsg
                    : status == TC_EOUTCOME_UNKNOWN ? outcome_unknown
                                                    : tc_err_code_name(status);
  op->call->done(op->call, status, msg, status == 0 ? resp : NULL);
  tc_op_discard(op);
}

void tc_op_fail(tc_op_t *op, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  free(op->errmsg);
  op->errmsg = tc_vformat(fmt, ap);
  va_end(ap);
  tc_op_finish(op, status, NULL);
}

void tc_op_finish_token(tc_op_t *op, int status, const char *token) {
  if (status != 0) {
    tc_op_finish(op, status, NULL);
    return;
  }
  const ProtobufCMessageDescriptor *d = op->call->method->output;
  ProtobufCMessage *resp = tc_arena_alloc(&op->arena, d->sizeof_message);
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(d, "snap_token");
  if (!resp || !f) {
    tc_op_finish(op, TC_ENOMEM, NULL);
    return;
  }
  protobuf_c_message_init(d, resp);
  *(const char **)((char *)resp + f->offset) = token;
  tc_op_finish(op, 0, resp);
}

int tc_op_submit(tc_op_t *op, const char *tenant_id, tc_job_fn run) {
  op->job.run = run;
  int rc = tc_tenant_submit(op->srv, tenant_id, &op->job);
  if (rc != 0) tc_op_discard(op);
  return rc;
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

void tc_tuple_filter_from_proto(const Base__V1__TupleFilter *in, tc_tuple_filter_t *out) {
  memset(out, 0, sizeof *out);
  out->entity_type = out->relation = out->subject_type = out->subject_relation = "";
  if (!in) return;
  out->relation = str_or_empty(in->relation);
  if (in->entity) {
    out->entity_type = str_or_empty(in->entity->type);
    out->entity_ids = (const char *const *)in->entity->ids;
    out->n_entity_ids = in->entity->n_ids;
  }
  if (in->subject) {
    out->subject_type = str_or_empty(in->subject->type);
    out->subject_relation = str_or_empty(in->subject->relation);
    out->subject_ids = (const char *const *)in->subject->ids;
    out->n_subject_ids = in->subject->n_ids;
  }
}

void tc_attr_filter_from_proto(const Base__V1__AttributeFilter *in, tc_attr_filter_t *out) {
  memset(out, 0, sizeof *out);
  out->entity_type = "";
  if (!in) return;
  if (in->entity) {
    out->entity_type = str_or_empty(in->entity->type);
    out->entity_ids = (const char *const *)in->entity->ids;
    out->n_entity_ids = in->entity->n_ids;
  }
  out->attributes = (const char *const *)in->attributes;
  out->n_attributes = in->n_attributes;
}

int tc_tuple_filter_is_empty(const tc_tuple_filter_t *f) {
  return !*f->entity_type && !f->n_entity_ids && !*f->relation && !*f->subject_type &&
         !f->n_subject_ids && !*f->subject_relation;
}

int tc_attr_filter_is_empty(const tc_attr_filter_t *f) {
  return !*f->entity_type && !f->n_entity_ids && !f->n_attributes;
}

void tc_tuple_from_proto(const Base__V1__Tuple *in, tc_tuple_t *out) {
  out->entity_type = str_or_empty(in->entity->type);
  out->entity_id = str_or_empty(in->entity->id);
  out->relation = str_or_empty(in->relation);
  out->subject_type = str_or_empty(in->subject->type);
  out->subject_id = str_or_empty(in->subject->id);
  out->subject_relation = str_or_empty(in->subject->relation);
}

static Base__V1__Entity *entity_to_proto(tc_arena_t *a, const char *type, const char *id) {
  Base__V1__Entity *e = tc_arena_alloc(a, sizeof *e);
  if (!e) return NULL;
  base__v1__entity__init(e);
  e->type = tc_arena_strdup(a, type);
  e->id = tc_arena_strdup(a, id);
  return e->type && e->id ? e : NULL;
}

Base__V1__Tuple *tc_tuple_to_proto(tc_arena_t *a, const tc_tuple_t *in) {
  Base__V1__Tuple *t = tc_arena_alloc(a, sizeof *t);
  Base__V1__Subject *s = tc_arena_alloc(a, sizeof *s);
  if (!t || !s) return NULL;
  base__v1__tuple__init(t);
  base__v1__subject__init(s);
  t->entity = entity_to_proto(a, in->entity_type, in->entity_id);
  t->relation = tc_arena_strdup(a, in->relation);
  s->type = tc_arena_strdup(a, in->subject_type);
  s->id = tc_arena_strdup(a, in->subject_id);
  s->relation = tc_arena_strdup(a, in->subject_relation);
  t->subject = s;
  return t->entity && t->relation && s->type && s->id && s->relation ? t : NULL;
}

Base__V1__Attribute *tc_attr_to_proto(tc_arena_t *a, const tc_attr_t *in) {
  Base__V1__Attribute *at = tc_arena_alloc(a, sizeof *at);
  if (!at) return NULL;
  base__v1__attribute__init(at);
  at->entity = entity_to_proto(a, in->entity_type, in->entity_id);
  at->attribute = tc_arena_strdup(a, in->attribute);
  at->value = (Google__Protobuf__Any *)protobuf_c_message_unpack(
      &google__protobuf__any__descriptor, tc_arena_protobuf_allocator(a), in->value_len, in->value);
  return at->entity && at->attribute && at->value ? at : NULL;
}

int tc_call_snap_token(tc_call_t *call, const char *token) {
  if (!token || !*token) return 0;
  tc_server_t *srv = call->server;
  char *err = NULL;
  int rc = srv->api->token_check(srv->backend, token, &err);
  if (rc != 0) {
    tc_call_error(call, rc, "%s", err ? err : "invalid snap token");
    free(err);
  }
  return rc;
}

char *tc_op_cont_token(tc_op_t *op, const char *cursor) {
  if (!cursor) return "";
  char *tok = tc_cont_token_encode(cursor);
  char *copy = tok ? tc_arena_strdup(&op->arena, tok) : NULL;
  free(tok);
  return copy;
}

uint32_t tc_page_size(uint32_t requested) { return requested ? requested : 50; }

int tc_call_validate(tc_call_t *call) {
  char *err = NULL;
  int rc = tc_validate_request(call->request, &err);
  if (rc != 0) {
    tc_call_error(call, rc, "%s", err ? err : "invalid request");
    free(err);
  }
  return rc;
}
