/* The descriptor-driven proto3 JSON codec (see pbjson.h).  Both directions
 * walk ProtobufCMessageDescriptor: a field's value lives at msg + offset, a
 * repeated field's count at msg + quantifier_offset, a oneof's case there
 * too.  Timestamp and Any are special-cased by descriptor.  Decoded messages
 * are built with malloc throughout so protobuf_c_message_free_unpacked(m,
 * NULL) frees them, also half-built after an error. */
#include "pbjson.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "any.h"
#include "tuplecast/support.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "json_text.h"
#include "tuplecast/errors.h"
#include "validate.h"

#define AT(msg, off) ((void *)((char *)(msg) + (off)))
#define CAT(msg, off) ((const void *)((const char *)(msg) + (off)))

/* Timestamp range protojson accepts: 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z. */
#define TS_MIN_SECONDS INT64_C(-62135596800)
#define TS_MAX_SECONDS INT64_C(253402300799)

/* ---- shared ---------------------------------------------------------- */

static size_t elem_size(ProtobufCType type) {
  switch (type) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return 8;
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  default: return 4;
  }
}

/* protobuf-c keeps no map_entry option: a map field is a repeated message
 * <Parent>.<CamelField>Entry with fields key = 1 and value = 2, the name
 * protoc gives the synthesized entry type. */
static bool is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f) {
  const ProtobufCMessageDescriptor *e = f->descriptor;
  size_t plen = strlen(parent->name);
  const char *n, *p;
  bool up = true;

  if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE ||
      e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2)
    return false;
  if (strncmp(e->name, parent->name, plen) != 0 || e->name[plen] != '.') return false;
  n = e->name + plen + 1;
  for (p = f->name; *p != '\0'; p++) {
    if (*p == '_') {
      up = true;
      continue;
    }
    if (*n++ != (up && *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p)) return false;
    up = false;
  }
  return strcmp(n, "Entry") == 0;
}

static bool oneof_unset(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
         *(const uint32_t *)CAT(m, f->quantifier_offset) != f->id;
}

/* ---- encoding -------------------------------------------------------- */

static json_t *enc_message(const ProtobufCMessage *m, int depth);

static json_t *enc_double(double v) {
  if (isnan(v)) return json_string("NaN");
  if (isinf(v)) return json_string(v > 0 ? "Infinity" : "-Infinity");
  return json_real(v);
}

static json_t *enc_owned_string(char *s) {
  json_t *v = s ? json_string(s) : NULL;

  free(s);
  return v;
}

/* One value of field f's type stored at p. */
static json_t *enc_value(const ProtobufCFieldDescriptor *f, const void *p, int depth) {
  const ProtobufCEnumValue *ev;
  const ProtobufCBinaryData *bd;
  const char *s;

  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return enc_owned_string(tc_format("%" PRId64, *(const int64_t *)p));
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return enc_owned_string(tc_format("%" PRIu64, *(const uint64_t *)p));
  case PROTOBUF_C_TYPE_FLOAT: return enc_double(*(const float *)p);
  case PROTOBUF_C_TYPE_DOUBLE: return enc_double(*(const double *)p);
  case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
  case PROTOBUF_C_TYPE_ENUM:
    ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
    return ev ? json_string(ev->name) : json_integer(*(const int *)p);
  case PROTOBUF_C_TYPE_STRING: s = *(char *const *)p; return json_string(s ? s : "");
  case PROTOBUF_C_TYPE_BYTES:
    bd = p;
    return enc_owned_string(tc_base64_encode(bd->data ? bd->data : (const uint8_t *)"", bd->len));
  case PROTOBUF_C_TYPE_MESSAGE:
    if (*(ProtobufCMessage *const *)p == NULL) return json_null();
    return enc_message(*(ProtobufCMessage *const *)p, depth + 1);
  }
  return NULL;
}

struct map_item {
  const ProtobufCMessage *entry;
  size_t index;
};

