/* The plugin support library: libtuplecast-support.a (pkg-config name
 * tuplecast-support), what the backend plugins share and nothing else.
 *
 * A backend plugin needs tuplecast/backend.h (the ABI) and may link this
 * small static library for: the check of the host's ABI at create(), a
 * request arena, deep copies of the ABI's input shapes into an arena,
 * base64, malloc'd printf, strict number parsing, the snap tokens of
 * backends whose history is a sequence of revisions, and an in-order
 * delivery queue for completions.  The server links the same
 * library (it uses the arena, base64 and the formatting too).  Nothing here
 * calls back into the host, starts a thread or keeps global state.
 *
 * Threading: every function is reentrant.  An arena or an order queue is a
 * plain data structure: one thread at a time may use it (hand it to another
 * thread the way the plugin hands over the request that holds it).
 *
 * Ownership: an arena owns every block it hands out, until tc_arena_free();
 * copies into an arena live as long as it.  Strings returned by tc_format,
 * tc_vformat, tc_base64_* and tc_rev_token_* are malloc'd: the caller frees
 * them.  An order queue does not own its items; each item is a member of a
 * structure its caller owns (see TC_CONTAINER_OF).
 */
#ifndef TUPLECAST_SUPPORT_H
#define TUPLECAST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "tuplecast/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The structure of type `type` whose member `member` ptr points to. */
#define TC_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- arena: many small allocations freed at once -------------------------- */

typedef struct tc_arena_chunk_s tc_arena_chunk_t;
typedef struct tc_arena_s {
  tc_arena_chunk_t *chunks; /* the newest first */
  size_t used, cap;         /* within the newest chunk */
} tc_arena_t;

/* An empty arena; so is one zeroed.  No allocation until the first block. */
void tc_arena_init(tc_arena_t *a);
/* n zeroed bytes, aligned for any type; NULL on out-of-memory. */
void *tc_arena_alloc(tc_arena_t *a, size_t n);
/* A copy of s; NULL copies as "" (an unset optional string of the ABI). */
char *tc_arena_strdup(tc_arena_t *a, const char *s);
/* A copy of n bytes (n may be 0: a valid, empty block). */
void *tc_arena_memdup(tc_arena_t *a, const void *p, size_t n);
/* Frees every block; the arena is empty again and may be reused. */
void tc_arena_free(tc_arena_t *a);

/* ---- the host ------------------------------------------------------------- */

/* For create(): 0 if host is a server of plugin ABI 2.1 or later (2.2, 2.3
 * and 2.4 only appended the optional metrics, ping and read_feed); else TC_EPLUGIN and a
 * malloc'd message in *errmsg naming plugin.  A
 * 2.0 server's write batches end before v2.1's members, so a plugin built
 * against this header must not run under one. */
int tc_host_check(const tc_host_api_t *host, const char *plugin, char **errmsg);

/* ---- deep copies of the ABI's shapes into an arena ----------------------- */

/* Every string, array and value is copied into a; NULL strings become "".
 * A NULL src copies as the empty filter (matches everything).  0, or
 * TC_ENOMEM (dst then partly filled; free the arena). */
int tc_copy_tuple_filter(tc_arena_t *a, tc_tuple_filter_t *dst, const tc_tuple_filter_t *src);
int tc_copy_attr_filter(tc_arena_t *a, tc_attr_filter_t *dst, const tc_attr_filter_t *src);
/* The batch with its filters (NULL stays NULL), tuples and attributes. */
int tc_copy_write_batch(tc_arena_t *a, tc_write_batch_t *dst, const tc_write_batch_t *src);

/* ---- hashing -------------------------------------------------------------- */

/* FNV-1a: h extended by the n bytes of data; start from TC_HASH_INIT and
 * chain calls to hash several pieces.  The one hash of the in-memory tables
 * (core's and the plugins').  It is not keyed: a table fed by clients can be
 * driven to its worst case by chosen keys, and a keyed hash belongs here. */
