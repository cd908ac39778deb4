#include "server_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tt_fx_t *tt_fx_new(void) {
  tt_fx_t *f = calloc(1, sizeof *f);
  f->dir = tc_temp_dir();
  f->db = malloc(strlen(f->dir) + 32);
  sprintf(f->db, "%s/tuplecast.db", f->dir);
  return f;
}

int tt_fx_start(tt_fx_t *f, const char *const *args) {
  if (tc_proc_start(&f->proc, args) != 0) return -1;
  f->client = tc_client_new(f->proc.target);
  return f->client ? 0 : -1;
}

int tt_fx_free(tt_fx_t *f) {
  if (!f) return 0;
  tc_client_free(f->client);
  int rc = tc_proc_stop(&f->proc, NULL);
  tc_temp_dir_remove(f->dir);
  free(f->db);
  free(f->dir);
  free(f);
  return rc;
}
