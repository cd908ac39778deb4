#include "tenant.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tuplecast/support.h" /* TC_CONTAINER_OF */

enum { T_UNKNOWN, T_LOADING, T_EXISTS, T_ABSENT };

/* How long what the actor learned of the tenant (it exists, its head schema
 * version) is trusted before it is read again: another node, or Permify on
 * the same database, may have deleted the tenant or written a new schema. */
#define TENANT_FRESH_MS 1000

typedef struct schema_entry_s {
  struct schema_entry_s *next;
  char *version;
  tc_schema_t *schema;
} schema_entry_t;

struct tc_tenant_s {
  tc__idmap_link_t link; /* in srv->tenants */
  tc_server_t *srv;
  char *id;
  int state;
  uint64_t learned_ms;   /* loop time state and head_version were read */
  tc_job_t *head, *tail; /* mailbox */
  int busy;              /* waiting on a load or a barrier job */
  int kicked;            /* a pump is queued on the bridge */
  int pumping;           /* depth of pump(): jobs may re-enter it */
  tc_completion_t kick;
  char *head_version; /* NULL = not known yet, "" = the tenant has no schema */
  schema_entry_t *schemas;
};

static void pump(tc_tenant_t *t);

/* Every call looks its tenant's actor up: in a table by id (idmap.h). */
static tc_tenant_t *find(tc_server_t *srv, const char *id) {
  tc__idmap_link_t *l = tc__idmap_find(&srv->tenants, id);
  return l ? TC_CONTAINER_OF(l, tc_tenant_t, link) : NULL;
}

static void on_kick(tc_completion_t *c) {
  tc_tenant_t *t = TC_CONTAINER_OF(c, tc_tenant_t, kick);
  t->kicked = 0;
  pump(t);
}

static tc_tenant_t *get(tc_server_t *srv, const char *id) {
  tc_tenant_t *t = find(srv, id);
  if (t) return t;
  t = calloc(1, sizeof *t);
  if (!t || !(t->id = strdup(id)) || tc__idmap_add(&srv->tenants, &t->link, t->id) != 0) {
    if (t) free(t->id);
    free(t);
    return NULL;
  }
  t->srv = srv;
  t->kick.run = on_kick;
  return t;
}

static void clear_schemas(tc_tenant_t *t) {
  while (t->schemas) {
    schema_entry_t *e = t->schemas;
    t->schemas = e->next;
    tc_schema_free(e->schema);
    free(e->version);
    free(e);
  }
  free(t->head_version);
  t->head_version = NULL;
}

static schema_entry_t *cached(tc_tenant_t *t, const char *version) {
  for (schema_entry_t *e = t->schemas; e; e = e->next)
    if (strcmp(e->version, version) == 0) return e;
  return NULL;
}

/* Takes ownership of s; a version already cached keeps its copy (a head read
 * again each second must not add one more per read). */
static int cache_add(tc_tenant_t *t, const char *version, tc_schema_t *s) {
  if (cached(t, version)) {
    tc_schema_free(s);
    return 0;
  }
  schema_entry_t *e = calloc(1, sizeof *e);
  if (!e || !(e->version = strdup(version))) {
    free(e);
    tc_schema_free(s);
    return TC_ENOMEM;
  }
  e->schema = s;
  e->next = t->schemas;
  t->schemas = e;
  tc_log(TC_LOG_DEBUG, "tenant %s: schema %s compiled and cached", t->id, version);
  return 0;
}

static tc_job_t *pop(tc_tenant_t *t) {
  tc_job_t *j = t->head;
  t->head = j->next;
  if (!t->head) t->tail = NULL;
  j->next = NULL;
  return j;
}

static void fail_head(tc_tenant_t *t, int status) {
  tc_job_t *j = pop(t);
  j->run(j, status, NULL);
}

/* What a load found of the tenant's existence (tenant_get's or
 * tenant_state's status). */
static void learned(tc_tenant_t *t, int status) {
  t->busy = 0;
  t->learned_ms = uv_now(t->srv->loop);
  if (status == 0) {
    t->state = T_EXISTS;
  } else if (status == TC_ENOTFOUND) {
    t->state = T_ABSENT;
  } else {
    /* The backend's own status: UNAVAILABLE (the database unreachable, a
     * restart) tells the client to retry, where INTERNAL would not. */
    t->state = T_UNKNOWN;
    if (t->head) fail_head(t, status);
  }
}

