/* The client subcommands of the tuplecast binary, beside `serve`:
 * `tuplecast watch` (tails a tenant's change feed over the HTTP gateway's
 * NDJSON Watch, with libcurl) and the printer of `tuplecast config`; and
 * the change notation they print, Permify's tuple and attribute strings
 * (docs/operations.md, "The command line").
 *
 * Threading: the process's main thread only; tc_cli_watch installs SIGINT
 * and SIGTERM handlers for its run.
 * Ownership: arguments are borrowed; returned strings are malloc'd and the
 * caller's to free().
 */
#ifndef TC_CLI_H
#define TC_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"

/* `tuplecast watch [flags]`: argv holds the arguments after "watch".
 * Returns the process's exit status: 0 when stopped by SIGINT/SIGTERM, 1
 * when the server refused the watch or the retries ran out, 2 on a usage
 * error. */
int tc_cli_watch(int argc, char **argv);

/* `tuplecast config`: prints cfg's effective keys as indented JSON, secrets
 * masked (tc_config_dump_json).  Returns the exit status. */
int tc_cli_config_print(const tc_config_t *cfg);

/* One DataChange of a Watch message (its JSON object, as the HTTP gateway
 * writes it) in Permify's notation: "doc:1#owner@user:alice",
 * "doc:1#viewer@group:g#member", "doc:1$is_private|boolean:true",
 * "doc:1$tags|string[]:a,b".  With sign, "+ " (create) or "- " (delete)
 * before it.  With escape, control characters are written as \n, \t, \r or
 * \xNN, so that one change is one line.  NULL if change is no DataChange
 * (or out of memory). */
char *tc_cli_change_notation(const json_t *change, bool sign, bool escape);

#endif
