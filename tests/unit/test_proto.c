/* tc_proto: the generated base.v1 code against Permify's wire format, and the
 * Any helpers with their registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "any.h"
#include "base/v1/base.pb-c.h"
#include "base/v1/errors.pb-c.h"
#include "base/v1/service.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "codec_fx.h"

/* Packs msg and checks the bytes are exactly expected[0..len). */
static void assert_packs_to(const ProtobufCMessage *msg, const uint8_t *expected, size_t len) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(size);

  assert_non_null(buf);
  assert_int_equal(size, len);
  assert_int_equal(protobuf_c_message_pack(msg, buf), len);
  assert_memory_equal(buf, expected, len);
  free(buf);
}

static ProtobufCMessage *round_trip(const ProtobufCMessage *msg) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(size ? size : 1);
  ProtobufCMessage *out;

  assert_non_null(buf);
  protobuf_c_message_pack(msg, buf);
  out = protobuf_c_message_unpack(msg->descriptor, NULL, size, buf);
  free(buf);
  assert_non_null(out);
  return out;
}

/* Hand-encoded from Permify's field numbers: Tuple{entity=1, relation=2,
 * subject=3}, Entity{type=1, id=2}, Subject{type=1, id=2, relation=3}.
 * document:1#viewer@user:2 */
static const uint8_t tuple_wire[] = {
    0x0a, 0x08,                               /* 1 entity, 8 bytes */
    0x0a, 0x03, 'd', 'o', 'c',                /*   1 type */
    0x12, 0x01, '1',                          /*   2 id */
    0x12, 0x06, 'v', 'i', 'e', 'w', 'e', 'r', /* 2 relation */
    0x1a, 0x09,                               /* 3 subject, 9 bytes */
    0x0a, 0x04, 'u', 's', 'e', 'r',           /*   1 type */
    0x12, 0x01, '2',                          /*   2 id; relation "" is not sent */
};

/* DataWriteRequest{tenant_id=1, metadata=2{schema_version=1}, tuples=3,
 * attributes=4}; Attribute{entity=1, attribute=2, value=3 Any{type_url=1,
 * value=2}}; BooleanValue{data=1}. */
static const uint8_t
    write_request_wire
        [] =
            {
                0x0a, 0x02, 't',  '1',       /* 1 tenant_id */
                0x12, 0x03, 0x0a, 0x01, 'v', /* 2 metadata{schema_version "v"} */
                0x1a, 0x1d,                  /* 3 tuples[0], 29 bytes */
                0x0a, 0x08, 0x0a, 0x03, 'd',  'o',  'c',  0x12, 0x01, '1',  0x12, 0x06,
                'v',  'i',  'e',  'w',  'e',  'r',  0x1a, 0x09, 0x0a, 0x04, 'u',  's',
                'e',  'r',  0x12, 0x01, '2',  0x22, 0x42, /* 4 attributes[0], 66 bytes */
                0x0a, 0x08, 0x0a, 0x03, 'd',  'o',  'c',  0x12, 0x01, '1', /* 1 entity */
                0x12, 0x06, 'p',  'u',  'b',  'l',  'i',  'c',             /* 2 attribute */
                0x1a, 0x2e, /* 3 value (Any), 46 bytes */
                0x0a, 0x28, /*   1 type_url, 40 bytes */
                't',  'y',  'p',  'e',  '.',  'g',  'o',  'o',  'g',  'l',  'e',  'a',
                'p',  'i',  's',  '.',  'c',  'o',  'm',  '/',  'b',  'a',  's',  'e',
                '.',  'v',  '1',  '.',  'B',  'o',  'o',  'l',  'e',  'a',  'n',  'V',
                'a',  'l',  'u',  'e',  0x12, 0x02, 0x08, 0x01, /*   2 value: BooleanValue{data true} */
};

static void fill_tuple(Base__V1__Tuple *t, Base__V1__Entity *e, Base__V1__Subject *s) {
  base__v1__tuple__init(t);
  base__v1__entity__init(e);
  base__v1__subject__init(s);
  e->type = "doc";
  e->id = "1";
  s->type = "user";
  s->id = "2";
  t->entity = e;
  t->relation = "viewer";
  t->subject = s;
}

