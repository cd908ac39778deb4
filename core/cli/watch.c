/* `tuplecast watch`: tails a tenant's change feed through the HTTP gateway's
 * Watch (POST /v1/tenants/{id}/watch, chunked NDJSON), one line per change.
 * libcurl's multi interface runs the transfer; a self-pipe written by the
 * SIGINT/SIGTERM handler wakes its poll, so a stop is seen at once, also
 * during a backoff.  Every message's snap token is kept as the position: a
 * reconnect resumes from it (the feed's exactly-once contract,
 * docs/watch.md), and a stop prints it. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json_text.h"
#include "tuplecast/support.h"
#include "watch_opts.h"

/* Reconnects back off from 100 ms, doubling up to 5 s, each delay drawn at
 * random from its upper half so that many watchers of a restarted server
 * do not come back in step. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define ERROR_BODY_MAX 65536
/* The longest stream line (one message: one transaction's changes) kept
 * while its end has not come; the server's writes hold at most
 * database.max_data_per_write changes, a small fraction of this. */
#define LINE_MAX_BYTES (64L << 20)

typedef enum { END_RETRY, END_STOP, END_FATAL } end_t;

typedef struct {
  const tc__watch_opts_t *o;
  char *url;
  char *token; /* the position: resume after it */
  CURL *easy;
  /* The current attempt. */
  long status;   /* HTTP status, once the headers came */
  char *buf;     /* a partial NDJSON line, or an error body */
  size_t len;    /* bytes in buf */
  long messages; /* messages (changes or checkpoints) received */
  long changes;  /* changes printed */
  long code;     /* the gRPC status of an error line or body; -1: none */
  char *why;     /* why the attempt ended, when known */
  int fatal;     /* the attempt ended in a way no retry mends */
} session_t;

static volatile sig_atomic_t stop_signal;
static int wake[2] = {-1, -1};

static void on_stop(int sig) {
  int saved = errno;
  stop_signal = sig;
  if (wake[1] >= 0) (void)!write(wake[1], "x", 1);
  errno = saved;
}

static void set_why(session_t *s, char *why) {
  free(s->why);
  s->why = why;
}

/* ---- one change, one line ---------------------------------------------- */

/* How a line of the stream is read: the server writes a double of 1e20 as
 * 100000000000000000000, which jansson refuses as an integer (beyond an
 * int64) but reads as a real; a refused line would come again on every
 * reconnect. */
#define LINE_FLAGS JSON_DECODE_INT_AS_REAL

static void print_json(json_t *change, const char *token) {
  json_t *tuple = json_object_get(change, "tuple");
  char *notation = tc_cli_change_notation(change, false, false);
  json_t *line = json_object();
  json_object_set_new(line, "snap_token", json_string(token ? token : ""));
  json_object_set(line, "operation", json_object_get(change, "operation"));
  json_object_set(line, tuple ? "tuple" : "attribute",
                  tuple ? tuple : json_object_get(change, "attribute"));
  json_object_set_new(line, "notation", json_string(notation ? notation : ""));
  char *text = tc_json_text(line); /* numbers as the server wrote them (LINE_FLAGS) */
  if (text) puts(text);
  json_decref(line);
  free(notation);
  free(text);
}

static int on_message(session_t *s, const json_t *changes) {
  const char *token = json_string_value(json_object_get(changes, "snap_token"));
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(changes, "data_changes"), i, c) {
    s->changes++;
    if (s->o->json) {
      print_json(c, token);
      continue;
    }
    char *line = tc_cli_change_notation(c, true, true);
    if (line) puts(line);
    free(line);
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    s->fatal = 1;
    set_why(s, tc_format("cannot write to stdout: %s", strerror(errno)));
    return -1;
  }
  if (token && *token) {
    free(s->token);
    s->token = strdup(token);
  }
  s->messages++;
  return 0;
}

/* {"code":N,"message":"..."}: an error line of the stream or an error body. */
static void take_error(session_t *s, const json_t *err) {
  const char *msg = json_string_value(json_object_get(err, "message"));
  s->code = json_is_number(json_object_get(err, "code"))
                ? (long)json_number_value(json_object_get(err, "code"))
                : -1;
  set_why(s, tc_format("server: %s (code %ld)", msg ? msg : "no message", s->code));
}

