#include "codec_fx.h"

#include <string.h>

static Base__V1__Child *leaf_child(Base__V1__Child *c, Base__V1__Leaf *l) {
  base__v1__child__init(c);
  c->type_case = BASE__V1__CHILD__TYPE_LEAF;
  c->leaf = l;
  return c;
}

Base__V1__Child *tt_union(tt_union_t *u, const char *relation, const char *tupleset,
                          const char *computed) {
  base__v1__computed_user_set__init(&u->relation);
  base__v1__computed_user_set__init(&u->computed);
  base__v1__tuple_set__init(&u->tupleset);
  base__v1__tuple_to_user_set__init(&u->ttu);
  base__v1__leaf__init(&u->leaves[0]);
  base__v1__leaf__init(&u->leaves[1]);
  base__v1__rewrite__init(&u->rewrite);
  base__v1__child__init(&u->root);
  u->relation.relation = (char *)relation;
  u->leaves[0].type_case = BASE__V1__LEAF__TYPE_COMPUTED_USER_SET;
  u->leaves[0].computed_user_set = &u->relation;
  u->tupleset.relation = (char *)tupleset;
  u->computed.relation = (char *)computed;
  u->ttu.tupleset = &u->tupleset;
  u->ttu.computed = &u->computed;
  u->leaves[1].type_case = BASE__V1__LEAF__TYPE_TUPLE_TO_USER_SET;
  u->leaves[1].tuple_to_user_set = &u->ttu;
  u->kids[0] = leaf_child(&u->children[0], &u->leaves[0]);
  u->kids[1] = leaf_child(&u->children[1], &u->leaves[1]);
  u->rewrite.rewrite_operation = BASE__V1__REWRITE__OPERATION__OPERATION_UNION;
  u->rewrite.n_children = 2;
  u->rewrite.children = u->kids;
  u->root.type_case = BASE__V1__CHILD__TYPE_REWRITE;
  u->root.rewrite = &u->rewrite;
  return &u->root;
}

void tt_write_request(Base__V1__DataWriteRequest *req, Base__V1__DataWriteRequestMetadata *md,
                      Base__V1__Tuple **tuples, size_t nt, Base__V1__Attribute **attrs, size_t na) {
  req->tenant_id = "t1";
  req->metadata = md;
  req->n_tuples = nt;
  req->tuples = tuples;
  req->n_attributes = na;
  req->attributes = attrs;
}

void tt_values_init(tt_values_t *v, protobuf_c_boolean *bools, size_t n_bools, char **strs,
                    size_t n_strs, int32_t *ints, size_t n_ints, double *dbls, size_t n_dbls) {
  base__v1__boolean_value__init(&v->b);
  base__v1__string_value__init(&v->s);
  base__v1__integer_value__init(&v->i);
  base__v1__double_value__init(&v->d);
  base__v1__boolean_array_value__init(&v->ba);
  base__v1__string_array_value__init(&v->sa);
  base__v1__integer_array_value__init(&v->ia);
  base__v1__double_array_value__init(&v->da);
  v->ba.n_data = n_bools;
  v->ba.data = bools;
  v->sa.n_data = n_strs;
  v->sa.data = strs;
  v->ia.n_data = n_ints;
  v->ia.data = ints;
  v->da.n_data = n_dbls;
  v->da.data = dbls;
  const ProtobufCMessage *all[8] = {&v->b.base,  &v->s.base,  &v->i.base,  &v->d.base,
                                    &v->ba.base, &v->sa.base, &v->ia.base, &v->da.base};
  memcpy(v->all, all, sizeof all);
}
