/* tc-pgtmp: a throwaway PostgreSQL cluster for scripts (the benchmark).  Prints
 * the cluster's URI as one line on stdout, keeps the cluster until stdin
 * reaches EOF or SIGTERM, SIGINT or SIGHUP arrives, then stops it, removes its
 * directory and exits 0.  With `-- command args...` it runs the command
 * instead of printing (every argument "@URI@" replaced by the URI, and the
 * URI in $TC_PG_URI), stops the cluster when it exits and exits with its
 * status: how ctest runs a program against a cluster of its own.
 *
 *   tc-pgtmp [--no-track-commit-timestamp] [--conf 'key = value']... [-- command args...]
 */
#include "pg_fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

/* Returns when stdin reaches EOF (or fails) or a stop signal arrives. */
static void wait_for_end(const sigset_t *unblocked) {
  char buf[512];
  while (!stopping) {
    fd_set in;
    FD_ZERO(&in);
    FD_SET(0, &in);
    /* pselect unblocks the stop signals only while it waits, so one arriving
     * between the check of `stopping` and the wait is not lost. */
    if (pselect(1, &in, NULL, NULL, NULL, unblocked) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
  }
}

/* Runs argv with "@URI@" replaced; its exit status (128 + signal if
 * killed), 127 if it cannot be started.  A stop signal is passed on. */
static int run_command(char **argv, const char *uri, const sigset_t *unblocked) {
  for (char **a = argv; *a; a++)
    if (!strcmp(*a, "@URI@")) *a = (char *)uri;
  setenv("TC_PG_URI", uri, 1);
  pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, unblocked, NULL);
    execvp(argv[0], argv);
    fprintf(stderr, "tc-pgtmp: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  sigprocmask(SIG_SETMASK, unblocked, NULL);
  int status, forwarded = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno == EINTR && stopping && !forwarded) forwarded = 1, kill(pid, SIGTERM);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
  const char **conf = calloc((size_t)argc, sizeof *conf);
  size_t n_conf = 0;
  char **command = NULL;
  tc_pg_opts_t opts = {.track_commit_timestamp = 1, .conf = conf};
  for (int i = 1; i < argc && !command; i++) {
    if (!strcmp(argv[i], "--") && i + 1 < argc) {
      command = argv + i + 1;
    } else if (!strcmp(argv[i], "--no-track-commit-timestamp")) {
      opts.track_commit_timestamp = 0;
    } else if (!strcmp(argv[i], "--conf") && i + 1 < argc) {
      conf[n_conf++] = argv[++i];
    } else {
      fprintf(stderr,
              "usage: %s [--no-track-commit-timestamp] [--conf 'key = value']... "
              "[-- command args...]\n",
              argv[0]);
      free(conf);
      return 2;
    }
  }

  /* Blocked from here on, so a stop signal during the start is kept pending
   * and still stops the cluster. */
  int stop_signals[] = {SIGTERM, SIGINT, SIGHUP};
  sigset_t stop, unblocked;
  sigemptyset(&stop);
  for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++)
    sigaddset(&stop, stop_signals[i]);
  sigprocmask(SIG_BLOCK, &stop, &unblocked);
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++) {
    sigaction(stop_signals[i], &sa, NULL);
    sigdelset(&unblocked, stop_signals[i]);
  }
  /* A reader gone before the URI line must not kill us holding a cluster. */
  signal(SIGPIPE, SIG_IGN);

  tc_pg_t *pg;
  if (tc_pg_start(&opts, &pg) != 0) {
    free(conf);
    return 1;
  }
  int rc = 0;
  if (command) {
    rc = run_command(command, tc_pg_uri(pg), &unblocked);
  } else if (printf("%s\n", tc_pg_uri(pg)) < 0 || fflush(stdout) != 0) {
    fprintf(stderr, "tc-pgtmp: cannot write the URI\n");
    rc = 1;
  } else {
    wait_for_end(&unblocked);
  }
  tc_pg_stop(pg);
  free(conf);
  return rc;
}