static int on_line(session_t *s, const char *line, size_t len) {
  json_t *j = json_loadb(line, len, LINE_FLAGS, NULL);
  const json_t *changes = json_object_get(json_object_get(j, "result"), "changes");
  const json_t *err = json_object_get(j, "error");
  int rc = 0;
  if (json_is_object(changes)) {
    rc = on_message(s, changes);
  } else if (json_is_object(err)) {
    take_error(s, err);
  } else {
    set_why(s, tc_format("the server sent a line that is no Watch message: %.200s", line));
    rc = -1;
  }
  json_decref(j);
  return rc;
}

/* ---- libcurl's callbacks ------------------------------------------------- */

static int append(session_t *s, const char *data, size_t n) {
  char *grown = realloc(s->buf, s->len + n + 1);
  if (!grown) return -1;
  s->buf = grown;
  memcpy(s->buf + s->len, data, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return 0;
}

/* Body bytes: whole lines of a 200 stream are handled as they come (only the
 * new bytes are searched for their ends: a long line comes in many pieces);
 * another answer is kept (up to a limit) to read its error. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
  session_t *s = arg;
  size_t n = size * nmemb, searched = s->len;
  if (s->status != 200) return s->len + n > ERROR_BODY_MAX || append(s, data, n) ? 0 : n;
  if (append(s, data, n) != 0) return 0;
  char *start = s->buf, *from = s->buf + searched, *nl;
  while ((nl = memchr(from, '\n', s->len - (size_t)(from - s->buf))) != NULL) {
    if (nl > start && on_line(s, start, (size_t)(nl - start)) != 0) return 0;
    start = from = nl + 1;
  }
  s->len -= (size_t)(start - s->buf);
  memmove(s->buf, start, s->len);
  if (s->len <= LINE_MAX_BYTES) return n;
  s->fatal = 1;
  set_why(s, tc_format("the server sent a line longer than %ld MiB", LINE_MAX_BYTES >> 20));
  return 0;
}

/* The empty line that ends the headers: the watch was accepted when the
 * status is 200 (the server sends the headers before any message). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
  session_t *s = arg;
  size_t n = size * nmemb;
  if (n > 2 || (data[0] != '\r' && data[0] != '\n')) return n;
  curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
  if (s->status == 200)
    fprintf(stderr, "tuplecast watch: watching tenant %s at %s from %s%s\n", s->o->tenant, s->url,
            *s->token ? "snap token " : "now on", s->token);
  return n;
}

/* ---- one attempt ---------------------------------------------------------- */

static char *request_body(const session_t *s) {
  json_t *req = json_object();
  json_object_set_new(req, "snap_token", json_string(s->token));
  if (s->o->checkpoint_s > 0)
    json_object_set_new(req, "checkpoint_interval_seconds", json_integer(s->o->checkpoint_s));
  if (s->o->filter) json_object_set(req, "filter", s->o->filter);
  char *body = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  return body;
}

static struct curl_slist *request_headers(const session_t *s) {
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, "Accept: application/x-ndjson");
  h = curl_slist_append(h, "Expect:");
  if (s->o->auth_token && *s->o->auth_token) {
    char *auth = tc_format("Authorization: Bearer %s", s->o->auth_token);
    h = curl_slist_append(h, auth);
    free(auth);
  }
  return h;
}

static void configure(session_t *s, const char *body, struct curl_slist *headers, char *errbuf) {
  CURL *h = s->easy;
  curl_easy_setopt(h, CURLOPT_URL, s->url);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "tuplecast-watch/" TC_VERSION);
  if (s->o->ca_cert) curl_easy_setopt(h, CURLOPT_CAINFO, s->o->ca_cert);
  if (s->o->checkpoint_s > 0) { /* a dead connection: no checkpoint for too long */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 2 * s->o->checkpoint_s + 5);
  }
}

/* Runs the transfer until it ends or a stop signal comes. */
static CURLcode run(CURLM *multi) {
  int running = 1;
  while (!stop_signal) {
    curl_multi_perform(multi, &running);
    if (!running) break;
    struct curl_waitfd w = {.fd = wake[0], .events = CURL_WAIT_POLLIN};
    curl_multi_poll(multi, &w, 1, 1000, NULL);
  }
  CURLcode rc = CURLE_OK;
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(multi, &left)) != NULL)
    if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
  return rc;
}

