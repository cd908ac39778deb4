/* Data.RunBundle's templates and text forms (bundle_expand.h). */
#include "bundle_expand.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/v1/base.pb-c.h"
#include "google/protobuf/any.pb-c.h"

/* ---- growing output ------------------------------------------------------ */

typedef struct {
  char *s;
  size_t len, cap;
  size_t room; /* bytes it may still grow by */
} buf_t;

static int put(buf_t *b, const char *s, size_t n) {
  if (n > b->room) return TC_ETOO_LARGE;
  b->room -= n;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *s2 = realloc(b->s, cap);
    if (!s2) return TC_ENOMEM;
    b->s = s2;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
  return 0;
}

/* html/template's escaping of a value in text. */
static int put_escaped(buf_t *b, const char *v) {
  int rc = 0;
  for (const char *p = v; rc == 0 && *p; p++) {
    const char *r = *p == '&'    ? "&amp;"
                    : *p == '<'  ? "&lt;"
                    : *p == '>'  ? "&gt;"
                    : *p == '"'  ? "&#34;"
                    : *p == '\'' ? "&#39;"
                    : *p == '+'  ? "&#43;"
                                 : NULL;
    rc = r ? put(b, r, strlen(r)) : put(b, p, 1);
  }
  return rc;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int is_ident(char c, int first) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (!first && c >= '0' && c <= '9');
}

/* ---- templates ----------------------------------------------------------- */

static const char *key_of(const tc_bundle_arg_t *a) { return a->key ? a->key : ""; }

static int by_key(const void *x, const void *y) {
  return strcmp(key_of(*(tc_bundle_arg_t *const *)x), key_of(*(tc_bundle_arg_t *const *)y));
}

void tc_bundle_args_sort(tc_bundle_arg_t **args, size_t n) {
  if (n) qsort(args, n, sizeof *args, by_key);
}

/* key[0..len) against s: like strcmp. */
static int cmp_key(const char *key, size_t len, const char *s) {
  int c = strncmp(key, s, len);
  return c ? c : s[len] ? -1 : 0;
}

const char *tc_bundle_arg_find(tc_bundle_arg_t *const *args, size_t n, const char *key,
                               size_t len) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_key(key, len, key_of(args[mid]));
    if (c == 0) return args[mid]->value ? args[mid]->value : "";
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

static const char *arg_value(tc_bundle_arg_t *const *args, size_t n, const char *name, size_t len) {
  const char *v = tc_bundle_arg_find(args, n, name, len);
  return v ? v : ""; /* missingkey=zero */
}

/* One action at *pp (just past "{{"): {{[- ] .name [ -]}}.  Moves *pp past
 * "}}"; *trim_right when the action ends with a trim marker.  A left trim
 * marker trims the template text before the action, which starts at b->s[lit]
 * (Go trims text when it parses, so never a value written before it). */
static int action(buf_t *b, size_t lit, const char **pp, tc_bundle_arg_t *const *args, size_t n,
                  int *trim_right) {
  const char *p = *pp;
  if (p[0] == '-' && is_space(p[1])) {
    for (; b->len > lit && is_space(b->s[b->len - 1]); b->room++) b->s[--b->len] = '\0';
    p++;
  }
  while (is_space(*p)) p++;
  if (*p++ != '.' || !is_ident(*p, 1)) return TC_EINVAL;
  const char *name = p;
  while (is_ident(*p, 0)) p++;
  size_t len = (size_t)(p - name);
  while (is_space(*p)) p++;
  *trim_right = p[0] == '-' && is_space(p[-1]);
  if (*trim_right) p++;
  if (p[0] != '}' || p[1] != '}') return TC_EINVAL;
  *pp = p + 2;
  return put_escaped(b, arg_value(args, n, name, len));
}

