/* The runtime: the only module that creates threads.  It starts the
 * workers (worker.c) and the supervisor (supervisor.c), and stops them at
 * tm_close().  doc/runtime.md tells the whole story. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "retention.h"
#include "running.h"
#include "runtime.h"
#include "supervisor.h"
#include "worker.h"

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int tm__runtime_start(tm_manager *tm)
{
	struct tm__runtime *rt = calloc(1, sizeof(*rt));
	unsigned n = tm->opts.workers;

	if (rt == NULL)
		return tm__error_oom();
	rt->workers = calloc(n ? n : 1, sizeof(*rt->workers));
	rt->detached = calloc(n ? n : 1, sizeof(*rt->detached));
	if (rt->workers == NULL || rt->detached == NULL) {
		free(rt->workers);
		free(rt->detached);
		free(rt);
		return tm__error_oom();
	}
	pthread_mutex_init(&rt->mu, NULL);
	cond_init(&rt->work);
	cond_init(&rt->idle);
	tm->rt = rt;
	tm__retention_start(tm); /* before any write: the bound by count */
	if (pthread_create(&rt->supervisor, NULL, tm__supervisor_main, tm) != 0)
		goto fail;
	rt->sup_started = true;
	for (; rt->n_workers < n; rt->n_workers++)
		if (pthread_create(&rt->workers[rt->n_workers], NULL, tm__worker_main, tm) != 0)
			goto fail;
	return TM_OK;
fail:
	tm__runtime_stop(tm);
	return tm_errorf(TM_ENOMEM, "cannot start the runtime's threads");
}

/* Past the grace period: every job still on the list becomes tm_close()'s
 * (abandoned, under its lock, so its worker touches nothing more), and
 * comes off the list with a reference for the caller. */
static tm_job **abandon_running(struct tm__runtime *rt, size_t *n)
{
	tm_job **out;
	size_t k = 0;

	for (tm_job *j = rt->running; j; j = j->next)
		k++;
	out = malloc((k ? k : 1) * sizeof(*out));
	*n = 0;
	if (out == NULL)
		return NULL;
	while (rt->running) {
		tm_job *j = rt->running;

		rt->running = j->next;
		pthread_mutex_lock(&j->mu);
		j->abandoned = true;
		pthread_mutex_unlock(&j->mu);
		tm__job_ref(j); /* the worker keeps its own until it lets go */
		out[(*n)++] = j;
	}
	return out;
}

void tm__runtime_stop(tm_manager *tm)
{
	struct tm__runtime *rt = tm->rt;
	tm_job **jobs;
	size_t n;
	struct timespec ts;

	if (rt == NULL)
		return;
	deadline_in(&ts, tm->opts.grace_ms);
	pthread_mutex_lock(&rt->mu);
	rt->stopping = true;
	for (tm_job *j = rt->running; j; j = j->next)
		atomic_fetch_or(&j->stop, TM__STOP_CLOSE);
	pthread_cond_broadcast(&rt->work);
	while (rt->running &&
	       pthread_cond_timedwait(&rt->idle, &rt->mu, &ts) != ETIMEDOUT)
		;
	jobs = abandon_running(rt, &n);
	pthread_mutex_unlock(&rt->mu);

	/* Write what the abandoned runs came to (requeued unless they
	 * returned), then let go of the workers still inside a handler: they
	 * will find their job abandoned and touch nothing else.  A worker
	 * whose jobs had all returned is only writing: wait for it. */
	if (n > 0 && tm__worker_write_abandoned(tm, jobs, n) == TM_OK)
		tm__store_wake(tm->store, false); /* another process may take them now */
	for (size_t i = 0; i < n; i++) {
		for (unsigned w = 0; w < rt->n_workers; w++) {
			if (!rt->detached[w] && !jobs[i]->returned &&
			    pthread_equal(rt->workers[w], jobs[i]->thread)) {
				pthread_detach(rt->workers[w]);
				rt->detached[w] = true;
			}
		}
	}
	tm__running_unref_all(jobs, n);
	for (unsigned w = 0; w < rt->n_workers; w++)
		if (!rt->detached[w])
			pthread_join(rt->workers[w], NULL);
	if (rt->sup_started) {
		atomic_store(&rt->sup_stop, true);
		tm__store_wake(tm->store, true);
		pthread_join(rt->supervisor, NULL);
	}
	pthread_mutex_destroy(&rt->mu);
	pthread_cond_destroy(&rt->work);
	pthread_cond_destroy(&rt->idle);
	free(rt->workers);
	free(rt->detached);
	free(rt);
	tm->rt = NULL;
}
