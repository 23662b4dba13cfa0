/* Signed download URLs of LOCAL tables: the signing endpoint and the
 * file endpoint (downloads.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "downloads.h"
#include "tables.h"

#define PREFIX "storage-signed-urls"
#define SEGS 4   /* storage-signed-urls, local-tables, RESOURCE, download|file */

enum dl_route { DL_NONE, DL_SIGN, DL_FILE };

/* ---- small parts --------------------------------------------------------- */

/* Seconds since the epoch, from the precise clock: time() may read a
 * coarse one, a tick behind what a client's clock already shows. */
static int64_t now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec;
}

/* A decimal integer of 1..15 digits, at most @p max. */
static int digits(const char *v, int64_t max, int64_t *out)
{
	int64_t x = 0;
	size_t n = strlen(v);

	if (n == 0 || n > 15 || strspn(v, "0123456789") != n)
		return -1;
	for (const char *p = v; *p; p++)
		x = x * 10 + (*p - '0');
	if (x > max)
		return -1;
	*out = x;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static const char *content_type(const char *name)
{
	if (ends_with(name, ".json"))
		return "application/json";
	if (ends_with(name, ".csv"))
		return "text/csv";
	if (ends_with(name, ".gz"))
		return "application/gzip";
	return "application/octet-stream";
}

/* The URL path form of a resource name: every byte but the unreserved
 * characters of RFC 3986 percent-encoded (out: 3 * strlen + 1 bytes). */
static void url_encode(const char *s, char *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			*out++ = (char)c;
		} else {
			*out++ = '%';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 15];
		}
	}
	*out = '\0';
}

static void wrong_data(srv_response *out, const char *message)
{
	srv_error(out, 400, 40, "WrongData", "WRONG_DATA_TYPE", message);
}

static void forbidden(srv_response *out, const char *message)
{
	srv_error(out, 403, 50, "ForbiddenError", "FORBIDDEN", message);
}

/* ---- the resource -------------------------------------------------------- */

/* Open the regular file @p name of the tables directory, without following
 * a symbolic link (a link there could point anywhere).  Non-blocking: a
 * FIFO planted there must not hang the thread.  TM_ERESOURCE_NOT_FOUND
 * for no such file, a link, or anything but a regular file. */
static int open_resource(const srv_downloads *d, const char *name, int *fd,
                         struct stat *st)
{
	int dirfd, err;

	*fd = -1;
	err = srv_tables_dir_open(d->tables_dir, &dirfd);
	if (err)
		return err;
	*fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
	             O_NOCTTY);
	err = errno;
	close(dirfd);
	if (*fd < 0 && (err == ENOENT || err == ELOOP || err == ENOTDIR ||
	                err == ENXIO))
		return tm_errorf(TM_ERESOURCE_NOT_FOUND, "no resource %s in the LOCAL "
		                 "tables", name);
	if (*fd < 0)
		return tm_errorf(TM_ESTORAGE, "cannot open %s: %s", name, strerror(err));
	if (fstat(*fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(*fd);
		*fd = -1;
		return tm_errorf(TM_ERESOURCE_NOT_FOUND, "resource %s is not a "
		                 "regular file", name);
	}
	return TM_OK;
}

/* ---- GET .../<resource>/download/ ---------------------------------------- */

static char *sign_answer(const srv_downloads *d, const char *resource,
                         int64_t expires)
{
	char sig[SRV_SIG_HEX + 1], *path, *url, *json = NULL;
	size_t n = 3 * strlen(resource) + 1;
	cJSON *j;

	if (srv_url_sign(d->key, resource, expires, sig) < 0)
		return NULL;
	path = malloc(n);
	url = malloc(n + 160);
	j = cJSON_CreateObject();
	if (path && url && j) {
		url_encode(resource, path);
		snprintf(url, n + 160, "/" PREFIX "/local-tables/%s/file/?expires=%"
		         PRId64 "&signature=%s", path, expires, sig);
		if (cJSON_AddStringToObject(j, "url", url) &&
		    cJSON_AddNumberToObject(j, "expires", (double)expires))
			json = cJSON_PrintUnformatted(j);
	}
	cJSON_Delete(j);
	free(url);
	free(path);
	return json;
}

static void sign(const srv_downloads *d, const char *resource,
                 const char *query, srv_response *out)
{
	char v[32];
	int64_t expires_in = SRV_DL_EXPIRES_MAX;
	struct stat st;
	int fd, rc = srv_query_get(query, "expires_in", v, sizeof(v)), err;

	if (rc == -2) {
		srv_lib_error(out, tm_errorf(TM_ENOMEM, "out of memory"));
		return;
	}
	if (rc < 0 || (rc == 1 && (digits(v, SRV_DL_EXPIRES_MAX, &expires_in) < 0 ||
	                           expires_in < 1))) {
		wrong_data(out, "expires_in must be an integer from 1 to 900 "
		           "(seconds)");
		return;
	}
	err = open_resource(d, resource, &fd, &st);
	if (err) {
		srv_lib_error(out, err);
		return;
	}
	close(fd);
	memset(out, 0, sizeof(*out));
	out->status = 200;
	out->body = sign_answer(d, resource, now_s() + expires_in);
}

