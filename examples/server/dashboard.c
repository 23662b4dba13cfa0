/* Which file of the dashboard a request asks for.  The names are compared
 * as they came, not percent-decoded: the files have plain names, and
 * nothing but an exact name of the table is ever served. */
#include <string.h>

#include "dashboard.h"

#define PREFIX "/dashboard"

int srv_dashboard_owns(const char *path)
{
	size_t n = strlen(PREFIX);

	return path && strncmp(path, PREFIX, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/');
}

static const srv_asset *find(const char *name)
{
	for (size_t i = 0; i < srv_dashboard_n_assets; i++)
		if (strcmp(srv_dashboard_assets[i].name, name) == 0)
			return &srv_dashboard_assets[i];
	return NULL;
}

static int get_or_head(const char *method)
{
	return method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
}

/* As the REST API orders its checks: an unknown path is 404 whatever the
 * method, a known one with another method 405. */
int srv_dashboard_route(const char *method, const char *path,
                        const srv_asset **asset, srv_response *err)
{
	const char *name = path + strlen(PREFIX);
	const srv_asset *a = NULL;

	*asset = NULL;
	memset(err, 0, sizeof(*err));
	if (*name == '/') {
		name++;
		a = find(*name ? name : "index.html");
		if (a == NULL) {
			srv_error(err, 404, 60, "NotFoundError", "NOT_FOUND",
			          "no file of the dashboard at this path");
			return 404;
		}
	}
	if (!get_or_head(method)) {
		srv_error(err, 405, 70, "MethodNotAllowed", "HTTP_METHOD_NOT_ALLOWED",
		          "the dashboard's files take GET and HEAD");
		err->allow = "GET, HEAD";
		return 405;
	}
	if (a == NULL)
		return 301;   /* /dashboard: the page's relative links need the slash */
	*asset = a;
	return 200;
}
