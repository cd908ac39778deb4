/* `tuplecast watch`'s options: the flag table, its parser and its help
 * text (watch_args.c), read by the client (watch.c).
 *
 * Threading: main thread only.
 * Ownership: strings point into argv or the environment (borrowed for the
 * run); filter is owned and released by tc__watch_opts_free.
 */
#ifndef TC_CLI_WATCH_OPTS_H
#define TC_CLI_WATCH_OPTS_H

#include <jansson.h>
#include <stdbool.h>

typedef struct tc__watch_opts_s {
  const char *tenant;     /* --tenant, required */
  const char *server;     /* --server: host:port or http(s)://host:port */
  const char *from;       /* --from: snap token; "" = the head */
  const char *auth_token; /* --auth-token or $TUPLECAST_AUTH_TOKEN */
  const char *ca_cert;    /* --ca-cert: PEM file of the CA to trust */
  bool tls;               /* --tls: https for a host:port server */
  bool json;              /* --json: one JSON object a line */
  long checkpoint_s;      /* --checkpoint-interval, seconds; 0 = none */
  long max_retries;       /* --max-retries; -1 = forever */
  json_t *filter;         /* WatchFilter's JSON, NULL when no --filter */
  bool help;
} tc__watch_opts_t;

/* Parses argv (the arguments after "watch").  0, or 2 with one line for the
 * user in *err (malloc'd). */
int tc__watch_opts_parse(tc__watch_opts_t *o, int argc, char **argv, char **err);
void tc__watch_opts_free(tc__watch_opts_t *o);
/* `tuplecast watch --help`. */
const char *tc__watch_usage(void);

#endif