/* protojson sorts map entries by key: strings bytewise, integers by value. */
static int map_item_cmp(const void *pa, const void *pb) {
  const struct map_item *a = pa, *b = pb;
  const ProtobufCFieldDescriptor *kf = &a->entry->descriptor->fields[0];
  const void *ka = CAT(a->entry, kf->offset), *kb = CAT(b->entry, kf->offset);
  int c = 0;

#define CMP_AS(T) ((*(const T *)ka > *(const T *)kb) - (*(const T *)ka < *(const T *)kb))
  switch (kf->type) {
  case PROTOBUF_C_TYPE_STRING: c = strcmp(*(char *const *)ka, *(char *const *)kb); break;
  case PROTOBUF_C_TYPE_BOOL:
    c = (*(const protobuf_c_boolean *)ka > 0) - (*(const protobuf_c_boolean *)kb > 0);
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: c = CMP_AS(int64_t); break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: c = CMP_AS(uint64_t); break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: c = CMP_AS(uint32_t); break;
  default: c = CMP_AS(int32_t); break;
  }
#undef CMP_AS
  if (c == 0) /* duplicate keys: the later entry wins, as on the wire */
    c = (a->index > b->index) - (a->index < b->index);
  return c;
}

/* A map key as JSON object key text: the string itself, or the scalar's
 * JSON rendering without quotes. */
static char *map_key_text(const ProtobufCMessage *entry) {
  const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
  const void *k = CAT(entry, kf->offset);
  json_t *v;
  char *text;

  if (kf->type == PROTOBUF_C_TYPE_STRING) return strdup(*(char *const *)k ? *(char *const *)k : "");
  if (kf->type == PROTOBUF_C_TYPE_BOOL)
    return strdup(*(const protobuf_c_boolean *)k ? "true" : "false");
  v = enc_value(kf, k, 0);
  if (v == NULL) return NULL;
  text = json_is_string(v) ? strdup(json_string_value(v)) : tc_json_text(v);
  json_decref(v);
  return text;
}

static json_t *enc_map(const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *entries,
                       size_t n, int depth) {
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *vf = &ed->fields[1];
  json_t *obj = json_object();
  struct map_item *items = malloc((n ? n : 1) * sizeof(*items));
  size_t i;

  if (obj == NULL || items == NULL) goto fail;
  for (i = 0; i < n; i++) {
    items[i].entry = entries[i];
    items[i].index = i;
  }
  qsort(items, n, sizeof(*items), map_item_cmp);
  for (i = 0; i < n; i++) {
    char *key = map_key_text(items[i].entry);
    json_t *v = key ? enc_value(vf, CAT(items[i].entry, vf->offset), depth) : NULL;
    int rc = v ? json_object_set_new(obj, key, v) : -1;

    free(key);
    if (rc != 0) goto fail;
  }
  free(items);
  return obj;
fail:
  free(items);
  json_decref(obj);
  return NULL;
}

static json_t *enc_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, int depth) {
  const void *p = CAT(m, f->offset);
  size_t n, i, stride = elem_size(f->type);
  const char *arr;
  json_t *list;

  if (f->label != PROTOBUF_C_LABEL_REPEATED) return enc_value(f, p, depth);
  n = *(const size_t *)CAT(m, f->quantifier_offset);
  arr = *(const char *const *)p;
  if (is_map(m->descriptor, f)) return enc_map(f, (ProtobufCMessage *const *)arr, n, depth);
  list = json_array();
  for (i = 0; list != NULL && i < n; i++) {
    if (json_array_append_new(list, enc_value(f, arr + i * stride, depth)) != 0) {
      json_decref(list);
      list = NULL;
    }
  }
  return list;
}

/* Adds m's fields to obj in declaration order. */
static int enc_fields(const ProtobufCMessage *m, json_t *obj, int depth) {
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  unsigned i;

  for (i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];

    if (oneof_unset(m, f)) continue;
    if (json_object_set_new(obj, f->name, enc_field(m, f, depth)) != 0) return -1;
  }
  return 0;
}

