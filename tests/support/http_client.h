/* Raw-socket helpers for tests that speak HTTP (or any bytes) to the server
 * on loopback: open a connection to a port and send a buffer whole.  Both
 * fail the running cmocka test (assert) on any error.
 *
 * Threading: no shared state; call from any thread (cmocka assertions belong
 * on the test's own thread).  Ownership: tt_http_connect returns a socket the
 * caller closes; tt_send_all borrows data.
 */
#ifndef TT_HTTP_CLIENT_H
#define TT_HTTP_CLIENT_H

#include <stddef.h>

/* A TCP connection to 127.0.0.1:port. */
int tt_http_connect(int port);
/* Sends len bytes of data on fd, looping over short sends. */
void tt_send_all(int fd, const char *data, size_t len);

#endif
