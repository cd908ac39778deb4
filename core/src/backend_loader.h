/* Loading a backend plugin (.so) and checking it against our ABI.
 *
 * Ownership: tc_plugin_t owns the dlopen handle; tc_plugin_unload() closes it.
 * The api pointer is valid while the plugin is loaded.
 */
#ifndef TC_BACKEND_LOADER_H
#define TC_BACKEND_LOADER_H

#include "tuplecast/backend.h"

typedef struct tc_plugin_s {
  void *dl;
  const tc_backend_api_t *api;
} tc_plugin_t;

/* dlopen(path), look up TC_BACKEND_ENTRY_SYMBOL and check magic, ABI major,
 * struct size and build fingerprint.  On failure returns TC_EPLUGIN and a
 * malloc'd message naming the expected and found values. */
int tc_plugin_load(const char *path, tc_plugin_t *out, char **errmsg);
void tc_plugin_unload(tc_plugin_t *p);

#endif
