/* libmicrohttpd glue: request bodies, the Authorization header, the access
 * log.  Everything the API decides is in router.c. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "http.h"
#include "router.h"

struct srv_http {
	struct MHD_Daemon *d;
	tm_manager *tm;
	const srv_tokens *tokens;
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
	char method[16];
};

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

/* The access log line: method, target, status, microseconds.  A request
 * libmicrohttpd refused by itself (headers too large, bad HTTP) or that the
 * client abandoned has no status of ours: "-" and why it ended. */
static void log_request(const struct req *r, enum MHD_RequestTerminationCode toe)
{
	static const char *const why[] = { "completed", "error", "timeout",
	                                   "shutdown", "read error", "client abort" };
	struct timespec t1;
	char target[201];
	size_t i;
	long long us;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (long long)(t1.tv_sec - r->t0.tv_sec) * 1000000 +
	     (t1.tv_nsec - r->t0.tv_nsec) / 1000;
	for (i = 0; r->target[i] && i < sizeof(target) - 1; i++) {
		unsigned char c = (unsigned char)r->target[i];
		target[i] = c > 0x20 && c < 0x7f ? (char)c : '?';
	}
	target[i] = '\0';
	if (r->status)
		fprintf(stderr, "%s %s %d %lldus\n", r->method[0] ? r->method : "-",
		        target, r->status, us);
	else
		fprintf(stderr, "%s %s - %lldus (%s)\n", r->method[0] ? r->method : "-",
		        target, us, (unsigned)toe < 6 ? why[toe] : "closed");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)c;
	if (r == NULL)
		return;
	log_request(r, toe);
	free(r->body);
	free(r->target);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("libmicrohttpd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status,
                                 const char *body, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t n = strlen(body);
	char *text = malloc(n + 2);

	/* A newline ends every answer, as a terminal expects. */
	if (text == NULL)
		return MHD_NO;
	memcpy(text, body, n);
	text[n] = '\n';
	text[n + 1] = '\0';
	resp = MHD_create_response_from_buffer(n + 1, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "application/json");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result answer(struct srv_http *h, struct MHD_Connection *c,
                              struct req *r)
{
	srv_request rq;
	srv_response rs;
	char *q = strchr(r->target, '?');
	enum MHD_Result ret;

	memset(&rq, 0, sizeof(rq));
	rq.method = r->method;
	rq.query = q ? q + 1 : NULL;
	if (q)
		*q = '\0';   /* the target now holds the path only */
	rq.path = r->target;
	rq.body = r->body;
	rq.body_len = r->len;
	rq.body_too_large = r->too_large;
	rq.role = r->role;
	srv_route(h->tm, &rq, &rs);
	if (q)
		*q = '?';
	r->answered = 1;
	r->status = rs.body ? rs.status : 500;
	ret = send_json(c, r->status, rs.body ? rs.body : SRV_OOM_BODY, rs.allow);
	srv_response_free(&rs);
	return ret;
}

static int content_length_over(const char *v)
{
	unsigned long long n = 0;

	if (v == NULL)
		return 0;
	for (; *v >= '0' && *v <= '9'; v++) {
		n = n * 10 + (unsigned)(*v - '0');
		if (n > SRV_BODY_MAX)
			return 1;
	}
	return 0;
}

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
		return send_json(c, 500, SRV_OOM_BODY, NULL);
	if (r->answered) {
		*upload_size = 0;   /* a body after an early answer: drop it */
		return MHD_YES;
	}
	if (!r->started) {
		r->started = 1;
		snprintf(r->method, sizeof(r->method), "%s", method);
		r->role = srv_tokens_role(h->tokens,
		                          MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                  MHD_HTTP_HEADER_AUTHORIZATION));
		/* Refuse an announced oversize body before reading any of it. */
		if (content_length_over(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                        MHD_HTTP_HEADER_CONTENT_LENGTH))) {
			r->too_large = 1;
			return answer(h, c, r);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		take(r, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	return answer(h, c, r);
}

/* "HOST:PORT" or "[HOST]:PORT" into host and port. */
static int split_listen(const char *s, char *host, size_t hlen, char *port,
                        size_t plen)
{
	const char *colon;
	size_t n;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - s - 1);
		s++;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hlen || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= plen || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* The address the listening socket really has, as "HOST:PORT". */
static void bound_address(struct MHD_Daemon *d, char *out, size_t len)
{
	const union MHD_DaemonInfo *fdi = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	out[0] = '\0';
	if (fdi == NULL || getsockname(fdi->listen_fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	}
}

int srv_http_start(const char *listen, tm_manager *tm, const srv_tokens *tokens,
                   unsigned idle_s, srv_http **out, char *bound, size_t boundlen,
                   char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	char host[256], port[8];
	srv_http *h;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
	                 MHD_USE_ERROR_LOG;
	int rc;

	*out = NULL;
	if (split_listen(listen, host, sizeof(host), port, sizeof(port)) < 0 ||
	    atoi(port) > 65535) {
		snprintf(err, errlen, "--listen wants HOST:PORT, not '%s'", listen);
		return -1;
	}
	memset(&hints, 0, sizeof(hints)); /* ai_family 0: IPv4 or IPv6 */
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "--listen %s: %s", listen, gai_strerror(rc));
		return -1;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	h->tm = tm;
	h->tokens = tokens;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
		/* First, so that every message of MHD goes through it. */
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)h,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)SRV_HTTP_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, idle_s ? idle_s : (unsigned)SRV_HTTP_IDLE_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_HTTP_CONN_MEMORY,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)h,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)h,
		MHD_OPTION_END);
	freeaddrinfo(ai);
	if (h->d == NULL) {
		snprintf(err, errlen, "cannot listen on %s (address in use or not "
		         "available?)", listen);
		free(h);
		return -1;
	}
	bound_address(h->d, bound, boundlen);
	*out = h;
	return 0;
}

void srv_http_stop(srv_http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
