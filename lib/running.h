/* The runtime's shared state (running.c): the jobs whose handlers run in
 * this process, and the signals between the threads and the callers.  The
 * façade uses it to wake workers and stop handlers; runtime.c, worker.c and
 * supervisor.c build on it. */
#ifndef TM_RUNNING_H
#define TM_RUNNING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "manager.h"

/* A claim in flight in this process (a worker's, or a trigger's that will
 * hand its task over): from before its transaction until its jobs are on
 * `running`, the tasks under its token are this process's, though no job
 * shows it yet.  The supervisor never takes them for lost. */
struct tm__claiming {
	uint64_t token;
	struct tm__claiming *next;
};

struct tm__runtime {
	pthread_mutex_t mu;       /* guards everything below */
	pthread_cond_t work;      /* workers: wake_seq moved, or stopping */
	pthread_cond_t idle;      /* tm_close(): a job left `running` */
	bool stopping;            /* tm_close() began: take no more tasks */
	uint64_t wake_seq;
	pthread_t *workers;
	bool *detached;           /* workers left running a handler at close */
	unsigned n_workers;       /* threads started */
	atomic_bool sup_stop;     /* read without mu by the supervisor */
	pthread_t supervisor;
	bool sup_started;
	tm_job *running;          /* jobs whose handler runs in this process */
	struct tm__claiming *claiming; /* claims in flight here */
	unsigned n_idle;          /* workers waiting for work, no wake-up pending */
	unsigned reserved;        /* of those, promised a task claimed by a trigger */
	tm_job *handoff;          /* claimed by a trigger, for the next idle worker
	                           * (linked by hnext; already on `running`) */
	int64_t prune_at_us;      /* next retention pass (supervisor) */
	/* The supervisor's full ticks, and the CPU time they took (its thread's
	 * clock): tm_stats reports them, read without mu. */
	atomic_uint_fast64_t sup_ticks, sup_cpu_ns;
	int64_t flushed_at_us;    /* last progress flush (supervisor) */
	/* The next token a rate-limited name waits for (the monotonic clock;
	 * 0: none): an idle worker wakes then and claims (worker.c). */
	int64_t rate_due_us;
};

/* Something may be runnable: wake this process's workers now. */
void tm__running_wake(tm_manager *tm);
/* This process queued work: wake the workers here and the supervisors of
 * every other process on the store. */
void tm__running_announce(tm_manager *tm);
/* Set stop bits (TM__STOP_*) on the job running task id here, if any. */
void tm__running_stop(tm_manager *tm, const char *id, int bits);
/* Every transaction that writes several tasks of this process's runs (the
 * supervisor's renewals, a worker's outcomes, tm_close()'s, the recovery
 * of the expired) takes them in task id order: on PostgreSQL, whose row
 * locks they take one by one, two of them then never deadlock, which
 * costs a second each (deadlock_timeout) and, retried over and over,
 * held renewals back past the lease. */
void tm__running_sort(tm_job **jobs, size_t n);
/* Running jobs, each with a reference the caller drops with unref_all, in
 * task id order. */
tm_job **tm__running_snapshot(tm_manager *tm, size_t *n);
void tm__running_unref_all(tm_job **jobs, size_t n);
/* The owner tokens of this process's runs: the jobs running and the
 * claims in flight, to *owners (malloc'd, or NULL when none); TM_ENOMEM. */
int tm__running_owners(tm_manager *tm, uint64_t **owners, size_t *n);
/* A trigger here may claim its task in its own commit and hand it to an
 * idle worker (one sync from trigger to handler): reserve promises it a
 * worker and enters its claim (token) as in flight, false when no worker
 * is idle or tm_close() began; then either hand the job over or release
 * the promise, which both end the claim. */
bool tm__running_reserve(tm_manager *tm, struct tm__claiming *claim, uint64_t token);
void tm__running_hand(tm_manager *tm, tm_job *job, struct tm__claiming *claim);
void tm__running_release(tm_manager *tm, struct tm__claiming *claim);
/* Put claimed jobs on the list, take finished ones off; enter a claim in
 * flight, and end it once its jobs are on the list (rt->mu held). */
void tm__running_add(struct tm__runtime *rt, tm_job *job);
void tm__running_remove(struct tm__runtime *rt, tm_job *job);
void tm__running_claiming(struct tm__runtime *rt, struct tm__claiming *claim,
                          uint64_t token);
void tm__running_claimed(struct tm__runtime *rt, struct tm__claiming *claim);

#endif
