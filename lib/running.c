/* The jobs running in this process, and the signals that reach them: wake
 * the workers, stop a handler, announce work to other processes. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "running.h"

void tm__running_add(struct tm__runtime *rt, tm_job *job)
{
	job->next = rt->running;
	rt->running = job;
}

void tm__running_remove(struct tm__runtime *rt, tm_job *job)
{
	for (tm_job **pp = &rt->running; *pp; pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			break;
		}
	}
	pthread_cond_broadcast(&rt->idle);
}

void tm__running_claiming(struct tm__runtime *rt, struct tm__claiming *claim,
                          uint64_t token)
{
	claim->token = token;
	claim->next = rt->claiming;
	rt->claiming = claim;
}

void tm__running_claimed(struct tm__runtime *rt, struct tm__claiming *claim)
{
	for (struct tm__claiming **pp = &rt->claiming; *pp; pp = &(*pp)->next) {
		if (*pp == claim) {
			*pp = claim->next;
			break;
		}
	}
}

int tm__running_owners(tm_manager *tm, uint64_t **owners, size_t *n)
{
	struct tm__runtime *rt = tm->rt;
	uint64_t *o = NULL;
	size_t k = 0;

	pthread_mutex_lock(&rt->mu);
	for (tm_job *j = rt->running; j; j = j->next)
		k++;
	for (struct tm__claiming *c = rt->claiming; c; c = c->next)
		k++;
	if (k > 0 && (o = malloc(k * sizeof(*o))) != NULL) {
		k = 0;
		for (tm_job *j = rt->running; j; j = j->next)
			o[k++] = j->owner;
		for (struct tm__claiming *c = rt->claiming; c; c = c->next)
			o[k++] = c->token;
	}
	pthread_mutex_unlock(&rt->mu);
	*owners = o;
	*n = o ? k : 0;
	return k > 0 && o == NULL ? tm__error_oom() : TM_OK;
}

static int by_id(const void *a, const void *b)
{
	return strcmp((*(tm_job *const *)a)->id, (*(tm_job *const *)b)->id);
}

void tm__running_sort(tm_job **jobs, size_t n)
{
	if (n > 1)
		qsort(jobs, n, sizeof(*jobs), by_id);
}

tm_job **tm__running_snapshot(tm_manager *tm, size_t *n)
{
	struct tm__runtime *rt = tm->rt;
	tm_job **jobs = NULL;
	size_t k = 0;

	pthread_mutex_lock(&rt->mu);
	for (tm_job *j = rt->running; j; j = j->next)
		k++;
	if (k > 0 && (jobs = malloc(k * sizeof(*jobs))) != NULL) {
		k = 0;
		for (tm_job *j = rt->running; j; j = j->next) {
			tm__job_ref(j);
			jobs[k++] = j;
		}
	}
	pthread_mutex_unlock(&rt->mu);
	*n = jobs ? k : 0;
	tm__running_sort(jobs, *n);
	return jobs;
}

void tm__running_unref_all(tm_job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tm__job_unref(jobs[i]);
	free(jobs);
}

void tm__running_stop(tm_manager *tm, const char *id, int bits)
{
	struct tm__runtime *rt = tm->rt;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&rt->mu);
	for (tm_job *j = rt->running; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			atomic_fetch_or(&j->stop, bits);
	pthread_mutex_unlock(&rt->mu);
}

void tm__running_wake(tm_manager *tm)
{
	struct tm__runtime *rt = tm->rt;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&rt->mu);
	rt->wake_seq++;
	rt->n_idle = 0; /* every waiting worker is now on its way (worker.c) */
	pthread_cond_broadcast(&rt->work);
	pthread_mutex_unlock(&rt->mu);
}

void tm__running_announce(tm_manager *tm)
{
	tm__running_wake(tm);
	tm__store_wake(tm->store, false);
}

bool tm__running_reserve(tm_manager *tm, struct tm__claiming *claim, uint64_t token)
{
	struct tm__runtime *rt = tm->rt;
	bool ok = false;

	if (rt == NULL)
		return false;
	pthread_mutex_lock(&rt->mu);
	if (!rt->stopping && rt->n_idle > rt->reserved) {
		rt->reserved++;
		tm__running_claiming(rt, claim, token);
		ok = true;
	}
	pthread_mutex_unlock(&rt->mu);
	return ok;
}

void tm__running_release(tm_manager *tm, struct tm__claiming *claim)
{
	struct tm__runtime *rt = tm->rt;

	pthread_mutex_lock(&rt->mu);
	tm__running_claimed(rt, claim);
	rt->reserved--;
	pthread_cond_broadcast(&rt->work); /* a worker may wait to stop */
	pthread_mutex_unlock(&rt->mu);
}

void tm__running_hand(tm_manager *tm, tm_job *job, struct tm__claiming *claim)
{
	struct tm__runtime *rt = tm->rt;
	tm_job **tail;

	pthread_mutex_lock(&rt->mu);
	tm__running_add(rt, job);
	tm__running_claimed(rt, claim);
	if (rt->stopping) /* tm_close() began since the reservation */
		atomic_fetch_or(&job->stop, TM__STOP_CLOSE);
	for (tail = &rt->handoff; *tail; tail = &(*tail)->hnext)
		;
	job->hnext = NULL;
	*tail = job;
	rt->reserved--;
	pthread_cond_broadcast(&rt->work);
	pthread_mutex_unlock(&rt->mu);
}
