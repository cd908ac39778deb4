/* A permission's child tree "relation or tupleset.computed" (a union of a
 * computed user set and a tuple-to-user-set), built from stack messages for
 * the codec tests (test_proto packs it, test_json encodes it).
 *
 * Threading: none.  Ownership: every message lives in the caller's
 * tt_union_t; the strings are the caller's and must outlive it.
 */
#ifndef TT_UNION_FX_H
#define TT_UNION_FX_H

#include "base/v1/base.pb-c.h"

typedef struct {
  Base__V1__ComputedUserSet relation, computed;
  Base__V1__TupleSet tupleset;
  Base__V1__TupleToUserSet ttu;
  Base__V1__Leaf leaves[2];
  Base__V1__Child children[2], root;
  Base__V1__Child *kids[2];
  Base__V1__Rewrite rewrite;
} tt_union_t;

/* Builds the tree in u; returns its root. */
Base__V1__Child *tt_union(tt_union_t *u, const char *relation, const char *tupleset,
                          const char *computed);

#endif