/* ---- GET .../<resource>/file/?expires=&signature= ------------------------ */

/* attachment; filename="NAME", with '"' escaped: a name is printable
 * ASCII without '\\', so nothing else needs it. */
static void disposition(const char *name, char *out, size_t len)
{
	size_t o = (size_t)snprintf(out, len, "attachment; filename=\"");

	for (; *name && o + 4 < len; name++) {
		if (*name == '"')
			out[o++] = '\\';
		out[o++] = *name;
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void serve(const srv_downloads *d, const char *resource,
                  const char *query, srv_response *out)
{
	char e[32], sig[256];
	int64_t expires;
	struct stat st;
	srv_file *f;
	int fd, err, re = srv_query_get(query, "expires", e, sizeof(e));
	int rs = srv_query_get(query, "signature", sig, sizeof(sig));

	if (re == -2 || rs == -2) {
		srv_lib_error(out, tm_errorf(TM_ENOMEM, "out of memory"));
		return;
	}
	if (re != 1 || rs != 1 || digits(e, INT64_MAX, &expires) < 0) {
		forbidden(out, "a signed URL needs expires and signature, once each: "
		          "ask GET .../download/ for one");
		return;
	}
	switch (srv_url_verify(d->key, resource, expires, sig, now_s())) {
	case SRV_SIG_BAD:
		forbidden(out, "the signature does not match this resource and expiry");
		return;
	case SRV_SIG_EXPIRED:
		forbidden(out, "this signed URL has expired: ask GET .../download/ "
		          "for a new one");
		return;
	case SRV_SIG_OK:
		break;
	}
	err = open_resource(d, resource, &fd, &st);
	if (err) {
		srv_lib_error(out, err);
		return;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		close(fd);
		srv_lib_error(out, tm_errorf(TM_ENOMEM, "out of memory"));
		return;
	}
	f->fd = fd;
	f->size = (uint64_t)st.st_size;
	f->content_type = content_type(resource);
	disposition(resource, f->disposition, sizeof(f->disposition));
	memset(out, 0, sizeof(*out));
	out->status = 200;
	out->file = f;
}

/* ---- dispatch ------------------------------------------------------------ */

static enum dl_route match(const char **seg, int n, const char **resource)
{
	if (n != SEGS || strcmp(seg[0], PREFIX) != 0 ||
	    strcmp(seg[1], "local-tables") != 0)
		return DL_NONE;
	*resource = seg[2];
	if (strcmp(seg[3], "download") == 0)
		return DL_SIGN;
	if (strcmp(seg[3], "file") == 0)
		return DL_FILE;
	return DL_NONE;
}

int srv_downloads_path(const char *path)
{
	/* The first segment alone, decoded as every segment is; encoded, the
	 * prefix takes at most three bytes a character. */
	char first[3 * sizeof(PREFIX) + 2], buf[sizeof(first)];
	const char *seg[1];
	size_t n;

	if (path == NULL || path[0] != '/')
		return 0;
	n = strcspn(path + 1, "/");
	if (n + 2 > sizeof(first))
		return 0;
	memcpy(first, path, n + 1);
	first[n + 1] = '\0';
	return srv_path_split(first, buf, seg, 1) == 1 &&
	       strcmp(seg[0], PREFIX) == 0;
}

void srv_downloads_route(const srv_downloads *d, const srv_request *rq,
                         srv_response *out)
{
	const char *seg[SEGS], *resource = NULL;
	char *buf = malloc((rq->path ? strlen(rq->path) : 0) + 1);
	enum dl_route r = DL_NONE;
	int n, err;

	if (buf == NULL) {
		srv_lib_error(out, tm_errorf(TM_ENOMEM, "out of memory"));
		return;
	}
	n = srv_path_split(rq->path, buf, seg, SEGS);
	if (n > 0)
		r = match(seg, n, &resource);
	/* The file URL carries its own credential; everything else here is
	 * an endpoint like the task endpoints, behind a token. */
	if (r != DL_FILE && rq->role == NULL)
		srv_error(out, 401, 21, "AuthError", "UNAUTHORIZED",
		          "a valid 'Authorization: Bearer <token>' header is required");
	else if (r == DL_NONE)
		srv_error(out, 404, 60, "NotFoundError", "NOT_FOUND",
		          "no endpoint at this path");
	else if (rq->method == NULL || strcmp(rq->method, "GET") != 0) {
		srv_error(out, 405, 70, "MethodNotAllowed", "HTTP_METHOD_NOT_ALLOWED",
		          "this path does not accept this method");
		out->allow = "GET";
	} else if (r == DL_SIGN && !srv_role_allowed(rq->role))
		srv_error(out, 403, 50, "ForbiddenError", "FORBIDDEN",
		          "this endpoint admits the roles root, manager and backend");
	else if ((err = srv_table_name_check(resource, "resource")) != TM_OK)
		srv_lib_error(out, err);
	else if (r == DL_SIGN)
		sign(d, resource, rq->query, out);
	else
		serve(d, resource, rq->query, out);
	free(buf);
}
