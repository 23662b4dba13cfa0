/* Defences against hostile clients: the request deadline and its reaper
 * thread, the per-connection bookkeeping they need, and the checks on the
 * request headers made before any of the body is read (framing that could
 * smuggle a request, an announced oversize body). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "http_guard.h"
#include "router.h"

/* One connection, for the request deadline.  While a request is being
 * received (from the accept, or from the end of the previous request) the
 * connection is in its guard's list, oldest first. */
struct conn {
	struct conn *prev, *next;
	int fd;
	int listed;
	int cut;                /* closed by the deadline */
	double since;           /* the request began, monotonic seconds */
};

struct srv_guard {
	double deadline_s;
	pthread_mutex_t lock;   /* the list, and every struct conn's fields */
	pthread_cond_t wake;
	struct conn *head, *tail;
	pthread_t reaper;
	int reaping, stopping;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the request deadline ------------------------------------------------ */

/* The list operations hold g->lock. */
static void list_add(srv_guard *g, struct conn *c)
{
	c->next = NULL;
	c->prev = g->tail;
	if (g->tail)
		g->tail->next = c;
	else
		g->head = c;
	g->tail = c;
	c->listed = 1;
}

static void list_del(srv_guard *g, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		g->tail = c->prev;
	c->prev = c->next = NULL;
	c->listed = 0;
}

/* Take @p c off the list if it is on it. */
static void unlist(srv_guard *g, struct conn *c)
{
	pthread_mutex_lock(&g->lock);
	if (c->listed)
		list_del(g, c);
	pthread_mutex_unlock(&g->lock);
}

/* The reaper: shut down the socket of every connection whose request is
 * late, then sleep until the oldest one left is due.  libmicrohttpd sees
 * the connection end and closes it in its own thread.  The socket is still
 * open: srv_guard_on_connection() takes it off the list, under the same
 * lock, before libmicrohttpd closes it. */
static void *reap(void *arg)
{
	srv_guard *g = arg;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		double now = now_s(), due = now + g->deadline_s;
		struct timespec ts;

		while (g->head && g->head->since + g->deadline_s <= now) {
			struct conn *c = g->head;

			list_del(g, c);
			c->cut = 1;
			shutdown(c->fd, SHUT_RDWR);
		}
		if (g->head)
			due = g->head->since + g->deadline_s;
		ts.tv_sec = (time_t)due;
		ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

srv_guard *srv_guard_new(unsigned deadline_s, char *err, size_t errlen)
{
	srv_guard *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;

	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->deadline_s = deadline_s;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	/* The deadlines are monotonic, and so must the reaper's sleep be. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	g->reaping = pthread_create(&g->reaper, NULL, reap, g) == 0;
	if (!g->reaping) {
		srv_guard_free(g);
		snprintf(err, errlen, "cannot start a thread");
		return NULL;
	}
	return g;
}

void srv_guard_stop(srv_guard *g)
{
	if (!g->reaping)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->reaper, NULL);
	g->reaping = 0;
}

void srv_guard_free(srv_guard *g)
{
	if (g == NULL)
		return;
	srv_guard_stop(g);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->wake);
	free(g);
}

void srv_guard_on_connection(void *cls, struct MHD_Connection *mc,
                             void **socket_context,
                             enum MHD_ConnectionNotificationCode code)
{
	srv_guard *g = cls;
	struct conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (c == NULL)
			return;
		unlist(g, c);
		free(c);
		*socket_context = NULL;
		return;
	}
	{
		const union MHD_ConnectionInfo *i =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (i == NULL)
			return;
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			/* A connection without a deadline is not served. */
			shutdown(i->connect_fd, SHUT_RDWR);
			return;
		}
		c->fd = i->connect_fd;
	}
	c->since = now_s();
	pthread_mutex_lock(&g->lock);
	list_add(g, c);
	pthread_mutex_unlock(&g->lock);
	*socket_context = c;
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i ? i->socket_context : NULL;
}

void srv_guard_answered(srv_guard *g, struct MHD_Connection *mc)
{
	struct conn *c = conn_of(mc);

	if (c != NULL)
		unlist(g, c);
}

int srv_guard_next(srv_guard *g, struct MHD_Connection *mc)
{
	struct conn *c = conn_of(mc);
	int cut;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&g->lock);
	cut = c->cut;
	if (!cut) {
		if (c->listed)
			list_del(g, c);
		c->since = now_s();
		list_add(g, c);
	}
	pthread_mutex_unlock(&g->lock);
	return cut;
}

/* ---- request headers ------------------------------------------------------ */

/* The headers that matter, counted. */
struct heads {
	unsigned content_length, transfer_encoding, authorization;
	int chunked;               /* the one Transfer-Encoding is "chunked" */
	int auth_nul;              /* the Authorization value holds a NUL */
	const char *auth, *clen;
};

static int named(const char *key, size_t key_size, const char *name)
{
	return key_size == strlen(name) && strncasecmp(key, name, key_size) == 0;
}

static enum MHD_Result count_head(void *cls, enum MHD_ValueKind kind,
                                  const char *key, size_t key_size,
                                  const char *value, size_t value_size)
{
	struct heads *hd = cls;

	(void)kind;
	if (named(key, key_size, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		hd->content_length++;
		hd->clen = value;
	} else if (named(key, key_size, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		hd->transfer_encoding++;
		hd->chunked = value && strcasecmp(value, "chunked") == 0 &&
		              value_size == strlen(value);
	} else if (named(key, key_size, MHD_HTTP_HEADER_AUTHORIZATION)) {
		hd->authorization++;
		hd->auth = value;
		/* A C string would end at the NUL and hide what follows. */
		hd->auth_nul = value == NULL || value_size != strlen(value);
	}
	return MHD_YES;
}

/* Framing that two parsers could read two ways (request smuggling): more
 * than one Content-Length, Content-Length with Transfer-Encoding, or a
 * Transfer-Encoding other than one "chunked".  NULL when none. */
static const char *framing_problem(const struct heads *hd)
{
	if (hd->content_length > 1)
		return "the request has more than one Content-Length header";
	if (hd->content_length && hd->transfer_encoding)
		return "the request has both Content-Length and Transfer-Encoding";
	if (hd->transfer_encoding > 1 || (hd->transfer_encoding && !hd->chunked))
		return "the only Transfer-Encoding accepted is one 'chunked'";
	return NULL;
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

static int has_body(const struct heads *hd)
{
	return hd->transfer_encoding ||
	       (hd->clen && strspn(hd->clen, "0") != strlen(hd->clen));
}

void srv_guard_heads(struct MHD_Connection *mc, srv_heads *out)
{
	struct heads hd;

	memset(&hd, 0, sizeof(hd));
	MHD_get_connection_values_n(mc, MHD_HEADER_KIND, count_head, &hd);
	out->problem = framing_problem(&hd);
	/* One Authorization header, with no NUL in it. */
	out->auth = hd.authorization == 1 && !hd.auth_nul ? hd.auth : NULL;
	out->too_large = content_length_over(hd.clen);
	out->has_body = has_body(&hd);
}