static void test_tuple_wire(void **state) {
  Base__V1__Tuple t;
  Base__V1__Entity e;
  Base__V1__Subject s;
  Base__V1__Tuple *got;

  (void)state;
  fill_tuple(&t, &e, &s);
  assert_packs_to(&t.base, tuple_wire, sizeof(tuple_wire));

  got = base__v1__tuple__unpack(NULL, sizeof(tuple_wire), tuple_wire);
  assert_non_null(got);
  assert_string_equal(got->entity->type, "doc");
  assert_string_equal(got->entity->id, "1");
  assert_string_equal(got->relation, "viewer");
  assert_string_equal(got->subject->type, "user");
  assert_string_equal(got->subject->id, "2");
  assert_string_equal(got->subject->relation, "");
  base__v1__tuple__free_unpacked(got, NULL);
}

static void test_write_request_wire(void **state) {
  Base__V1__DataWriteRequest req = BASE__V1__DATA_WRITE_REQUEST__INIT;
  Base__V1__DataWriteRequestMetadata md = BASE__V1__DATA_WRITE_REQUEST_METADATA__INIT;
  Base__V1__Tuple t, *tuples[1] = {&t};
  Base__V1__Entity e, ae = BASE__V1__ENTITY__INIT;
  Base__V1__Subject s;
  Base__V1__Attribute a = BASE__V1__ATTRIBUTE__INIT, *attrs[1] = {&a};
  Base__V1__BooleanValue bv = BASE__V1__BOOLEAN_VALUE__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  Base__V1__DataWriteRequest *got;
  Base__V1__BooleanValue *gotv;

  (void)state;
  fill_tuple(&t, &e, &s);
  ae.type = "doc";
  ae.id = "1";
  bv.data = 1;
  assert_int_equal(tc_any_pack(&bv.base, &any), 0);
  a.entity = &ae;
  a.attribute = "public";
  a.value = &any;
  md.schema_version = "v";
  tt_write_request(&req, &md, tuples, 1, attrs, 1);
  assert_packs_to(&req.base, write_request_wire, sizeof(write_request_wire));
  tc_any_clear(&any);

  got = base__v1__data_write_request__unpack(NULL, sizeof(write_request_wire), write_request_wire);
  assert_non_null(got);
  assert_string_equal(got->tenant_id, "t1");
  assert_string_equal(got->metadata->schema_version, "v");
  assert_int_equal(got->n_tuples, 1);
  assert_string_equal(got->tuples[0]->relation, "viewer");
  assert_int_equal(got->n_attributes, 1);
  assert_string_equal(got->attributes[0]->attribute, "public");
  gotv = (Base__V1__BooleanValue *)tc_any_unpack(got->attributes[0]->value);
  assert_non_null(gotv);
  assert_ptr_equal(gotv->base.descriptor, &base__v1__boolean_value__descriptor);
  assert_true(gotv->data);
  protobuf_c_message_free_unpacked(&gotv->base, NULL);
  base__v1__data_write_request__free_unpacked(got, NULL);
}

