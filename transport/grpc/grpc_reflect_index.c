/* The reflection index (grpc_reflect_index.h): the compiled-in
 * FileDescriptorSet read field by field, so each file's bytes are served
 * exactly as protoc-c wrote them, and each file decoded once with
 * protobuf-c's descriptor.proto to name the symbols it defines. */
#include "grpc_reflect_index.h"

#include <stdlib.h>
#include <string.h>

#include "descriptor_set.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "tuplecast/errors.h"
#include "tuplecast/support.h" /* tc_format */

typedef Google__Protobuf__FileDescriptorProto file_proto_t;
typedef Google__Protobuf__DescriptorProto msg_proto_t;
typedef Google__Protobuf__EnumDescriptorProto enum_proto_t;
typedef Google__Protobuf__FieldDescriptorProto field_proto_t;

typedef struct {
  char *name; /* fully qualified, no leading dot */
  long file;
  int is_message;
} sym_t;

typedef struct {
  char *extendee; /* fully qualified, no leading dot */
  int32_t number;
  long file;
} ext_t;

struct tc__reflect_index_s {
  tc__reflect_file_t *files;
  file_proto_t **decoded;
  size_t n_files;
  sym_t *syms;
  size_t n_syms, cap_syms;
  ext_t *exts;
  size_t n_exts, cap_exts;
  const char **services; /* names borrowed from syms */
  size_t n_services;
  int failed; /* out of memory while adding */
};

/* A varint at *p (before end); 0 when it runs past end or is too long. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 1;
  }
  return 0;
}

/* The set's field 1 (repeated FileDescriptorProto file), as byte ranges.
 * protoc writes nothing else into a FileDescriptorSet. */
static int split_files(tc__reflect_index_t *ix) {
  const uint8_t *p = tc_descriptor_set, *end = p + tc_descriptor_set_len;
  size_t cap = 0;
  while (p < end) {
    uint64_t tag, len;
    if (!read_varint(&p, end, &tag) || tag != ((1 << 3) | 2) || !read_varint(&p, end, &len) ||
        len > (uint64_t)(end - p))
      return TC_EINTERNAL;
    if (ix->n_files == cap) {
      cap = cap ? cap * 2 : 16;
      tc__reflect_file_t *f = realloc(ix->files, cap * sizeof *f);
      if (!f) return TC_ENOMEM;
      ix->files = f;
    }
    ix->files[ix->n_files++] = (tc__reflect_file_t){p, (size_t)len};
    p += len;
  }
  return 0;
}

static void add_sym(tc__reflect_index_t *ix, char *name, long file, int is_message) {
  if (!name || ix->failed) {
    ix->failed = 1;
    free(name);
    return;
  }
  if (ix->n_syms == ix->cap_syms) {
    size_t cap = ix->cap_syms ? ix->cap_syms * 2 : 256;
    sym_t *s = realloc(ix->syms, cap * sizeof *s);
    if (!s) {
      ix->failed = 1;
      free(name);
      return;
    }
    ix->syms = s;
    ix->cap_syms = cap;
  }
  ix->syms[ix->n_syms++] = (sym_t){name, file, is_message};
}

/* scope is "" or "pkg.Outer" (no trailing dot). */
static char *qualify(const char *scope, const char *name) {
  return *scope ? tc_format("%s.%s", scope, name) : strdup(name);
}

static void add_ext(tc__reflect_index_t *ix, const field_proto_t *f, long file) {
  if (!f->extendee || ix->failed) return;
  if (ix->n_exts == ix->cap_exts) {
    size_t cap = ix->cap_exts ? ix->cap_exts * 2 : 16;
    ext_t *e = realloc(ix->exts, cap * sizeof *e);
    if (!e) {
      ix->failed = 1;
      return;
    }
    ix->exts = e;
    ix->cap_exts = cap;
  }
  char *extendee = strdup(f->extendee[0] == '.' ? f->extendee + 1 : f->extendee);
  if (!extendee) {
    ix->failed = 1;
    return;
  }
  ix->exts[ix->n_exts++] = (ext_t){extendee, f->number, file};
}

