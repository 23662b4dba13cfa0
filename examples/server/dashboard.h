/* The web dashboard at /dashboard/: static HTML, CSS and JavaScript
 * compiled into the binary (dashboard/embed.py makes the table at build
 * time).  The files hold no data and need no token; every figure the page
 * shows comes from the REST API, with the token the user types. */
#ifndef SRV_DASHBOARD_H
#define SRV_DASHBOARD_H

#include <stddef.h>

#include "router.h"

typedef struct srv_asset {
	const char *name;           /* "index.html": the last path segment */
	const char *type;           /* the Content-Type */
	const unsigned char *data;
	size_t len;
} srv_asset;

/* Generated: every file of examples/server/dashboard/ but embed.py. */
extern const srv_asset srv_dashboard_assets[];
extern const size_t srv_dashboard_n_assets;

/* Sent with every answer under /dashboard: the page may load scripts,
 * styles and images from this server only, talk to this server only,
 * run no inline script or style, and not be framed. */
#define SRV_DASHBOARD_CSP "default-src 'none'; script-src 'self'; " \
	"style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

#define SRV_DASHBOARD_ROOT "/dashboard/"

/* 1 when @p path (without its query) is /dashboard or under /dashboard/:
 * the dashboard answers it, not the REST API. */
int srv_dashboard_owns(const char *path);

/* The answer to @p method on @p path (one srv_dashboard_owns() accepts):
 * 200 with *asset (GET or HEAD of a file; /dashboard/ is index.html);
 * 301 to SRV_DASHBOARD_ROOT for /dashboard; else 404 or 405 (Allow:
 * GET, HEAD) with the REST API's error body in @p err. */
int srv_dashboard_route(const char *method, const char *path,
                        const srv_asset **asset, srv_response *err);

#endif
