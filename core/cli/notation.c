/* A Watch change in Permify's notation: the strings Permify's own tools
 * print for tuples (entity:id#relation@subject:id[#relation]) and
 * attributes (entity:id$name|type:value, arrays comma-joined). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json_text.h"

typedef struct {
  FILE *f;
  bool escape;
} out_t;

static void put_str(out_t *o, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; s && *p; p++) {
    if (!o->escape || (*p >= 0x20 && *p != 0x7f))
      fputc(*p, o->f);
    else if (*p == '\n')
      fputs("\\n", o->f);
    else if (*p == '\t')
      fputs("\\t", o->f);
    else if (*p == '\r')
      fputs("\\r", o->f);
    else
      fprintf(o->f, "\\x%02x", *p);
  }
}

static const char *str_at(const json_t *obj, const char *key) {
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : "";
}

static void put_entity(out_t *o, const json_t *e) {
  put_str(o, str_at(e, "type"));
  fputc(':', o->f);
  put_str(o, str_at(e, "id"));
}

/* Go's strconv.FormatFloat(v, 'f', -1, 64), as Permify prints doubles: the
 * fewest digits that read back as v, never an exponent. */
static void put_double(out_t *o, double v) {
  if (isnan(v) || isinf(v))
    fputs(isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf", o->f);
  else
    tc_json_put_plain_double(o->f, v);
}

/* A double arrives as a JSON number, or as "NaN"/"Infinity"/"-Infinity".
 * The stream is read with JSON_DECODE_INT_AS_REAL (the server writes 1e20
 * as 100000000000000000000, beyond an int64): every number is a real, an
 * integer (int32) exactly. */
static void put_number(out_t *o, const json_t *j, bool is_double) {
  const char *s = json_string_value(j);
  if (s && is_double)
    put_double(o, strcmp(s, "NaN") == 0 ? NAN : strcmp(s, "-Infinity") == 0 ? -INFINITY : INFINITY);
  else if (is_double)
    put_double(o, json_number_value(j));
  else
    fprintf(o->f, "%lld", (long long)json_number_value(j));
}

static void put_scalar(out_t *o, const json_t *j, char kind) {
  switch (kind) {
  case 'b': fputs(json_is_true(j) ? "true" : "false", o->f); break;
  case 's': put_str(o, json_string_value(j)); break;
  default: put_number(o, j, kind == 'd');
  }
}

static const struct {
  const char *url, *name;
  char kind; /* b s i d */
  bool array;
} value_types[] = {
    {"type.googleapis.com/base.v1.BooleanValue", "boolean", 'b', false},
    {"type.googleapis.com/base.v1.StringValue", "string", 's', false},
    {"type.googleapis.com/base.v1.IntegerValue", "integer", 'i', false},
    {"type.googleapis.com/base.v1.DoubleValue", "double", 'd', false},
    {"type.googleapis.com/base.v1.BooleanArrayValue", "boolean[]", 'b', true},
    {"type.googleapis.com/base.v1.StringArrayValue", "string[]", 's', true},
    {"type.googleapis.com/base.v1.IntegerArrayValue", "integer[]", 'i', true},
    {"type.googleapis.com/base.v1.DoubleArrayValue", "double[]", 'd', true},
};

/* "type:value"; a type Permify does not know prints as ":undefined", as
 * Permify's own ToString does. */
static void put_value(out_t *o, const json_t *any) {
  const char *url = str_at(any, "@type");
  const json_t *data = json_object_get(any, "data");
  for (size_t t = 0; t < sizeof value_types / sizeof value_types[0]; t++) {
    if (strcmp(url, value_types[t].url) != 0) continue;
    fprintf(o->f, "%s:", value_types[t].name);
    if (!value_types[t].array) {
      put_scalar(o, data, value_types[t].kind);
      return;
    }
    for (size_t i = 0; i < json_array_size(data); i++) {
      if (i) fputc(',', o->f);
      put_scalar(o, json_array_get(data, i), value_types[t].kind);
    }
    return;
  }
  fputs(":undefined", o->f);
}

static void put_tuple(out_t *o, const json_t *t) {
  const json_t *subject = json_object_get(t, "subject");
  put_entity(o, json_object_get(t, "entity"));
  fputc('#', o->f);
  put_str(o, str_at(t, "relation"));
  fputc('@', o->f);
  put_entity(o, subject);
  if (*str_at(subject, "relation")) {
    fputc('#', o->f);
    put_str(o, str_at(subject, "relation"));
  }
}

static void put_attribute(out_t *o, const json_t *a) {
  put_entity(o, json_object_get(a, "entity"));
  fputc('$', o->f);
  put_str(o, str_at(a, "attribute"));
  fputc('|', o->f);
  put_value(o, json_object_get(a, "value"));
}

char *tc_cli_change_notation(const json_t *change, bool sign, bool escape) {
  const json_t *tuple = json_object_get(change, "tuple");
  const json_t *attr = json_object_get(change, "attribute");
  if (!json_is_object(tuple) && !json_is_object(attr)) return NULL;
  char *text = NULL;
  size_t len = 0;
  out_t o = {.f = open_memstream(&text, &len), .escape = escape};
  if (!o.f) return NULL;
  const char *op = str_at(change, "operation");
  if (sign)
    fputs(!strcmp(op, "OPERATION_CREATE")   ? "+ "
          : !strcmp(op, "OPERATION_DELETE") ? "- "
                                            : "? ",
          o.f);
  if (json_is_object(tuple))
    put_tuple(&o, tuple);
  else
    put_attribute(&o, attr);
  if (fclose(o.f) != 0) {
    free(text);
    return NULL;
  }
  return text;
}
