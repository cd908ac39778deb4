/* Watch's reads of a tenant's transactions as feed items (tc_feed_item_t,
 * backend.h): the backend's read_feed (ABI v2.4), which has the tenant's
 * schema writes among them, or, for a plugin without it, read_changes with
 * each change wrapped as an item.
 *
 * Threading: loop thread only.
 *
 * Ownership: as the ABI's: inputs are borrowed for the call, items for the
 * callback.
 */
#ifndef TC_WATCH_ITEMS_H
#define TC_WATCH_ITEMS_H

#include "server_state.h"

/* The backend reports schema writes (Watch's include_schema_changes). */
int tc__watch_has_schemas(const tc_server_t *srv);
/* read_feed, or read_changes wrapped: the same arguments and answer. */
int tc__watch_read(tc_server_t *srv, const char *tenant_id, const char *after, const char *upto,
                   uint32_t limit, tc_feed_cb cb, void *arg);

#endif
