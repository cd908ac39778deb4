/* The figures of one scenario run, printed once as a summary on stdout and
 * once as a JSON object appended to the --json file, from the same list.
 *
 * Ownership: the report owns copies of its keys and values.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  char *key;
  char *str; /* NULL for a number */
  double num;
  int decimals;
} entry_t;

struct bench_report_s {
  entry_t *e;
  size_t n, cap;
};

static entry_t *add(bench_report_t *r, const char *key) {
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 32;
    r->e = realloc(r->e, r->cap * sizeof *r->e);
  }
  entry_t *e = &r->e[r->n++];
  memset(e, 0, sizeof *e);
  e->key = strdup(key);
  return e;
}

void bench_report_num(bench_report_t *r, const char *key, double v, int decimals) {
  entry_t *e = add(r, key);
  e->num = v;
  e->decimals = decimals;
}

void bench_report_str(bench_report_t *r, const char *key, const char *v) {
  add(r, key)->str = strdup(v ? v : "");
}

bench_report_t *bench_report_new(const bench_opts_t *o) {
  bench_report_t *r = calloc(1, sizeof *r);
  char when[32];
  time_t now = time(NULL);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  bench_report_str(r, "scenario", o->scenario);
  bench_report_str(r, "name", o->name ? o->name : o->target);
  bench_report_str(r, "target", o->target);
  bench_report_str(r, "tenant", o->tenant);
  bench_report_str(r, "started_at", when);
  bench_report_num(r, "connections", o->connections, 0);
  if (o->settle > 0) bench_report_num(r, "settle_s", o->settle, 1);
  return r;
}

void bench_report_free(bench_report_t *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) {
    free(r->e[i].key);
    free(r->e[i].str);
  }
  free(r->e);
  free(r);
}

void bench_report_latency(bench_report_t *r, const char *prefix, bench_samples_t *s) {
  static const struct {
    const char *suffix;
    double pct;
  } cols[] = {{"p50_ms", 50}, {"p90_ms", 90}, {"p99_ms", 99}, {"max_ms", 100}};
  char key[96];
  snprintf(key, sizeof key, "%s_count", prefix);
  bench_report_num(r, key, (double)s->n, 0);
  for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
    snprintf(key, sizeof key, "%s_%s", prefix, cols[i].suffix);
    bench_report_num(r, key, (double)bench_samples_pct(s, cols[i].pct) / 1e6, 3);
  }
}

bench_cpu_mark_t bench_cpu_mark(const bench_opts_t *o) {
  bench_cpu_mark_t m = {
      .client_s = bench_self_cpu_s(), .machine_s = bench_machine_busy_s(), .at_ns = bench_now_ns()};
  m.server_s = o->server_pid ? bench_proc_cpu_s(o->server_pid) : -1;
  return m;
}

void bench_report_cpu(bench_report_t *r, const bench_opts_t *o, bench_cpu_mark_t since) {
  bench_cpu_mark_t now = bench_cpu_mark(o);
  double wall = (double)(now.at_ns - since.at_ns) / 1e9;
  bench_report_num(r, "client_cpu_s", now.client_s - since.client_s, 3);
  bench_report_num(r, "client_cpu_pct", 100 * (now.client_s - since.client_s) / wall, 1);
  /* The whole machine, so that load from other processes shows. */
  if (since.machine_s >= 0 && now.machine_s >= 0)
    bench_report_num(r, "machine_cpu_pct", 100 * (now.machine_s - since.machine_s) / wall, 1);
  if (since.server_s < 0 || now.server_s < 0) return;
  bench_report_num(r, "server_cpu_s", now.server_s - since.server_s, 2);
  bench_report_num(r, "server_cpu_pct", 100 * (now.server_s - since.server_s) / wall, 1);
}

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

int bench_report_emit(bench_report_t *r, const bench_opts_t *o) {
  for (size_t i = 0; i < r->n; i++) {
    entry_t *e = &r->e[i];
    if (e->str)
      printf("  %-28s %s\n", e->key, e->str);
    else
      printf("  %-28s %.*f\n", e->key, e->decimals, e->num);
  }
  fflush(stdout);
  if (!o->json) return 0;
  FILE *f = fopen(o->json, "a");
  if (!f) {
    perror(o->json);
    return -1;
  }
  fputc('{', f);
  for (size_t i = 0; i < r->n; i++) {
    entry_t *e = &r->e[i];
    if (i) fputc(',', f);
    json_string(f, e->key);
    fputc(':', f);
    if (e->str)
      json_string(f, e->str);
    else
      fprintf(f, "%.*f", e->decimals, e->num);
  }
  fputs("}\n", f);
  return fclose(f) == 0 ? 0 : -1;
}
