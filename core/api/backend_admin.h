/* What the command line asks of the backend plugins without a server: the
 * plugins found, for `serve --help`, and `migrate up|status`.
 *
 * Threading: the main thread, no loop.
 * Ownership: the configuration is borrowed.
 */
#ifndef TC_BACKEND_ADMIN_H
#define TC_BACKEND_ADMIN_H

#include "config.h"

/* Prints the end of `serve --help` to stdout: the plugins database.engine
 * can name, in the plugin directory. */
void tc_backend_print_plugins(const tc_config_t *cfg);

/* `tuplecast migrate <verb>` (verb "up" or "status") through the plugin's
 * admin call; prints its report (stdout) or the error (stderr, one line).
 * Returns 0, or a TC_E* code. */
int tc_backend_migrate(const tc_config_t *cfg, const char *verb);

#endif