int tc_bundle_expand(tc_arena_t *a, const char *tmpl, tc_bundle_arg_t *const *args, size_t n_args,
                     size_t *room, char **out, const char **why) {
  buf_t b = {.room = *room};
  int rc = put(&b, "", 0);
  const char *p = tmpl;
  while (rc == 0 && *p) {
    const char *open = strstr(p, "{{");
    size_t start = b.len, lit = open ? (size_t)(open - p) : strlen(p);
    rc = put(&b, p, lit);
    if (rc != 0 || !open) break;
    p = open + 2;
    int trim_right = 0;
    rc = action(&b, start, &p, args, n_args, &trim_right);
    if (rc == TC_EINVAL && why) *why = "only {{.name}} template actions are supported";
    while (rc == 0 && trim_right && is_space(*p)) p++;
  }
  if (rc == 0 && !(*out = tc_arena_strdup(a, b.s))) rc = TC_ENOMEM;
  if (rc == TC_ETOO_LARGE && why) *why = "the run's expanded text is too large";
  free(b.s);
  *room = b.room;
  return rc;
}

/* ---- text forms ---------------------------------------------------------- */

/* A trimmed arena copy of text. */
static char *trimmed(tc_arena_t *a, const char *text) {
  while (is_space(*text)) text++;
  size_t n = strlen(text);
  while (n && is_space(text[n - 1])) n--;
  char *s = tc_arena_alloc(a, n + 1);
  if (s) {
    memcpy(s, text, n);
    s[n] = '\0';
  }
  return s;
}

/* Go's strings.Split(s, sep) into exactly two parts: s cut at its only sep. */
static int split2(char *s, char sep, char **left, char **right) {
  char *at = strchr(s, sep);
  if (!at || strchr(at + 1, sep)) return -1;
  *at = '\0';
  *left = s;
  *right = at + 1;
  return 0;
}

/* Permify's E: "type:id", both non-empty, one colon. */
static int entity(char *s, const char **type, const char **id) {
  char *t, *i;
  if (split2(s, ':', &t, &i) != 0 || !*t || !*i) return -1;
  *type = t;
  *id = i;
  return 0;
}

/* Permify's EAR: the entity, then the relation after the first '#' (text
 * after a second '#' is dropped). */
static int entity_and_relation(char *s, const char **type, const char **id, const char **rel) {
  s = s + strspn(s, " \t\r\n");
  size_t n = strlen(s);
  while (n && is_space(s[n - 1])) s[--n] = '\0';
  char *hash = strchr(s, '#');
  *rel = "";
  if (hash) {
    *hash = '\0';
    char *end = strchr(hash + 1, '#');
    if (end) *end = '\0';
    *rel = hash + 1;
  }
  return entity(s, type, id);
}

int tc_bundle_parse_tuple(tc_arena_t *a, const char *text, tc_tuple_t *out, const char **why) {
  char *s = trimmed(a, text), *left, *right;
  if (!s) return TC_ENOMEM;
  *why = "invalid tuple";
  if (split2(s, '@', &left, &right) != 0) return TC_EINVAL;
  *why = "invalid entity";
  if (entity_and_relation(left, &out->entity_type, &out->entity_id, &out->relation) != 0 ||
      entity_and_relation(right, &out->subject_type, &out->subject_id, &out->subject_relation) != 0)
    return TC_EINVAL;
  if (strcmp(out->subject_relation, "...") == 0) out->subject_relation = "";
  return 0;
}

/* ---- attribute values ---------------------------------------------------- */

enum kind { K_BOOL, K_STRING, K_INT, K_DOUBLE };

static const struct value_type {
  const char *name;
  const ProtobufCMessageDescriptor *desc;
  enum kind kind;
  int array;
} value_types[] = {
    {"boolean", &base__v1__boolean_value__descriptor, K_BOOL, 0},
    {"boolean[]", &base__v1__boolean_array_value__descriptor, K_BOOL, 1},
    {"string", &base__v1__string_value__descriptor, K_STRING, 0},
    {"string[]", &base__v1__string_array_value__descriptor, K_STRING, 1},
    {"double", &base__v1__double_value__descriptor, K_DOUBLE, 0},
    {"double[]", &base__v1__double_array_value__descriptor, K_DOUBLE, 1},
    {"integer", &base__v1__integer_value__descriptor, K_INT, 0},
    {"integer[]", &base__v1__integer_array_value__descriptor, K_INT, 1},
};

static size_t elem_size(enum kind k) {
  return k == K_BOOL     ? sizeof(protobuf_c_boolean)
         : k == K_STRING ? sizeof(char *)
         : k == K_INT    ? sizeof(int32_t)
                         : sizeof(double);
}