/* Enum values are scoped beside their enum, not inside it (protobuf's C++
 * scoping rule), so base.v1.CheckResult's values are base.v1.CHECK_RESULT_*. */
static void add_enum(tc__reflect_index_t *ix, const char *scope, const enum_proto_t *e, long file) {
  add_sym(ix, qualify(scope, e->name), file, 0);
  for (size_t i = 0; i < e->n_value; i++) add_sym(ix, qualify(scope, e->value[i]->name), file, 0);
}

static void add_fields(tc__reflect_index_t *ix, const char *scope, field_proto_t *const *fields,
                       size_t n, long file) {
  for (size_t i = 0; i < n; i++) {
    add_sym(ix, qualify(scope, fields[i]->name), file, 0);
    add_ext(ix, fields[i], file);
  }
}

static void add_message(tc__reflect_index_t *ix, const char *scope, const msg_proto_t *m,
                        long file) {
  char *name = qualify(scope, m->name);
  if (!name) {
    ix->failed = 1;
    return;
  }
  add_fields(ix, name, m->field, m->n_field, file);
  add_fields(ix, name, m->extension, m->n_extension, file);
  for (size_t i = 0; i < m->n_nested_type; i++) add_message(ix, name, m->nested_type[i], file);
  for (size_t i = 0; i < m->n_enum_type; i++) add_enum(ix, name, m->enum_type[i], file);
  add_sym(ix, name, file, 1);
}

static void add_file(tc__reflect_index_t *ix, const file_proto_t *f, long file) {
  const char *pkg = f->package ? f->package : "";
  for (size_t i = 0; i < f->n_message_type; i++) add_message(ix, pkg, f->message_type[i], file);
  for (size_t i = 0; i < f->n_enum_type; i++) add_enum(ix, pkg, f->enum_type[i], file);
  add_fields(ix, pkg, f->extension, f->n_extension, file);
  for (size_t i = 0; i < f->n_service; i++) {
    const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
    char *name = qualify(pkg, s->name);
    for (size_t j = 0; name && j < s->n_method; j++)
      add_sym(ix, qualify(name, s->method[j]->name), file, 0);
    add_sym(ix, name, file, 0);
  }
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const sym_t *)a)->name, ((const sym_t *)b)->name);
}

/* The service names, in file order, once the symbols are sorted. */
static int list_services(tc__reflect_index_t *ix) {
  size_t n = 0;
  for (size_t i = 0; i < ix->n_files; i++) n += ix->decoded[i]->n_service;
  ix->services = calloc(n ? n : 1, sizeof *ix->services);
  if (!ix->services) return TC_ENOMEM;
  for (size_t i = 0; i < ix->n_files; i++) {
    const file_proto_t *f = ix->decoded[i];
    for (size_t j = 0; j < f->n_service; j++) {
      char *name = qualify(f->package ? f->package : "", f->service[j]->name);
      if (!name) return TC_ENOMEM;
      sym_t key = {name, 0, 0}, *s = bsearch(&key, ix->syms, ix->n_syms, sizeof key, by_name);
      free(name);
      if (!s) return TC_EINTERNAL;
      ix->services[ix->n_services++] = s->name;
    }
  }
  return 0;
}

static int build(tc__reflect_index_t *ix) {
  int rc = split_files(ix);
  if (rc < 0) return rc;
  ix->decoded = calloc(ix->n_files ? ix->n_files : 1, sizeof *ix->decoded);
  if (!ix->decoded) return TC_ENOMEM;
  for (size_t i = 0; i < ix->n_files; i++) {
    ix->decoded[i] =
        google__protobuf__file_descriptor_proto__unpack(NULL, ix->files[i].len, ix->files[i].data);
    if (!ix->decoded[i]) return TC_EINTERNAL;
    add_file(ix, ix->decoded[i], (long)i);
  }
  if (ix->failed) return TC_ENOMEM;
  qsort(ix->syms, ix->n_syms, sizeof *ix->syms, by_name);
  return list_services(ix);
}