/* Oneof, enum, uint32 varint, map<string, enum>, Timestamp, by hand. */
static void test_more_wire(void **state) {
  /* DataChange{operation=1 DELETE(2), tuple=2} */
  static const uint8_t change_wire[] = {
      0x08, 0x02, 0x12, 0x1d, 0x0a, 0x08, 0x0a, 0x03, 'd',  'o',  'c',
      0x12, 0x01, '1',  0x12, 0x06, 'v',  'i',  'e',  'w',  'e',  'r',
      0x1a, 0x09, 0x0a, 0x04, 'u',  's',  'e',  'r',  0x12, 0x01, '2',
  };
  /* SchemaListRequest{tenant_id=1, page_size=2 (300)} */
  static const uint8_t list_wire[] = {0x0a, 0x02, 't', '1', 0x10, 0xac, 0x02};
  /* RuleDefinition{name=1, arguments=2 map entry{key=1 "x", value=2 INTEGER(5)}} */
  static const uint8_t rule_wire[] = {
      0x0a, 0x01, 'r', 0x12, 0x05, 0x0a, 0x01, 'x', 0x10, 0x05,
  };
  /* Tenant{id=1, name=2, created_at=3 Timestamp{seconds=1 1700000000}} */
  static const uint8_t tenant_wire[] = {
      0x0a, 0x02, 't', '1', 0x12, 0x01, 'n', 0x1a, 0x06, 0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06,
  };
  Base__V1__DataChange c = BASE__V1__DATA_CHANGE__INIT;
  Base__V1__Tuple t;
  Base__V1__Entity e;
  Base__V1__Subject s;
  Base__V1__SchemaListRequest l = BASE__V1__SCHEMA_LIST_REQUEST__INIT;
  Base__V1__RuleDefinition r = BASE__V1__RULE_DEFINITION__INIT;
  Base__V1__RuleDefinition__ArgumentsEntry arg = BASE__V1__RULE_DEFINITION__ARGUMENTS_ENTRY__INIT,
                                           *args[1] = {&arg};
  Base__V1__Tenant tn = BASE__V1__TENANT__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

  (void)state;
  fill_tuple(&t, &e, &s);
  c.operation = BASE__V1__DATA_CHANGE__OPERATION__OPERATION_DELETE;
  c.type_case = BASE__V1__DATA_CHANGE__TYPE_TUPLE;
  c.tuple = &t;
  assert_packs_to(&c.base, change_wire, sizeof(change_wire));

  l.tenant_id = "t1";
  l.page_size = 300;
  assert_packs_to(&l.base, list_wire, sizeof(list_wire));

  r.name = "r";
  arg.key = "x";
  arg.value = BASE__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TYPE_INTEGER;
  r.n_arguments = 1;
  r.arguments = args;
  assert_packs_to(&r.base, rule_wire, sizeof(rule_wire));

  ts.seconds = 1700000000;
  tn.id = "t1";
  tn.name = "n";
  tn.created_at = &ts;
  assert_packs_to(&tn.base, tenant_wire, sizeof(tenant_wire));
}

/* A schema model with maps, nested oneofs and an unknown-to-us CheckedExpr
 * payload survives pack/unpack. */
static void test_schema_round_trip(void **state) {
  Base__V1__SchemaDefinition sd = BASE__V1__SCHEMA_DEFINITION__INIT;
  Base__V1__SchemaDefinition__EntityDefinitionsEntry
      ent = BASE__V1__SCHEMA_DEFINITION__ENTITY_DEFINITIONS_ENTRY__INIT,
      *ents[1] = {&ent};
  Base__V1__EntityDefinition ed = BASE__V1__ENTITY_DEFINITION__INIT;
  Base__V1__EntityDefinition__PermissionsEntry
      pe = BASE__V1__ENTITY_DEFINITION__PERMISSIONS_ENTRY__INIT,
      *pes[1] = {&pe};
  Base__V1__PermissionDefinition pd = BASE__V1__PERMISSION_DEFINITION__INIT;
  tt_union_t owner_or_parent_admin;
  Base__V1__SchemaDefinition *got;
  Base__V1__EntityDefinition *ged;
  Base__V1__Rewrite *grw;

  (void)state;
  pd.name = "edit";
  pd.child = tt_union(&owner_or_parent_admin, "owner", "parent", "admin");
  pe.key = "edit";
  pe.value = &pd;
  ed.name = "doc";
  ed.n_permissions = 1;
  ed.permissions = pes;
  ent.key = "doc";
  ent.value = &ed;
  sd.n_entity_definitions = 1;
  sd.entity_definitions = ents;

  got = (Base__V1__SchemaDefinition *)round_trip(&sd.base);
  assert_int_equal(got->n_entity_definitions, 1);
  assert_string_equal(got->entity_definitions[0]->key, "doc");
  ged = got->entity_definitions[0]->value;
  assert_string_equal(ged->name, "doc");
  assert_int_equal(ged->n_permissions, 1);
  assert_string_equal(ged->permissions[0]->key, "edit");
  assert_int_equal(ged->permissions[0]->value->child->type_case, BASE__V1__CHILD__TYPE_REWRITE);
  grw = ged->permissions[0]->value->child->rewrite;
  assert_int_equal(grw->rewrite_operation, BASE__V1__REWRITE__OPERATION__OPERATION_UNION);
  assert_int_equal(grw->n_children, 2);
  assert_string_equal(grw->children[0]->leaf->computed_user_set->relation, "owner");
  assert_int_equal(grw->children[1]->leaf->type_case, BASE__V1__LEAF__TYPE_TUPLE_TO_USER_SET);
  assert_string_equal(grw->children[1]->leaf->tuple_to_user_set->tupleset->relation, "parent");
  assert_string_equal(grw->children[1]->leaf->tuple_to_user_set->computed->relation, "admin");
  protobuf_c_message_free_unpacked(&got->base, NULL);
}