/* Go's strconv.ParseBool / ParseInt(s, 10, 32) / ParseFloat(s, 64). */
static int parse_elem(enum kind k, char *s, void *out) {
  static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
  if (k == K_STRING) {
    *(char **)out = s;
    return 0;
  }
  if (k == K_BOOL) {
    for (int i = 0; i < 6; i++)
      if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
        *(protobuf_c_boolean *)out = !strcmp(s, yes[i]);
        return 0;
      }
    return -1;
  }
  if (!*s || is_space(*s)) return -1;
  char *end;
  errno = 0;
  if (k == K_INT) {
    const char *digits = s + (*s == '+' || *s == '-');
    if (!*digits || strspn(digits, "0123456789") != strlen(digits)) return -1;
    long long v = strtoll(s, &end, 10);
    if (errno || v < INT32_MIN || v > INT32_MAX) return -1;
    *(int32_t *)out = (int32_t)v;
    return 0;
  }
  double d = strtod(s, &end);
  if (*end || (errno == ERANGE && isinf(d))) return -1;
  *(double *)out = d;
  return 0;
}

/* The message of type t holding the text value s (arena-owned). */
static ProtobufCMessage *value_message(tc_arena_t *a, const struct value_type *t, char *s) {
  ProtobufCMessage *m = tc_arena_alloc(a, t->desc->sizeof_message);
  if (!m) return NULL;
  t->desc->message_init(m);
  const ProtobufCFieldDescriptor *f = &t->desc->fields[0];
  size_t n = 1, size = elem_size(t->kind);
  for (const char *p = s; t->array && (p = strchr(p, ',')); p++) n++;
  char *elems = t->array ? tc_arena_alloc(a, n * size) : (char *)m + f->offset;
  if (!elems) return NULL;
  for (size_t i = 0; i < n; i++) {
    char *comma = t->array ? strchr(s, ',') : NULL;
    if (comma) *comma = '\0';
    if (parse_elem(t->kind, s, elems + i * size) != 0) return NULL;
    s = comma ? comma + 1 : s;
  }
  if (t->array) {
    *(size_t *)((char *)m + f->quantifier_offset) = n;
    *(char **)((char *)m + f->offset) = elems;
  }
  return m;
}

/* m packed as a google.protobuf.Any, into out's value. */
static int pack_any(tc_arena_t *a, const ProtobufCMessage *m, tc_attr_t *out) {
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *value = tc_arena_alloc(a, len + 1);
  const char *name = m->descriptor->name;
  char *url = tc_arena_alloc(a, strlen(name) + sizeof "type.googleapis.com/");
  if (!value || !url) return TC_ENOMEM;
  protobuf_c_message_pack(m, value);
  strcat(strcpy(url, "type.googleapis.com/"), name);
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = url;
  any.value = (ProtobufCBinaryData){len, value};
  out->value_len = protobuf_c_message_get_packed_size(&any.base);
  uint8_t *packed = tc_arena_alloc(a, out->value_len + 1);
  if (!packed) return TC_ENOMEM;
  protobuf_c_message_pack(&any.base, packed);
  out->value = packed;
  return 0;
}

int tc_bundle_parse_attr(tc_arena_t *a, const char *text, tc_attr_t *out, const char **why) {
  char *s = trimmed(a, text), *key, *val, *ent, *attr, *type, *v;
  if (!s) return TC_ENOMEM;
  *why = "invalid attribute";
  if (split2(s, '|', &key, &val) != 0 || !*key || !*val) return TC_EINVAL;
  *why = "invalid entity";
  if (split2(key, '$', &ent, &attr) != 0 || !*ent || !*attr) return TC_EINVAL;
  *why = "invalid attribute";
  if (entity(ent, &out->entity_type, &out->entity_id) != 0) return TC_EINVAL;
  if (split2(val, ':', &type, &v) != 0 || !*type || !*v) return TC_EINVAL;
  out->attribute = attr;
  for (size_t i = 0; i < sizeof value_types / sizeof value_types[0]; i++) {
    if (strcmp(type, value_types[i].name) != 0) continue;
    ProtobufCMessage *m = value_message(a, &value_types[i], v);
    *why = "invalid attribute value";
    return m ? pack_any(a, m, out) : TC_EINVAL;
  }
  *why = "invalid value";
  return TC_EINVAL;
}