static json_t *enc_timestamp(const Google__Protobuf__Timestamp *ts) {
  time_t secs = (time_t)ts->seconds;
  struct tm tm;
  char frac[11] = "";

  if (ts->seconds < TS_MIN_SECONDS || ts->seconds > TS_MAX_SECONDS || ts->nanos < 0 ||
      ts->nanos > 999999999 || gmtime_r(&secs, &tm) == NULL)
    return NULL;
  if (ts->nanos % 1000000 == 0 && ts->nanos != 0)
    snprintf(frac, sizeof(frac), ".%03d", (int)(ts->nanos / 1000000));
  else if (ts->nanos % 1000 == 0 && ts->nanos != 0)
    snprintf(frac, sizeof(frac), ".%06d", (int)(ts->nanos / 1000));
  else if (ts->nanos != 0)
    snprintf(frac, sizeof(frac), ".%09d", (int)ts->nanos);
  return enc_owned_string(tc_format("%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
                                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                                    frac));
}

/* {"@type": url, ...fields of the packed message}; {} for an empty Any. */
static json_t *enc_any(const Google__Protobuf__Any *any, int depth) {
  bool no_url = any->type_url == NULL || any->type_url[0] == '\0';
  ProtobufCMessage *inner;
  json_t *obj;

  if (no_url) return any->value.len == 0 ? json_object() : NULL;
  inner = tc_any_unpack(any);
  if (inner == NULL) return NULL;
  obj = json_object();
  if (obj == NULL || json_object_set_new(obj, "@type", json_string(any->type_url)) != 0 ||
      enc_fields(inner, obj, depth + 1) != 0) {
    json_decref(obj);
    obj = NULL;
  }
  protobuf_c_message_free_unpacked(inner, NULL);
  return obj;
}

static json_t *enc_message(const ProtobufCMessage *m, int depth) {
  json_t *obj;

  if (depth > TC_JSON_MAX_DEPTH) return NULL;
  if (m->descriptor == &google__protobuf__timestamp__descriptor)
    return enc_timestamp((const Google__Protobuf__Timestamp *)m);
  if (m->descriptor == &google__protobuf__any__descriptor)
    return enc_any((const Google__Protobuf__Any *)m, depth);
  obj = json_object();
  if (obj != NULL && enc_fields(m, obj, depth) != 0) {
    json_decref(obj);
    return NULL;
  }
  return obj;
}

json_t *tc_json_to_value(const ProtobufCMessage *msg) { return enc_message(msg, 0); }

char *tc_json_encode(const ProtobufCMessage *msg) {
  json_t *v = tc_json_to_value(msg);
  char *text = v ? tc_json_text(v) : NULL;

  json_decref(v);
  return text;
}

/* ---- decoding -------------------------------------------------------- */

/* At most one field step per message level, and one more for a map entry. */
#define MAX_STEPS (2 * TC_JSON_MAX_DEPTH + 4)

struct dec {
  char path[256]; /* field path of the value being decoded, truncated if long */
  size_t len;
  char *err;
  tc_field_step_t steps[MAX_STEPS]; /* the same path by descriptor, for tc_validate_nul */
  size_t nsteps;
  /* The text held an integer beyond int64 (a double such as -5e19, which
   * the encoder prints as protojson does, "-50000000000000000000"): jansson
   * then read every number as a double, exact for integers below 2^53 only. */
  bool ints_as_reals;
};

/* What became of a value: stored, or dropped (an unknown enum name, which
 * protojson's DiscardUnknown drops rather than rejects). */
#define DROPPED 1

/* Keeps a message on one line (and, with ascii, free of bytes that may not
 * be UTF-8, as in jansson's "near" excerpts): others become '?'. */
static void scrub(char *s, bool ascii) {
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;

    if (c < 0x20 || c == 0x7f || (ascii && c > 0x7f)) *s = '?';
  }
}

