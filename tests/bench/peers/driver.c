/* peer-beanstalkd, peer-redis: tm-bench's trigger, e2e and latency workload
 * against a queue server on 127.0.0.1, one connection per thread.
 *
 *   peer-NAME PORT JOBS SAMPLES
 *
 * enqueue_1   JOBS jobs from 1 producer, each acknowledged before the next
 * enqueue_8   JOBS jobs from 8 producers at once
 * e2e         JOBS jobs from 8 producers while 2 consumers take each and
 *             mark it done: from the first enqueue until the last is done
 * latency     SAMPLES jobs one at a time, each enqueued once the last is
 *             done: from before the enqueue to the consumer holding the job
 *
 * Each figure is a line "name value" on stdout (jobs/s, or ms for the
 * latency's p50 and p99).  Each measurement has a queue of its own. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../clock.h"
#include "peer.h"

#define PRODUCERS 8
#define CONSUMERS 2

static int port;

void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "peer-%s: ", peer_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- a buffered connection ------------------------------------------------ */

static void conn_open(struct conn *c, const char *queue)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		fail("connect to 127.0.0.1:%d: %s", port, strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->queue = queue;
	c->r = c->w = 0;
	peer_init(c);
}

void conn_send(struct conn *c, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			fail("send: %s", strerror(errno));
		p = (const char *)p + k;
		n -= (size_t)k;
	}
}

/* More bytes into c->in, moved to its start first. */
static void fill(struct conn *c)
{
	ssize_t k;

	if (c->r > 0) {
		memmove(c->in, c->in + c->r, c->w - c->r);
		c->w -= c->r;
		c->r = 0;
	}
	if (c->w == sizeof(c->in))
		fail("answer longer than %zu bytes", sizeof(c->in));
	do
		k = recv(c->fd, c->in + c->w, sizeof(c->in) - c->w, 0);
	while (k < 0 && errno == EINTR);
	if (k <= 0)
		fail("recv: %s", k == 0 ? "connection closed" : strerror(errno));
	c->w += (size_t)k;
}

char *conn_line(struct conn *c)
{
	char *line, *end;

	while ((end = memmem(c->in + c->r, c->w - c->r, "\r\n", 2)) == NULL)
		fill(c);
	line = c->in + c->r;
	*end = '\0';
	c->r = (size_t)(end + 2 - c->in);
	return line;
}

void conn_read(struct conn *c, void *p, size_t n)
{
	while (n > 0) {
		size_t k = c->w - c->r < n ? c->w - c->r : n;

		if (k == 0) {
			fill(c);
			continue;
		}
		memcpy(p, c->in + c->r, k);
		c->r += k;
		p = (char *)p + k;
		n -= k;
	}
	if (*conn_line(c) != '\0')
		fail("no CRLF after the data");
}

/* ---- jobs --------------------------------------------------------------- */

/* The body of tm-bench's trigger (a reco_export with a refresh token, 272
 * bytes) after a 32-byte stamp "ENQUEUE_NS SEQ ", padded to BODY_LEN. */
static const char *trigger_body =
	"{\"context_task\": {\"input_table\": {\"connection\": \"LOCAL\", \"name\": "
	"\"input-myfile.csv.gz\"}, \"reco_params\": {\"amt\": 7, \"filters\": "
	"[\"price:eq:10\", \"tags:in:family,fiction\"]}, \"output_table\": "
	"{\"connection\": \"LOCAL\", \"name\": \"output-reco.parquet\"}}, "
	"\"refresh_token\": \"mW+k/K...\"}";

static atomic_long seq; /* makes every body unique (Redis removes by value) */

static void make_body(char *b)
{
	char stamp[40];

	snprintf(stamp, sizeof(stamp), "%020lld %010ld ", (long long)now_ns(),
	         atomic_fetch_add(&seq, 1));
	memset(b, ' ', BODY_LEN);
	memcpy(b, stamp, 32);
	memcpy(b + 32, trigger_body, strlen(trigger_body));
}

