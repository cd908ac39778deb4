#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#include "tuplecast/support.h" /* tc_hash */

#define FIRST_BUCKETS 64

/* The bucket of a hash among n (a power of two).  tc_hash is FNV-1a, whose
 * low k bits depend only on the low k bits of each byte: ids differing in a
 * byte's higher bits ("t0", "tp") shared one bucket of a 64-bucket table
 * whatever else they held.  Folding the upper half in spreads them. */
static size_t slot(uint64_t hash, size_t n) { return (size_t)((hash ^ (hash >> 32)) & (n - 1)); }

static tc__idmap_link_t **bucket(tc__idmap_link_t **b, size_t n, uint64_t hash) {
  return &b[slot(hash, n)];
}

static uint64_t hash_of(const char *id) { return tc_hash(TC_HASH_INIT, id, strlen(id)); }

tc__idmap_link_t *tc__idmap_find(const tc__idmap_t *m, const char *id) {
  if (!m->n_buckets) return NULL;
  uint64_t h = hash_of(id);
  for (tc__idmap_link_t *l = *bucket(m->buckets, m->n_buckets, h); l; l = l->next)
    if (l->hash == h && strcmp(l->id, id) == 0) return l;
  return NULL;
}

/* Room for one more: 0, or TC_ENOMEM before the first buckets exist (later,
 * a failed doubling only lengthens the chains). */
static int make_room(tc__idmap_t *m) {
  if (m->n < m->n_buckets) return 0;
  size_t n = m->n_buckets ? 2 * m->n_buckets : FIRST_BUCKETS;
  tc__idmap_link_t **b = calloc(n, sizeof *b);
  if (!b) return m->n_buckets ? 0 : TC_ENOMEM;
  for (size_t i = 0; i < m->n_buckets; i++)
    for (tc__idmap_link_t *l = m->buckets[i], *next; l; l = next) {
      next = l->next;
      tc__idmap_link_t **head = bucket(b, n, l->hash);
      l->next = *head;
      *head = l;
    }
  free(m->buckets);
  m->buckets = b;
  m->n_buckets = n;
  return 0;
}

int tc__idmap_add(tc__idmap_t *m, tc__idmap_link_t *l, const char *id) {
  int rc = make_room(m);
  if (rc != 0) return rc;
  l->id = id;
  l->hash = hash_of(id);
  tc__idmap_link_t **head = bucket(m->buckets, m->n_buckets, l->hash);
  l->next = *head;
  *head = l;
  m->n++;
  return 0;
}

void tc__idmap_remove(tc__idmap_t *m, tc__idmap_link_t *l) {
  tc__idmap_link_t **pp = bucket(m->buckets, m->n_buckets, l->hash);
  while (*pp != l) pp = &(*pp)->next;
  *pp = l->next;
  m->n--;
}

tc__idmap_link_t *tc__idmap_next(const tc__idmap_t *m, const tc__idmap_link_t *l) {
  if (l && l->next) return l->next;
  size_t i = l ? slot(l->hash, m->n_buckets) + 1 : 0;
  for (; i < m->n_buckets; i++)
    if (m->buckets[i]) return m->buckets[i];
  return NULL;
}

void tc__idmap_free(tc__idmap_t *m) {
  free(m->buckets);
  m->buckets = NULL;
  m->n_buckets = m->n = 0;
}