int tc__reflect_index_build(tc__reflect_index_t **out) {
  *out = NULL;
  tc__reflect_index_t *ix = calloc(1, sizeof *ix);
  if (!ix) return TC_ENOMEM;
  int rc = build(ix);
  if (rc < 0) {
    tc__reflect_index_free(ix);
    return rc;
  }
  *out = ix;
  return 0;
}

void tc__reflect_index_free(tc__reflect_index_t *ix) {
  if (!ix) return;
  for (size_t i = 0; ix->decoded && i < ix->n_files; i++)
    if (ix->decoded[i])
      google__protobuf__file_descriptor_proto__free_unpacked(ix->decoded[i], NULL);
  for (size_t i = 0; i < ix->n_syms; i++) free(ix->syms[i].name);
  for (size_t i = 0; i < ix->n_exts; i++) free(ix->exts[i].extendee);
  free(ix->decoded);
  free(ix->files);
  free(ix->syms);
  free(ix->exts);
  free(ix->services);
  free(ix);
}

long tc__reflect_index_file(const tc__reflect_index_t *ix, const char *name) {
  for (size_t i = 0; i < ix->n_files; i++)
    if (strcmp(ix->decoded[i]->name, name) == 0) return (long)i;
  return -1;
}

static const sym_t *find_sym(const tc__reflect_index_t *ix, const char *symbol) {
  sym_t key = {(char *)symbol, 0, 0};
  return bsearch(&key, ix->syms, ix->n_syms, sizeof key, by_name);
}

long tc__reflect_index_symbol(const tc__reflect_index_t *ix, const char *symbol) {
  const sym_t *s = find_sym(ix, symbol);
  return s ? s->file : -1;
}

int tc__reflect_index_is_message(const tc__reflect_index_t *ix, const char *symbol) {
  const sym_t *s = find_sym(ix, symbol);
  return s && s->is_message;
}

long tc__reflect_index_extension(const tc__reflect_index_t *ix, const char *containing_type,
                                 int32_t number) {
  for (size_t i = 0; i < ix->n_exts; i++)
    if (ix->exts[i].number == number && strcmp(ix->exts[i].extendee, containing_type) == 0)
      return ix->exts[i].file;
  return -1;
}

size_t tc__reflect_index_extension_numbers(const tc__reflect_index_t *ix, const char *type,
                                           int32_t *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < ix->n_exts; i++)
    if (strcmp(ix->exts[i].extendee, type) == 0) {
      if (n < max) out[n] = ix->exts[i].number;
      n++;
    }
  return n;
}

/* Depth first over the imports; seen has n_files entries. */
static void visit(const tc__reflect_index_t *ix, long i, char *seen, tc__reflect_file_t *out,
                  size_t max, size_t *n) {
  if (i < 0 || seen[i]) return;
  seen[i] = 1;
  if (*n < max) out[*n] = ix->files[i];
  (*n)++;
  const file_proto_t *f = ix->decoded[i];
  for (size_t d = 0; d < f->n_dependency; d++)
    visit(ix, tc__reflect_index_file(ix, f->dependency[d]), seen, out, max, n);
}

size_t tc__reflect_index_closure(const tc__reflect_index_t *ix, long i, tc__reflect_file_t *out,
                                 size_t max) {
  char *seen = calloc(ix->n_files ? ix->n_files : 1, 1);
  if (!seen) return 0;
  size_t n = 0;
  visit(ix, i, seen, out, max, &n);
  free(seen);
  return n;
}

size_t tc__reflect_index_services(const tc__reflect_index_t *ix, const char *const **names) {
  *names = ix->services;
  return ix->n_services;
}

size_t tc__reflect_index_n_files(const tc__reflect_index_t *ix) { return ix->n_files; }