/* ---- enqueue and end to end ----------------------------------------------- */

struct worker {
	pthread_t t;
	struct conn c;
	long n; /* jobs to enqueue (producers) */
};

static atomic_long claimed; /* jobs the consumers have taken or will take */
static long e2e_total;

static void *produce(void *arg)
{
	struct worker *w = arg;
	char body[BODY_LEN];

	for (long i = 0; i < w->n; i++) {
		make_body(body);
		peer_put(&w->c, body, BODY_LEN);
	}
	return NULL;
}

static void *consume(void *arg)
{
	struct worker *w = arg;
	struct job j;

	while (atomic_fetch_add(&claimed, 1) < e2e_total) {
		peer_take(&w->c, &j);
		peer_done(&w->c, &j);
	}
	return NULL;
}

/* Jobs/s of producers enqueueing total jobs, with consumers taking them
 * (0: none) until all are done.  Connections are opened before the clock. */
static double run(const char *queue, int producers, int consumers, long total)
{
	struct worker w[PRODUCERS + CONSUMERS];
	int n = producers + consumers;
	double t0;

	for (int i = 0; i < n; i++) {
		conn_open(&w[i].c, queue);
		w[i].n = total / producers + (i < total % producers);
	}
	atomic_store(&claimed, 0);
	e2e_total = total;
	t0 = now_s();
	for (int i = 0; i < n; i++)
		pthread_create(&w[i].t, NULL, i < producers ? produce : consume, &w[i]);
	for (int i = 0; i < n; i++)
		pthread_join(w[i].t, NULL);
	t0 = now_s() - t0;
	for (int i = 0; i < n; i++)
		close(w[i].c.fd);
	return total / t0;
}

/* ---- latency -------------------------------------------------------------- */

static int64_t *lat_ns;
static long samples;
static atomic_long finished; /* jobs the consumer has done */

static void *stamp_consumer(void *arg)
{
	struct worker *w = arg;
	struct job j;

	for (long i = 0; i < samples; i++) {
		peer_take(&w->c, &j);
		lat_ns[i] = now_ns() - strtoll(j.body, NULL, 10);
		peer_done(&w->c, &j);
		atomic_store(&finished, i + 1);
	}
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void latency(void)
{
	struct worker prod, cons;
	struct timespec tiny = { 0, 20000 };
	char body[BODY_LEN];

	lat_ns = calloc((size_t)samples, sizeof(*lat_ns));
	conn_open(&prod.c, "latency");
	conn_open(&cons.c, "latency");
	pthread_create(&cons.t, NULL, stamp_consumer, &cons);
	for (long i = 0; i < samples; i++) {
		make_body(body);
		peer_put(&prod.c, body, BODY_LEN);
		while (atomic_load(&finished) <= i)
			nanosleep(&tiny, NULL);
	}
	pthread_join(cons.t, NULL);
	qsort(lat_ns, (size_t)samples, sizeof(*lat_ns), cmp64);
	printf("latency_p50_ms %.3f\n", lat_ns[samples / 2] / 1e6);
	printf("latency_p99_ms %.3f\n", lat_ns[samples * 99 / 100] / 1e6);
}

int main(int argc, char **argv)
{
	long jobs;

	if (argc != 4 || (port = atoi(argv[1])) <= 0 || (jobs = atol(argv[2])) <= 0 ||
	    (samples = atol(argv[3])) <= 0) {
		fprintf(stderr, "usage: peer-%s PORT JOBS SAMPLES\n", peer_name);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("enqueue_1 %.1f\n", run("enqueue-1", 1, 0, jobs));
	printf("enqueue_8 %.1f\n", run("enqueue-8", PRODUCERS, 0, jobs));
	printf("e2e %.1f\n", run("e2e", PRODUCERS, CONSUMERS, jobs));
	latency();
	return 0;
}
