/* Defences against hostile clients that libmicrohttpd lacks: a deadline on
 * each request's headers and body, kept by a reaper thread over a list of
 * the connections still receiving, and the framing and size checks made on
 * the headers before any of the body is read.  http.c wires them in. */
#ifndef SRV_HTTP_GUARD_H
#define SRV_HTTP_GUARD_H

#include <stddef.h>

#include <microhttpd.h>

typedef struct srv_guard srv_guard;

/* A guard closing every connection whose request takes longer than
 * @p deadline_s, with its reaper thread running.  Returns NULL with a
 * message in err. */
srv_guard *srv_guard_new(unsigned deadline_s, char *err, size_t errlen);

/* Stop the reaper thread.  Before MHD_stop_daemon(): the reaper must not
 * shut down a socket that libmicrohttpd is closing.  Idempotent. */
void srv_guard_stop(srv_guard *g);

/* Stop the reaper if it runs, and free.  After MHD_stop_daemon(), which
 * still reports the connections it closes.  NULL is a no-op. */
void srv_guard_free(srv_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION, with the guard as @p cls: a new connection
 * starts its first request's deadline, a closed one leaves the list. */
void srv_guard_on_connection(void *cls, struct MHD_Connection *mc,
                             void **socket_context,
                             enum MHD_ConnectionNotificationCode code);

/* The request on @p mc is answered: its deadline no longer runs. */
void srv_guard_answered(srv_guard *g, struct MHD_Connection *mc);

/* The request on @p mc ended: the next one's deadline starts now.  Returns
 * whether the deadline cut this one. */
int srv_guard_next(srv_guard *g, struct MHD_Connection *mc);

/* What the request headers of @p mc say, read once they are all in. */
typedef struct srv_heads {
	const char *problem;  /* framing two parsers could read two ways, or NULL */
	const char *auth;     /* the one Authorization value, without NUL; or NULL */
	int too_large;        /* Content-Length announces over SRV_BODY_MAX */
	int has_body;         /* Transfer-Encoding, or a Content-Length above 0 */
} srv_heads;

void srv_guard_heads(struct MHD_Connection *mc, srv_heads *out);

#endif
