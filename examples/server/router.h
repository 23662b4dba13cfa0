/* The router: one HTTP request of the Background Tasks REST API in, one
 * status and JSON body out.  A pure function of its inputs and the store, with
 * no sockets, so it can be unit-tested and fuzzed; http.c feeds it. */
#ifndef SRV_ROUTER_H
#define SRV_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "taskmgr.h"

/* Largest request body accepted, in bytes. */
#define SRV_BODY_MAX (1024u * 1024u)
/* Deepest nesting of arrays and objects accepted in a request body. */
#define SRV_JSON_DEPTH_MAX 32

typedef struct srv_request {
	const char *method;  /* "GET", "POST", ... (case-sensitive) */
	const char *path;    /* raw, still percent-encoded, starts with '/' */
	const char *query;   /* raw text after '?', or NULL */
	const char *body;    /* body bytes (need not be NUL-terminated), or NULL */
	size_t body_len;
	int body_too_large;  /* the transport dropped a body over SRV_BODY_MAX */
	const char *role;    /* role of the bearer token; NULL: missing or unknown */
} srv_request;

/* A file answered instead of a JSON body (downloads.c). */
typedef struct srv_file {
	int fd;                    /* open for reading; -1 once handed over */
	uint64_t size;
	const char *content_type;  /* static */
	char disposition[512];     /* the Content-Disposition value */
} srv_file;

typedef struct srv_response {
	int status;          /* HTTP status */
	char *body;          /* JSON text (or content_type's); free with
	                      * srv_response_free() */
	const char *content_type; /* NULL: application/json */
	const char *allow;   /* for 405: value of the Allow header; else NULL */
	srv_file *file;      /* 200 with this file (body NULL), or NULL */
} srv_response;

/* Answer one request to the task endpoints (/tasks/...; the download
 * endpoints are downloads.c's).  Always fills @p out; out->body is NULL
 * only when memory ran out, and the caller then sends SRV_OOM_BODY with
 * status 500.  Thread-safe (as the tm_* calls are). */
void srv_route(tm_manager *tm, const srv_request *rq, srv_response *out);

/* 1 when srv_route() refuses @p rq whatever its body holds: 401, 404, 405
 * or 403.  The transport then answers before reading any of the body.
 * 0 otherwise, and when memory ran out. */
int srv_route_refuses(const srv_request *rq);

/* Free the body, close and free the file. */
void srv_response_free(srv_response *r);

/* Fill @p out with an error body: status, the REST API's error_code and class,
 * the error_data.name and a message (sanitised to printable ASCII). */
void srv_error(srv_response *out, int status, int code, const char *cls,
               const char *name, const char *message);

/* Fill @p out with the error body of a library error (TM_E*), its message
 * from tm_last_error(): WrongData and DuplicatedError are 400, NotFoundError
 * 404, anything else 500 ServerError. */
void srv_lib_error(srv_response *out, int err);

/* Whether @p role may use the task endpoints (root, manager, backend). */
int srv_role_allowed(const char *role);

/* Percent-decode s[0..n) into out (at least n + 1 bytes); '+' is a space
 * when @p plus_space.  Returns the length, or -1 for a bad escape or a NUL. */
long srv_pct_decode(const char *s, size_t n, char *out, int plus_space);

/* Split a raw path into at most @p max percent-decoded segments stored in
 * @p buf (strlen(path) + 1 bytes), as every endpoint reads its path: one
 * trailing slash is allowed, empty segments are not, a segment decoded
 * to a NUL byte cannot match.  Returns the number of segments, or -1. */
int srv_path_split(const char *path, char *buf, const char **seg, int max);

/* The value of the query parameter @p key in @p query (NULL: none), keys
 * and values percent-decoded with '+' a space, as for page and amt, into
 * @p out (outlen bytes).  Returns 1 when given once, 0 when absent, -1 when
 * given twice, badly escaped or longer than outlen - 1 bytes, -2 when
 * memory ran out. */
int srv_query_get(const char *query, const char *key, char *out,
                  size_t outlen);

/* Check a request body before it reaches the library: valid UTF-8, no NUL
 * byte, nesting at most SRV_JSON_DEPTH_MAX.  Returns NULL when acceptable,
 * else a static message. */
const char *srv_body_problem(const char *body, size_t len);

#define SRV_OOM_BODY "{\"error_code\":0,\"error_name\":\"ServerError\"," \
	"\"message\":\"out of memory\",\"error_data\":{\"name\":\"OUT_OF_MEMORY\"}}"

#endif