static void on_tenant(void *arg, int status, const tc_tenant_row_t *row) {
  (void)row;
  tc_tenant_t *t = arg;
  learned(t, status);
  pump(t);
}

/* A schema read: compiled and cached unless its version already is (the
 * head is read again each second; a version's text never changes). */
static int schema_loaded(tc_tenant_t *t, const char *version, const char *text) {
  tc_log(TC_LOG_DEBUG, "tenant %s: schema %s read", t->id, version);
  if (cached(t, version)) return 0;
  tc_schema_t *s;
  char *err = NULL;
  int rc = tc_schema_compile(text, &s, &err);
  if (rc != 0) {
    /* Only schemas that compiled are ever stored. */
    tc_log(TC_LOG_ERROR, "tenant %s: stored schema %s does not compile: %s", t->id, version,
           err ? err : "?");
    free(err);
    return TC_EINTERNAL;
  }
  return cache_add(t, version, s);
}

static void on_schema(void *arg, int status, const char *version, const char *text) {
  tc_tenant_t *t = arg;
  tc_job_t *j = t->head;
  const char *want = j->schema_version ? j->schema_version : "";
  t->busy = 0;
  if (status == TC_ESCHEMA_NOT_FOUND) {
    if (!*want) t->head_version = strdup("");
    fail_head(t, TC_ESCHEMA_NOT_FOUND);
  } else if (status != 0) {
    fail_head(t, status);
  } else if ((status = schema_loaded(t, version, text)) != 0) {
    fail_head(t, status);
  } else if (!*want) {
    free(t->head_version);
    t->head_version = strdup(version);
  }
  pump(t);
}

/* tenant_state's head: "" (no schema), a version compiled already, or one
 * to compile from text.  Whatever fails here leaves the head unknown, and a
 * job that wants it reads it with schema_read (and gets that error). */
static void learn_head(tc_tenant_t *t, const char *version, const char *text) {
  if (!version) version = "";
  if (*version && text) {
    if (schema_loaded(t, version, text) != 0) return;
  } else if (*version) {
    if (!cached(t, version)) return; /* dropped meanwhile: read it again */
    tc_log(TC_LOG_DEBUG, "tenant %s: schema %s read, unchanged (no text)", t->id, version);
  }
  t->head_version = strdup(version);
}

static void on_state(void *arg, int status, const char *version, const char *text) {
  tc_tenant_t *t = arg;
  learned(t, status);
  if (t->state == T_EXISTS) learn_head(t, version, text);
  pump(t);
}

/* Whether to load with tenant_state (plugin ABI 2.5): when the job waiting
 * wants the head schema, or the actor holds a head version (an unchanged
 * head then comes back without its text).  A job that wants no schema of a
 * tenant whose head the actor does not know (a Watch opened on a new tenant)
 * gets tenant_get, one statement too: the head's text would be read and
 * compiled for nothing. */
static int use_state(const tc_tenant_t *t) {
  const tc_backend_api_t *api = t->srv->api;
  const tc_job_t *j = t->head;
  if (api->struct_size < TC_BACKEND_API_V2_5_SIZE || !api->tenant_state) return 0;
  return t->head_version || (j->want_schema && !(j->schema_version && *j->schema_version));
}

/* Reads whether the tenant exists and, with tenant_state, its head schema in
 * the same round trip: one statement where tenant_get and then schema_read
 * were two, for every write to a tenant not written in the last second
 * (bench/README.md, "At scale"), and for the first write to a tenant.  The
 * head version the actor holds goes along (a call's inputs are borrowed for
 * the call only) and is unknown until the answer: tenant_state's sets it,
 * after tenant_get's the first job that wants it reads it. */
