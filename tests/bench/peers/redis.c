/* Redis as a list queue, over RESP: LPUSH to enqueue; BLMOVE to take, which
 * moves the job to an "active" list in the same write, so that a consumer
 * that dies leaves it there (the reliable-queue pattern of BullMQ and
 * others); LREM from the active list when done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"

const char *peer_name = "redis";

/* A command: an array of argc bulk strings, sent in one write. */
static void command(struct conn *c, int argc, const char *const *argv, const size_t *len)
{
	char buf[1024];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "*%d\r\n", argc);

	for (int i = 0; i < argc; i++) {
		if (n + len[i] + 32 > sizeof(buf))
			fail("command too long");
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "$%zu\r\n", len[i]);
		memcpy(buf + n, argv[i], len[i]);
		memcpy(buf + n + len[i], "\r\n", 2);
		n += len[i] + 2;
	}
	conn_send(c, buf, n);
}

/* An integer answer. */
static long long integer(struct conn *c)
{
	const char *line = conn_line(c);

	if (line[0] != ':')
		fail("expected an integer, got \"%s\"", line);
	return strtoll(line + 1, NULL, 10);
}

static void active(struct conn *c, char *key, size_t size)
{
	snprintf(key, size, "%s:active", c->queue);
}

void peer_init(struct conn *c)
{
	(void)c;
}

void peer_put(struct conn *c, const char *body, size_t len)
{
	const char *argv[] = { "LPUSH", c->queue, body };
	size_t lens[] = { 5, strlen(c->queue), len };

	command(c, 3, argv, lens);
	integer(c);
}

void peer_take(struct conn *c, struct job *j)
{
	char key[64];
	const char *argv[] = { "BLMOVE", c->queue, key, "RIGHT", "LEFT", "0" };
	size_t lens[] = { 6, strlen(c->queue), 0, 5, 4, 1 };
	const char *line;
	long long len;

	active(c, key, sizeof(key));
	lens[2] = strlen(key);
	command(c, 6, argv, lens);
	line = conn_line(c);
	len = line[0] == '$' ? strtoll(line + 1, NULL, 10) : -1;
	if (len < 0 || len > BODY_LEN)
		fail("expected a job, got \"%s\"", line);
	j->len = (size_t)len;
	conn_read(c, j->body, j->len);
	j->body[j->len] = '\0';
}

void peer_done(struct conn *c, const struct job *j)
{
	char key[64];
	const char *argv[] = { "LREM", key, "1", j->body };
	size_t lens[] = { 4, 0, 1, j->len };

	active(c, key, sizeof(key));
	lens[1] = strlen(key);
	command(c, 4, argv, lens);
	if (integer(c) != 1)
		fail("LREM removed no job");
}
