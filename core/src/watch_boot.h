/* Watch's initial state (docs/watch.md, "Initial state"): a tenant's
 * relationships, then its attributes, at one snapshot token, read from the
 * backend page by page (read_tuples / read_attrs with a cursor) and handed
 * to a stream as OPERATION_CREATE DataChanges, at most BOOT_MSG_CHANGES
 * changes and about BOOT_MSG_BYTES bytes a message.  The stream paces it:
 * the next page is read only when the sink says it has room, so a tenant of
 * millions of rows costs one page of memory here plus the stream's queue.
 *
 * Threading: loop thread only, like every Watch structure.
 *
 * Ownership: the stream owns its tc_boot_t until tc__boot_stop(); the
 * filter and tenant id are borrowed from the stream's request and must
 * outlive the boot (stop it before the request goes).  Changes handed to
 * sink.send are borrowed for the call.
 */
#ifndef TC_WATCH_BOOT_H
#define TC_WATCH_BOOT_H

#include "base/v1/service.pb-c.h"
#include "server_state.h"

/* The end of a stream's error message while its initial state was not all
 * sent: there is no position to resume from. */
#define TC_WATCH_RESTART "the initial state was not complete: open the watch again to start it over"

typedef struct tc_boot_s tc_boot_t;

typedef struct tc_boot_sink_s {
  /* One message's changes; 0, or non-zero when the stream ended (the boot
   * then stops reading and calls nothing more). */
  int (*send)(void *arg, Base__V1__DataChange **changes, size_t n);
  /* Non-zero when the stream's queue has room for another page. */
  int (*room)(void *arg);
  /* Everything was read and sent (0), or a read failed (its TC_E* code).
   * Called once; the boot is freed after it returns. */
  void (*done)(void *arg, int status);
} tc_boot_sink_t;

/* The Watch filter f (not NULL) on one change: its operation, kind, entity
 * type and relation (a tuple's) or attribute name.  Empty lists do not
 * constrain; relations select tuples and attributes attributes, and with
 * neither both kinds pass (docs/watch.md, "Filters").  Changes and the
 * initial state's rows alike. */
int tc__watch_filter_passes(const Base__V1__WatchFilter *f, int operation, int is_tuple,
                            const char *type, const char *name);
/* Starts reading tenant_id's rows at token (a checked token, not "") that
 * pass filter (NULL: all).  0 and *out, or a TC_E* code. */
int tc__boot_start(tc_server_t *srv, const char *tenant_id, const char *token,
                   const Base__V1__WatchFilter *filter, const tc_boot_sink_t *sink, void *arg,
                   tc_boot_t **out);
/* The stream made room: reads the next page unless one is in flight. */
void tc__boot_pump(tc_boot_t *b);
/* The stream ended: no more callbacks; frees b (now, or when its read
 * returns). */
void tc__boot_stop(tc_boot_t *b);

#endif
