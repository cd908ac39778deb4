/* nftw() is an XSI extension; pipe2() a GNU one. */
#define _GNU_SOURCE

#include "server_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int echo = 1; /* tc_proc_set_echo */

void tc_proc_set_echo(int on) { echo = on; }

static const char *binary(void) {
  const char *b = getenv("TUPLECAST_BIN");
  return b && *b ? b : "./tuplecast";
}

long long tc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the reader thread has read and the test's thread not yet taken. */
typedef struct tc_proc_reader_s {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond; /* on CLOCK_MONOTONIC: data came, or the end */
  int fd;
  char *buf;
  size_t len;
  int eof;  /* the reader has stopped */
  int stop; /* the child is reaped: stop at the first quiet poll */
} reader_t;

static void *read_loop(void *arg) {
  reader_t *r = arg;
  char chunk[4096];
  for (;;) {
    struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
    int n = poll(&pfd, 1, 50);
    pthread_mutex_lock(&r->lock);
    int stop = r->stop;
    pthread_mutex_unlock(&r->lock);
    if (n == 0 && stop) break;
    if (n <= 0) continue;
    ssize_t got = read(r->fd, chunk, sizeof chunk);
    if (got <= 0) break;
    pthread_mutex_lock(&r->lock);
    r->buf = realloc(r->buf, r->len + (size_t)got);
    memcpy(r->buf + r->len, chunk, (size_t)got);
    r->len += (size_t)got;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
  }
  pthread_mutex_lock(&r->lock);
  r->eof = 1;
  pthread_cond_signal(&r->cond);
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

static void reader_start(tc_proc_t *p) {
  reader_t *r = calloc(1, sizeof *r);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cond, &attr);
  pthread_condattr_destroy(&attr);
  pthread_mutex_init(&r->lock, NULL);
  r->fd = p->err_fd;
  p->reader = r;
  pthread_create(&r->thread, NULL, read_loop, r);
}

/* Takes what the reader has within timeout_ms into p->log; 0 on data, 1
 * once the reader has stopped and all is taken, -1 on timeout. */
static int pump_log(tc_proc_t *p, int timeout_ms) {
  reader_t *r = p->reader;
  if (!r) return 1;
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
  pthread_mutex_lock(&r->lock);
  while (r->len == 0 && !r->eof)
    if (pthread_cond_timedwait(&r->cond, &r->lock, &until) != 0) break;
  char *buf = r->buf;
  size_t n = r->len;
  int eof = r->eof;
  r->buf = NULL;
  r->len = 0;
  pthread_mutex_unlock(&r->lock);
  if (n == 0) return eof ? 1 : -1;
  p->log = realloc(p->log, p->log_len + n + 1);
  memcpy(p->log + p->log_len, buf, n);
  p->log_len += n;
  p->log[p->log_len] = '\0';
  /* Echo, so a failing test shows what the server said. */
  if (echo) fwrite(buf, 1, n, stderr);
  free(buf);
  return 0;
}

/* The child is reaped: lets the reader finish, takes the rest, closes. */
static void reader_end(tc_proc_t *p) {
  reader_t *r = p->reader;
  if (r) {
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    while (pump_log(p, 0) == 0) {
    }
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
    p->reader = NULL;
  }
  if (p->err_fd > 0) close(p->err_fd);
  p->err_fd = -1;
}