static void load(tc_tenant_t *t) {
  tc_server_t *srv = t->srv;
  const tc_backend_api_t *api = srv->api;
  int state = use_state(t);
  char *known = t->head_version;
  t->head_version = NULL;
  t->state = T_LOADING;
  t->busy = 1;
  int rc = state ? api->tenant_state(srv->backend, t->id, known, on_state, t)
                 : api->tenant_get(srv->backend, t->id, on_tenant, t);
  free(known);
  if (rc != 0) {
    t->state = T_UNKNOWN;
    t->busy = 0;
    fail_head(t, rc);
  }
}

/* An actor for a tenant that does not exist, with nothing to do, is dropped:
 * calls naming random tenant ids must not grow the server. */
static void evict_if_absent(tc_tenant_t *t) {
  if (t->head || t->busy || t->kicked || t->pumping || t->state != T_ABSENT) return;
  tc__idmap_remove(&t->srv->tenants, &t->link);
  clear_schemas(t);
  free(t->id);
  free(t);
}

static void pump(tc_tenant_t *t) {
  tc_server_t *srv = t->srv;
  t->pumping++;
  while (t->head && !t->busy) {
    tc_job_t *j = t->head;
    if ((t->state == T_EXISTS || t->state == T_ABSENT) &&
        uv_now(srv->loop) - t->learned_ms >= TENANT_FRESH_MS)
      t->state = T_UNKNOWN; /* read both again; compiled schemas stay cached */
    if (t->state == T_UNKNOWN) {
      load(t);
      continue;
    }
    if (t->state == T_ABSENT && !j->no_tenant_check) {
      fail_head(t, TC_ETENANT_NOT_FOUND);
      continue;
    }
    const tc_schema_t *schema = NULL;
    if (j->want_schema) {
      const char *version = j->schema_version ? j->schema_version : "";
      if (!*version && t->head_version) {
        if (!*t->head_version) {
          fail_head(t, TC_ESCHEMA_NOT_FOUND);
          continue;
        }
        version = t->head_version;
      }
      schema_entry_t *e = *version ? cached(t, version) : NULL;
      if (!e) {
        t->busy = 1;
        int rc = srv->api->schema_read(srv->backend, t->id, version, on_schema, t);
        if (rc != 0) {
          t->busy = 0;
          fail_head(t, rc);
        }
        continue;
      }
      schema = e->schema;
    }
    pop(t);
    if (j->barrier) t->busy = 1;
    j->run(j, 0, schema);
  }
  t->pumping--;
  evict_if_absent(t);
}

int tc_tenant_submit(tc_server_t *srv, const char *tenant_id, tc_job_t *job) {
  tc_tenant_t *t = get(srv, tenant_id);
  if (!t) return TC_ENOMEM;
  job->tenant = t;
  job->next = NULL;
  if (t->tail)
    t->tail->next = job;
  else
    t->head = job;
  t->tail = job;
  if (!t->kicked) {
    t->kicked = 1;
    tc_bridge_post(&srv->bridge, &t->kick);
  }
  return 0;
}

void tc_tenant_job_done(tc_job_t *job) {
  tc_tenant_t *t = job->tenant;
  t->busy = 0;
  pump(t);
}

void tc_tenant_set_exists(tc_server_t *srv, const char *tenant_id, int exists) {
  tc_tenant_t *t = find(srv, tenant_id);
  if (!t) return;
  if (!exists) clear_schemas(t);
  t->state = exists ? T_EXISTS : T_ABSENT;
  t->learned_ms = uv_now(srv->loop);
}

int tc_tenant_set_head_schema(tc_job_t *job, const char *version, tc_schema_t *s) {
  tc_tenant_t *t = job->tenant;
  int rc = cache_add(t, version, s);
  if (rc != 0) return rc;
  free(t->head_version);
  t->head_version = strdup(version);
  return t->head_version ? 0 : TC_ENOMEM;
}

void tc_tenant_free_all(tc_server_t *srv) {
  for (tc__idmap_link_t *l = tc__idmap_next(&srv->tenants, NULL), *next; l; l = next) {
    next = tc__idmap_next(&srv->tenants, l);
    tc_tenant_t *t = TC_CONTAINER_OF(l, tc_tenant_t, link);
    clear_schemas(t);
    free(t->id);
    free(t);
  }
  tc__idmap_free(&srv->tenants);
}
