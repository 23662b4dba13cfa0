/* libmicrohttpd glue: the daemon (its options, start and stop) and each
 * request from its request line to its answer: the token's role, the
 * body, the call to router.c, which decides everything the API says, or
 * for /dashboard the file dashboard.c picks, or for a download downloads.c.
 * Requests that change the store are answered on the write threads
 * (http_writes.c).  The defences against hostile clients are in
 * http_guard.c, the access log in http_log.c, the listening address and
 * TLS files in http_listen.c. */
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "dashboard.h"
#include "downloads.h"
#include "http.h"
#include "http_guard.h"
#include "http_listen.h"
#include "http_log.h"
#include "http_writes.h"
#include "router.h"

struct srv_http {
	struct MHD_Daemon *d;
	tm_manager *tm;
	const srv_tokens *tokens;
	const srv_downloads *downloads;
	srv_guard *guard;
	srv_writes *writes;   /* NULL: writes on the HTTP threads */
	srv_tls tls;
};

/* One request, from its request line to its completion. */
struct req {
	char *target;         /* raw request target, path and query */
	struct timespec t0;
	int started;          /* headers seen */
	int answered;
	const char *role;
	char *body;
	size_t len, cap;
	int too_large;
	int status;
	size_t method_len;    /* the method's length, even when cut */
	char method[SRV_LOG_METHOD + 1];
	/* Handed to a write thread: the connection is suspended until it
	 * has made rs (ready) and resumed it. */
	int offloaded, ready;
	srv_write_job job;
	struct srv_http *h;
	struct MHD_Connection *c;
	srv_response rs;
};

/* ---- a request's life ------------------------------------------------------ */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req *r = calloc(1, sizeof(*r));

	(void)cls;
	(void)c;
	if (r == NULL)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	r->target = strdup(uri ? uri : "");
	if (r->target == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct srv_http *h = cls;
	struct req *r = *con_cls;
	int cut = srv_guard_next(h->guard, c);

	if (r == NULL)
		return;
	srv_log_request(r->method, r->method_len, r->target, &r->t0, r->status,
	                toe, cut);
	free(r->body);
	free(r->target);
	free(r);
	*con_cls = NULL;
}

/* ---- answers ------------------------------------------------------------------ */

static enum MHD_Result send_body(struct MHD_Connection *c, int status,
                                 const char *body, const char *type,
                                 const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t n = strlen(body);
	char *text = malloc(n + 2);

	/* A newline ends every answer, as a terminal expects. */
	if (text == NULL)
		return MHD_NO;
	memcpy(text, body, n);
	if (n == 0 || body[n - 1] != '\n')
		text[n++] = '\n';
	text[n] = '\0';
	resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        type ? type : "application/json");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A download: libmicrohttpd streams the file from its descriptor
 * (sendfile() on plain HTTP), never holding it in memory. */
static enum MHD_Result send_file(struct MHD_Connection *c, srv_file *f)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_fd64(f->size, f->fd);
	if (resp == NULL)
		return MHD_NO;   /* the descriptor is still ours, closed by the caller */
	f->fd = -1;          /* now libmicrohttpd's, closed with the response */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->content_type);
	MHD_add_response_header(resp, "Content-Disposition", f->disposition);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* The URL is a credential for a while: no cache keeps the file. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Send @p rs (freed) as the answer of @p r. */
static enum MHD_Result reply(struct srv_http *h, struct MHD_Connection *c,
                             struct req *r, srv_response *rs)
{
	enum MHD_Result ret;

	r->answered = 1;
	r->status = rs->file ? 200 : rs->body ? rs->status : 500;
	srv_guard_answered(h->guard, c);
	if (rs->file)
		ret = send_file(c, rs->file);
	else
		ret = send_body(c, r->status, rs->body ? rs->body : SRV_OOM_BODY,
		                rs->body ? rs->content_type : NULL, rs->allow);
	srv_response_free(rs);
	return ret;
}

static void request_done(char *q)
{
	if (q)
		*q = '?';
}

/* Cut the query off @p target while the path alone is looked at; put it
 * back with request_done(). */
static char *cut_query(char *target)
{
	char *q = strchr(target, '?');

	if (q)
		*q = '\0';
	return q;
}

static int is_dashboard(char *target)
{
	char *q = cut_query(target);
	int owns = srv_dashboard_owns(target);

	request_done(q);
	return owns;
}

/* Headers of every answer under /dashboard (doc/dashboard.md). */
static void dashboard_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", SRV_DASHBOARD_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}

/* A file of the dashboard, or the redirect of /dashboard to /dashboard/;
 * libmicrohttpd leaves the body out for HEAD. */
