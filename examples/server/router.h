/* The router: one HTTP request of the Background Tasks REST API in, one
 * status and JSON body out.  A pure function of its inputs and the store, with
 * no sockets, so it can be unit-tested and fuzzed; http.c feeds it. */
#ifndef SRV_ROUTER_H
#define SRV_ROUTER_H

#include <stddef.h>

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

typedef struct srv_response {
	int status;          /* HTTP status */
	char *body;          /* JSON text (or content_type's); free with
	                      * srv_response_free() */
	const char *content_type; /* NULL: application/json */
	const char *allow;   /* for 405: value of the Allow header; else NULL */
} srv_response;

/* Answer one request.  Always fills @p out; out->body is NULL only when
 * memory ran out, and the caller then sends SRV_OOM_BODY with status 500.
 * Thread-safe (as the tm_* calls are). */
void srv_route(tm_manager *tm, const srv_request *rq, srv_response *out);

/* 1 when srv_route() refuses @p rq whatever its body holds: 401, 404, 405
 * or 403.  The transport then answers before reading any of the body.
 * 0 otherwise, and when memory ran out. */
int srv_route_refuses(const srv_request *rq);

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

/* Check a request body before it reaches the library: valid UTF-8, no NUL
 * byte, nesting at most SRV_JSON_DEPTH_MAX.  Returns NULL when acceptable,
 * else a static message. */
const char *srv_body_problem(const char *body, size_t len);

#define SRV_OOM_BODY "{\"error_code\":0,\"error_name\":\"ServerError\"," \
	"\"message\":\"out of memory\",\"error_data\":{\"name\":\"OUT_OF_MEMORY\"}}"

#endif
