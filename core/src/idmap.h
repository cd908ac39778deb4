/* A table of objects by string id (tenant actors, watch feeds): each object
 * embeds a tc__idmap_link_t naming its id.  Chained buckets, a power of two
 * in number, doubled to stay at most one object per bucket on average, so
 * finding, adding and removing are O(1) at 10 objects or 100,000: at 10,000
 * tenants a list walk cost each write more than its own work (bench/README.md,
 * "At scale").
 *
 * Threading: no state of its own; the owner's thread (the loop's).
 * Ownership: the table owns its bucket array only; the objects and their ids
 * belong to the caller, who removes an object before freeing it.
 */
#ifndef TC_IDMAP_H
#define TC_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tc__idmap_link_s {
  struct tc__idmap_link_s *next; /* in its bucket */
  const char *id;                /* the object's own id */
  uint64_t hash;
} tc__idmap_link_t;

typedef struct tc__idmap_s {
  tc__idmap_link_t **buckets;
  size_t n_buckets, n;
} tc__idmap_t; /* all zero: empty */

/* The object with this id, or NULL. */
tc__idmap_link_t *tc__idmap_find(const tc__idmap_t *m, const char *id);
/* Adds l under id (not in the table yet; it must outlive l's stay): 0, or
 * TC_ENOMEM when not even the first buckets could be made. */
int tc__idmap_add(tc__idmap_t *m, tc__idmap_link_t *l, const char *id);
/* Takes l (in the table) out. */
void tc__idmap_remove(tc__idmap_t *m, tc__idmap_link_t *l);
/* Walks the table: the first object (l NULL) or the one after l; NULL after
 * the last.  Take the next before removing or freeing l. */
tc__idmap_link_t *tc__idmap_next(const tc__idmap_t *m, const tc__idmap_link_t *l);
/* Frees the buckets (not the objects) and empties the table. */
void tc__idmap_free(tc__idmap_t *m);

#endif