static pid_t spawn(const char *const *args, int *err_fd, int with_serve) {
  int fds[2];
  /* Close-on-exec: another child must not hold this pipe open. */
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  size_t n = 0;
  while (args[n]) n++;
  char **argv = calloc(n + 3, sizeof *argv);
  size_t k = 0;
  argv[k++] = (char *)binary();
  if (with_serve) argv[k++] = "serve";
  for (size_t i = 0; i < n; i++) argv[k++] = (char *)args[i];
  pid_t pid = fork();
  if (pid == 0) {
    /* A test that fails half-way never stops its server: let the kernel do it
     * when the test process ends, so nothing is left holding ctest's pipes. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], 2);
    if (!with_serve) dup2(fds[1], 1); /* tc_proc_run: help and version too */
    close(fds[0]);
    close(fds[1]);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  free(argv);
  close(fds[1]);
  *err_fd = fds[0];
  return pid;
}

int tc_proc_start(tc_proc_t *p, const char *const *args) {
  memset(p, 0, sizeof *p);
  p->pid = spawn(args, &p->err_fd, 1);
  if (p->pid < 0) return -1;
  reader_start(p);
  long long deadline = tc_now_ms() + 20000;
  while (tc_now_ms() < deadline) {
    const char *line = p->log ? strstr(p->log, "grpc listening on port ") : NULL;
    if (line && strchr(line, '\n')) {
      p->grpc_port = atoi(line + strlen("grpc listening on port "));
      snprintf(p->target, sizeof p->target, "127.0.0.1:%d", p->grpc_port);
      /* Logged before the gRPC line when HTTP is enabled. */
      const char *http = strstr(p->log, "http listening on port ");
      if (http) p->http_port = atoi(http + strlen("http listening on port "));
      return 0;
    }
    if (pump_log(p, 100) == 1) break;
  }
  /* Not up in time: leave no server behind. */
  kill(p->pid, SIGKILL);
  waitpid(p->pid, NULL, 0);
  p->pid = 0;
  reader_end(p);
  return -1;
}

/* head's n words, then extra's (NULL-terminated, or NULL), and a NULL: one
 * array to free(). */
static const char **join(const char *const *head, size_t n, const char *const *extra) {
  size_t n_extra = 0;
  while (extra && extra[n_extra]) n_extra++;
  const char **args = calloc(n + n_extra + 1, sizeof *args);
  memcpy(args, head, n * sizeof *args);
  if (n_extra) memcpy(args + n, extra, n_extra * sizeof *args);
  return args;
}

int tc_proc_start_memory(tc_proc_t *p, const char *const *extra) {
  static const char *const memory[] = {"--grpc-port",       "0",     "--http-port", "0",
                                       "--database-engine", "memory"};
  const char **args = join(memory, sizeof memory / sizeof memory[0], extra);
  int rc = tc_proc_start(p, args);
  free(args);
  return rc;
}

int tc_proc_start_tls(tc_proc_t *p, const char *dir, const char *const *extra) {
  char cert[1024], key[1024];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  const char *const tls[] = {
      "--http-tls-enabled", "--http-tls-cert-path", cert, "--http-tls-key-path", key,
      "--grpc-tls-enabled", "--grpc-tls-cert-path", cert, "--grpc-tls-key-path", key};
  const char **args = join(tls, sizeof tls / sizeof tls[0], extra);
  int rc = tc_proc_start_memory(p, args);
  free(args);
  return rc;
}

int tc_proc_stop(tc_proc_t *p, char **log) {
  int status = -1;
  if (p->pid > 0) {
    kill(p->pid, SIGTERM);
    long long deadline = tc_now_ms() + 20000;
    int w = 0;
    while ((w = waitpid(p->pid, &status, WNOHANG)) == 0 && tc_now_ms() < deadline) pump_log(p, 50);
    if (w == 0) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      status = -1;
    } else
      status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  reader_end(p);
  if (log)
    *log = p->log ? p->log : calloc(1, 1);
  else
    free(p->log);
  memset(p, 0, sizeof *p);
  return status;
}

int tc_proc_run(const char *const *args, char **out) {
  tc_proc_t p = {0};
  p.pid = spawn(args, &p.err_fd, 0);
  if (p.pid > 0) reader_start(&p);
  while (pump_log(&p, 20000) == 0) {
  }
  int status = 0;
  if (p.pid > 0) waitpid(p.pid, &status, 0);
  reader_end(&p);
  *out = p.log ? p.log : calloc(1, 1);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *tc_temp_dir(void) {
  const char *base = getenv("TMPDIR");
  char *path = malloc(512);
  snprintf(path, 512, "%s/tuplecast-test-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(path)) {
    free(path);
    return NULL;
  }
  return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

void tc_temp_dir_remove(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

const char *tc_proc_wait_log(tc_proc_t *p, size_t from, const char *needle, int timeout_ms) {
  long long deadline = tc_now_ms() + timeout_ms;
  for (;;) {
    const char *at = p->log && p->log_len > from ? strstr(p->log + from, needle) : NULL;
    if (at && strchr(at, '\n')) return at;
    if (tc_now_ms() > deadline || pump_log(p, 100) == 1) return NULL;
  }
}

void tc_proc_log_trim(tc_proc_t *p, size_t keep) {
  while (pump_log(p, 0) == 0) {
  }
  if (p->log_len <= keep) return;
  memmove(p->log, p->log + p->log_len - keep, keep + 1);
  p->log_len = keep;
}

int tc_proc_http_port(tc_proc_t *p, int timeout_ms) {
  static const char key[] = "http listening on port ";
  const char *at = tc_proc_wait_log(p, 0, key, timeout_ms);
  return at ? atoi(at + strlen(key)) : -1;
}

int tc_proc_teardown(tc_proc_t *p, char *dir) {
  int rc = p->pid ? tc_proc_stop(p, NULL) : 0;
  tc_temp_dir_remove(dir);
  free(dir);
  return rc == 0 ? 0 : -1;
}
