/* `tuplecast config`: the effective configuration, as the start-up log line
 * carries it (tc_config_dump_json: secrets masked), indented for reading. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int tc_cli_config_print(const tc_config_t *cfg) {
  char *compact = tc_config_dump_json(cfg);
  json_t *j = compact ? json_loads(compact, 0, NULL) : NULL;
  free(compact);
  if (!j) {
    fprintf(stderr, "tuplecast: out of memory printing the configuration\n");
    return 1;
  }
  int rc = json_dumpf(j, stdout, JSON_INDENT(2)) == 0 && fputc('\n', stdout) != EOF &&
                   fflush(stdout) == 0
               ? 0
               : 1;
  json_decref(j);
  return rc;
}
