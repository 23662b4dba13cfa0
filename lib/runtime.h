/* Shared by runtime.c (the threads) and supervisor.c (what the supervisor
 * thread checks on each tick).  Not part of internal.h: nothing else needs
 * the runtime's insides. */
#ifndef TM_RUNTIME_H
#define TM_RUNTIME_H

#include "internal.h"

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
	int64_t renew_at_us;      /* next lease renewal */
	int64_t flushed_at_us;    /* last progress flush */
};

#define TM__BACKOFF_CAP_S 3600.0

/* runtime.c */
void tm__job_ref(tm_job *job);
void tm__job_unref(tm_job *job);
/* Running jobs, each with a reference the caller drops with unref_all. */
tm_job **tm__runtime_snapshot(tm_manager *tm, size_t *n);
void tm__runtime_unref_all(tm_job **jobs, size_t n);
/* Set stop bits on the job running task id here, if any. */
void tm__runtime_stop_job(tm_manager *tm, const char *id, int bits);

/* supervisor.c: end t FAILED with the warning "timed out". */
int tm__time_out(tm__txn *txn, tm__task *t);
/* One tick of checks. */
void tm__supervise(tm_manager *tm);
/* The quick checks on a wake-up between ticks: cancels and takeovers of
 * the tasks running here, and due work for the workers. */
void tm__supervise_nudge(tm_manager *tm);
/* The delay in ms before the next tick. */
unsigned tm__supervise_delay(tm_manager *tm);

#endif