static void test_checked_expr_skips_unknown_fields(void **state) {
  /* RuleDefinition{name "r", expression=3 CheckedExpr{field 4 (expr) with
   * bytes we do not model, field 2 (reference_map) likewise}} */
  static const uint8_t wire[] = {
      0x0a, 0x01, 'r', 0x1a, 0x08, 0x22, 0x02, 0x08, 0x01, 0x12, 0x02, 0x08, 0x02,
  };
  Base__V1__RuleDefinition *got;

  (void)state;
  got = base__v1__rule_definition__unpack(NULL, sizeof(wire), wire);
  assert_non_null(got);
  assert_string_equal(got->name, "r");
  assert_non_null(got->expression);
  base__v1__rule_definition__free_unpacked(got, NULL);
}

/* Packs msg into an Any, checks the type URL, unpacks it again and returns
 * the copy (the caller frees it). */
static ProtobufCMessage *any_round_trip(const ProtobufCMessage *msg, const char *url) {
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  ProtobufCMessage *out;

  assert_int_equal(tc_any_pack(msg, &any), 0);
  assert_string_equal(any.type_url, url);
  out = tc_any_unpack(&any);
  tc_any_clear(&any);
  assert_string_equal(any.type_url, "");
  assert_null(any.value.data);
  assert_non_null(out);
  assert_ptr_equal(out->descriptor, msg->descriptor);
  return out;
}

static void test_any_value_wrappers(void **state) {
  static const char *const urls[8] = {
      "type.googleapis.com/base.v1.BooleanValue",
      "type.googleapis.com/base.v1.StringValue",
      "type.googleapis.com/base.v1.IntegerValue",
      "type.googleapis.com/base.v1.DoubleValue",
      "type.googleapis.com/base.v1.BooleanArrayValue",
      "type.googleapis.com/base.v1.StringArrayValue",
      "type.googleapis.com/base.v1.IntegerArrayValue",
      "type.googleapis.com/base.v1.DoubleArrayValue",
  };
  protobuf_c_boolean bools[3] = {1, 0, 1};
  char *strs[2] = {"a", "bc"};
  int32_t ints[3] = {-1, 0, 2147483647};
  double dbls[2] = {0.5, -1e300};
  tt_values_t v;

  (void)state;
  TT_VALUES_INIT(&v, bools, strs, ints, dbls);
  v.b.data = 1;
  v.s.data = "hello";
  v.i.data = -42;
  v.d.data = 3.25;
  ProtobufCMessage *got[8];
  for (size_t k = 0; k < 8; k++) got[k] = any_round_trip(v.all[k], urls[k]);

  assert_true(((Base__V1__BooleanValue *)got[0])->data);
  assert_string_equal(((Base__V1__StringValue *)got[1])->data, "hello");
  assert_int_equal(((Base__V1__IntegerValue *)got[2])->data, -42);
  assert_true(((Base__V1__DoubleValue *)got[3])->data == 3.25);
  const Base__V1__BooleanArrayValue *gba = (const void *)got[4];
  assert_int_equal(gba->n_data, 3);
  assert_true(gba->data[0] && !gba->data[1] && gba->data[2]);
  const Base__V1__StringArrayValue *gsa = (const void *)got[5];
  assert_int_equal(gsa->n_data, 2);
  assert_string_equal(gsa->data[0], "a");
  assert_string_equal(gsa->data[1], "bc");
  const Base__V1__IntegerArrayValue *gia = (const void *)got[6];
  assert_int_equal(gia->n_data, 3);
  assert_memory_equal(gia->data, ints, sizeof(ints));
  const Base__V1__DoubleArrayValue *gda = (const void *)got[7];
  assert_int_equal(gda->n_data, 2);
  assert_memory_equal(gda->data, dbls, sizeof(dbls));
  for (size_t k = 0; k < 8; k++) protobuf_c_message_free_unpacked(got[k], NULL);
}

static void test_any_empty_message(void **state) {
  /* Packs to zero bytes. */
  Base__V1__StringArrayValue empty = BASE__V1__STRING_ARRAY_VALUE__INIT;
  Base__V1__StringArrayValue *got;

  (void)state;
  got = (Base__V1__StringArrayValue *)any_round_trip(
      &empty.base, "type.googleapis.com/base.v1.StringArrayValue");
  assert_int_equal(got->n_data, 0);
  protobuf_c_message_free_unpacked(&got->base, NULL);
}

