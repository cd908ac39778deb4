/* A fault-injecting TCP proxy on loopback for the torture test: it listens
 * on 127.0.0.1 (a port of the kernel's choosing) and relays each connection
 * to an upstream port on 127.0.0.1, byte for byte, until told to cut every
 * connection (both sides reset, as a dropped network path would) or to stall
 * (stop relaying in both directions; bytes wait in the kernel's buffers and
 * go on, late, when the stall ends, as after a network partition heals).
 * New connections are accepted during a stall and stall with the rest.
 *
 * Threading: the proxy relays on a thread of its own; every function may be
 * called from any thread.
 *
 * Ownership: tc_fproxy_t owns its thread, sockets and buffers;
 * tc_fproxy_stop() closes every connection and frees it all.
 */
#ifndef TC_FAULT_PROXY_H
#define TC_FAULT_PROXY_H

typedef struct tc_fproxy_s tc_fproxy_t;

/* Starts relaying to 127.0.0.1:upstream_port.  NULL on failure (errno). */
tc_fproxy_t *tc_fproxy_start(int upstream_port);
/* The port it listens on. */
int tc_fproxy_port(const tc_fproxy_t *fp);
/* Resets every connection open now (SO_LINGER 0 on both sides); returns
 * how many were cut once the relay thread has done it. */
int tc_fproxy_cut(tc_fproxy_t *fp);
/* Stops (on = 1) or resumes (on = 0) relaying, for every connection. */
void tc_fproxy_stall(tc_fproxy_t *fp, int on);
/* Connections accepted so far. */
long tc_fproxy_accepted(tc_fproxy_t *fp);
void tc_fproxy_stop(tc_fproxy_t *fp);

#endif
