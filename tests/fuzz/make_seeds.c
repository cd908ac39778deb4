/* tt_fuzz_make_seeds <corpus dir>: the protobuf and HTTP seeds made from the
 * JSON ones.  Each request of corpus/json/ (a selector byte, then the JSON
 * text; responses, selector >= 0x80, are skipped) becomes, under the same
 * name, a fuzz_proto record in corpus/proto/ and a request on its route in
 * corpus/http/; "all" in each holds every one in name order, as one
 * sequence of calls and as one pipelined connection (less the Watch, which
 * would hold the connection).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "pbjson.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(1 << 20);
  *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  return buf;
}

static void put(const char *dir, const char *name, const void *a, size_t alen, FILE *all) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(a, 1, alen, f) != alen || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
  if (all) fwrite(a, 1, alen, all);
}

/* The route of m with its {param} replaced by the message's field. */
static char *target(const tc_method_t *m, const ProtobufCMessage *msg, int *method) {
  for (size_t i = 0; tc__http_route_at(i); i++) {
    const tc__http_route_t *r = tc__http_route_at(i);
    if (strcmp(r->rpc, m->path) != 0) continue;
    *method = r->method;
    const char *open = strchr(r->pattern, '{'), *close = open ? strchr(open, '}') : NULL;
    if (!open) return strdup(r->pattern);
    char field[64];
    snprintf(field, sizeof field, "%.*s", (int)(close - open - 1), open + 1);
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(m->input, field);
    const char *value = *(char *const *)((const char *)msg + fd->offset);
    char *out = malloc(strlen(r->pattern) + strlen(value) + 1);
    sprintf(out, "%.*s%s%s", (int)(open - r->pattern), r->pattern, value, close + 1);
    return out;
  }
  return NULL;
}

static void one(const char *root, const char *name, FILE *all_proto, FILE *all_http) {
  char path[4096], dir[4096];
  size_t len;
  snprintf(path, sizeof path, "%s/json/%s", root, name);
  char *text = slurp(path, &len);
  if (!text || len < 1 || (text[0] & 0x80)) {
    free(text);
    return;
  }
  size_t nm = 0;
  while (tc_method_at(nm)) nm++;
  const tc_method_t *m = tc_method_at((size_t)text[0] % nm);
  ProtobufCMessage *msg = NULL;
  char *err = NULL;
  if (tc_json_decode(m->input, text + 1, len - 1, &msg, &err) != 0) {
    fprintf(stderr, "%s: %s\n", path, err);
    exit(1);
  }
  size_t n = protobuf_c_message_get_packed_size(msg);
  unsigned char *rec = malloc(n + 3);
  rec[0] = (unsigned char)text[0];
  rec[1] = (unsigned char)(n & 0xff);
  rec[2] = (unsigned char)(n >> 8);
  protobuf_c_message_pack(msg, rec + 3);
  snprintf(dir, sizeof dir, "%s/proto", root);
  put(dir, name, rec, n + 3, all_proto);
  int method;
  char *url = target(m, msg, &method);
  size_t blen = method == HTTP_DELETE ? 0 : len - 1;
  char *req = malloc(len + 4096);
  int hlen = sprintf(req,
                     "%s %s HTTP/1.1\r\nHost: tuplecast\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     http_method_str(method), url, blen);
  memcpy(req + hlen, text + 1, blen);
  snprintf(dir, sizeof dir, "%s/http", root);
  /* A Watch holds its connection: the pipelined "all" leaves it out. */
  put(dir, name, req, (size_t)hlen + blen, m->server_streaming ? NULL : all_http);
  free(req);
  free(url);
  free(rec);
  protobuf_c_message_free_unpacked(msg, NULL);
  free(text);
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/json", argv[1]);
  struct dirent **names;
  int n = scandir(path, &names, NULL, by_name);
  if (n < 0) {
    perror(path);
    return 1;
  }
  snprintf(path, sizeof path, "%s/proto/all", argv[1]);
  FILE *all_proto = fopen(path, "wb");
  snprintf(path, sizeof path, "%s/http/all", argv[1]);
  FILE *all_http = fopen(path, "wb");
  if (!all_proto || !all_http) return 1;
  for (int i = 0; i < n; i++) {
    if (names[i]->d_name[0] != '.') one(argv[1], names[i]->d_name, all_proto, all_http);
    free(names[i]);
  }
  free(names);
  return fclose(all_proto) != 0 || fclose(all_http) != 0;
}