static void test_any_lookup(void **state) {
  (void)state;
  assert_ptr_equal(tc_any_lookup("type.googleapis.com/base.v1.Tuple"),
                   &base__v1__tuple__descriptor);
  assert_ptr_equal(tc_any_lookup("example.com/a/b/base.v1.Tenant"), &base__v1__tenant__descriptor);
  assert_ptr_equal(tc_any_lookup("base.v1.DataWriteRequest"),
                   &base__v1__data_write_request__descriptor);
  assert_null(tc_any_lookup("type.googleapis.com/base.v1.Nope"));
  assert_null(tc_any_lookup("type.googleapis.com/base.v1.tuple"));
  assert_null(tc_any_lookup("type.googleapis.com/base.v1.Tuple/"));
  assert_null(tc_any_lookup("type.googleapis.com/google.protobuf.Timestamp"));
  assert_null(tc_any_lookup("type.googleapis.com/base.v1.SchemaDefinition.EntityDefinitionsEntry"));
  assert_null(tc_any_lookup(""));
}

static void test_any_unpack_rejects(void **state) {
  /* StringValue{data: length 5 but 1 byte follows} */
  static uint8_t truncated_string[] = {0x0a, 0x05, 'a'};
  /* BooleanValue{data: varint cut short} */
  static uint8_t truncated_varint[] = {0x08, 0x80};
  /* IntegerValue{data} sent with the length-delimited wire type */
  static uint8_t wrong_wire_type[] = {0x0a, 0x01, 0x05};
  static uint8_t valid_bool[] = {0x08, 0x01};
  static const struct {
    const char *url;
    uint8_t *data;
    size_t len;
  } bad[] = {
      {"type.googleapis.com/base.v1.StringValue", truncated_string, sizeof(truncated_string)},
      {"type.googleapis.com/base.v1.BooleanValue", truncated_varint, sizeof(truncated_varint)},
      {"type.googleapis.com/base.v1.IntegerValue", wrong_wire_type, sizeof(wrong_wire_type)},
      /* Valid bytes, but a type we do not know. */
      {"type.googleapis.com/base.v1.BoolValue", valid_bool, sizeof(valid_bool)},
  };

  (void)state;
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = (char *)bad[k].url;
    any.value.data = bad[k].data;
    any.value.len = bad[k].len;
    assert_null(tc_any_unpack(&any));
  }
}

static int in_registry(const ProtobufCMessageDescriptor *d) {
  size_t n, i;
  const ProtobufCMessageDescriptor *const *reg = tc_proto_messages(&n);

  for (i = 0; i < n; i++) {
    if (reg[i] == d) return 1;
  }
  return 0;
}

static int is_map_entry(const ProtobufCMessageDescriptor *d) {
  size_t len = strlen(d->short_name);

  return len > 5 && strcmp(d->short_name + len - 5, "Entry") == 0;
}

typedef struct {
  const ProtobufCMessageDescriptor *seen[256];
  size_t n;
} walk_t;

/* Every base.v1 message reachable from d is registered, map entries (which
 * never travel in an Any) aside; other packages' messages are not. */
static void check_reachable(walk_t *w, const ProtobufCMessageDescriptor *d) {
  size_t i;

  for (i = 0; i < w->n; i++) {
    if (w->seen[i] == d) return;
  }
  assert_true(w->n < sizeof(w->seen) / sizeof(w->seen[0]));
  w->seen[w->n++] = d;
  if (strcmp(d->package_name, "base.v1") != 0) {
    assert_false(in_registry(d));
    return;
  }
  if (!is_map_entry(d) && !in_registry(d)) fail_msg("%s is not in the Any registry", d->name);
  for (i = 0; i < d->n_fields; i++) {
    if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) check_reachable(w, d->fields[i].descriptor);
  }
}

