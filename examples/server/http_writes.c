/* The write threads (http_writes.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_writes.h"

struct srv_writes {
	pthread_mutex_t mu;
	pthread_cond_t more;
	srv_write_job *head, **tail;
	int stopping;
	unsigned n;              /* threads started */
	pthread_t threads[];
};

static void *write_thread(void *arg)
{
	srv_writes *w = arg;

	for (;;) {
		srv_write_job *job;

		pthread_mutex_lock(&w->mu);
		while (w->head == NULL && !w->stopping)
			pthread_cond_wait(&w->more, &w->mu);
		job = w->head;
		if (job) {
			w->head = job->next;
			if (w->head == NULL)
				w->tail = &w->head;
		}
		pthread_mutex_unlock(&w->mu);
		if (job == NULL) /* stopping, and nothing left */
			return NULL;
		job->run(job);
	}
}

srv_writes *srv_writes_start(unsigned n, char *err, size_t errlen)
{
	srv_writes *w = calloc(1, sizeof(*w) + n * sizeof(pthread_t));
	int rc;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->more, NULL);
	w->tail = &w->head;
	for (; w->n < n; w->n++) {
		rc = pthread_create(&w->threads[w->n], NULL, write_thread, w);
		if (rc) {
			snprintf(err, errlen, "cannot start write thread %u of %u: %s",
			         w->n + 1, n, strerror(rc));
			srv_writes_stop(w);
			return NULL;
		}
	}
	return w;
}

int srv_writes_submit(srv_writes *w, srv_write_job *job, void (*hold)(void *ctx),
                      void *ctx)
{
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		return -1;
	}
	hold(ctx);
	job->next = NULL;
	*w->tail = job;
	w->tail = &job->next;
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void srv_writes_stop(srv_writes *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->more);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	pthread_cond_destroy(&w->more);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