static enum MHD_Result send_static(struct MHD_Connection *c, int status,
                                   const srv_asset *a)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(a ? a->len : 0,
	                                       a ? (void *)a->data : (void *)"",
	                                       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	dashboard_headers(resp);
	if (a)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
	else
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
		                        SRV_DASHBOARD_ROOT);
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A request for the dashboard: no token needed, the files hold no data. */
static enum MHD_Result answer_dashboard(struct srv_http *h,
                                        struct MHD_Connection *c, struct req *r)
{
	const srv_asset *a;
	srv_response rs;
	char *q = cut_query(r->target);
	int status = srv_dashboard_route(r->method, r->target, &a, &rs);

	request_done(q);
	if (status != 200 && status != 301)
		return reply(h, c, r, &rs);
	r->answered = 1;
	r->status = status;
	srv_guard_answered(h->guard, c);
	return send_static(c, status, a);
}

/* The router's view of @p r; the target's '?' is cut while it is used:
 * call request_done() after. */
static char *request_of(struct req *r, srv_request *rq)
{
	char *q = cut_query(r->target);

	memset(rq, 0, sizeof(*rq));
	rq->method = r->method;
	rq->query = q ? q + 1 : NULL;
	rq->path = r->target;
	rq->body = r->body;
	rq->body_len = r->len;
	rq->body_too_large = r->too_large;
	rq->role = r->role;
	return q;
}

static enum MHD_Result answer(struct srv_http *h, struct MHD_Connection *c,
                              struct req *r)
{
	srv_request rq;
	srv_response rs;
	char *q = request_of(r, &rq);

	if (srv_downloads_path(rq.path))
		srv_downloads_route(h->downloads, &rq, &rs);
	else
		srv_route(h->tm, &rq, &rs);
	request_done(q);
	return reply(h, c, r, &rs);
}

static int refused_before_body(struct req *r)
{
	srv_request rq;
	char *q = request_of(r, &rq);
	int refused = srv_route_refuses(&rq);

	request_done(q);
	return refused;
}

static int is_download(struct req *r)
{
	srv_request rq;
	char *q = request_of(r, &rq);
	int is = srv_downloads_path(rq.path);

	request_done(q);
	return is;
}

/* ---- writes, on the write threads ---------------------------------------------- */

static int changes_store(struct req *r)
{
	return strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
	       !is_download(r);
}

static void hold_connection(void *ctx)
{
	struct req *r = ctx;

	MHD_suspend_connection(r->c);
}

/* On a write thread: make the answer, then let libmicrohttpd call
 * on_request() again to send it. */
static void write_job(srv_write_job *job)
{
	struct req *r = (struct req *)(void *)((char *)job - offsetof(struct req, job));
	srv_request rq;
	char *q = request_of(r, &rq);

	srv_route(r->h->tm, &rq, &r->rs);
	request_done(q);
	r->ready = 1;
	MHD_resume_connection(r->c);
}

static enum MHD_Result offload(struct srv_http *h, struct MHD_Connection *c,
                               struct req *r)
{
	r->h = h;
	r->c = c;
	r->job.run = write_job;
	r->offloaded = 1;
	if (srv_writes_submit(h->writes, &r->job, hold_connection, r) == 0)
		return MHD_YES;
	r->offloaded = 0; /* stopping: answer here */
	return answer(h, c, r);
}

/* ---- the request --------------------------------------------------------------- */

static void take(struct req *r, const char *data, size_t n)
{
	if (r->too_large)
		return;
	if (n > SRV_BODY_MAX - r->len) {
		/* Over the limit: keep reading to the end, storing nothing. */
		r->too_large = 1;
		free(r->body);
		r->body = NULL;
		r->len = r->cap = 0;
		return;
	}
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *b;

		while (cap < r->len + n)
			cap *= 2;
		if (cap > SRV_BODY_MAX)
			cap = SRV_BODY_MAX;
		b = realloc(r->body, cap);
		if (b == NULL) {
			r->too_large = 1;   /* refused the same way */
			free(r->body);
			r->body = NULL;
			r->len = r->cap = 0;
			return;
		}
		r->body = b;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
}

/* The first call, once the headers are in and before any of the body is
 * read: whatever can be decided without the body is answered now, and
 * libmicrohttpd then closes the connection without reading the body.
 * No download endpoint reads a body: one sent to them is never read. */
static enum MHD_Result first_call(struct srv_http *h, struct MHD_Connection *c,
                                  struct req *r, const char *method)
{
	srv_heads hd;

