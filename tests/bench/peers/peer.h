/* The queue servers' side of tm-bench's workload (driver.c runs it): one
 * file per protocol (beanstalkd.c, redis.c) implements the four calls
 * below over a connection that driver.c opens and buffers.  Every call
 * returns once the server has answered; an unexpected answer ends the
 * process through fail(). */
#ifndef TM_PEER_H
#define TM_PEER_H

#include <stddef.h>

#define BODY_LEN 400 /* bytes of each job's body */

/* One TCP connection to the server, for one thread. */
struct conn {
	int fd;
	const char *queue;   /* the beanstalkd tube, the Redis list */
	size_t r, w;         /* in[r..w) is read but not yet taken */
	char in[16384];
};

/* A job as the consumer took it. */
struct job {
	unsigned long long id; /* beanstalkd's job id (unused by Redis) */
	size_t len;
	char body[BODY_LEN + 1];
};

/* In beanstalkd.c or redis.c. */
extern const char *peer_name;
void peer_init(struct conn *c);                         /* after connecting */
void peer_put(struct conn *c, const char *body, size_t len); /* enqueue */
void peer_take(struct conn *c, struct job *j);          /* block for a job */
void peer_done(struct conn *c, const struct job *j);    /* the job is done */

/* In driver.c. */
void fail(const char *fmt, ...);
void conn_send(struct conn *c, const void *p, size_t n);
char *conn_line(struct conn *c);              /* next line, CRLF cut off */
void conn_read(struct conn *c, void *p, size_t n); /* n bytes, then a CRLF */

#endif
