/* A server fixture for integration tests: a temporary directory with a path
 * for a SQLite file in it, build/tuplecast started on it, and a gRPC client
 * to that server.
 *
 * Threading: the test's thread only.  Ownership: tt_fx_t owns dir, db, the
 * process and the client; uri is borrowed (the test sets it: db, or a
 * database of the test's Postgres cluster).  tt_fx_free() stops the server
 * and frees it all, f included.
 */
#ifndef TT_SERVER_FX_H
#define TT_SERVER_FX_H

#include "grpc_client.h"
#include "server_proc.h"

typedef struct {
  char *dir, *db;
  const char *uri; /* the database */
  tc_proc_t proc;
  tc_client_t *client;
} tt_fx_t;

/* A new fixture, calloc'd, with dir made and db "<dir>/tuplecast.db". */
tt_fx_t *tt_fx_new(void);
/* Starts the server with args (NULL-terminated) and a client to it: 0 or -1. */
int tt_fx_start(tt_fx_t *f, const char *const *args);
/* Stops the server (NULL is a no-op) and frees everything; 0 when it
 * exited 0. */
int tt_fx_free(tt_fx_t *f);

#endif
