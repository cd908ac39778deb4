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
  char *path;      /* the plugin file */
  const char *uri; /* borrowed from the configuration */
  char **options;  /* NULL-terminated "key=value" strings for create/admin */
  int memory;      /* database.engine memory: SQLite in memory */
} tc_backend_choice_t;

/* The plugin directory: database.backend_dir, or "backends" beside the
 * executable when that is "".  malloc'd; NULL when out of memory. */
char *tc_backend_dir(const tc_config_t *cfg);
/* The plugins in dir (its *.so files, without ".so"), sorted and
 * ", "-separated, "none" when there are none; followed by the memory alias
 * when sqlite is among them.  malloc'd; NULL when out of memory. */
char *tc_backend_found(const char *dir);

/* Resolves database.engine / database.uri / database.* into a plugin file
 * and options, and loads the plugin.  The engine is a plugin name (NAME
 * loads <plugin dir>/NAME.so), a path to a .so file (it holds a '/'), or
 * `memory`.  TC_ECONFIG with a one-line message for a bad name or when there
 * is no such plugin (listing those found), TC_EPLUGIN when it does not fit. */
int tc_backend_choose(const tc_config_t *cfg, tc_backend_choice_t *out, tc_plugin_t *plugin,
                      char **errmsg);
void tc_backend_choice_free(tc_backend_choice_t *c);

#endif