/* gRPC statuses worth another attempt: the server stopping or overloaded
 * (UNAVAILABLE, RESOURCE_EXHAUSTED: also a consumer that fell behind),
 * DEADLINE_EXCEEDED, ABORTED, INTERNAL. */
static int retryable(long code) {
  return code == 14 || code == 8 || code == 4 || code == 10 || code == 13;
}

/* Errors no retry can mend: the address or the certificates. */
static int curl_fatal(CURLcode rc) {
  return rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
         rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
         rc == CURLE_SSL_CERTPROBLEM;
}

static end_t classify(session_t *s, CURLcode rc, const char *errbuf) {
  if (stop_signal) return END_STOP;
  if (s->fatal) return END_FATAL;
  if (s->status == 200) {
    if (s->code >= 0) return retryable(s->code) ? END_RETRY : END_FATAL;
    if (!s->why)
      set_why(s, rc == CURLE_OK ? tc_format("the server ended the stream")
                                : tc_format("%s", *errbuf ? errbuf : curl_easy_strerror(rc)));
    return END_RETRY;
  }
  if (s->status > 0) {
    json_t *j = s->buf ? json_loadb(s->buf, s->len, LINE_FLAGS, NULL) : NULL;
    if (json_is_object(j)) take_error(s, j);
    json_decref(j);
    if (s->code < 0) set_why(s, tc_format("HTTP status %ld", s->status));
    return retryable(s->code) || s->status >= 500 || s->status == 429 ? END_RETRY : END_FATAL;
  }
  if (!s->why) set_why(s, tc_format("%s", *errbuf ? errbuf : curl_easy_strerror(rc)));
  return curl_fatal(rc) ? END_FATAL : END_RETRY;
}

static end_t attempt(session_t *s, CURLM *multi) {
  s->status = 0;
  s->len = 0;
  s->messages = 0;
  s->changes = 0;
  s->code = -1;
  set_why(s, NULL);
  char errbuf[CURL_ERROR_SIZE] = "";
  char *body = request_body(s);
  struct curl_slist *headers = request_headers(s);
  s->easy = curl_easy_init();
  if (!body || !headers || !s->easy) {
    set_why(s, tc_format("out of memory"));
    curl_easy_cleanup(s->easy);
    curl_slist_free_all(headers);
    free(body);
    return END_FATAL;
  }
  configure(s, body, headers, errbuf);
  curl_multi_add_handle(multi, s->easy);
  CURLcode rc = run(multi);
  end_t end = classify(s, rc, errbuf);
  curl_multi_remove_handle(multi, s->easy);
  curl_easy_cleanup(s->easy);
  s->easy = NULL;
  curl_slist_free_all(headers);
  free(body);
  return end;
}

/* ---- the run ------------------------------------------------------------------ */

/* Sleeps ms, or less if a stop signal comes; returns 1 on a stop. */
static int pause_ms(long ms) {
  struct pollfd p = {.fd = wake[0], .events = POLLIN};
  if (!stop_signal) poll(&p, 1, (int)ms);
  return stop_signal != 0;
}

static long backoff_ms(long failures) {
  long d = BACKOFF_FIRST_MS;
  for (long i = 1; i < failures && d < BACKOFF_MAX_MS; i++) d *= 2;
  if (d > BACKOFF_MAX_MS) d = BACKOFF_MAX_MS;
  return d / 2 + rand() % (d / 2 + 1);
}

/* Whether an attempt got anywhere, which starts the backoff over: a change,
 * or a message after the first; the server sends a checkpoint as soon as it
 * accepts a watch, so a connection that only brought that one failed too. */
static int made_progress(const session_t *s) { return s->changes > 0 || s->messages > 1; }