	r->started = 1;
	r->method_len = strlen(method);
	snprintf(r->method, sizeof(r->method), "%s", method);
	srv_guard_heads(c, &hd);
	if (hd.problem) {
		srv_response rs;

		srv_error(&rs, 400, 40, "WrongData", "WRONG_DATA_TYPE", hd.problem);
		return reply(h, c, r, &rs);
	}
	if (is_dashboard(r->target)) {
		/* No token needed.  A body the files do not take is refused now,
		 * unread; else the answer comes in the last call, so that the
		 * connection stays open for the page's next file. */
		return hd.has_body || hd.too_large ? answer_dashboard(h, c, r) : MHD_YES;
	}
	if (hd.auth)
		r->role = srv_tokens_role(h->tokens, hd.auth);
	if (hd.has_body && is_download(r))
		return answer(h, c, r);
	if (hd.too_large) {
		/* An announced oversize body: refused before any of it is read. */
		r->too_large = 1;
		return answer(h, c, r);
	}
	if (hd.has_body && refused_before_body(r))
		return answer(h, c, r);
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct srv_http *h = cls;
	struct req *r = *con_cls;

	(void)url;     /* already unescaped by MHD: the router wants it raw */
	(void)version;
	if (r == NULL)
		return send_body(c, 500, SRV_OOM_BODY, NULL, NULL);
	if (r->answered) {
		*upload_size = 0;   /* a body after an early answer: drop it */
		return MHD_YES;
	}
	if (!r->started)
		return first_call(h, c, r, method);
	if (*upload_size) {
		take(r, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->offloaded) /* called again once resumed */
		return r->ready ? reply(h, c, r, &r->rs) : MHD_YES;
	if (is_dashboard(r->target))
		return answer_dashboard(h, c, r);
	if (h->writes && changes_store(r))
		return offload(h, c, r);
	return answer(h, c, r);
}

/* ---- the daemon ------------------------------------------------------------------ */

/* The CPUs, at least 2.  A durable write holds its thread for its commit,
 * and writes in flight at once share one commit, so a server that mostly
 * triggers does better with more (doc/http.md, --http-threads). */
unsigned srv_http_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		return 2;
	return n > SRV_HTTP_THREADS_MAX ? SRV_HTTP_THREADS_MAX : (unsigned)n;
}

static void free_http(srv_http *h)
{
	srv_writes_stop(h->writes);
	srv_guard_free(h->guard);
	srv_listen_tls_free(&h->tls);
	free(h);
}

static struct MHD_Daemon *start_daemon(const srv_http_config *cfg, srv_http *h,
                                       const struct sockaddr *sa)
{
	struct MHD_OptionItem more[5];
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
	                 MHD_ALLOW_SUSPEND_RESUME;
	size_t n = 0;

	if (sa->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (cfg->threads > 1)
		more[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE,
		                                     (intptr_t)cfg->threads, NULL };
	if (cfg->per_ip)
		more[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		                                     (intptr_t)cfg->per_ip, NULL };
	if (h->tls.cert) {
		flags |= MHD_USE_TLS;
		more[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
		                                     h->tls.cert };
		more[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
		                                     h->tls.key };
	}
	more[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
		/* First, so that every message of MHD goes through it. */
		MHD_OPTION_EXTERNAL_LOGGER, srv_log_mhd, (void *)h,
		MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_HTTP_CONN_MEMORY,
		MHD_OPTION_NOTIFY_CONNECTION, srv_guard_on_connection,
		(void *)h->guard,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)h,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)h,
		MHD_OPTION_ARRAY, more,
		MHD_OPTION_END);
}

int srv_http_start(const srv_http_config *cfg, tm_manager *tm,
                   const srv_tokens *tokens, const srv_downloads *downloads,
                   srv_http **out, char *bound, size_t boundlen, char *err,
                   size_t errlen)
{
	struct addrinfo *ai;
	srv_http *h;

	*out = NULL;
	if (srv_listen_resolve(cfg->listen, &ai, err, errlen) < 0)
		return -1;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	h->tm = tm;
	h->tokens = tokens;
	h->downloads = downloads;
	if (srv_listen_tls(cfg, ai->ai_addr, &h->tls, err, errlen) < 0 ||
	    (h->guard = srv_guard_new(cfg->deadline_s, err, errlen)) == NULL ||
	    (cfg->write_threads > 0 &&
	     (h->writes = srv_writes_start(cfg->write_threads, err, errlen)) == NULL)) {
		freeaddrinfo(ai);
		free_http(h);
		return -1;
	}
	h->d = start_daemon(cfg, h, ai->ai_addr);
	freeaddrinfo(ai);
	if (h->d == NULL) {
		snprintf(err, errlen, "cannot listen on %s (address in use or not "
		         "available, or a bad TLS certificate or key?)", cfg->listen);
		free_http(h);
		return -1;
	}
	srv_listen_bound(h->d, bound, boundlen);
	*out = h;
	return 0;
}

void srv_http_stop(srv_http *h)
{
	if (h == NULL)
		return;
	/* The reaper first: it must not shut down a socket that
	 * MHD_stop_daemon() is closing. */
	srv_guard_stop(h->guard);
	/* Every suspended connection resumed before the daemon stops. */
	srv_writes_stop(h->writes);
	h->writes = NULL;
	MHD_stop_daemon(h->d);
	free_http(h);
}
