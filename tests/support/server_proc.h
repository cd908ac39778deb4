/* Runs the real tuplecast binary as a child process for integration tests.
 *
 * Threading: a thread of the helper's reads the child's stderr as it comes
 * (the server logs a line per call: a full pipe would stall it while the
 * test is busy elsewhere); p->log grows only on the test's thread, in the
 * calls below, so a test may read it between them.
 *
 * Ownership: tc_proc_t owns the child, its stderr pipe and the captured log;
 * tc_proc_stop() reaps the child and frees the rest.
 */
#ifndef TC_SERVER_PROC_H
#define TC_SERVER_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct tc_proc_s {
  pid_t pid;
  int err_fd; /* read end of the child's stderr */
  char *log;  /* everything read from stderr so far */
  size_t log_len;
  int grpc_port;                   /* from the "grpc listening on port N" line */
  char target[64];                 /* "127.0.0.1:<grpc_port>" */
  int http_port;                   /* from the "http listening on port N" line; 0 if none */
  struct tc_proc_reader_s *reader; /* drains err_fd on a thread of its own */
} tc_proc_t;

/* Starts `tuplecast serve <args...>` (NULL-terminated) with the binary named
 * by $TUPLECAST_BIN, waits up to 20 s for the listening line.  Returns 0, or -1
 * if the process exited or timed out first (its log is kept in p->log). */
int tc_proc_start(tc_proc_t *p, const char *const *args);
/* tc_proc_start with the memory engine and gRPC and HTTP on port 0, then
 * extra (NULL-terminated, or NULL). */
int tc_proc_start_memory(tc_proc_t *p, const char *const *extra);
/* tc_proc_start_memory with TLS on both ports from dir/cert.pem and
 * dir/key.pem, then extra (NULL-terminated, or NULL). */
int tc_proc_start_tls(tc_proc_t *p, const char *dir, const char *const *extra);
/* Runs `tuplecast <args...>` to completion; returns its exit status and its
 * stdout and stderr, interleaved, in *out (malloc'd). */
int tc_proc_run(const char *const *args, char **out);
/* Sends SIGTERM, waits up to 20 s; returns the exit status (or -1).  log,
 * if not NULL, gets everything the server wrote to stderr (malloc'd). */
int tc_proc_stop(tc_proc_t *p, char **log);
/* Reads the server's stderr until a whole line at or after offset from holds
 * needle, up to timeout_ms; returns where it is in p->log, or NULL. */
const char *tc_proc_wait_log(tc_proc_t *p, size_t from, const char *needle, int timeout_ms);
/* Whether what the servers write to stderr is echoed to the test's stderr
 * as it is taken into p->log (on, the default): a long run of many calls
 * turns it off and shows the log only when something fails. */
void tc_proc_set_echo(int on);
/* Takes what the server wrote so far into p->log, then keeps only its last
 * keep bytes (a long run's log would grow without bound). */
void tc_proc_log_trim(tc_proc_t *p, size_t keep);
/* The monotonic clock in milliseconds, for the tests' deadlines. */
long long tc_now_ms(void);
/* Waits up to timeout_ms for the "http listening on port N" line; returns N,
 * or -1 if it did not come. */
int tc_proc_http_port(tc_proc_t *p, int timeout_ms);
/* A test fixture's end: stops the server if it runs, removes and frees dir
 * (from tc_temp_dir()).  Returns 0 if the server exited 0 or was not running,
 * else -1 (sanitizers make a leak fail the exit). */
int tc_proc_teardown(tc_proc_t *p, char *dir);
/* Makes a fresh temporary directory; returns a malloc'd path. */
char *tc_temp_dir(void);
/* rm -rf of a directory made by tc_temp_dir(). */
void tc_temp_dir_remove(const char *dir);

#endif