static int fail(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct dec *d, const char *fmt, ...) {
  va_list ap;
  char *what;

  va_start(ap, fmt);
  what = tc_vformat(fmt, ap);
  va_end(ap);
  if (what == NULL) return TC_ENOMEM;
  d->err = d->len ? tc_format("%s: %s", d->path, what) : what;
  if (d->err != what) free(what);
  if (d->err == NULL) return TC_ENOMEM;
  scrub(d->err, false);
  return TC_EINVAL;
}

static size_t push(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a path segment; returns the mark to pop back to.  A path too long
 * for the buffer is cut at a UTF-8 character boundary. */
static size_t push(struct dec *d, const char *fmt, ...) {
  size_t mark = d->len, room = sizeof(d->path) - d->len;
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(d->path + d->len, room, fmt, ap);
  va_end(ap);
  if (n < 0) return mark;
  if ((size_t)n < room) {
    d->len += (size_t)n;
    return mark;
  }
  d->len = sizeof(d->path) - 1;
  while (d->len > mark && ((unsigned char)d->path[d->len] & 0xc0) == 0x80) d->len--;
  d->path[d->len] = '\0';
  return mark;
}

static void pop(struct dec *d, size_t mark) {
  d->len = mark;
  d->path[mark] = '\0';
}

static void step_push(struct dec *d, const ProtobufCMessageDescriptor *msg,
                      const ProtobufCFieldDescriptor *f) {
  if (d->nsteps < MAX_STEPS) d->steps[d->nsteps] = (tc_field_step_t){msg, f, -1};
  d->nsteps++;
}

static void step_pop(struct dec *d) { d->nsteps--; }

static void step_item(struct dec *d, size_t i) {
  if (d->nsteps && d->nsteps <= MAX_STEPS) d->steps[d->nsteps - 1].item = (long)i;
}

/* A JSON string holding a NUL byte (jansson keeps it; C strings would cut it
 * there): a string field gets the answer gRPC gives for the same bytes. */
static int nul_string(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *j) {
  if (f->type != PROTOBUF_C_TYPE_STRING || d->nsteps == 0 || d->nsteps > MAX_STEPS)
    return fail(d, "a NUL byte is not allowed here");
  int rc =
      tc_validate_nul(d->steps, d->nsteps, json_string_value(j), json_string_length(j), &d->err);
  if (d->err) scrub(d->err, false);
  return rc;
}

static const char *kind(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER:
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "?";
}

/* s must be a whole JSON number (no spaces, no "inf"/"nan"/hex). */
static bool text_to_double(const char *s, double *out) {
  char *end;

  if (s[0] == '\0' || strspn(s, "0123456789+-.eE") != strlen(s)) return false;
  errno = 0;
  *out = strtod(s, &end);
  return *end == '\0' && errno != ERANGE;
}

static bool text_to_int64(const char *s, int64_t *out) {
  char *end;

  if (s[0] != '-' && !(s[0] >= '0' && s[0] <= '9')) return false;
  errno = 0;
  *out = strtoll(s, &end, 10);
  return *end == '\0' && errno == 0;
}

/* Integers as JSON numbers (integral reals included, e.g. 1e3) or as strings
 * holding one; lo/hi bound the result. */
static int get_int(struct dec *d, const json_t *j, int64_t lo, int64_t hi, int64_t *out) {
  const char *s = json_is_string(j) ? json_string_value(j) : NULL;
  double r = 0;

  if (json_is_integer(j)) {
    *out = json_integer_value(j);
  } else if (s == NULL && !json_is_real(j)) {
    return fail(d, "expected an integer, got %s", kind(j));
  } else if (s == NULL || !text_to_int64(s, out)) {
    if (s == NULL)
      r = json_real_value(j);
    else if (!text_to_double(s, &r))
      return fail(d, "\"%.100s\" is not an integer", s);
    if (r != trunc(r) || !(r >= -0x1p63 && r < 0x1p63)) return fail(d, "%g is not an integer", r);
    if (d->ints_as_reals && s == NULL && fabs(r) >= 0x1p53)
      return fail(d, "%g is out of range", r); /* it may have been rounded */
    *out = (int64_t)r;
  }
  if (*out < lo || *out > hi) return fail(d, "%" PRId64 " is out of range", *out);
  return 0;
}

static int get_uint(struct dec *d, const json_t *j, uint64_t hi, uint64_t *out) {
  const char *s = json_is_string(j) ? json_string_value(j) : NULL;
  char *end;
  int64_t v = 0;
  int rc;

  if (s != NULL && s[0] >= '0' && s[0] <= '9') {
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (*end == '\0' && errno == 0) return *out <= hi ? 0 : fail(d, "%s is out of range", s);
  }
  rc = get_int(d, j, 0, INT64_MAX, &v);
  *out = (uint64_t)v;
  return rc == 0 && *out > hi ? fail(d, "%" PRIu64 " is out of range", *out) : rc;
}

static int get_double(struct dec *d, const json_t *j, double *out) {
  const char *s;

  if (json_is_number(j)) {
    *out = json_number_value(j);
    return 0;
  }
  if (!json_is_string(j)) return fail(d, "expected a number, got %s", kind(j));
  s = json_string_value(j);
  if (strcmp(s, "NaN") == 0)
    *out = NAN;
  else if (strcmp(s, "Infinity") == 0)
    *out = INFINITY;
  else if (strcmp(s, "-Infinity") == 0)
    *out = -INFINITY;
  else if (!text_to_double(s, out))
    return fail(d, "\"%.100s\" is not a number", s);
  return 0;
}

/* Standard or URL-safe alphabet, padded or not, as protojson reads bytes. */
static int get_bytes(struct dec *d, const json_t *j, ProtobufCBinaryData *out) {
  size_t n, i, padded;
  char *std;

  if (!json_is_string(j)) return fail(d, "expected a base64 string, got %s", kind(j));
  n = json_string_length(j);
  padded = (n + 3) / 4 * 4;
  std = malloc(padded + 1);
  if (std == NULL) return TC_ENOMEM;
  for (i = 0; i < n; i++) {
    char c = json_string_value(j)[i];
    std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  memset(std + n, '=', padded - n);
  std[padded] = '\0';
  out->data = tc_base64_decode(std, &out->len);
  free(std);
  return out->data ? 0 : fail(d, "invalid base64");
}

static int dec_message(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *j,
                       ProtobufCMessage **slot, int depth);

/* One value of field f's type from j into p. */
static int dec_value(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *j, void *p,
                     int depth) {
  const ProtobufCEnumValue *ev;
  int64_t i;
  uint64_t u;
  double r;
  int rc;

  if (json_is_string(j) && strlen(json_string_value(j)) != json_string_length(j))
    return nul_string(d, f, j);
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    rc = get_int(d, j, INT32_MIN, INT32_MAX, &i);
    *(int32_t *)p = (int32_t)i;
    return rc;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    rc = get_uint(d, j, UINT32_MAX, &u);
    *(uint32_t *)p = (uint32_t)u;
    return rc;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: return get_int(d, j, INT64_MIN, INT64_MAX, (int64_t *)p);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: return get_uint(d, j, UINT64_MAX, (uint64_t *)p);
  case PROTOBUF_C_TYPE_FLOAT:
    rc = get_double(d, j, &r);
    if (rc == 0 && isfinite(r) && fabs(r) > FLT_MAX)
      return fail(d, "%g is out of range for a float", r);
    *(float *)p = (float)r;
    return rc;
  case PROTOBUF_C_TYPE_DOUBLE: return get_double(d, j, (double *)p);
  case PROTOBUF_C_TYPE_BOOL:
    if (!json_is_boolean(j)) return fail(d, "expected a boolean, got %s", kind(j));
    *(protobuf_c_boolean *)p = json_is_true(j);
    return 0;
  case PROTOBUF_C_TYPE_ENUM:
    if (json_is_string(j)) {
      ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(j));
      if (ev == NULL) return DROPPED;
      *(int *)p = ev->value;
      return 0;
    }
    if (!json_is_number(j)) return fail(d, "expected an enum name or number, got %s", kind(j));
    rc = get_int(d, j, INT32_MIN, INT32_MAX, &i);
    *(int *)p = (int)i;
    return rc;
  case PROTOBUF_C_TYPE_STRING:
    if (!json_is_string(j)) return fail(d, "expected a string, got %s", kind(j));
    *(char **)p = strdup(json_string_value(j));
    return *(char **)p ? 0 : TC_ENOMEM;
  case PROTOBUF_C_TYPE_BYTES: return get_bytes(d, j, p);
  case PROTOBUF_C_TYPE_MESSAGE: return dec_message(d, f->descriptor, j, p, depth + 1);
  }
  return fail(d, "unsupported field type");
}

