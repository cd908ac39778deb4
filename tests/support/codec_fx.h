/* Messages the codec tests (test_proto packs them, test_json encodes them)
 * both build: a permission's child tree "relation or tupleset.computed", and
 * one message of each of the eight attribute value types.
 *
 * Threading: none.  Ownership: every message lives in the caller's tt_union_t
 * or tt_values_t; strings and arrays are the caller's and must outlive it.
 */
#ifndef TT_CODEC_FX_H
#define TT_CODEC_FX_H

#include <stddef.h>

#include "base/v1/base.pb-c.h"
#include "base/v1/service.pb-c.h"

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

/* req, in tenant t1 with metadata md, writes the nt tuples and na attributes. */
void tt_write_request(Base__V1__DataWriteRequest *req, Base__V1__DataWriteRequestMetadata *md,
                      Base__V1__Tuple **tuples, size_t nt, Base__V1__Attribute **attrs, size_t na);

/* BooleanValue .. DoubleArrayValue, in that order also in all[]. */
typedef struct {
  Base__V1__BooleanValue b;
  Base__V1__StringValue s;
  Base__V1__IntegerValue i;
  Base__V1__DoubleValue d;
  Base__V1__BooleanArrayValue ba;
  Base__V1__StringArrayValue sa;
  Base__V1__IntegerArrayValue ia;
  Base__V1__DoubleArrayValue da;
  const ProtobufCMessage *all[8];
} tt_values_t;

/* The scalars are zero ("" for the string); the arrays are the caller's. */
void tt_values_init(tt_values_t *v, protobuf_c_boolean *bools, size_t n_bools, char **strs,
                    size_t n_strs, int32_t *ints, size_t n_ints, double *dbls, size_t n_dbls);
#define TT_VALUES_INIT(v, bools, strs, ints, dbls)                                                 \
  tt_values_init(v, bools, sizeof(bools) / sizeof(bools)[0], strs, sizeof(strs) / sizeof(strs)[0], \
                 ints, sizeof(ints) / sizeof(ints)[0], dbls, sizeof(dbls) / sizeof(dbls)[0])

#endif
