/* The HTTP transport: libmicrohttpd, one thread per connection, feeding
 * each request to srv_route() and logging one line per request. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>

#include "auth.h"
#include "taskmgr.h"

/* Bounds of the transport. */
#define SRV_HTTP_CONNECTIONS 64     /* connections at once */
#define SRV_HTTP_IDLE_S 30          /* default idle connection timeout, seconds */
#define SRV_HTTP_CONN_MEMORY 32768  /* per connection: request line + headers */

typedef struct srv_http srv_http;

/* Listen on @p listen ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one)
 * and serve, closing a connection idle for @p idle_s seconds (0: the
 * default SRV_HTTP_IDLE_S).  On success *bound is the address really
 * listened on, in the same form.  Returns 0, or -1 with a message in err. */
int srv_http_start(const char *listen, tm_manager *tm, const srv_tokens *tokens,
                   unsigned idle_s, srv_http **out, char *bound, size_t boundlen,
                   char *err, size_t errlen);

/* Stop listening, close connections, free.  NULL is a no-op. */
void srv_http_stop(srv_http *h);

#endif