/* A repeated (non-map) field from an array.  The array and its count are in
 * the message before each element is filled, so an error leaves nothing
 * unowned. */
static int dec_list(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *j, void *msg,
                    int depth) {
  size_t n, i, *count = AT(msg, f->quantifier_offset), stride = elem_size(f->type);
  char *arr;
  int rc;

  if (!json_is_array(j)) return fail(d, "expected an array, got %s", kind(j));
  n = json_array_size(j);
  if (n == 0) return 0;
  arr = calloc(n, stride);
  if (arr == NULL) return TC_ENOMEM;
  *(char **)AT(msg, f->offset) = arr;
  for (i = 0; i < n; i++) {
    size_t mark = push(d, "[%zu]", i);
    const json_t *item = json_array_get(j, i);

    step_item(d, i);
    ++*count;
    rc = json_is_null(item) ? fail(d, "null is not allowed in a list")
                            : dec_value(d, f, item, arr + (*count - 1) * stride, depth);
    if (rc == DROPPED)
      --*count;
    else if (rc != 0)
      return rc;
    pop(d, mark);
  }
  return 0;
}

/* A map field from an object: one malloc'd entry message per key. */
static int dec_map(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *j, void *msg,
                   int depth) {
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
  size_t *count = AT(msg, f->quantifier_offset);
  ProtobufCMessage **arr;
  const char *key;
  json_t *val, *jkey;
  int rc = 0;

  if (!json_is_object(j)) return fail(d, "expected an object, got %s", kind(j));
  if (json_object_size(j) == 0) return 0;
  arr = calloc(json_object_size(j), sizeof(*arr));
  if (arr == NULL) return TC_ENOMEM;
  *(ProtobufCMessage ***)AT(msg, f->offset) = arr;
  json_object_foreach((json_t *)j, key, val) {
    size_t mark = push(d, "[\"%s\"]", key);
    ProtobufCMessage *e = calloc(1, ed->sizeof_message);

    if (e == NULL) return TC_ENOMEM;
    ed->message_init(e);
    arr[(*count)++] = e;
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
      if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
        return fail(d, "map key is not true or false");
      *(protobuf_c_boolean *)AT(e, kf->offset) = strcmp(key, "true") == 0;
    } else {
      jkey = json_string(key); /* never holds a NUL: jansson refuses one in a key */
      if (jkey == NULL) return TC_ENOMEM;
      rc = dec_value(d, kf, jkey, AT(e, kf->offset), depth);
      json_decref(jkey);
      if (rc != 0) return rc;
    }
    step_push(d, ed, vf);
    rc = json_is_null(val) ? fail(d, "null is not allowed as a map value")
                           : dec_value(d, vf, val, AT(e, vf->offset), depth);
    step_pop(d);
    if (rc == DROPPED) {
      protobuf_c_message_free_unpacked(arr[--*count], NULL);
      arr[*count] = NULL;
    } else if (rc != 0) {
      return rc;
    }
    pop(d, mark);
  }
  return 0;
}

