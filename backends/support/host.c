/* The host's plugin ABI, checked at create() (tuplecast/support.h). */
#include "tuplecast/support.h"

/* The oldest server a plugin built with this library runs under: 2.1, whose
 * host API carries the ABI version and whose write batches carry the exact
 * deletes.  Later minors only appended calls a server may leave unused (2.2:
 * metrics, 2.3: ping, 2.4: read_feed, 2.5: tenant_state), so a plugin built against them still
 * runs under a 2.1 server. */
#define HOST_MIN_MINOR 1

int tc_host_check(const tc_host_api_t *host, const char *plugin, char **errmsg) {
  if (host->struct_size >= TC_HOST_API_V2_1_SIZE && host->abi_major == TC_BACKEND_ABI_MAJOR &&
      host->abi_minor >= HOST_MIN_MINOR)
    return 0;
  *errmsg = tc_format("backend plugin %s needs a server of plugin ABI %d.%d or later", plugin,
                      TC_BACKEND_ABI_MAJOR, HOST_MIN_MINOR);
  return TC_EPLUGIN;
}
