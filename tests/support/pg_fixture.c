/* close_range() is a GNU extension, nftw() an XSI one. */
#define _GNU_SOURCE

#include "pg_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

/* The socket lives in the cluster's private directory, so every cluster can
 * use the same port number without clashing (one listening on TCP too picks
 * a free one). */
#define PORT "5432"
#define POLL_MS 5
#define READY_MS 60000          /* start or restart until the server answers */
#define TOOL_MS 120000          /* any one initdb, pg_ctl or useradd */
#define RUNUSER "/sbin/runuser" /* where Debian's util-linux and passwd put them */
#define USERADD "/usr/sbin/useradd"

struct tc_pg_s {
  char dir[32]; /* /tmp/tcpg-XXXXXX: the socket, the log and data/ */
  char *bin;    /* the directory holding initdb, pg_ctl, postgres */
  char *data;
  char *log;
  char user[64]; /* the OS user the server runs as, also its superuser */
  char port[8];  /* PORT, or with opts->tcp a free loopback port */
  int as_other;  /* we are root: the tools run through runuser -u user */
  pid_t postmaster;
  pid_t warden;  /* stops the cluster if this process dies first */
  int warden_fd; /* its pipe: EOF (close, or our death) means "stop now" */
  char *uri;
  char **db_uris;
  size_t n_db_uris;
};

/* A test fixture has nothing useful to do without memory. */
static void *must(void *p) {
  if (!p) {
    fputs("tc_pg: out of memory\n", stderr);
    abort();
  }
  return p;
}

static char *fmt(const char *f, ...) {
  va_list ap, ap2;
  va_start(ap, f);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  char *s = must(malloc((size_t)n + 1));
  vsnprintf(s, (size_t)n + 1, f, ap2);
  va_end(ap2);
  return s;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(void) {
  struct timespec ts = {0, POLL_MS * 1000000L};
  nanosleep(&ts, NULL);
}

static int has_initdb(const char *bindir) {
  char *p = fmt("%s/initdb", bindir);
  int ok = access(p, X_OK) == 0;
  free(p);
  return ok;
}

/* The newest /usr/lib/postgresql/<major>/bin (Debian keeps them off PATH),
 * else what pg_config names, if initdb is there. */
static char *find_bindir(void) {
  long best = -1;
  DIR *d = opendir("/usr/lib/postgresql");
  for (struct dirent *e; d && (e = readdir(d));) {
    char *end;
    long major = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end || major <= best) continue;
    char *bin = fmt("/usr/lib/postgresql/%ld/bin", major);
    if (has_initdb(bin)) best = major;
    free(bin);
  }
  if (d) closedir(d);
  if (best >= 0) return fmt("/usr/lib/postgresql/%ld/bin", best);

  char line[4096] = "";
  FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
  if (f) {
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    pclose(f);
  }
  line[strcspn(line, "\n")] = '\0';
  if (line[0] && has_initdb(line)) return fmt("%s", line);
  fputs(
      "tc_pg: no PostgreSQL server binaries (no /usr/lib/postgresql/<major>/bin/initdb, "
      "and pg_config --bindir has no initdb); ./scripts/setup installs them\n",
      stderr);
  return NULL;
}

/* Runs argv[0] (an absolute path; `what` names it in messages) in the
 * cluster directory with stdin /dev/null and output appended to the log; kills
 * it (and what it started in its process group) at the deadline.  Returns 0 if
 * it exited 0, else -1. */
