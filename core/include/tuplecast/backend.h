/* tuplecast backend plugin ABI, major version 2.
 *
 * This header (with the error table it includes) is the whole contract
 * between the server and a storage backend loaded with dlopen.  A backend
 * exports exactly one symbol, TC_BACKEND_ENTRY_SYMBOL, a function returning a
 * pointer to a static tc_backend_api_t.  The loader checks, in order: magic,
 * abi_major, struct_size >= TC_BACKEND_API_V2_SIZE, build_fingerprint; any
 * mismatch unloads the plugin with a message naming expected and found values.
 *
 * Rules:
 *  - The function table is append-only.  Adding a member bumps abi_minor; a
 *    member is present only if it lies within struct_size.  Changing the type
 *    or meaning of a member bumps abi_major and renames the entry symbol.
 *  - Every callback runs on the loop thread, never synchronously from the call
 *    that started the operation.  Thread-based backends hand results to the
 *    loop with host->post().
 *  - Inputs are borrowed for the duration of the call; a backend copies what it
 *    keeps.  Results passed to callbacks are borrowed for the duration of the
 *    callback.  Everything a backend allocates, it frees.
 *  - Operations on one tenant complete in submission order, except head and
 *    read_changes: they read committed history only and may complete ahead
 *    of earlier writes still in flight (the feed must not wait on them).
 *  - Status values are 0 or a negative TC_E* code from tuplecast/errors.h.
 *
 * Ownership: the host owns the tc_host_api_t; the backend owns tc_backend_t.
 */
#ifndef TUPLECAST_BACKEND_H
#define TUPLECAST_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tuplecast/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TC_BACKEND_MAGIC 0x54434250u /* 'TCBP' */
#define TC_BACKEND_ABI_MAJOR 2
#define TC_BACKEND_ABI_MINOR 5
#define TC_BACKEND_ENTRY_SYMBOL "tc_backend_entry_v2"

#if defined(__GNUC__)
#define TC_EXPORT __attribute__((visibility("default")))
#else
#define TC_EXPORT
#endif

#define TC_STR_(x) #x
#define TC_STR(x) TC_STR_(x)
#if defined(__SANITIZE_ADDRESS__)
#define TC_FP_ASAN_ "asan"
#else
#define TC_FP_ASAN_ "noasan"
#endif
/* Compared for equality by the loader: pointer size, byte order, sanitizer
 * build and libuv major must agree between host and plugin. */
#define TC_BACKEND_FINGERPRINT                                                    \
  "tc1:ptr" TC_STR(__SIZEOF_POINTER__) ":bo" TC_STR(__BYTE_ORDER__) ":uv" TC_STR( \
      UV_VERSION_MAJOR) ":" TC_FP_ASAN_

/* ---- Host API: what the server hands a backend at create() ------------- */

typedef struct tc_completion_s tc_completion_t;
typedef void (*tc_completion_fn)(tc_completion_t *c);
/* Intrusive work item for host->post(); the poster owns it. */
struct tc_completion_s {
  tc_completion_t *next; /* host use only */
  tc_completion_fn run;  /* runs on the loop thread */
};

enum tc_log_level { TC_LOG_DEBUG = 0, TC_LOG_INFO, TC_LOG_WARN, TC_LOG_ERROR };