static void test_registry_covers_services(void **state) {
  static const ProtobufCServiceDescriptor *const services[] = {
      &base__v1__data__descriptor,
      &base__v1__watch__descriptor,
      &base__v1__schema__descriptor,
      &base__v1__tenancy__descriptor,
  };
  static const unsigned n_methods[] = {7, 1, 4, 3};
  walk_t w = {.n = 0};
  size_t s;
  unsigned m;

  (void)state;
  for (s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
    assert_string_equal(services[s]->package, "base.v1");
    assert_int_equal(services[s]->n_methods, n_methods[s]);
    for (m = 0; m < services[s]->n_methods; m++) {
      check_reachable(&w, services[s]->methods[m].input);
      check_reachable(&w, services[s]->methods[m].output);
    }
  }
  assert_string_equal(base__v1__data__descriptor.name, "base.v1.Data");
  assert_string_equal(base__v1__watch__descriptor.name, "base.v1.Watch");
  assert_string_equal(base__v1__schema__descriptor.name, "base.v1.Schema");
  assert_string_equal(base__v1__tenancy__descriptor.name, "base.v1.Tenancy");
  /* The walk reached the schema model, the value wrappers' carrier and WKTs. */
  assert_true(w.n > 40);
}

/* Counts the base.v1 message descriptors (map entries aside) the generated
 * header declares. */
static size_t count_declared(const char *header) {
  static const char decl[] = "extern const ProtobufCMessageDescriptor base__v1__";
  char path[1024], line[512];
  size_t n = 0;
  FILE *f;

  snprintf(path, sizeof(path), "%s/base/v1/%s", TC_PROTO_GEN_DIR, header);
  f = fopen(path, "r");
  if (f == NULL) fail_msg("cannot open %s", path);
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, decl, sizeof(decl) - 1) == 0 && strstr(line, "_entry__descriptor;") == NULL)
      n++;
  }
  fclose(f);
  return n;
}

/* The hand-kept registry lists each message of the generated base.v1 code
 * exactly once. */
static void test_registry_complete(void **state) {
  size_t n, i, j;
  const ProtobufCMessageDescriptor *const *reg = tc_proto_messages(&n);
  size_t declared = count_declared("base.pb-c.h") + count_declared("service.pb-c.h") +
                    count_declared("errors.pb-c.h");

  (void)state;
  assert_true(declared > 70);
  assert_int_equal(n, declared);
  for (i = 0; i < n; i++) {
    assert_int_equal(reg[i]->magic, PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    assert_string_equal(reg[i]->package_name, "base.v1");
    assert_false(is_map_entry(reg[i]));
    assert_ptr_equal(tc_any_lookup(reg[i]->name), reg[i]);
    for (j = i + 1; j < n; j++) assert_ptr_not_equal(reg[i], reg[j]);
  }
}

static void test_health_and_errors(void **state) {
  static const uint8_t serving[] = {0x08, 0x01};
  Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  const ProtobufCEnumValue *v;

  (void)state;
  r.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  assert_packs_to(&r.base, serving, sizeof(serving));
  assert_string_equal(grpc__health__v1__health__descriptor.name, "grpc.health.v1.Health");
  assert_int_equal(grpc__health__v1__health__descriptor.n_methods, 2);
  assert_string_equal(grpc__health__v1__health__descriptor.methods[0].name, "Check");
  assert_string_equal(grpc__health__v1__health__descriptor.methods[1].name, "Watch");

  v = protobuf_c_enum_descriptor_get_value(&base__v1__error_code__descriptor, 4009);
  assert_non_null(v);
  assert_string_equal(v->name, "ERROR_CODE_TENANT_NOT_FOUND");
  v = protobuf_c_enum_descriptor_get_value_by_name(&base__v1__error_code__descriptor,
                                                   "ERROR_CODE_MAX_DATA_PER_WRITE_EXCEEDED");
  assert_non_null(v);
  assert_int_equal(v->value, 2030);
  assert_null(protobuf_c_enum_descriptor_get_value(&base__v1__error_code__descriptor, 5004));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tuple_wire),
      cmocka_unit_test(test_write_request_wire),
      cmocka_unit_test(test_more_wire),
      cmocka_unit_test(test_schema_round_trip),
      cmocka_unit_test(test_checked_expr_skips_unknown_fields),
      cmocka_unit_test(test_any_value_wrappers),
      cmocka_unit_test(test_any_empty_message),
      cmocka_unit_test(test_any_lookup),
      cmocka_unit_test(test_any_unpack_rejects),
      cmocka_unit_test(test_registry_covers_services),
      cmocka_unit_test(test_registry_complete),
      cmocka_unit_test(test_health_and_errors),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
