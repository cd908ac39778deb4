#include "union_fx.h"

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
