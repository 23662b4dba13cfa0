/* The write threads: requests that change the store are answered on a
 * pool of threads of their own, so that a durable write waiting for its
 * commit holds none of the HTTP threads, and the writes in flight at once
 * (up to the pool's size) share the library's commits.  The HTTP side
 * suspends the request's connection, hands it over, and sends the answer
 * once a write thread has made it and resumed the connection (http.c). */
#ifndef SRV_HTTP_WRITES_H
#define SRV_HTTP_WRITES_H

#include <stddef.h>

#define SRV_WRITE_THREADS 32        /* default: writes sharing a commit */
#define SRV_WRITE_THREADS_MAX 256

typedef struct srv_writes srv_writes;

/* One job: run(job) on a write thread. */
typedef struct srv_write_job {
	void (*run)(struct srv_write_job *job);
	struct srv_write_job *next;
} srv_write_job;

/* Start @p n (>= 1) write threads.  NULL with a message in err. */
srv_writes *srv_writes_start(unsigned n, char *err, size_t errlen);

/* Queue @p job, calling hold(ctx) first under the queue's lock, so that
 * no write thread runs the job before hold() returned.  Returns 0, or -1
 * when the pool is stopping (neither hold() nor the job is run: answer
 * on the caller's thread). */
int srv_writes_submit(srv_writes *w, srv_write_job *job, void (*hold)(void *ctx),
                      void *ctx);

/* Refuse new jobs, run those queued, join the threads, free.  NULL is a
 * no-op. */
void srv_writes_stop(srv_writes *w);

#endif