/* Fills msg from the keys of obj that name its fields (proto names; unknown
 * keys and, in an Any, "@type" are skipped). */
static int dec_fields(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
                      ProtobufCMessage *msg, int depth) {
  const char *key;
  json_t *val;
  int rc;

  json_object_foreach((json_t *)obj, key, val) {
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    size_t mark;

    if (f == NULL || json_is_null(val)) continue;
    mark = push(d, d->len ? ".%s" : "%s", key);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t *which = AT(msg, f->quantifier_offset);

      if (*which != 0 && *which != f->id)
        return fail(d, "oneof already set by %s",
                    protobuf_c_message_descriptor_get_field(desc, *which)->name);
      *which = f->id;
    }
    step_push(d, desc, f);
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
      rc = dec_value(d, f, val, AT(msg, f->offset), depth);
    else if (is_map(desc, f))
      rc = dec_map(d, f, val, msg, depth);
    else
      rc = dec_list(d, f, val, msg, depth);
    step_pop(d);
    if (rc == DROPPED && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
      *(uint32_t *)AT(msg, f->quantifier_offset) = 0;
    else if (rc != 0 && rc != DROPPED)
      return rc;
    pop(d, mark);
  }
  return 0;
}

static int64_t days_from_civil(int64_t y, int m, int day) {
  int64_t era, yoe, doy;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* The n-digit decimal at s, or -1 if those are not all digits. */
static int digits_at(const char *s, int n) {
  int v = 0;

  for (; n > 0; n--, s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction up to 9 digits](Z|+HH:MM|-HH:MM). */
static int dec_timestamp(struct dec *d, const json_t *j, Google__Protobuf__Timestamp *ts) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const char *str, *p;
  int y, mo, day, h, mi, s, off = 0, n = 0;
  int64_t secs;
  int32_t nanos = 0;

  if (!json_is_string(j)) return fail(d, "expected an RFC 3339 timestamp string, got %s", kind(j));
  str = json_string_value(j);
  if (strlen(str) < 20 || str[4] != '-' || str[7] != '-' || str[10] != 'T' || str[13] != ':' ||
      str[16] != ':')
    goto bad;
  y = digits_at(str, 4);
  mo = digits_at(str + 5, 2);
  day = digits_at(str + 8, 2);
  h = digits_at(str + 11, 2);
  mi = digits_at(str + 14, 2);
  s = digits_at(str + 17, 2);
  p = str + 19;
  if (*p == '.') {
    for (p++; *p >= '0' && *p <= '9' && n < 9; p++, n++) nanos = nanos * 10 + (*p - '0');
    if (n == 0) goto bad;
    for (; n < 9; n++) nanos *= 10;
  }
  if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' && digits_at(p + 1, 2) >= 0 &&
      digits_at(p + 1, 2) <= 23 && digits_at(p + 4, 2) >= 0 && digits_at(p + 4, 2) <= 59)
    off = (*p == '-' ? -60 : 60) * (digits_at(p + 1, 2) * 60 + digits_at(p + 4, 2));
  else if (strcmp(p, "Z") != 0)
    goto bad;
  if (y < 1 || mo < 1 || mo > 12 || day < 1 || day > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 ||
      mi > 59 || s < 0 || s > 59 ||
      (mo == 2 && day == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
    goto bad;
  secs = days_from_civil(y, mo, day) * 86400 + h * 3600 + mi * 60 + s - off;
  if (secs < TS_MIN_SECONDS || secs > TS_MAX_SECONDS)
    return fail(d, "timestamp \"%.100s\" is outside years 0001-9999", str);
  ts->seconds = secs;
  ts->nanos = nanos;
  return 0;
bad:
  return fail(d, "\"%.100s\" is not an RFC 3339 timestamp", str);
}

/* {"@type": url, ...fields}: the fields are decoded as the registered type
 * and packed into value; the URL is kept as written (Permify checks it). */
static int dec_any(struct dec *d, const json_t *j, Google__Protobuf__Any *any, int depth) {
  const json_t *type = json_object_get(j, "@type");
  const ProtobufCMessageDescriptor *desc;
  ProtobufCMessage *inner = NULL;
  size_t size;
  int rc;

  /* No @type: an empty Any, its fields ignored, as Permify's gateway reads
   * it (protojson discarding unknown fields); the schema check then answers
   * ERROR_CODE_ATTRIBUTE_TYPE_MISMATCH. */
  if (json_object_size(j) == 0 || !type) return 0;
  if (!json_is_string(type)) return fail(d, "@type must be a string");
  if (strlen(json_string_value(type)) != json_string_length(type))
    return fail(d, "@type: a NUL byte is not allowed here");
  desc = tc_any_lookup(json_string_value(type));
  if (desc == NULL) return fail(d, "unknown @type \"%.100s\"", json_string_value(type));
  rc = dec_message(d, desc, j, &inner, depth + 1);
  if (rc == 0) {
    size = protobuf_c_message_get_packed_size(inner);
    any->type_url = strdup(json_string_value(type));
    any->value.data = malloc(size ? size : 1);
    if (any->type_url == NULL || any->value.data == NULL)
      rc = TC_ENOMEM;
    else
      any->value.len = protobuf_c_message_pack(inner, any->value.data);
  }
  protobuf_c_message_free_unpacked(inner, NULL);
  return rc;
}

/* Allocates a desc message into *slot (so whoever owns slot frees it, also on
 * error) and fills it from j. */
static int dec_message(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *j,
                       ProtobufCMessage **slot, int depth) {
  ProtobufCMessage *m;

  if (depth > TC_JSON_MAX_DEPTH)
    return fail(d, "messages nested deeper than %d", TC_JSON_MAX_DEPTH);
  if (desc != &google__protobuf__timestamp__descriptor && !json_is_object(j))
    return fail(d, "expected an object, got %s", kind(j));
  m = calloc(1, desc->sizeof_message);
  if (m == NULL) return TC_ENOMEM;
  desc->message_init(m);
  *slot = m;
  if (desc == &google__protobuf__timestamp__descriptor)
    return dec_timestamp(d, j, (Google__Protobuf__Timestamp *)m);
  if (desc == &google__protobuf__any__descriptor)
    return dec_any(d, j, (Google__Protobuf__Any *)m, depth);
  return dec_fields(d, desc, j, m, depth);
}

static int from_value(const ProtobufCMessageDescriptor *desc, const json_t *value,
                      bool ints_as_reals, ProtobufCMessage **out, char **errmsg) {
  struct dec d = {.len = 0, .ints_as_reals = ints_as_reals};
  ProtobufCMessage *m = NULL;
  int rc = dec_message(&d, desc, value, &m, 0);

  if (rc != 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    m = NULL;
  }
  *out = m;
  if (errmsg != NULL)
    *errmsg = d.err;
  else
    free(d.err);
  return rc;
}

int tc_json_from_value(const ProtobufCMessageDescriptor *desc, const json_t *value,
                       ProtobufCMessage **out, char **errmsg) {
  return from_value(desc, value, false, out, errmsg);
}

int tc_json_decode(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                   ProtobufCMessage **out, char **errmsg) {
  const size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
  json_error_t e;
  json_t *root;
  size_t i = 0;
  bool ints_as_reals = false;
  int rc;

  *out = NULL;
  if (errmsg != NULL) *errmsg = NULL;
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
  /* \u0000 is kept, so that a string holding it is refused naming its field. */
  root = i == len ? json_object() : json_loadb(text, len, flags, &e);
  if (root == NULL && i < len && json_error_code(&e) == json_error_numeric_overflow) {
    ints_as_reals = true; /* a double written without a fraction or exponent */
    root = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, &e);
  }
  if (root == NULL && (i == len || json_error_code(&e) == json_error_out_of_memory))
    return TC_ENOMEM;
  if (root == NULL) {
    if (errmsg != NULL) {
      *errmsg = tc_format("invalid JSON at line %d column %d: %s", e.line, e.column, e.text);
      if (*errmsg == NULL) return TC_ENOMEM;
      scrub(*errmsg, true);
    }
    return TC_EINVAL;
  }
  rc = from_value(desc, root, ints_as_reals, out, errmsg);
  json_decref(root);
  return rc;
}
