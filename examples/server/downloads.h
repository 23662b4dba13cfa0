/* The download endpoints: signed, expiring URLs of the files in the LOCAL
 * tables directory (doc/http.md, "Downloads").
 *
 *   GET /storage-signed-urls/local-tables/<resource>/download/?expires_in=S
 *       a token of root, manager or backend: {"url": ..., "expires": ...}
 *   GET /storage-signed-urls/local-tables/<resource>/file/?expires=&signature=
 *       no token, the signature is the credential: the file itself
 *
 * A pure function of the request, the key, the clock and the directory,
 * as srv_route() is, so it is tested without sockets. */
#ifndef SRV_DOWNLOADS_H
#define SRV_DOWNLOADS_H

#include "router.h"
#include "urlsign.h"

/* Lifetime of a signed URL: expires_in is 1..this, and this by default. */
#define SRV_DL_EXPIRES_MAX 900

typedef struct srv_downloads {
	const char *tables_dir;
	unsigned char key[SRV_KEY_LEN];
} srv_downloads;

/* Whether @p path (raw, as in srv_request) is one for
 * srv_downloads_route(): its first segment is "storage-signed-urls". */
int srv_downloads_path(const char *path);

/* Answer a request to a path under /storage-signed-urls/.  The checks, in
 * order: 401 (no token, except for .../file/), 404 (unknown path), 405
 * (not GET), 403 (a role other than root, manager, backend), 400 (a bad
 * resource name or expires_in), 403 (.../file/: a missing, wrong or
 * expired signature), 404 RESOURCE_NOT_FOUND (no regular file of that
 * name).  A file answer is out->file with out->body NULL.  Thread-safe. */
void srv_downloads_route(const srv_downloads *d, const srv_request *rq,
                         srv_response *out);

#endif
