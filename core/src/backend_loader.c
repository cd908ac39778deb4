#include "backend_loader.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <string.h>

#include "format.h"

static int fail(void *dl, char **errmsg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats before unloading: the arguments may point into the plugin. */
static int fail(void *dl, char **errmsg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  *errmsg = tc_vformat(fmt, ap);
  va_end(ap);
  if (dl) dlclose(dl);
  return TC_EPLUGIN;
}

int tc_plugin_load(const char *path, tc_plugin_t *out, char **errmsg) {
  *errmsg = NULL;
  out->dl = NULL;
  out->api = NULL;
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) return fail(NULL, errmsg, "backend plugin %s: cannot load: %s", path, dlerror());

  /* POSIX allows converting dlsym's object pointer to a function pointer. */
  tc_backend_entry_fn entry;
  *(void **)&entry = dlsym(dl, TC_BACKEND_ENTRY_SYMBOL);
  if (!entry)
    return fail(dl, errmsg,
                "backend plugin %s: expected entry symbol %s (ABI major %d), found none", path,
                TC_BACKEND_ENTRY_SYMBOL, TC_BACKEND_ABI_MAJOR);

  const tc_backend_api_t *api = entry();
  if (!api) return fail(dl, errmsg, "backend plugin %s: entry returned no table", path);
  if (api->magic != TC_BACKEND_MAGIC)
    return fail(dl, errmsg, "backend plugin %s: expected magic 0x%08x, found 0x%08x", path,
                TC_BACKEND_MAGIC, api->magic);
  if (api->abi_major != TC_BACKEND_ABI_MAJOR)
    return fail(dl, errmsg, "backend plugin %s: expected ABI major %d, found %u", path,
                TC_BACKEND_ABI_MAJOR, api->abi_major);
  if (api->struct_size < TC_BACKEND_API_V2_SIZE)
    return fail(dl, errmsg,
                "backend plugin %s: expected function table of at least %zu bytes, found %u", path,
                (size_t)TC_BACKEND_API_V2_SIZE, api->struct_size);
  const char *fp = api->build_fingerprint ? api->build_fingerprint : "(none)";
  if (strcmp(fp, TC_BACKEND_FINGERPRINT) != 0)
    return fail(dl, errmsg, "backend plugin %s: expected build fingerprint %s, found %s", path,
                TC_BACKEND_FINGERPRINT, fp);

  out->dl = dl;
  out->api = api;
  return 0;
}

void tc_plugin_unload(tc_plugin_t *p) {
  if (p->dl) dlclose(p->dl);
  p->dl = NULL;
  p->api = NULL;
}
