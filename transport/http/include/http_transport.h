/* The HTTP/JSON gateway as the server core knows it: one tc_transport_t
 * (transport.h) that the process assembly hands to tc_server_open().
 * It serves server.http.* (enabled, port, TLS, CORS, max_connections,
 * header_timeout) on server.host; off when server.http.enabled is false.
 *
 * Threading: loop thread only.
 * Ownership: the table is static; instances belong to the server.
 */
#ifndef TC_HTTP_TRANSPORT_H
#define TC_HTTP_TRANSPORT_H

#include "transport.h"

extern const tc_transport_t tc_http_transport;

#endif
