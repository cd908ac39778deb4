/* The host's plugin ABI, checked at create() (tuplecast/support.h). */
#include "tuplecast/support.h"

/* The oldest server minor a plugin of this header runs under: 2.1 changed
 * the write batch; 2.2 only appended read_feed, which a 2.1 server never
 * calls. */
#define NEEDS_MINOR 1

int tc_host_check(const tc_host_api_t *host, const char *plugin, char **errmsg) {
  if (host->struct_size >= TC_HOST_API_V2_1_SIZE && host->abi_major == TC_BACKEND_ABI_MAJOR &&
      host->abi_minor >= NEEDS_MINOR)
    return 0;
  *errmsg = tc_format("backend plugin %s needs a server of plugin ABI %d.%d or later", plugin,
                      TC_BACKEND_ABI_MAJOR, NEEDS_MINOR);
  return TC_EPLUGIN;
}
