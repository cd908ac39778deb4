/* Which backend plugin and settings the configuration names: shared by
 * `serve` and `migrate`.
 *
 * Ownership: tc_backend_choice_t owns its path and options array; free it
 * with tc_backend_choice_free().
 */
#ifndef TC_BACKEND_OPEN_H
#define TC_BACKEND_OPEN_H

#include "backend_loader.h"
#include "config.h"

typedef struct tc_backend_choice_s {
  char *path;       /* the plugin file */
  const char *uri;  /* borrowed from the configuration */
  char **options;   /* NULL-terminated "key=value" strings for create/admin */
  int memory;       /* database.engine memory: SQLite in memory */
} tc_backend_choice_t;

/* Resolves database.engine / database.uri / database.* into a plugin file
 * and options, and loads the plugin.  TC_ECONFIG with a one-line message
 * when there is no such plugin, TC_EPLUGIN when it does not fit. */
int tc_backend_choose(const tc_config_t *cfg, tc_backend_choice_t *out, tc_plugin_t *plugin,
                      char **errmsg);
void tc_backend_choice_free(tc_backend_choice_t *c);

#endif
