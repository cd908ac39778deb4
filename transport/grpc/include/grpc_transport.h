/* The gRPC transport as the server core knows it: one tc_transport_t
 * (transport.h) that the process assembly hands to tc_server_open().
 * It serves server.grpc.* (port, TLS, max_connections, handshake_timeout,
 * max_message_size) on every address, as Permify's gRPC does.
 *
 * Threading: loop thread only (the transport's own poller thread is inside).
 * Ownership: the table is static; instances belong to the server.
 */
#ifndef TC_GRPC_TRANSPORT_H
#define TC_GRPC_TRANSPORT_H

#include "transport.h"

extern const tc_transport_t tc_grpc_transport;

#endif
