/* beanstalkd's text protocol (doc/protocol.txt in its sources): put to
 * enqueue, reserve to take, delete when done.  The connection uses and
 * watches one tube, the measurement's queue. */
#include <stdio.h>
#include <string.h>

#include "peer.h"

const char *peer_name = "beanstalkd";

static void expect(struct conn *c, const char *answer)
{
	const char *line = conn_line(c);

	if (strncmp(line, answer, strlen(answer)) != 0)
		fail("expected %s, got \"%s\"", answer, line);
}

void peer_init(struct conn *c)
{
	char cmd[200];
	int n = snprintf(cmd, sizeof(cmd), "use %s\r\nwatch %s\r\nignore default\r\n",
	                 c->queue, c->queue);

	conn_send(c, cmd, (size_t)n);
	expect(c, "USING ");
	expect(c, "WATCHING ");
	expect(c, "WATCHING ");
}

/* Priority 1024, no delay, 60 s to run: the usual defaults of clients. */
void peer_put(struct conn *c, const char *body, size_t len)
{
	char cmd[64 + BODY_LEN + 2];
	int n = snprintf(cmd, 64, "put 1024 0 60 %zu\r\n", len);

	memcpy(cmd + n, body, len);
	memcpy(cmd + n + len, "\r\n", 2);
	conn_send(c, cmd, (size_t)n + len + 2);
	expect(c, "INSERTED ");
}

void peer_take(struct conn *c, struct job *j)
{
	const char *line;

	conn_send(c, "reserve\r\n", 9);
	line = conn_line(c);
	if (sscanf(line, "RESERVED %llu %zu", &j->id, &j->len) != 2 || j->len > BODY_LEN)
		fail("expected RESERVED, got \"%s\"", line);
	conn_read(c, j->body, j->len);
	j->body[j->len] = '\0';
}

void peer_done(struct conn *c, const struct job *j)
{
	char cmd[64];
	int n = snprintf(cmd, sizeof(cmd), "delete %llu\r\n", j->id);

	conn_send(c, cmd, (size_t)n);
	expect(c, "DELETED");
}
