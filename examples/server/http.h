/* The HTTP transport: libmicrohttpd on a small pool of epoll threads,
 * feeding each request to srv_route() (those that change the store on the
 * write threads of http_writes.c) and logging one line per request.
 * A reaper thread closes every connection that has not delivered its
 * request (headers and body) within the request deadline. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>

#include "auth.h"
#include "downloads.h"
#include "taskmgr.h"

/* Defaults and bounds of the transport (the command line may change the
 * first five). */
#define SRV_HTTP_CONNECTIONS 1024   /* connections at once */
#define SRV_HTTP_PER_IP 64          /* connections at once from one address */
#define SRV_HTTP_IDLE_S 30          /* idle connection timeout, seconds */
#define SRV_HTTP_DEADLINE_S 10      /* a request's headers and body, seconds */
#define SRV_HTTP_THREADS_MAX 256    /* HTTP threads (default: the CPUs, at least 2) */
#define SRV_HTTP_CONN_MEMORY 32768  /* per connection: request line + headers */
#define SRV_HTTP_PEM_MAX (1024 * 1024)  /* largest certificate or key file */

typedef struct srv_http srv_http;

typedef struct srv_http_config {
	const char *listen;        /* "HOST:PORT", "[V6]:PORT"; port 0: any free */
	unsigned idle_s;           /* close a connection idle this long */
	unsigned deadline_s;       /* ... or whose request takes longer */
	unsigned max_connections;  /* connections at once */
	unsigned per_ip;           /* at once from one address; 0: no limit */
	unsigned threads;          /* threads serving connections, >= 1 */
	unsigned write_threads;    /* threads answering writes; 0: the above */
	const char *tls_cert;      /* PEM files: HTTPS when both are set */
	const char *tls_key;
	int insecure_http;         /* plain HTTP on a non-loopback address */
} srv_http_config;

/* The number of HTTP threads when none is given: the CPUs, at least 2. */
unsigned srv_http_default_threads(void);

/* Listen and serve as @p cfg says: the task endpoints on @p tm, the
 * download endpoints of @p downloads, behind @p tokens (all borrowed until
 * srv_http_stop()).  Plain HTTP is refused on an address
 * other than loopback unless cfg->insecure_http.  On success *bound is the
 * address really listened on, in the --listen form.  Returns 0, or -1 with
 * a message in err. */
int srv_http_start(const srv_http_config *cfg, tm_manager *tm,
                   const srv_tokens *tokens, const srv_downloads *downloads,
                   srv_http **out, char *bound, size_t boundlen, char *err,
                   size_t errlen);

/* Stop listening, close connections, free.  NULL is a no-op. */
void srv_http_stop(srv_http *h);

#endif
