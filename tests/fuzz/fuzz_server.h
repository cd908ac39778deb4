/* The core server the end-to-end fuzz targets (fuzz_http, fuzz_proto) send
 * their requests to: the real gate, handlers, tenant actors and Watch over
 * the in-memory example backend, with no transport of its own.  Each input
 * gets a fresh server, so that an input found crashing crashes again alone
 * and nothing it stores outlives it.
 *
 * Threading: one thread, the caller's, which runs the loop.
 * Ownership: the loop belongs to this file; a server from
 * tt_fuzz_server_open() is the caller's until tt_fuzz_server_close().
 */
#ifndef TT_FUZZ_SERVER_H
#define TT_FUZZ_SERVER_H

#include <uv.h>

#include "call.h"

/* The loop everything runs on (created on first use). */
uv_loop_t *tt_fuzz_loop(void);

/* A new server on the example backend, Watch enabled, no rate limit to
 * speak of, logging errors only; aborts, saying why, if it cannot open. */
tc_server_t *tt_fuzz_server_open(void);

/* Stops the server (streams still open are ended), runs the loop until
 * everything of it closed, frees it.  The caller closes what points at the
 * server first (fuzz_http: its HTTP server). */
void tt_fuzz_server_close(tc_server_t *srv);

/* Runs the loop until *flag is set; aborts (a hang is a finding) when that
 * takes over 10 s. */
void tt_fuzz_run_until(const int *flag, const char *what);

#endif
