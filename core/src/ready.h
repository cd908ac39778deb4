/* Readiness: whether the database answers, which gRPC health and HTTP
 * /healthz report (tc_server_ready, server.h).  The backend's ping (plugin
 * ABI v2.3) runs on a timer, one at a time; health requests read the cached
 * verdict and never reach the database.
 *
 * Time to notice: a ping starts every TC_READY_PERIOD_MS; one that fails
 * turns the verdict at once, one that has not answered after
 * TC_READY_TIMEOUT_MS counts as failed.  So an unreachable database shows
 * within PERIOD + TIMEOUT (3 s), one whose connections drop (a stopped
 * server) within PERIOD (1 s), and one that returns within PERIOD plus the
 * backend's reconnect delay.  A backend without ping is always ready.
 *
 * Threading: loop thread only.
 * Ownership: embedded in tc_server_t; the timer is closed by tc__ready_stop
 * before the loop ends.
 */
#ifndef TC_READY_H
#define TC_READY_H

#include <stdint.h>
#include <uv.h>

#define TC_READY_PERIOD_MS 1000
#define TC_READY_TIMEOUT_MS 2000

typedef struct tc_server_s tc_server_t;

typedef struct tc__ready_s {
  uv_timer_t timer;
  int timer_open; /* started and not yet closed */
  int serving;    /* the verdict: 1 until a ping says otherwise */
  int probing;    /* a ping is outstanding */
  uint64_t probe_started_ms;
} tc__ready_t;

/* After the backend opened: serving, and the timer starts. */
void tc__ready_start(tc_server_t *srv);
/* On stop: the timer is closed; a ping still out is ignored when it answers. */
void tc__ready_stop(tc_server_t *srv);

#endif