typedef struct tc_host_api_s {
  uint32_t struct_size;
  uv_loop_t *loop; /* touch only from loop-thread code */
  /* Thread-safe: queue c to run on the loop thread, FIFO across all posters. */
  void (*post)(const struct tc_host_api_s *host, tc_completion_t *c);
  void (*log)(int level, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
      ;
  uint64_t (*now_ms)(void);
  /* Loop thread only: tenant_id may have new transactions that were not
   * written through this process (another node, another program).  The host
   * reads the tenant's changes if anyone watches it; spurious calls are
   * harmless. */
  void (*changed)(const struct tc_host_api_s *host, const char *tenant_id);
  /* Any thread: a packed google.protobuf.Any as Permify stores it in
   * Postgres (protojson, e.g. {"@type":"type.googleapis.com/base.v1.
   * BooleanValue","data":true}), and back.  Results are malloc'd; 0 or a
   * TC_E* code (TC_EINVAL for a value that does not convert). */
  int (*any_to_json)(const uint8_t *any, size_t len, char **json);
  int (*any_from_json)(const char *json, uint8_t **any, size_t *len);
  /* v2.1: the server's plugin ABI.  A host whose struct_size does not reach
   * them is a 2.0 server, whose write batches end before v2.1's members. */
  uint16_t abi_major, abi_minor;
} tc_host_api_t;

/* Size of the v2.1 host API (tc_host_check in tuplecast/support.h). */
#define TC_HOST_API_V2_1_SIZE (offsetof(tc_host_api_t, abi_minor) + sizeof(uint16_t))

/* ---- Positions ------------------------------------------------------------
 * A position in a tenant's history is a snap token: a printable string the
 * backend mints and parses, opaque to the host, handed to clients as is.  The
 * host compares tokens only for equality: a backend returns the same string
 * for the same position whenever it can (a feed's `last`, a change's token).
 * "" means the head. */

/* ---- Data shapes --------------------------------------------------------- */

/* All strings are NUL-terminated UTF-8.  "" is an unset optional string. */
typedef struct tc_tuple_s {
  const char *entity_type, *entity_id, *relation;
  const char *subject_type, *subject_id, *subject_relation; /* "" = direct */
} tc_tuple_t;

/* value: a packed google.protobuf.Any, opaque to the backend. */
typedef struct tc_attr_s {
  const char *entity_type, *entity_id, *attribute;
  const uint8_t *value;
  size_t value_len;
} tc_attr_t;

/* Unset members ("" / zero count) do not constrain. */
typedef struct tc_tuple_filter_s {
  const char *entity_type;
  const char *const *entity_ids;
  size_t n_entity_ids;
  const char *relation;
  const char *subject_type;
  const char *const *subject_ids;
  size_t n_subject_ids;
  const char *subject_relation;
} tc_tuple_filter_t;

typedef struct tc_attr_filter_s {
  const char *entity_type;
  const char *const *entity_ids;
  size_t n_entity_ids;
  const char *const *attributes;
  size_t n_attributes;
} tc_attr_filter_t;

/* One atomic write for one tenant: one transaction, all or nothing.  Order of
 * effects: tuple_delete, attr_delete, tuple_deletes, attr_deletes, tuples,
 * attrs.  A tuple identical to an
 * active one is a no-op (no change).  Each attr expires the active value of
 * (entity, attribute), if any (a DELETE change), then creates the new one (a
 * CREATE change).  A token is minted even when nothing changes. */
typedef struct tc_write_batch_s {
  const char *tenant_id;
  const tc_tuple_filter_t *tuple_delete; /* NULL = none */
  const tc_attr_filter_t *attr_delete;   /* NULL = none */
  const tc_tuple_t *tuples;
  size_t n_tuples;
  const tc_attr_t *attrs;
  size_t n_attrs;
  /* v2.1 (Data.RunBundle): exact rows to expire, each the active tuple equal
   * in all six columns ("" subject_relation: only a direct subject), each
   * the active value of (entity, attribute) (value ignored).  The server
   * sets them only for plugins whose table is at least
   * TC_BACKEND_API_V2_1_SIZE.  A 2.0 server's batch ends before them: a
   * 2.1 plugin refuses such a server at create() (tc_host_check). */
  const tc_tuple_t *tuple_deletes;
  size_t n_tuple_deletes;
  const tc_attr_t *attr_deletes;
  size_t n_attr_deletes;
} tc_write_batch_t;

/* TC_CHANGE_SCHEMA (v2.4): only in read_feed's items, never in read_changes. */
enum tc_change_op { TC_CHANGE_CREATE = 1, TC_CHANGE_DELETE = 2, TC_CHANGE_SCHEMA = 3 };

/* One row change; exactly one of tuple / attr is set (the other NULL).  The
 * changes of one transaction are adjacent and share one token: the position
 * right after that transaction. */
typedef struct tc_change_s {
  const char *token;
  int op; /* enum tc_change_op */
  const tc_tuple_t *tuple;
  const tc_attr_t *attr;
} tc_change_t;

/* v2.4: one item of read_feed: a data change (schema_version NULL), or a
 * schema write: change.op TC_CHANGE_SCHEMA, change.tuple and change.attr
 * NULL, schema_version the version it stored, change.token the position
 * right after it.  A schema write is a transaction of its own. */
typedef struct tc_feed_item_s {
  tc_change_t change;
  const char *schema_version;
} tc_feed_item_t;

typedef struct tc_tenant_row_s {
  const char *id, *name;
  int64_t created_at_ms; /* Unix epoch, milliseconds */
} tc_tenant_row_t;

/* v2.1: a stored data bundle (Bundle.Write, Data.RunBundle).  payload: a
 * packed google.protobuf.Any of base.v1.DataBundle, opaque to the backend
 * like an attribute value (host->any_to_json renders it as Permify stores
 * it, with an "@type" member to drop). */
typedef struct tc_bundle_s {
  const char *name;
  const uint8_t *payload;
  size_t payload_len;
} tc_bundle_t;

typedef struct tc_schema_row_s {
  const char *version; /* 20-char rs/xid string */
  int64_t created_at_ms;
} tc_schema_row_t;

/* Page position: id of the first row of the next page; 0 = start / no more. */
typedef uint64_t tc_cursor_t;

/* ---- Callbacks ----------------------------------------------------------- */

typedef void (*tc_status_cb)(void *arg, int status);
/* token: the snap token of the committed write. */
typedef void (*tc_write_cb)(void *arg, int status, const char *token);
typedef void (*tc_tuples_cb)(void *arg, int status, const tc_tuple_t *rows, size_t n,
                             tc_cursor_t next);
typedef void (*tc_attrs_cb)(void *arg, int status, const tc_attr_t *rows, size_t n,
                            tc_cursor_t next);
typedef void (*tc_tenant_cb)(void *arg, int status, const tc_tenant_row_t *row);
/* next: the id to pass as `after` for the next page; NULL = no more. */
typedef void (*tc_tenants_cb)(void *arg, int status, const tc_tenant_row_t *rows, size_t n,
                              const char *next);
/* version and text NULL (status TC_ESCHEMA_NOT_FOUND) when absent. */
typedef void (*tc_schema_cb)(void *arg, int status, const char *version, const char *text);
typedef void (*tc_schemas_cb)(void *arg, int status, const char *head, const tc_schema_row_t *rows,
                              size_t n, const char *next);
/* The transactions after position `after` (up to `upto`, if given), in an
 * order consistent with commit visibility, whole transactions only;
 * transactions that changed nothing are passed over silently.  last: the
 * position after everything returned and passed over; resuming from it gives
 * exactly the later transactions.  When nothing is returned, last is `after`
 * unchanged unless a read up to `upto` is complete, in which case it is
 * `upto`.  Status TC_EOUT_OF_RANGE: history after `after` is no longer
 * retained. */
typedef void (*tc_changes_cb)(void *arg, int status, const tc_change_t *changes, size_t n,
                              const char *last);
/* v2.4: read_feed's answer, as tc_changes_cb's with items for changes. */
typedef void (*tc_feed_cb)(void *arg, int status, const tc_feed_item_t *items, size_t n,
                           const char *last);
/* v2.5: tenant_state's answer.  status 0: the tenant exists; version: its
 * head schema version, "" when it has none; text: that version's schema
 * text, NULL when version is "" or is the caller's known_version.  Status
 * TC_ENOTFOUND: no such tenant (version and text NULL). */
typedef void (*tc_tenant_state_cb)(void *arg, int status, const char *version, const char *text);
/* token: the position of the tenant's head, right now. */
typedef void (*tc_head_cb)(void *arg, int status, const char *token);
/* payload NULL (status TC_EBUNDLE_NOT_FOUND) when absent. */
typedef void (*tc_bundle_cb)(void *arg, int status, const uint8_t *payload, size_t len);

typedef struct tc_backend_s tc_backend_t; /* opaque, backend-owned */

/* v2.2: what a backend may report through metrics() for the server's
 * Prometheus endpoint.  Each value carries one label, whose meaning is fixed
 * by the metric; the server keeps at most a few distinct labels per metric
 * and folds the rest into "other", so labels must come from a small set.
 * The server ignores metric numbers it does not know. */
enum tc_backend_metric {
  TC_BACKEND_METRIC_POOL_OPEN = 1, /* gauge, label: pool name; connections (or workers) up */
  TC_BACKEND_METRIC_POOL_IN_USE,   /* gauge, label: pool name; of those, running an operation */
  TC_BACKEND_METRIC_POOL_WAITING,  /* gauge, label: pool name; operations queued for one */
  TC_BACKEND_METRIC_RECONNECTS,    /* counter, label: pool name; connections made again after
                                      a loss or a failed attempt */
  TC_BACKEND_METRIC_RETRIES,       /* counter, label: SQLSTATE (5 characters); statements run
                                      again after that error */
};
/* Called by the backend, synchronously, once per (metric, label). */
typedef void (*tc_backend_metric_fn)(void *arg, int metric, const char *label, uint64_t value);

typedef struct tc_backend_stats_s {
  uint64_t writes, reads, change_reads;
  /* Transactions read_changes returned with a known commit time, and their
   * lag (the time of the read less the commit time), summed and the most;
   * 0 for backends that do not know commit times. */
  uint64_t feed_txns, feed_lag_us_sum, feed_lag_us_max;
} tc_backend_stats_t;

/* ---- The function table -------------------------------------------------- */

typedef struct tc_backend_api_s {
  /* header: never changes across majors */
  uint32_t magic;
  uint16_t abi_major;
  uint16_t abi_minor;
  uint32_t struct_size;
  const char *build_fingerprint;
  const char *name;
  const char *version;

  /* v2.0 */
  /* uri: backend-specific ("file:path", ":memory:", "postgres://...").
   * options: NULL-terminated "key=value" strings from the server's database.*
   * settings (docs/backend-plugins.md lists them); a backend ignores keys it
   * does not use.  May block (it runs before the server serves).  On failure
   * returns a TC_E* code and a malloc'd message in *errmsg (freed by the host
   * with free()). */
  int (*create)(const tc_host_api_t *host, const char *uri, const char *const *options,
                tc_backend_t **out, char **errmsg);
  /* Administrative command from the CLI ("migrate up", "migrate status"),
   * blocking, no loop.  *out: malloc'd text to print (report or error). */
  int (*admin)(const char *uri, const char *const *options, const char *command, char **out);
  /* Completes in-flight work, frees everything, then calls cb (later). */
  void (*destroy)(tc_backend_t *b, void (*cb)(void *arg), void *arg);
  /* A string unique to this database, stable across restarts; embedded in
   * snap tokens so a token from another database is recognised. */
  const char *(*instance_id)(tc_backend_t *b);
  /* Synchronous: 0 if token is a position this database can serve, else
   * TC_ESNAP_TOKEN with a malloc'd one-line reason in *errmsg. */
  int (*token_check)(tc_backend_t *b, const char *token, char **errmsg);

  int (*tenant_create)(tc_backend_t *b, const char *id, const char *name, tc_tenant_cb cb,
                       void *arg); /* TC_EUNIQUE if exists */
  int (*tenant_get)(tc_backend_t *b, const char *id, tc_tenant_cb cb,
                    void *arg); /* TC_ENOTFOUND if absent */
  /* Deletes the tenant and all its data; TC_ENOTFOUND if absent. */
  int (*tenant_delete)(tc_backend_t *b, const char *id, tc_tenant_cb cb, void *arg);
  /* Ordered by id; ids >= after (NULL/"" = from the start); limit rows. */
  int (*tenant_list)(tc_backend_t *b, const char *after, uint32_t limit, tc_tenants_cb cb,
                     void *arg);

  int (*schema_write)(tc_backend_t *b, const char *tenant_id, const char *version, const char *text,
                      tc_status_cb cb, void *arg);
  /* version NULL or "" = head. */
  int (*schema_read)(tc_backend_t *b, const char *tenant_id, const char *version, tc_schema_cb cb,
                     void *arg);
  /* Newest first; versions <= before (NULL/"" = from the head). */
  int (*schema_list)(tc_backend_t *b, const char *tenant_id, const char *before, uint32_t limit,
                     tc_schemas_cb cb, void *arg);

  int (*write)(tc_backend_t *b, const tc_write_batch_t *batch, tc_write_cb cb, void *arg);
  /* Rows as of token ("" = head; a checked token).  Rows with id >= after,
   * ordered by id, at most limit; next = id of the first row after the
   * page, 0 if none. */
  int (*read_tuples)(tc_backend_t *b, const char *tenant_id, const char *token,
                     const tc_tuple_filter_t *f, tc_cursor_t after, uint32_t limit, tc_tuples_cb cb,
                     void *arg);
  int (*read_attrs)(tc_backend_t *b, const char *tenant_id, const char *token,
                    const tc_attr_filter_t *f, tc_cursor_t after, uint32_t limit, tc_attrs_cb cb,
                    void *arg);
  int (*head)(tc_backend_t *b, const char *tenant_id, tc_head_cb cb, void *arg);
  /* after: a checked token, not "".  upto: NULL, or a `last` or change
   * token this backend returned for the tenant, or `after` itself: then
   * nothing is read and `last` is the exact position `after` names (a
   * token whose own snapshot only approximates the position it resumes
   * from, as a PostgreSQL write ack, answers a position token).  At most
   * about `limit` changes (a transaction larger than limit is returned
   * whole). */
  int (*read_changes)(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                      uint32_t limit, tc_changes_cb cb, void *arg);
  void (*stats)(tc_backend_t *b, tc_backend_stats_t *out);

  /* v2.1: a tenant's data bundles, keyed by (tenant, name); tenant_delete
   * removes them too.  bundle_write stores all n (replacing a bundle of the
   * same name) in one transaction; bundle_delete of an absent name is 0.
   * Neither is a data change: no token, nothing in read_changes. */
  int (*bundle_write)(tc_backend_t *b, const char *tenant_id, const tc_bundle_t *bundles, size_t n,
                      tc_status_cb cb, void *arg);
  int (*bundle_read)(tc_backend_t *b, const char *tenant_id, const char *name, tc_bundle_cb cb,
                     void *arg);
  int (*bundle_delete)(tc_backend_t *b, const char *tenant_id, const char *name, tc_status_cb cb,
                       void *arg);

  /* v2.2, optional (NULL, or a table shorter than TC_BACKEND_API_V2_2_SIZE:
   * nothing to report).  Loop thread, synchronous, cheap (it runs on every
   * scrape): calls emit for each current value (enum tc_backend_metric);
   * counters only ever grow. */
  void (*metrics)(tc_backend_t *b, tc_backend_metric_fn emit, void *arg);

  /* v2.3: readiness.  Whether the database can serve requests now: a cheap
   * check (a trivial query on a connection the backend already holds; no
   * new connection, no table scan).  cb gets 0 or TC_EUNAVAILABLE.  The host
   * calls it on a timer, never with one outstanding, and reports the answer
   * on gRPC health and /healthz; it takes an answer that does not come
   * within its timeout as TC_EUNAVAILABLE.  Optional: NULL, or a table that
   * ends before it, is a backend that is always ready. */
  int (*ping)(tc_backend_t *b, tc_status_cb cb, void *arg);

  /* v2.4: read_changes, and the tenant's schema writes among the
   * transactions (Watch's include_schema_changes): every schema version
   * stored for the tenant after `after`, by this server or by another
   * program on the same database, as an item of its own at its place in
   * the same order consistent with commit visibility, so a data write made
   * after version V was stored comes after V.  Positions, `upto`, `limit`
   * and `last` as in read_changes; a schema item counts as one change.  A
   * schema write moves the tenant's head (head, `last`) like any
   * transaction; read_changes passes over it as one that changed nothing. */
  int (*read_feed)(tc_backend_t *b, const char *tenant_id, const char *after, const char *upto,
                   uint32_t limit, tc_feed_cb cb, void *arg);

  /* v2.5: tenant_get and schema_read of the head in one round trip (one
   * statement on a SQL database): whether tenant id exists and its head
   * schema version, with that version's text only when it is not
   * known_version (NULL or "": none known), the version the caller already
   * holds compiled.  The server calls it when a call that needs the tenant's
   * schema finds what it knows of the tenant older than a second (so once per
   * write when writes are spread thin over many tenants), or does not know
   * the head yet; a call that needs no schema (Watch) on a tenant whose head
   * it does not know calls tenant_get instead.  A read: ordered like schema_read.  Optional: NULL,
   * or a table that ends before it, and the server calls tenant_get and
   * then schema_read. */
  int (*tenant_state)(tc_backend_t *b, const char *id, const char *known_version,
                      tc_tenant_state_cb cb, void *arg);
} tc_backend_api_t;

/* Size of the v2.0 table: a plugin's struct_size must be at least this. */
#define TC_BACKEND_API_V2_SIZE (offsetof(tc_backend_api_t, stats) + sizeof(void (*)(void)))
/* Size of the v2.1 table: a plugin whose struct_size is smaller has no
 * bundle calls (the server answers the Bundle service UNIMPLEMENTED). */
#define TC_BACKEND_API_V2_1_SIZE \
  (offsetof(tc_backend_api_t, bundle_delete) + sizeof(void (*)(void)))
/* Size of the v2.2 table: metrics() lies within it. */
#define TC_BACKEND_API_V2_2_SIZE (offsetof(tc_backend_api_t, metrics) + sizeof(void (*)(void)))
/* Size of the v2.3 table: a plugin whose struct_size is smaller has no ping
 * (the server takes it as always ready). */
#define TC_BACKEND_API_V2_3_SIZE (offsetof(tc_backend_api_t, ping) + sizeof(void (*)(void)))
/* Size of the v2.4 table: a plugin whose struct_size is smaller (or whose
 * read_feed is NULL) reports no schema writes (Watch refuses
 * include_schema_changes). */
#define TC_BACKEND_API_V2_4_SIZE (offsetof(tc_backend_api_t, read_feed) + sizeof(void (*)(void)))
/* Size of the v2.5 table: a plugin whose struct_size is smaller (or whose
 * tenant_state is NULL) is asked with tenant_get and schema_read. */
#define TC_BACKEND_API_V2_5_SIZE (offsetof(tc_backend_api_t, tenant_state) + sizeof(void (*)(void)))

typedef const tc_backend_api_t *(*tc_backend_entry_fn)(void);

/* The header members of a plugin's table, as the loader checks them:
 *   static const tc_backend_api_t api = {TC_BACKEND_API_HEADER("mydb", "1.0.0"),
 *                                        .create = create, ...};
 */
#define TC_BACKEND_API_HEADER(name_, version_)                                                     \
  .magic = TC_BACKEND_MAGIC, .abi_major = TC_BACKEND_ABI_MAJOR, .abi_minor = TC_BACKEND_ABI_MINOR, \
  .struct_size = sizeof(tc_backend_api_t), .build_fingerprint = TC_BACKEND_FINGERPRINT,            \
  .name = (name_), .version = (version_)

/* Defines the one exported symbol, returning &api_ (the build hides the
 * rest of the plugin). */
#define TC_BACKEND_ENTRY(api_)                                 \
  TC_EXPORT const tc_backend_api_t *tc_backend_entry_v2(void); \
  TC_EXPORT const tc_backend_api_t *tc_backend_entry_v2(void) { return &(api_); }

#ifdef __cplusplus
}
#endif
#endif