static int run(const tc_pg_t *pg, const char *what, char *const *argv) {
  int log_fd = open(pg->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = log_fd >= 0 && null_fd >= 0 ? fork() : -1;
  if (pid == 0) {
    /* Only async-signal-safe calls from here: the caller may have threads.
     * The child starts with a clean signal state whatever the caller blocked
     * or ignored, and with none of its descriptors, since the postmaster
     * outlives this call and must not hold the caller's pipes open. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    close_range(3, ~0U, 0);
    if (chdir(pg->dir) == 0) execv(argv[0], argv);
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) {
    fprintf(stderr, "tc_pg: cannot run %s: %s\n", what, strerror(errno));
    return -1;
  }
  long long deadline = now_ms() + TOOL_MS;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
      if (WIFEXITED(st))
        fprintf(stderr, "tc_pg: %s exited with %d\n", what, WEXITSTATUS(st));
      else
        fprintf(stderr, "tc_pg: %s killed by signal %d\n", what, WTERMSIG(st));
      return -1;
    }
    if (r < 0 && errno != EINTR) return -1;
    if (now_ms() >= deadline) {
      fprintf(stderr, "tc_pg: %s still running after %d s, killed\n", what, TOOL_MS / 1000);
      kill(-pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    nap();
  }
}

/* Runs one of the server's tools (bin/<tool> args...) as the cluster's user. */
static int run_tool(const tc_pg_t *pg, const char *tool, const char *const *args) {
  const char *argv[24];
  size_t k = 0;
  if (pg->as_other) {
    argv[k++] = RUNUSER;
    argv[k++] = "-u";
    argv[k++] = pg->user;
    argv[k++] = "--";
  }
  char *path = fmt("%s/%s", pg->bin, tool);
  argv[k++] = path;
  while (*args) argv[k++] = *args++;
  argv[k] = NULL;
  int rc = run(pg, tool, (char *const *)argv);
  free(path);
  return rc;
}

static void print_log_tail(const tc_pg_t *pg) {
  FILE *f = fopen(pg->log, "r");
  if (!f) return;
  char buf[4096];
  if (fseek(f, -(long)sizeof buf + 1, SEEK_END) != 0) rewind(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  fprintf(stderr, "---- tail of %s ----\n%s---- end of log ----\n", pg->log, buf);
}

/* initdb refuses to run as root, so root runs the server as `postgres` (the
 * Debian package's user) or else as a `tcpg` system user made here once. */
static int pick_user(tc_pg_t *pg, uid_t *uid, gid_t *gid) {
  struct passwd *pw;
  if (geteuid() != 0) {
    pw = getpwuid(geteuid());
  } else {
    pw = getpwnam("postgres");
    if (!pw) pw = getpwnam("tcpg");
    if (!pw) {
      const char *argv[] = {USERADD, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            "tcpg",  NULL};
      run(pg, "useradd", (char *const *)argv);
      /* Whatever useradd said: a concurrent test may have made it first. */
      pw = getpwnam("tcpg");
    }
    pg->as_other = 1;
  }
  if (!pw || strlen(pw->pw_name) >= sizeof pg->user) {
    fputs("tc_pg: no user to run the server as\n", stderr);
    return -1;
  }
  strcpy(pg->user, pw->pw_name);
  *uid = pw->pw_uid;
  *gid = pw->pw_gid;
  return 0;
}

static PGconn *connect_db(const tc_pg_t *pg, const char *db) {
  const char *keys[] = {"host", "port", "user", "dbname", "connect_timeout", NULL};
  const char *vals[] = {pg->dir, pg->port, pg->user, db, "10", NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "tc_pg: connect to %s: %s", db, PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* Polls until the server accepts connections, then records its pid. */
static int wait_ready(tc_pg_t *pg) {
  const char *keys[] = {"host", "port", "user", "dbname", "connect_timeout", NULL};
  const char *vals[] = {pg->dir, pg->port, pg->user, "postgres", "10", NULL};
  long long deadline = now_ms() + READY_MS;
  while (PQpingParams(keys, vals, 0) != PQPING_OK) {
    if (now_ms() >= deadline) {
      fprintf(stderr, "tc_pg: server in %s not answering after %d s\n", pg->dir, READY_MS / 1000);
      return -1;
    }
    nap();
  }
  char *pidfile = fmt("%s/postmaster.pid", pg->data);
  FILE *f = fopen(pidfile, "r");
  free(pidfile);
  long pid = 0;
  if (f) {
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
  }
  pg->postmaster = (pid_t)pid;
  return 0;
}

static int ensure_db(const tc_pg_t *pg, const char *name) {
  PGconn *c = connect_db(pg, "postgres");
  if (!c) return -1;
  int rc = -1;
  const char *params[] = {name};
  PGresult *r = PQexecParams(c, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL, params,
                             NULL, NULL, 0);
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) rc = 0;
  PQclear(r);
  char *ident = rc == 0 ? NULL : PQescapeIdentifier(c, name, strlen(name));
  if (ident) {
    char *sql = fmt("CREATE DATABASE %s", ident);
    r = PQexec(c, sql);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    /* 42P04: someone else created it meanwhile, which is as good. */
    if (PQresultStatus(r) == PGRES_COMMAND_OK || (state && !strcmp(state, "42P04")))
      rc = 0;
    else
      fprintf(stderr, "tc_pg: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    free(sql);
    PQfreemem(ident);
  }
  PQfinish(c);
  return rc;
}

/* Percent-encodes all but RFC 3986's unreserved characters and '/'. */
static void put_encoded(char **p, const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        strchr("-._~/", ch))
      *(*p)++ = (char)ch;
    else
      *p += sprintf(*p, "%%%02X", ch);
  }
}

static char *uri_for(const tc_pg_t *pg, const char *db) {
  char *uri = must(malloc(64 + 3 * (strlen(db) + strlen(pg->dir) + strlen(pg->user))));
  char *p = uri + sprintf(uri, "postgresql:///");
  put_encoded(&p, db);
  p += sprintf(p, "?host=");
  put_encoded(&p, pg->dir);
  p += sprintf(p, "&port=%s&user=", pg->port);
  put_encoded(&p, pg->user);
  *p = '\0';
  return uri;
}

static int write_conf(const tc_pg_t *pg, const tc_pg_opts_t *opts) {
  char *path = fmt("%s/postgresql.conf", pg->data);
  FILE *f = fopen(path, "a");
  free(path);
  if (!f) {
    fprintf(stderr, "tc_pg: cannot open postgresql.conf: %s\n", strerror(errno));
    return -1;
  }
  fprintf(f,
          "\n# tc_pg fixture: private socket, TCP on loopback only if asked, fast and not "
          "durable\n"
          "listen_addresses = '%s'\n"
          "unix_socket_directories = '%s'\n"
          "port = %s\n"
          "max_connections = 200\n"
          "fsync = off\n"
          "synchronous_commit = off\n"
          "full_page_writes = off\n"
          "track_commit_timestamp = %s\n",
          opts && opts->tcp ? "127.0.0.1" : "", pg->dir, pg->port,
          !opts || opts->track_commit_timestamp ? "on" : "off");
  for (const char *const *l = opts ? opts->conf : NULL; l && *l; l++) fprintf(f, "%s\n", *l);
  return fclose(f) == 0 ? 0 : -1;
}

/* pg_ctl daemonizes the postmaster, so a test that aborts (an assertion, a
 * sanitizer) would leave its cluster running.  A small shell, in a session
 * of its own, waits for EOF on a pipe whose only writer is this process
 * (close-on-exec, so no child inherits it), then stops the cluster and
 * removes its directory. */
static int start_warden(tc_pg_t *pg) {
  static const char script[] =
      "while read -r _; do :; done;"
      " ${4:+" RUNUSER
      " -u \"$4\" --} \"$1\" -D \"$2\" -m immediate -w -t 30 stop"
      " >/dev/null 2>&1; rm -rf \"$3\"";
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  char *ctl = fmt("%s/pg_ctl", pg->bin);
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    dup2(fds[0], 0);
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) dup2(null_fd, 1), dup2(null_fd, 2);
    close_range(3, ~0U, 0);
    execl("/bin/sh", "sh", "-c", script, "tc-pg-warden", ctl, pg->data, pg->dir,
          pg->as_other ? pg->user : "", (char *)NULL);
    _exit(127);
  }
  free(ctl);
  close(fds[0]);
  if (pid < 0) {
    close(fds[1]);
    return -1;
  }
  pg->warden = pid;
  pg->warden_fd = fds[1];
  return 0;
}

/* A loopback port nothing listens on now (the kernel's pick for port 0).
 * Another process may take it before the server binds it: start fails then,
 * loudly, with the server's log. */
static int free_port(char out[8]) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
           getsockname(fd, (struct sockaddr *)&a, &len) == 0;
  if (fd >= 0) close(fd);
  if (ok) snprintf(out, 8, "%d", ntohs(a.sin_port));
  return ok ? 0 : -1;
}

static int start(tc_pg_t *pg, const tc_pg_opts_t *opts) {
  uid_t uid;
  gid_t gid;
  strcpy(pg->port, PORT);
  if (opts && opts->tcp && free_port(pg->port) != 0) {
    fprintf(stderr, "tc_pg: no free loopback port: %s\n", strerror(errno));
    return -1;
  }
  pg->bin = find_bindir();
  if (!pg->bin || pick_user(pg, &uid, &gid) != 0) return -1;
  if (start_warden(pg) != 0) {
    fprintf(stderr, "tc_pg: cannot start the warden: %s\n", strerror(errno));
    return -1;
  }
  if (pg->as_other && (chown(pg->dir, uid, gid) != 0 || chown(pg->log, uid, gid) != 0)) {
    fprintf(stderr, "tc_pg: chown %s: %s\n", pg->dir, strerror(errno));
    return -1;
  }
  const char *initdb[] = {"-D",          pg->data,          "-U",        pg->user, "--auth=trust",
                          "--no-locale", "--encoding=UTF8", "--no-sync", NULL};
  if (run_tool(pg, "initdb", initdb) != 0 || write_conf(pg, opts) != 0) return -1;
  /* pg_ctl's own wait notices a postmaster that exits at once (a bad conf
   * line), so that fails now rather than at our deadline. */
  const char *ctl[] = {"-D", pg->data, "-l", pg->log, "-w", "-t", "60", "start", NULL};
  if (run_tool(pg, "pg_ctl", ctl) != 0 || wait_ready(pg) != 0) return -1;
  if (ensure_db(pg, "tuplecast") != 0) return -1;
  pg->uri = uri_for(pg, "tuplecast");
  return 0;
}

int tc_pg_start(const tc_pg_opts_t *opts, tc_pg_t **out) {
  *out = NULL;
  tc_pg_t *pg = must(calloc(1, sizeof *pg));
  strcpy(pg->dir, "/tmp/tcpg-XXXXXX");
  if (!mkdtemp(pg->dir)) {
    fprintf(stderr, "tc_pg: mkdtemp: %s\n", strerror(errno));
    free(pg);
    return -1;
  }
  pg->data = fmt("%s/data", pg->dir);
  pg->log = fmt("%s/postgres.log", pg->dir);
  int fd = open(pg->log, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) close(fd);
  if (fd < 0 || start(pg, opts) != 0) {
    print_log_tail(pg);
    tc_pg_stop(pg);
    return -1;
  }
  *out = pg;
  return 0;
}

const char *tc_pg_uri(const tc_pg_t *pg) { return pg->uri; }

const char *tc_pg_uri_db(tc_pg_t *pg, const char *dbname) {
  if (ensure_db(pg, dbname) != 0) return NULL;
  pg->db_uris = must(realloc(pg->db_uris, (pg->n_db_uris + 1) * sizeof *pg->db_uris));
  return pg->db_uris[pg->n_db_uris++] = uri_for(pg, dbname);
}

int tc_pg_port(const tc_pg_t *pg) { return atoi(pg->port); }

const char *tc_pg_user(const tc_pg_t *pg) { return pg->user; }

/* pg_ctl <action> -m <mode>; then, unless action is "stop", waits until the
 * server answers. */
static int ctl(tc_pg_t *pg, const char *action, const char *mode) {
  const char *args[] = {"-D", pg->data, "-l", pg->log, "-m", mode, "-w", "-t", "60", action, NULL};
  if (run_tool(pg, "pg_ctl", args) != 0 || (strcmp(action, "stop") != 0 && wait_ready(pg) != 0)) {
    print_log_tail(pg);
    return -1;
  }
  return 0;
}

int tc_pg_restart_mode(tc_pg_t *pg, const char *mode) { return ctl(pg, "restart", mode); }

int tc_pg_restart(tc_pg_t *pg) { return ctl(pg, "restart", "fast"); }

int tc_pg_halt(tc_pg_t *pg) { return ctl(pg, "stop", "fast"); }

int tc_pg_resume(tc_pg_t *pg) { return ctl(pg, "start", "fast"); }

int tc_pg_set(tc_pg_t *pg, const char *sql) {
  PGconn *c = connect_db(pg, "tuplecast");
  if (!c) return -1;
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
  if (rc != 0) fprintf(stderr, "tc_pg: %s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return rc;
}

PGresult *tc_pg_exec1(PGconn *c, const char *sql, const char *param) {
  const char *v[1] = {param};
  return PQexecParams(c, sql, 1, NULL, v, NULL, NULL, 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void tc_pg_stop(tc_pg_t *pg) {
  if (!pg) return;
  /* A server runs (or crashed) only where its pid file is.  If pg_ctl cannot
   * stop it, it must still not outlive its directory. */
  const char *ctl[] = {"-D", pg->data, "-m", "immediate", "-w", "-t", "30", "stop", NULL};
  char *pidfile = fmt("%s/postmaster.pid", pg->data);
  if (access(pidfile, F_OK) == 0 && run_tool(pg, "pg_ctl", ctl) != 0 && pg->postmaster > 0 &&
      access(pidfile, F_OK) == 0)
    kill(pg->postmaster, SIGKILL);
  free(pidfile);
  nftw(pg->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (pg->warden > 0) { /* nothing left for it to do: let it go */
    close(pg->warden_fd);
    while (waitpid(pg->warden, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  free(pg->bin);
  free(pg->data);
  free(pg->log);
  free(pg->uri);
  for (size_t i = 0; i < pg->n_db_uris; i++) free(pg->db_uris[i]);
  free(pg->db_uris);
  free(pg);
}
