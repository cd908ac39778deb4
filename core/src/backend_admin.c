/* `serve --help`'s plugin list and `migrate`: backend_open.h's choice of
 * plugin, used without a server. */
#include "backend_admin.h"

#include <stdio.h>
#include <stdlib.h>

#include "backend_open.h"

void tc_backend_print_plugins(const tc_config_t *cfg) {
  char *dir = tc_backend_dir(cfg);
  char *found = dir ? tc_backend_found(dir) : NULL;
  if (found)
    printf(
        "\nBackend plugins: --database-engine NAME loads <dir>/NAME.so, a path to a .so\n"
        "loads that file; memory is the sqlite plugin on a database in memory.\n"
        "  in %s: %s\n",
        dir, found);
  free(found);
  free(dir);
}

int tc_backend_migrate(const tc_config_t *cfg, const char *verb) {
  tc_backend_choice_t choice;
  tc_plugin_t plugin;
  char *out = NULL;
  int rc = tc_backend_choose(cfg, &choice, &plugin, &out);
  if (rc == 0) {
    char command[16];
    snprintf(command, sizeof command, "migrate %s", verb);
    if (plugin.api->admin)
      rc = plugin.api->admin(choice.uri, (const char *const *)choice.options, command, &out);
    else
      printf("database.engine %s migrates its database itself when it opens it\n",
             cfg->database_engine);
    tc_backend_choice_free(&choice);
    tc_plugin_unload(&plugin);
  }
  if (out) fprintf(rc ? stderr : stdout, "%s%s\n", rc ? "tuplecast: " : "", out);
  free(out);
  return rc;
}
