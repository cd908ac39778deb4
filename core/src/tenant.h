/* Tenant actors: one per tenant this node has seen.
 *
 * An actor runs the jobs for its tenant in mailbox order.  Before a job runs
 * the actor makes sure it knows whether the tenant exists and, when the job
 * asks for one, has the compiled schema of the version it names ("" = head).
 * What it learned of the tenant (exists, head version) is read again after a
 * second: other nodes on the same database change tenants and schemas too.
 * A barrier job (schema write, tenant delete) holds the mailbox until it
 * calls tc_tenant_job_done(), so later jobs see its effect.  Jobs that do
 * not hold the mailbox still reach the backend in mailbox order, which keeps
 * writes in submission order.
 *
 * Ownership: the server owns the actors; a job is owned by whoever submitted
 * it and must stay valid until its run() was called (and, for a barrier,
 * until it called tc_tenant_job_done()).
 */
#ifndef TC_TENANT_H
#define TC_TENANT_H

#include "schema.h"
#include "server_state.h"

typedef struct tc_job_s tc_job_t;
/* status: 0, or TC_ETENANT_NOT_FOUND / TC_ESCHEMA_NOT_FOUND / TC_EDATASTORE
 * when the tenant or the schema could not be had.  schema is set when the
 * job asked for one and status is 0; borrowed for the duration of run(). */
typedef void (*tc_job_fn)(tc_job_t *job, int status, const tc_schema_t *schema);

struct tc_job_s {
  tc_job_t *next;
  tc_tenant_t *tenant;
  tc_job_fn run;
  int want_schema;            /* load the schema named by schema_version */
  const char *schema_version; /* "" or NULL = head */
  int barrier;
  int no_tenant_check; /* run even if the tenant does not exist */
};

/* Queue job on the actor of tenant_id (created on demand).  run() is called
 * on a later loop turn, never from inside this call. */
int tc_tenant_submit(tc_server_t *srv, const char *tenant_id, tc_job_t *job);
/* A barrier job is finished: let the mailbox move on. */
void tc_tenant_job_done(tc_job_t *job);

/* Actor state updates made by barrier jobs and tenancy calls. */
void tc_tenant_set_exists(tc_server_t *srv, const char *tenant_id, int exists);
/* Records a newly written schema as the tenant's head; takes ownership of s. */
int tc_tenant_set_head_schema(tc_job_t *job, const char *version, tc_schema_t *s);

void tc_tenant_free_all(tc_server_t *srv);

#endif