#define TC_HASH_INIT 14695981039346656037u
uint64_t tc_hash(uint64_t h, const void *data, size_t n);

/* ---- text ----------------------------------------------------------------- */

/* printf into a fresh malloc'd string (vasprintf is not in POSIX); NULL on
 * out-of-memory.  What a plugin hands the host as *errmsg is made so. */
char *tc_format(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
char *tc_vformat(const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 0)))
#endif
    ;
/* Unsigned decimal, digits only: no sign, no space, no overflow.  0 or -1. */
int tc_parse_u64(const char *s, uint64_t *out);

/* Standard base64 (RFC 4648 section 4, padded), as Permify's tokens use it.
 * decode: NULL if s is not canonical padded base64; *len gets the decoded
 * size, and the result is NUL-terminated one byte past it. */
char *tc_base64_encode(const void *data, size_t len);
unsigned char *tc_base64_decode(const char *s, size_t *len);

/* ---- snap tokens of revision-numbered backends ---------------------------- */

/* base64 of "tc1:<instance id>:<revision>" (the sqlite and example
 * backends).  The instance id tells a token of another database apart.
 * decode: 0 and *revision, or TC_ESNAP_TOKEN with a malloc'd one-line
 * message for the client (malformed, another database, a Postgres token). */
char *tc_rev_token_encode(const char *instance_id, uint64_t revision);
int tc_rev_token_decode(const char *token, const char *instance_id, uint64_t *revision,
                        char **errmsg);
/* Answers a write or head callback (tc_write_cb, tc_head_cb): status 0 with
 * the token of revision (TC_ENOMEM and "" if it cannot be made), or status
 * with "".  The token is freed when cb returns. */
void tc_rev_token_reply(void (*cb)(void *arg, int status, const char *token), void *arg, int status,
                        const char *instance_id, uint64_t revision);
/* token_check for these backends: tc_rev_token_decode, and TC_ESNAP_TOKEN
 * with a message saying so for a revision beyond head (the newest revision
 * the database has committed): such a token was never issued by it. */
int tc_rev_token_check(const char *token, const char *instance_id, uint64_t head, char **errmsg);

/* ---- in-order delivery of completions ------------------------------------- */

/* The ABI wants a tenant's operations answered in submission order, but a
 * backend with several connections or threads finishes them in any order.
 * Push each operation's item when it is submitted, mark it finished when
 * its result is in, then pop and answer the finished items at the head; an
 * item finished early waits (with its result) for those before it. */
typedef struct tc_order_item_s {
  struct tc_order_item_s *next;
  int finished;
} tc_order_item_t;

typedef struct tc_order_s {
  tc_order_item_t *head, *tail; /* submission order; zeroed = empty */
} tc_order_t;

/* Appends it, unfinished. */
void tc_order_push(tc_order_t *q, tc_order_item_t *it);
void tc_order_finish(tc_order_item_t *it);
/* The head if it is finished, unlinked; NULL if the queue is empty or its
 * head is still running.  Answer what it returns, then call again. */
tc_order_item_t *tc_order_pop(tc_order_t *q);

/* ---- a plugin's stored callback ------------------------------------------- */

/* A call's callback kept until it is answered, typed by the call (a function
 * pointer must be called through its own type, so not a void *). */
typedef union tc_backend_cb_u {
  tc_status_cb status;
  tc_tenant_cb tenant;
  tc_tenants_cb tenants;
  tc_schema_cb schema;
  tc_schemas_cb schemas;
  tc_write_cb write;
  tc_tuples_cb tuples;
  tc_attrs_cb attrs;
  tc_head_cb head;
  tc_changes_cb changes;
  tc_bundle_cb bundle;
  tc_feed_cb feed;                 /* v2.4 */
  tc_tenant_state_cb tenant_state; /* v2.5 */
} tc_backend_cb_t;

#ifdef __cplusplus
}
#endif
#endif
