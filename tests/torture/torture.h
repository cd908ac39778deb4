/* The torture run's shared state: two tuplecast nodes on one PostgreSQL
 * (reached through the fault proxy), writers that record every operation
 * they made and how it was answered, watchers that record every message they
 * were delivered, and the checker that holds the two against each other and
 * against what the database holds at the end (README.md in this directory).
 *
 * What a write holds is known from its name alone: operation n of writer w on
 * tenant k writes entities "k<k>w<w>n<n>x<i>" (item i), its attribute writes
 * set doc "k<k>w<w>attr"'s `level` to n, and a delete names the marker items
 * of the operation it deletes.  So a change seen anywhere names its operation.
 *
 * Threading: each writer and watcher runs on a thread of its own and touches
 * only its own record until it is joined; the nodes' table is shared under
 * its lock; the violation list under its own.
 *
 * Ownership: the run (torture_t, in main) owns everything here.
 */
#ifndef TORTURE_H
#define TORTURE_H

#include <pthread.h>
#include <stdint.h>

#include "grpc_client.h"
#include "server_proc.h"

#define TORTURE_TIMEOUT_MS 10000 /* every unary call's deadline */

enum op_kind { OP_SINGLE, OP_BATCH, OP_ATTR, OP_MARK, OP_DELETE, OP_BUNDLE, OP_KINDS };
extern const char *const torture_op_names[OP_KINDS];

/* One operation of a writer, as answered. */
typedef struct {
  uint8_t kind;  /* enum op_kind */
  uint8_t items; /* tuples written (SINGLE 1, BUNDLE 2) or deleted (DELETE) */
  uint8_t acked; /* answered OK: the write is committed */
  uint8_t code;  /* the gRPC status */
  uint8_t node;  /* the node it was sent to */
  int target;    /* DELETE: the MARK operation whose items it deletes; MARK: its DELETE or -1 */
  int t0, t1;    /* sent and answered, ms since the load began (for reports) */
} op_t;

typedef struct {
  int tenant, w;
  unsigned seed;
  op_t *ops;
  int n_ops, cap;
  int open_mark; /* a MARK not yet deleted, or -1 */
} writer_t;

/* One delivered message, reduced to what the checker needs. */
typedef struct {
  int w, n;      /* the operation; w = -1: a sentinel or start write */
  uint32_t mask; /* the items x seen (tuples) */
  uint8_t creates, deletes, attr;
  int attr_old; /* ATTR: the value the message deleted, or -1 */
  int attr_w;   /* ATTR: whose attribute */
} msg_t;

typedef struct {
  int tenant, idx, slow;
  unsigned seed;
  char *token; /* the last message's */
  msg_t *msgs;
  int n_msgs, cap;
  long changes, resumes, drops, pauses;
  long ended[17];     /* streams ended by the server, by status */
  uint64_t ends_seen; /* the tenant's last-write attempts delivered (k<k>end<r>) */
} watcher_t;

/* The two nodes; a node restarted after kill -9 has a new port, so clients
 * compare the generation and reconnect. */
typedef struct {
  pthread_mutex_t lock;
  tc_proc_t proc[2];
  char target[2][64];
  int gen[2];
} nodes_t;

/* A thread's clients of the two nodes. */
typedef struct {
  tc_client_t *c[2];
  int gen[2];
  int small_window; /* a slow watcher's: tc_client_new_small_window */
} conns_t;

typedef struct {
  nodes_t nodes;
  int tenants, writers_per_tenant, watchers_per_tenant;
  writer_t *writers;
  watcher_t *watchers;
  char **start_token; /* per tenant: the first write's */
  int *sentinel;      /* per tenant: the acked last write's attempt r (k<k>end<r>), or -1 */
  volatile int stop_writers, stop_watchers;
  long long start_ms; /* when the load began */
  pthread_mutex_t vlock;
  long violations;
} torture_t;

extern torture_t *T;

/* A violation: counted, and the first ones printed. */
void torture_violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long long torture_now_ms(void);
/* The client of node i for this thread, reconnected after a restart. */
tc_client_t *torture_client(conns_t *cs, int i);
void torture_conns_free(conns_t *cs);

/* Prints what the database holds of entity id, expired rows included (a
 * violation's evidence). */
void torture_explain(const char *entity_id);

void *torture_writer_run(void *arg);
void *torture_watcher_run(void *arg);
/* Parses "k<k>w<w>n<n>x<x>"; 0 or -1. */
int torture_parse_item(const char *id, int *k, int *w, int *n, int *x);
/* Reads every tuple and attribute of each tenant at the head through c and
 * checks them and every watcher's stream against the writers' records. */
void torture_check(tc_client_t *c);

#endif