/* Attempts until a stop, a fatal error, or the retries run out. */
static int watch_loop(session_t *s) {
  CURLM *multi = curl_multi_init();
  long failures = 0;
  int status = 1;
  while (multi) {
    end_t end = attempt(s, multi);
    if (end == END_STOP) {
      status = 0;
      break;
    }
    if (end == END_FATAL) {
      fprintf(stderr, "tuplecast watch: %s\n", s->why ? s->why : "failed");
      break;
    }
    failures = made_progress(s) ? 1 : failures + 1;
    if (s->o->max_retries >= 0 && failures > s->o->max_retries) {
      fprintf(stderr, "tuplecast watch: giving up after %ld attempt%s: %s\n", failures,
              failures == 1 ? "" : "s", s->why);
      break;
    }
    long ms = backoff_ms(failures);
    fprintf(stderr, "tuplecast watch: %s; reconnecting in %.1f s\n", s->why, ms / 1000.0);
    if (pause_ms(ms)) {
      status = 0;
      break;
    }
  }
  curl_multi_cleanup(multi);
  return status;
}

/* The position to resume from: on stderr, or as the last JSON line. */
static void print_resume(const session_t *s, int status) {
  if (s->o->json) {
    json_t *j = json_pack("{s:s}", "resume_token", s->token);
    if (status && s->why) json_object_set_new(j, "error", json_string(s->why));
    json_dumpf(j, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(j);
  }
  if (*s->token)
    fprintf(stderr, "tuplecast watch: resume with --from %s\n", s->token);
  else
    fprintf(stderr, "tuplecast watch: no position received yet; nothing to resume from\n");
}

/* The watch route's URL from --server and --tls. */
static char *watch_url(const tc__watch_opts_t *o, char **err) {
  const char *srv = o->server;
  int http = !strncmp(srv, "http://", 7), https = !strncmp(srv, "https://", 8);
  if (strstr(srv, "://") && !http && !https) {
    *err = tc_format("--server %s: expected HOST:PORT or an http:// or https:// URL", srv);
    return NULL;
  }
  if (http && o->tls) {
    *err = tc_format("--tls with an http:// server: use https:// or HOST:PORT");
    return NULL;
  }
  size_t n = strlen(srv);
  while (n && srv[n - 1] == '/') n--;
  char *tenant = curl_easy_escape(NULL, o->tenant, 0);
  char *url = tenant ? tc_format("%s%.*s/v1/tenants/%s/watch",
                                 http || https ? ""
                                 : o->tls      ? "https://"
                                               : "http://",
                                 (int)n, srv, tenant)
                     : NULL;
  curl_free(tenant);
  return url;
}

/* SA_RESTART: a write to a stdout that lags (a full pipe) goes on after the
 * signal instead of failing, which would drop what stdio held; poll() is
 * never restarted, and the self-pipe wakes it anyway. */
static void catch_signals(int on) {
  struct sigaction sa = {.sa_handler = on ? on_stop : SIG_DFL, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, on ? SIG_IGN : SIG_DFL);
}

static int start(session_t *s, char **err) {
  s->url = watch_url(s->o, err);
  s->token = strdup(s->o->from);
  if (!s->url || !s->token) return *err ? 2 : 1;
  json_t *utf8 = json_string(s->token);
  json_decref(utf8);
  if (!utf8) {
    *err = tc_format("--from: not a snap token (not UTF-8)");
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || pipe(wake) != 0) return 1;
  for (int i = 0; i < 2; i++) {
    fcntl(wake[i], F_SETFD, FD_CLOEXEC);
    fcntl(wake[i], F_SETFL, O_NONBLOCK);
  }
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  catch_signals(1);
  return 0;
}

int tc_cli_watch(int argc, char **argv) {
  tc__watch_opts_t o;
  char *err = NULL;
  int status = tc__watch_opts_parse(&o, argc, argv, &err);
  if (status == 0 && o.help) fputs(tc__watch_usage(), stdout);
  session_t s = {.o = &o};
  if (status == 0 && !o.help && (status = start(&s, &err)) == 0) {
    status = watch_loop(&s);
    print_resume(&s, status);
    catch_signals(0);
    curl_global_cleanup();
  }
  if (err) fprintf(stderr, "tuplecast watch: %s\n", err);
  for (int i = 0; i < 2; i++)
    if (wake[i] >= 0) close(wake[i]);
  free(err);
  free(s.url);
  free(s.token);
  free(s.buf);
  free(s.why);
  tc__watch_opts_free(&o);
  return status;
}
